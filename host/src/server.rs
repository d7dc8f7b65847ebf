//! The HTTP front: hyper on tokio, one fresh instance per request.
//!
//! The host sets `spin-client-addr` from the socket (dropping any `spin-*`
//! header a client sent), exactly as Spin does, so the guest reads the client
//! address one way on both hosts. Failures of the guest itself (trap,
//! timeout, full pool) become JSON errors with the security headers the guest
//! would have sent; they never take other requests down.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::engine::{Failure, Runtime, classify};

/// A client that has not sent its headers after this long is cut off (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line + headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Extra time after the guest's own deadline before the host gives up on it:
/// the guest's epoch deadline should fire first and answer properly.
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// Security headers of every response (the guest sets the same ones).
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (
        "permissions-policy",
        "geolocation=(), microphone=(), camera=()",
    ),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    (
        "cache-control",
        "no-store, no-cache, must-revalidate, private",
    ),
    ("pragma", "no-cache"),
];

pub struct Server {
    runtime: Arc<Runtime>,
    slots: Arc<Semaphore>,
}

impl Server {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        let permits = usize::try_from(runtime.limits.max_concurrency).unwrap_or(usize::MAX);
        Self {
            runtime,
            slots: Arc::new(Semaphore::new(permits)),
        }
    }

    /// Accepts connections until `shutdown` resolves, then waits for the
    /// requests in flight to finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> wasmtime::Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let server = Arc::clone(&self);
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(true)
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |req| {
                        let server = Arc::clone(&server);
                        async move { Ok::<_, Infallible>(server.handle(req, peer).await) }
                    }),
                );
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            });
        }
        drop(listener);
        tracing::info!("shutting down: waiting for requests in flight");
        graceful.shutdown().await;
        Ok(())
    }

    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        peer: SocketAddr,
    ) -> hyper::Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let rid = request_id(req.headers());
        let resp = self.run(req, peer, &rid).await;
        tracing::info!(
            rid = %rid,
            %method,
            path = %path,
            status = resp.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            client = %peer.ip(),
            "request"
        );
        resp
    }

    async fn run(
        &self,
        mut req: hyper::Request<Incoming>,
        peer: SocketAddr,
        rid: &str,
    ) -> hyper::Response<HyperOutgoingBody> {
        let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
            let mut resp = error_response(503, "Server busy, retry shortly", rid);
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return resp;
        };
        let headers = req.headers_mut();
        let spoofed: Vec<HeaderName> = headers
            .keys()
            .filter(|n| n.as_str().starts_with("spin-"))
            .cloned()
            .collect();
        for name in spoofed {
            headers.remove(name);
        }
        if let Ok(addr) = HeaderValue::from_str(&peer.to_string()) {
            headers.insert("spin-client-addr", addr);
        }

        let runtime = Arc::clone(&self.runtime);
        let mut store = runtime.store();
        let (sender, receiver) = oneshot::channel();
        let wasi_req = match store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
        {
            Ok(r) => r,
            // No Host header and no authority: nothing to route on.
            Err(_) => return error_response(400, "Bad request: missing Host header", rid),
        };
        let out = match store.data_mut().http().new_response_outparam(sender) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(rid, "cannot create the response: {e:#}");
                return error_response(500, "Internal server error", rid);
            }
        };
        let deadline = runtime.limits.request_timeout + DEADLINE_GRACE;
        let task = tokio::spawn(async move {
            let _slot = permit;
            let call = async {
                let instance = runtime.proxy.instantiate_async(&mut store).await?;
                instance
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, wasi_req, out)
                    .await
            };
            // Also bounds time spent waiting on a slow client's body.
            match tokio::time::timeout(deadline, call).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime::Error::from(wasmtime::Trap::Interrupt)),
            }
        });

        match receiver.await {
            Ok(Ok(resp)) => resp,
            Ok(Err(code)) => {
                tracing::error!(rid, "the guest answered with an error: {code:?}");
                error_response(500, "Internal server error", rid)
            }
            // The guest never set a response: find out why from the task.
            Err(_) => {
                let err = match task.await {
                    Ok(Ok(())) => {
                        wasmtime::format_err!("the guest returned without sending a response")
                    }
                    Ok(Err(e)) => e,
                    Err(e) => wasmtime::Error::from(e),
                };
                match classify(&err) {
                    Failure::Timeout => {
                        tracing::warn!(rid, "request exceeded its deadline: {err:#}");
                        error_response(504, "Request timed out", rid)
                    }
                    Failure::Trap => {
                        tracing::error!(rid, "the guest trapped: {err:#}");
                        error_response(500, "Internal server error", rid)
                    }
                    Failure::Host => {
                        tracing::error!(rid, "cannot run the guest: {err:#}");
                        let mut resp = error_response(503, "Service unavailable", rid);
                        resp.headers_mut()
                            .insert("retry-after", HeaderValue::from_static("1"));
                        resp
                    }
                }
            }
        }
    }
}

/// The client's `X-Request-ID` when it is plain, else a new random id (for
/// host-side errors and logs; the guest applies the same rule).
fn request_id(headers: &hyper::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
        })
        .map_or_else(random_id, str::to_owned)
}

fn random_id() -> String {
    use std::fmt::Write as _;
    let mut bytes = [0u8; 16];
    // Only a correlation id: if the OS RNG fails, zeros still correlate.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A JSON error the host itself sends, shaped like the guest's errors.
pub fn error_response(status: u16, message: &str, rid: &str) -> hyper::Response<HyperOutgoingBody> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut builder = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len());
    for (name, value) in SECURITY_HEADERS {
        builder = builder.header(*name, *value);
    }
    if let Ok(rid) = HeaderValue::from_str(rid) {
        builder = builder.header("x-request-id", rid);
    }
    let body = Full::new(Bytes::from(body))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    builder.body(body).unwrap_or_else(|_| {
        hyper::Response::new(
            Full::new(Bytes::new())
                .map_err(|never: Infallible| match never {})
                .boxed_unsync(),
        )
    })
}
