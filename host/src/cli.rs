//! Command line and start-up: everything is validated before the server binds,
//! including the guest's own configuration (through its `check-config` export).

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use wasmtime::bail;
use wasmtime::error::Context as _;

use crate::cleanup;
use crate::client_download::ClientDownload;
use crate::config::{self, TenantSpec};
use crate::cpu::DEFAULT_WEIGHT;
use crate::engine::{PoolSize, compile_cache, new_engine, start_epoch_ticker};
use crate::limits::{self, Limits, MIB};
use crate::metrics::Metrics;
use crate::pool::start_idle_sweeper;
use crate::runtime_config::{self, DatabaseSpec};
use crate::server::Server;
use crate::tenant::{Tenant, Tenants};
use crate::tls::{CertFiles, ClientCa, TenantTls, TlsFront, TlsSettings};
use crate::variables::{ENV_PREFIX, EnvVariables, FLASKPASTE_PREFIX};

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

    /// Tenants file (TOML; see docs/operations.md). Without it the host
    /// serves one tenant: the component and database given below.
    #[arg(long, env = "WASMPASTE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address and port of the admin listener (`/metrics`, `/healthz`); off when unset.
    #[arg(long, env = "WASMPASTE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// Address and port of the HTTPS listener (HTTP/1.1 and HTTP/2); off
    /// when unset. Needs --tls-cert and --tls-key.
    #[arg(long, env = "WASMPASTE_TLS_LISTEN", requires_all = ["tls_cert", "tls_key"])]
    pub tls_listen: Option<SocketAddr>,

    /// PEM certificate chain (leaf first) of the HTTPS listener, for names
    /// no tenant has a certificate of its own for. Reloaded on SIGHUP.
    #[arg(long, env = "WASMPASTE_TLS_CERT", requires = "tls_listen")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert. Reloaded on SIGHUP.
    #[arg(long, env = "WASMPASTE_TLS_KEY", requires = "tls_listen")]
    pub tls_key: Option<PathBuf>,

    /// Client certificates on the HTTPS listener identify users (optional:
    /// no certificate is anonymous use): `pki` for the tenant's own CA (the
    /// one `POST /register` issues from), or a PEM bundle of CA certificates.
    /// Tenants may set their own `client_ca`.
    #[arg(long, env = "WASMPASTE_CLIENT_CA", requires = "tls_listen")]
    pub client_ca: Option<String>,

    /// Seconds a TLS handshake may take before the connection is dropped.
    #[arg(long, env = "WASMPASTE_TLS_HANDSHAKE_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub tls_handshake_timeout: u64,

    /// TLS handshakes in progress at once; further connections wait for a
    /// turn within their handshake timeout.
    #[arg(long, env = "WASMPASTE_TLS_MAX_HANDSHAKES", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub tls_max_handshakes: u32,

    /// Seconds to wait, after SIGTERM or SIGINT, for requests in flight
    /// (and responses still being sent) before exiting anyway. Keep the
    /// container's or service manager's stop timeout above it.
    #[arg(long, env = "WASMPASTE_SHUTDOWN_TIMEOUT", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_timeout: u64,

    /// Serve HTTPS only: no plain HTTP listener (--listen is then unused).
    #[arg(long, env = "WASMPASTE_NO_HTTP", requires = "tls_listen")]
    pub no_http: bool,

    /// SQLite database file of the single tenant; its directory is created
    /// if missing [default: ./data/wasmpaste.db].
    #[arg(long, env = "WASMPASTE_DB")]
    pub db: Option<PathBuf>,

    /// Spin runtime-config file whose `[sqlite_database.default]` is the
    /// single tenant's database: `type = "libsql"` with `url` and `token` (a
    /// libSQL server), or `type = "spin"` with `path` (a file). Replaces --db.
    #[arg(long, env = "WASMPASTE_RUNTIME_CONFIG_FILE", conflicts_with = "db")]
    pub runtime_config_file: Option<PathBuf>,

    /// Serve this component (.wasm) instead of the embedded one (single tenant).
    #[arg(long, env = "WASMPASTE_COMPONENT")]
    pub component: Option<PathBuf>,

    /// Directory for compiled machine code, reused across restarts
    /// [default: `cache` beside the database file, or beside the config file].
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
          value_parser = limits::REQUEST_TIMEOUT_SECS.parser::<u64>())]
    pub request_timeout: u64,

    /// Linear memory one instance may use, in MiB (a trap beyond).
    #[arg(long, env = "WASMPASTE_MAX_MEMORY", default_value_t = 512,
          value_parser = limits::MAX_MEMORY_MIB.parser::<u64>())]
    pub max_memory: u64,

    /// Requests one tenant serves at once; more get 503 with Retry-After.
    #[arg(long, env = "WASMPASTE_MAX_CONCURRENCY", default_value_t = 128,
          value_parser = limits::MAX_CONCURRENCY.parser::<u32>())]
    pub max_concurrency: u32,

    /// Largest request body in MiB; bigger ones get 413 before the guest runs.
    #[arg(long, env = "WASMPASTE_MAX_BODY_MIB", default_value_t = 64,
          value_parser = limits::MAX_BODY_MIB.parser::<u64>())]
    pub max_body_mib: u64,

    /// Largest database file in MiB; beyond it writes get 507, reads still work
    /// [default: no quota].
    #[arg(long, env = "WASMPASTE_DB_QUOTA_MIB",
          value_parser = limits::DB_QUOTA_MIB.parser::<u64>())]
    pub db_quota_mib: Option<u64>,

    /// Seconds between two scheduled cleanups of each tenant (jittered by
    /// 10%); 0 turns the scheduler off (the component still cleans up during
    /// requests, as on Spin).
    #[arg(long, env = "WASMPASTE_CLEANUP_EVERY", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
    pub cleanup_every: u64,

    /// Requests one instance may serve before it is dropped; 1 gives every
    /// request a fresh instance (see docs/configuration.md before raising it).
    #[arg(long, env = "WASMPASTE_MAX_INSTANCE_REUSE", default_value_t = 1,
          value_parser = limits::MAX_INSTANCE_REUSE.parser::<u32>())]
    pub max_instance_reuse: u32,

    /// Seconds an instance kept for reuse may sit unused before it is dropped.
    #[arg(long, env = "WASMPASTE_IDLE_INSTANCE_TIMEOUT", default_value_t = 30,
          value_parser = limits::IDLE_INSTANCE_TIMEOUT_SECS.parser::<u64>())]
    pub idle_instance_timeout: u64,

    /// Instances kept instantiated ahead of requests and never used, so a
    /// request does not wait for instantiation; 0 turns it off.
    #[arg(long, env = "WASMPASTE_READY_INSTANCES", default_value_t = 1,
          value_parser = limits::READY_INSTANCES.parser::<u32>())]
    pub ready_instances: u32,

    /// Instances alive at once over all tenants (the size of the shared pool).
    #[arg(long, env = "WASMPASTE_MAX_INSTANCES", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_instances: u32,

    /// Guest CPU the single tenant may use per second, in milliseconds (1000
    /// is one core); past it requests wait [default: no quota].
    #[arg(long, env = "WASMPASTE_CPU_MS_PER_SEC", value_parser = limits::CPU_MS_PER_SEC.parser::<u32>())]
    pub cpu_ms_per_sec: Option<u32>,

    /// Serve this file at GET /client instead of the fpaste client built into
    /// the binary (a static x86_64 Linux build).
    #[arg(long, env = "WASMPASTE_CLIENT_FILE")]
    pub client_file: Option<PathBuf>,

    /// Do not serve the fpaste client at GET /client (it then answers 404).
    #[arg(long, env = "WASMPASTE_NO_CLIENT")]
    pub no_client: bool,

    /// Requests that may wait at once for the CPU quota; more get 503 with
    /// Retry-After.
    #[arg(long, env = "WASMPASTE_CPU_QUEUE", default_value_t = 16,
          value_parser = limits::CPU_QUEUE.parser::<u32>())]
    pub cpu_queue: u32,
}

