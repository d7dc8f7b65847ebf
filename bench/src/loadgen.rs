//! Load over loopback against the release `wasmpaste` binary: the machinery
//! shared by `wasmpaste-load` (one tenant, every operation) and
//! `wasmpaste-tenants-load` (several tenants behind path prefixes). It starts
//! the host, drives it from N threads with one keep-alive connection each,
//! and reports throughput, latency percentiles and resident memory.
//!
//! Options (environment): `LOAD_SECONDS` (per cell, default 3),
//! `LOAD_CONNECTIONS` (default `1,16,64`), `WASMPASTE_BIN` (default:
//! `wasmpaste` beside the running binary). [`Server`] starts any program
//! that prints `wasmpaste listening on URL`, e.g. `wasmpaste-native`.

pub mod spin_up;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};

/// What every load generator reads from the environment.
pub struct Options {
    /// Length of one cell (one operation at one number of connections).
    pub seconds: f64,
    pub connections: Vec<usize>,
    /// The host binary.
    pub bin: PathBuf,
}

impl Options {
    /// Reads the options; fails when the host binary is missing.
    pub fn from_env() -> Result<Self, String> {
        Self::from_env_or(3.0, "1,16,64")
    }

    /// [`Options::from_env`] with this program's own defaults for
    /// `LOAD_SECONDS` and `LOAD_CONNECTIONS`.
    pub fn from_env_or(seconds: f64, connections: &str) -> Result<Self, String> {
        let seconds = std::env::var("LOAD_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(seconds);
        let connections = list_from_env("LOAD_CONNECTIONS", connections);
        let bin = sibling_bin("wasmpaste", "WASMPASTE_BIN")?;
        Ok(Self {
            seconds,
            connections,
            bin,
        })
    }

    /// The first line of every report.
    pub fn banner(&self, program: &str) -> String {
        self.banner_for(program, &self.bin)
    }

    /// [`Options::banner`] for another server binary.
    pub fn banner_for(&self, program: &str, bin: &Path) -> String {
        format!(
            "{program}: {} over loopback, {} s per cell, {} cores",
            bin.display(),
            self.seconds,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        )
    }
}

/// The process exit status of a load generator's `main`: errors on stderr.
pub fn exit(result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The program `var` names, else `name` beside the running binary; fails
/// when it does not exist.
pub fn sibling_bin(name: &str, var: &str) -> Result<PathBuf, String> {
    let bin = std::env::var_os(var).map_or_else(
        || {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join(name)))
                .unwrap_or_else(|| PathBuf::from(name))
        },
        PathBuf::from,
    );
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found; run `cargo build --release` first (or set {var})",
            bin.display()
        ))
    }
}

/// A comma-separated list of numbers from `var` (`default` when unset).
pub fn list_from_env(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect()
}

/// A temporary directory, removed with everything in it when dropped.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(program: &str) -> Result<Self, String> {
        let path = std::env::temp_dir().join(format!("{program}-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A running host, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` of the public listener.
    pub base: String,
    /// `http://127.0.0.1:PORT` of the admin listener, when started with one.
    pub admin: Option<String>,
    /// `https://127.0.0.1:PORT` of the HTTPS listener, when started with one.
    pub https: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Runs `command` (the host binary with its arguments and environment)
    /// with its log (warnings and errors) in `log`, and waits until it
    /// listens.
    pub fn start(mut command: Command, log: &Path) -> Result<Self, String> {
        let stderr =
            File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", command.get_program().display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (mut admin, mut https) = (None, None);
        // The admin and HTTPS lines (if any) come first, then the plain one.
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            let line = line.trim();
            if let Some(addr) = line.strip_prefix("wasmpaste admin on ") {
                admin = Some(addr.to_owned());
            } else if let Some(addr) = line
                .strip_prefix("wasmpaste listening on ")
                .filter(|a| a.starts_with("https://"))
            {
                https = Some(addr.to_owned());
            } else if let Some(addr) = line.strip_prefix("wasmpaste listening on ") {
                return Ok(Self {
                    child,
                    base: addr.to_owned(),
                    admin,
                    https,
                });
            }
        }
        let _ = child.wait();
        let log = std::fs::read_to_string(log).unwrap_or_default();
        Err(format!(
            "the host exited before listening:\n{}",
            log.trim_end()
        ))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the server process, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// The Prometheus text of the admin listener's `/metrics`.
    pub fn metrics(&self) -> Result<String, String> {
        let admin = self
            .admin
            .as_deref()
            .ok_or("the host was started without --admin-listen")?;
        client()
            .get(format!("{admin}/metrics"))
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .and_then(reqwest::blocking::Response::text)
            .map_err(|e| format!("GET {admin}/metrics: {e}"))
    }
}

/// One kind of request the load benchmarks send (`wasmpaste-load`,
/// `wasmpaste-request`): each against a 1 KiB paste or a short URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    ReadRaw,
    ReadMeta,
    Redirect,
}

impl Op {
    pub const ALL: [Self; 4] = [Self::Create, Self::ReadRaw, Self::ReadMeta, Self::Redirect];

