//! The paste API end to end: the real host binary with the real component,
//! over loopback, one server (and database) per test. Also runs on Spin
//! (`api_on_spin`).

mod common;

use common::{ALICE, BOB, PARALLEL, Server, error, json, parallel, solved_challenge};
use serde_json::Value;

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

#[test]
fn index_and_health() {
    let s = Server::start();
    let body = json(s.get("/").send().unwrap(), 200);
    assert_eq!(body["name"], "wasmpaste");
    assert_eq!(
        body["usage"]["raw"],
        format!("curl --data-binary @file.txt http://{}/", s.addr)
    );
    assert_eq!(body["endpoints"]["POST /"], "Create paste");
    let health = json(s.get("/health").send().unwrap(), 200);
    assert_eq!(
        health,
        serde_json::json!({"status": "healthy", "database": "ok"})
    );
}

#[test]
fn answers_on_both_sides_of_the_one_call_write_limit_arrive_whole() {
    // The component writes a body of at most 4096 bytes with one
    // blocking-write-and-flush (wasi:io's limit for it) and a longer one in
    // a check-write/write loop: both paths, at the edge and well past it.
    let s = Server::start();
    for len in [1usize, 4095, 4096, 4097, 64 * 1024 + 3] {
        let body: Vec<u8> = (0..len)
            .map(|i| u8::try_from(i % 251).unwrap_or(0))
            .collect();
        let id = id_of(&s.create(body.clone()));
        let raw = s.get(&format!("/{id}/raw")).send().unwrap();
        assert_eq!(raw.status(), 200, "{len} bytes");
        assert_eq!(
            raw.headers()["content-length"],
            len.to_string().as_str(),
            "{len} bytes"
        );
        assert_eq!(
            raw.bytes().unwrap().as_ref(),
            body.as_slice(),
            "{len} bytes"
        );
    }
}

