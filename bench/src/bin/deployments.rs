//! `wasmpaste-deployments`: the same component where operators run it, side
//! by side in one run: our host on a SQLite file, Spin (`spin up`) on its
//! SQLite file, our host with the database on a libSQL server (`sqld`), and
//! two hosts sharing that server (clients split between them). Cells:
//! creates of 1 KiB pastes, raw reads and metadata reads of a 1 KiB paste,
//! and the API index (no SQL: what a request costs before its statements),
//! at 16 connections.
//!
//!   cargo build --release && cargo run --release -p wasmpaste-bench --bin wasmpaste-deployments
//!
//! Every system serves the `.wasm` that the release host embeds (Spin
//! through a copy of spin.toml whose `source` names it: bench/src/spin_up.rs),
//! with the abuse controls off. Options (environment): LOAD_SECONDS (per cell,
//! default 5), LOAD_CONNECTIONS (default 16), WASMPASTE_BIN (default:
//! `wasmpaste` beside this binary), WASMPASTE_WASM (default: the component
//! `host/build.rs` built), SPIN_BIN and SQLD_BIN (default: on PATH; without
//! one its rows are skipped with a note, and the run fails under CI=true),
//! DEPLOYMENTS (default `file,spin,sqld`: which systems to run).

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};

use reqwest::blocking::{Client, RequestBuilder};
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
    let options = Options::from_env_or(5.0, "16")?;
    let connections = options.connections.clone();
    let wasm = component()?;
    let scratch = Scratch::new("wasmpaste-deployments")?;
    println!("{}", options.banner("wasmpaste-deployments"));
    println!("component: {}", wasm.display());
    println!(
        "{:<10} {:<14} {:>5} {COLUMNS} {:>9}",
        "system", "operation", "conns", "stmts/req"
    );

    let wanted = std::env::var("DEPLOYMENTS").unwrap_or_else(|_| "file,spin,sqld".into());
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    if wanted.contains(&"file") {
        let ours = start_ours(&options.bin, &wasm, &scratch.path.join("ours"), None)?;
        measure("wasmpaste", &[&ours], &connections, options.seconds)?;
    }
    if wanted.contains(&"spin") {
        match spin_up::find_spin() {
            Some(spin) => {
                let spin = SpinServer::start(&spin, &wasm, &scratch.path.join("spin"))?;
                measure("spin", &[&spin], &connections, options.seconds)?;
            }
            None => skipped("spin", "SPIN_BIN")?,
        }
    }
    if !wanted.contains(&"sqld") {
        return Ok(());
    }
    match spin_up::find_program("sqld", "SQLD_BIN") {
        Some(sqld) => {
            let db = Sqld::start(&sqld, &scratch.path.join("sqld"))?;
            let rc = scratch.path.join("runtime-config.toml");
            std::fs::write(
                &rc,
                format!(
                    "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"{}\"\ntoken = \"\"\n",
                    db.base
                ),
            )
            .map_err(|e| e.to_string())?;
            let a = start_ours(&options.bin, &wasm, &scratch.path.join("a"), Some(&rc))?;
            measure("on sqld", &[&a, &db], &connections, options.seconds)?;
            let b = start_ours(&options.bin, &wasm, &scratch.path.join("b"), Some(&rc))?;
            measure("2 on sqld", &[&a, &b, &db], &connections, options.seconds)?;
        }
        None => skipped("sqld", "SQLD_BIN")?,
    }
    Ok(())
}

/// What a row measures: where requests go and whose memory counts.
trait Target {
    /// `http://ADDR` to send requests to; `None` for a process that only
    /// counts in the memory column (the libSQL server).
    fn base(&self) -> Option<&str>;
    fn pid(&self) -> u32;
    /// SQL statements the component ran so far (our host's metrics); `None`
    /// where nothing counts them (Spin).
    fn statements(&self) -> Option<f64> {
        None
    }
}

impl Target for Server {
    fn base(&self) -> Option<&str> {
        Some(&self.base)
    }
    fn pid(&self) -> u32 {
        Server::pid(self)
    }
    fn statements(&self) -> Option<f64> {
        let metrics = self.metrics().ok()?;
        metrics
            .lines()
            .filter(|l| l.starts_with("wasmpaste_db_statement_seconds_count"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .reduce(|a, b| a + b)
    }
}

fn skipped(what: &str, var: &str) -> Result<(), String> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return Err(format!(
            "{what} not found under CI=true: eval \"$(../shared/tools/install)\""
        ));
    }
    println!(
        "{what}: not found ({var} or PATH; eval \"$(../shared/tools/install)\"): rows skipped"
    );
    Ok(())
}

