//! Router-level tests: real routing, handlers, SQL and migrations on a native
//! SQLite database, without wasm. The end-to-end suite in `tests/` drives the
//! same code inside the real host over HTTP.

use serde_json::Value as Json;

use crate::api::Env;
use crate::domain::OsRng;
use crate::http::{Body, Headers, Method, Request, Response};
use crate::router;
use crate::store::native::NativeSqlite;
use crate::testkit::{Captured, MapVars};

const FP: &str = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2";

/// The component's logic over database `D` (a native SQLite unless a test
/// needs one that misbehaves).
struct App<D = NativeSqlite> {
    db: D,
    vars: MapVars,
    log: Captured,
    now: i64,
}

impl App {
    /// Abuse controls off: these tests are about the paste API itself.
    fn new() -> Self {
        Self::with_vars(MapVars::default())
    }

    fn with_vars(vars: MapVars) -> Self {
        let mut vars = vars;
        for (name, off) in [
            ("pow_difficulty", "0"),
            ("rate_max", "0"),
            ("dedup_max", "0"),
        ] {
            vars.0
                .entry(name.to_owned())
                .or_insert_with(|| off.to_owned());
        }
        Self::with_exact_vars(vars)
    }

    fn with_exact_vars(vars: MapVars) -> Self {
        App::over(NativeSqlite::memory(), vars)
    }
}

impl<D: crate::store::Sql> App<D> {
    fn over(db: D, vars: MapVars) -> Self {
        Self {
            db,
            vars,
            log: Captured::default(),
            now: 1_700_000_000,
        }
    }

    fn send(
        &self,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.answer(method, target, headers, body).response
    }

    fn answer(
        &self,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> router::Answer {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut h = Headers::new();
        for (n, v) in headers {
            h.append(n, *v);
        }
        let env = Env {
            db: &self.db,
            vars: &self.vars,
            rng: &OsRng,
            log: &self.log,
            now: self.now,
        };
        router::answer(
            &env,
            Request {
                method,
                path: path.into(),
                query: query.into(),
                headers: h,
                body: Body::Bytes(body.to_vec()),
            },
        )
    }

    fn get(&self, target: &str) -> Response {
        self.send(Method::Get, target, &[], b"")
    }

    fn create(&self, headers: &[(&str, &str)], body: &[u8]) -> Json {
        let resp = self.send(Method::Post, "/", headers, body);
        assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
        json(&resp)
    }
}

fn json(resp: &Response) -> Json {
    serde_json::from_slice(&resp.body).expect("JSON body")
}

fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
    resp.headers.get(name)
}

