//! Tenants: each a component, a database, variables and limits of its own,
//! all sharing one engine. A request reaches exactly one tenant, chosen by
//! its `Host` header and path prefix; nothing of one tenant is reachable
//! from another (its database handle, its variables, its concurrency slots).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;
use wasmtime::error::Context as _;
use wasmtime::{Cache, Engine, Store};
use wasmtime_wasi_http::p2::bindings::Proxy;

use crate::bindings::HostBindings;
use crate::config::TenantSpec;
use crate::engine::{Compiled, Limits, arm_deadline, new_store};
use crate::guest_log::GuestStderr;
use crate::sqlite::Database;
use crate::state::HostState;
use crate::variables::Variables;

pub struct Tenant {
    pub name: Arc<str>,
    pub hosts: Vec<String>,
    pub path_prefix: Option<String>,
    pub compiled: Arc<Compiled>,
    pub db: Arc<Database>,
    pub variables: Variables,
    pub limits: Limits,
    /// One permit per instance this tenant may have alive.
    pub slots: Arc<Semaphore>,
    /// Instances that served a request and may serve another (only with
    /// `max_instance_reuse` above 1), most recently used last.
    idle: Mutex<Vec<Lease>>,
    engine: Engine,
}

/// How often idle instances are checked for their timeout.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The store (and, once instantiated, the instance) serving one request.
pub struct Lease {
    pub store: Store<HostState>,
    /// `None` until the component is instantiated in `store`; `Some` for an
    /// instance that served earlier requests.
    pub proxy: Option<Proxy>,
    served: u32,
    idle_since: Instant,
}

impl Tenant {
    /// A store for one call of this tenant, with its limits, database and
    /// variables, and its stderr tagged with the tenant and `rid`.
    pub fn store(&self, rid: &str) -> Store<HostState> {
        let state = HostState::new(
            Arc::clone(&self.db),
            self.variables.clone(),
            self.limits.max_memory,
            GuestStderr::new(Arc::clone(&self.name), Arc::from(rid)),
        );
        new_store(&self.engine, state, &self.limits)
    }

    /// What serves the request `rid`: an idle instance when reuse is on and
    /// one is available (its deadline restarted, its log lines retagged),
    /// else a fresh store.
    pub fn lease(&self, rid: &str) -> Lease {
        let reused = if self.limits.max_instance_reuse > 1 {
            self.idle.lock().ok().and_then(|mut idle| idle.pop())
        } else {
            None
        };
        match reused {
            Some(mut lease) => {
                lease.store.data_mut().begin_request(rid);
                arm_deadline(&mut lease.store, self.limits.request_timeout);
                lease
            }
            None => Lease {
                store: self.store(rid),
                proxy: None,
                served: 0,
                idle_since: Instant::now(),
            },
        }
    }

