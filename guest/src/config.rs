//! Configuration: every variable the component reads, its default and its parser.
//!
//! Variables come from the host (Spin variables, or `WASMPASTE_*` on the native
//! host). The reference's `FLASKPASTE_X` is the variable `x` here. This table is
//! the single source of truth: docs/configuration.md is checked against it by a
//! test. Values are read lazily, per request, only where a handler needs them;
//! nothing is cached in guest memory.

use std::fmt;

/// Where variable values come from.
pub trait Variables {
    /// The raw value, or `None` when the host does not define it.
    fn get(&self, name: &str) -> Result<Option<String>, String>;
}

/// A variable with a bad value (or a host that failed to provide it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "variable `{}`: {}", self.name, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// One configuration variable of type `T`.
pub struct Setting<T: 'static> {
    pub name: &'static str,
    /// The default, written as a value would be (so docs and Spin manifests show it verbatim).
    pub default: &'static str,
    /// Secrets are never logged or echoed.
    pub secret: bool,
    pub doc: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

/// Type-erased view of a [`Setting`], for listing and checking all of them.
pub trait AnySetting: Sync {
    fn name(&self) -> &'static str;
    fn default_value(&self) -> &'static str;
    fn secret(&self) -> bool;
    fn doc(&self) -> &'static str;
    fn check(&self, raw: &str) -> Result<(), String>;
}

impl<T> AnySetting for Setting<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn default_value(&self) -> &'static str {
        self.default
    }
    fn secret(&self) -> bool {
        self.secret
    }
    fn doc(&self) -> &'static str {
        self.doc
    }
    fn check(&self, raw: &str) -> Result<(), String> {
        (self.parse)(raw).map(|_| ())
    }
}

/// Reads typed settings from a [`Variables`] source.
pub struct Config<'a> {
    vars: &'a dyn Variables,
}

impl<'a> Config<'a> {
    pub fn new(vars: &'a dyn Variables) -> Self {
        Self { vars }
    }

    /// The value of a setting: the host's value if set and non-empty, else the default.
    pub fn get<T>(&self, setting: &Setting<T>) -> Result<T, ConfigError> {
        let raw = self.vars.get(setting.name).map_err(|reason| ConfigError {
            name: setting.name,
            reason,
        })?;
        let raw = raw.as_deref().map(str::trim).filter(|v| !v.is_empty());
        (setting.parse)(raw.unwrap_or(setting.default)).map_err(|reason| ConfigError {
            name: setting.name,
            reason,
        })
    }

    /// Parses every setting; one sentence per bad value.
    pub fn check_all(&self) -> Vec<String> {
        ALL.iter()
            .filter_map(|s| {
                let raw = match self.vars.get(s.name()) {
                    Ok(raw) => raw,
                    Err(reason) => return Some(format!("variable `{}`: {reason}", s.name())),
                };
                let raw = raw.as_deref().map(str::trim).filter(|v| !v.is_empty());
                s.check(raw.unwrap_or(s.default_value()))
                    .err()
                    .map(|reason| format!("variable `{}`: {reason}", s.name()))
            })
            .collect()
    }
}

fn uint<const MIN: u64, const MAX: u64>(raw: &str) -> Result<u64, String> {
    let v: u64 = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a whole number"))?;
    if (MIN..=MAX).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside {MIN}..={MAX}"))
    }
}

/// A duration or timestamp offset in seconds, as the signed type SQL uses.
fn seconds<const MIN: i64>(raw: &str) -> Result<i64, String> {
    let v: i64 = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a whole number of seconds"))?;
    // Ten years: beyond that a typo is likelier than intent, and sums stay far from overflow.
    const MAX: i64 = 10 * 366 * 86_400;
    if (MIN..=MAX).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside {MIN}..={MAX} seconds"))
    }
}

