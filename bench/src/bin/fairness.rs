//! `wasmpaste-fairness`: light reads alone and while CPU-heavy requests run,
//! for the release `wasmpaste` host (one tenant, then two tenants behind path
//! prefixes) and for wastebin (the native peer, from `../shared/tools`), in
//! one run, and issue 25's targets checked against what was measured.
//!
//!   cargo build --release && cargo run --release -p wasmpaste-bench --bin wasmpaste-fairness
//!
//! The heavy requests are creates of password-protected pastes (PBKDF2,
//! 600,000 rounds) on our host and password-encrypted pastes (argon2) on
//! wastebin. Abuse controls are off. Options (environment): LOAD_SECONDS
//! (per cell, default 10), WASMPASTE_BIN (default: `wasmpaste` beside this
//! binary), WASTEBIN_BIN (default: `wastebin` on PATH; without it the
//! wastebin rows are skipped with a note, and the run fails under CI=true).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};
use wasmpaste_loadgen::{Sample, Scratch, Server, client, exit, post_for_id, run, sibling_bin};

/// Connections reading a small paste.
const READERS: usize = 8;
/// Clients creating password-protected pastes next to one tenant's readers.
const HEAVY_CLIENTS: usize = 4;
/// Connections of the noisy tenant in the two-tenant cells.
const NOISY_CLIENTS: usize = 32;
/// The paste every reader reads (12 bytes, as in issue 25).
const PASTE: &str = "hello, world";

fn main() -> ExitCode {
    exit(bench())
}

/// A server under test and how to talk to it.
trait Peer {
    /// The URL of a small paste to read, created now.
    fn fixture(&self, base: &str) -> Result<String, String>;
    /// The `n`th heavy request of client `worker` against `base`.
    fn heavy(&self, client: &Client, base: &str, worker: usize, n: u64) -> RequestBuilder;
}

struct Ours;

impl Peer for Ours {
    fn fixture(&self, base: &str) -> Result<String, String> {
        let id = post_for_id(client().post(format!("{base}/")).body(PASTE))?;
        Ok(format!("{base}/{id}/raw"))
    }

    fn heavy(&self, client: &Client, base: &str, worker: usize, n: u64) -> RequestBuilder {
        client
            .post(format!("{base}/"))
            .header("x-paste-password", "correct horse battery staple")
            .body(format!("secret {worker}-{n}"))
    }
}

struct Wastebin;

impl Peer for Wastebin {
    fn fixture(&self, base: &str) -> Result<String, String> {
        let resp = client()
            .post(format!("{base}/"))
            .json(&serde_json::json!({ "text": PASTE }))
            .send()
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value = resp.json().map_err(|e| e.to_string())?;
        let path = v["path"]
            .as_str()
            .ok_or_else(|| format!("no path in {v}"))?;
        Ok(format!("{base}/raw{path}"))
    }

    fn heavy(&self, client: &Client, base: &str, worker: usize, n: u64) -> RequestBuilder {
        client.post(format!("{base}/")).json(&serde_json::json!({
            "text": format!("secret {worker}-{n}"),
            "password": "correct horse battery staple",
        }))
    }
}