/// The single tenant's database when neither `--db` nor `--config` says otherwise.
pub const DEFAULT_DB: &str = "./data/wasmpaste.db";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Exit 0 if the server answers GET /health with 200 (for container
    /// health checks). It is found on --listen when given here, else on the
    /// --listen argument of the wasmpaste server that is PID 1 (or PID 1's
    /// only such child), else on WASMPASTE_LISTEN or the default; a wildcard
    /// address is reached via loopback.
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
            let anchor = self.config.clone().unwrap_or_else(|| self.db_path());
            let parent = anchor.parent().unwrap_or(Path::new(""));
            Some(parent.join("cache"))
        })
    }

    fn db_path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DB))
    }

    /// The HTTPS listener's settings, when it is on.
    pub fn tls(&self) -> Option<(SocketAddr, TlsSettings)> {
        let listen = self.tls_listen?;
        let (Some(cert), Some(key)) = (self.tls_cert.clone(), self.tls_key.clone()) else {
            return None;
        };
        let settings = TlsSettings {
            cert: CertFiles { cert, key },
            client_ca: self
                .client_ca
                .as_deref()
                .map(|ca| ClientCa::parse(ca, Path::new(""))),
            handshake_timeout: Duration::from_secs(self.tls_handshake_timeout),
            max_handshakes: usize::try_from(self.tls_max_handshakes).unwrap_or(usize::MAX),
        };
        Some((listen, settings))
    }

    /// Limits from the command line: the single tenant's, and the defaults
    /// under a config file's `[defaults]`.
    pub fn limits(&self) -> Limits {
        Limits {
            max_memory: usize::try_from(self.max_memory * MIB).unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(self.request_timeout),
            max_body_bytes: self.max_body_mib * MIB,
            max_concurrency: self.max_concurrency,
            db_quota_bytes: self.db_quota_mib.map(|m| m * MIB),
            max_instance_reuse: self.max_instance_reuse,
            idle_instance_timeout: Duration::from_secs(self.idle_instance_timeout),
            ready_instances: self.ready_instances,
            cpu_weight: DEFAULT_WEIGHT,
            cpu_ms_per_sec: self.cpu_ms_per_sec,
            cpu_queue: self.cpu_queue,
        }
    }

    /// The tenants to serve: from `--config`, or the single default tenant.
    pub fn tenants(&self) -> wasmtime::Result<Vec<TenantSpec>> {
        let Some(path) = &self.config else {
            let database = match &self.runtime_config_file {
                Some(rc) => runtime_config::load(rc)
                    .map_err(|e| wasmtime::format_err!("{e}"))?
                    .unwrap_or_else(|| DatabaseSpec::File(self.db_path())),
                None => DatabaseSpec::File(self.db_path()),
            };
            if matches!(database, DatabaseSpec::Libsql { .. }) && self.db_quota_mib.is_some() {
                bail!(
                    "--db-quota-mib: a libSQL server enforces its own limits; remove it when \
                     the database is on one"
                );
            }
            return Ok(vec![TenantSpec {
                name: "default".into(),
                hosts: Vec::new(),
                path_prefix: None,
                component: self.component.clone(),
                database,
                variables: BTreeMap::new(),
                limits: self.limits(),
                tls: TenantTls::default(),
            }]);
        };
        if self.db.is_some() || self.component.is_some() || self.runtime_config_file.is_some() {
            tracing::warn!(
                "--db, --runtime-config-file and --component are ignored with --config: each \
                 tenant names its own"
            );
        }
        Ok(config::load(path, &self.limits())?)
    }
}

