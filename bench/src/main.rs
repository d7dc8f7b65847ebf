//! `cargo run --release -p wasmpaste-bench`: the component's own logic
//! (proof-of-work, PBKDF2, MIME detection, entropy) compiled natively versus
//! the same code compiled to wasm32-wasip2 and run inside wasmtime with the
//! native host's engine configuration, in one run. Prints a table.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use wasmpaste_host::engine::{PoolSize, new_engine};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Issue #3's target for one proof-of-work verification inside the guest.
const POW_VERIFY_TARGET_NS: f64 = 20_000.0;

struct State {
    table: ResourceTable,
    wasi: WasiCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Runs the wasm build of the benchmark program; returns ns/op per benchmark.
async fn run_wasm(engine: &Engine) -> wasmtime::Result<BTreeMap<String, f64>> {
    let wasm = std::fs::read(env!("WASMPASTE_BENCH_GUEST_WASM"))?;
    let component = Component::new(engine, wasm)?;
    let mut linker = Linker::<State>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    let stdout = MemoryOutputPipe::new(1 << 20);
    let wasi = WasiCtx::builder()
        .stdout(stdout.clone())
        .inherit_stderr()
        .args(&["wasmpaste-bench-guest"])
        .build();
    let mut store = Store::new(
        engine,
        State {
            table: ResourceTable::new(),
            wasi,
        },
    );
    // Epoch checks stay compiled in (as in production); the epoch never advances here.
    store.set_epoch_deadline(u64::MAX);
    let command = Command::instantiate_async(&mut store, &component, &linker).await?;
    command
        .wasi_cli_run()
        .call_run(&mut store)
        .await?
        .map_err(|()| wasmtime::format_err!("the benchmark program failed"))?;
    let out = String::from_utf8_lossy(&stdout.contents()).into_owned();
    Ok(out
        .lines()
        .filter_map(|l| {
            let (name, ns) = l.split_once(' ')?;
            Some((name.to_owned(), ns.parse().ok()?))
        })
        .collect())
}

fn human(ns: f64) -> String {
    let d = Duration::from_secs_f64(ns / 1e9);
    if ns >= 1e6 {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} µs", d.as_secs_f64() * 1e6)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let pool = PoolSize {
        instances: 4,
        max_memory: 512 << 20,
    };
    let engine = match new_engine(pool, None) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("wasmpaste-bench: component logic, native vs wasm (wasmtime, host engine config)");
    println!(
        "cores: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let wasm = match run_wasm(&engine).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: running the wasm benchmarks failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!();
    println!(
        "{:<22} {:>12} {:>12} {:>8}  what",
        "benchmark", "native", "wasm", "ratio"
    );
    for bench in wasmpaste_bench_guest::ALL {
        let native = wasmpaste_bench_guest::measure(bench, bench.iterations);
        let Some(&in_wasm) = wasm.get(bench.name) else {
            println!("{:<22} missing from the wasm run", bench.name);
            continue;
        };
        println!(
            "{:<22} {:>12} {:>12} {:>7.2}x  {}",
            bench.name,
            human(native),
            human(in_wasm),
            in_wasm / native,
            bench.about
        );
    }
    if let Some(&verify) = wasm.get("pow_verify") {
        let verdict = if verify < POW_VERIFY_TARGET_NS {
            "met"
        } else {
            "NOT met"
        };
        println!(
            "\npow_verify inside the guest: {} per verification (target < {}): {verdict}",
            human(verify),
            human(POW_VERIFY_TARGET_NS)
        );
    }
    ExitCode::SUCCESS
}
