//! The libSQL-server backend (sqld, Turso): each statement is one request
//! of Hrana's HTTP pipeline (`POST /v2/pipeline`, an `execute` and a
//! `close`), with the message types of `libsql-hrana` over the hyper client
//! the host already has. HTTP connections are kept alive and reused across
//! requests and tenants on the same server.
//!
//! A statement does not share a Hrana stream with the next one: the guest
//! keeps no connection state between statements (every state change is one
//! atomic statement; transactions and pragmas are refused on the file
//! backend), so a stream per request would only add a round trip to close
//! it. What one request sees is still one database, in order.
//!
//! A server that cannot be reached, answers 5xx or breaks the answer off is
//! `invalid-connection` to the guest, which answers 503 with `Retry-After`;
//! the next request tries again, so service resumes by itself; so is a
//! statement the server gave up on waiting for a lock (`SQLITE_BUSY`). Any
//! other failure (a refused token, an SQL error) is `io` with its message.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use libsql_hrana::proto;

use super::{AnyConnection, Connection, Database, DbError, Rows, Value};

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer read for one statement (a paste is at most 50 MiB, as
/// base64 in JSON about 70).
const MAX_ANSWER_BYTES: usize = 96 << 20;

/// A database on a libSQL server.
pub struct LibsqlDatabase(Arc<Remote>);

/// The server, its address and credentials, and the connection pool.
struct Remote {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    pipeline: Uri,
    /// `Bearer <token>`, marked sensitive; `None` for an empty token.
    auth: Option<HeaderValue>,
    url: String,
}

impl LibsqlDatabase {
    /// A database at `url` (`http://host:port`) with a bearer `token`
    /// (empty: none). Nothing is sent until the first statement.
    pub fn new(url: &str, token: &str) -> Result<Self, String> {
        let pipeline: Uri = format!("{}/v2/pipeline", url.trim_end_matches('/'))
            .parse()
            .map_err(|e| format!("{url} is not a URL: {e}"))?;
        let auth = if token.is_empty() {
            None
        } else {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "the token has characters a header cannot carry".to_owned())?;
            value.set_sensitive(true);
            Some(value)
        };
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        // `https_or_http` leaves plain http to a local sqld as it is.
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self(Arc::new(Remote {
            client,
            pipeline,
            auth,
            url: url.to_owned(),
        })))
    }
}

impl Remote {
    /// Runs one statement in a stream of its own.
    async fn run(&self, sql: String, params: Vec<Value>) -> Result<Rows, DbError> {
        let mut stmt = proto::Stmt::new(sql, true);
        for value in params {
            stmt.bind(to_hrana(value));
        }
        let body = proto::PipelineReqBody {
            baton: None,
            requests: vec![
                proto::StreamRequest::Execute(proto::ExecuteStreamReq { stmt }),
                proto::StreamRequest::Close(proto::CloseStreamReq {}),
            ],
        };
        let body = serde_json::to_vec(&body).map_err(|e| DbError::Io(e.to_string()))?;
        let mut request = Request::post(self.pipeline.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| DbError::Io(e.to_string()))?;
        if let Some(auth) = &self.auth {
            request.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        let unavailable = |what: &str| DbError::InvalidConnection.with_cause(&self.url, what);
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| unavailable(&chain(&e)))?;
        let status = response.status();
        let answer = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| unavailable(&e.to_string()))?
            .to_bytes();
        if status.is_server_error() {
            return Err(unavailable(&format!("HTTP {status}")));
        }
        if status != StatusCode::OK {
            return Err(DbError::Io(format!(
                "the libSQL server at {} refused the statement: HTTP {status} {}",
                self.url,
                String::from_utf8_lossy(&answer).trim()
            )));
        }
        let answer: proto::PipelineRespBody = serde_json::from_slice(&answer)
            .map_err(|e| DbError::Io(format!("unexpected answer from {}: {e}", self.url)))?;
        match answer.results.into_iter().next() {
            Some(proto::StreamResult::Ok {
                response: proto::StreamResponse::Execute(done),
            }) => from_hrana(done.result),
            Some(proto::StreamResult::Error { error }) => Err(sql_error(error)),
            _ => Err(DbError::Io(format!(
                "unexpected answer from {}: no statement result",
                self.url
            ))),
        }
    }
}

impl Database for LibsqlDatabase {
    fn open(&self) -> Result<AnyConnection, DbError> {
        Ok(Box::new(LibsqlConnection(Arc::clone(&self.0))))
    }

    /// Unknown here: the server keeps its own accounts and limits.
    fn size_bytes(&self) -> u64 {
        0
    }

    fn location(&self) -> String {
        self.0.url.clone()
    }

    fn is_remote(&self) -> bool {
        true
    }
}

/// One request's connection: a handle on the shared client.
struct LibsqlConnection(Arc<Remote>);

#[wasmtime_wasi::async_trait]
impl Connection for LibsqlConnection {
    async fn execute(&mut self, sql: String, params: Vec<Value>) -> Result<Rows, DbError> {
        self.0.run(sql, params).await
    }
}

impl DbError {
    /// `invalid-connection` carries no text to the guest; the cause goes to
    /// the host's log, once per failure.
    fn with_cause(self, url: &str, cause: &str) -> Self {
        tracing::warn!(database = url, cause, "libSQL server unavailable");
        self
    }
}

/// An error with its causes (`client error (Connect): ... certificate ...`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// TLS for `https://` servers: TLS 1.2 and 1.3 (rustls, ring), trusting
/// Mozilla's roots and the system's (which honours `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`, for a private CA).
fn tls_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // A system store that cannot be read leaves Mozilla's roots.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| format!("TLS set-up: {e}"))
}

fn sql_error(error: proto::Error) -> DbError {
    match error.code.as_str() {
        "SQLITE_FULL" => DbError::DatabaseFull,
        // The server's own lock waits gave up (it is overloaded): nothing
        // was applied; retrying later may succeed.
        code if code.starts_with("SQLITE_BUSY") || code.starts_with("SQLITE_LOCKED") => {
            DbError::InvalidConnection
        }
        _ => DbError::Io(error.message),
    }
}

fn to_hrana(value: Value) -> proto::Value {
    match value {
        Value::Null => proto::Value::Null,
        Value::Integer(value) => proto::Value::Integer { value },
        Value::Real(value) => proto::Value::Float { value },
        Value::Text(value) => proto::Value::Text {
            value: value.into(),
        },
        Value::Blob(value) => proto::Value::Blob {
            value: Bytes::from(value),
        },
    }
}

fn from_hrana(result: proto::StmtResult) -> Result<Rows, DbError> {
    let columns = result
        .cols
        .into_iter()
        .map(|c| c.name.unwrap_or_default())
        .collect();
    let rows = result
        .rows
        .into_iter()
        .map(|row| row.values.into_iter().map(from_hrana_value).collect())
        .collect::<Result<_, _>>()?;
    Ok(Rows { columns, rows })
}

fn from_hrana_value(value: proto::Value) -> Result<Value, DbError> {
    Ok(match value {
        proto::Value::None => return Err(DbError::Io("a value without a type".into())),
        proto::Value::Null => Value::Null,
        proto::Value::Integer { value } => Value::Integer(value),
        proto::Value::Float { value } => Value::Real(value),
        proto::Value::Text { value } => Value::Text(value.to_string()),
        proto::Value::Blob { value } => Value::Blob(value.to_vec()),
    })
}
