//! What the wasmpaste component (`guest/`) and the native host (`host/`) must
//! agree on, kept in one place: the headers every response carries, the
//! request-id rule, and the SQL value model with the way both bind it to
//! SQLite.
//!
//! The guest builds for `wasm32-wasip2`: nothing here may pull in a crate that
//! does not (rusqlite only behind the `rusqlite` feature, which the component
//! never enables). No I/O, no randomness of its own: callers bring bytes.

pub mod http;
pub mod identity;
pub mod sql;