/// A number of leading zero bits for proof-of-work; 0 disables it.
fn bits(raw: &str) -> Result<u32, String> {
    let v: u32 = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a whole number of bits"))?;
    // 40 bits is already ~10^12 hashes: anything above is a typo, not a policy.
    if v <= 40 {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..=40 bits"))
    }
}

/// Bits per byte of Shannon entropy, 0 (disabled) to 8.
fn entropy(raw: &str) -> Result<f64, String> {
    let v: f64 = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a number"))?;
    if (0.0..=8.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..=8 bits per byte"))
    }
}

fn flag(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("`{raw}` is not a boolean (use 1 or 0)")),
    }
}

fn text(raw: &str) -> Result<String, String> {
    Ok(raw.to_owned())
}

/// A path prefix such as `/paste`: empty, or `/` followed by path characters, no trailing `/`.
fn url_prefix(raw: &str) -> Result<String, String> {
    let p = raw.trim_end_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    let ok = p.starts_with('/')
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if ok && !p.contains("//") {
        Ok(p.to_owned())
    } else {
        Err(format!(
            "`{raw}` is not a path prefix like `/paste` (letters, digits, `-._~`, separated by `/`)"
        ))
    }
}

const MIB: u64 = 1024 * 1024;

pub const MAX_ANON: Setting<u64> = Setting {
    name: "max_anon",
    default: "3145728",
    secret: false,
    doc: "Largest paste an anonymous client may create, in bytes (3 MiB).",
    parse: uint::<1, { 1024 * MIB }>,
};

pub const MAX_AUTH: Setting<u64> = Setting {
    name: "max_auth",
    default: "52428800",
    secret: false,
    doc: "Largest paste a client with a certificate fingerprint may create, in bytes (50 MiB).",
    parse: uint::<1, { 1024 * MIB }>,
};

pub const EXPIRY_ANON: Setting<i64> = Setting {
    name: "expiry_anon",
    default: "86400",
    secret: false,
    doc: "Default lifetime of an anonymous paste, in seconds (1 day).",
    parse: seconds::<1>,
};

pub const EXPIRY_UNTRUSTED: Setting<i64> = Setting {
    name: "expiry_untrusted",
    default: "604800",
    secret: false,
    doc: "Default lifetime of a paste from a certificate not issued by this server's CA, in seconds (7 days).",
    parse: seconds::<1>,
};

pub const EXPIRY_TRUSTED: Setting<i64> = Setting {
    name: "expiry_trusted",
    default: "2592000",
    secret: false,
    doc: "Default lifetime of a paste from a certificate issued by this server's CA, in seconds (30 days).",
    parse: seconds::<1>,
};

pub const MAX_EXPIRY: Setting<i64> = Setting {
    name: "max_expiry",
    default: "7776000",
    secret: false,
    doc: "Cap on `X-Expiry` and `X-Extend-Expiry`, in seconds (90 days).",
    parse: seconds::<1>,
};

pub const PROXY_SECRET: Setting<String> = Setting {
    name: wasmpaste_contract::identity::PROXY_SECRET_VARIABLE,
    default: "",
    secret: true,
    doc: "When set, `X-SSL-Client-SHA1` is trusted only on requests whose `X-Proxy-Secret` \
          header equals it; other requests are anonymous. Empty: no check.",
    parse: text,
};

pub const URL_PREFIX: Setting<String> = Setting {
    name: "url_prefix",
    default: "",
    secret: false,
    doc: "Path prefix under which a reverse proxy publishes the service (e.g. `/paste`); \
          URLs in responses include it. The proxy strips it before forwarding.",
    parse: url_prefix,
};

pub const CLEANUP_INTERVAL: Setting<i64> = Setting {
    name: "cleanup_interval",
    default: "3600",
    secret: false,
    doc: "Minimum seconds between two cleanup passes run during requests (expired pastes, \
          used challenges, ended rate and dedup windows). One request per interval, across \
          all instances, does the work.",
    parse: seconds::<1>,
};

