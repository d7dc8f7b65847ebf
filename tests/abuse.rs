//! Abuse controls end to end: proof-of-work with a real solver, replays and
//! forgeries, rate limits and their headers, anti-flood, dedup, content
//! policies, all against the real binary. Windows are configured to a second
//! or two so nothing waits for a minute. Also runs on Spin (`api_on_spin`).

mod common;

use std::time::Duration;

use common::{ALICE, PARALLEL, Server, error, json, parallel, solve, solved_challenge};
use serde_json::Value;

/// Proof-of-work on at a difficulty a test solves in milliseconds; everything else off.
fn pow_server(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("WASMPASTE_POW_DIFFICULTY", "8")];
    env.extend_from_slice(extra);
    Server::with_env(&env)
}

fn post_with_pow(
    s: &Server,
    token: &str,
    solution: &str,
    body: &str,
) -> reqwest::blocking::Response {
    s.post("/")
        .header("X-PoW-Token", token)
        .header("X-PoW-Solution", solution)
        .body(body.to_owned())
        .send()
        .expect("POST /")
}

#[test]
fn challenges_when_disabled_and_enabled() {
    let off = Server::start();
    let c = json(off.get("/challenge").send().unwrap(), 200);
    assert_eq!(c, serde_json::json!({"enabled": false, "difficulty": 0}));

    let s = pow_server(&[]);
    let c = json(s.get("/challenge").send().unwrap(), 200);
    assert_eq!(c["enabled"], true);
    assert_eq!(c["difficulty"], 8);
    assert_eq!(c["base_difficulty"], 8);
    assert_eq!(c["elevated"], false);
    let nonce = c["nonce"].as_str().unwrap();
    assert_eq!(nonce.len(), 32);
    let token = c["token"].as_str().unwrap();
    let parts: Vec<&str> = token.split(':').collect();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0], nonce);
    assert_eq!(parts[1], c["expires"].as_i64().unwrap().to_string());
    assert_eq!(parts[2], "8");
    // Every challenge is new.
    let again = json(s.get("/challenge").send().unwrap(), 200);
    assert_ne!(again["nonce"], c["nonce"]);

    let r = json(s.get("/register/challenge").send().unwrap(), 200);
    assert_eq!(r["enabled"], true);
    assert_eq!(r["difficulty"], 24);
    let r_off = Server::with_env(&[("WASMPASTE_REGISTER_POW", "0")]);
    assert_eq!(
        json(r_off.get("/register/challenge").send().unwrap(), 200),
        serde_json::json!({"enabled": false, "difficulty": 0})
    );
}

#[test]
fn the_default_configuration_requires_proof_of_work() {
    let s = Server::with_defaults_and(&[]);
    let body = json(s.post("/").body("hi").send().unwrap(), 400);
    assert_eq!(
        body,
        serde_json::json!({"error": "Proof-of-work required", "hint": "GET /challenge for a new challenge"})
    );
    let c = json(s.get("/challenge").send().unwrap(), 200);
    assert_eq!(c["difficulty"], 20);
}

#[test]
fn a_solved_challenge_creates_once_and_replays_fail() {
    let s = pow_server(&[]);
    let (token, solution) = solved_challenge(&s, "/challenge");
    let created = json(post_with_pow(&s, &token, &solution, "paid for"), 201);
    let raw = s
        .get(&format!("/{}/raw", created["id"].as_str().unwrap()))
        .send()
        .unwrap();
    assert_eq!(raw.text().unwrap(), "paid for");
    assert_eq!(
        error(post_with_pow(&s, &token, &solution, "again"), 400),
        "Proof-of-work failed: Challenge already used"
    );
}

