//! `wasmpaste-spin-vs-host`: the same component on Fermyon Spin (`spin up`)
//! and on our host, side by side in one run: creates of 1 KiB pastes, raw
//! reads and metadata reads of a 1 KiB paste, at 16 connections.
//!
//!   cargo build --release && cargo run --release -p wasmpaste-bench --bin wasmpaste-spin-vs-host
//!
//! Both serve the `.wasm` that the release host embeds (Spin through a copy
//! of spin.toml whose `source` names it: bench/src/spin_up.rs), with the
//! abuse controls off and their default database (a SQLite file). Options
//! (environment): LOAD_SECONDS (per cell, default 5), LOAD_CONNECTIONS
//! (default 16), WASMPASTE_BIN (default: `wasmpaste` beside this binary),
//! WASMPASTE_WASM (default: the component `host/build.rs` built), SPIN_BIN
//! (default: `spin` on PATH; without one the Spin rows are skipped with a
//! note, and the run fails under CI=true).

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};

use wasmpaste_loadgen::spin_up;
use wasmpaste_loadgen::{
    COLUMNS, Options, Sample, Scratch, Server, client, exit, post_for_id, run, unique_body,
};

/// Size of every paste, created and read.
const PASTE_BYTES: usize = 1024;
/// The abuse controls, off for both hosts (guest variables).
const ABUSE_OFF: [(&str, &str); 3] = [
    ("POW_DIFFICULTY", "0"),
    ("RATE_MAX", "0"),
    ("DEDUP_MAX", "0"),
];

fn main() -> ExitCode {
    exit(bench())
}

fn bench() -> Result<(), String> {
    let mut options = Options::from_env()?;
    if std::env::var_os("LOAD_SECONDS").is_none() {
        options.seconds = 5.0;
    }
    let connections = wasmpaste_loadgen::list_from_env("LOAD_CONNECTIONS", "16");
    let wasm = component()?;
    let scratch = Scratch::new("wasmpaste-spin-vs-host")?;
    println!("{}", options.banner("wasmpaste-spin-vs-host"));
    println!("component: {}", wasm.display());
    println!(
        "{:<10} {:<14} {:>5} {COLUMNS}",
        "host", "operation", "conns"
    );

    let ours_dir = scratch.path.join("ours");
    std::fs::create_dir_all(&ours_dir).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&options.bin);
    cmd.args(["--listen", "127.0.0.1:0", "--component"])
        .arg(&wasm)
        .env("WASMPASTE_DB", ours_dir.join("wasmpaste.db"))
        .env("WASMPASTE_CACHE_DIR", ours_dir.join("cache"));
    for (name, value) in ABUSE_OFF {
        cmd.env(format!("WASMPASTE_{name}"), value);
    }
    let ours = Server::start(cmd, &ours_dir.join("host.log"))?;
    let pid = ours.pid();
    measure("wasmpaste", &ours.base, pid, &connections, options.seconds)?;
    drop(ours);

    let Some(spin) = spin_up::find_spin() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err("spin not found under CI=true: eval \"$(../shared/tools/install)\"".into());
        }
        println!(
            "spin: not found (SPIN_BIN or PATH; eval \"$(../shared/tools/install)\"): rows skipped"
        );
        return Ok(());
    };
    let spin = SpinServer::start(&spin, &wasm, &scratch.path.join("spin"))?;
    measure(
        "spin",
        &spin.base,
        spin.child.id(),
        &connections,
        options.seconds,
    )?;
    Ok(())
}

/// Runs the three operations at each number of connections and prints a row each.
fn measure(
    host: &str,
    base: &str,
    pid: u32,
    connections: &[usize],
    seconds: f64,
) -> Result<(), String> {
    let paste = post_for_id(
        client()
            .post(format!("{base}/"))
            .body(vec![b'r'; PASTE_BYTES]),
    )?;
    let raw = format!("{base}/{paste}/raw");
    let meta = format!("{base}/{paste}");
    for &conns in connections {
        let create = run(conns, seconds, |c, worker, n| {
            c.post(format!("{base}/"))
                .body(unique_body(worker, n, PASTE_BYTES))
        });
        row(host, "create 1 KiB", conns, &create, pid);
        let read = run(conns, seconds, |c, _, _| c.get(&raw));
        row(host, "raw read", conns, &read, pid);
        let metadata = run(conns, seconds, |c, _, _| c.get(&meta));
        row(host, "metadata", conns, &metadata, pid);
    }
    Ok(())
}

fn row(host: &str, operation: &str, conns: usize, sample: &Sample, pid: u32) {
    let mut line = format!(
        "{host:<10} {operation:<14} {conns:>5} {}",
        sample.columns(rss_mib(pid))
    );
    if let Some(failures) = sample.failures() {
        let _ = write!(line, "  ({failures})");
    }
    println!("{line}");
}

/// Resident memory of a process and its children (Spin serves from a
/// child of `spin up`), in MiB.
fn rss_mib(pid: u32) -> f64 {
    let rss = |pid: &str| -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let kib = rss(&pid.to_string()) + children.split_whitespace().map(rss).sum::<f64>();
    kib / 1024.0
}

/// The component: WASMPASTE_WASM, else the one `host/build.rs` built into
/// `target/nested` (the release host embeds those bytes).
fn component() -> Result<PathBuf, String> {
    let path = std::env::var_os("WASMPASTE_WASM").map_or_else(
        || {
            let exe = std::env::current_exe().unwrap_or_default();
            // target/release/<this> -> target/nested/...
            exe.parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("target"))
                .join("nested/wasmpaste-guest/wasm32-wasip2/release/wasmpaste_guest.wasm")
        },
        PathBuf::from,
    );
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found; run `cargo build --release` first (or set WASMPASTE_WASM)",
            path.display()
        ))
    }
}

/// `spin up` serving the component, stopped (with its child) when dropped.
struct SpinServer {
    child: Child,
    base: String,
}

impl SpinServer {
    fn start(spin: &Path, wasm: &Path, dir: &Path) -> Result<Self, String> {
        let app = dir.join("app");
        std::fs::create_dir_all(&app).map_err(|e| e.to_string())?;
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let manifest = std::fs::read_to_string(workspace.join("spin.toml"))
            .map_err(|e| format!("spin.toml: {e}"))?;
        std::fs::write(
            app.join("spin.toml"),
            spin_up::with_source(&manifest, wasm)?,
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("spin.log")).map_err(|e| e.to_string())?;
        let mut cmd = spin_up::up_command(spin, &app.join("spin.toml"), &dir.join("state"), &[]);
        cmd.stderr(log);
        for (name, value) in ABUSE_OFF {
            cmd.env(format!("SPIN_VARIABLE_{name}"), value);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", spin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| spin_up::serving_addr(&l));
        let Some(addr) = addr else {
            spin_up::kill_group(child.id());
            return Err(format!(
                "spin up exited before serving; see {}",
                dir.join("spin.log").display()
            ));
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            base: format!("http://{addr}"),
        })
    }
}

impl Drop for SpinServer {
    fn drop(&mut self) {
        spin_up::kill_group(self.child.id());
        let _ = self.child.wait();
    }
}
