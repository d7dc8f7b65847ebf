//! Builds the guest component (nested `cargo build --target wasm32-wasip2
//! --release` into a target dir under OUT_DIR) and tells `src/guest.rs` where
//! it is, so `cargo run --release` serves at once with the guest embedded.
//!
//! `WASMPASTE_GUEST_WASM=<file>` skips the nested build and embeds that file.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    println!("cargo:rerun-if-env-changed=WASMPASTE_GUEST_WASM");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wasm = match env::var_os("WASMPASTE_GUEST_WASM") {
        Some(prebuilt) => {
            let prebuilt = PathBuf::from(prebuilt);
            println!("cargo:rerun-if-changed={}", prebuilt.display());
            prebuilt
        }
        None => build_guest(&out_dir),
    };
    println!(
        "cargo:rustc-env=WASMPASTE_GUEST_WASM_PATH={}",
        wasm.display()
    );
}

fn build_guest(out_dir: &Path) -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir
        .parent()
        .expect("host/ lives in the workspace root")
        .to_path_buf();
    for watched in [
        "guest/src",
        "guest/migrations",
        "guest/Cargo.toml",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    require_wasm_target();

    let target_dir = out_dir.join("guest-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--package",
            "wasmpaste-guest",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags are for the host, not for wasm.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("failed to run cargo for the guest component");
    if !status.success() {
        fail(&format!(
            "building the guest component (wasmpaste-guest for {TARGET}) failed; see the errors above"
        ));
    }
    target_dir
        .join(TARGET)
        .join("release")
        .join("wasmpaste_guest.wasm")
}

/// Fails early, with the fix, when the Rust standard library for wasm32-wasip2 is missing.
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
            "the Rust target {TARGET} is not installed (needed to build the guest component).\n\
             Install it with:\n\n    rustup target add {TARGET}\n"
        ));
    }
}

/// Stops the build with a message Cargo shows as it is.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
