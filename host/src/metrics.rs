//! Prometheus metrics of the host, served on the admin listener.
//!
//! Labels are bounded: tenants come from the config file, routes are a fixed
//! set of classes (never raw paths, which clients choose), statuses are HTTP
//! codes.

use prometheus_client::encoding::EncodeLabelSet;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub tenant: String,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub tenant: String,
    pub kind: &'static str,
}

/// Why the host refused a request before the guest ran.
#[derive(Clone, Copy, Debug)]
pub enum Rejection {
    /// The tenant had `max_concurrency` requests in flight.
    Concurrency,
    /// The body was over `max_body_mib`.
    Body,
    /// The shared instance pool was exhausted.
    Pool,
    /// The tenant was over its CPU quota with `cpu_queue` requests waiting.
    CpuQuota,
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Self::Concurrency => "concurrency",
            Self::Body => "body_size",
            Self::Pool => "instance_pool",
            Self::CpuQuota => "cpu_quota",
        }
    }
}

/// How a TLS handshake on the HTTPS port ended.
#[derive(Clone, Copy, Debug)]
pub enum Handshake {
    /// Done, with a client certificate that verified.
    ClientCert,
    /// Done, without a client certificate (anonymous use).
    NoClientCert,
    /// Refused: the client's certificate did not verify.
    BadClientCert,
    /// Not done within the handshake timeout.
    Timeout,
    /// Anything else: no common protocol, not TLS at all, the client left.
    Failed,
}