pub const POW_DIFFICULTY: Setting<u32> = Setting {
    name: "pow_difficulty",
    default: "20",
    secret: false,
    doc: "Leading zero bits a proof-of-work solution needs to create a paste or short URL. \
          0 disables proof-of-work.",
    parse: bits,
};

pub const POW_TTL: Setting<i64> = Setting {
    name: "pow_ttl",
    default: "300",
    secret: false,
    doc: "Seconds a challenge stays valid.",
    parse: seconds::<1>,
};

pub const POW_SECRET: Setting<String> = Setting {
    name: "pow_secret",
    default: "",
    secret: true,
    doc: "Key that signs challenges (HMAC-SHA256). Empty: a random key is generated once and \
          stored in the database, so every instance and restart agrees.",
    parse: text,
};

pub const REGISTER_POW: Setting<u32> = Setting {
    name: "register_pow",
    default: "24",
    secret: false,
    doc: "Leading zero bits of the challenge for certificate registration \
          (`GET /register/challenge`). 0 disables it.",
    parse: bits,
};

pub const ANTIFLOOD_THRESHOLD: Setting<u64> = Setting {
    name: "antiflood_threshold",
    default: "5",
    secret: false,
    doc: "Creations per `antiflood_window` beyond which the challenge difficulty rises \
          (one breach). 0 disables anti-flood.",
    parse: uint::<0, { u32::MAX as u64 }>,
};

pub const ANTIFLOOD_WINDOW: Setting<i64> = Setting {
    name: "antiflood_window",
    default: "60",
    secret: false,
    doc: "Seconds of the anti-flood counting window.",
    parse: seconds::<1>,
};

pub const ANTIFLOOD_STEP: Setting<u32> = Setting {
    name: "antiflood_step",
    default: "2",
    secret: false,
    doc: "Bits added to the difficulty per breach.",
    parse: bits,
};

pub const ANTIFLOOD_MAX: Setting<u32> = Setting {
    name: "antiflood_max",
    default: "28",
    secret: false,
    doc: "Highest difficulty anti-flood raises to, in bits.",
    parse: bits,
};

pub const ANTIFLOOD_DECAY: Setting<i64> = Setting {
    name: "antiflood_decay",
    default: "60",
    secret: false,
    doc: "Seconds without a breach after which the difficulty returns to `pow_difficulty`.",
    parse: seconds::<1>,
};

pub const RATE_MAX: Setting<u64> = Setting {
    name: "rate_max",
    default: "10",
    secret: false,
    doc: "Creations (`POST /`, `POST /s`) per client IP per `rate_window`. 0 disables \
          rate limiting.",
    parse: uint::<0, { u32::MAX as u64 }>,
};

pub const RATE_WINDOW: Setting<i64> = Setting {
    name: "rate_window",
    default: "60",
    secret: false,
    doc: "Seconds of the rate-limit window.",
    parse: seconds::<1>,
};

pub const RATE_AUTH_MULT: Setting<u64> = Setting {
    name: "rate_auth_mult",
    default: "5",
    secret: false,
    doc: "Multiplier of `rate_max` for clients with a certificate fingerprint.",
    parse: uint::<1, 1000>,
};

pub const DEDUP_WINDOW: Setting<i64> = Setting {
    name: "dedup_window",
    default: "3600",
    secret: false,
    doc: "Seconds during which identical content is counted.",
    parse: seconds::<1>,
};

pub const DEDUP_MAX: Setting<u64> = Setting {
    name: "dedup_max",
    default: "3",
    secret: false,
    doc: "Identical pastes (same SHA-256), and shortenings of one URL, accepted per \
          `dedup_window`; further ones get 429. 0 disables deduplication.",
    parse: uint::<0, { u32::MAX as u64 }>,
};

pub const MIN_SIZE: Setting<u64> = Setting {
    name: "min_size",
    default: "0",
    secret: false,
    doc: "Smallest paste accepted, in bytes (e.g. 64 to enforce encryption). 0 disables it.",
    parse: uint::<0, { 1024 * MIB }>,
};