#[test]
fn every_response_carries_security_headers_and_a_request_id() {
    let app = App::new();
    for resp in [
        app.get("/"),
        app.get("/nope/nope/nope"),
        app.get("/ZZZZ"),
        app.send(patch(), "/", &[], b""),
    ] {
        assert_eq!(header(&resp, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&resp, "x-frame-options"), Some("DENY"));
        assert_eq!(
            header(&resp, "content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
        assert_eq!(
            header(&resp, "cache-control"),
            Some("no-store, no-cache, must-revalidate, private")
        );
        assert_eq!(header(&resp, "pragma"), Some("no-cache"));
        assert_eq!(
            header(&resp, "strict-transport-security"),
            Some("max-age=31536000; includeSubDomains")
        );
        assert_eq!(header(&resp, "x-request-id").map(str::len), Some(36));
    }
}

fn patch() -> Method {
    Method::Other("PATCH".into())
}

#[test]
fn request_ids_pass_through_unless_unsafe() {
    let app = App::new();
    let resp = app.send(Method::Get, "/", &[("X-Request-ID", "my-trace-123")], b"");
    assert_eq!(header(&resp, "x-request-id"), Some("my-trace-123"));
    let resp = app.send(Method::Get, "/", &[("X-Request-ID", "evil\" id")], b"");
    assert_ne!(header(&resp, "x-request-id"), Some("evil\" id"));
    let long = "a".repeat(129);
    let resp = app.send(Method::Get, "/", &[("X-Request-ID", &long)], b"");
    assert_eq!(header(&resp, "x-request-id").map(str::len), Some(36));
}

#[test]
fn index_describes_the_api_with_the_callers_host() {
    let app = App::with_vars(MapVars::default().with("url_prefix", "/paste"));
    let resp = app.send(Method::Get, "/", &[("Host", "paste.example:8080")], b"");
    let body = json(&resp);
    assert_eq!(body["name"], "wasmpaste");
    assert_eq!(
        body["usage"]["raw"],
        "curl --data-binary @file.txt http://paste.example:8080/paste/"
    );
    assert!(body["endpoints"]["POST /"].is_string());
}

#[test]
fn unknown_paths_and_methods() {
    let app = App::new();
    let resp = app.get("/a/b/c");
    assert_eq!(resp.status, 404);
    assert_eq!(json(&resp)["error"], "Not found");
    let resp = app.send(patch(), "/0123456789abcdef", &[], b"");
    assert_eq!(resp.status, 405);
    assert_eq!(
        header(&resp, "allow"),
        Some("GET, HEAD, PUT, DELETE, OPTIONS")
    );
    let resp = app.send(Method::Options, "/", &[], b"");
    assert_eq!(resp.status, 204);
    assert_eq!(header(&resp, "allow"), Some("GET, HEAD, POST, OPTIONS"));
}

#[test]
fn the_client_download_is_a_404_with_an_install_hint_where_nothing_serves_it() {
    // The native host answers GET /client itself; on Spin (and with
    // `--no-client`) the component does, never as a malformed paste id.
    let app = App::new();
    let resp = app.get("/client");
    assert_eq!(resp.status, 404);
    let body = json(&resp);
    assert_eq!(body["error"], "Not found");
    assert!(
        body["hint"]
            .as_str()
            .is_some_and(|h| h.contains("cargo install --path cli"))
    );
}

#[test]
fn health_reports_the_database() {
    let app = App::new();
    let resp = app.get("/health");
    assert_eq!(resp.status, 200);
    assert_eq!(json(&resp)["database"], "ok");
    assert!(json(&resp).get("configuration").is_none());
}

#[test]
fn health_reports_an_invalid_variable() {
    let app = App::with_vars(MapVars::default().with("pow_difficulty", "abc"));
    let resp = app.get("/health");
    assert_eq!(resp.status, 503);
    let body = json(&resp);
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["configuration"], "invalid");
    // The value is for the log, not for whoever asks.
    assert!(!String::from_utf8_lossy(&resp.body).contains("abc"));
}

#[test]
fn create_raw_and_read_back() {
    let app = App::new();
    let created = app.create(
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"hello\nworld\n",
    );
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["url"], format!("/{id}"));
    assert_eq!(created["raw"], format!("/{id}/raw"));
    assert_eq!(created["mime_type"], "text/plain");
    assert_eq!(created["created_at"], app.now);
    assert_eq!(created["expires_at"], app.now + 86_400);
    assert!(created.get("owner").is_none());
    assert!(created.get("burn_after_read").is_none());
    let raw = app.get(&format!("/{id}/raw"));
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, b"hello\nworld\n");
    assert_eq!(header(&raw, "content-type"), Some("text/plain"));
    assert_eq!(header(&raw, "content-disposition"), Some("inline"));
    let meta = json(&app.get(&format!("/{id}")));
    assert_eq!(meta["size"], 12);
    assert_eq!(meta["raw"], format!("/{id}/raw"));
}

#[test]
fn json_bodies() {
    let app = App::new();
    let created = app.create(
        &[("Content-Type", "application/json")],
        br#"{"content":"Hello, World!"}"#,
    );
    let raw = app.get(&format!("/{}/raw", created["id"].as_str().unwrap()));
    assert_eq!(raw.body, b"Hello, World!");
    let bad = app.send(
        Method::Post,
        "/",
        &[("Content-Type", "application/json")],
        b"{nope",
    );
    assert_eq!(bad.status, 400);
    assert_eq!(json(&bad)["error"], "Invalid JSON body");
    for body in [
        &br#"{"text":"x"}"#[..],
        br#"{"content":42}"#,
        br#"{"content":""}"#,
        b"[]",
    ] {
        let resp = app.send(
            Method::Post,
            "/",
            &[("Content-Type", "application/json; charset=utf-8")],
            body,
        );
        assert_eq!(resp.status, 400);
        assert_eq!(json(&resp)["error"], "No content provided");
    }
}

