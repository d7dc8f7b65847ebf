//! Periodic cleanup: every tenant's `maintenance.cleanup` export every
//! `--cleanup-every` seconds (default hourly), jittered so that many tenants
//! do not all hit the disk at once. It runs under the tenant's limits and
//! takes one of its concurrency slots. (The guest also cleans up during
//! requests, throttled by its `cleanup_interval` variable: all Spin has.)

use std::sync::Arc;
use std::time::Duration;

use crate::bindings::exports::wasmpaste::app::maintenance::CleanupReport;
use crate::metrics::Metrics;
use crate::tenant::{Tenant, Tenants};

/// Starts one timer task per tenant, each pass `every` apart (give or take
/// 10%); they end with the runtime.
pub fn start(tenants: &Tenants, metrics: &Arc<Metrics>, every: Duration) {
    for tenant in tenants.iter() {
        let tenant = Arc::clone(tenant);
        let metrics = Arc::clone(metrics);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(jittered(every)).await;
                // Failures are logged and counted inside; the next pass retries.
                let _ = cleanup(&tenant, &metrics, "scheduled").await;
            }
        });
    }
}

/// `base` give or take 10%.
fn jittered(base: Duration) -> Duration {
    let unit = f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / f64::from(u32::MAX);
    base.mul_f64(0.9 + 0.2 * unit)
}

/// One cleanup pass of `tenant`, logged and counted.
pub async fn cleanup(
    tenant: &Tenant,
    metrics: &Metrics,
    why: &'static str,
) -> wasmtime::Result<CleanupReport> {
    let result = tenant.pool.cleanup("cleanup").await;
    match &result {
        Ok(r) => {
            tracing::info!(
                tenant = %tenant.name,
                why,
                expired_pastes = r.expired_pastes,
                expired_short_urls = r.expired_short_urls,
                used_nonces = r.used_nonces,
                rate_windows = r.rate_windows,
                content_hashes = r.content_hashes,
                "cleanup"
            );
            metrics.cleanup(&tenant.name, Some(&removed(r)));
        }
        Err(e) => {
            tracing::error!(tenant = %tenant.name, why, "cleanup failed: {e:#}");
            metrics.cleanup(&tenant.name, None);
        }
    }
    result
}

/// What a pass removed, by the kind the metrics label it with (the log
/// line's field names).
fn removed(r: &CleanupReport) -> [(&'static str, u64); 5] {
    [
        ("expired_pastes", r.expired_pastes),
        ("expired_short_urls", r.expired_short_urls),
        ("used_nonces", r.used_nonces),
        ("rate_windows", r.rate_windows),
        ("content_hashes", r.content_hashes),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(100);
        for _ in 0..1000 {
            let d = jittered(base);
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
    }
}
