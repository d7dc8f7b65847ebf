//! The HTTP front: hyper on tokio. HTTP only: a request is checked against
//! its tenant's body and concurrency limits, its headers are prepared, it is
//! routed to the tenant's instance pool (`pool.rs`), and the outcome becomes
//! a response.
//!
//! The host sets `spin-client-addr` from the socket (dropping any `spin-*`
//! header a client sent), exactly as Spin does, so the guest reads the client
//! address one way on both hosts. Failures of the guest itself (trap,
//! timeout, full pool) become JSON errors with the security headers the guest
//! would have sent; they never take other requests down.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use wasmpaste_contract::http::{SECURITY_HEADERS, is_acceptable_request_id, uuid_v4};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::body_limit::{CappedBody, DRAIN_MAX};
use crate::client_download::ClientDownload;
use crate::metrics::{Metrics, Rejection, route_class};
use crate::pool::Failure;
use crate::tenant::{Tenant, Tenants};

/// A client that has not sent its headers after this long is cut off (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line + headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;

pub struct Server {
    tenants: Arc<Tenants>,
    metrics: Arc<Metrics>,
    /// `GET /client`, when this host serves the client.
    client: Option<ClientDownload>,
}

impl Server {
    pub fn new(
        tenants: Arc<Tenants>,
        metrics: Arc<Metrics>,
        client: Option<ClientDownload>,
    ) -> Self {
        Self {
            tenants,
            metrics,
            client,
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
            let conn = http1_builder().serve_connection(
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
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        let Some(tenant) = self.tenants.route(host, &path).cloned() else {
            let resp = error_response(404, "No service at this host and path", &rid);
            tracing::info!(
                rid = %rid,
                %method,
                path = %path,
                status = 404,
                client = %peer.ip(),
                "request for no tenant"
            );
            return resp;
        };
        let route = route_class(tenant.strip_prefix(&path));
        let resp = self.run(&tenant, req, peer, &rid).await;
        let status = resp.status().as_u16();
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.request(&tenant.name, route, status, elapsed);
        log_request(&rid, &tenant.name, &method, &path, status, elapsed, peer);
        resp
    }

    async fn run(
        &self,
        tenant: &Arc<Tenant>,
        mut req: hyper::Request<Incoming>,
        peer: SocketAddr,
        rid: &str,
    ) -> hyper::Response<HyperOutgoingBody> {
        if let Some(client) = &self.client
            && let Some(resp) =
                client.answer(req.method(), tenant.strip_prefix(req.uri().path()), rid)
        {
            return resp;
        }
        let max_body = tenant.limits.max_body_bytes;
        if let Some(size) = declared_length(req.headers()).filter(|&n| n > max_body) {
            self.metrics.rejected(&tenant.name, Rejection::Body);
            linger(req, size - max_body, tenant.limits.request_timeout, rid).await;
            return too_large(size, max_body, rid);
        }
        let Some(slot) = tenant.pool.try_slot() else {
            self.metrics.rejected(&tenant.name, Rejection::Concurrency);
            return busy(503, "Server busy, retry shortly", rid);
        };
        prepare_headers(req.headers_mut(), peer, rid);
        if tenant.path_prefix.is_some() {
            match strip_uri(req.uri(), tenant) {
                Ok(uri) => *req.uri_mut() = uri,
                Err(()) => return error_response(400, "Bad request: invalid path", rid),
            }
        }
        // A body without a declared length is cut off at the limit as it
        // streams. The guest then sees a broken stream (wasi-http does not
        // pass it the error code), so the host answers for it below.
        let over_limit = Arc::new(AtomicBool::new(false));
        let req = req.map(|body| CappedBody::new(body, max_body, Arc::clone(&over_limit)));
        match tenant.pool.serve(req, rid, slot).await {
            Ok(_) if over_limit.load(Ordering::Relaxed) => {
                self.metrics.rejected(&tenant.name, Rejection::Body);
                let message = format!("Request body too large (at most {max_body} bytes)");
                error_response(413, &message, rid)
            }
            Ok(resp) => resp,
            Err(failure) => self.failure(tenant, failure, rid),
        }
    }

    /// The answer when the guest could not answer itself.
    fn failure(
        &self,
        tenant: &Tenant,
        failure: Failure,
        rid: &str,
    ) -> hyper::Response<HyperOutgoingBody> {
        let name = &*tenant.name;
        match failure {
            // No Host header and no authority: nothing to route on.
            Failure::NoAuthority => error_response(400, "Bad request: missing Host header", rid),
            Failure::OverQuota(over) => {
                self.metrics.rejected(name, Rejection::CpuQuota);
                // Whole seconds, rounded up: when the quota will have refilled.
                let retry = over.retry_after.as_millis().div_ceil(1000).max(1);
                let retry = u64::try_from(retry).unwrap_or(u64::MAX);
                let mut resp = error_response(503, "Server busy, retry shortly", rid);
                resp.headers_mut()
                    .insert("retry-after", HeaderValue::from(retry));
                resp
            }
            Failure::Setup(err) => {
                tracing::error!(rid, tenant = name, "cannot create the response: {err:#}");
                error_response(500, "Internal server error", rid)
            }
            Failure::Guest(code) => {
                tracing::error!(
                    rid,
                    tenant = name,
                    "the guest answered with an error: {code:?}"
                );
                error_response(500, "Internal server error", rid)
            }
            Failure::Timeout(err) => {
                self.metrics.timeout(name);
                tracing::warn!(rid, tenant = name, "request exceeded its deadline: {err:#}");
                error_response(504, "Request timed out", rid)
            }
            Failure::Trap(err) => {
                self.metrics.trap(name);
                tracing::error!(rid, tenant = name, "the guest trapped: {err:#}");
                error_response(500, "Internal server error", rid)
            }
            Failure::Host(err) => {
                self.metrics.rejected(name, Rejection::Pool);
                tracing::error!(rid, tenant = name, "cannot run the guest: {err:#}");
                busy(503, "Service unavailable", rid)
            }
        }
    }
}

/// Reads and discards a body declared `excess` bytes over the limit, so a
/// client already sending reads our 413 instead of a reset connection (the
/// same lingering read as a streamed body, body_limit.rs, within the same
/// budget). A client that asked `Expect: 100-continue` waits for our answer
/// and sends nothing.
async fn linger(req: hyper::Request<Incoming>, excess: u64, timeout: Duration, rid: &str) {
    if excess > DRAIN_MAX || expects_continue(req.headers()) {
        return;
    }
    let drain = async {
        let mut body = req.into_body();
        while let Some(Ok(_)) = body.frame().await {}
    };
    if tokio::time::timeout(timeout, drain).await.is_err() {
        tracing::debug!(rid, "gave up draining a body over the limit");
    }
}

/// The host's 413, shaped like the guest's ("size" when the client declared it).
fn too_large(size: u64, max: u64, rid: &str) -> hyper::Response<HyperOutgoingBody> {
    let body =
        serde_json::json!({ "error": "Request body too large", "max_size": max, "size": size });
    json_response(413, &body, rid)
}

/// HTTP/1 connection settings of the public port: slowloris and huge-head
/// protection, keep-alive. (The benchmarks' native server uses them too.)
pub fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    builder
}

/// A refusal the client should retry after a second.
fn busy(status: u16, message: &str, rid: &str) -> hyper::Response<HyperOutgoingBody> {
    let mut resp = error_response(status, message, rid);
    resp.headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    resp
}

/// Whether the client waits for `100 Continue` before sending its body.
fn expects_continue(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The `Content-Length` a client declared, if it is a number.
fn declared_length(headers: &hyper::HeaderMap) -> Option<u64> {
    headers
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sets `spin-client-addr` from the socket (dropping any `spin-*` header a
/// client sent) and the request id, so the guest logs under the host's id.
fn prepare_headers(headers: &mut hyper::HeaderMap, peer: SocketAddr, rid: &str) {
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
    if let Ok(rid) = HeaderValue::from_str(rid) {
        headers.insert("x-request-id", rid);
    }
}

/// The request URI with the tenant's path prefix removed, query kept.
fn strip_uri(uri: &hyper::Uri, tenant: &Tenant) -> Result<hyper::Uri, ()> {
    let path = tenant.strip_prefix(uri.path());
    let target = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(target.parse().map_err(drop)?);
    hyper::Uri::from_parts(parts).map_err(drop)
}

/// The access log line of one request answered by a tenant. Public so the
/// native baseline of the benchmarks (bench/src/bin/native.rs) pays for the
/// same line.
pub fn log_request(
    rid: &str,
    tenant: &str,
    method: &hyper::Method,
    path: &str,
    status: u16,
    seconds: f64,
    peer: SocketAddr,
) {
    tracing::info!(
        rid = %rid,
        tenant = %tenant,
        %method,
        path = %path,
        status,
        ms = seconds * 1000.0,
        client = %peer.ip(),
        "request"
    );
}

/// The client's `X-Request-ID` when it is plain, else a new random id (for
/// host-side errors and logs; the guest applies the same rule).
pub fn request_id(headers: &hyper::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable_request_id(v))
        .map_or_else(random_id, str::to_owned)
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // Only a correlation id: if the OS RNG fails, zeros still correlate.
    let _ = getrandom::fill(&mut bytes);
    uuid_v4(bytes)
}

/// A JSON error the host itself sends, shaped like the guest's errors.
pub fn error_response(status: u16, message: &str, rid: &str) -> hyper::Response<HyperOutgoingBody> {
    json_response(status, &serde_json::json!({ "error": message }), rid)
}

fn json_response(
    status: u16,
    body: &serde_json::Value,
    rid: &str,
) -> hyper::Response<HyperOutgoingBody> {
    let body = Bytes::from(body.to_string());
    let length = body.len();
    host_response(
        status,
        &[("content-type", "application/json")],
        body,
        length,
        rid,
    )
}

/// A response the host itself sends, with the headers the guest would have
/// set on it (security headers, request id). `length` is the
/// `Content-Length`: the body's, or for a HEAD answer the GET's.
pub fn host_response(
    status: u16,
    headers: &[(&str, &str)],
    body: Bytes,
    length: usize,
    rid: &str,
) -> hyper::Response<HyperOutgoingBody> {
    let mut builder = hyper::Response::builder()
        .status(status)
        .header("content-length", length);
    for (name, value) in headers.iter().chain(SECURITY_HEADERS) {
        builder = builder.header(*name, *value);
    }
    if let Ok(rid) = HeaderValue::from_str(rid) {
        builder = builder.header("x-request-id", rid);
    }
    builder
        .body(full(body))
        .unwrap_or_else(|_| hyper::Response::new(full(Bytes::new())))
}

fn full(bytes: Bytes) -> HyperOutgoingBody {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_client_request_ids_are_kept_others_replaced() {
        let mut h = hyper::HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("trace-1.2:3"));
        assert_eq!(request_id(&h), "trace-1.2:3");
        h.insert("x-request-id", HeaderValue::from_static("a b"));
        let replaced = request_id(&h);
        assert_eq!(replaced.len(), 36);
        assert_ne!(request_id(&h), replaced);
    }
}
