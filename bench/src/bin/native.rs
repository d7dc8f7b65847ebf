//! `wasmpaste-native`: the guest's router compiled natively (its domain and
//! store on rusqlite directly, no wasm) behind the same HTTP stack as the
//! host (hyper 1 HTTP/1.1 + tokio). It is the baseline `wasmpaste-load`
//! compares the host with (`LOAD_NATIVE=1`); not a server to deploy.
//!
//!   wasmpaste-native [--listen ADDR] [--db PATH]
//!
//! Defaults come from `WASMPASTE_LISTEN` (else 127.0.0.1:8080) and
//! `WASMPASTE_DB` (else `wasmpaste-native.db`). Guest variables are the
//! `WASMPASTE_*` environment variables, mapped as the host maps them
//! (`WASMPASTE_MAX_ANON` is `max_anon`). Each request runs on a blocking
//! thread with that thread's own connection, opened like the host's.
//!
//! What the host does per request outside the component is done here too,
//! with the host's own functions, so the comparison isolates the cost of
//! wasm: the request id, the access log line on stderr, the request metrics.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmpaste_guest::api::Env;
use wasmpaste_guest::config::Variables;
use wasmpaste_guest::domain::OsRng;
use wasmpaste_guest::domain::time::unix_now;
use wasmpaste_guest::http::{Body, Headers, Method, Request, Response};
use wasmpaste_guest::log::Stderr;
use wasmpaste_guest::router::{self, Answer};
use wasmpaste_guest::store::StoreError;
use wasmpaste_guest::store::migrations::ensure_schema;
use wasmpaste_guest::store::native::NativeSqlite;
use wasmpaste_host::cli::{LogFormat, init_logging};
use wasmpaste_host::metrics::{Metrics, route_class};
use wasmpaste_host::server::{log_request, request_id};

/// Guest variables, read once at start.
struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    /// `WASMPASTE_*` minus the host's own settings and `FLASKPASTE_*`,
    /// names lowercased: the host's mapping, reused.
    fn from_env() -> Result<Self, String> {
        let env = wasmpaste_host::variables::EnvVariables::read(
            std::env::vars(),
            &wasmpaste_host::cli::host_settings(),
        )?;
        Ok(Self(
            env.values
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
        ))
    }
}

impl Variables for EnvVars {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).cloned())
    }
}

struct State {
    db: PathBuf,
    vars: EnvVars,
    metrics: Metrics,
}

thread_local! {
    /// This blocking thread's connection, opened on its first request.
    static DB: OnceCell<Result<NativeSqlite, StoreError>> = const { OnceCell::new() };
}

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--name VALUE` from the command line, else the environment variable `env`.
fn setting(name: &str, env: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == name {
            return args.next();
        }
        if let Some(v) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_owned());
        }
    }
    std::env::var(env).ok()
}

async fn serve() -> Result<(), String> {
    init_logging(LogFormat::Text);
    let listen = setting("--listen", "WASMPASTE_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
    let db = PathBuf::from(
        setting("--db", "WASMPASTE_DB").unwrap_or_else(|| "wasmpaste-native.db".into()),
    );
    // Migrate once, before the first request (requests check the schema too).
    let conn = NativeSqlite::open_like_host(&db)
        .map_err(|e| format!("cannot open the database {}: {e}", db.display()))?;
    ensure_schema(&conn).map_err(|e| format!("cannot migrate {}: {e}", db.display()))?;
    drop(conn);
    let state = Arc::new(State {
        db,
        vars: EnvVars::from_env()?,
        metrics: Metrics::default(),
    });
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("wasmpaste listening on http://{addr}");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        let conn = wasmpaste_host::server::http1_builder().serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(state, req, peer).await) }
            }),
        );
        tokio::spawn(async move {
            // A client that goes away mid-request ends its connection only.
            let _ = conn.await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let started = Instant::now();
    let rid = request_id(req.headers());
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let resp = match body.collect().await {
        Ok(b) => call(&state, &parts, b.to_bytes().to_vec(), &path, peer, &rid).await,
        Err(e) => error_500(&format!("reading the request body: {e}")),
    };
    let status = resp.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let route = route_class(&path);
    state.metrics.request("default", route, status, elapsed);
    log_request(&rid, "default", &parts.method, &path, status, elapsed, peer);
    resp
}

/// The guest's router on a blocking thread, given the request as the host
/// gives it to the component (`spin-client-addr` and `x-request-id` set).
async fn call(
    state: &Arc<State>,
    parts: &hyper::http::request::Parts,
    body: Vec<u8>,
    path: &str,
    peer: SocketAddr,
    rid: &str,
) -> hyper::Response<Full<Bytes>> {
    let mut headers = Headers::new();
    for (name, value) in &parts.headers {
        // As the host does: `spin-*` comes from the server, never the client.
        if !name.as_str().starts_with("spin-") && name != "x-request-id" {
            headers.append(name.as_str(), value.as_bytes());
        }
    }
    headers.append("spin-client-addr", peer.to_string());
    headers.append("x-request-id", rid);
    let method = Method::parse(parts.method.as_str());
    let path = path.to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let state = Arc::clone(state);
    // Built on the blocking thread: a `Body` is not `Send`.
    let guest = move || {
        let request = Request {
            method,
            path,
            query,
            headers,
            body: Body::Bytes(body),
        };
        run_guest(&state, request)
    };
    match tokio::task::spawn_blocking(guest).await {
        Ok(Ok(response)) => into_hyper(response),
        Ok(Err(e)) => error_500(&format!("cannot open the database: {e}")),
        Err(e) => error_500(&format!("the request handler failed: {e}")),
    }
}

/// The guest's router with this thread's connection, as the component's
/// adapter builds its `Env` per request.
fn run_guest(state: &State, request: Request) -> Result<Answer, StoreError> {
    DB.with(|cell| {
        let db = cell
            .get_or_init(|| NativeSqlite::open_like_host(&state.db))
            .as_ref()
            .map_err(Clone::clone)?;
        let env = Env {
            db,
            vars: &state.vars,
            rng: &OsRng,
            log: &Stderr,
            now: unix_now(),
        };
        Ok(router::answer(&env, request))
    })
}

/// The guest's answer as hyper's, framed as the adapter frames it (hyper
/// itself sends no body on a HEAD answer).
fn into_hyper(answer: Answer) -> hyper::Response<Full<Bytes>> {
    let (
        Response {
            status,
            headers,
            body,
        },
        _head,
    ) = answer.into_framed();
    let mut builder = hyper::Response::builder().status(status);
    for (name, value) in headers.iter() {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|e| error_500(&format!("invalid response from the router: {e}")))
}

fn error_500(message: &str) -> hyper::Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}
