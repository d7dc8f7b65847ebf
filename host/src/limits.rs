//! A tenant's sandbox limits, and the one table of what values each may
//! take: the command line (`cli.rs`) and the tenants file (`config.rs`) both
//! check against these ranges.

use std::time::Duration;

/// Sandbox limits of one tenant, applied to each of its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per instance, in bytes.
    pub max_memory: usize,
    /// Wall-clock time for one request, including reading and writing bodies.
    pub request_timeout: Duration,
    /// Largest request body; the host refuses bigger ones (413) before the guest runs.
    pub max_body_bytes: u64,
    /// Instances alive at once (requests in flight plus maintenance calls).
    pub max_concurrency: u32,
    /// Largest database file; beyond it writes fail (`database-full`, 507).
    pub db_quota_bytes: Option<u64>,
    /// Requests one instance may serve before it is dropped; 1 (the default)
    /// gives every request a fresh instance. See docs/configuration.md for
    /// what a larger value trades away.
    pub max_instance_reuse: u32,
    /// An instance kept for reuse and unused this long is dropped.
    pub idle_instance_timeout: Duration,
    /// Instances the tenant keeps instantiated ahead of requests, never used
    /// (0: none): a request that finds one does not wait for instantiation.
    pub ready_instances: u32,
    /// The tenant's share of contended CPU relative to others (default 100).
    pub cpu_weight: u32,
    /// Guest CPU the tenant may use per second of time, in ms; `None`: no quota.
    pub cpu_ms_per_sec: Option<u32>,
    /// Requests that may wait at once for the tenant's CPU quota; more get 503.
    pub cpu_queue: u32,
}

/// The values one limit may take (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: u64,
    pub max: u64,
}

impl Range {
    const fn new(min: u64, max: u64) -> Self {
        Self { min, max }
    }

    pub fn contains(self, value: u64) -> bool {
        (self.min..=self.max).contains(&value)
    }

    /// A clap parser for a flag of this range, into `T` (`u32`, `u64`).
    pub fn parser<T>(self) -> clap::builder::RangedU64ValueParser<T>
    where
        T: TryFrom<u64> + Clone + Send + Sync + 'static,
        <T as TryFrom<u64>>::Error: std::fmt::Display + Send + Sync + 'static,
    {
        clap::builder::RangedU64ValueParser::new().range(self.min..=self.max)
    }
}

pub const MAX_MEMORY_MIB: Range = Range::new(16, 4096);
pub const REQUEST_TIMEOUT_SECS: Range = Range::new(1, 3600);
pub const MAX_BODY_MIB: Range = Range::new(1, 4096);
pub const MAX_CONCURRENCY: Range = Range::new(1, 10_000);
pub const DB_QUOTA_MIB: Range = Range::new(1, 1 << 30);
pub const MAX_INSTANCE_REUSE: Range = Range::new(1, 1_000_000);
pub const IDLE_INSTANCE_TIMEOUT_SECS: Range = Range::new(1, 86_400);
pub const READY_INSTANCES: Range = Range::new(0, 1_000);
pub const CPU_WEIGHT: Range = Range::new(1, 10_000);
/// Up to a thousand cores' worth.
pub const CPU_MS_PER_SEC: Range = Range::new(1, 1_000_000);
pub const CPU_QUEUE: Range = Range::new(0, 10_000);

/// Bytes in a MiB, the unit memory, body and quota limits are written in.
pub const MIB: u64 = 1024 * 1024;
