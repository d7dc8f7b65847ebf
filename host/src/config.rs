//! The tenants one host serves: read from a TOML file (`--config`), or a
//! single default tenant made from the command line when there is no file.
//!
//! Everything is checked before the server starts, and every problem is
//! reported at once, naming the tenant and the field, so an operator fixes a
//! file in one pass instead of one error per restart.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::limits::{self, Limits, MIB, Range};
use crate::runtime_config::{self, DatabaseSpec};
use crate::tls::{CertFiles, ClientCa, TenantTls};
use crate::variables::is_valid_name;

/// Where a tenant's requests come from and what it runs.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    pub name: String,
    /// Lowercase host names (no port) this tenant answers; empty = any host.
    pub hosts: Vec<String>,
    /// Path prefix such as `/team` (no trailing `/`); `None` = the whole path space.
    pub path_prefix: Option<String>,
    /// The component file; `None` = the one embedded in the binary.
    pub component: Option<PathBuf>,
    /// Its database: a file (`db`) or what its `runtime_config` names.
    pub database: DatabaseSpec,
    /// The tenant's own variables; they override `WASMPASTE_*` from the environment.
    pub variables: BTreeMap<String, String>,
    pub limits: Limits,
    /// Its own certificate and client CA on the HTTPS port.
    pub tls: TenantTls,
}

/// A configuration problem, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The tenant's name (or `#n` when it has none yet); `None` for the file itself.
    pub tenant: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(tenant) = &self.tenant {
            write!(f, "tenant `{tenant}`: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// All problems of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration file {}:", self.file.display())?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Limits as written in the file: every one optional, falling back to
/// `[defaults]` and then to the command line.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsEntry {
    max_memory_mib: Option<u64>,
    request_timeout_secs: Option<u64>,
    max_body_mib: Option<u64>,
    max_concurrency: Option<u32>,
    db_quota_mib: Option<u64>,
    max_instance_reuse: Option<u32>,
    idle_instance_timeout_secs: Option<u64>,
    ready_instances: Option<u32>,
    cpu_weight: Option<u32>,
    cpu_ms_per_sec: Option<u32>,
    cpu_queue: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    name: String,
    #[serde(default)]
    hosts: Vec<String>,
    path_prefix: Option<String>,
    component: Option<PathBuf>,
    db: Option<PathBuf>,
    /// A Spin runtime-config file whose `[sqlite_database.default]` is the
    /// tenant's database (a libSQL server, or a file).
    runtime_config: Option<PathBuf>,
    /// The same table inline: `[tenant.sqlite_database.default]`.
    #[serde(default)]
    sqlite_database: BTreeMap<String, toml::Table>,
    #[serde(default)]
    variables: BTreeMap<String, toml::Value>,
    #[serde(default)]
    limits: LimitsEntry,
    /// The certificate chain presented for `hosts` on the HTTPS port (PEM).
    tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    tls_key: Option<PathBuf>,
    /// `pki` (the tenant's own CA) or a PEM bundle of CA certificates.
    client_ca: Option<String>,
}

/// Collects errors while checking one tenant.
struct Checker<'a> {
    /// `None` while checking `[defaults]`.
    tenant: Option<&'a str>,
    errors: &'a mut Vec<ConfigError>,
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            tenant: self.tenant.map(str::to_owned),
            field: Some(field.to_owned()),
            message: message.into(),
        });
    }

    fn range<T: Into<u64> + fmt::Display + Copy>(
        &mut self,
        field: &str,
        value: Option<T>,
        fallback: T,
        range: Range,
    ) -> T {
        match value {
            Some(v) if !range.contains(v.into()) => {
                let Range { min, max } = range;
                self.fail(field, format!("{v} is out of range ({min} to {max})"));
                fallback
            }
            Some(v) => v,
            None => fallback,
        }
    }
}