pub const MIN_ENTROPY: Setting<f64> = Setting {
    name: "min_entropy",
    default: "0",
    secret: false,
    doc: "Lowest Shannon entropy accepted, in bits per byte (0 to 8; encrypted data is ~7.5-8, \
          English text ~4-5). 0 disables the check.",
    parse: entropy,
};

pub const MIN_ENTROPY_SIZE: Setting<u64> = Setting {
    name: "min_entropy_size",
    default: "256",
    secret: false,
    doc: "Pastes smaller than this many bytes are exempt from `min_entropy` (entropy of small \
          samples is meaningless).",
    parse: uint::<0, { 1024 * MIB }>,
};

pub const REQUIRE_BINARY: Setting<bool> = Setting {
    name: "require_binary",
    default: "0",
    secret: false,
    doc: "1: accept only content with no recognizable format (neither valid UTF-8 nor any \
          known file type), i.e. client-side encrypted data.",
    parse: flag,
};

pub const SHORT_URL_MAX: Setting<u64> = Setting {
    name: "short_url_max",
    default: "2048",
    secret: false,
    doc: "Longest target URL `POST /s` accepts, in bytes, as sent and once normalized \
          (percent-encoding, punycode).",
    parse: uint::<1, { 64 * 1024 }>,
};

pub const PKI_ENABLED: Setting<bool> = Setting {
    name: "pki_enabled",
    default: "0",
    secret: false,
    doc: "1: serve the certificate authority endpoints under `/pki` (`POST /pki/ca`, \
          `POST /pki/issue` without proof-of-work, `GET /pki/certs`, revocation). \
          `POST /register` works without it.",
    parse: flag,
};

pub const PKI_CA_PASSWORD: Setting<String> = Setting {
    name: "pki_ca_password",
    default: "",
    secret: true,
    doc: "Password that encrypts the CA's private key in the database (PBKDF2-HMAC-SHA256, \
          AES-256-CBC). Required to create the CA and to issue certificates; changing it \
          makes the stored CA key unusable.",
    parse: text,
};

pub const PKI_CERT_DAYS: Setting<u64> = Setting {
    name: "pki_cert_days",
    default: "365",
    secret: false,
    doc: "Validity of issued client certificates, in days (never past the CA's own expiry).",
    parse: uint::<1, 36_500>,
};

pub const PKI_CA_DAYS: Setting<u64> = Setting {
    name: "pki_ca_days",
    default: "3650",
    secret: false,
    doc: "Validity of the CA certificate, in days.",
    parse: uint::<1, 36_500>,
};

