//! `wasmpaste-tenants-load`: the multi-tenant host under load over loopback.
//!
//! For each number of tenants (`LOAD_TENANTS`, default `1,10`) it writes a
//! tenants file (tenant `tK` under path prefix `/tK`, its own database,
//! abuse controls off, the embedded component), starts the release
//! `wasmpaste` binary with `--config` and `--admin-listen`, creates one
//! 1 KiB paste per tenant, then for each number of connections sends
//! `GET /tK/{id}/raw` and `POST /tK/` (1 KiB, unique content), spread
//! round-robin over the tenants, and prints requests/s and latency
//! percentiles. After the runs it reads the mean instantiation time per
//! request from the admin listener's `/metrics`. Last, it measures the
//! resident memory of a host with `LOAD_IDLE_TENANTS` (default 100) idle
//! tenants, each having answered one `GET /tK/health`, against a host with
//! one tenant measured the same way. A warm-up start fills the compilation
//! cache all hosts share, so every measured host loads the component's
//! machine code instead of compiling it.
//!
//!   cargo build --release -p wasmpaste-host -p wasmpaste-bench
//!   target/release/wasmpaste-tenants-load
//!
//! Options (environment): LOAD_SECONDS (per cell, default 3), LOAD_CONNECTIONS
//! (default "1,16,64"), LOAD_TENANTS (default "1,10"), LOAD_IDLE_TENANTS
//! (default 100), WASMPASTE_BIN (default: `wasmpaste` beside this binary).
//! The machinery is shared with `wasmpaste-load` (src/loadgen.rs).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use wasmpaste_loadgen::{
    COLUMNS, Options, Scratch, Server, client, list_from_env, post_for_id, run, unique_body,
};

/// One kind of request, spread over the tenants.
#[derive(Clone, Copy)]
enum Op {
    ReadRaw,
    Create,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::ReadRaw => "read raw",
            Self::Create => "create 1 KiB paste",
        }
    }
}

/// A host serving tenants `t0`..`tN-1`, each with one paste to read.
struct Tenants {
    server: Server,
    pastes: Vec<String>,
}

/// Starts a host with `count` tenants in a fresh directory `{label}-{count}`
/// under `dir`; `cache` is the compilation cache all hosts share.
fn start_host(
    opts: &Options,
    dir: &Path,
    cache: &Path,
    label: &str,
    count: usize,
) -> Result<Server, String> {
    let dir = dir.join(format!("{label}-{count}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut text = String::new();
    for k in 0..count {
        // Abuse controls off: the load would trip them.
        let _ = write!(
            text,
            "[[tenant]]\n\
             name = \"t{k}\"\n\
             path_prefix = \"/t{k}\"\n\
             db = \"t{k}.db\"\n\
             variables = {{ pow_difficulty = 0, rate_max = 0, dedup_max = 0 }}\n\n"
        );
    }
    let config = dir.join("tenants.toml");
    std::fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let mut command = Command::new(&opts.bin);
    command
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--cache-dir")
        .arg(cache);
    Server::start(command, &dir.join("host.log"))
}

impl Tenants {
    /// Creates one 1 KiB paste per tenant.
    fn new(server: Server, count: usize) -> Result<Self, String> {
        let c = client();
        let pastes = (0..count)
            .map(|k| {
                let url = format!("{}/t{k}/", server.base);
                post_for_id(c.post(&url).body(vec![b'r'; 1024]))
                    .map_err(|e| format!("POST {url}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { server, pastes })
    }

    /// The `n`th request of connection `worker`: tenants in turn.
    fn request(&self, op: Op, client: &Client, worker: usize, n: u64) -> RequestBuilder {
        let count = self.pastes.len().max(1);
        let k = (worker + usize::try_from(n).unwrap_or_default()) % count;
        let base = &self.server.base;
        match op {
            Op::ReadRaw => {
                let id = self.pastes.get(k).map_or("", String::as_str);
                client.get(format!("{base}/t{k}/{id}/raw"))
            }
            Op::Create => client
                .post(format!("{base}/t{k}/"))
                .body(unique_body(worker, n, 1024)),
        }
    }
}

/// Sum (seconds) and count of `wasmpaste_instantiation_seconds` over all tenants.
fn instantiation(metrics: &str) -> (f64, f64) {
    let total = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .sum()
    };
    (
        total("wasmpaste_instantiation_seconds_sum"),
        total("wasmpaste_instantiation_seconds_count"),
    )
}

/// Resident memory of a host with `count` tenants that each answered one
/// `GET /tK/health`, one second after the last.
fn idle_rss(opts: &Options, dir: &Path, cache: &Path, count: usize) -> Result<f64, String> {
    let server = start_host(opts, dir, cache, "idle", count)?;
    let c = client();
    for k in 0..count {
        let url = format!("{}/t{k}/health", server.base);
        let status = c
            .get(&url)
            .send()
            .and_then(|r| {
                let status = r.status();
                r.bytes().map(|_| status)
            })
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    Ok(server.rss_mib())
}

fn main() -> ExitCode {
    wasmpaste_loadgen::exit(load())
}

fn load() -> Result<(), String> {
    let opts = Options::from_env()?;
    let tenant_counts = list_from_env("LOAD_TENANTS", "1,10");
    let idle = list_from_env("LOAD_IDLE_TENANTS", "100")
        .first()
        .copied()
        .unwrap_or(100)
        .max(2);
    let dir = Scratch::new("wasmpaste-tenants-load")?;
    let cache = dir.path.join("cache");
    // Compile once, so that every measured host loads the machine code from
    // the cache (Cranelift's memory would otherwise stay in the first one's RSS).
    drop(start_host(&opts, &dir.path, &cache, "warm-up", 1)?);
    println!("{}", opts.banner("wasmpaste-tenants-load"));
    println!(
        "{:<20} {:>7} {:>5} {COLUMNS}",
        "operation", "tenants", "conns"
    );
    let mut instantiations = Vec::new();
    for &count in &tenant_counts {
        let server = start_host(&opts, &dir.path, &cache, "load", count)?;
        let tenants = Tenants::new(server, count).map_err(|e| format!("setting up: {e}"))?;
        for op in [Op::ReadRaw, Op::Create] {
            for &c in &opts.connections {
                let sample = run(c, opts.seconds, |client, worker, n| {
                    tenants.request(op, client, worker, n)
                });
                println!(
                    "{:<20} {:>7} {:>5} {}",
                    op.name(),
                    count,
                    c,
                    sample.columns(tenants.server.rss_mib())
                );
                if let Some(failures) = sample.failures() {
                    println!("  failed: {failures}");
                }
            }
        }
        instantiations.push((count, instantiation(&tenants.server.metrics()?)));
    }
    for (count, (sum, n)) in instantiations {
        let mean_us = if n > 0.0 { sum / n * 1e6 } else { 0.0 };
        println!(
            "instantiation, {count} tenant(s): {n:.0} requests, mean {mean_us:.1} µs per request"
        );
    }
    let many = idle_rss(&opts, &dir.path, &cache, idle)?;
    let one = idle_rss(&opts, &dir.path, &cache, 1)?;
    #[allow(clippy::cast_precision_loss)]
    let per_tenant_kib = (many - one) * 1024.0 / (idle - 1) as f64;
    println!(
        "idle RSS: {idle} tenants {many:.1} MiB, 1 tenant {one:.1} MiB, \
         {per_tenant_kib:.0} KiB per extra idle tenant"
    );
    Ok(())
}