/// The `X` of every `WASMPASTE_X` that configures the host itself (read off
/// the flags' `env` names), so it is never passed to the guest as a variable.
pub fn host_settings() -> Vec<String> {
    Args::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .filter_map(|env| env.to_str()?.strip_prefix(ENV_PREFIX).map(str::to_owned))
        .collect()
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

/// Prints `{what} {url}` alone on a line of stdout, where scripts read the
/// address a listener got. Under `--log-format json` the line is a JSON
/// object like the log's (`timestamp`, `level`, `message`, plus `url`), so a
/// collector reading stdout and stderr never meets a line it cannot parse.
pub fn announce(format: LogFormat, what: &str, url: &str) {
    let message = format!("{what} {url}");
    match format {
        LogFormat::Text => println!("{message}"),
        LogFormat::Json => println!("{}", json_announcement(&message, url)),
    }
}

fn json_announcement(message: &str, url: &str) -> String {
    use tracing_subscriber::fmt::time::FormatTime as _;
    let mut timestamp = String::new();
    // The log's own clock and format; writing to a String cannot fail.
    let _ = tracing_subscriber::fmt::time::SystemTime.format_time(
        &mut tracing_subscriber::fmt::format::Writer::new(&mut timestamp),
    );
    serde_json::json!({
        "timestamp": timestamp,
        "level": "INFO",
        "message": message,
        "url": url,
        "target": module_path!(),
    })
    .to_string()
}

/// Loads, checks and serves; returns when a shutdown signal was handled.
pub async fn run(args: Args) -> wasmtime::Result<()> {
    let specs = args.tenants()?;
    let env = EnvVariables::read(std::env::vars(), &host_settings())
        .map_err(|e| wasmtime::format_err!("{e}"))?;
    let pool = PoolSize::for_tenants(specs.iter().map(|s| &s.limits), args.max_instances);
    let cache = args.cache_dir().as_deref().map(compile_cache).transpose()?;
    let engine = new_engine(pool, cache.clone())?;
    start_epoch_ticker(&engine);
    let client = ClientDownload::load(args.client_file.as_deref(), args.no_client)?;
    let metrics = Arc::new(Metrics::default());
    let tenants = Arc::new(Tenants::new(
        &engine,
        cache.as_ref(),
        specs,
        &env.values,
        crate::guest::EMBEDDED,
        &metrics,
    )?);

    for tenant in tenants.iter() {
        check_guest_config(tenant, &env).await?;
        // Migrations (and a first cleanup) before the first request arrives.
        if let Err(e) = cleanup::cleanup(tenant, &metrics, "startup").await {
            if !tenant.db.is_remote() {
                return Err(e.context(format!("tenant `{}`", tenant.name)));
            }
            // A server that is away now may be back in a moment: serve (503
            // meanwhile); the first request that reaches it migrates.
            tracing::warn!(
                tenant = %tenant.name,
                database = %tenant.db.location(),
                "starting without the database: {e:#}"
            );
        }
    }

    // Certificates, keys and client CAs are checked before any port opens.
    let tls = match args.tls() {
        Some((listen, settings)) => {
            let front =
                TlsFront::new(&settings, &tenants, Arc::clone(&metrics)).map_err(|errors| {
                    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    wasmtime::format_err!("invalid TLS configuration:\n  {}", lines.join("\n  "))
                })?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} (--tls-listen)"))?;
            Some((listener, Arc::new(front)))
        }
        None => {
            if tenants.iter().any(|t| t.tls != TenantTls::default()) {
                tracing::warn!(
                    "tenants set tls_cert or client_ca, but there is no HTTPS listener \
                     (--tls-listen): those settings are unused"
                );
            }
            None
        }
    };
    let listener = if args.no_http {
        None
    } else {
        Some(
            tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("cannot listen on {}", args.listen))?,
        )
    };
    if let Some(admin) = args.admin_listen {
        let admin_listener = tokio::net::TcpListener::bind(admin)
            .await
            .with_context(|| format!("cannot listen on {admin} (--admin-listen)"))?;
        let admin_addr = admin_listener.local_addr()?;
        announce(
            args.log_format,
            "wasmpaste admin on",
            &format!("http://{admin_addr}"),
        );
        tracing::info!(addr = %admin_addr, "admin listener");
        tokio::spawn(crate::admin::serve(
            admin_listener,
            Arc::clone(&tenants),
            Arc::clone(&metrics),
        ));
    }
    // On stdout, alone on its line: scripts and tests read the port from it
    // (the plain one last, when there is one).
    let mut addrs = Vec::new();
    if let Some((tls_listener, _)) = &tls {
        let addr = tls_listener.local_addr()?;
        announce(
            args.log_format,
            "wasmpaste listening on",
            &format!("https://{addr}"),
        );
        addrs.push(addr);
    }
    start_reload_on_hangup(tls.as_ref().map(|(_, front)| Arc::clone(front)));
    if let Some(listener) = &listener {
        let addr = listener.local_addr()?;
        announce(
            args.log_format,
            "wasmpaste listening on",
            &format!("http://{addr}"),
        );
        addrs.push(addr);
    }
    std::io::stdout().flush()?;
    for tenant in tenants.iter() {
        tracing::info!(
            tenant = %tenant.name,
            hosts = ?tenant.hosts,
            prefix = tenant.path_prefix.as_deref().unwrap_or(""),
            db = %tenant.db.location(),
            "tenant"
        );
    }
    tracing::info!(addrs = ?addrs, tenants = tenants.len(), instances = pool.instances, "serving");
    if args.cleanup_every > 0 {
        cleanup::start(&tenants, &metrics, Duration::from_secs(args.cleanup_every));
    }
    start_idle_sweeper(tenants.iter().map(|t| Arc::clone(&t.pool)).collect());

    match &client {
        Some(c) => tracing::info!(bytes = c.len(), "serving the fpaste client at GET /client"),
        None => tracing::info!("not serving the fpaste client (GET /client answers 404)"),
    }
    let drain = Duration::from_secs(args.shutdown_timeout);
    Arc::new(Server::new(tenants, metrics, client))
        .serve(listener, tls, shutdown_signal(), drain)
        .await
}

