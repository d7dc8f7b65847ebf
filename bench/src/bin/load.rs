//! `wasmpaste-load`: load over loopback against the release `wasmpaste`
//! binary, the way clients meet it. For each operation and each number of
//! connections it prints requests/s, p50/p99/p99.9 latency and the server's
//! resident memory afterwards.
//!
//!   cargo build --release && cargo run --release -p wasmpaste-bench --bin wasmpaste-load
//!
//! Options (environment): LOAD_SECONDS (per cell, default 3), LOAD_CONNECTIONS
//! (default "1,16,64"), WASMPASTE_BIN (default: `wasmpaste` beside this binary).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

/// One kind of request.
#[derive(Clone, Copy)]
enum Op {
    Create,
    ReadRaw,
    ReadMeta,
    Redirect,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create 1 KiB paste",
            Self::ReadRaw => "read raw",
            Self::ReadMeta => "read metadata",
            Self::Redirect => "short-URL redirect",
        }
    }
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the host with abuse controls off (the load would trip them).
    fn start(bin: &PathBuf, dir: &std::path::Path) -> Result<Self, String> {
        let mut child = Command::new(bin)
            .env("WASMPASTE_LISTEN", "127.0.0.1:0")
            .env("WASMPASTE_DB", dir.join("load.db"))
            .env("WASMPASTE_CACHE_DIR", dir.join("cache"))
            .env("WASMPASTE_POW_DIFFICULTY", "0")
            .env("WASMPASTE_RATE_MAX", "0")
            .env("WASMPASTE_DEDUP_MAX", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let base = line
            .trim()
            .strip_prefix("wasmpaste listening on ")
            .ok_or_else(|| format!("unexpected first line: {line}"))?
            .to_owned();
        Ok(Self { child, base })
    }

    /// Resident memory of the server process, in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()
        .unwrap_or_else(|_| Client::new())
}

/// Runs `op` on `connections` threads for `seconds`; latencies in µs.
fn run(op: Op, base: &str, paste: &str, short: &str, connections: usize, seconds: f64) -> Vec<u32> {
    let stop = AtomicBool::new(false);
    let body = vec![b'x'; 1024];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                let (stop, body) = (&stop, &body);
                scope.spawn(move || {
                    let client = client();
                    let mut latencies = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let ok = match op {
                            Op::Create => client.post(format!("{base}/")).body(body.clone()).send(),
                            Op::ReadRaw => client.get(format!("{base}/{paste}/raw")).send(),
                            Op::ReadMeta => client.get(format!("{base}/{paste}")).send(),
                            Op::Redirect => client.get(format!("{base}/s/{short}")).send(),
                        }
                        .and_then(|r| r.bytes().map(|_| ()))
                        .is_ok();
                        if ok {
                            let micros = started.elapsed().as_micros();
                            latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                        }
                    }
                    latencies
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn setup(base: &str) -> Result<(String, String), String> {
    let c = client();
    let id_of = |r: reqwest::Result<reqwest::blocking::Response>| -> Result<String, String> {
        let v: serde_json::Value = r.and_then(|r| r.json()).map_err(|e| e.to_string())?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no id in {v}"))
    };
    let paste = id_of(c.post(format!("{base}/")).body(vec![b'r'; 1024]).send())?;
    let short = id_of(
        c.post(format!("{base}/s"))
            .body("https://example.com/target")
            .send(),
    )?;
    Ok((paste, short))
}

fn main() -> ExitCode {
    let seconds: f64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let connections: Vec<usize> = std::env::var("LOAD_CONNECTIONS")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let bin = std::env::var_os("WASMPASTE_BIN").map_or_else(
        || {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("wasmpaste")))
                .unwrap_or_else(|| PathBuf::from("wasmpaste"))
        },
        PathBuf::from,
    );
    if !bin.exists() {
        eprintln!(
            "error: {} not found; run `cargo build --release` first (or set WASMPASTE_BIN)",
            bin.display()
        );
        return ExitCode::FAILURE;
    }
    let dir = std::env::temp_dir().join(format!("wasmpaste-load-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let server = match Server::start(&bin, &dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (paste, short) = match setup(&server.base) {
        Ok(ids) => ids,
        Err(e) => {
            eprintln!("error: setting up: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "wasmpaste-load: {} over loopback, {seconds} s per cell, {} cores, idle RSS {:.1} MiB",
        bin.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        server.rss_mib()
    );
    println!(
        "{:<20} {:>5} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "operation", "conns", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "RSS MiB"
    );
    for op in [Op::Create, Op::ReadRaw, Op::ReadMeta, Op::Redirect] {
        for &c in &connections {
            let mut lat = run(op, &server.base, &paste, &short, c, seconds);
            lat.sort_unstable();
            #[allow(clippy::cast_precision_loss)]
            let rps = lat.len() as f64 / seconds;
            println!(
                "{:<20} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.1}",
                op.name(),
                c,
                rps,
                percentile(&lat, 0.50),
                percentile(&lat, 0.99),
                percentile(&lat, 0.999),
                server.rss_mib()
            );
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}
