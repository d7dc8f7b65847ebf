//! Arbitrary request sequences through the whole request path: router ->
//! handlers -> domain -> SQL on a native in-memory SQLite, with every route
//! live (abuse controls off, PKI on). No panic, no 5xx, a request id on every
//! answer and valid JSON wherever JSON is announced. Input format: `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmpaste_fuzz::{Seen, templates};
use wasmpaste_guest::api::Env;
use wasmpaste_guest::domain::OsRng;
use wasmpaste_guest::router;
use wasmpaste_guest::store::native::NativeSqlite;
use wasmpaste_guest::testkit::{Captured, MapVars, check_response};

fuzz_target!(|data: &[u8]| {
    let db = NativeSqlite::memory();
    let vars = MapVars::every_route();
    let log = Captured::default();
    let env = Env {
        db: &db,
        vars: &vars,
        rng: &OsRng,
        log: &log,
        now: 1_700_000_000,
    };
    let mut seen = Seen::default();
    for template in templates(data) {
        let req = seen.request(&template);
        let label = format!("{} {}", req.method, req.path);
        let resp = router::handle(&env, req);
        if let Err(e) = check_response(&resp) {
            panic!("{label}: {e}");
        }
        seen.learn(&resp);
    }
});
