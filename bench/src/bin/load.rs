//! `wasmpaste-load`: load over loopback against the release `wasmpaste`
//! binary, the way clients meet it. For each operation and each number of
//! connections it prints requests/s, p50/p99/p99.9 latency and the server's
//! resident memory afterwards.
//!
//!   cargo build --release && cargo run --release -p wasmpaste-bench --bin wasmpaste-load
//!
//! Options (environment): LOAD_SECONDS (per cell, default 3), LOAD_CONNECTIONS
//! (default "1,16,64"), WASMPASTE_BIN (default: `wasmpaste` beside this binary).
//! LOAD_NATIVE=1 then runs the same cells against `wasmpaste-native` (the
//! guest's logic compiled natively behind the same hyper + tokio stack;
//! WASMPASTE_NATIVE_BIN, default beside this binary) with the same settings
//! and a fresh database, one server at a time, and prints wasm throughput as
//! a percentage of native next to issue 9's targets (80% reads, 70% creates).
//! LOAD_REUSE=N (with LOAD_NATIVE) adds a pass of the host with
//! `WASMPASTE_MAX_INSTANCE_REUSE=N` and its percentage in a second column.
//! LOAD_ROUNDS=N (default 1) repeats all passes N times, alternating the
//! servers, and compares each cell's median.
//! LOAD_BASELINE_BIN=FILE adds a pass of another host binary (say, the
//! previous build) and prints each cell's change against it: how a change is
//! measured before it is kept.
//! LOAD_PEER=1 adds a pass of wastebin (the fastest native pastebin we
//! compare with; WASTEBIN_BIN, else PATH: `eval "$(../shared/tools/install)"`)
//! with the same cells where it has them (create 1 KiB, raw read; metadata
//! is compared with its raw read, the lightest read it has), restarted for
//! each cell because it exits when a client disconnects mid-insert, and prints
//! wasmpaste's throughput against it.
//! LOAD_OPS=raw,meta runs only the named operations (create, raw, meta,
//! redirect; default all).
//! LOAD_PIN=1 runs every server on CPU 0 (`taskset -c 0`); run the load
//! generator on the other core: `taskset -c 1 wasmpaste-load`.
//! The machinery is shared with `wasmpaste-tenants-load` (src/loadgen.rs).

use std::path::Path;
use std::process::{Command, ExitCode};

use reqwest::blocking::{Client, RequestBuilder};
use wasmpaste_loadgen::{
    COLUMNS, Op, Options, Scratch, Server, client, post_for_id, run, sibling_bin,
};

/// Issue 9's floor for wasm throughput, as a percentage of native.
fn target_percent(op: Op) -> f64 {
    match op {
        Op::Create => 70.0,
        Op::ReadRaw | Op::ReadMeta | Op::Redirect => 80.0,
    }
}

/// What the requests read: one paste and one short URL.
struct Fixture {
    base: String,
    paste: String,
    short: String,
}

impl Fixture {
    fn new(base: &str) -> Result<Self, String> {
        let c = client();
        let paste = post_for_id(c.post(format!("{base}/")).body(vec![b'r'; 1024]))?;
        let short = post_for_id(
            c.post(format!("{base}/s"))
                .body("https://example.com/target"),
        )?;
        Ok(Self {
            base: base.to_owned(),
            paste,
            short,
        })
    }

    fn request(&self, op: Op, client: &Client) -> RequestBuilder {
        let (base, paste, short) = (&self.base, &self.paste, &self.short);
        match op {
            Op::Create => client.post(format!("{base}/")).body(vec![b'x'; 1024]),
            Op::ReadRaw => client.get(format!("{base}/{paste}/raw")),
            Op::ReadMeta => client.get(format!("{base}/{paste}")),
            Op::Redirect => client.get(format!("{base}/s/{short}")),
        }
    }
}

fn main() -> ExitCode {
    wasmpaste_loadgen::exit(load())
}