    /// Takes back an instance whose call returned normally. It is kept for
    /// another request unless it has served `max_instance_reuse` of them or
    /// still holds a resource of the exchange it served. Callers drop (never
    /// return) a store whose call trapped or timed out: it may be stuck
    /// mid-call.
    pub fn give_back(&self, mut lease: Lease) {
        lease.served = lease.served.saturating_add(1);
        if lease.proxy.is_none()
            || lease.served >= self.limits.max_instance_reuse
            || lease.store.data_mut().holds_http_exchange()
        {
            return;
        }
        lease.idle_since = Instant::now();
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(lease);
        }
    }

    /// Drops the instances unused for the tenant's `idle_instance_timeout`,
    /// giving back their memory; returns how many.
    pub fn drop_idle_instances(&self) -> usize {
        self.take_idle(self.limits.idle_instance_timeout)
    }

    /// Drops the idle instances unused for at least `ttl`; returns how many.
    fn take_idle(&self, ttl: Duration) -> usize {
        let now = Instant::now();
        let stale: Vec<Lease> = match self.idle.lock() {
            // Most recently used last: the stale ones are at the front.
            Ok(mut idle) => {
                let n = idle
                    .iter()
                    .take_while(|l| now.duration_since(l.idle_since) >= ttl)
                    .count();
                idle.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        };
        // Dropped outside the lock: resetting an instance's memory takes time.
        stale.len()
    }

    /// Instances kept for reuse right now.
    pub fn idle_instances(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }

    /// A fresh instance for a call of the `maintenance` export.
    pub async fn maintenance(
        &self,
        rid: &str,
    ) -> wasmtime::Result<(Store<HostState>, HostBindings)> {
        let mut store = self.store(rid);
        let instance = self
            .compiled
            .maintenance
            .instantiate_async(&mut store)
            .await?;
        Ok((store, instance))
    }

    /// The path the guest sees: without this tenant's prefix.
    pub fn strip_prefix<'p>(&self, path: &'p str) -> &'p str {
        match &self.path_prefix {
            Some(prefix) => match path.strip_prefix(prefix.as_str()) {
                Some("") => "/",
                Some(rest) => rest,
                None => path,
            },
            None => path,
        }
    }
}

/// Every tenant of the host, in config order.
pub struct Tenants {
    list: Vec<Arc<Tenant>>,
}

impl Tenants {
    /// Opens every database and compiles every distinct component once.
    /// `env` holds the `WASMPASTE_*` variables each tenant's own override.
    pub fn new(
        engine: &Engine,
        cache: Option<&Cache>,
        specs: Vec<TenantSpec>,
        env: &Variables,
        embedded: &[u8],
    ) -> wasmtime::Result<Self> {
        let mut compiled: HashMap<[u8; 32], Arc<Compiled>> = HashMap::new();
        let mut list = Vec::with_capacity(specs.len());
        for spec in specs {
            let name = spec.name.clone();
            let wasm = match &spec.component {
                Some(path) => std::fs::read(path).with_context(|| {
                    format!(
                        "tenant `{name}`: cannot read the component {}",
                        path.display()
                    )
                })?,
                None => embedded.to_vec(),
            };
            let key: [u8; 32] = Sha256::digest(&wasm).into();
            let component = match compiled.get(&key) {
                Some(c) => Arc::clone(c),
                None => {
                    let c = Arc::new(
                        Compiled::new(engine, &wasm, cache)
                            .with_context(|| format!("tenant `{name}`"))?,
                    );
                    compiled.insert(key, Arc::clone(&c));
                    c
                }
            };
            let db = Database::open(&spec.db, spec.limits.db_quota_bytes)
                .with_context(|| format!("tenant `{name}`"))?;
            let permits = usize::try_from(spec.limits.max_concurrency).unwrap_or(usize::MAX);
            list.push(Arc::new(Tenant {
                name: Arc::from(name.as_str()),
                hosts: spec.hosts,
                path_prefix: spec.path_prefix,
                compiled: component,
                db,
                variables: env.with_overrides(&spec.variables),
                limits: spec.limits,
                slots: Arc::new(Semaphore::new(permits)),
                idle: Mutex::new(Vec::new()),
                engine: engine.clone(),
            }));
        }
        Ok(Self { list })
    }

    /// Drops every tenant's idle instances, freeing their pool slots for a
    /// request that could not get one; returns how many.
    pub fn drop_all_idle_instances(&self) -> usize {
        self.list.iter().map(|t| t.take_idle(Duration::ZERO)).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The tenant for a request to `host` (the `Host` header, any case, port
    /// allowed) and `path`: a tenant naming the host beats one for any host,
    /// then the longest matching path prefix wins.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<&Arc<Tenant>> {
        let routes = self
            .list
            .iter()
            .map(|t| (t.hosts.as_slice(), t.path_prefix.as_deref()));
        best_route(routes, host, path).and_then(|i| self.list.get(i))
    }
}

/// Drops, every second, the instances tenants kept for reuse and no longer
/// use (only when some tenant reuses instances).
pub fn start_idle_sweeper(tenants: &Arc<Tenants>) {
    if tenants.iter().all(|t| t.limits.max_instance_reuse <= 1) {
        return;
    }
    let tenants = Arc::downgrade(tenants);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(tenants) = tenants.upgrade() else {
                return;
            };
            for tenant in tenants.iter() {
                let dropped = tenant.drop_idle_instances();
                if dropped > 0 {
                    tracing::debug!(tenant = %tenant.name, dropped, "idle instances dropped");
                }
            }
        }
    });
}