/// SIGHUP reloads the HTTPS listener's certificates, keys and CA bundles;
/// open connections keep the ones they started with. Handled without an
/// HTTPS listener too: a reload (`systemctl reload`) must never stop the host.
fn start_reload_on_hangup(front: Option<Arc<TlsFront>>) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot watch SIGHUP: certificates are reloaded only by a restart");
        return;
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match &front {
                Some(front) => {
                    let failed = front.reload();
                    tracing::info!(failed, "SIGHUP: TLS files reloaded");
                }
                None => tracing::info!("SIGHUP: no HTTPS listener, nothing to reload"),
            }
        }
    });
}

/// Refuses to start on bad guest settings; warns about variables nothing
/// reads, naming the environment variable or tenant field that set it and
/// the setting it was probably meant to be.
async fn check_guest_config(tenant: &Tenant, env: &EnvVariables) -> wasmtime::Result<()> {
    let name = &tenant.name;
    let report = tenant
        .pool
        .check_config("startup")
        .await
        .with_context(|| format!("tenant `{name}`: the component's check-config failed"))?;
    for var in tenant.variables.names() {
        if report.known.iter().any(|k| k == var) {
            continue;
        }
        let guess = closest(var, &report.known);
        match env.source(var) {
            Some(source) => {
                let prefix = source.strip_suffix(&var.to_ascii_uppercase()).unwrap_or("");
                let hint = guess.map_or_else(String::new, |g| {
                    format!("; did you mean {prefix}{}?", g.to_ascii_uppercase())
                });
                tracing::warn!(
                    tenant = %name,
                    "{source} is set but is not a setting of this component{hint}"
                );
            }
            None => {
                let hint = guess.map_or_else(String::new, |g| format!("; did you mean `{g}`?"));
                tracing::warn!(
                    tenant = %name,
                    "variable `{var}` is set but is not a setting of this component{hint}"
                );
            }
        }
    }
    if !report.errors.is_empty() {
        let hint = format!(
            "(variable `x` is set by {ENV_PREFIX}X, {FLASKPASTE_PREFIX}X or a tenant's \
             `variables`; host settings: {})",
            host_settings().join(", ")
        );
        bail!(
            "tenant `{name}`: invalid configuration:\n  {}\n{hint}",
            report.errors.join("\n  ")
        );
    }
    Ok(())
}

/// The known setting `name` most likely misspells, if any is close.
fn closest<'k>(name: &str, known: &'k [String]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), k.as_str()))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
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