#[test]
fn empty_body_is_no_content() {
    let app = App::new();
    let resp = app.send(Method::Post, "/", &[], b"");
    assert_eq!(resp.status, 400);
    assert_eq!(json(&resp)["error"], "No content provided");
}

#[test]
fn oversized_bodies_get_the_reference_413() {
    let app = App::with_vars(
        MapVars::default()
            .with("max_anon", "10")
            .with("max_auth", "20"),
    );
    let resp = app.send(Method::Post, "/", &[], &[b'x'; 11]);
    assert_eq!(resp.status, 413);
    let body = json(&resp);
    assert_eq!(body["error"], "Paste too large");
    assert_eq!(body["size"], 11);
    assert_eq!(body["max_size"], 10);
    assert_eq!(body["authenticated"], false);
    // Refused from Content-Length alone.
    let resp = app.send(Method::Post, "/", &[("Content-Length", "1000000")], b"x");
    assert_eq!(json(&resp)["size"], 1_000_000);
    // Authenticated clients get the larger limit.
    app.create(&[("X-SSL-Client-SHA1", FP)], &[b'x'; 15]);
    let resp = app.send(Method::Post, "/", &[("X-SSL-Client-SHA1", FP)], &[b'x'; 21]);
    assert_eq!(json(&resp)["authenticated"], true);
}