/// The index of the route (hosts, prefix) that serves `host` and `path`.
fn best_route<'a>(
    routes: impl Iterator<Item = (&'a [String], Option<&'a str>)>,
    host: Option<&str>,
    path: &str,
) -> Option<usize> {
    let host = host.map(host_name);
    routes
        .enumerate()
        .filter_map(|(i, (hosts, prefix))| {
            let named = !hosts.is_empty();
            if named
                && !host
                    .as_deref()
                    .is_some_and(|h| hosts.iter().any(|x| x == h))
            {
                return None;
            }
            let prefix_len = match prefix {
                None => 0,
                Some(p) if has_prefix(path, p) => p.len(),
                Some(_) => return None,
            };
            Some(((named, prefix_len), i))
        })
        // On equal scores the first tenant wins (config checks make them distinct).
        .max_by_key(|&(score, i)| (score, std::cmp::Reverse(i)))
        .map(|(_, i)| i)
}

/// `path` is `prefix` or lies below it (segment boundary: `/ab` is not under `/a`).
fn has_prefix(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The host name of a `Host` header value: lowercase, without port.
fn host_name(value: &str) -> String {
    let value = value.trim();
    let name = if value.starts_with('[') {
        // An IPv6 literal keeps its brackets, loses its port.
        value.split_once(']').map_or(value, |(h, _)| h)
    } else {
        value.rsplit_once(':').map_or(value, |(h, _)| h)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_case_port_and_trailing_dot() {
        assert_eq!(host_name("Paste.Example.COM:8080"), "paste.example.com");
        assert_eq!(host_name("paste.example.com."), "paste.example.com");
        assert_eq!(host_name("[::1]:80"), "[::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn named_hosts_beat_wildcards_and_longer_prefixes_win() {
        let h = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let routes = [
            (h(&[]), None),                               // 0: catch-all
            (h(&[]), Some("/team")),                      // 1
            (h(&["a.example"]), None),                    // 2
            (h(&["a.example"]), Some("/team/red")),       // 3
            (h(&["b.example", "c.example"]), Some("/x")), // 4
        ];
        let pick = |host: Option<&str>, path: &str| {
            best_route(routes.iter().map(|(hs, p)| (hs.as_slice(), *p)), host, path)
        };
        assert_eq!(pick(Some("other"), "/abc"), Some(0));
        assert_eq!(pick(None, "/abc"), Some(0));
        assert_eq!(pick(Some("other"), "/team/abc"), Some(1));
        assert_eq!(pick(Some("A.example:443"), "/team/abc"), Some(2));
        assert_eq!(pick(Some("a.example"), "/team/red/abc"), Some(3));
        assert_eq!(pick(Some("c.example"), "/x/1"), Some(4));
        assert_eq!(pick(Some("c.example"), "/xy"), Some(0));
        let only_named = [(h(&["a.example"]), None::<&str>)];
        let none = best_route(
            only_named.iter().map(|(hs, p)| (hs.as_slice(), *p)),
            Some("b.example"),
            "/",
        );
        assert_eq!(none, None);
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(has_prefix("/team", "/team"));
        assert!(has_prefix("/team/abc/raw", "/team"));
        assert!(!has_prefix("/teammate", "/team"));
        assert!(!has_prefix("/", "/team"));
    }
}
