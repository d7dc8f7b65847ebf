//! The only module that touches generated bindings: wasi-http requests and
//! responses to and from [`crate::http`], Spin's sqlite and variables behind
//! the [`Sql`] and [`Variables`] traits, and the `maintenance` export.
//!
//! Nothing here may panic on bad input: a trap loses the request.

use crate::api::Env;
use crate::config::{Config, Variables};
use crate::domain::OsRng;
use crate::domain::time::unix_now;
use crate::http::{Body, BodyError, BodyStream, Headers, Method, Request, Response};
use crate::log::Stderr;
use crate::maintenance;
use crate::router::{self, Answer};
use crate::store::{LazyDb, Row, Sql, StoreError, Value};

wit_bindgen::generate!({
    path: "../wit",
    world: "wasmpaste",
    generate_all,
});

use self::exports::wasi::http0_2_0::incoming_handler::Guest as IncomingHandler;
use self::exports::wasmpaste::app::maintenance::{
    CleanupReport, ConfigReport, Guest as MaintenanceGuest,
};
use self::fermyon::spin::{sqlite, variables};
use self::wasi::http0_2_0::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method as WasiMethod, OutgoingBody,
    OutgoingResponse, ResponseOutparam, http_error_code,
};
use self::wasi::io0_2_0::streams::{InputStream, StreamError};

struct Component;

export!(Component);

impl IncomingHandler for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let db = LazyDb::new(SpinSqlite::open_default);
        let env = Env {
            db: &db,
            vars: &SpinVariables,
            rng: &OsRng,
            log: &Stderr,
            now: unix_now(),
        };
        let answer = router::answer(&env, into_request(request));
        send(out, answer);
    }
}

impl MaintenanceGuest for Component {
    fn cleanup() -> Result<CleanupReport, String> {
        let db = SpinSqlite::open_default().map_err(|e| e.to_string())?;
        let cfg = Config::new(&SpinVariables);
        let r = maintenance::cleanup(&db, &cfg, unix_now()).map_err(|e| e.to_string())?;
        Ok(CleanupReport {
            expired_pastes: r.expired_pastes,
            expired_short_urls: r.expired_short_urls,
            used_nonces: r.used_nonces,
            rate_windows: r.rate_windows,
            content_hashes: r.content_hashes,
        })
    }

    fn check_config() -> ConfigReport {
        ConfigReport {
            known: crate::config::ALL
                .iter()
                .map(|s| s.name().to_owned())
                .collect(),
            errors: Config::new(&SpinVariables).check_all(),
        }
    }
}

fn into_request(request: IncomingRequest) -> Request {
    let method = match request.method() {
        WasiMethod::Get => Method::Get,
        WasiMethod::Head => Method::Head,
        WasiMethod::Post => Method::Post,
        WasiMethod::Put => Method::Put,
        WasiMethod::Delete => Method::Delete,
        WasiMethod::Options => Method::Options,
        WasiMethod::Connect => Method::Other("CONNECT".into()),
        WasiMethod::Trace => Method::Other("TRACE".into()),
        WasiMethod::Patch => Method::Other("PATCH".into()),
        WasiMethod::Other(m) => Method::parse(&m),
    };
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".into());
    let (path, query) = match path_with_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (path_with_query, String::new()),
    };
    let mut headers = Headers::new();
    for (name, value) in request.headers().entries() {
        headers.append(&name, value);
    }
    // Hosts strip `Host` (a forbidden header in wasi-http) and pass the authority instead.
    if !headers.contains("host")
        && let Some(authority) = request.authority()
    {
        headers.append("host", authority);
    }
    Request {
        method,
        path,
        query,
        headers,
        body: Body::Stream(Box::new(WasiBody::new(request))),
    }
}

/// The request body, read lazily: a request whose handler never reads its
/// body (every GET) never opens it, which saves four host calls. Fields
/// drop in order: stream, body, request (children before their parents, as
/// wasi-http requires).
struct WasiBody {
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
    request: IncomingRequest,
    /// Whether the body was opened (it can be consumed only once).
    opened: bool,
    /// Bytes read so far, for the size in a "too large" error.
    received: u64,
}

impl WasiBody {
    fn new(request: IncomingRequest) -> Self {
        Self {
            stream: None,
            body: None,
            request,
            opened: false,
            received: 0,
        }
    }

    /// Opens the body and its stream, the first time only.
    fn open(&mut self) {
        if !self.opened {
            self.opened = true;
            self.body = self.request.consume().ok();
            self.stream = self.body.as_ref().and_then(|b| b.stream().ok());
        }
    }
}

