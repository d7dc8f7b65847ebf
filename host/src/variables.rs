//! The guest's configuration: variables named as Spin names them, filled
//! from `WASMPASTE_*` environment variables (`WASMPASTE_MAX_ANON` is
//! `max_anon`), from FlaskPaste's own names for the same settings
//! (`FLASKPASTE_MAX_ANON`: an operator's existing env file keeps working;
//! dropping one silently could turn a check off) and from a tenant's own
//! `variables`. The WIT side is `spin_variables.rs`. Values are secrets
//! (`proxy_secret`, `pki_ca_password`): never put one in a message.

use std::collections::BTreeMap;
use std::sync::Arc;

/// The environment prefix of guest variables (and of the host's settings).
pub const ENV_PREFIX: &str = "WASMPASTE_";
/// FlaskPaste's prefix for the same guest variables.
pub const FLASKPASTE_PREFIX: &str = "FLASKPASTE_";

/// Variable values, shared by every request.
#[derive(Debug, Default, Clone)]
pub struct Variables(Arc<BTreeMap<String, String>>);

/// What looking up one name found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Found(&'a str),
    Undefined,
    /// Not a name Spin allows (the guest would get `invalid-name`).
    InvalidName,
}

impl Variables {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self(Arc::new(values))
    }

    /// These variables with `overrides` taking precedence (a tenant's own values).
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Self {
        let mut merged = (*self.0).clone();
        merged.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self::new(merged)
    }

    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        if !is_valid_name(name) {
            return Lookup::InvalidName;
        }
        self.0
            .get(name)
            .map_or(Lookup::Undefined, |v| Lookup::Found(v))
    }

    pub fn contains(&self, name: &str) -> bool {
        matches!(self.lookup(name), Lookup::Found(_))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Every (name, value), by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Guest variables read from the environment, and which environment
/// variable set each.
#[derive(Debug, Default, Clone)]
pub struct EnvVariables {
    pub values: Variables,
    /// `max_anon` -> `FLASKPASTE_MAX_ANON`, for messages about a variable.
    sources: BTreeMap<String, String>,
}

impl EnvVariables {
    /// Every `WASMPASTE_X` whose `X` is not one of `host_settings` (the
    /// host's own flags) and every `FLASKPASTE_X` becomes variable `x`. The
    /// two names of one variable may both be set only to the same value.
    pub fn read(
        vars: impl IntoIterator<Item = (String, String)>,
        host_settings: &[String],
    ) -> Result<Self, String> {
        let mut values = BTreeMap::new();
        let mut sources: BTreeMap<String, String> = BTreeMap::new();
        let mut conflicts = Vec::new();
        for (key, value) in vars {
            let name = match key.strip_prefix(ENV_PREFIX) {
                Some(name) if host_settings.iter().any(|h| h == name) => continue,
                Some(name) => name,
                None => match key.strip_prefix(FLASKPASTE_PREFIX) {
                    Some(name) => name,
                    None => continue,
                },
            };
            let name = name.to_ascii_lowercase();
            match values.get(&name) {
                Some(earlier) if *earlier != value => {
                    let other = sources.get(&name).cloned().unwrap_or_default();
                    conflicts.push(format!(
                        "{other} and {key} are both set, to different values: they are the \
                         same setting (`{name}`), set only one"
                    ));
                }
                Some(_) => {}
                None => {
                    sources.insert(name.clone(), key);
                    values.insert(name, value);
                }
            }
        }
        if conflicts.is_empty() {
            Ok(Self {
                values: Variables::new(values),
                sources,
            })
        } else {
            Err(conflicts.join("\n"))
        }
    }

    /// The environment variable that set `name`, if one did.
    pub fn source(&self, name: &str) -> Option<&str> {
        self.sources.get(name).map(String::as_str)
    }
}

/// Spin's variable-name rule.
pub fn is_valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<EnvVariables, String> {
        EnvVariables::read(
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            &["LISTEN".to_owned()],
        )
    }

    #[test]
    fn env_names_map_to_lowercase_variables_without_host_settings() {
        let env = read(&[
            ("WASMPASTE_MAX_ANON", "10"),
            ("WASMPASTE_LISTEN", "0.0.0.0:1"),
            ("HOME", "/root"),
        ])
        .unwrap();
        let vars = &env.values;
        assert_eq!(vars.lookup("max_anon"), Lookup::Found("10"));
        assert_eq!(vars.lookup("listen"), Lookup::Undefined);
        assert_eq!(vars.lookup("home"), Lookup::Undefined);
        assert_eq!(vars.names().collect::<Vec<_>>(), ["max_anon"]);
        assert_eq!(env.source("max_anon"), Some("WASMPASTE_MAX_ANON"));
    }

    #[test]
    fn flaskpaste_names_set_the_same_variables() {
        let env = read(&[
            ("FLASKPASTE_PROXY_SECRET", "s3cret"),
            ("FLASKPASTE_MAX_ANON", "10"),
            ("WASMPASTE_MAX_ANON", "10"),
            ("FLASKPASTE_LISTEN", "x"),
        ])
        .unwrap();
        assert_eq!(env.values.lookup("proxy_secret"), Lookup::Found("s3cret"));
        assert_eq!(env.source("proxy_secret"), Some("FLASKPASTE_PROXY_SECRET"));
        assert_eq!(env.values.lookup("max_anon"), Lookup::Found("10"));
        // Only our own prefix names host settings; FlaskPaste had none.
        assert_eq!(env.values.lookup("listen"), Lookup::Found("x"));
    }

    #[test]
    fn both_names_with_different_values_are_refused_without_the_values() {
        let err = read(&[
            ("WASMPASTE_PROXY_SECRET", "one-secret"),
            ("FLASKPASTE_PROXY_SECRET", "other-secret"),
        ])
        .unwrap_err();
        assert!(err.contains("WASMPASTE_PROXY_SECRET"), "{err}");
        assert!(err.contains("FLASKPASTE_PROXY_SECRET"), "{err}");
        assert!(!err.contains("one-secret"), "{err}");
        assert!(!err.contains("other-secret"), "{err}");
    }

    #[test]
    fn invalid_names_are_refused_like_spin_does() {
        let vars = Variables::default();
        for bad in ["", "Max", "1x", "a-b", "a__b", "_a"] {
            assert_eq!(vars.lookup(bad), Lookup::InvalidName, "{bad}");
        }
    }
}
