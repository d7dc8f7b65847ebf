//! The API suites on a libSQL server: the same test files as the native host's
//! `paste_api`, `abuse`, `shortener` and `pki` targets, compiled into this
//! binary, whose name (`api_on_sqld`) makes their `Server` the native host
//! with its database on a `sqld` of its own (tests/common/sqld.rs).
//! Without a `sqld` on PATH the binary skips with a printed reason, except
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