impl BodyStream for WasiBody {
    fn read_chunk(&mut self, max: usize) -> Result<Option<Vec<u8>>, BodyError> {
        self.open();
        let Some(stream) = &self.stream else {
            return Ok(None);
        };
        let len = u64::try_from(max).unwrap_or(u64::MAX);
        loop {
            match stream.blocking_read(len) {
                // An empty read is not the end: the client has not sent more yet.
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(chunk) => {
                    self.received = self.received.saturating_add(chunk.len() as u64);
                    return Ok(Some(chunk));
                }
                Err(StreamError::Closed) => {
                    self.stream = None;
                    if let Some(body) = self.body.take() {
                        drop(IncomingBody::finish(body));
                    }
                    return Ok(None);
                }
                Err(StreamError::LastOperationFailed(e)) => {
                    // A host that caps bodies (ours, per tenant) says so with
                    // this code: the client sent too much, it did not break.
                    if let Some(ErrorCode::HttpRequestBodySize(_)) = http_error_code(&e) {
                        return Err(BodyError::TooLarge {
                            received: self.received,
                        });
                    }
                    return Err(BodyError::Broken(e.to_debug_string()));
                }
            }
        }
    }
}

fn send(out: ResponseOutparam, answer: Answer) {
    let (
        Response {
            status,
            headers,
            body,
        },
        head,
    ) = answer.into_framed();
    let entries = headers.into_vec();
    let fields = Fields::from_list(&entries).unwrap_or_else(|_| Fields::new());
    let resp = OutgoingResponse::new(fields);
    // A new response is 200 already (wasi-http): one host call fewer for most answers.
    if status != 200 && resp.set_status_code(status).is_err() {
        let _ = resp.set_status_code(500);
    }
    if head {
        // No body resource at all, so the host sends none.
        ResponseOutparam::set(out, Ok(resp));
        return;
    }
    let Ok(out_body) = resp.body() else {
        ResponseOutparam::set(out, Ok(resp));
        return;
    };
    ResponseOutparam::set(out, Ok(resp));
    // A client that disconnects mid-response ends the request, not the instance.
    if write_all(&out_body, &body).is_ok() {
        let _ = OutgoingBody::finish(out_body, None);
    }
}

/// Most a `blocking-write-and-flush` may carry (wasi:io's contract).
const ONE_CALL_WRITE_MAX: usize = 4096;

fn write_all(body: &OutgoingBody, mut data: &[u8]) -> Result<(), StreamError> {
    let stream = body.write().map_err(|()| StreamError::Closed)?;
    if data.len() <= ONE_CALL_WRITE_MAX {
        // Most answers (JSON, a short paste, a redirect) fit: one host call
        // instead of check-write, write and flush.
        return stream.blocking_write_and_flush(data);
    }
    while !data.is_empty() {
        let permitted = loop {
            let n = stream.check_write()?;
            if n > 0 {
                break n;
            }
            stream.subscribe().block();
        };
        let n = usize::try_from(permitted)
            .unwrap_or(usize::MAX)
            .min(data.len());
        stream.write(&data[..n])?;
        data = &data[n..];
    }
    stream.blocking_flush()?;
    Ok(())
}

/// Spin's sqlite connection behind the [`Sql`] trait.
struct SpinSqlite(sqlite::Connection);

impl SpinSqlite {
    fn open_default() -> Result<Self, StoreError> {
        sqlite::Connection::open("default")
            .map(Self)
            .map_err(store_error)
    }
}

fn store_error(e: sqlite::Error) -> StoreError {
    match e {
        sqlite::Error::NoSuchDatabase => StoreError::NoSuchDatabase,
        sqlite::Error::AccessDenied => StoreError::AccessDenied,
        sqlite::Error::InvalidConnection => StoreError::InvalidConnection,
        sqlite::Error::DatabaseFull => StoreError::DatabaseFull,
        sqlite::Error::Io(m) => StoreError::Io(m),
    }
}

impl Sql for SpinSqlite {
    fn run(&self, sql: &str, params: Vec<Value>) -> (Result<Vec<Row>, StoreError>, Vec<Value>) {
        let params: Vec<sqlite::Value> = params.into_iter().map(to_wit).collect();
        let result = self
            .0
            .execute(sql, &params)
            .map(|r| {
                r.rows
                    .into_iter()
                    .map(|row| Row(row.values.into_iter().map(from_wit).collect()))
                    .collect()
            })
            .map_err(store_error);
        (result, params.into_iter().map(from_wit).collect())
    }
}

fn to_wit(v: Value) -> sqlite::Value {
    match v {
        Value::Null => sqlite::Value::Null,
        Value::Integer(i) => sqlite::Value::Integer(i),
        Value::Real(f) => sqlite::Value::Real(f),
        Value::Text(t) => sqlite::Value::Text(t),
        Value::Blob(b) => sqlite::Value::Blob(b),
    }
}

fn from_wit(v: sqlite::Value) -> Value {
    match v {
        sqlite::Value::Null => Value::Null,
        sqlite::Value::Integer(i) => Value::Integer(i),
        sqlite::Value::Real(f) => Value::Real(f),
        sqlite::Value::Text(t) => Value::Text(t),
        sqlite::Value::Blob(b) => Value::Blob(b),
    }
}

/// Spin variables behind the [`Variables`] trait: undefined means "use the default".
struct SpinVariables;

impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        match variables::get(name) {
            Ok(v) => Ok(Some(v)),
            Err(variables::Error::Undefined(_)) => Ok(None),
            Err(variables::Error::InvalidName(m)) => Err(format!("invalid name: {m}")),
            Err(variables::Error::Provider(m)) => Err(format!("provider error: {m}")),
            Err(variables::Error::Other(m)) => Err(m),
        }
    }
}
