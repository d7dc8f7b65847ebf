//! Paths of the test components, built for wasm32-wasip2 by this package's
//! build script, for the host's end-to-end tests.

/// Absolute path of `wasmpaste_misbehave.wasm`: a component with the real
/// guest's world whose routes loop, allocate without bound, panic, sleep,
/// and report what the host lets it see (`tests/components/misbehave`).
pub const MISBEHAVE_WASM: &str = env!("WASMPASTE_MISBEHAVE_WASM");
