//! The wasmpaste component: a pastebin API on `wasi:http`, with all state in
//! Spin's SQL interface and configuration from Spin variables.
//!
//! Layers, each only calling the next: `adapter` (the only code that touches
//! generated bindings) -> `router` -> `api` -> `domain` -> `store`. Everything
//! below the adapter runs natively, so `cargo test` exercises the real router,
//! SQL and migrations without wasm.
//!
//! The component keeps no state between requests: Spin instantiates it per
//! request, and several hosts may share one database.

// Generated bindings use `unsafe` internally; nothing else in the crate may.
#[cfg(all(target_arch = "wasm32", feature = "component"))]
#[allow(unsafe_code)]
mod adapter;
pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod log;
pub mod maintenance;
pub mod router;
pub mod store;

#[cfg(test)]
mod properties;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(test)]
mod tests;
