//! Tenants: each a component, a database, variables and limits of its own,
//! all sharing one engine. A request reaches exactly one tenant, chosen by
//! its `Host` header and path prefix; nothing of one tenant is reachable
//! from another (its database handle, its variables, its instances).

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use wasmtime::error::Context as _;
use wasmtime::{Cache, Engine};

use crate::config::TenantSpec;
use crate::cpu::{Cpu, QuotaSettings};
use crate::db::Database;
use crate::db::file::FileDatabase;
use crate::db::libsql::LibsqlDatabase;
use crate::db::metered::Metered;
use crate::engine::Compiled;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::pool::{Pool, TenantPool, TenantSetup};
use crate::runtime_config::DatabaseSpec;
use crate::tls::TenantTls;
use crate::variables::Variables;

pub struct Tenant {
    pub name: Arc<str>,
    pub hosts: Vec<String>,
    pub path_prefix: Option<String>,
    pub db: Arc<dyn Database>,
    pub variables: Variables,
    pub limits: Limits,
    /// Its instances and concurrency slots.
    pub pool: Arc<TenantPool>,
    /// Its own certificate and client CA on the HTTPS port.
    pub tls: TenantTls,
}

impl Tenant {
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
        metrics: &Arc<Metrics>,
    ) -> wasmtime::Result<Self> {
        let pool = Pool::new();
        let cpu = Cpu::new(Cpu::available_cores());
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
            let db: Arc<dyn Database> = match &spec.database {
                DatabaseSpec::File(path) => Arc::new(
                    FileDatabase::open(path, spec.limits.db_quota_bytes)
                        .with_context(|| format!("tenant `{name}`"))?,
                ),
                DatabaseSpec::Libsql { url, token } => Arc::new(
                    LibsqlDatabase::new(url, token.expose())
                        .map_err(|e| wasmtime::format_err!("tenant `{name}`: {e}"))?,
                ),
            };
            let db: Arc<dyn Database> = Arc::new(Metered::new(db, metrics.db(&name)));
            let name: Arc<str> = Arc::from(name.as_str());
            let variables = env.with_overrides(&spec.variables);
            let quota = spec.limits.cpu_ms_per_sec.map(|ms_per_sec| QuotaSettings {
                ms_per_sec,
                queue: spec.limits.cpu_queue,
            });
            let setup = TenantSetup {
                name: Arc::clone(&name),
                cpu: cpu.tenant(spec.limits.cpu_weight, quota, metrics.cpu(&name)),
                engine: engine.clone(),
                compiled: component,
                db: Arc::clone(&db),
                variables: variables.clone(),
                limits: spec.limits.clone(),
            };
            list.push(Arc::new(Tenant {
                name,
                hosts: spec.hosts,
                path_prefix: spec.path_prefix,
                db,
                variables,
                limits: spec.limits,
                pool: pool.tenant(setup, metrics),
                tls: spec.tls,
            }));
        }
        Ok(Self { list })
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
