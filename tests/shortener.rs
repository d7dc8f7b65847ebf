//! The URL shortener under /s, end to end against the real binary: every
//! status code of the reference, strict URL validation (schemes, hosts,
//! userinfo, control characters, length), exact access counting under
//! concurrency, expiry, and the abuse controls on `POST /s`. Also runs on
//! Spin (`api_on_spin`).

mod common;

use std::time::Duration;

use common::{ALICE, BOB, PARALLEL, Server, error, json, parallel, solved_challenge};
use reqwest::blocking::Response;
use serde_json::Value;

fn shorten(s: &Server, url: &str) -> Response {
    s.post("/s")
        .header("Content-Type", "application/json")
        .body(serde_json::json!({ "url": url }).to_string())
        .send()
        .expect("POST /s")
}

fn shorten_as(s: &Server, who: &str, url: &str) -> Value {
    json(
        s.post("/s")
            .header("X-SSL-Client-SHA1", who)
            .body(url.to_owned())
            .send()
            .expect("POST /s"),
        201,
    )
}

fn id_of(created: &Value) -> String {
    created["id"].as_str().expect("id").to_owned()
}

#[test]
fn create_redirect_and_info() {
    let s = Server::start();
    let created = json(
        shorten(&s, "https://example.com/some/long/path?query=value"),
        201,
    );
    let id = id_of(&created);
    assert_eq!(id.len(), 8);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    assert_eq!(created["url"], format!("/s/{id}"));
    assert_eq!(
        created["target_url"],
        "https://example.com/some/long/path?query=value"
    );
    assert!(created.get("owner").is_none(), "anonymous: {created}");
    let lifetime =
        created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap();
    assert_eq!(lifetime, 86_400, "the anonymous default expiry");

    let info = json(s.get(&format!("/s/{id}/info")).send().unwrap(), 200);
    assert_eq!(info["access_count"], 0);
    assert_eq!(info["last_accessed"], Value::Null);
    assert_eq!(info["owner"], Value::Null);

    let r = s.get(&format!("/s/{id}")).send().unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "https://example.com/some/long/path?query=value"
    );
    let cache = r.headers()["cache-control"].to_str().unwrap();
    assert!(cache.contains("no-store"), "{cache}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    // HEAD redirects and counts too; /info never counts.
    let r = s.head(&format!("/s/{id}")).send().unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "https://example.com/some/long/path?query=value"
    );
    let info = json(s.get(&format!("/s/{id}/info")).send().unwrap(), 200);
    assert_eq!(info["access_count"], 2);
    assert!(info["last_accessed"].as_i64().unwrap() >= created["created_at"].as_i64().unwrap());
    assert_eq!(info["url"], format!("/s/{id}"));
    let r = s.head(&format!("/s/{id}/info")).send().unwrap();
    assert_eq!(r.status(), 200);
    let info = json(s.get(&format!("/s/{id}/info")).send().unwrap(), 200);
    assert_eq!(info["access_count"], 2);
}

#[test]
fn raw_bodies_owners_and_expiry() {
    let s = Server::start();
    // A raw body as `echo URL | curl --data-binary @-` sends it.
    let created = json(
        s.post("/s")
            .header("X-SSL-Client-SHA1", ALICE)
            .header("X-Expiry", "600")
            .body("https://example.org/a\n")
            .send()
            .unwrap(),
        201,
    );
    assert_eq!(created["target_url"], "https://example.org/a");
    assert_eq!(created["owner"], ALICE);
    assert_eq!(
        created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap(),
        600
    );
    let info = json(
        s.get(&format!("/s/{}/info", id_of(&created)))
            .send()
            .unwrap(),
        200,
    );
    // Public route: the owner is shown shortened.
    assert_eq!(info["owner"], format!("{}...", &ALICE[..8]));
}

