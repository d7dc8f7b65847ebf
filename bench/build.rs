//! Builds the benchmark program for wasm32-wasip2 so `wasmpaste-bench` can run
//! it inside wasmtime next to the same code compiled natively.

fn main() {
    let wasm = wasmpaste_build_support::build_wasm(
        "wasmpaste-bench-guest",
        "wasmpaste-bench-guest.wasm",
        &[
            "bench/guest",
            "guest/src",
            "guest/build.rs",
            "guest/Cargo.toml",
        ],
    );
    println!(
        "cargo:rustc-env=WASMPASTE_BENCH_GUEST_WASM={}",
        wasm.display()
    );
}
