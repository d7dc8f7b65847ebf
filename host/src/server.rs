//! The HTTP front: hyper on tokio, plain HTTP/1.1 and (tls.rs) HTTPS with
//! HTTP/1.1 and HTTP/2. A request is checked against
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
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use wasmpaste_contract::http::{SECURITY_HEADERS, is_acceptable_request_id, uuid_v4};
use wasmpaste_contract::identity::{
    CLIENT_FINGERPRINT_HEADER, PROXY_SECRET_HEADER, PROXY_SECRET_VARIABLE,
};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::body_limit::{CappedBody, DRAIN_MAX};
use crate::client_download::ClientDownload;
use crate::metrics::{Metrics, Rejection, route_class};
use crate::pool::Failure;
use crate::tenant::{Tenant, Tenants};
use crate::tls::{ConnIdentity, Identity, TlsFront};
use crate::variables::Lookup;

/// A client that has not sent its headers after this long is cut off (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line + headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Requests in flight on one HTTP/2 connection (the tenant's concurrency
/// limit still applies across connections).
const MAX_H2_STREAMS: u32 = 128;

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

    /// Accepts connections on the plain and the HTTPS listener until
    /// `shutdown` resolves, then waits up to `drain` for the requests in
    /// flight to finish.
    pub async fn serve(
        self: Arc<Self>,
        plain: Option<TcpListener>,
        tls: Option<(TcpListener, Arc<TlsFront>)>,
        shutdown: impl Future<Output = ()>,
        drain: Duration,
    ) -> wasmtime::Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        let (tls_listener, front) = tls.unzip();
        loop {
            let (accepted, on_tls) = tokio::select! {
                accepted = accept(plain.as_ref()) => (accepted, false),
                accepted = accept(tls_listener.as_ref()) => (accepted, true),
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let server = Arc::clone(&self);
            match (on_tls, &front) {
                (true, Some(front)) => {
                    let front = Arc::clone(front);
                    let watcher = graceful.watcher();
                    // The handshake runs in the connection's own task, so a
                    // slow one never holds up accepting the next.
                    tokio::spawn(async move {
                        let Some(accepted) = front.accept(stream, peer).await else {
                            return;
                        };
                        let identity = Arc::new(accepted.identity);
                        let builder = auto_builder();
                        let conn = builder.serve_connection(
                            TokioIo::new(accepted.stream),
                            service_fn(move |req| {
                                let server = Arc::clone(&server);
                                let identity = Arc::clone(&identity);
                                async move {
                                    Ok::<_, Infallible>(
                                        server.handle(req, peer, Some(&identity)).await,
                                    )
                                }
                            }),
                        );
                        if let Err(e) = watcher.watch(conn.into_owned()).await {
                            tracing::debug!(%peer, "TLS connection ended: {e}");
                        }
                    });
                }
                _ => {
                    let conn = http1_builder().serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |req| {
                            let server = Arc::clone(&server);
                            async move { Ok::<_, Infallible>(server.handle(req, peer, None).await) }
                        }),
                    );
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                }
            }
        }
        drop((plain, tls_listener));
        tracing::info!(
            seconds = drain.as_secs(),
            "shutting down: waiting for requests in flight"
        );
        if tokio::time::timeout(drain, graceful.shutdown())
            .await
            .is_err()
        {
            // A request past its own deadline is already answered; what is
            // left is a response a slow reader has not taken yet.
            tracing::warn!(
                "shutting down: gave up on connections still open after the shutdown timeout"
            );
        }
        Ok(())
    }

    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        peer: SocketAddr,
        tls: Option<&ConnIdentity>,
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
        let resp = self.run(&tenant, req, peer, tls, &rid).await;
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
        tls: Option<&ConnIdentity>,
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
        if let Some(conn) = tls {
            match conn.for_tenant(&tenant.name) {
                Identity::Misdirected => {
                    return error_response(
                        421,
                        "Misdirected request: this connection's client certificate is for \
                         another host; open a new connection for this one",
                        rid,
                    );
                }
                identity => {
                    if matches!(identity, Identity::Verified(_)) {
                        self.metrics.client_cert_request(&tenant.name);
                    }
                    set_identity(req.headers_mut(), identity, tenant);
                }
            }
        }
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

/// On the HTTPS port the host is the proxy: the identity headers are its
/// own (what the client sent is dropped), with the tenant's `proxy_secret`
/// when it has one, so the guest trusts them either way.
fn set_identity(headers: &mut hyper::HeaderMap, identity: Identity<'_>, tenant: &Tenant) {
    headers.remove(CLIENT_FINGERPRINT_HEADER);
    headers.remove(PROXY_SECRET_HEADER);
    let Identity::Verified(fingerprint) = identity else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(fingerprint) {
        headers.insert(CLIENT_FINGERPRINT_HEADER, value);
    }
    if let Lookup::Found(secret) = tenant.variables.lookup(PROXY_SECRET_VARIABLE)
        && !secret.is_empty()
        && let Ok(value) = HeaderValue::from_str(secret)
    {
        headers.insert(PROXY_SECRET_HEADER, value);
    }
}

/// The next connection of `listener`; never, without one.
async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Connection settings of the HTTPS port: HTTP/1.1 as on the plain port,
/// and HTTP/2 (by ALPN) with the same bound on request heads.
fn auto_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_H2_STREAMS);
    builder
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
    // The thread's CSPRNG (seeded from the OS, reseeded periodically): ids
    // stay unguessable without a getrandom syscall per request.
    rand::fill(&mut bytes);
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