#[test]
fn text_binary_and_json_pastes_round_trip_byte_for_byte() {
    let s = Server::start();
    let text = s.create("line one\nline two\n\n");
    assert_eq!(text["mime_type"], "text/plain");
    let id = id_of(&text);
    assert_eq!(id.len(), 16);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(text["url"], format!("/{id}"));
    assert_eq!(text["raw"], format!("/{id}/raw"));
    let raw = s.get(&format!("/{id}/raw")).send().unwrap();
    assert_eq!(raw.headers()["content-type"], "text/plain");
    assert_eq!(raw.headers()["content-disposition"], "inline");
    assert_eq!(raw.bytes().unwrap(), "line one\nline two\n\n".as_bytes());

    let every_byte: Vec<u8> = (0..=255u8).cycle().take(256 * 1024).collect();
    let bin = s.create(every_byte.clone());
    assert_eq!(bin["mime_type"], "application/octet-stream");
    let raw = s.get(&format!("/{}/raw", id_of(&bin))).send().unwrap();
    assert_eq!(raw.headers()["content-type"], "application/octet-stream");
    assert!(raw.headers().get("content-disposition").is_none());
    assert_eq!(raw.bytes().unwrap().as_ref(), every_byte.as_slice());

    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(&[7u8; 100]);
    let img = s.create_with(
        s.post("/")
            .header("Content-Type", "text/plain")
            .body(png.clone()),
    );
    assert_eq!(img["mime_type"], "image/png");
    let raw = s.get(&format!("/{}/raw", id_of(&img))).send().unwrap();
    assert_eq!(raw.headers()["content-type"], "image/png");
    assert_eq!(raw.headers()["content-disposition"], "inline");
    assert_eq!(raw.bytes().unwrap().as_ref(), png.as_slice());

    let declared = s.create_with(
        s.post("/")
            .header("Content-Type", "text/x-python")
            .body("print('hi')"),
    );
    assert_eq!(declared["mime_type"], "text/x-python");

    let from_json = s.create_with(
        s.post("/")
            .header("Content-Type", "application/json")
            .body(r#"{"content": "Hello, World!\n"}"#),
    );
    let raw = s
        .get(&format!("/{}/raw", id_of(&from_json)))
        .send()
        .unwrap();
    assert_eq!(raw.text().unwrap(), "Hello, World!\n");
}

#[test]
fn bad_create_requests() {
    let s = Server::with_env(&[
        ("WASMPASTE_MAX_ANON", "1000"),
        ("WASMPASTE_MAX_AUTH", "2000"),
    ]);
    assert_eq!(
        error(s.post("/").send().unwrap(), 400),
        "No content provided"
    );
    let bad_json = s
        .post("/")
        .header("Content-Type", "application/json")
        .body("{\"content\": ")
        .send()
        .unwrap();
    assert_eq!(error(bad_json, 400), "Invalid JSON body");
    let no_content = s
        .post("/")
        .header("Content-Type", "application/json")
        .body(r#"{"text": "x"}"#)
        .send()
        .unwrap();
    assert_eq!(error(no_content, 400), "No content provided");

    let too_big = json(s.post("/").body(vec![b'x'; 1001]).send().unwrap(), 413);
    assert_eq!(
        too_big,
        serde_json::json!({"error": "Paste too large", "size": 1001, "max_size": 1000, "authenticated": false})
    );
    let auth_ok = s
        .post("/")
        .header("X-SSL-Client-SHA1", ALICE)
        .body(vec![b'x'; 1500]);
    s.create_with(auth_ok);
    let auth_big = s
        .post("/")
        .header("X-SSL-Client-SHA1", ALICE)
        .body(vec![b'x'; 2001])
        .send()
        .unwrap();
    assert_eq!(json(auth_big, 413)["authenticated"], true);

    let long_password = s
        .post("/")
        .header("X-Paste-Password", "p".repeat(1025))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(
        error(long_password, 400),
        "Password too long (max 1024 chars)"
    );
}

#[test]
fn oversized_bodies_are_refused_without_reading_them() {
    let s = Server::with_env(&[("WASMPASTE_MAX_ANON", "1024")]);
    // A body announced at 10 MB is refused from its Content-Length alone.
    let resp = s.raw_exchange(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\nxx",
    );
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("\"max_size\":1024"), "{resp}");
    // A chunked body with no length is cut off once it passes the limit.
    let chunk = format!("{:x}\r\n{}\r\n", 4096, "y".repeat(4096));
    let mut req =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    req.extend_from_slice(chunk.as_bytes());
    req.extend_from_slice(b"0\r\n\r\n");
    let resp = s.raw_exchange(&req);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    // The server keeps serving.
    assert_eq!(s.get("/health").send().unwrap().status(), 200);
}

#[test]
fn metadata_head_and_errors() {
    let s = Server::start();
    let created = s.create("0123456789");
    let id = id_of(&created);
    let meta = json(s.get(&format!("/{id}")).send().unwrap(), 200);
    assert_eq!(meta["id"], id.as_str());
    assert_eq!(meta["size"], 10);
    assert_eq!(meta["mime_type"], "text/plain");
    assert_eq!(meta["created_at"], created["created_at"]);
    assert_eq!(meta["expires_at"], created["expires_at"]);
    assert_eq!(meta["raw"], format!("/{id}/raw"));
    assert!(meta.get("password_protected").is_none());

    let head = s.head(&format!("/{id}/raw")).send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "10");
    assert_eq!(head.headers()["content-type"], "text/plain");
    assert!(head.bytes().unwrap().is_empty());
    let head = s.head(&format!("/{id}")).send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "application/json");

    for bad in [
        "/ZZZZZZZZ",
        "/0123456789ABCDEF",
        "/abc",
        "/0123456789abcdeg/raw",
    ] {
        let resp = s.get(bad).send().unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    assert_eq!(
        error(s.get("/ZZZZZZZZ/raw").send().unwrap(), 400),
        "Invalid paste ID format"
    );
    assert_eq!(
        error(s.get("/0123456789abcdef").send().unwrap(), 404),
        "Paste not found"
    );
    assert_eq!(
        error(s.get("/0123456789abcdef/raw").send().unwrap(), 404),
        "Paste not found"
    );
    assert_eq!(
        s.head("/0123456789abcdef/raw").send().unwrap().status(),
        404
    );
    assert_eq!(error(s.get("/a/b/c").send().unwrap(), 404), "Not found");
    let patch = s.client.patch(s.url(&format!("/{id}"))).send().unwrap();
    assert_eq!(patch.headers()["allow"], "GET, HEAD, PUT, DELETE, OPTIONS");
    assert_eq!(error(patch, 405), "Method not allowed");
}