impl Handshake {
    fn label(self) -> &'static str {
        match self {
            Self::ClientCert => "client_cert",
            Self::NoClientCert => "no_client_cert",
            Self::BadClientCert => "bad_client_cert",
            Self::Timeout => "timeout",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// What a tenant's gauges show at the moment of a scrape.
pub struct TenantGauges {
    pub tenant: String,
    pub db_size_bytes: u64,
    pub idle_instances: usize,
    /// The largest linear memory among the idle instances.
    pub idle_instance_memory_bytes: usize,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram>,
    instantiation: Family<TenantLabels, Histogram>,
    ready_used: Family<TenantLabels, Counter>,
    traps: Family<TenantLabels, Counter>,
    timeouts: Family<TenantLabels, Counter>,
    rejections: Family<KindLabels, Counter>,
    db_size: Family<TenantLabels, Gauge>,
    idle_instances: Family<TenantLabels, Gauge>,
    instance_memory: Family<TenantLabels, Gauge>,
    cleanup_runs: Family<KindLabels, Counter>,
    cleanup_removed: Family<KindLabels, Counter>,
    cpu_seconds: Family<TenantLabels, Counter<f64, AtomicU64>>,
    cpu_wait: Family<TenantLabels, Histogram>,
    cpu_throttled: Family<TenantLabels, Counter>,
    db_statement: Family<TenantLabels, Histogram>,
    db_errors: Family<KindLabels, Counter>,
    tls_handshakes: Family<OutcomeLabels, Counter>,
    client_cert_requests: Family<TenantLabels, Counter>,
}

/// One tenant's CPU metrics, resolved once so that charging CPU on every
/// poll of a guest call is an atomic add, not a label lookup.
#[derive(Clone)]
pub struct CpuMetrics {
    /// Time guest calls ran on the executor's threads (guest code and the
    /// host calls it makes inline): CPU time, unless the OS gave those
    /// threads' cores to another process meanwhile.
    pub cpu_seconds: Counter<f64, AtomicU64>,
    /// Time requests spent waiting for CPU (a heavy slot or the quota).
    pub wait: Histogram,
    /// Requests that had to wait for the tenant's CPU quota.
    pub throttled: Counter,
}

/// One tenant's database metrics (every backend), resolved once.
#[derive(Clone)]
pub struct DbMetrics {
    /// Time of each statement, from the guest's call to the rows: on a
    /// libSQL server, one network round trip.
    pub statement: Histogram,
    errors: Family<KindLabels, Counter>,
    tenant: String,
}

impl DbMetrics {
    /// Counts a failed statement by kind (`unavailable`, `full`, `denied`, `other`).
    pub fn failed(&self, kind: &'static str) {
        self.errors
            .get_or_create(&KindLabels {
                tenant: self.tenant.clone(),
                kind,
            })
            .inc();
    }
}

impl Default for DbMetrics {
    /// Unregistered metrics, for tests.
    fn default() -> Self {
        Self {
            statement: seconds_histogram(),
            errors: Family::default(),
            tenant: String::new(),
        }
    }
}

impl Default for CpuMetrics {
    /// Unregistered metrics, for tests.
    fn default() -> Self {
        Self {
            cpu_seconds: Counter::default(),
            wait: seconds_histogram(),
            throttled: Counter::default(),
        }
    }
}

fn seconds_histogram() -> Histogram {
    // 100 µs to ~13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

fn instantiation_histogram() -> Histogram {
    // 1 µs to ~16 ms: instantiation from the pool is microseconds.
    Histogram::new(exponential_buckets(0.000_001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wasmpaste");
        let requests = Family::default();
        let duration = Family::new_with_constructor(seconds_histogram as fn() -> Histogram);
        let instantiation =
            Family::new_with_constructor(instantiation_histogram as fn() -> Histogram);
        let ready_used = Family::default();
        let traps = Family::default();
        let timeouts = Family::default();
        let rejections = Family::default();
        let db_size = Family::default();
        let idle_instances = Family::default();
        let instance_memory = Family::default();
        let cleanup_runs = Family::default();
        let cleanup_removed = Family::default();
        let cpu_seconds = Family::default();
        let cpu_wait = Family::new_with_constructor(seconds_histogram as fn() -> Histogram);
        let cpu_throttled = Family::default();
        registry.register(
            "requests",
            "HTTP requests answered, by tenant, route class and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request head to response head, by tenant, route class and status",
            duration.clone(),
        );
        registry.register(
            "instantiation_seconds",
            "Time to instantiate the component, for a request or ahead of one (ready_instances)",
            instantiation.clone(),
        );
        registry.register(
            "ready_instances_used",
            "Requests served by an instance instantiated before they arrived (ready_instances)",
            ready_used.clone(),
        );
        registry.register(
            "guest_traps",
            "Requests whose guest trapped (panic, out of memory, bug)",
            traps.clone(),
        );
        registry.register(
            "guest_timeouts",
            "Requests stopped at their deadline",
            timeouts.clone(),
        );
        registry.register(
            "limit_rejections",
            "Requests refused by a tenant limit before the guest ran, by limit",
            rejections.clone(),
        );
        registry.register(
            "db_size_bytes",
            "Size of each tenant's database file",
            db_size.clone(),
        );
        registry.register(
            "idle_instances",
            "Instances waiting for a request: kept for reuse (max_instance_reuse above 1) or ready, never used (ready_instances)",
            idle_instances.clone(),
        );
        registry.register(
            "instance_memory_bytes",
            "Largest linear memory among the instances waiting for a request (see idle_instances)",
            instance_memory.clone(),
        );
        registry.register(
            "cleanup_runs",
            "Scheduled cleanup passes, by outcome (ok, error)",
            cleanup_runs.clone(),
        );
        registry.register(
            "cleanup_removed",
            "Rows removed by scheduled cleanup, by kind",
            cleanup_removed.clone(),
        );
        registry.register(
            "guest_cpu_seconds",
            "Time guest calls ran on the executor's threads (guest code and the host calls it makes inline), by tenant",
            cpu_seconds.clone(),
        );
        registry.register(
            "cpu_wait_seconds",
            "Time requests waited for CPU: a heavy slot, or the tenant's CPU quota",
            cpu_wait.clone(),
        );
        registry.register(
            "cpu_throttled",
            "Requests that waited for their tenant's CPU quota (cpu_ms_per_sec)",
            cpu_throttled.clone(),
        );
        let db_statement = Family::new_with_constructor(seconds_histogram as fn() -> Histogram);
        registry.register(
            "db_statement_seconds",
            "Time of each SQL statement of the guest (on a libSQL server: one round trip), by tenant",
            db_statement.clone(),
        );
        let db_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "db_errors",
            "Failed SQL statements by tenant and kind: unavailable (server unreachable, lock wait given up), full, denied, other",
            db_errors.clone(),
        );
        let tls_handshakes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes on the HTTPS port, by outcome: client_cert, no_client_cert, bad_client_cert (refused), timeout, failed",
            tls_handshakes.clone(),
        );
        let client_cert_requests = Family::<TenantLabels, Counter>::default();
        registry.register(
            "client_cert_requests",
            "Requests that carried a verified client certificate's identity to the tenant (HTTPS port)",
            client_cert_requests.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            instantiation,
            ready_used,
            traps,
            timeouts,
            rejections,
            db_size,
            idle_instances,
            instance_memory,
            cleanup_runs,
            cleanup_removed,
            cpu_seconds,
            cpu_wait,
            cpu_throttled,
            db_statement,
            db_errors,
            tls_handshakes,
            client_cert_requests,
        }
    }
}

fn tenant(name: &str) -> TenantLabels {
    TenantLabels {
        tenant: name.to_owned(),
    }
}

impl Metrics {
    pub fn request(&self, tenant: &str, route: &'static str, status: u16, seconds: f64) {
        let labels = RequestLabels {
            tenant: tenant.to_owned(),
            route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).observe(seconds);
    }

    /// The CPU metrics of tenant `name`.
    pub fn cpu(&self, name: &str) -> CpuMetrics {
        let labels = tenant(name);
        CpuMetrics {
            cpu_seconds: self.cpu_seconds.get_or_create(&labels).clone(),
            wait: self.cpu_wait.get_or_create(&labels).clone(),
            throttled: self.cpu_throttled.get_or_create(&labels).clone(),
        }
    }

    /// The database metrics of tenant `name`.
    pub fn db(&self, name: &str) -> DbMetrics {
        DbMetrics {
            statement: self.db_statement.get_or_create(&tenant(name)).clone(),
            errors: self.db_errors.clone(),
            tenant: name.to_owned(),
        }
    }

    /// The instantiation-time histogram of tenant `name`, looked up once
    /// (its pool observes it at every instantiation).
    pub fn instantiation(&self, name: &str) -> Histogram {
        self.instantiation.get_or_create(&tenant(name)).clone()
    }

    /// The counter of tenant `name`'s requests served by a ready instance,
    /// looked up once like [`Self::instantiation`].
    pub fn ready_used(&self, name: &str) -> Counter {
        self.ready_used.get_or_create(&tenant(name)).clone()
    }

    pub fn handshake(&self, outcome: Handshake) {
        self.tls_handshakes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    pub fn client_cert_request(&self, name: &str) {
        self.client_cert_requests.get_or_create(&tenant(name)).inc();
    }

    pub fn trap(&self, name: &str) {
        self.traps.get_or_create(&tenant(name)).inc();
    }

    pub fn timeout(&self, name: &str) {
        self.timeouts.get_or_create(&tenant(name)).inc();
    }

    pub fn rejected(&self, name: &str, why: Rejection) {
        let labels = KindLabels {
            tenant: name.to_owned(),
            kind: why.label(),
        };
        self.rejections.get_or_create(&labels).inc();
    }

    /// One scheduled cleanup pass: `removed` is `None` when it failed.
    pub fn cleanup(&self, name: &str, removed: Option<&[(&'static str, u64)]>) {
        let outcome = if removed.is_some() { "ok" } else { "error" };
        self.cleanup_runs
            .get_or_create(&KindLabels {
                tenant: name.to_owned(),
                kind: outcome,
            })
            .inc();
        for &(kind, n) in removed.unwrap_or_default() {
            self.cleanup_removed
                .get_or_create(&KindLabels {
                    tenant: name.to_owned(),
                    kind,
                })
                .inc_by(n);
        }
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, gauges: impl IntoIterator<Item = TenantGauges>) -> String {
        for g in gauges {
            let labels = tenant(&g.tenant);
            let size = i64::try_from(g.db_size_bytes).unwrap_or(i64::MAX);
            self.db_size.get_or_create(&labels).set(size);
            let idle = i64::try_from(g.idle_instances).unwrap_or(i64::MAX);
            self.idle_instances.get_or_create(&labels).set(idle);
            let memory = i64::try_from(g.idle_instance_memory_bytes).unwrap_or(i64::MAX);
            self.instance_memory.get_or_create(&labels).set(memory);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A bounded label for a request path (as the guest sees it).
pub fn route_class(path: &str) -> &'static str {
    let mut segments = path.trim_start_matches('/').split('/');
    match segments.next().unwrap_or("") {
        "" => "index",
        "health" => "health",
        "challenge" => "challenge",
        "register" => match segments.next() {
            Some("challenge") => "challenge",
            _ => "register",
        },
        "openapi.json" => "openapi",
        "client" => "client",
        "pastes" => "list",
        "s" => "short_url",
        "pki" => "pki",
        _ => "paste",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_into_a_few_classes() {
        for (path, class) in [
            ("/", "index"),
            ("/health", "health"),
            ("/challenge", "challenge"),
            ("/register/challenge", "challenge"),
            ("/register", "register"),
            ("/openapi.json", "openapi"),
            ("/client", "client"),
            ("/pastes", "list"),
            ("/s", "short_url"),
            ("/s/abcdEFGH/info", "short_url"),
            ("/pki/ca.crt", "pki"),
            ("/abc123", "paste"),
            ("/abc123/raw", "paste"),
            ("/%00weird", "paste"),
        ] {
            assert_eq!(route_class(path), class, "{path}");
        }
    }

    #[test]
    fn rendering_shows_counters_with_their_labels() {
        let m = Metrics::default();
        m.request("alpha", "paste", 201, 0.002);
        m.request("alpha", "paste", 201, 0.004);
        m.rejected("beta", Rejection::Concurrency);
        m.cleanup("alpha", Some(&[("expired_pastes", 3)]));
        let cpu = m.cpu("alpha");
        cpu.cpu_seconds.inc_by(0.25);
        cpu.throttled.inc();
        m.rejected("alpha", Rejection::CpuQuota);
        let text = m.render([TenantGauges {
            tenant: "alpha".into(),
            db_size_bytes: 4096,
            idle_instances: 2,
            idle_instance_memory_bytes: 1 << 20,
        }]);
        assert!(
            text.contains(
                r#"wasmpaste_requests_total{tenant="alpha",route="paste",status="201"} 2"#
            )
        );
        assert!(text.contains(
            r#"wasmpaste_request_duration_seconds_count{tenant="alpha",route="paste",status="201"} 2"#
        ));
        assert!(
            text.contains(
                r#"wasmpaste_limit_rejections_total{tenant="beta",kind="concurrency"} 1"#
            )
        );
        assert!(text.contains(
            r#"wasmpaste_cleanup_removed_total{tenant="alpha",kind="expired_pastes"} 3"#
        ));
        assert!(text.contains(r#"wasmpaste_guest_cpu_seconds_total{tenant="alpha"} 0.25"#));
        assert!(text.contains(r#"wasmpaste_cpu_throttled_total{tenant="alpha"} 1"#));
        assert!(
            text.contains(r#"wasmpaste_limit_rejections_total{tenant="alpha",kind="cpu_quota"} 1"#)
        );
        assert!(text.contains(r#"wasmpaste_db_size_bytes{tenant="alpha"} 4096"#));
        assert!(text.contains(r#"wasmpaste_idle_instances{tenant="alpha"} 2"#));
        assert!(text.contains(r#"wasmpaste_instance_memory_bytes{tenant="alpha"} 1048576"#));
        assert!(text.ends_with("# EOF\n"));
    }
}
