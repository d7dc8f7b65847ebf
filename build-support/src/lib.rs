//! Used by build scripts (`host/build.rs`, `bench/build.rs`) to build a
//! workspace package for `wasm32-wasip2` with a nested `cargo build --release`
//! into a target directory under `OUT_DIR`, the way wasmtime builds its test
//! programs. Failures stop the build with a message that says what to do.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// Builds `package` for wasm32-wasip2 and returns the path of `artifact`
/// (e.g. `wasmpaste_guest.wasm`) in the nested target directory.
/// `watched` are paths relative to the workspace root that trigger a rebuild.
pub fn build_wasm(package: &str, artifact: &str, watched: &[&str]) -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = workspace_root();
    for path in watched.iter().chain(["wit", "Cargo.lock"].iter()) {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    require_wasm_target();

    let target_dir = out_dir.join("wasm-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--package",
            package,
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags and wrappers are for the host, not for wasm.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo to build {package}: {e}")));
    if !status.success() {
        fail(&format!(
            "building {package} for {TARGET} failed; see the errors above"
        ));
    }
    target_dir.join(TARGET).join("release").join(artifact)
}

/// The workspace root: the parent of the package whose build script runs.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists() || is_workspace_manifest(dir))
        .map_or(manifest_dir.clone(), Path::to_path_buf)
}

fn is_workspace_manifest(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|m| m.contains("[workspace]"))
}

/// Stops early, with the fix, when the standard library for wasm32-wasip2 is missing.
fn require_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = sysroot
        && !sysroot.join("lib/rustlib").join(TARGET).exists()
    {
        fail(&format!(
            "the Rust target {TARGET} is not installed (needed to build the WebAssembly \
             component).\nInstall it with:\n\n    rustup target add {TARGET}\n"
        ));
    }
}

/// Stops the build with a message Cargo shows as it is.
pub fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