    pub fn name(self) -> &'static str {
        match self {
            Self::Create => "create 1 KiB paste",
            Self::ReadRaw => "read raw",
            Self::ReadMeta => "read metadata",
            Self::Redirect => "short-URL redirect",
        }
    }

    /// Its name in a list of operations (`LOAD_OPS`, `REQUEST_OPS`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::ReadRaw => "raw",
            Self::ReadMeta => "meta",
            Self::Redirect => "redirect",
        }
    }

    /// The operations the environment variable `var` names (comma-separated
    /// keys), else all of them.
    pub fn selected(var: &str) -> Result<Vec<Self>, String> {
        let Ok(list) = std::env::var(var) else {
            return Ok(Self::ALL.to_vec());
        };
        list.split(',')
            .map(|key| {
                Self::ALL
                    .into_iter()
                    .find(|op| op.key() == key.trim())
                    .ok_or_else(|| {
                        format!("{var}: unknown operation {key:?} (create, raw, meta, redirect)")
                    })
            })
            .collect()
    }
}

/// A client with one keep-alive connection that does not follow redirects.
pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()
        .unwrap_or_else(|_| Client::new())
}

/// Sends `request` and returns the `id` of the JSON answer (a created
/// paste or short URL).
pub fn post_for_id(request: RequestBuilder) -> Result<String, String> {
    let resp = request.send().map_err(|e| e.to_string())?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {v}"));
    }
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no id in {v}"))
}

/// A body of exactly `len` bytes that no other (`worker`, `n`) pair gets.
pub fn unique_body(worker: usize, n: u64, len: usize) -> Vec<u8> {
    let mut body = format!("{worker}-{n}-").into_bytes();
    body.resize(len.max(body.len()), b'x');
    body
}

/// The outcome of one cell.
pub struct Sample {
    /// Latencies of the answered requests, in µs, sorted.
    latencies: Vec<u32>,
    seconds: f64,
    /// Requests answered with a 4xx or 5xx status, by status.
    failed: BTreeMap<u16, u64>,
    /// Requests without an answer (connection or body errors).
    errors: u64,
}

impl Sample {
    /// Answered requests per second (4xx and 5xx answers excluded).
    pub fn rps(&self) -> f64 {
        self.answered() / self.seconds
    }

    /// Answered requests (4xx and 5xx answers excluded).
    pub fn answered(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let n = self.latencies.len() as f64;
        n
    }

    /// The `p` quantile (0 to 1) of the latencies, in ms.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies
            .get(i)
            .map_or(0.0, |&us| f64::from(us) / 1000.0)
    }

    /// Failed requests in words (`3 x HTTP 503, 1 transport error`), if any.
    pub fn failures(&self) -> Option<String> {
        let mut out = String::new();
        for (status, n) in &self.failed {
            let _ = write!(out, "{}{n} x HTTP {status}", sep(&out));
        }
        if self.errors > 0 {
            let _ = write!(out, "{}{} transport errors", sep(&out), self.errors);
        }
        (!out.is_empty()).then_some(out)
    }

    /// The measured columns of a table row, after those naming the cell:
    /// see [`COLUMNS`].
    pub fn columns(&self, rss_mib: f64) -> String {
        format!(
            "{:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.1}",
            self.rps(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
            rss_mib
        )
    }
}

/// The header of [`Sample::columns`].
pub const COLUMNS: &str = "     req/s    p50 ms    p99 ms  p99.9 ms   RSS MiB";

fn sep(s: &str) -> &'static str {
    if s.is_empty() { "" } else { ", " }
}

/// Sends requests from `connections` threads for `seconds`, each thread on
/// its own keep-alive connection. `request(client, worker, n)` builds the
/// `n`th request of thread `worker`. Redirects count as answers.
pub fn run<F>(connections: usize, seconds: f64, request: F) -> Sample
where
    F: Fn(&Client, usize, u64) -> RequestBuilder + Sync,
{
    let stop = AtomicBool::new(false);
    let results: Vec<(Vec<u32>, BTreeMap<u16, u64>, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|worker| {
                let (stop, request) = (&stop, &request);
                scope.spawn(move || {
                    let client = client();
                    let (mut latencies, mut failed, mut errors) = (Vec::new(), BTreeMap::new(), 0);
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let req = request(&client, worker, n);
                        n += 1;
                        let started = Instant::now();
                        match send(req) {
                            Ok(status) if status < 400 => {
                                let micros = started.elapsed().as_micros();
                                latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                            }
                            Ok(status) => *failed.entry(status).or_insert(0) += 1,
                            Err(_) => errors += 1,
                        }
                    }
                    (latencies, failed, errors)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut sample = Sample {
        latencies: Vec::new(),
        seconds,
        failed: BTreeMap::new(),
        errors: 0,
    };
    for (latencies, failed, errors) in results {
        sample.latencies.extend(latencies);
        for (status, n) in failed {
            *sample.failed.entry(status).or_insert(0) += n;
        }
        sample.errors += errors;
    }
    sample.latencies.sort_unstable();
    sample
}

/// Sends `req` and reads the whole answer; its status.
fn send(req: RequestBuilder) -> reqwest::Result<u16> {
    let resp = req.send()?;
    let status = resp.status().as_u16();
    resp.bytes()?;
    Ok(status)
}
