//! The native wasmpaste host: serves the wasmpaste component (the same `.wasm`
//! that runs on Spin) with wasmtime, wasi-http, tokio and rusqlite, for one
//! tenant or many, each sandboxed with its own database and limits.
//!
//! It provides exactly what Spin provides to the component
//! (`fermyon:spin/sqlite@2.0.0`, `fermyon:spin/variables@2.0.0`, WASI 0.2) and
//! nothing else: no outbound HTTP, no files, no environment.

pub mod admin;
// wasmtime's `bindgen!` expands to code that uses `unsafe` internally.
#[allow(unsafe_code)]
pub mod bindings;
pub mod body_limit;
pub mod cleanup;
pub mod cli;
pub mod client_download;
pub mod config;
pub mod cpu;
pub mod db;
pub mod engine;
pub mod guest;
pub mod guest_log;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod pool;
pub mod runtime_config;
pub mod server;
pub mod spin_sqlite;
pub mod spin_variables;
pub mod state;
pub mod tenant;
pub mod tls;
pub mod variables;