#[test]
fn dangerous_and_malformed_urls_are_refused() {
    let s = Server::start();
    let scheme = "Invalid URL scheme (only http/https allowed)";
    let host = "Invalid URL: missing host";
    let control = "Invalid URL: control characters are not allowed";
    for (url, message) in [
        ("javascript:alert(document.cookie)", scheme),
        ("data:text/html;base64,PHNjcmlwdD4=", scheme),
        ("file:///etc/passwd", scheme),
        ("ftp://example.com/file", scheme),
        ("example.com/path", scheme),
        ("//example.com/path", scheme),
        ("http://", host),
        ("https:///etc/passwd", host),
        ("http:example.com", host),
        ("https://example.com/\r\nSet-Cookie: session=evil", control),
        ("https://example.com/%0d%0a\u{0}", control),
        ("https://exa\nmple.com/", control),
    ] {
        assert_eq!(error(shorten(&s, url), 400), message, "{url:?}");
    }
    // The same through a raw body.
    let r = s
        .post("/s")
        .body("https://example.com/\r\nLocation: https://evil.com")
        .send()
        .unwrap();
    assert_eq!(error(r, 400), control);

    assert_eq!(error(shorten(&s, ""), 400), "No URL provided");
    assert_eq!(error(s.post("/s").send().unwrap(), 400), "No URL provided");
    let r = s
        .post("/s")
        .header("Content-Type", "application/json")
        .body(r#"{"link": "https://example.com"}"#)
        .send()
        .unwrap();
    assert_eq!(error(r, 400), "No URL provided");
    let r = s
        .post("/s")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(error(r, 400), "Invalid JSON body");
    let r = s.post("/s").body(vec![0xff, 0xfe, 0x00]).send().unwrap();
    assert!(error(r, 400).starts_with("Invalid URL"));
}

#[test]
fn what_the_url_says_is_where_it_goes() {
    let s = Server::start();
    // Userinfo before the @: the host really is evil.com, and the redirect says so.
    let created = json(shorten(&s, "https://good.com@evil.com/login"), 201);
    assert_eq!(created["target_url"], "https://good.com@evil.com/login");
    let r = s.get(&format!("/s/{}", id_of(&created))).send().unwrap();
    assert_eq!(r.headers()["location"], "https://good.com@evil.com/login");

    // Non-ASCII is encoded, so Location is always plain ASCII.
    let created = json(shorten(&s, "https://bücher.example/straße?q=ä ö"), 201);
    let target = "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%A4%20%C3%B6";
    assert_eq!(created["target_url"], target);
    let r = s.get(&format!("/s/{}", id_of(&created))).send().unwrap();
    assert_eq!(r.headers()["location"], target);
}

#[test]
fn long_urls_are_refused_at_the_configured_limit() {
    let s = Server::with_env(&[("WASMPASTE_SHORT_URL_MAX", "100")]);
    let base = "https://example.com/";
    let fits = format!("{base}{}", "a".repeat(100 - base.len()));
    json(shorten(&s, &fits), 201);
    let over = format!("{fits}a");
    assert_eq!(
        error(shorten(&s, &over), 400),
        "URL too long (max 100 bytes)"
    );
    // A body far past the limit is refused without reading it all.
    let huge = format!("{base}{}", "a".repeat(1 << 20));
    let r = s.post("/s").body(huge).send().unwrap();
    assert_eq!(error(r, 400), "URL too long (max 100 bytes)");

    let default = Server::start();
    let over = format!("{base}{}", "a".repeat(2049 - base.len()));
    assert_eq!(
        error(shorten(&default, &over), 400),
        "URL too long (max 2048 bytes)"
    );
}

#[test]
fn invalid_and_unknown_ids() {
    let s = Server::start();
    for bad in [
        "short",
        "toolongid",
        "AbCd-fGh",
        "AbCd%20Gh",
        "abcdefg%C3%A9",
    ] {
        assert_eq!(
            error(s.get(&format!("/s/{bad}")).send().unwrap(), 400),
            "Invalid short URL ID format",
            "{bad}"
        );
        assert_eq!(
            error(s.get(&format!("/s/{bad}/info")).send().unwrap(), 400),
            "Invalid short URL ID format"
        );
        let r = s
            .delete(&format!("/s/{bad}"))
            .header("X-SSL-Client-SHA1", ALICE)
            .send()
            .unwrap();
        assert_eq!(error(r, 400), "Invalid short URL ID format");
    }
    assert_eq!(
        error(s.get("/s/AAAAAAAA").send().unwrap(), 404),
        "Short URL not found"
    );
    assert_eq!(
        error(s.get("/s/AAAAAAAA/info").send().unwrap(), 404),
        "Short URL not found"
    );
    assert_eq!(s.get("/s/AAAAAAAA/raw").send().unwrap().status(), 404);
    let r = s.put("/s/AAAAAAAA").send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD, DELETE, OPTIONS");
    let r = s.request(reqwest::Method::OPTIONS, "/s").send().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["allow"], "GET, HEAD, POST, OPTIONS");
}

