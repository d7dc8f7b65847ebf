//! Property tests over arbitrary input (stable Rust, `proptest`): the whole
//! request path (router -> handlers -> domain -> SQL on a native SQLite) and
//! each parser must never panic, and a request must never be answered with a
//! 5xx: every bad input is the client's fault and gets a 4xx JSON error.
//!
//! Failing cases are shrunk and saved under `guest/src/regressions/`,
//! which is kept in the repository and replayed first on every run.
//! `PROPTEST_CASES=N` runs more cases.

use proptest::prelude::*;

use crate::api::Env;
use crate::config::ALL;
use crate::domain::{OsRng, mime, pki, pow, short_url};
use crate::http::{Body, Headers, Method, Request};
use crate::router;
use crate::store::native::NativeSqlite;
use crate::testkit::{Captured, MapVars, check_response};

const FP: &str = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2";

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Get),
        Just(Method::Head),
        Just(Method::Post),
        Just(Method::Put),
        Just(Method::Delete),
        Just(Method::Options),
        "[A-Z]{1,8}".prop_map(|m| Method::parse(&m)),
    ]
}

/// Paths near the real routes, and garbage.
fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just(String::new()),
        Just("s".to_owned()),
        Just("pki".to_owned()),
        Just("raw".to_owned()),
        Just("info".to_owned()),
        Just("revoke".to_owned()),
        Just("register".to_owned()),
        Just("challenge".to_owned()),
        Just("pastes".to_owned()),
        Just("ca.crt".to_owned()),
        "[0-9a-f]{8,20}",
        "[A-Za-z0-9]{8}",
        "[0-9a-fA-F]{32}",
        "[^/?]{0,12}",
        "%[0-9A-F]{2}[a-z]{0,3}",
    ];
    prop::collection::vec(segment, 0..5).prop_map(|parts| format!("/{}", parts.join("/")))
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "(limit|offset|after|before|type|all)=[-0-9a-z*%/]{0,8}(&(limit|offset|all)=[0-9x-]{0,4})?",
        "[ -~]{0,24}",
    ]
}

fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let name = prop_oneof![
        Just("x-ssl-client-sha1"),
        Just("x-proxy-secret"),
        Just("x-pow-token"),
        Just("x-pow-solution"),
        Just("x-paste-password"),
        Just("x-burn-after-read"),
        Just("x-expiry"),
        Just("x-extend-expiry"),
        Just("x-display-name"),
        Just("x-remove-password"),
        Just("x-remove-display-name"),
        Just("x-request-id"),
        Just("x-forwarded-for"),
        Just("content-type"),
        Just("content-length"),
        Just("host"),
    ];
    let value = prop_oneof![
        Just(FP.as_bytes().to_vec()),
        Just(b"true".to_vec()),
        Just(b"application/json".to_vec()),
        "[0-9]{1,12}".prop_map(String::into_bytes),
        "[ -~]{0,48}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..48),
    ];
    (name.prop_map(str::to_owned), value)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..2048),
        "[ -~\n]{0,256}".prop_map(String::into_bytes),
        "https?://[a-z.@:]{0,20}/[ -~]{0,20}".prop_map(String::into_bytes),
        r#"\{"(content|url|common_name)": ?("[ -~]{0,40}"|[0-9]{1,4}|null|\[\])\}"#
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    // 256 cases per property unless PROPTEST_CASES says otherwise.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_request_panics_or_gets_a_server_error(
        requests in prop::collection::vec(
            (method(), path(), query(), prop::collection::vec(header(), 0..5), body()),
            1..4,
        )
    ) {
        // A few requests against one database, so later ones meet state.
        let db = NativeSqlite::memory();
        let vars = MapVars::every_route();
        let log = Captured::default();
        let env = Env { db: &db, vars: &vars, rng: &OsRng, log: &log, now: 1_700_000_000 };
        for (method, path, query, headers, body) in requests {
            let mut h = Headers::new();
            for (name, value) in headers {
                h.append(&name, value);
            }
            let label = format!("{} {path}", method.as_str());
            let resp = router::handle(
                &env,
                Request { method, path, query, headers: h, body: Body::Bytes(body) },
            );
            if let Err(e) = check_response(&resp) {
                prop_assert!(false, "{label}: {e}");
            }
        }
    }

    #[test]
    fn proof_of_work_tokens_never_panic(token in "[ -~]{0,120}", solution in "[ -~]{0,24}") {
        let _ = pow::verify(b"key", Some(&token), Some(&solution), 1_700_000_000, 8);
    }

    #[test]
    fn accepted_short_url_targets_are_safe_to_send(raw in "(https?://)?[ -~\u{80}-\u{10ffff}]{0,80}") {
        if let Ok(target) = short_url::validate_target(&raw, 2048) {
            prop_assert!(target.is_ascii());
            prop_assert!(!target.bytes().any(|b| b.is_ascii_control()));
            prop_assert!(target.starts_with("http://") || target.starts_with("https://"));
        }
    }

    #[test]
    fn mime_detection_always_answers(content in prop::collection::vec(any::<u8>(), 0..512),
                                     declared in proptest::option::of("[ -~]{0,40}")) {
        let detected = mime::detect(&content, declared.as_deref());
        prop_assert!(!detected.is_empty());
        prop_assert!(!detected.bytes().any(|b| b.is_ascii_control()));
    }

    #[test]
    fn configuration_values_never_panic(raw in "[ -~]{0,24}") {
        for setting in ALL {
            let _ = setting.check(&raw);
        }
    }

    #[test]
    fn common_names_are_bounded(raw in "\\PC{0,80}") {
        if let Ok(Some(name)) = pki::common_name(Some(&raw)) {
            prop_assert!(name.chars().count() <= pki::MAX_COMMON_NAME);
            prop_assert!(!name.chars().any(char::is_control));
        }
    }
}
