//! Builds the guest component (see `wasmpaste-build-support`) and tells
//! `src/guest.rs` where it is, so `cargo run --release` serves at once with the
//! guest embedded. `WASMPASTE_GUEST_WASM=<file>` embeds that file instead.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=WASMPASTE_GUEST_WASM");
    let wasm = match std::env::var_os("WASMPASTE_GUEST_WASM") {
        Some(prebuilt) => {
            let prebuilt = PathBuf::from(prebuilt);
            println!("cargo:rerun-if-changed={}", prebuilt.display());
            prebuilt
        }
        None => wasmpaste_build_support::build_wasm(
            "wasmpaste-guest",
            "wasmpaste_guest.wasm",
            &[
                "guest/src",
                "guest/migrations",
                "guest/build.rs",
                "guest/Cargo.toml",
                "docs/openapi.yaml",
            ],
        ),
    };
    println!(
        "cargo:rustc-env=WASMPASTE_GUEST_WASM_PATH={}",
        wasm.display()
    );
}