#[test]
fn head_requests_have_get_headers_and_no_body() {
    let app = App::new();
    let created = app.create(&[], b"0123456789");
    let id = created["id"].as_str().unwrap();
    let head = app.send(Method::Head, &format!("/{id}/raw"), &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(header(&head, "content-length"), Some("10"));
    assert_eq!(header(&head, "content-type"), Some("text/plain"));
    let get = app.get(&format!("/{id}"));
    let head = app.send(Method::Head, &format!("/{id}"), &[], b"");
    assert!(head.body.is_empty());
    assert_eq!(
        header(&head, "content-length"),
        Some(get.body.len().to_string().as_str())
    );
}

#[test]
fn answers_say_whether_they_answer_a_head() {
    let app = App::new();
    let id = app.create(&[], b"framed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, target) in [
        (Method::Head, format!("/{id}/raw")),
        (Method::Head, format!("/{id}")),
        (Method::Head, "/XYZ".to_owned()),
        (Method::Head, "/".to_owned()),
    ] {
        let answer = app.answer(method, &target, &[], b"");
        assert!(answer.head, "{target}");
        assert!(answer.response.body.is_empty(), "{target}");
        assert!(
            answer.response.headers.contains("content-length"),
            "{target}"
        );
    }
    let get = app.answer(Method::Get, &format!("/{id}/raw"), &[], b"");
    assert!(!get.head);
    assert_eq!(get.response.body, b"framed");
    // A HEAD never burns: the paste is still there for the GET.
    let burn = app.create(&[("X-Burn-After-Read", "true")], b"once");
    let raw = format!("/{}/raw", burn["id"].as_str().unwrap());
    assert_eq!(
        app.answer(Method::Head, &raw, &[], b"").response.status,
        200
    );
    assert_eq!(app.get(&raw).body, b"once");
    assert_eq!(app.get(&raw).status, 404);
}

#[test]
fn routes_without_sql_never_touch_the_database() {
    let app = App::new();
    app.get("/");
    app.get("/openapi.json");
    app.get("/challenge");
    app.send(Method::Options, "/pastes", &[], b"");
    app.get("/nope/nope/nope");
    assert_eq!(app.db.statements_run(), 0);
    // The first route that needs SQL migrates the database before using it.
    assert_eq!(app.get("/0123456789abcdef").status, 404);
    assert!(app.db.statements_run() > 1);
}

#[test]
fn reading_a_paste_costs_one_statement_and_records_access_once_a_minute() {
    use crate::store::paste::ACCESS_GRANULARITY_SECS;
    let mut app = App::new();
    let created = app.create(&[], b"counted");
    let id = created["id"].as_str().unwrap().to_owned();
    let last_accessed = |app: &App| {
        use crate::store::Sql as _;
        app.db
            .execute(
                "SELECT last_accessed FROM pastes WHERE id = ?1",
                vec![id.as_str().into()],
            )
            .expect("query")[0]
            .i64(0)
            .expect("integer")
    };
    let statements = |app: &App, path: &str| {
        let before = app.db.statements_run();
        assert_eq!(app.get(path).status, 200, "{path}");
        app.db.statements_run() - before
    };
    // A hit is one SELECT: the schema check is folded into it, no write.
    for path in [format!("/{id}/raw"), format!("/{id}")] {
        assert_eq!(statements(&app, &path), 1, "{path}");
    }
    assert_eq!(last_accessed(&app), app.now);
    // Once the stored access time is a minute old, a read writes it again.
    app.now += ACCESS_GRANULARITY_SECS;
    assert_eq!(statements(&app, &format!("/{id}/raw")), 2);
    assert_eq!(last_accessed(&app), app.now);
    app.now += 1;
    assert_eq!(statements(&app, &format!("/{id}")), 1);
    assert_eq!(last_accessed(&app), app.now - 1);
    // A miss is one statement too.
    assert_eq!(app.get("/0123456789abcdef").status, 404);
}

#[test]
fn bad_ids_are_400_and_unknown_ids_404() {
    let app = App::new();
    for bad in [
        "/XYZ",
        "/ABCDEF0123456789",
        "/abc",
        "/%2e%2e",
        "/0123456789abcdeg/raw",
    ] {
        let resp = app.get(bad);
        assert_eq!(resp.status, 400, "{bad}");
        assert_eq!(json(&resp)["error"], "Invalid paste ID format");
    }
    let resp = app.get("/0123456789abcdef/raw");
    assert_eq!(resp.status, 404);
    assert_eq!(json(&resp)["error"], "Paste not found");
}

#[test]
fn display_names_only_for_authenticated_clients() {
    let app = App::new();
    let anon = app.create(&[("X-Display-Name", "ignored")], b"x1");
    assert!(anon.get("display_name").is_none());
    let named = app.create(
        &[
            ("X-SSL-Client-SHA1", FP),
            ("X-Display-Name", "project notes"),
        ],
        b"x2",
    );
    assert_eq!(named["display_name"], "project notes");
    assert_eq!(named["owner"], FP);
    let resp = app.send(
        Method::Post,
        "/",
        &[
            ("X-SSL-Client-SHA1", FP),
            ("X-Display-Name", &"n".repeat(129)),
        ],
        b"x3",
    );
    assert_eq!(
        json(&resp)["error"],
        "Display name too long (max 128 chars)"
    );
}

#[test]
fn proxy_secret_makes_unproven_fingerprints_anonymous() {
    let app = App::with_vars(MapVars::default().with("proxy_secret", "s3cret"));
    let without = app.create(&[("X-SSL-Client-SHA1", FP)], b"a");
    assert!(without.get("owner").is_none());
    let with = app.create(
        &[("X-SSL-Client-SHA1", FP), ("X-Proxy-Secret", "s3cret")],
        b"b",
    );
    assert_eq!(with["owner"], FP);
}

#[test]
fn misconfiguration_is_a_json_500_naming_the_variable() {
    let app = App::with_vars(MapVars::default().with("max_anon", "huge"));
    let resp = app.send(Method::Post, "/", &[], b"x");
    assert_eq!(resp.status, 500);
    let body = json(&resp);
    assert_eq!(body["error"], "Server configuration error");
    assert_eq!(body["variable"], "max_anon");
    assert!(app.log.0.borrow().iter().any(|l| l.contains("max_anon")));
}

#[test]
fn listing_shows_iso_dates_and_truncated_owner() {
    let app = App::new();
    app.create(&[("X-SSL-Client-SHA1", FP)], b"mine");
    app.create(&[], b"not mine");
    let resp = app.send(Method::Get, "/pastes", &[("X-SSL-Client-SHA1", FP)], b"");
    assert_eq!(resp.status, 200);
    let body = json(&resp);
    assert_eq!(body["total"], 1);
    assert_eq!(body["limit"], 100);
    assert_eq!(body["offset"], 0);
    let p = &body["pastes"][0];
    assert_eq!(p["created_at"], "2023-11-14T22:13:20Z");
    assert_eq!(p["owner"], "a1b2c3d4...");
    assert_eq!(p["password_protected"], false);
    let resp = app.send(
        Method::Get,
        "/pastes?limit=abc",
        &[("X-SSL-Client-SHA1", FP)],
        b"",
    );
    assert_eq!(resp.status, 400);
    assert_eq!(app.get("/pastes").status, 401);
}

/// Spin passes a client's own `spin-client-addr` on and appends the one it
/// saw on the socket after it: the rate limit counts the last.
#[test]
fn a_client_sent_spin_client_addr_does_not_choose_the_rate_limit_bucket() {
    let app = App::with_vars(MapVars::default().with("rate_max", "1"));
    let from = |spoofed: &str| {
        app.send(
            Method::Post,
            "/",
            &[
                ("spin-client-addr", spoofed),
                ("spin-client-addr", "198.51.100.7:40000"),
            ],
            b"x",
        )
        .status
    };
    assert_eq!(from("192.0.2.1:1"), 201);
    assert_eq!(from("192.0.2.2:1"), 429);
}

/// The native host reads the tenant's CA with the contract's statement to
/// verify client certificates (`--client-ca pki`): it must find exactly the
/// certificate `GET /pki/ca.crt` serves, and nothing before one exists.
#[test]
fn the_hosts_ca_statement_reads_the_ca_this_component_stores() {
    use crate::store::Sql as _;
    use wasmpaste_contract::identity::PKI_CA_CERTIFICATE_SQL;
    let app = App::with_vars(
        MapVars::default()
            .with("pki_enabled", "true")
            .with("pki_ca_password", "secret"),
    );
    assert_eq!(app.get("/pki").status, 200);
    let none = app
        .db
        .execute(PKI_CA_CERTIFICATE_SQL, vec![])
        .expect("query");
    assert!(none.is_empty());
    assert_eq!(app.send(Method::Post, "/pki/ca", &[], b"").status, 201);
    let served = app.get("/pki/ca.crt").body;
    let rows = app
        .db
        .execute(PKI_CA_CERTIFICATE_SQL, vec![])
        .expect("query");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].text(0).expect("text").as_bytes(), served.as_slice());
}

/// A database that is away: each statement fails as a lost connection.
#[derive(Default)]
struct Unavailable {
    statements: std::cell::Cell<u32>,
}

impl crate::store::Sql for Unavailable {
    fn run(
        &self,
        _sql: &str,
        params: Vec<crate::store::Value>,
    ) -> (
        Result<Vec<crate::store::Row>, crate::store::StoreError>,
        Vec<crate::store::Value>,
    ) {
        self.statements.set(self.statements.get() + 1);
        (Err(crate::store::StoreError::InvalidConnection), params)
    }
}

/// A read against a database that is away answers 503 after one statement:
/// only a missing schema makes the read prepare the database and try again
/// (on a libSQL server each attempt is a round trip, up to its timeout).
#[test]
fn a_read_of_an_unavailable_database_tries_once() {
    let app = App::over(Unavailable::default(), MapVars::default());
    for path in ["/0123456789abcdef", "/0123456789abcdef/raw"] {
        let before = app.db.statements.get();
        assert_eq!(app.get(path).status, 503, "{path}");
        assert_eq!(app.db.statements.get() - before, 1, "{path}");
    }
}
