//! Builds what the host embeds, so `cargo run --release` serves at once:
//! the guest component (see `wasmpaste-build-support`), and on x86_64 Linux
//! the `fpaste` client it serves at `GET /client`, a static (musl) binary
//! that runs on any x86_64 Linux. `WASMPASTE_GUEST_WASM=<file>` and
//! `WASMPASTE_CLIENT_BIN=<file>` embed those files instead.

use std::path::PathBuf;

use wasmpaste_build_support::{build_static_linux, build_wasm};

fn main() {
    println!("cargo:rustc-check-cfg=cfg(embedded_client)");
    let wasm = prebuilt("WASMPASTE_GUEST_WASM").unwrap_or_else(|| {
        build_wasm(
            "wasmpaste-guest",
            "wasmpaste_guest.wasm",
            &[
                "guest/src",
                "guest/migrations",
                "guest/build.rs",
                "guest/Cargo.toml",
                "contract",
                "docs/openapi.yaml",
            ],
        )
    });
    println!(
        "cargo:rustc-env=WASMPASTE_GUEST_WASM_PATH={}",
        wasm.display()
    );

    // The client is a Linux x86_64 program; a host built for anything else
    // serves none unless given one at run time (`--client-file`).
    let linux_x86_64 = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux")
        && std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "x86_64");
    let client = prebuilt("WASMPASTE_CLIENT_BIN")
        .or_else(|| linux_x86_64.then(|| build_static_linux("wasmpaste-cli", "fpaste", &["cli"])));
    if let Some(client) = client {
        println!("cargo:rustc-cfg=embedded_client");
        println!(
            "cargo:rustc-env=WASMPASTE_CLIENT_BIN_PATH={}",
            client.display()
        );
    }
}

/// The file `var` names, watched for changes.
fn prebuilt(var: &str) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={var}");
    let path = PathBuf::from(std::env::var_os(var)?);
    println!("cargo:rerun-if-changed={}", path.display());
    Some(path)
}