#[test]
fn forged_expired_wrong_and_garbage_submissions_fail() {
    // Expiry is in whole seconds: 3 s leave at least 2 for the checks below
    // (a dozen requests), however slow the host.
    let s = pow_server(&[("WASMPASTE_POW_TTL", "3")]);
    let c = json(s.get("/challenge").send().unwrap(), 200);
    let (nonce, token) = (c["nonce"].as_str().unwrap(), c["token"].as_str().unwrap());
    let expires = c["expires"].as_i64().unwrap();
    let sig = token.rsplit(':').next().unwrap();
    let easy = solve(nonce, 1).to_string();

    // A lower difficulty or a later expiry breaks the signature.
    let cheaper = format!("{nonce}:{expires}:1:{sig}");
    assert_eq!(
        error(post_with_pow(&s, &cheaper, &easy, "x"), 400),
        "Proof-of-work failed: Invalid challenge signature"
    );
    let later = format!("{nonce}:{}:8:{sig}", expires + 3600);
    assert_eq!(
        error(post_with_pow(&s, &later, &easy, "x"), 400),
        "Proof-of-work failed: Invalid challenge signature"
    );
    // A wrong solution.
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|n| *n != solve(nonce, 8).to_string() && solve_check(nonce, n) < 8)
        .unwrap();
    assert_eq!(
        error(post_with_pow(&s, token, &wrong, "x"), 400),
        "Proof-of-work failed: Insufficient work"
    );
    // Garbage.
    for (t, n, want) in [
        (
            "garbage",
            "1",
            "Proof-of-work failed: Invalid challenge format",
        ),
        (
            "a:b:c:d",
            "1",
            "Proof-of-work failed: Invalid challenge format",
        ),
        (token, "-1", "Proof-of-work failed: Invalid solution"),
        (token, "0x1f", "Proof-of-work failed: Invalid solution"),
    ] {
        assert_eq!(error(post_with_pow(&s, t, n, "x"), 400), want, "{t} {n}");
    }
    let no_solution = s
        .post("/")
        .header("X-PoW-Token", token)
        .body("x")
        .send()
        .unwrap();
    assert_eq!(error(no_solution, 400), "Proof-of-work required");
    // Expired.
    std::thread::sleep(Duration::from_millis(3100));
    let solution = solve(nonce, 8).to_string();
    assert_eq!(
        error(post_with_pow(&s, token, &solution, "x"), 400),
        "Proof-of-work failed: Challenge expired"
    );
}