/// Light reads alone, then the same reads while `heavy_clients` send heavy
/// requests to `heavy_base`: (alone, under load, heavy requests answered).
fn measure(
    peer: &(dyn Peer + Sync),
    read_url: &str,
    heavy_base: &str,
    heavy_clients: usize,
    seconds: f64,
) -> (Sample, Sample, Heavy) {
    let alone = run(READERS, seconds, |c, _, _| c.get(read_url));
    let heavy = Heavy::default();
    let loaded = std::thread::scope(|scope| {
        let stop = &heavy.stop;
        let heavy = &heavy;
        for worker in 0..heavy_clients {
            scope.spawn(move || {
                let client = client();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = peer.heavy(&client, heavy_base, worker, n).send();
                    n += 1;
                    match answer.map(|r| r.status().as_u16()) {
                        Ok(s) if s < 400 => heavy.done(started.elapsed()),
                        _ => {
                            heavy.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        // Let every heavy client have a request in flight first.
        std::thread::sleep(Duration::from_millis(300));
        heavy.counting.store(true, Ordering::Relaxed);
        let sample = run(READERS, seconds, |c, _, _| c.get(read_url));
        heavy.counting.store(false, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        sample
    });
    (alone, loaded, heavy)
}

/// What the heavy clients got done.
#[derive(Default)]
struct Heavy {
    stop: AtomicBool,
    /// While the readers measure: only completions meanwhile count.
    counting: AtomicBool,
    /// Heavy requests answered while the readers measured.
    completed: AtomicU64,
    failed: AtomicU64,
    /// The slowest completed heavy request, in ms.
    slowest_ms: AtomicU64,
}

impl Heavy {
    fn done(&self, took: Duration) {
        if self.counting.load(Ordering::Relaxed) {
            self.completed.fetch_add(1, Ordering::Relaxed);
        }
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        self.slowest_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn describe(&self, seconds: f64) -> String {
        #[allow(clippy::cast_precision_loss)]
        let rate = self.completed.load(Ordering::Relaxed) as f64 / seconds;
        format!(
            "{rate:.1}/s done, slowest {} ms, {} failed",
            self.slowest_ms.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        )
    }
}

fn row(out: &mut String, system: &str, cell: &str, s: &Sample, note: &str) {
    let _ = writeln!(
        out,
        "{system:<11} {cell:<44} {:>9.0} {:>8.2} {:>8.2}  {note}",
        s.rps(),
        s.percentile_ms(0.50),
        s.percentile_ms(0.99),
    );
}

fn ours_command(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--listen", "127.0.0.1:0", "--no-cache"])
        .args(args)
        .env("WASMPASTE_POW_DIFFICULTY", "0")
        .env("WASMPASTE_RATE_MAX", "0")
        .env("WASMPASTE_DEDUP_MAX", "0")
        .current_dir(dir);
    cmd
}

fn wastebin_bin() -> Result<Option<PathBuf>, String> {
    let found = std::env::var_os("WASTEBIN_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join("wastebin"))
                    .find(|p| p.is_file())
            })
        });
    match found {
        Some(bin) => Ok(Some(bin)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            Err("wastebin not found under CI=true: eval \"$(../shared/tools/install)\"".into())
        }
        None => Ok(None),
    }
}

fn bench() -> Result<(), String> {
    let seconds = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let bin = sibling_bin("wasmpaste", "WASMPASTE_BIN")?;
    let wastebin = wastebin_bin()?;
    let scratch = Scratch::new("wasmpaste-fairness")?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "wasmpaste-fairness: {} s per cell, {READERS} reader connections, {} cores, server and \
         load generator sharing them",
        seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let _ = writeln!(
        out,
        "{:<11} {:<44} {:>9} {:>8} {:>8}  heavy requests",
        "system", "light reads of a 12-byte paste", "req/s", "p50 ms", "p99 ms"
    );

    // One tenant: reads while a few clients create password pastes.
    let dir = scratch.path.join("single");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let server = Server::start(
        ours_command(&bin, &dir, &["--db", "single.db"]),
        &dir.join("log"),
    )?;
    let read = Ours.fixture(&server.base)?;
    let (alone, single, heavy) = measure(&Ours, &read, &server.base, HEAVY_CLIENTS, seconds);
    drop(server);
    row(&mut out, "wasmpaste", "one tenant, alone", &alone, "");
    let cell = format!("one tenant, {HEAVY_CLIENTS} clients creating with passwords");
    row(
        &mut out,
        "wasmpaste",
        &cell,
        &single,
        &heavy.describe(seconds),
    );

    // Two tenants: the quiet one reads, the noisy one floods heavy creates.
    let dir = scratch.path.join("two");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("tenants.toml"),
        "[[tenant]]\nname = \"quiet\"\npath_prefix = \"/quiet\"\ndb = \"quiet.db\"\n\
         [[tenant]]\nname = \"noisy\"\npath_prefix = \"/noisy\"\ndb = \"noisy.db\"\n",
    )
    .map_err(|e| e.to_string())?;
    let server = Server::start(
        ours_command(&bin, &dir, &["--config", "tenants.toml"]),
        &dir.join("log"),
    )?;
    let quiet = format!("{}/quiet", server.base);
    let noisy = format!("{}/noisy", server.base);
    let read = Ours.fixture(&quiet)?;
    let (idle, contended, flood) = measure(&Ours, &read, &noisy, NOISY_CLIENTS, seconds);
    drop(server);
    row(
        &mut out,
        "wasmpaste",
        "two tenants, quiet one alone",
        &idle,
        "",
    );
    let cell = format!("two tenants, noisy one: {NOISY_CLIENTS} password creates");
    row(
        &mut out,
        "wasmpaste",
        &cell,
        &contended,
        &flood.describe(seconds),
    );

    // The native peer, the same single-tenant mix.
    let peer = match &wastebin {
        Some(bin) => {
            let dir = scratch.path.join("wastebin");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let (process, base) = start_wastebin(bin, &dir)?;
            let read = Wastebin.fixture(&base)?;
            let (alone, loaded, heavy) = measure(&Wastebin, &read, &base, HEAVY_CLIENTS, seconds);
            drop(process);
            row(&mut out, "wastebin", "one tenant, alone", &alone, "");
            let cell = format!("one tenant, {HEAVY_CLIENTS} clients creating with passwords");
            row(
                &mut out,
                "wastebin",
                &cell,
                &loaded,
                &heavy.describe(seconds),
            );
            Some(loaded)
        }
        None => {
            let _ = writeln!(
                out,
                "wastebin    (not found: set WASTEBIN_BIN or put it on PATH)"
            );
            None
        }
    };

    let _ = writeln!(out, "\ntargets (issue 25):");
    if let Some(peer) = &peer {
        check(
            &mut out,
            "one tenant under the heavy mix: light req/s >= wastebin's",
            single.rps() >= peer.rps(),
            format!("{:.0} vs {:.0}", single.rps(), peer.rps()),
        );
        check(
            &mut out,
            "one tenant under the heavy mix: light p99 <= wastebin's",
            single.percentile_ms(0.99) <= peer.percentile_ms(0.99),
            format!(
                "{:.2} ms vs {:.2} ms",
                single.percentile_ms(0.99),
                peer.percentile_ms(0.99)
            ),
        );
    }
    let kept = contended.rps() / idle.rps().max(1.0);
    check(
        &mut out,
        "two tenants: the quiet one keeps >= 40% of its idle req/s",
        kept >= 0.40,
        format!("{:.0}%", kept * 100.0),
    );
    let p99 = contended.percentile_ms(0.99) / idle.percentile_ms(0.99).max(0.001);
    check(
        &mut out,
        "two tenants: the quiet one's p99 within 5x its idle p99",
        p99 <= 5.0,
        format!("{p99:.1}x"),
    );
    check(
        &mut out,
        "two tenants: the noisy one still completes its work",
        flood.completed.load(Ordering::Relaxed) > 0 && flood.failed.load(Ordering::Relaxed) == 0,
        flood.describe(seconds),
    );
    print!("{out}");
    Ok(())
}

fn check(out: &mut String, what: &str, met: bool, measured: String) {
    let verdict = if met { "met" } else { "NOT met" };
    let _ = writeln!(out, "  {verdict:<8} {what}: {measured}");
}

/// Starts wastebin on a free port with its database in `dir`.
fn start_wastebin(bin: &Path, dir: &Path) -> Result<(WastebinProcess, String), String> {
    let port = free_port()?;
    let child = Command::new(bin)
        .env("WASTEBIN_DATABASE_PATH", dir.join("wb.db"))
        .env("WASTEBIN_ADDRESS_PORT", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let process = WastebinProcess(child);
    wait_listening(port)?;
    Ok((process, format!("http://127.0.0.1:{port}")))
}

/// A wastebin process, killed when dropped.
struct WastebinProcess(std::process::Child);

impl Drop for WastebinProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn wait_listening(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("wastebin did not listen on port {port}"))
}