#[test]
fn list_and_delete_by_owner() {
    let s = Server::start();
    let a1 = id_of(&shorten_as(&s, ALICE, "https://a.example/1"));
    let a2 = id_of(&shorten_as(&s, ALICE, "https://a.example/2"));
    let b1 = id_of(&shorten_as(&s, BOB, "https://b.example/1"));

    assert_eq!(
        error(s.get("/s").send().unwrap(), 401),
        "Authentication required"
    );
    let list = json(
        s.get("/s")
            .header("X-SSL-Client-SHA1", ALICE)
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(
        (list["count"].as_i64(), list["total"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (list["limit"].as_i64(), list["offset"].as_i64()),
        (Some(50), Some(0))
    );
    let ids: Vec<&str> = list["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&a1.as_str()) && ids.contains(&a2.as_str()),
        "{ids:?}"
    );
    let item = &list["urls"][0];
    for field in ["id", "target_url", "created_at", "access_count", "url"] {
        assert!(item.get(field).is_some(), "{field} missing: {item}");
    }
    let page = json(
        s.get("/s?limit=1&offset=1")
            .header("X-SSL-Client-SHA1", ALICE)
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(
        (page["count"].as_i64(), page["total"].as_i64()),
        (Some(1), Some(2))
    );
    let capped = json(
        s.get("/s?limit=5000")
            .header("X-SSL-Client-SHA1", ALICE)
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(capped["limit"], 200);
    let r = s
        .get("/s?limit=many")
        .header("X-SSL-Client-SHA1", ALICE)
        .send()
        .unwrap();
    assert_eq!(error(r, 400), "Invalid limit: must be an integer");

    let del = |id: &str, who: Option<&str>| {
        let mut req = s.delete(&format!("/s/{id}"));
        if let Some(fp) = who {
            req = req.header("X-SSL-Client-SHA1", fp);
        }
        req.send().unwrap()
    };
    assert_eq!(error(del(&a1, None), 401), "Authentication required");
    assert_eq!(error(del(&a1, Some(BOB)), 403), "Permission denied");
    assert_eq!(
        error(del("ZZZZZZZZ", Some(ALICE)), 404),
        "Short URL not found"
    );
    assert_eq!(
        json(del(&a1, Some(ALICE)), 200)["message"],
        "Short URL deleted"
    );
    assert_eq!(error(del(&a1, Some(ALICE)), 404), "Short URL not found");
    assert_eq!(s.get(&format!("/s/{a1}")).send().unwrap().status(), 404);
    assert_eq!(s.get(&format!("/s/{b1}")).send().unwrap().status(), 302);
}

#[test]
fn concurrent_redirects_are_all_counted() {
    let s = Server::start();
    let id = id_of(&json(shorten(&s, "https://example.com/popular"), 201));
    const HITS: usize = 5;
    parallel(PARALLEL, |_| {
        for _ in 0..HITS {
            let r = s.get(&format!("/s/{id}")).send().unwrap();
            assert_eq!(r.status(), 302);
        }
    });
    let info = json(s.get(&format!("/s/{id}/info")).send().unwrap(), 200);
    assert_eq!(info["access_count"], PARALLEL * HITS);
}

#[test]
fn expired_urls_are_gone_and_cleaned_up() {
    let s = Server::start();
    // Expiry is in whole seconds: 2 s keep the first redirect inside it.
    let r = s
        .post("/s")
        .header("X-Expiry", "2")
        .body("https://example.com/brief")
        .send()
        .unwrap();
    let id = id_of(&json(r, 201));
    assert_eq!(s.get(&format!("/s/{id}")).send().unwrap().status(), 302);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        error(s.get(&format!("/s/{id}")).send().unwrap(), 404),
        "Short URL not found"
    );
    assert_eq!(
        s.get(&format!("/s/{id}/info")).send().unwrap().status(),
        404
    );
    // Removing the row is the cleanup's job: paste_api's
    // expired_rows_disappear_through_normal_traffic.
}

#[test]
fn creation_needs_proof_of_work_and_respects_limits() {
    let s = Server::with_env(&[
        ("WASMPASTE_POW_DIFFICULTY", "8"),
        ("WASMPASTE_DEDUP_MAX", "2"),
        ("WASMPASTE_RATE_MAX", "6"),
    ]);
    let with_pow = |url: &str, pow: Option<(String, String)>| {
        let mut req = s.post("/s").body(url.to_owned());
        if let Some((token, solution)) = pow {
            req = req
                .header("X-PoW-Token", token)
                .header("X-PoW-Solution", solution);
        }
        req.send().unwrap()
    };
    let r = with_pow("https://example.com/", None);
    assert_eq!(json(r, 400)["error"], "Proof-of-work required");

    let solved = solved_challenge(&s, "/challenge");
    let r = with_pow("https://example.com/", Some(solved.clone()));
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-ratelimit-limit"], "6");
    assert_eq!(
        error(with_pow("https://example.com/other", Some(solved)), 400),
        "Proof-of-work failed: Challenge already used"
    );

    // A bad URL is refused before the solution is spent.
    let solved = solved_challenge(&s, "/challenge");
    assert_eq!(
        error(with_pow("ftp://example.com/", Some(solved.clone())), 400),
        "Invalid URL scheme (only http/https allowed)"
    );
    assert_eq!(with_pow("https://example.com/", Some(solved)).status(), 201);

    // Third shortening of the same URL within the window.
    let r = with_pow(
        "https://example.com/",
        Some(solved_challenge(&s, "/challenge")),
    );
    let body = json(r, 429);
    assert_eq!(body["error"], "Duplicate URL rate limit exceeded");
    assert_eq!(body["count"], 2);

    // Every attempt that reached admission counted: this is the sixth, the last allowed.
    let r = with_pow(
        "https://example.com/new",
        Some(solved_challenge(&s, "/challenge")),
    );
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    let r = with_pow(
        "https://example.com/newer",
        Some(solved_challenge(&s, "/challenge")),
    );
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(json(r, 429)["error"], "Rate limit exceeded");
}
