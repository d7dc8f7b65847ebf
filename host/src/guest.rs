//! The guest component embedded at build time (see `build.rs`).

/// The wasmpaste component built from `guest/` for `wasm32-wasip2`.
pub const EMBEDDED: &[u8] = include_bytes!(env!("WASMPASTE_GUEST_WASM_PATH"));
