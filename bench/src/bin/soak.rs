//! `wasmpaste-soak`: a bounded memory-leak check, run by CI (`.ci/run`). It
//! starts the host (release build) with three tenants, one of them reusing
//! its instances for the whole run, and drives them with mixed traffic
//! (creates, raw and metadata reads, burn-after-read, passwords, short URLs,
//! all behind proof-of-work) from a few client threads, in phases. Between
//! phases the load stops and it reads the host's resident memory (`VmRSS`)
//! and the largest linear memory of the reusing tenant's instances
//! (`wasmpaste_instance_memory_bytes`), and prints the curve.
//!
//! It fails (exit 1) when, after the warm-up, the host's RSS rose by more
//! than `SOAK_RSS_BOUND_MIB` over the second half of the phases, or a reused
//! instance's memory rose by more than `SOAK_INSTANCE_BOUND_MIB` over all of
//! them, or any request failed. Memory that settles (allocator arenas,
//! SQLite's page cache as the databases grow, pool slots first touched)
//! rises early and then stops; a leak keeps rising in proportion to the
//! requests served.
//!
//!   cargo build --release -p wasmpaste-host && cargo run -p wasmpaste-bench --bin wasmpaste-soak
//!
//! Options (environment): SOAK_WARMUP (seconds, default 10), SOAK_PHASES
//! (default 6), SOAK_PHASE (seconds per phase, default 8), SOAK_WORKERS
//! (client threads, default 4), SOAK_RSS_BOUND_MIB (default 8),
//! SOAK_INSTANCE_BOUND_MIB (default 1), WASMPASTE_BIN (default: `wasmpaste`
//! in target/release, else beside this binary).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};
use wasmpaste_guest::domain::pow;
use wasmpaste_loadgen::{Scratch, Server, client, exit, sibling_bin};

/// Tenants, each under its own path prefix; the first reuses its instances.
const TENANTS: [&str; 3] = ["reuse", "fresh", "third"];
/// Proof-of-work difficulty: on, as in production, and cheap to solve.
const POW_BITS: u32 = 8;
/// Anti-flood raises the difficulty under this load; this caps it so that
/// solving stays cheap while the code path still runs.
const ANTIFLOOD_MAX_BITS: u32 = 12;
const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    exit(soak())
}

fn setting(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The release host when it is built, else the one beside this binary.
fn host_bin() -> Result<PathBuf, String> {
    let release = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/wasmpaste");
    if std::env::var_os("WASMPASTE_BIN").is_none() && release.exists() {
        return Ok(release);
    }
    sibling_bin("wasmpaste", "WASMPASTE_BIN")
}

/// What the clients did.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    failures: AtomicU64,
    /// The first failure, for the report.
    first_failure: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn check(
        &self,
        what: &str,
        resp: reqwest::Result<reqwest::blocking::Response>,
        want: u16,
    ) -> Option<reqwest::blocking::Response> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match resp {
            Ok(r) if r.status().as_u16() == want => Some(r),
            Ok(r) => {
                self.fail(format!("{what}: HTTP {} (expected {want})", r.status()));
                None
            }
            Err(e) => {
                self.fail(format!("{what}: {e}"));
                None
            }
        }
    }

    fn fail(&self, message: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_failure.lock() {
            first.get_or_insert(message);
        }
    }
}

/// One client's view of one tenant.
struct Tenant<'a> {
    client: &'a Client,
    base: String,
    tally: &'a Tally,
}