#[test]
fn every_response_has_security_headers_and_a_request_id() {
    let s = Server::start();
    let id = id_of(&s.create("x"));
    let responses = [
        s.get("/").send().unwrap(),
        s.get(&format!("/{id}/raw")).send().unwrap(),
        s.get("/nope/nope/nope").send().unwrap(),
        s.post("/").send().unwrap(),
        s.delete(&format!("/{id}")).send().unwrap(),
    ];
    for resp in &responses {
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(
            h["permissions-policy"],
            "geolocation=(), microphone=(), camera=()"
        );
        assert_eq!(
            h["strict-transport-security"],
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(
            h["cache-control"],
            "no-store, no-cache, must-revalidate, private"
        );
        assert_eq!(h["pragma"], "no-cache");
        assert_eq!(h["x-request-id"].len(), 36);
    }
    let traced = s
        .get("/health")
        .header("X-Request-ID", "my-trace-123")
        .send()
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "my-trace-123");
}

#[test]
fn burn_after_read_serves_exactly_once() {
    let s = Server::start();
    let created = s.create_with(
        s.post("/")
            .header("X-Burn-After-Read", "yes")
            .body("secret"),
    );
    assert_eq!(created["burn_after_read"], true);
    let id = id_of(&created);
    // Metadata and HEAD never burn.
    assert_eq!(
        json(s.get(&format!("/{id}")).send().unwrap(), 200)["burn_after_read"],
        true
    );
    assert_eq!(s.head(&format!("/{id}/raw")).send().unwrap().status(), 200);
    let first = s.get(&format!("/{id}/raw")).send().unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-burn-after-read"], "true");
    assert_eq!(first.text().unwrap(), "secret");
    assert_eq!(
        error(s.get(&format!("/{id}/raw")).send().unwrap(), 404),
        "Paste not found"
    );
    assert_eq!(s.get(&format!("/{id}")).send().unwrap().status(), 404);

    let not_burn = s.create_with(s.post("/").header("X-Burn-After-Read", "no").body("keep"));
    assert!(not_burn.get("burn_after_read").is_none());
}

#[test]
fn concurrent_burn_after_read_has_exactly_one_winner() {
    let s = Server::start();
    for round in 0..3 {
        let id = id_of(
            &s.create_with(
                s.post("/")
                    .header("X-Burn-After-Read", "true")
                    .body(format!("round {round}")),
            ),
        );
        let statuses: Vec<(u16, String)> = parallel(PARALLEL, |_| {
            let r = s.get(&format!("/{id}/raw")).send().unwrap();
            (r.status().as_u16(), r.text().unwrap())
        });
        let winners: Vec<_> = statuses.iter().filter(|(st, _)| *st == 200).collect();
        assert_eq!(winners.len(), 1, "{statuses:?}");
        assert_eq!(winners[0].1, format!("round {round}"));
        assert!(statuses.iter().all(|(st, _)| *st == 200 || *st == 404));
    }
}

