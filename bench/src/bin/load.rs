//! `wasmpaste-load`: load over loopback against the release `wasmpaste`
//! binary, the way clients meet it. For each operation and each number of
//! connections it prints requests/s, p50/p99/p99.9 latency and the server's
//! resident memory afterwards.
//!
//!   cargo build --release && cargo run --release -p wasmpaste-bench --bin wasmpaste-load
//!
//! Options (environment): LOAD_SECONDS (per cell, default 3), LOAD_CONNECTIONS
//! (default "1,16,64"), WASMPASTE_BIN (default: `wasmpaste` beside this binary).
//! The machinery is shared with `wasmpaste-tenants-load` (src/loadgen.rs).

use std::process::{Command, ExitCode};

use reqwest::blocking::{Client, RequestBuilder};
use wasmpaste_loadgen::{COLUMNS, Options, Scratch, Server, client, post_for_id, run};

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
    match load() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load() -> Result<(), String> {
    let opts = Options::from_env()?;
    let dir = Scratch::new("wasmpaste-load")?;
    // Abuse controls off: the load would trip them.
    let mut command = Command::new(&opts.bin);
    command
        .env("WASMPASTE_LISTEN", "127.0.0.1:0")
        .env("WASMPASTE_DB", dir.path.join("load.db"))
        .env("WASMPASTE_CACHE_DIR", dir.path.join("cache"))
        .env("WASMPASTE_POW_DIFFICULTY", "0")
        .env("WASMPASTE_RATE_MAX", "0")
        .env("WASMPASTE_DEDUP_MAX", "0");
    let server = Server::start(command, &dir.path.join("host.log"))?;
    let fixture = Fixture::new(&server.base).map_err(|e| format!("setting up: {e}"))?;
    println!(
        "{}, idle RSS {:.1} MiB",
        opts.banner("wasmpaste-load"),
        server.rss_mib()
    );
    println!("{:<20} {:>5} {COLUMNS}", "operation", "conns");
    for op in [Op::Create, Op::ReadRaw, Op::ReadMeta, Op::Redirect] {
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
        }
    }
    Ok(())
}