fn load() -> Result<(), String> {
    let opts = Options::from_env()?;
    let ops = Op::selected("LOAD_OPS")?;
    let pin = std::env::var("LOAD_PIN").is_ok_and(|v| !v.is_empty() && v != "0");
    let baseline = std::env::var_os("LOAD_BASELINE_BIN").map(std::path::PathBuf::from);
    let peer = if std::env::var("LOAD_PEER").is_ok_and(|v| !v.is_empty() && v != "0") {
        Some(
            wasmpaste_loadgen::spin_up::find_program("wastebin", "WASTEBIN_BIN").ok_or(
                "LOAD_PEER: no wastebin (set WASTEBIN_BIN or put it on PATH: eval \"$(../shared/tools/install)\")",
            )?,
        )
    } else {
        None
    };
    let native = std::env::var("LOAD_NATIVE").is_ok_and(|v| !v.is_empty() && v != "0");
    let native_bin = if native {
        Some(sibling_bin("wasmpaste-native", "WASMPASTE_NATIVE_BIN")?)
    } else {
        None
    };
    let reuse: Option<u32> = env_at_least("LOAD_REUSE", 2)?;
    let rounds: usize = env_at_least("LOAD_ROUNDS", 1)?.unwrap_or(1);
    let dir = Scratch::new("wasmpaste-load")?;
    let reuse_setting = reuse.map(|n| n.to_string());
    // Each round measures every server afresh, in turn, so a slow spell of
    // the machine hits all of them; the comparison takes each cell's median.
    let (mut wasm, mut reused, mut native) = (Vec::new(), Vec::new(), Vec::new());
    let (mut base, mut peers) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if rounds > 1 {
            println!("round {} of {rounds}", round + 1);
        }
        let at = |name: &str| dir.path.join(format!("{name}-{round}"));
        wasm.push(measure(&opts, &ops, &opts.bin, &at("wasm"), &[], pin)?);
        if let Some(bin) = &baseline {
            println!();
            base.push(measure(&opts, &ops, bin, &at("baseline"), &[], pin)?);
        }
        if let Some(bin) = &peer {
            println!();
            peers.push(measure_wastebin(&opts, &ops, bin, &at("wastebin"), pin)?);
        }
        let Some(bin) = &native_bin else {
            println!();
            continue;
        };
        if let Some(n) = &reuse_setting {
            println!();
            let env = [("WASMPASTE_MAX_INSTANCE_REUSE", n.as_str())];
            reused.push(measure(&opts, &ops, &opts.bin, &at("reuse"), &env, pin)?);
        }
        println!();
        native.push(measure(&opts, &ops, bin, &at("native"), &[], pin)?);
        println!();
    }
    if rounds > 1 && (native_bin.is_some() || baseline.is_some() || peer.is_some()) {
        println!("medians of {rounds} rounds");
    }
    if baseline.is_some() {
        versus(
            "baseline (LOAD_BASELINE_BIN)",
            &medians(&wasm),
            &medians(&base),
        );
    }
    if peer.is_some() {
        versus("wastebin (LOAD_PEER)", &medians(&wasm), &medians(&peers));
    }
    if native_bin.is_some() {
        let reused = reuse_setting.as_deref().map(|n| (n, medians(&reused)));
        compare(
            &medians(&wasm),
            &medians(&native),
            reused.as_ref().map(|(n, c)| (*n, c.as_slice())),
        );
    }
    Ok(())
}

/// The whole number in `var`, if set; an error when it is not one or is
/// below `min`.
fn env_at_least<T>(var: &str, min: T) -> Result<Option<T>, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|n| *n >= min)
            .map(Some)
            .ok_or_else(|| format!("{var}={v}: want a whole number from {min}")),
        Err(_) => Ok(None),
    }
}

