//! The admin listener (`--admin-listen`, off by default): Prometheus
//! `/metrics` and `/healthz`, apart from the public port so that neither is
//! reachable by the clients of any tenant.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::metrics::{CONTENT_TYPE, Metrics, TenantGauges};
use crate::tenant::Tenants;

/// Accepts connections forever; the task is dropped at shutdown.
pub async fn serve(listener: TcpListener, tenants: Arc<Tenants>, metrics: Arc<Metrics>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("admin accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let tenants = Arc::clone(&tenants);
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let resp = answer(req.method(), req.uri().path(), &tenants, &metrics);
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!("admin connection ended: {e}");
            }
        });
    }
}

fn answer(
    method: &hyper::Method,
    path: &str,
    tenants: &Tenants,
    metrics: &Metrics,
) -> hyper::Response<Full<Bytes>> {
    let (status, content_type, body) = match (method, path) {
        (&hyper::Method::GET, "/metrics") => (
            200,
            CONTENT_TYPE,
            metrics.render(tenants.iter().map(|t| TenantGauges {
                tenant: t.name.to_string(),
                db_size_bytes: t.db.size_bytes(),
                idle_instances: t.pool.idle_instances(),
                idle_instance_memory_bytes: t.pool.idle_instance_memory(),
            })),
        ),
        (&hyper::Method::GET, "/healthz") => (
            200,
            "application/json",
            serde_json::json!({ "status": "ok", "tenants": tenants.len() }).to_string(),
        ),
        (_, "/metrics" | "/healthz") => (
            405,
            "application/json",
            r#"{"error":"Method not allowed"}"#.to_owned(),
        ),
        _ => (
            404,
            "application/json",
            r#"{"error":"Not found"}"#.to_owned(),
        ),
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}