/// Every setting, for `check-config`, the docs test and the host's typo warnings.
pub const ALL: &[&dyn AnySetting] = &[
    &MAX_ANON,
    &MAX_AUTH,
    &EXPIRY_ANON,
    &EXPIRY_UNTRUSTED,
    &EXPIRY_TRUSTED,
    &MAX_EXPIRY,
    &PROXY_SECRET,
    &URL_PREFIX,
    &CLEANUP_INTERVAL,
    &POW_DIFFICULTY,
    &POW_TTL,
    &POW_SECRET,
    &REGISTER_POW,
    &ANTIFLOOD_THRESHOLD,
    &ANTIFLOOD_WINDOW,
    &ANTIFLOOD_STEP,
    &ANTIFLOOD_MAX,
    &ANTIFLOOD_DECAY,
    &RATE_MAX,
    &RATE_WINDOW,
    &RATE_AUTH_MULT,
    &DEDUP_WINDOW,
    &DEDUP_MAX,
    &MIN_SIZE,
    &MIN_ENTROPY,
    &MIN_ENTROPY_SIZE,
    &REQUIRE_BINARY,
    &SHORT_URL_MAX,
    &PKI_ENABLED,
    &PKI_CA_PASSWORD,
    &PKI_CERT_DAYS,
    &PKI_CA_DAYS,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::MapVars;

    #[test]
    fn every_default_parses() {
        let vars = MapVars::default();
        assert_eq!(Config::new(&vars).check_all(), Vec::<String>::new());
    }

    #[test]
    fn names_are_unique_and_valid_spin_variable_names() {
        let mut seen = std::collections::HashSet::new();
        for s in ALL {
            assert!(seen.insert(s.name()), "duplicate {}", s.name());
            let n = s.name();
            assert!(n.starts_with(|c: char| c.is_ascii_lowercase()), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{n}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let vars = MapVars::default()
            .with("max_anon", "lots")
            .with("expiry_anon", "-5")
            .with("url_prefix", "paste");
        let errors = Config::new(&vars).check_all();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("`max_anon`") && errors[0].contains("lots"));
        assert!(errors[1].contains("`expiry_anon`"));
        assert!(errors[2].contains("`url_prefix`"));
        assert!(Config::new(&vars).get(&MAX_ANON).is_err());
    }

    #[test]
    fn empty_values_mean_default_and_prefixes_are_normalized() {
        let vars = MapVars::default()
            .with("max_anon", "  ")
            .with("url_prefix", "/paste/");
        let cfg = Config::new(&vars);
        assert_eq!(cfg.get(&MAX_ANON), Ok(3 * MIB));
        assert_eq!(cfg.get(&URL_PREFIX).as_deref(), Ok("/paste"));
    }

    #[test]
    fn docs_list_every_setting_with_its_default() {
        let doc = include_str!("../../docs/configuration.md");
        for s in ALL {
            let row_start = format!("| `{}` |", s.name());
            let row = doc
                .lines()
                .find(|l| l.starts_with(&row_start))
                .unwrap_or_else(|| panic!("docs/configuration.md lacks a row for `{}`", s.name()));
            let default = if s.default_value().is_empty() {
                "(empty)".to_owned()
            } else {
                format!("`{}`", s.default_value())
            };
            assert!(
                row.contains(&default),
                "docs/configuration.md: `{}` should show default {default}: {row}",
                s.name()
            );
        }
    }

    /// spin.toml declares every setting with its default and secrecy, maps
    /// each into the component, and nothing else.
    #[test]
    fn spin_manifest_declares_every_setting() {
        let manifest: toml::Table = include_str!("../../spin.toml").parse().unwrap();
        let declared = manifest["variables"].as_table().unwrap();
        let component = manifest["component"]["wasmpaste"].as_table().unwrap();
        let mapped = component["variables"].as_table().unwrap();
        assert_eq!(declared.len(), ALL.len(), "spin.toml [variables]");
        assert_eq!(
            mapped.len(),
            ALL.len(),
            "spin.toml [component.wasmpaste.variables]"
        );
        for s in ALL {
            let v = declared
                .get(s.name())
                .unwrap_or_else(|| panic!("spin.toml lacks variable `{}`", s.name()));
            assert_eq!(
                v["default"].as_str(),
                Some(s.default_value()),
                "{}",
                s.name()
            );
            let secret = v
                .get("secret")
                .and_then(toml::Value::as_bool)
                .unwrap_or(false);
            assert_eq!(secret, s.secret(), "secret flag of `{}`", s.name());
            assert_eq!(
                mapped[s.name()].as_str(),
                Some(format!("{{{{ {} }}}}", s.name()).as_str())
            );
        }
        let databases = component["sqlite_databases"].as_array().unwrap();
        assert_eq!(databases, &vec![toml::Value::from("default")]);
        assert_eq!(
            component["source"].as_str(),
            Some("target/wasm32-wasip2/release/wasmpaste_guest.wasm")
        );
        let trigger = &manifest["trigger"]["http"][0];
        assert_eq!(trigger["route"].as_str(), Some("/..."));
    }
}
