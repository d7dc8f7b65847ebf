//! Used by build scripts (`host/build.rs`, `bench/build.rs`,
//! `tests/components/build.rs`) to build a workspace package for another
//! target with a nested `cargo build --release`, the way wasmtime builds its
//! test programs: the component for `wasm32-wasip2`, the `fpaste` client as a
//! static Linux binary. Each package gets its own nested target directory,
//! `target/nested/<package>`, shared by the outer debug and release builds, so
//! both profiles of the host build the component and the client once. (One
//! directory for all packages would not do: building a package that uses
//! the guest as a library rewrites the guest's own `.wasm` there.)
//! Failures stop the build with a message that says what to do.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";
/// The `fpaste` the native host serves at `GET /client`: statically linked
/// against musl, so it runs on any x86_64 Linux, whatever its C library.
pub const STATIC_LINUX: &str = "x86_64-unknown-linux-musl";

/// Builds `package` for wasm32-wasip2 and returns the path of `artifact`
/// (e.g. `wasmpaste_guest.wasm`) in the nested target directory.
/// `watched` are paths relative to the workspace root that trigger a rebuild.
pub fn build_wasm(package: &str, artifact: &str, watched: &[&str]) -> PathBuf {
    require_target(TARGET, "the WebAssembly component");
    build(package, TARGET, artifact, watched, &[])
}

/// Builds the binary `artifact` of `package` for x86_64 Linux, statically
/// linked (musl) and stripped; returns its path.
pub fn build_static_linux(package: &str, artifact: &str, watched: &[&str]) -> PathBuf {
    require_target(STATIC_LINUX, "the fpaste client the host serves at /client");
    // C code in dependencies (ring) is compiled for musl by musl-gcc where
    // it is installed, else by the system's C compiler: it uses nothing of
    // the C library that musl's does not provide the same way.
    let cc_var = format!("CC_{}", STATIC_LINUX.replace('-', "_"));
    let mut vars = vec![("CARGO_PROFILE_RELEASE_STRIP".to_owned(), "true".to_owned())];
    if env::var_os(&cc_var).is_none() {
        let cc = if on_path("musl-gcc") {
            "musl-gcc"
        } else {
            "cc"
        };
        vars.push((cc_var, cc.to_owned()));
    }
    build(package, STATIC_LINUX, artifact, watched, &vars)
}

fn build(
    package: &str,
    target: &str,
    artifact: &str,
    watched: &[&str],
    vars: &[(String, String)],
) -> PathBuf {
    let root = workspace_root();
    for path in watched.iter().chain(["wit", "Cargo.lock"].iter()) {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    // A relative CARGO_TARGET_DIR is the outer cargo's, run from the root.
    let target_dir =
        env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let target_dir = root.join(target_dir).join("nested").join(package);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--package",
            package,
            "--target",
            target,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags and wrappers are for the host, not for this target.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    command.envs(vars.iter().map(|(k, v)| (k, v)));
    let status = command
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo to build {package}: {e}")));
    if !status.success() {
        fail(&format!(
            "building {package} for {target} failed; see the errors above"
        ));
    }
    target_dir.join(target).join("release").join(artifact)
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

fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|paths| env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

/// Stops early, with the fix, when the standard library for `target` is
/// missing (`what` says what it is needed for).
fn require_target(target: &str, what: &str) {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = sysroot
        && !sysroot.join("lib/rustlib").join(target).exists()
    {
        fail(&format!(
            "the Rust target {target} is not installed (needed to build {what}).\n\
             Install it with:\n\n    rustup target add {target}\n"
        ));
    }
}

/// Stops the build with a message Cargo shows as it is.
pub fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
