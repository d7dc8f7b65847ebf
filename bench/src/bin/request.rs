//! `wasmpaste-request`: what one request costs inside the host, without
//! sockets: the host's own engine, tenant pool and SQLite file, the embedded
//! component, and `TenantPool::serve` called in a loop on one thread, with a
//! fresh instance per request (the default) and with instance reuse. It
//! prints µs per request for each operation, and how many of them one core
//! would serve per second if nothing else ran (HTTP and the kernel's TCP
//! come on top: `wasmpaste-load` measures those).
//!
//!   cargo run --release -p wasmpaste-bench --bin wasmpaste-request
//!
//! Options (environment): REQUEST_ITERATIONS (per cell, default 20000),
//! REQUEST_REUSE (the reuse pass's `max_instance_reuse`, default 1000; 1
//! skips the pass), REQUEST_OPS=raw,meta (only the named operations: create,
//! raw, meta, redirect; default all). Run it under `perf record` to see where a request's
//! CPU goes without the network in the picture.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clap::Parser as _;
use http_body_util::{BodyExt as _, Full};
use wasmpaste_host::cli::Args;
use wasmpaste_host::engine::{PoolSize, new_engine, start_epoch_ticker};
use wasmpaste_host::metrics::Metrics;
use wasmpaste_host::tenant::{Tenant, Tenants};
use wasmpaste_host::variables::Variables;
use wasmpaste_loadgen::{Op, Scratch};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;

/// The paste and the short URL the reads ask for.
struct Fixture {
    paste: String,
    short: String,
}

type Body = http_body_util::combinators::BoxBody<Bytes, ErrorCode>;

fn request(method: &str, path: &str, body: Vec<u8>) -> hyper::Request<Body> {
    let body = Full::new(Bytes::from(body))
        .map_err(|never: Infallible| match never {})
        .boxed();
    hyper::Request::builder()
        .method(method)
        .uri(format!("http://bench.local{path}"))
        .header("host", "bench.local")
        .header("spin-client-addr", "127.0.0.1:40000")
        .body(body)
        .unwrap_or_else(|e| unreachable!("a fixed request is valid: {e}"))
}

/// Sends one request through the tenant's pool; its status and body.
async fn send(tenant: &Tenant, req: hyper::Request<Body>) -> Result<(u16, Bytes), String> {
    let slot = tenant.pool.try_slot().ok_or("no slot")?;
    let resp = tenant
        .pool
        .serve(req, "bench", slot)
        .await
        .map_err(|f| format!("{f:?}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e:?}"))?
        .to_bytes();
    Ok((status, body))
}

impl Fixture {
    async fn new(tenant: &Tenant) -> Result<Self, String> {
        let created = |(status, body): (u16, Bytes)| -> Result<String, String> {
            let json: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| format!("HTTP {status}, not JSON: {e}"))?;
            json["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("HTTP {status}: {json}"))
        };
        let paste = created(send(tenant, request("POST", "/", vec![b'r'; 1024])).await?)?;
        let short = created(
            send(
                tenant,
                request("POST", "/s", b"https://example.com/target".to_vec()),
            )
            .await?,
        )?;
        Ok(Self { paste, short })
    }

    fn request(&self, op: Op) -> hyper::Request<Body> {
        match op {
            Op::Create => request("POST", "/", vec![b'x'; 1024]),
            Op::ReadRaw => request("GET", &format!("/{}/raw", self.paste), Vec::new()),
            Op::ReadMeta => request("GET", &format!("/{}", self.paste), Vec::new()),
            Op::Redirect => request("GET", &format!("/s/{}", self.short), Vec::new()),
        }
    }
}

/// A tenant like the one `wasmpaste` serves with these settings, its
/// database in `dir`, migrated; abuse controls off (the loop would trip them).
async fn tenant(dir: &std::path::Path, reuse: u32) -> Result<Arc<Tenant>, String> {
    let args = Args::try_parse_from([
        "wasmpaste".into(),
        "--db".into(),
        dir.join("bench.db").into_os_string(),
        "--no-cache".into(),
        "--max-instance-reuse".into(),
        reuse.to_string().into(),
    ])
    .map_err(|e| e.to_string())?;
    let specs = args.tenants().map_err(|e| format!("{e:#}"))?;
    let pool = PoolSize::for_tenants(specs.iter().map(|s| &s.limits), args.max_instances);
    let engine = new_engine(pool, None).map_err(|e| format!("{e:#}"))?;
    start_epoch_ticker(&engine);
    let variables = Variables::new(BTreeMap::from(
        [
            ("pow_difficulty", "0"),
            ("rate_max", "0"),
            ("dedup_max", "0"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    ));
    let metrics = Arc::new(Metrics::default());
    let tenants = Tenants::new(
        &engine,
        None,
        specs,
        &variables,
        wasmpaste_host::guest::EMBEDDED,
        &metrics,
    )
    .map_err(|e| format!("{e:#}"))?;
    let tenant = tenants.iter().next().cloned().ok_or("no tenant")?;
    tenant
        .pool
        .cleanup("migrate")
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(tenant)
}

/// µs per request of `op`, over `n` requests after a warm-up.
async fn measure(tenant: &Tenant, fixture: &Fixture, op: Op, n: u32) -> Result<f64, String> {
    for _ in 0..n / 10 {
        send(tenant, fixture.request(op)).await?;
    }
    let started = Instant::now();
    for _ in 0..n {
        let (status, body) = send(tenant, fixture.request(op)).await?;
        if status >= 400 {
            return Err(format!(
                "{}: HTTP {status}: {}",
                op.name(),
                String::from_utf8_lossy(&body)
            ));
        }
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(n))
}

fn env_number(var: &str, default: u32) -> Result<u32, String> {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("{var}={v}: want a whole number from 1")),
        Err(_) => Ok(default),
    }
}

async fn bench() -> Result<(), String> {
    let n = env_number("REQUEST_ITERATIONS", 20_000)?;
    let reuse = env_number("REQUEST_REUSE", 1000)?;
    let ops = Op::selected("REQUEST_OPS")?;
    let dir = Scratch::new("wasmpaste-request")?;
    let mut passes = vec![("fresh instance", 1)];
    if reuse > 1 {
        passes.push(("reuse", reuse));
    }
    println!("wasmpaste-request: {n} requests per cell, one thread, no sockets");
    println!(
        "{:<20} {:<22} {:>12} {:>14}",
        "operation", "instances", "µs/request", "requests/s/core"
    );
    for (i, (label, reuse)) in passes.into_iter().enumerate() {
        let sub = dir.path.join(format!("pass-{i}"));
        std::fs::create_dir_all(&sub).map_err(|e| e.to_string())?;
        let tenant = tenant(&sub, reuse).await?;
        let fixture = Fixture::new(&tenant).await?;
        let label = if reuse > 1 {
            format!("{label} ({reuse})")
        } else {
            label.to_owned()
        };
        for &op in &ops {
            let us = measure(&tenant, &fixture, op, n).await?;
            println!(
                "{:<20} {:<22} {:>12.1} {:>14.0}",
                op.name(),
                label,
                us,
                1e6 / us
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wasmpaste-request: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmpaste-request: {e}");
            ExitCode::FAILURE
        }
    }
}