#[test]
fn password_protection() {
    let s = Server::start();
    let created = s.create_with(
        s.post("/")
            .header("X-Paste-Password", "correct horse ✓")
            .body("protected"),
    );
    assert_eq!(created["password_protected"], true);
    let id = id_of(&created);
    for path in [format!("/{id}"), format!("/{id}/raw")] {
        let missing = json(s.get(&path).send().unwrap(), 401);
        assert_eq!(
            missing,
            serde_json::json!({"error": "Password required", "password_protected": true})
        );
        let wrong = s
            .get(&path)
            .header("X-Paste-Password", "nope")
            .send()
            .unwrap();
        assert_eq!(error(wrong, 403), "Invalid password");
    }
    let ok = s
        .get(&format!("/{id}/raw"))
        .header("X-Paste-Password", "correct horse ✓")
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().unwrap(), "protected");
    let meta = s
        .get(&format!("/{id}"))
        .header("X-Paste-Password", "correct horse ✓")
        .send()
        .unwrap();
    assert_eq!(json(meta, 200)["password_protected"], true);

    // Password and burn together: the wrong password never burns it.
    let both = id_of(
        &s.create_with(
            s.post("/")
                .header("X-Paste-Password", "pw")
                .header("X-Burn-After-Read", "1")
                .body("once"),
        ),
    );
    let wrong = s
        .get(&format!("/{both}/raw"))
        .header("X-Paste-Password", "x")
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let right = s
        .get(&format!("/{both}/raw"))
        .header("X-Paste-Password", "pw")
        .send()
        .unwrap();
    assert_eq!(right.text().unwrap(), "once");
    let again = s
        .get(&format!("/{both}/raw"))
        .header("X-Paste-Password", "pw")
        .send()
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[test]
fn expiry_by_trust_level_and_custom_expiry() {
    let s = Server::with_env(&[("WASMPASTE_MAX_EXPIRY", "7200")]);
    let anon = s.create("a");
    assert_eq!(
        anon["expires_at"].as_i64().unwrap() - anon["created_at"].as_i64().unwrap(),
        86_400
    );
    let cert = s.create_with(s.post("/").header("X-SSL-Client-SHA1", ALICE).body("b"));
    assert_eq!(
        cert["expires_at"].as_i64().unwrap() - cert["created_at"].as_i64().unwrap(),
        604_800
    );
    for (requested, expected) in [
        ("3600", 3600),
        ("999999", 7200),
        ("-5", 86_400),
        ("soon", 86_400),
    ] {
        let p = s.create_with(s.post("/").header("X-Expiry", requested).body(requested));
        assert_eq!(
            p["expires_at"].as_i64().unwrap() - p["created_at"].as_i64().unwrap(),
            expected,
            "X-Expiry: {requested}"
        );
    }
    let short = id_of(&s.create_with(s.post("/").header("X-Expiry", "1").body("brief")));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(
        s.get(&format!("/{short}/raw")).send().unwrap().status(),
        404
    );
    assert_eq!(s.get(&format!("/{short}")).send().unwrap().status(), 404);
}

#[test]
fn display_names() {
    let s = Server::start();
    let named = s.create_with(
        s.post("/")
            .header("X-SSL-Client-SHA1", ALICE)
            .header("X-Display-Name", "project notes")
            .body("x"),
    );
    assert_eq!(named["display_name"], "project notes");
    assert_eq!(named["owner"], ALICE);
    let meta = json(s.get(&format!("/{}", id_of(&named))).send().unwrap(), 200);
    assert_eq!(meta["display_name"], "project notes");
    let anon = s.create_with(s.post("/").header("X-Display-Name", "ignored").body("y"));
    assert!(anon.get("display_name").is_none());
    assert!(anon.get("owner").is_none());
    let long = s
        .post("/")
        .header("X-SSL-Client-SHA1", ALICE)
        .header("X-Display-Name", "n".repeat(129))
        .body("z")
        .send()
        .unwrap();
    assert_eq!(error(long, 400), "Display name too long (max 128 chars)");
    let tab = s
        .post("/")
        .header("X-SSL-Client-SHA1", ALICE)
        .header("X-Display-Name", "a\tb")
        .body("z")
        .send()
        .unwrap();
    assert_eq!(error(tab, 400), "Display name contains invalid characters");
}

