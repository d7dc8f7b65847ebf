//! Builds the test components once (see `wasmpaste-build-support`) and tells
//! `src/lib.rs` where they are.

fn main() {
    let misbehave = wasmpaste_build_support::build_wasm(
        "wasmpaste-misbehave",
        "wasmpaste_misbehave.wasm",
        &["tests/components/misbehave"],
    );
    println!(
        "cargo:rustc-env=WASMPASTE_MISBEHAVE_WASM={}",
        misbehave.display()
    );
}
