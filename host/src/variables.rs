//! `fermyon:spin/variables@2.0.0`: configuration for the guest, from
//! `WASMPASTE_*` environment variables (`WASMPASTE_MAX_ANON` is `max_anon`).
//! Names follow Spin's rules, so a guest behaves the same on both hosts.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::bindings::fermyon::spin::variables::{self, Error};
use crate::state::HostState;

/// The environment prefix of guest variables.
pub const ENV_PREFIX: &str = "WASMPASTE_";

/// `WASMPASTE_*` names that configure the host itself, not the guest.
pub const HOST_SETTINGS: &[&str] = &[
    "LISTEN",
    "DB",
    "COMPONENT",
    "LOG_FORMAT",
    "REQUEST_TIMEOUT",
    "MAX_MEMORY",
    "MAX_CONCURRENCY",
    "CACHE_DIR",
    "NO_CACHE",
    "GUEST_WASM",
    "CONFIG",
    "ADMIN_LISTEN",
    "MAX_INSTANCES",
    "MAX_BODY_MIB",
    "DB_QUOTA_MIB",
    "CLEANUP_EVERY",
    "MAX_INSTANCE_REUSE",
    "IDLE_INSTANCE_TIMEOUT",
];

/// Variable values, shared by every request.
#[derive(Debug, Default, Clone)]
pub struct Variables(Arc<BTreeMap<String, String>>);

impl Variables {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self(Arc::new(values))
    }

    /// Guest variables from an environment: every `WASMPASTE_X` that is not a host setting.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self::new(
            vars.into_iter()
                .filter_map(|(k, v)| {
                    let name = k.strip_prefix(ENV_PREFIX)?;
                    (!HOST_SETTINGS.contains(&name)).then(|| (name.to_ascii_lowercase(), v))
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

    pub fn get(&self, name: &str) -> Result<String, Error> {
        if !is_valid_name(name) {
            return Err(Error::InvalidName(format!(
                "`{name}`: names are lowercase letters, digits and underscores, starting with a letter"
            )));
        }
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Undefined(format!("no variable named `{name}`")))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
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

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        Ok(self.variables.get(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_lowercase_variables_without_host_settings() {
        let vars = Variables::from_env([
            ("WASMPASTE_MAX_ANON".into(), "10".into()),
            ("WASMPASTE_LISTEN".into(), "0.0.0.0:1".into()),
            ("HOME".into(), "/root".into()),
        ]);
        assert_eq!(vars.get("max_anon").unwrap(), "10");
        assert!(matches!(vars.get("listen"), Err(Error::Undefined(_))));
        assert!(matches!(vars.get("home"), Err(Error::Undefined(_))));
        assert_eq!(vars.names().collect::<Vec<_>>(), ["max_anon"]);
    }

    #[test]
    fn invalid_names_are_refused_like_spin_does() {
        let vars = Variables::default();
        for bad in ["", "Max", "1x", "a-b", "a__b", "_a"] {
            assert!(matches!(vars.get(bad), Err(Error::InvalidName(_))), "{bad}");
        }
    }
}