#[test]
fn malformed_fingerprints_are_anonymous() {
    let s = Server::start();
    for fp in [
        &ALICE.to_uppercase()[..],
        &ALICE[..39],
        "not-a-fingerprint",
        "",
    ] {
        let p = s.create_with(
            s.post("/")
                .header("X-SSL-Client-SHA1", fp)
                .body(format!("x{fp}")),
        );
        assert!(p.get("owner").is_none(), "{fp}");
    }
}

#[test]
fn update_rules() {
    let s = Server::start();
    let id = id_of(&s.create_with(s.post("/").header("X-SSL-Client-SHA1", ALICE).body("v1")));
    let path = format!("/{id}");
    assert_eq!(
        error(s.put(&path).body("v2").send().unwrap(), 401),
        "Authentication required"
    );
    assert_eq!(
        error(
            s.put(&path)
                .header("X-SSL-Client-SHA1", BOB)
                .body("v2")
                .send()
                .unwrap(),
            403
        ),
        "Permission denied"
    );
    assert_eq!(
        error(
            s.put("/0123456789abcdef")
                .header("X-SSL-Client-SHA1", ALICE)
                .body("v2")
                .send()
                .unwrap(),
            404
        ),
        "Paste not found"
    );
    assert_eq!(
        error(
            s.put("/XYZ")
                .header("X-SSL-Client-SHA1", ALICE)
                .body("v2")
                .send()
                .unwrap(),
            400
        ),
        "Invalid paste ID format"
    );
    assert_eq!(
        error(
            s.put(&path)
                .header("X-SSL-Client-SHA1", ALICE)
                .send()
                .unwrap(),
            400
        ),
        "No updates provided"
    );

    let updated = json(
        s.put(&path)
            .header("X-SSL-Client-SHA1", ALICE)
            .header("Content-Type", "text/markdown")
            .body("# new content")
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["size"], 13);
    assert_eq!(updated["mime_type"], "text/markdown");
    assert_eq!(
        s.get(&format!("/{id}/raw")).send().unwrap().text().unwrap(),
        "# new content"
    );

    let before = updated["expires_at"].as_i64().unwrap();
    let extended = json(
        s.put(&path)
            .header("X-SSL-Client-SHA1", ALICE)
            .header("X-Extend-Expiry", "3600")
            .header("X-Display-Name", "renamed")
            .header("X-Paste-Password", "pw")
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(extended["expires_at"].as_i64().unwrap(), before + 3600);
    assert_eq!(extended["display_name"], "renamed");
    assert_eq!(extended["password_protected"], true);
    assert_eq!(s.get(&format!("/{id}/raw")).send().unwrap().status(), 401);

    let cleared = json(
        s.put(&path)
            .header("X-SSL-Client-SHA1", ALICE)
            .header("X-Remove-Password", "true")
            .header("X-Remove-Display-Name", "true")
            .send()
            .unwrap(),
        200,
    );
    assert!(cleared.get("password_protected").is_none());
    assert!(cleared.get("display_name").is_none());
    assert_eq!(s.get(&format!("/{id}/raw")).send().unwrap().status(), 200);

    let bad_ext = s
        .put(&path)
        .header("X-SSL-Client-SHA1", ALICE)
        .header("X-Extend-Expiry", "forever")
        .send()
        .unwrap();
    assert_eq!(bad_ext.status(), 400);

    let burn = id_of(
        &s.create_with(
            s.post("/")
                .header("X-SSL-Client-SHA1", ALICE)
                .header("X-Burn-After-Read", "true")
                .body("b"),
        ),
    );
    let resp = s
        .put(&format!("/{burn}"))
        .header("X-SSL-Client-SHA1", ALICE)
        .body("c")
        .send()
        .unwrap();
    assert_eq!(error(resp, 400), "Cannot update burn-after-read paste");
}

#[test]
fn delete_rules() {
    let s = Server::start();
    let id = id_of(&s.create_with(s.post("/").header("X-SSL-Client-SHA1", ALICE).body("mine")));
    let path = format!("/{id}");
    assert_eq!(
        error(s.delete(&path).send().unwrap(), 401),
        "Authentication required"
    );
    assert_eq!(
        error(
            s.delete(&path)
                .header("X-SSL-Client-SHA1", BOB)
                .send()
                .unwrap(),
            403
        ),
        "Permission denied"
    );
    assert_eq!(
        error(
            s.delete("/xyz")
                .header("X-SSL-Client-SHA1", ALICE)
                .send()
                .unwrap(),
            400
        ),
        "Invalid paste ID format"
    );
    let ok = json(
        s.delete(&path)
            .header("X-SSL-Client-SHA1", ALICE)
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(ok, serde_json::json!({"message": "Paste deleted"}));
    assert_eq!(
        error(
            s.delete(&path)
                .header("X-SSL-Client-SHA1", ALICE)
                .send()
                .unwrap(),
            404
        ),
        "Paste not found"
    );
    assert_eq!(s.get(&format!("/{id}/raw")).send().unwrap().status(), 404);
    // Anonymous pastes have no owner: nobody but an admin may delete them.
    let anon = id_of(&s.create("anon"));
    assert_eq!(
        s.delete(&format!("/{anon}"))
            .header("X-SSL-Client-SHA1", ALICE)
            .send()
            .unwrap()
            .status(),
        403
    );
}

#[test]
fn listing() {
    let s = Server::start();
    let auth = |r: reqwest::blocking::RequestBuilder| r.header("X-SSL-Client-SHA1", ALICE);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0u8; 64]);
    s.create_with(auth(s.post("/")).body(png));
    for i in 0..3 {
        s.create_with(
            auth(s.post("/"))
                .header("X-Display-Name", format!("n{i}"))
                .body(format!("text {i}")),
        );
    }
    s.create_with(s.post("/").header("X-SSL-Client-SHA1", BOB).body("bob's"));
    assert_eq!(
        error(s.get("/pastes").send().unwrap(), 401),
        "Authentication required"
    );

    let all = json(auth(s.get("/pastes")).send().unwrap(), 200);
    assert_eq!(all["total"], 4);
    assert_eq!(all["limit"], 100);
    assert_eq!(all["offset"], 0);
    let first = &all["pastes"][0];
    assert_eq!(first["owner"], "a1b2c3d4...");
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(first["expires_at"].as_str().unwrap().contains('T'));
    for key in [
        "id",
        "size",
        "mime_type",
        "burn_after_read",
        "password_protected",
        "display_name",
    ] {
        assert!(first.get(key).is_some(), "{key}");
    }

    let images = json(auth(s.get("/pastes?type=image/*")).send().unwrap(), 200);
    assert_eq!(images["total"], 1);
    assert_eq!(images["pastes"][0]["mime_type"], "image/png");
    let page = json(auth(s.get("/pastes?limit=2&offset=1")).send().unwrap(), 200);
    assert_eq!(page["pastes"].as_array().unwrap().len(), 2);
    assert_eq!(
        (page["limit"].as_i64(), page["offset"].as_i64()),
        (Some(2), Some(1))
    );
    let clamped = json(auth(s.get("/pastes?limit=5000")).send().unwrap(), 200);
    assert_eq!(clamped["limit"], 1000);
    let future = json(auth(s.get("/pastes?after=4102444800")).send().unwrap(), 200);
    assert_eq!(future["total"], 0);
    let past = json(
        auth(s.get("/pastes?before=4102444800")).send().unwrap(),
        200,
    );
    assert_eq!(past["total"], 4);
    assert_eq!(
        auth(s.get("/pastes?limit=ten")).send().unwrap().status(),
        400
    );
    assert_eq!(
        error(auth(s.get("/pastes?all=1")).send().unwrap(), 403),
        "Admin access required"
    );
}

