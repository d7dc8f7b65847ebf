//! Test doubles and invariants shared by the unit tests, the property tests
//! (`properties.rs`) and the coverage-guided fuzzers (`fuzz/`, feature `testkit`).

use std::cell::RefCell;
use std::collections::HashMap;

use crate::config::Variables;
use crate::http::Response;
use crate::log::Log;

/// A variables source for tests.
#[derive(Default, Clone)]
pub struct MapVars(pub HashMap<String, String>);

impl MapVars {
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.0.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Settings under which every route does real work on arbitrary input:
    /// abuse controls off (a random request cannot solve proof-of-work) and
    /// the PKI on.
    pub fn every_route() -> Self {
        Self::default()
            .with("pow_difficulty", "0")
            .with("register_pow", "0")
            .with("rate_max", "0")
            .with("dedup_max", "0")
            .with("pki_enabled", "1")
            .with("pki_ca_password", "fuzz")
    }
}

impl Variables for MapVars {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).cloned())
    }
}

/// Collects log lines for assertions.
#[derive(Default)]
pub struct Captured(pub RefCell<Vec<String>>);

impl Log for Captured {
    fn line(&self, line: &str) {
        self.0.borrow_mut().push(line.to_owned());
    }
}

/// What every answer to any request must satisfy, however bad the request:
/// no server error (bad input is the client's fault: a 4xx), a request id,
/// and a JSON body that parses wherever one is announced.
pub fn check_response(resp: &Response) -> Result<(), String> {
    if resp.status >= 500 {
        return Err(format!(
            "status {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        ));
    }
    if resp.headers.get("x-request-id").is_none() {
        return Err(format!("status {} without x-request-id", resp.status));
    }
    if resp.headers.get("content-type") == Some("application/json")
        && !resp.body.is_empty()
        && serde_json::from_slice::<serde_json::Value>(&resp.body).is_err()
    {
        return Err(format!(
            "status {}: announced JSON that does not parse: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        ));
    }
    Ok(())
}
