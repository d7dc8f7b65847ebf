//! The guest's configuration: variables named as Spin names them, filled
//! from `WASMPASTE_*` environment variables (`WASMPASTE_MAX_ANON` is
//! `max_anon`) and a tenant's own `variables`. The WIT side is
//! `spin_variables.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

/// The environment prefix of guest variables.
pub const ENV_PREFIX: &str = "WASMPASTE_";

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

    /// Guest variables from an environment: every `WASMPASTE_X` whose `X` is
    /// not one of `host_settings` (the host's own flags).
    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
        host_settings: &[String],
    ) -> Self {
        Self::new(
            vars.into_iter()
                .filter_map(|(k, v)| {
                    let name = k.strip_prefix(ENV_PREFIX)?;
                    (!host_settings.iter().any(|h| h == name))
                        .then(|| (name.to_ascii_lowercase(), v))
                })
                .collect(),
        )
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

    #[test]
    fn env_names_map_to_lowercase_variables_without_host_settings() {
        let vars = Variables::from_env(
            [
                ("WASMPASTE_MAX_ANON".into(), "10".into()),
                ("WASMPASTE_LISTEN".into(), "0.0.0.0:1".into()),
                ("HOME".into(), "/root".into()),
            ],
            &["LISTEN".to_owned()],
        );
        assert_eq!(vars.lookup("max_anon"), Lookup::Found("10"));
        assert_eq!(vars.lookup("listen"), Lookup::Undefined);
        assert_eq!(vars.lookup("home"), Lookup::Undefined);
        assert_eq!(vars.names().collect::<Vec<_>>(), ["max_anon"]);
    }

    #[test]
    fn invalid_names_are_refused_like_spin_does() {
        let vars = Variables::default();
        for bad in ["", "Max", "1x", "a-b", "a__b", "_a"] {
            assert_eq!(vars.lookup(bad), Lookup::InvalidName, "{bad}");
        }
    }
}