#[test]
fn proxy_secret_gates_identity() {
    let s = Server::with_env(&[("WASMPASTE_PROXY_SECRET", "s3cret")]);
    let spoofed = s.create_with(s.post("/").header("X-SSL-Client-SHA1", ALICE).body("1"));
    assert!(spoofed.get("owner").is_none());
    let proxied = s.create_with(
        s.post("/")
            .header("X-SSL-Client-SHA1", ALICE)
            .header("X-Proxy-Secret", "s3cret")
            .body("2"),
    );
    assert_eq!(proxied["owner"], ALICE);
    // The secret never appears in the logs.
    assert!(s.logs().iter().all(|l| !l.contains("s3cret")));
}

#[test]
fn url_prefix_is_part_of_every_url() {
    let s = Server::with_env(&[("WASMPASTE_URL_PREFIX", "/paste")]);
    let created = s.create("x");
    let id = id_of(&created);
    assert_eq!(created["url"], format!("/paste/{id}"));
    assert_eq!(created["raw"], format!("/paste/{id}/raw"));
    let meta = json(s.get(&format!("/{id}")).send().unwrap(), 200);
    assert_eq!(meta["raw"], format!("/paste/{id}/raw"));
}

#[test]
fn pastes_survive_a_restart() {
    let s = Server::start();
    let id = id_of(&s.create("durable"));
    let dir = s.kill();
    let s = Server::start_in(dir, &[]);
    assert_eq!(
        s.get(&format!("/{id}/raw")).send().unwrap().text().unwrap(),
        "durable"
    );
}