impl Tenant<'_> {
    /// A request behind a solved proof-of-work challenge.
    fn with_pow(&self, req: RequestBuilder) -> Option<RequestBuilder> {
        let resp = self.tally.check(
            "challenge",
            self.client.get(format!("{}/challenge", self.base)).send(),
            200,
        )?;
        let c: serde_json::Value = resp.json().ok()?;
        let nonce = c["nonce"].as_str()?;
        let difficulty = u32::try_from(c["difficulty"].as_u64()?).ok()?;
        let solution = pow::solve(nonce, difficulty);
        Some(
            req.header("x-pow-token", c["token"].as_str()?)
                .header("x-pow-solution", solution.to_string()),
        )
    }

    /// Creates a paste; its id.
    fn create(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> Option<String> {
        let mut req = self.client.post(format!("{}/", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .tally
            .check("create", self.with_pow(req)?.send(), 201)?;
        let v: serde_json::Value = resp.json().ok()?;
        v["id"].as_str().map(str::to_owned)
    }

    fn get(&self, what: &str, path: &str, headers: &[(&str, &str)], want: u16) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(resp) = self.tally.check(what, req.send(), want) {
            let _ = resp.bytes();
        }
    }

    /// The `n`th operation of a client: mostly ordinary pastes, some
    /// burn-after-read, short URLs, and now and then a password (PBKDF2
    /// costs a quarter of a second).
    fn operate(&self, worker: usize, n: u64) {
        let body = || {
            let mut b = format!("soak {worker}-{n} ").into_bytes();
            b.resize(1024, b'x');
            b
        };
        match n % 50 {
            0 => {
                let pw = [("x-paste-password", "soak password")];
                if let Some(id) = self.create(body(), &pw) {
                    self.get("read with password", &format!("/{id}/raw"), &pw, 200);
                }
            }
            1..=5 => {
                let burn = [("x-burn-after-read", "true")];
                if let Some(id) = self.create(body(), &burn) {
                    self.get("burn", &format!("/{id}/raw"), &[], 200);
                    self.get("burnt", &format!("/{id}/raw"), &[], 404);
                }
            }
            6..=15 => {
                let target = format!("https://example.com/soak/{worker}/{n}");
                let req = self.client.post(format!("{}/s", self.base)).body(target);
                let created = self
                    .with_pow(req)
                    .and_then(|r| self.tally.check("shorten", r.send(), 201));
                if let Some(id) = created
                    .and_then(|r| r.json::<serde_json::Value>().ok())
                    .and_then(|v| v["id"].as_str().map(str::to_owned))
                {
                    self.get("redirect", &format!("/s/{id}"), &[], 302);
                    self.get("short URL info", &format!("/s/{id}/info"), &[], 200);
                }
            }
            _ => {
                if let Some(id) = self.create(body(), &[]) {
                    self.get("read raw", &format!("/{id}/raw"), &[], 200);
                    self.get("read metadata", &format!("/{id}"), &[], 200);
                }
            }
        }
    }
}

/// Drives every tenant from `workers` threads for `seconds`.
fn drive(base: &str, workers: usize, seconds: f64, tally: &Tally, offset: u64) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let stop = &stop;
            scope.spawn(move || {
                let client = client();
                let mut n = offset;
                while !stop.load(Ordering::Relaxed) {
                    let tenant = TENANTS[usize::try_from(n).unwrap_or(0) % TENANTS.len()];
                    let t = Tenant {
                        client: &client,
                        base: format!("{base}/{tenant}"),
                        tally,
                    };
                    t.operate(worker, n);
                    n += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    });
}

/// One point of the curve.
struct Sample {
    seconds: f64,
    requests: u64,
    rss_mib: f64,
    instance_mib: f64,
}

fn sample(server: &Server, started: Instant, tally: &Tally) -> Result<Sample, String> {
    let metrics = server.metrics()?;
    let series = format!(
        "wasmpaste_instance_memory_bytes{{tenant=\"{}\"}} ",
        TENANTS[0]
    );
    let instance = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no {series}in the metrics"))?;
    Ok(Sample {
        seconds: started.elapsed().as_secs_f64(),
        requests: tally.requests.load(Ordering::Relaxed),
        rss_mib: server.rss_mib(),
        instance_mib: instance / MIB,
    })
}

fn soak() -> Result<(), String> {
    let warmup = setting("SOAK_WARMUP", 10.0);
    let phases = setting("SOAK_PHASES", 6.0).max(2.0);
    let phase = setting("SOAK_PHASE", 8.0);
    let workers = setting("SOAK_WORKERS", 4.0).max(1.0);
    let rss_bound = setting("SOAK_RSS_BOUND_MIB", 8.0);
    let instance_bound = setting("SOAK_INSTANCE_BOUND_MIB", 1.0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (phases, workers) = (phases as usize, workers as usize);

    let bin = host_bin()?;
    let scratch = Scratch::new("wasmpaste-soak")?;
    let mut tenants = String::new();
    for (i, name) in TENANTS.iter().enumerate() {
        let limits = if i == 0 {
            // Instances live the whole run: a guest leak accumulates.
            "limits = { max_instance_reuse = 1000000, idle_instance_timeout_secs = 86400 }\n"
        } else {
            ""
        };
        let _ = write!(
            tenants,
            "[[tenant]]\nname = \"{name}\"\npath_prefix = \"/{name}\"\ndb = \"{name}.db\"\n\
             variables = {{ pow_difficulty = {POW_BITS}, antiflood_max = {ANTIFLOOD_MAX_BITS}, \
             rate_max = 0, dedup_max = 0 }}\n{limits}"
        );
    }
    let config = scratch.path.join("tenants.toml");
    std::fs::write(&config, tenants).map_err(|e| format!("cannot write the tenants file: {e}"))?;
    let mut command = Command::new(&bin);
    command.arg("--config").arg(&config).args([
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let server = Server::start(command, &scratch.path.join("host.log"))?;
    println!(
        "wasmpaste-soak: {} with {} tenants ({} reusing instances), {workers} clients, \
         proof-of-work {POW_BITS} to {ANTIFLOOD_MAX_BITS} bits; warm-up {warmup} s, {phases} phases of {phase} s",
        bin.display(),
        TENANTS.len(),
        TENANTS[0]
    );
    println!("phase   seconds  requests   host RSS MiB   reused instance memory MiB");

    let tally = Tally::default();
    let started = Instant::now();
    drive(&server.base, workers, warmup, &tally, 0);
    let mut curve = vec![sample(&server, started, &tally)?];
    let print = |label: &str, s: &Sample| {
        println!(
            "{label:<7} {:>7.1} {:>9} {:>14.1} {:>28.2}",
            s.seconds, s.requests, s.rss_mib, s.instance_mib
        );
    };
    print("warm-up", &curve[0]);
    for p in 1..=phases {
        drive(&server.base, workers, phase, &tally, (p as u64) << 32);
        let s = sample(&server, started, &tally)?;
        print(&p.to_string(), &s);
        curve.push(s);
    }

    let failures = tally.failures.load(Ordering::Relaxed);
    let first = curve.first().ok_or("no samples")?;
    let last = curve.last().ok_or("no samples")?;
    let middle = &curve[curve.len() / 2];
    let late_rise = last.rss_mib - middle.rss_mib;
    let instance_rise = last.instance_mib - first.instance_mib;
    println!(
        "host RSS: {:+.1} MiB over the second half (bound {rss_bound} MiB), {:+.1} MiB after \
         warm-up; reused instance memory: {instance_rise:+.2} MiB after warm-up (bound \
         {instance_bound} MiB); {} requests, {failures} failed",
        late_rise,
        last.rss_mib - first.rss_mib,
        last.requests
    );
    let mut problems = Vec::new();
    if late_rise > rss_bound {
        problems.push(format!(
            "the host's RSS kept rising: {late_rise:+.1} MiB over the second half of the phases"
        ));
    }
    if instance_rise > instance_bound {
        problems.push(format!(
            "a reused instance's memory kept rising: {instance_rise:+.2} MiB after warm-up"
        ));
    }
    if failures > 0 {
        let first = tally
            .first_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        problems.push(format!("{failures} requests failed, the first: {first}"));
    }
    if problems.is_empty() {
        println!("ok: no leak");
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
