//! The API suites on Fermyon Spin: the same test files as the native host's
//! `paste_api`, `abuse`, `shortener` and `pki` targets, compiled into this
//! binary, whose name (`api_on_spin`) makes their `Server` a `spin up`
//! serving the component the native host embeds (tests/common/spin.rs).
//! Without a `spin` on PATH the binary skips with a printed reason, except
//! under `CI=true`, where that fails.

// Each suite declares `mod common;` for its own test binary, so here the
// harness is compiled once per suite.
#![allow(clippy::duplicate_mod)]

#[path = "abuse.rs"]
mod abuse;
#[path = "paste_api.rs"]
mod paste_api;
#[path = "pki.rs"]
mod pki;
#[path = "shortener.rs"]
mod shortener;
