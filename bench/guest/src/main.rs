//! `wasmpaste-bench-guest [NAME ...]`: prints `NAME NS_PER_ITERATION` lines.
//! Built for wasm32-wasip2 and run by `wasmpaste-bench` inside wasmtime.

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    for bench in wasmpaste_bench_guest::ALL {
        if wanted.is_empty() || wanted.iter().any(|w| w == bench.name) {
            let ns = wasmpaste_bench_guest::measure(bench, bench.iterations);
            println!("{} {ns:.1}", bench.name);
        }
    }
}