/// Each cell's median requests/s over the rounds (all rounds run the same
/// cells in the same order).
fn medians(rounds: &[Vec<Cell>]) -> Vec<Cell> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, &(op, conns, _))| {
            let mut rps: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.2)
                .collect();
            rps.sort_by(f64::total_cmp);
            let mid = rps.len() / 2;
            let median = if rps.len().is_multiple_of(2) {
                (rps[mid - 1] + rps[mid]) / 2.0
            } else {
                rps[mid]
            };
            (op, conns, median)
        })
        .collect()
}

/// Requests/s of one cell.
type Cell = (Op, usize, f64);

/// Starts `bin` with abuse controls off, `env` and a fresh database in `dir`,
/// runs every cell against it, prints the table and stops it.
fn measure(
    opts: &Options,
    ops: &[Op],
    bin: &Path,
    dir: &Path,
    env: &[(&str, &str)],
    pin: bool,
) -> Result<Vec<Cell>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Abuse controls off: the load would trip them.
    let mut command = pinned(bin, pin);
    command
        .env("WASMPASTE_LISTEN", "127.0.0.1:0")
        .env("WASMPASTE_DB", dir.join("load.db"))
        .env("WASMPASTE_CACHE_DIR", dir.join("cache"))
        .env("WASMPASTE_POW_DIFFICULTY", "0")
        .env("WASMPASTE_RATE_MAX", "0")
        .env("WASMPASTE_DEDUP_MAX", "0")
        .envs(env.iter().copied());
    let server = Server::start(command, &dir.join("server.log"))?;
    let fixture = Fixture::new(&server.base).map_err(|e| format!("setting up: {e}"))?;
    let settings: String = env.iter().map(|(k, v)| format!(", {k}={v}")).collect();
    println!(
        "{}{settings}, idle RSS {:.1} MiB",
        opts.banner_for("wasmpaste-load", bin),
        server.rss_mib()
    );
    println!("{:<20} {:>5} {COLUMNS}", "operation", "conns");
    let mut cells = Vec::new();
    for &op in ops {
        for &c in &opts.connections {
            let sample = run(c, opts.seconds, |client, _, _| fixture.request(op, client));
            println!(
                "{:<20} {:>5} {}",
                op.name(),
                c,
                sample.columns(server.rss_mib())
            );
            if let Some(failures) = sample.failures() {
                println!("  failed: {failures}");
            }
            cells.push((op, c, sample.rps()));
        }
    }
    Ok(cells)
}

/// `bin` as a command, on CPU 0 when `pin`.
fn pinned(bin: &Path, pin: bool) -> Command {
    if pin {
        let mut command = Command::new("taskset");
        command.args(["-c", "0"]).arg(bin);
        command
    } else {
        Command::new(bin)
    }
}

/// wastebin: started afresh for each cell (it exits when a client
/// disconnects mid-insert, as every load generator does at the end of a
/// cell), on a fresh database with one 1 KiB paste to read.
struct Wastebin {
    child: std::process::Child,
    base: String,
    paste: String,
}

impl Drop for Wastebin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Wastebin {
    fn start(bin: &Path, dir: &Path, pin: bool) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let log = std::fs::File::create(dir.join("wastebin.log")).map_err(|e| e.to_string())?;
        let child = pinned(bin, pin)
            .env("WASTEBIN_DATABASE_PATH", dir.join("wastebin.db"))
            .env("WASTEBIN_ADDRESS_PORT", format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let mut server = Self {
            child,
            base,
            paste: String::new(),
        };
        let c = client();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let created = loop {
            let sent = c
                .post(format!("{}/", server.base))
                .json(&serde_json::json!({ "text": "r".repeat(1024) }))
                .send();
            match sent.and_then(|r| r.json::<serde_json::Value>()) {
                Ok(v) => break v,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(format!("wastebin did not answer: {e}")),
            }
        };
        server.paste = created["path"]
            .as_str()
            .map(|p| p.trim_start_matches('/').to_owned())
            .ok_or_else(|| format!("no path in wastebin's answer {created}"))?;
        Ok(server)
    }