/// Reads and checks `path`; relative paths inside it are relative to its directory.
pub fn load(path: &Path, base_limits: &Limits) -> Result<Vec<TenantSpec>, ConfigErrors> {
    let fail = |message: String| ConfigErrors {
        file: path.to_path_buf(),
        errors: vec![ConfigError {
            tenant: None,
            field: None,
            message,
        }],
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    parse(&text, dir, base_limits).map_err(|errors| ConfigErrors {
        file: path.to_path_buf(),
        errors,
    })
}

/// Parses and checks a configuration text.
pub fn parse(text: &str, dir: &Path, base: &Limits) -> Result<Vec<TenantSpec>, Vec<ConfigError>> {
    let file_error = |field: Option<&str>, message: String| ConfigError {
        tenant: None,
        field: field.map(str::to_owned),
        message,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| vec![file_error(None, e.message().to_owned())])?;
    let mut errors = Vec::new();
    let mut defaults = LimitsEntry::default();
    let mut entries = Vec::new();
    for (key, value) in table {
        match key.as_str() {
            "defaults" => match value.try_into::<LimitsEntry>() {
                Ok(d) => defaults = d,
                Err(e) => errors.push(file_error(Some("defaults"), e.message().to_owned())),
            },
            "tenant" => match value {
                toml::Value::Array(items) => entries = items,
                _ => errors.push(file_error(
                    Some("tenant"),
                    "must be an array of tables: write each tenant as [[tenant]]".into(),
                )),
            },
            other => errors.push(file_error(
                Some(other),
                "unknown top-level key (expected `defaults` or `tenant`)".into(),
            )),
        }
    }
    if entries.is_empty() && errors.is_empty() {
        errors.push(file_error(
            Some("tenant"),
            "no tenants: add at least one [[tenant]] table".into(),
        ));
    }

    let mut base_checker = Checker {
        tenant: None,
        errors: &mut errors,
    };
    let base = resolve_limits(&mut base_checker, "defaults", &defaults, base);
    let mut specs = Vec::new();
    for (i, item) in entries.into_iter().enumerate() {
        // Name the tenant in errors even when the rest of its table is wrong.
        let label = item
            .get("name")
            .and_then(toml::Value::as_str)
            .map_or_else(|| format!("#{}", i + 1), str::to_owned);
        match item.try_into::<TenantEntry>() {
            Ok(entry) => {
                let mut check = Checker {
                    tenant: Some(&label),
                    errors: &mut errors,
                };
                specs.push(resolve_tenant(&mut check, entry, dir, &base));
            }
            Err(e) => errors.push(ConfigError {
                tenant: Some(label),
                field: None,
                message: e.message().to_owned(),
            }),
        }
    }
    check_unique(&specs, &mut errors);
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

/// `table` names the TOML table in errors (`defaults` or `limits`).
fn resolve_limits(
    check: &mut Checker<'_>,
    table: &str,
    entry: &LimitsEntry,
    base: &Limits,
) -> Limits {
    let mib = |bytes: usize| u64::try_from(bytes).unwrap_or(u64::MAX) / MIB;
    let max_memory = check.range(
        &format!("{table}.max_memory_mib"),
        entry.max_memory_mib,
        mib(base.max_memory),
        limits::MAX_MEMORY_MIB,
    );
    let timeout = check.range(
        &format!("{table}.request_timeout_secs"),
        entry.request_timeout_secs,
        base.request_timeout.as_secs(),
        limits::REQUEST_TIMEOUT_SECS,
    );
    let body = check.range(
        &format!("{table}.max_body_mib"),
        entry.max_body_mib,
        base.max_body_bytes / MIB,
        limits::MAX_BODY_MIB,
    );
    let concurrency = check.range(
        &format!("{table}.max_concurrency"),
        entry.max_concurrency,
        base.max_concurrency,
        limits::MAX_CONCURRENCY,
    );
    let reuse = check.range(
        &format!("{table}.max_instance_reuse"),
        entry.max_instance_reuse,
        base.max_instance_reuse,
        limits::MAX_INSTANCE_REUSE,
    );
    let idle = check.range(
        &format!("{table}.idle_instance_timeout_secs"),
        entry.idle_instance_timeout_secs,
        base.idle_instance_timeout.as_secs(),
        limits::IDLE_INSTANCE_TIMEOUT_SECS,
    );
    let ready = check.range(
        &format!("{table}.ready_instances"),
        entry.ready_instances,
        base.ready_instances,
        limits::READY_INSTANCES,
    );
    let cpu_weight = check.range(
        &format!("{table}.cpu_weight"),
        entry.cpu_weight,
        base.cpu_weight,
        limits::CPU_WEIGHT,
    );
    let cpu_ms_per_sec = match entry.cpu_ms_per_sec {
        Some(ms) => Some(check.range(
            &format!("{table}.cpu_ms_per_sec"),
            Some(ms),
            1,
            limits::CPU_MS_PER_SEC,
        )),
        None => base.cpu_ms_per_sec,
    };
    let cpu_queue = check.range(
        &format!("{table}.cpu_queue"),
        entry.cpu_queue,
        base.cpu_queue,
        limits::CPU_QUEUE,
    );
    let quota = match entry.db_quota_mib {
        Some(q) => Some(
            check.range(
                &format!("{table}.db_quota_mib"),
                Some(q),
                1,
                limits::DB_QUOTA_MIB,
            ) * MIB,
        ),
        None => base.db_quota_bytes,
    };
    Limits {
        max_memory: usize::try_from(max_memory * MIB).unwrap_or(usize::MAX),
        request_timeout: Duration::from_secs(timeout),
        max_body_bytes: body * MIB,
        max_concurrency: concurrency,
        db_quota_bytes: quota,
        max_instance_reuse: reuse,
        idle_instance_timeout: Duration::from_secs(idle),
        ready_instances: ready,
        cpu_weight,
        cpu_ms_per_sec,
        cpu_queue,
    }
}

fn resolve_tenant(
    check: &mut Checker<'_>,
    entry: TenantEntry,
    dir: &Path,
    base: &Limits,
) -> TenantSpec {
    if !is_valid_tenant_name(&entry.name) {
        check.fail(
            "name",
            format!(
                "`{}` is not a tenant name (1-63 lowercase letters, digits and `-`, \
                 starting with a letter)",
                entry.name
            ),
        );
    }
    let hosts: Vec<String> = entry
        .hosts
        .iter()
        .filter_map(|h| {
            let host = h.to_ascii_lowercase();
            if is_valid_host(&host) {
                Some(host)
            } else {
                check.fail(
                    "hosts",
                    format!(
                        "`{h}` is not a host name (no scheme, port or path: `paste.example.com`)"
                    ),
                );
                None
            }
        })
        .collect();
    let path_prefix = entry.path_prefix.as_deref().and_then(|p| {
        normalize_prefix(p)
            .map_err(|m| check.fail("path_prefix", m))
            .ok()
            .flatten()
    });
    let mut variables = BTreeMap::new();
    for (name, value) in entry.variables {
        let field = format!("variables.{name}");
        if !is_valid_name(&name) {
            check.fail(
                &field,
                "variable names are lowercase letters, digits and single underscores, \
                 starting with a letter",
            );
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                check.fail(&field, "must be a string, number or boolean");
                continue;
            }
        };
        variables.insert(name, text);
    }
    // The guest builds its URLs with the prefix it is published under.
    if let Some(prefix) = &path_prefix {
        variables
            .entry("url_prefix".to_owned())
            .or_insert_with(|| prefix.clone());
    }
    let inline = entry.sqlite_database.get("default");
    if let Some(label) = entry.sqlite_database.keys().find(|l| *l != "default") {
        check.fail(
            &format!("sqlite_database.{label}"),
            "the component opens only the database `default`",
        );
    }
    let database = match (entry.db, entry.runtime_config, inline) {
        (Some(db), None, None) => DatabaseSpec::File(dir.join(db)),
        (None, None, Some(table)) => runtime_config::database(table, dir).unwrap_or_else(|m| {
            check.fail("sqlite_database.default", m);
            DatabaseSpec::File(PathBuf::new())
        }),
        (None, Some(rc), None) => match runtime_config::load(&dir.join(rc)) {
            Ok(Some(database)) => database,
            Ok(None) => {
                check.fail(
                    "runtime_config",
                    "the file has no [sqlite_database.default]",
                );
                DatabaseSpec::File(PathBuf::new())
            }
            Err(message) => {
                check.fail("runtime_config", message);
                DatabaseSpec::File(PathBuf::new())
            }
        },
        _ => {
            check.fail(
                "db",
                "give exactly one of `db` (a SQLite file), `runtime_config` (a Spin \
                 runtime-config file naming the database) and `[tenant.sqlite_database.default]`",
            );
            DatabaseSpec::File(PathBuf::new())
        }
    };
    let limits = resolve_limits(check, "limits", &entry.limits, base);
    if matches!(database, DatabaseSpec::Libsql { .. }) && entry.limits.db_quota_mib.is_some() {
        check.fail(
            "limits.db_quota_mib",
            "a libSQL server enforces its own limits: remove db_quota_mib from this tenant",
        );
    }
    let cert = match (entry.tls_cert, entry.tls_key) {
        (Some(cert), Some(key)) => Some(CertFiles {
            cert: dir.join(cert),
            key: dir.join(key),
        }),
        (None, None) => None,
        (Some(_), None) => {
            check.fail("tls_key", "`tls_cert` needs its private key in `tls_key`");
            None
        }
        (None, Some(_)) => {
            check.fail("tls_cert", "`tls_key` needs its certificate in `tls_cert`");
            None
        }
    };
    if cert.is_some() && hosts.is_empty() {
        check.fail(
            "tls_cert",
            "a tenant without `hosts` answers the names no tenant claims, with the host's \
             certificate (--tls-cert): list the host names this certificate is for",
        );
    }
    let tls = TenantTls {
        cert,
        client_ca: entry.client_ca.map(|ca| ClientCa::parse(&ca, dir)),
    };
    TenantSpec {
        tls,
        limits: Limits {
            // A `[defaults]` quota applies to file databases only.
            db_quota_bytes: match database {
                DatabaseSpec::File(_) => limits.db_quota_bytes,
                DatabaseSpec::Libsql { .. } => None,
            },
            ..limits
        },
        name: entry.name,
        hosts,
        path_prefix,
        component: entry.component.map(|c| dir.join(c)),
        database,
        variables,
    }
}

/// Two tenants may share neither a name, nor a database file, nor a route.
fn check_unique(specs: &[TenantSpec], errors: &mut Vec<ConfigError>) {
    let mut names = HashMap::new();
    let mut dbs = HashMap::new();
    let mut routes = HashMap::new();
    for spec in specs {
        let mut fail = |field: &str, message: String| {
            errors.push(ConfigError {
                tenant: Some(spec.name.clone()),
                field: Some(field.to_owned()),
                message,
            });
        };
        if names.insert(spec.name.as_str(), ()).is_some() {
            fail("name", "another tenant has the same name".into());
        }
        // A shared database would let one tenant read another's pastes.
        let (field, key) = match &spec.database {
            DatabaseSpec::File(path) => (
                "db",
                std::path::absolute(path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
                    .to_string(),
            ),
            DatabaseSpec::Libsql { url, .. } => ("runtime_config", url.clone()),
        };
        if let Some(other) = dbs.insert(key, spec.name.as_str()) {
            fail(field, format!("tenant `{other}` uses the same database"));
        }
        let hosts: Vec<&str> = if spec.hosts.is_empty() {
            vec!["*"]
        } else {
            spec.hosts.iter().map(String::as_str).collect()
        };
        for host in hosts {
            let key = (host, spec.path_prefix.as_deref().unwrap_or(""));
            if let Some(other) = routes.insert(key, spec.name.as_str()) {
                fail(
                    "hosts",
                    format!(
                        "tenant `{other}` already answers host `{host}` with path prefix `{}`",
                        key.1
                    ),
                );
            }
        }
    }
}

fn is_valid_tenant_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_valid_host(host: &str) -> bool {
    (1..=253).contains(&host.len())
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// `/a/b` stays, `/a/b/` loses its slash, `/` and the empty string mean no prefix.
fn normalize_prefix(raw: &str) -> Result<Option<String>, String> {
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        return if raw.is_empty() || raw.starts_with('/') {
            Ok(None)
        } else {
            Err(format!("`{raw}` must start with `/`"))
        };
    }
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Err(format!("`{raw}` must start with `/`, like `/team`"));
    };
    let ok = rest.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    });
    if ok {
        Ok(Some(trimmed.to_owned()))
    } else {
        Err(format!(
            "`{raw}` is not a path prefix like `/team` (letters, digits, `-._~`, separated by `/`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Limits {
        Limits {
            max_memory: 512 << 20,
            request_timeout: Duration::from_secs(60),
            max_body_bytes: 64 << 20,
            max_concurrency: 128,
            db_quota_bytes: None,
            max_instance_reuse: 1,
            idle_instance_timeout: Duration::from_secs(30),
            ready_instances: 1,
            cpu_weight: 100,
            cpu_ms_per_sec: None,
            cpu_queue: 16,
        }
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text, Path::new("/etc/wp"), &base()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_full_file_resolves_defaults_paths_and_prefix_variable() {
        let specs = parse(
            r#"
            [defaults]
            max_memory_mib = 64
            [[tenant]]
            name = "alpha"
            hosts = ["Alpha.Example.com"]
            db = "alpha.db"
            variables = { max_anon = 1024, pki_enabled = true }
            [[tenant]]
            name = "beta"
            path_prefix = "/beta/"
            db = "/var/lib/beta.db"
            component = "beta.wasm"
            limits = { request_timeout_secs = 5, db_quota_mib = 10, max_concurrency = 3, max_instance_reuse = 50, idle_instance_timeout_secs = 2, ready_instances = 0, cpu_weight = 200, cpu_ms_per_sec = 250, cpu_queue = 4 }
            "#,
            Path::new("/etc/wp"),
            &base(),
        )
        .unwrap();
        let (a, b) = (&specs[0], &specs[1]);
        assert_eq!(a.hosts, ["alpha.example.com"]);
        assert_eq!(a.database, DatabaseSpec::File("/etc/wp/alpha.db".into()));
        assert_eq!(a.component, None);
        assert_eq!(a.variables["max_anon"], "1024");
        assert_eq!(a.variables["pki_enabled"], "true");
        assert!(!a.variables.contains_key("url_prefix"));
        assert_eq!(a.limits.max_memory, 64 << 20);
        assert_eq!(a.limits.request_timeout, Duration::from_secs(60));
        assert_eq!(b.path_prefix.as_deref(), Some("/beta"));
        assert_eq!(b.variables["url_prefix"], "/beta");
        assert_eq!(b.database, DatabaseSpec::File("/var/lib/beta.db".into()));
        assert_eq!(b.component.as_deref(), Some(Path::new("/etc/wp/beta.wasm")));
        assert_eq!(b.limits.request_timeout, Duration::from_secs(5));
        assert_eq!(b.limits.db_quota_bytes, Some(10 << 20));
        assert_eq!(b.limits.max_concurrency, 3);
        assert_eq!(b.limits.max_memory, 64 << 20);
        assert_eq!(a.limits.max_instance_reuse, 1);
        assert_eq!(b.limits.max_instance_reuse, 50);
        assert_eq!(b.limits.idle_instance_timeout, Duration::from_secs(2));
        assert_eq!(a.limits.idle_instance_timeout, Duration::from_secs(30));
        assert_eq!((a.limits.ready_instances, b.limits.ready_instances), (1, 0));
        assert_eq!((a.limits.cpu_weight, a.limits.cpu_ms_per_sec), (100, None));
        assert_eq!(b.limits.cpu_weight, 200);
        assert_eq!(b.limits.cpu_ms_per_sec, Some(250));
        assert_eq!(b.limits.cpu_queue, 4);
    }

    #[test]
    fn errors_name_the_tenant_and_the_field() {
        let found = errors(
            r#"
            [[tenant]]
            name = "alpha"
            db = "a.db"
            path_prefix = "beta"
            hosts = ["https://x.com"]
            variables = { "Bad-Name" = "1", list = [1] }
            limits = { max_memory_mib = 1, cpu_weight = 0, ready_instances = 1001 }
            [[tenant]]
            name = "gamma"
            db = "g.db"
            limits = { max_memroy_mib = 64 }
            [[tenant]]
            db = "nameless.db"
            "#,
        );
        let expect = [
            "tenant `alpha`: field `hosts`: `https://x.com` is not a host name",
            "tenant `alpha`: field `path_prefix`: `beta` must start with `/`",
            "tenant `alpha`: field `variables.Bad-Name`:",
            "tenant `alpha`: field `variables.list`: must be a string",
            "tenant `alpha`: field `limits.max_memory_mib`: 1 is out of range (16 to 4096)",
            "tenant `alpha`: field `limits.cpu_weight`: 0 is out of range (1 to 10000)",
            "tenant `alpha`: field `limits.ready_instances`: 1001 is out of range (0 to 1000)",
            "tenant `gamma`: unknown field `max_memroy_mib`",
            "tenant `#3`: missing field `name`",
        ];
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        for e in expect {
            assert!(
                found.iter().any(|f| f.starts_with(e)),
                "{e} not in {found:#?}"
            );
        }
    }

    #[test]
    fn a_tenant_s_database_may_be_a_libsql_server() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rc.toml"),
            "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"http://sqld:8080\"\ntoken = \"t\"\n",
        )
        .unwrap();
        let text = r#"
            [[tenant]]
            name = "a"
            hosts = ["a.test"]
            runtime_config = "rc.toml"

            [[tenant]]
            name = "b"
            hosts = ["b.test"]
            [tenant.sqlite_database.default]
            type = "libsql"
            url = "http://other:8080"
            token = ""
        "#;
        let specs = parse(text, dir.path(), &base()).unwrap();
        assert_eq!(specs[0].database.location(), "http://sqld:8080");
        assert_eq!(specs[1].database.location(), "http://other:8080");

        let errors = |text: &str| -> String {
            parse(text, dir.path(), &base())
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let quota = errors(
            "[[tenant]]\nname = 'a'\nruntime_config = 'rc.toml'\nlimits = { db_quota_mib = 5 }\n",
        );
        assert!(
            quota.contains("tenant `a`: field `limits.db_quota_mib`: a libSQL server"),
            "{quota}"
        );
        let both = errors("[[tenant]]\nname = 'a'\ndb = 'a.db'\nruntime_config = 'rc.toml'\n");
        assert!(both.contains("field `db`: give exactly one of"), "{both}");
        let shared = errors(
            "[[tenant]]\nname = 'a'\nhosts = ['a']\nruntime_config = 'rc.toml'\n\
             [[tenant]]\nname = 'b'\nhosts = ['b']\nruntime_config = 'rc.toml'\n",
        );
        assert!(
            shared
                .contains("tenant `b`: field `runtime_config`: tenant `a` uses the same database"),
            "{shared}"
        );
        let missing = errors("[[tenant]]\nname = 'a'\nruntime_config = 'nope.toml'\n");
        assert!(
            missing.contains("field `runtime_config`: cannot read the runtime config"),
            "{missing}"
        );
    }

    #[test]
    fn tenants_may_not_share_names_databases_or_routes() {
        let found = errors(
            r#"
            [[tenant]]
            name = "a"
            db = "x.db"
            [[tenant]]
            name = "a"
            db = "./x.db"
            hosts = ["h.example"]
            [[tenant]]
            name = "c"
            db = "c.db"
            [[tenant]]
            name = "d"
            db = "d.db"
            hosts = ["h.example"]
            "#,
        )
        .join("\n");
        assert!(
            found.contains("tenant `a`: field `name`: another tenant"),
            "{found}"
        );
        assert!(
            found.contains("field `db`: tenant `a` uses the same database"),
            "{found}"
        );
        assert!(found.contains("tenant `c`: field `hosts`: tenant `a` already answers host `*`"));
        assert!(
            found
                .contains("tenant `d`: field `hosts`: tenant `a` already answers host `h.example`")
        );
    }

    #[test]
    fn file_level_mistakes_are_reported() {
        assert_eq!(
            errors("")[0],
            "field `tenant`: no tenants: add at least one [[tenant]] table"
        );
        assert!(errors("tenants = 1")[0].starts_with("field `tenants`: unknown top-level key"));
        assert!(errors("[tenant]\nname = 'a'")[0].contains("[[tenant]]"));
        assert!(!errors("[[tenant]\n")[0].is_empty());
        assert!(
            errors("[defaults]\nmax_body_mib = 0\n[[tenant]]\nname='a'\ndb='a'")[0]
                .starts_with("field `defaults.max_body_mib`: 0 is out of range")
        );
    }

    #[test]
    fn prefixes_are_normalized_or_refused() {
        assert_eq!(normalize_prefix("/a/b/"), Ok(Some("/a/b".into())));
        assert_eq!(normalize_prefix("/"), Ok(None));
        assert_eq!(normalize_prefix(""), Ok(None));
        for bad in ["a", "/a//b", "/../x", "/a b", "/a?b", "/%2e"] {
            assert!(normalize_prefix(bad).is_err(), "{bad}");
        }
    }
}