/// Our host serving `wasm`, on a file in `dir` or on what `runtime_config` names.
fn start_ours(
    bin: &Path,
    wasm: &Path,
    dir: &Path,
    runtime_config: Option<&Path>,
) -> Result<Server, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--component",
    ])
    .arg(wasm)
    .env("WASMPASTE_CACHE_DIR", dir.join("cache"));
    match runtime_config {
        Some(rc) => cmd.env("WASMPASTE_RUNTIME_CONFIG_FILE", rc),
        None => cmd.env("WASMPASTE_DB", dir.join("wasmpaste.db")),
    };
    for (name, value) in ABUSE_OFF {
        cmd.env(format!("WASMPASTE_{name}"), value);
    }
    Server::start(cmd, &dir.join("host.log"))
}

/// Runs the operations at each number of connections and prints a row
/// each; request `n` of connection `w` goes to the `w`-th server (round
/// robin), the memory column adds up all `targets`.
fn measure(
    system: &str,
    targets: &[&dyn Target],
    connections: &[usize],
    seconds: f64,
) -> Result<(), String> {
    let bases: Vec<&str> = targets.iter().filter_map(|t| t.base()).collect();
    let base = |worker: usize| bases[worker % bases.len()];
    let paste = post_for_id(
        client()
            .post(format!("{}/", base(0)))
            .body(vec![b'r'; PASTE_BYTES]),
    )?;
    // One cell: its sample, and the statements per answered request.
    let cell = |operation: &str,
                conns: usize,
                request: &(dyn Fn(&Client, usize, u64) -> RequestBuilder + Sync)| {
        let before = statements(targets);
        let sample = run(conns, seconds, request);
        let per_request = before
            .zip(statements(targets))
            .map(|(b, a)| (a - b) / sample.answered().max(1.0));
        row(system, operation, conns, &sample, targets, per_request);
    };
    for &conns in connections {
        cell("create 1 KiB", conns, &|c, worker, n| {
            c.post(format!("{}/", base(worker)))
                .body(unique_body(worker, n, PASTE_BYTES))
        });
        cell("raw read", conns, &|c, worker, _| {
            c.get(format!("{}/{paste}/raw", base(worker)))
        });
        cell("metadata", conns, &|c, worker, _| {
            c.get(format!("{}/{paste}", base(worker)))
        });
        cell("index, no SQL", conns, &|c, worker, _| {
            c.get(format!("{}/", base(worker)))
        });
    }
    Ok(())
}

/// Statements run so far by every host of `targets` that counts them.
fn statements(targets: &[&dyn Target]) -> Option<f64> {
    targets
        .iter()
        .filter_map(|t| t.statements())
        .reduce(|a, b| a + b)
}

fn row(
    system: &str,
    operation: &str,
    conns: usize,
    sample: &Sample,
    targets: &[&dyn Target],
    statements: Option<f64>,
) {
    let rss: f64 = targets.iter().map(|t| rss_mib(t.pid())).sum();
    let statements = statements.map_or_else(|| "-".to_owned(), |n| format!("{n:.2}"));
    let mut line = format!(
        "{system:<10} {operation:<14} {conns:>5} {} {statements:>9}",
        sample.columns(rss)
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

impl Target for SpinServer {
    fn base(&self) -> Option<&str> {
        Some(&self.base)
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A libSQL server (`sqld`) with its data in a directory, killed when dropped.
struct Sqld {
    child: Child,
    base: String,
}

impl Sqld {
    fn start(bin: &Path, dir: &Path) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(bin)
            .arg("--db-path")
            .arg(dir)
            .args([
                "--http-listen-addr",
                &format!("127.0.0.1:{port}"),
                "--no-welcome",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let sqld = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if client()
                .get(format!("{}/health", sqld.base))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(sqld);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(format!("sqld did not answer on port {port}"))
    }
}

impl Target for Sqld {
    fn base(&self) -> Option<&str> {
        None
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sqld {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SpinServer {
    fn drop(&mut self) {
        spin_up::kill_group(self.child.id());
        let _ = self.child.wait();
    }
}
