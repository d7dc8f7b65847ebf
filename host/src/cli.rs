//! Command line and start-up: everything is validated before the server binds,
//! including the guest's own configuration (through its `check-config` export).

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use wasmtime::bail;
use wasmtime::error::Context as _;

use crate::engine::{Limits, Runtime};
use crate::server::Server;
use crate::sqlite::Database;
use crate::variables::{ENV_PREFIX, HOST_SETTINGS, Variables};

/// Serve the wasmpaste pastebin API (the wasmpaste WebAssembly component).
///
/// Guest settings come from WASMPASTE_* environment variables
/// (WASMPASTE_MAX_ANON sets `max_anon`, ...); see docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "wasmpaste", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address and port to listen on.
    #[arg(long, env = "WASMPASTE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// SQLite database file; its directory is created if missing.
    #[arg(long, env = "WASMPASTE_DB", default_value = "./data/wasmpaste.db")]
    pub db: PathBuf,

    /// Serve this component (.wasm) instead of the embedded one.
    #[arg(long, env = "WASMPASTE_COMPONENT")]
    pub component: Option<PathBuf>,

    /// Directory for compiled machine code, reused across restarts
    /// [default: `cache` beside the database file].
    #[arg(long, env = "WASMPASTE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile the component at every start instead of caching its machine code.
    #[arg(long, env = "WASMPASTE_NO_CACHE")]
    pub no_cache: bool,

    /// Log format on stderr.
    #[arg(long, env = "WASMPASTE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds one request may take, CPU and I/O included (504 beyond).
    #[arg(long, env = "WASMPASTE_REQUEST_TIMEOUT", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,

    /// Linear memory one instance may use, in MiB (a trap beyond).
    #[arg(long, env = "WASMPASTE_MAX_MEMORY", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(16..=4096))]
    pub max_memory: u64,

    /// Requests served at once; more get 503 with Retry-After.
    #[arg(long, env = "WASMPASTE_MAX_CONCURRENCY", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_concurrency: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Exit 0 if the server on --listen answers GET /health with 200 (for
    /// container health checks; a wildcard address is reached via loopback).
    Health,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Args {
    /// Where compiled code is cached, if anywhere.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(|| {
            let parent = self.db.parent().unwrap_or(Path::new(""));
            Some(parent.join("cache"))
        })
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_memory: usize::try_from(self.max_memory * 1024 * 1024).unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(self.request_timeout),
            max_concurrency: self.max_concurrency,
        }
    }
}

/// Sets up logging on stderr; `RUST_LOG` refines the level (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never in files or journald.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Loads, checks and serves; returns when a shutdown signal was handled.
pub async fn run(args: Args) -> wasmtime::Result<()> {
    let wasm = match &args.component {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read the component {}", path.display()))?,
        None => crate::guest::EMBEDDED.to_vec(),
    };
    let variables = Variables::from_env(std::env::vars());
    let db = Database::open(&args.db)?;
    let cache_dir = args.cache_dir();
    let runtime = Arc::new(Runtime::new(
        &wasm,
        db,
        variables.clone(),
        args.limits(),
        cache_dir.as_deref(),
    )?);
    runtime.start_epoch_ticker();

    check_guest_config(&runtime, &variables).await?;
    migrate_and_clean(&runtime).await?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // On stdout, alone on its line: scripts and tests read the port from it.
    println!("wasmpaste listening on http://{addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, db = %runtime.db.path().display(), "serving");

    Arc::new(Server::new(runtime))
        .serve(listener, shutdown_signal())
        .await
}

/// Refuses to start on bad guest settings; warns about `WASMPASTE_*` names nothing reads.
async fn check_guest_config(runtime: &Runtime, variables: &Variables) -> wasmtime::Result<()> {
    let (mut store, instance) = runtime.instantiate().await?;
    let report = instance
        .wasmpaste_app_maintenance()
        .call_check_config(&mut store)
        .await
        .context("the component's check-config failed")?;
    for name in variables.names() {
        if !report.known.iter().any(|k| k == name) {
            tracing::warn!(
                "{ENV_PREFIX}{} is set but is not a setting of this component (typo?)",
                name.to_ascii_uppercase()
            );
        }
    }
    if !report.errors.is_empty() {
        let hint = format!(
            "(variable `x` is set by {ENV_PREFIX}X; host settings: {})",
            HOST_SETTINGS.join(", ")
        );
        bail!(
            "invalid configuration:\n  {}\n{hint}",
            report.errors.join("\n  ")
        );
    }
    Ok(())
}

/// Applies migrations (and a first cleanup) before the first request arrives.
async fn migrate_and_clean(runtime: &Runtime) -> wasmtime::Result<()> {
    let (mut store, instance) = runtime.instantiate().await?;
    let report = instance
        .wasmpaste_app_maintenance()
        .call_cleanup(&mut store)
        .await?
        .map_err(|e| wasmtime::format_err!("the database is not usable: {e}"))?;
    tracing::info!(
        expired_pastes = report.expired_pastes,
        expired_short_urls = report.expired_short_urls,
        used_nonces = report.used_nonces,
        rate_windows = report.rate_windows,
        content_hashes = report.content_hashes,
        "startup cleanup"
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