#[test]
fn the_openapi_document_is_served() {
    let s = Server::start();
    let r = s.get("/openapi.json").send().unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc = json(r, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/",
        "/{id}/raw",
        "/s/{id}",
        "/register",
        "/pki/revoke/{serial}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let index = json(s.get("/").send().unwrap(), 200);
    assert!(index["endpoints"].get("GET /openapi.json").is_some());
}

/// Spin has no scheduler (nothing calls the `maintenance` export): the
/// guest cleans up during requests, at most once per `cleanup_interval`,
/// and that is what removes expired pastes, short URLs and used nonces
/// there. (The native host's scheduler runs at start and then hourly, so
/// within this test only requests clean up on either host.)
#[test]
fn expired_rows_disappear_through_normal_traffic() {
    let s = Server::with_env(&[
        ("WASMPASTE_CLEANUP_INTERVAL", "1"),
        ("WASMPASTE_POW_DIFFICULTY", "4"),
        // Long enough to solve and submit on a loaded machine.
        ("WASMPASTE_POW_TTL", "3"),
    ]);
    let count = |table: &str| -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        if let Some(url) = s.sqld_url() {
            return common::sqld::query_i64(url, &sql);
        }
        let db = rusqlite::Connection::open(s.db_path()).expect("open the database");
        db.query_row(&sql, [], |r| r.get(0)).expect("count")
    };
    let (token, solution) = solved_challenge(&s, "/challenge");
    let paste = s
        .post("/")
        .header("X-Expiry", "1")
        .header("X-PoW-Token", token)
        .header("X-PoW-Solution", solution)
        .body("brief")
        .send()
        .unwrap();
    json(paste, 201);
    assert_eq!(count("pastes"), 1);
    assert_eq!(
        count("pow_nonces"),
        1,
        "the used nonce is kept until it expires"
    );
    let (token, solution) = solved_challenge(&s, "/challenge");
    let url = s
        .post("/s")
        .header("X-Expiry", "1")
        .header("X-PoW-Token", token)
        .header("X-PoW-Solution", solution)
        .body("https://example.com/")
        .send()
        .unwrap();
    json(url, 201);
    assert_eq!(count("short_urls"), 1);

    // Past the pastes' expiry (1 s) and the nonces' (3 s).
    std::thread::sleep(std::time::Duration::from_millis(4100));
    assert_eq!(s.get("/health").send().unwrap().status(), 200);
    for table in ["pastes", "short_urls", "pow_nonces"] {
        assert_eq!(count(table), 0, "{table} after the cleanup");
    }
}