    /// `op` against wastebin; [`measure_wastebin`] never asks for a
    /// redirect (it has no short URLs). It has no metadata endpoint either:
    /// its raw read, the lightest read it has, stands in.
    fn request(&self, op: Op, client: &Client) -> RequestBuilder {
        let (base, paste) = (&self.base, &self.paste);
        match op {
            Op::Create => client
                .post(format!("{base}/"))
                .json(&serde_json::json!({ "text": "x".repeat(1024) })),
            Op::ReadRaw | Op::ReadMeta | Op::Redirect => client.get(format!("{base}/raw/{paste}")),
        }
    }
}

/// The cells wastebin has, each against a fresh wastebin.
fn measure_wastebin(
    opts: &Options,
    ops: &[Op],
    bin: &Path,
    dir: &Path,
    pin: bool,
) -> Result<Vec<Cell>, String> {
    println!(
        "{} (metadata: its raw read)",
        opts.banner_for("wasmpaste-load", bin)
    );
    println!("{:<20} {:>5} {COLUMNS}", "operation", "conns");
    let mut cells = Vec::new();
    let mut n = 0;
    for &op in ops {
        for &c in &opts.connections {
            if matches!(op, Op::Redirect) {
                // No such cell: `versus` skips it.
                cells.push((op, c, 0.0));
                continue;
            }
            n += 1;
            let server = Wastebin::start(bin, &dir.join(format!("cell-{n}")), pin)?;
            let sample = run(c, opts.seconds, |client, _, _| server.request(op, client));
            let rss = rss_mib(server.child.id());
            println!("{:<20} {:>5} {}", op.name(), c, sample.columns(rss));
            if let Some(failures) = sample.failures() {
                println!("  failed: {failures}");
            }
            cells.push((op, c, sample.rps()));
        }
    }
    Ok(cells)
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// wasmpaste's medians against another pass's, per cell (cells the other
/// has none of are skipped).
fn versus(other: &str, wasm: &[Cell], theirs: &[Cell]) {
    println!("wasmpaste versus {other}");
    println!(
        "{:<20} {:>5} {:>12} {:>12} {:>8}",
        "operation", "conns", "theirs req/s", "ours req/s", "ours/x"
    );
    for (&(op, c, ours), &(_, _, other)) in wasm.iter().zip(theirs) {
        if other <= 0.0 {
            continue;
        }
        println!(
            "{:<20} {:>5} {:>12.0} {:>12.0} {:>7.2}x",
            op.name(),
            c,
            other,
            ours,
            ours / other
        );
    }
}

/// Issue 9's comparison: wasm throughput as a share of native, per cell;
/// `reused` adds the host with instance reuse (its setting and its cells).
fn compare(wasm: &[Cell], native: &[Cell], reused: Option<(&str, &[Cell])>) {
    println!("wasm (wasmpaste) versus native (wasmpaste-native), same HTTP stack");
    let share = |w: f64, n: f64| if n > 0.0 { 100.0 * w / n } else { 0.0 };
    let met = |s: f64, target: f64| if s >= target { "yes" } else { "no" };
    print!(
        "{:<20} {:>5} {:>12} {:>10} {:>7} {:>7}  met",
        "operation", "conns", "native req/s", "wasm req/s", "wasm %", "target"
    );
    if let Some((n, _)) = reused {
        let head = format!("reuse {n}");
        print!(" {head:>12} {:>8}  met", "reuse %");
    }
    println!();
    for (i, (&(op, c, w), &(_, _, n))) in wasm.iter().zip(native).enumerate() {
        let target = target_percent(op);
        let s = share(w, n);
        print!(
            "{:<20} {:>5} {:>12.0} {:>10.0} {:>6.1}% {:>6.0}%  {:<3}",
            op.name(),
            c,
            n,
            w,
            s,
            target,
            met(s, target)
        );
        if let Some(&(_, _, r)) = reused.and_then(|(_, cells)| cells.get(i)) {
            let s = share(r, n);
            print!(" {r:>12.0} {s:>7.1}%  {}", met(s, target));
        }
        println!();
    }
}