fn solve_check(nonce: &str, n: &str) -> u32 {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(format!("{nonce}:{n}").as_bytes());
    let mut zeros = 0;
    for byte in hash.iter() {
        zeros += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    zeros
}

#[test]
fn concurrent_submissions_of_one_solution_admit_exactly_one() {
    let s = pow_server(&[]);
    let (token, solution) = solved_challenge(&s, "/challenge");
    let statuses: Vec<(u16, Value)> = parallel(PARALLEL, |i| {
        let r = post_with_pow(&s, &token, &solution, &format!("content {i}"));
        (r.status().as_u16(), r.json::<Value>().unwrap())
    });
    let created = statuses.iter().filter(|(st, _)| *st == 201).count();
    assert_eq!(created, 1, "{statuses:?}");
    for (st, body) in &statuses {
        if *st != 201 {
            assert_eq!(*st, 400);
            assert_eq!(
                body["error"],
                "Proof-of-work failed: Challenge already used"
            );
        }
    }
}

#[test]
fn the_signing_key_survives_a_restart() {
    let s = pow_server(&[]);
    let (token, solution) = solved_challenge(&s, "/challenge");
    let dir = s.kill();
    let s = Server::start_in(dir, &[("WASMPASTE_POW_DIFFICULTY", "8")]);
    assert_eq!(
        post_with_pow(&s, &token, &solution, "after restart").status(),
        201
    );
}

#[test]
fn a_configured_secret_signs_challenges() {
    let s = pow_server(&[("WASMPASTE_POW_SECRET", "configured-secret")]);
    let (token, solution) = solved_challenge(&s, "/challenge");
    let dir = s.kill();
    // Another key: the old token no longer verifies.
    let s = Server::start_in(
        dir,
        &[
            ("WASMPASTE_POW_DIFFICULTY", "8"),
            ("WASMPASTE_POW_SECRET", "another"),
        ],
    );
    assert_eq!(
        error(post_with_pow(&s, &token, &solution, "x"), 400),
        "Proof-of-work failed: Invalid challenge signature"
    );
    assert!(s.logs().iter().all(|l| !l.contains("another")));
}

#[test]
fn rate_limit_headers_and_429() {
    let s = Server::with_env(&[
        ("WASMPASTE_RATE_MAX", "3"),
        ("WASMPASTE_RATE_AUTH_MULT", "2"),
    ]);
    let mut reset = None;
    for remaining in [2, 1, 0] {
        let r = s.post("/").body(format!("r{remaining}")).send().unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(
            r.headers()["x-ratelimit-remaining"],
            remaining.to_string().as_str()
        );
        let this_reset: i64 = r.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(*reset.get_or_insert(this_reset), this_reset);
    }
    let limited = s.post("/").body("one too many").send().unwrap();
    assert_eq!(limited.status(), 429);
    let retry: i64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(limited.headers()["x-ratelimit-limit"], "3");
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(
        limited.headers()["x-ratelimit-reset"].to_str().unwrap(),
        reset.unwrap().to_string()
    );
    assert_eq!(json(limited, 429)["error"], "Rate limit exceeded");
    // Reads are not rate limited.
    assert_eq!(s.get("/health").send().unwrap().status(), 200);
    // Authenticated clients from the same IP get rate_max x rate_auth_mult.
    let auth = s
        .post("/")
        .header("X-SSL-Client-SHA1", ALICE)
        .body("auth")
        .send()
        .unwrap();
    assert_eq!(auth.status(), 201);
    assert_eq!(auth.headers()["x-ratelimit-limit"], "6");
    assert_eq!(auth.headers()["x-ratelimit-remaining"], "1");
}

#[test]
fn the_rate_limiter_is_exact_under_concurrency() {
    let s = Server::with_env(&[("WASMPASTE_RATE_MAX", "5")]);
    let statuses: Vec<u16> = parallel(PARALLEL, |i| {
        s.post("/")
            .body(format!("c{i}"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(
        statuses.iter().filter(|st| **st == 201).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|st| **st == 429).count(),
        PARALLEL - 5,
        "{statuses:?}"
    );
}

#[test]
fn windows_end_and_clients_are_told_when() {
    // Windows start at whole seconds: with 2 s, `b` (well under a second
    // after `a`, even on a slow host) is surely in `a`'s window.
    let s = Server::with_env(&[("WASMPASTE_RATE_MAX", "1"), ("WASMPASTE_RATE_WINDOW", "2")]);
    assert_eq!(s.post("/").body("a").send().unwrap().status(), 201);
    assert_eq!(s.post("/").body("b").send().unwrap().status(), 429);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(s.post("/").body("c").send().unwrap().status(), 201);
}

#[test]
fn forwarded_for_counts_only_from_the_trusted_proxy() {
    let s = Server::with_env(&[("WASMPASTE_RATE_MAX", "1"), ("WASMPASTE_PROXY_SECRET", "p")]);
    // Through the proxy, each client IP has its own window.
    for ip in ["203.0.113.1", "203.0.113.2"] {
        let r = s
            .post("/")
            .header("X-Proxy-Secret", "p")
            .header("X-Forwarded-For", format!("198.51.100.9, {ip}"))
            .body(ip)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "{ip}");
    }
    // Without the secret the header is ignored: all from the socket's address.
    let first = s
        .post("/")
        .header("X-Forwarded-For", "192.0.2.1")
        .body("s1")
        .send()
        .unwrap();
    assert_eq!(first.status(), 201);
    let second = s
        .post("/")
        .header("X-Forwarded-For", "192.0.2.2")
        .body("s2")
        .send()
        .unwrap();
    assert_eq!(second.status(), 429);
    // A client cannot pick its bucket with a spoofed spin-client-addr either.
    let spoof = s
        .post("/")
        .header("spin-client-addr", "192.0.2.3:1")
        .body("s3")
        .send()
        .unwrap();
    assert_eq!(spoof.status(), 429);
}

#[test]
fn antiflood_raises_difficulty_and_decays() {
    let s = pow_server(&[
        ("WASMPASTE_ANTIFLOOD_THRESHOLD", "2"),
        ("WASMPASTE_ANTIFLOOD_WINDOW", "30"),
        ("WASMPASTE_ANTIFLOOD_STEP", "2"),
        ("WASMPASTE_ANTIFLOOD_MAX", "12"),
        ("WASMPASTE_ANTIFLOOD_DECAY", "2"),
    ]);
    let create = |i: usize| {
        let (token, solution) = solved_challenge(&s, "/challenge");
        assert_eq!(
            post_with_pow(&s, &token, &solution, &format!("f{i}")).status(),
            201
        );
    };
    for i in 0..3 {
        create(i);
    }
    let c = json(s.get("/challenge").send().unwrap(), 200);
    assert_eq!(c["difficulty"], 10);
    assert_eq!(c["base_difficulty"], 8);
    assert_eq!(c["elevated"], true);
    assert!(c["token"].as_str().unwrap().contains(":10:"));
    for i in 3..9 {
        create(i);
    }
    // Capped at antiflood_max.
    assert_eq!(
        json(s.get("/challenge").send().unwrap(), 200)["difficulty"],
        12
    );
    std::thread::sleep(Duration::from_millis(2100));
    let c = json(s.get("/challenge").send().unwrap(), 200);
    assert_eq!(c["difficulty"], 8);
    assert_eq!(c["elevated"], false);
}

#[test]
fn duplicate_content_is_throttled() {
    let s = Server::with_env(&[
        ("WASMPASTE_DEDUP_MAX", "2"),
        ("WASMPASTE_DEDUP_WINDOW", "3600"),
    ]);
    for _ in 0..2 {
        assert_eq!(s.post("/").body("same thing").send().unwrap().status(), 201);
    }
    let body = json(s.post("/").body("same thing").send().unwrap(), 429);
    assert_eq!(
        body,
        serde_json::json!({"error": "Duplicate content rate limit exceeded", "count": 2, "window_seconds": 3600})
    );
    assert_eq!(
        s.post("/").body("different thing").send().unwrap().status(),
        201
    );
}

#[test]
fn content_policies() {
    let s = Server::with_env(&[
        ("WASMPASTE_MIN_SIZE", "16"),
        ("WASMPASTE_MIN_ENTROPY", "7.0"),
        ("WASMPASTE_MIN_ENTROPY_SIZE", "64"),
    ]);
    let small = json(s.post("/").body("tiny").send().unwrap(), 400);
    assert_eq!(
        small,
        serde_json::json!({"error": "Paste too small", "size": 4, "min_size": 16})
    );
    // Between min_size and min_entropy_size: exempt from the entropy check.
    assert_eq!(
        s.post("/").body("a".repeat(32)).send().unwrap().status(),
        201
    );
    let text = "the quick brown fox jumps over the lazy dog ".repeat(4);
    let low = json(s.post("/").body(text).send().unwrap(), 400);
    assert_eq!(low["error"], "Content entropy too low");
    assert_eq!(low["min_entropy"], 7.0);
    assert_eq!(
        low["hint"],
        "Encrypt content before uploading (fpaste encrypts by default)"
    );
    let e = low["entropy"].as_f64().unwrap();
    assert!((3.0..5.0).contains(&e), "{e}");
    assert_eq!((e * 100.0).round() / 100.0, e, "rounded to 2 decimals");
    let random: Vec<u8> = (0..4096u32)
        .map(|i| u8::try_from((i.wrapping_mul(2_654_435_761) >> 13) & 0xff).unwrap())
        .collect();
    assert_eq!(s.post("/").body(random).send().unwrap().status(), 201);

    let b = Server::with_env(&[("WASMPASTE_REQUIRE_BINARY", "1")]);
    let text = json(b.post("/").body("plain text").send().unwrap(), 400);
    assert_eq!(
        text,
        serde_json::json!({
            "error": "Recognizable format not allowed",
            "detected": "text/plain",
            "hint": "Encrypt content before uploading (fpaste encrypts by default)"
        })
    );
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[1u8; 32]);
    assert_eq!(
        json(b.post("/").body(png).send().unwrap(), 400)["detected"],
        "image/png"
    );
    assert_eq!(
        b.post("/")
            .body(vec![0xffu8, 0xfe, 0x81, 0x00])
            .send()
            .unwrap()
            .status(),
        201
    );
}
