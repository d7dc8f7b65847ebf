//! The host as a multi-tenant server, end to end: one `wasmpaste` process
//! with a tenants file, real HTTP over loopback, the real guest for two
//! tenants and the misbehaving test component (tests/components/misbehave)
//! for two more. Every isolation promise of docs/operations.md is checked
//! here: routing, separate databases and variables, deadlines, memory
//! limits, panics, concurrency limits, quotas, body limits, metrics, logs,
//! scheduled cleanup and graceful shutdown.

mod common;

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{counted, error, json, sample};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;
use wasmpaste_test_components::MISBEHAVE_WASM;

const ABUSE_OFF: &str = "pow_difficulty = 0, rate_max = 0, dedup_max = 0";

/// `alpha` answers Host `alpha.test`; `beta` the prefix `/beta` (1 MiB body
/// limit, 1 MiB database quota); `bad` (1 s deadline, 32 MiB memory, no
/// ready instance) and
/// `worse` (2 requests at once) run the misbehaving component; `again` runs
/// it too with `bad`'s limits, each instance serving up to 3 requests and
/// dropped after 1 s unused, and
/// `gamma` (prefix `/gamma`) the real guest with instances reused 1000 times.
fn config(dir: &Path) -> String {
    let wasm = MISBEHAVE_WASM;
    let text = format!(
        r#"
[defaults]
request_timeout_secs = 30

[[tenant]]
name = "alpha"
hosts = ["alpha.test"]
db = "alpha.db"
variables = {{ {ABUSE_OFF} }}

[[tenant]]
name = "beta"
path_prefix = "/beta"
db = "beta.db"
variables = {{ {ABUSE_OFF} }}
limits = {{ max_body_mib = 1, db_quota_mib = 1 }}

[[tenant]]
name = "bad"
path_prefix = "/bad"
component = "{wasm}"
db = "bad.db"
variables = {{ secret_of_bad = "s3cret" }}
limits = {{ request_timeout_secs = 1, max_memory_mib = 32, ready_instances = 0 }}

[[tenant]]
name = "worse"
path_prefix = "/worse"
component = "{wasm}"
db = "worse.db"
limits = {{ max_concurrency = 2 }}

[[tenant]]
name = "again"
path_prefix = "/again"
component = "{wasm}"
db = "again.db"
limits = {{ request_timeout_secs = 1, max_memory_mib = 32, max_instance_reuse = 3, idle_instance_timeout_secs = 1 }}

[[tenant]]
name = "gamma"
path_prefix = "/gamma"
db = "gamma.db"
variables = {{ {ABUSE_OFF} }}
limits = {{ max_instance_reuse = 1000 }}
"#
    );
    let path = dir.join("tenants.toml");
    std::fs::write(&path, &text).expect("write config");
    path.display().to_string()
}

struct Host {
    child: std::process::Child,
    addr: SocketAddr,
    admin: SocketAddr,
    dir: tempfile::TempDir,
    client: Client,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// With host settings in the environment.
    fn start_with(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config(dir.path());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmpaste"));
        cmd.args(["--config", &config, "--admin-listen", "127.0.0.1:0"])
            .args(["--log-format", "json", "--cleanup-every", "1"]);
        let (child, addr, admin, logs) = common::spawn_command(cmd, env).expect("host starts");
        Self {
            child,
            addr,
            admin: admin.expect("the admin listener is announced"),
            dir,
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            logs,
        }
    }

    /// A request to `path` on the public port with `Host: host`.
    fn to(&self, method: reqwest::Method, host: &str, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("http://{}{path}", self.addr))
            .header("host", host)
    }

    fn get(&self, host: &str, path: &str) -> RequestBuilder {
        self.to(reqwest::Method::GET, host, path)
    }

    fn post(&self, host: &str, path: &str) -> RequestBuilder {
        self.to(reqwest::Method::POST, host, path)
    }

    fn metrics(&self) -> String {
        let resp = self
            .client
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .expect("scrape");
        assert_eq!(resp.status(), 200);
        resp.text().expect("text")
    }

    fn logged(&self, needles: &[&str]) -> bool {
        let found = |lines: &[String]| lines.iter().any(|l| needles.iter().all(|n| l.contains(n)));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if found(&self.logs.lock().expect("logs")) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn requests_reach_their_tenant_and_data_stays_there() {
    let h = Host::start();
    let a = json(
        h.post("alpha.test", "/")
            .body("alpha's paste")
            .send()
            .expect("create"),
        201,
    );
    let a_id = a["id"].as_str().expect("id");
    let b = json(
        h.post("anything.example", "/beta/")
            .body("beta's paste")
            .send()
            .expect("create"),
        201,
    );
    let b_id = b["id"].as_str().expect("id");
    // The guest builds its URLs with the tenant's prefix.
    assert!(
        b["url"]
            .as_str()
            .expect("url")
            .contains(&format!("/beta/{b_id}")),
        "{b}"
    );

    let raw = |host: &str, path: &str| h.get(host, path).send().expect("GET");
    assert_eq!(
        raw("ALPHA.test:8080", &format!("/{a_id}/raw"))
            .text()
            .expect("body"),
        "alpha's paste"
    );
    assert_eq!(
        raw("x", &format!("/beta/{b_id}/raw")).text().expect("body"),
        "beta's paste"
    );
    assert_eq!(raw("alpha.test", &format!("/{b_id}")).status(), 404);
    assert_eq!(raw("x", &format!("/beta/{a_id}")).status(), 404);
    // /betax is not under /beta; no tenant answers other hosts at the root.
    assert_eq!(
        error(raw("x", "/betax"), 404),
        "No service at this host and path"
    );
    assert_eq!(
        error(raw("nobody.test", "/"), 404),
        "No service at this host and path"
    );
    for db in ["alpha.db", "beta.db", "bad.db", "worse.db"] {
        assert!(h.dir.path().join(db).exists(), "{db}");
    }
}

#[test]
fn tenants_running_the_same_component_share_one_compiled_copy() {
    let h = Host::start();
    // Six tenants, two distinct components (the embedded guest, misbehave).
    let compiled = h
        .logs
        .lock()
        .expect("logs")
        .iter()
        .filter(|l| l.contains(r#""message":"component ready""#))
        .count();
    assert_eq!(compiled, 2);
}

#[test]
fn a_tenant_sees_only_its_own_database_and_variables() {
    let h = Host::start();
    let probe = |path: &str| json(h.get("x", path).send().expect("GET"), 200);
    assert_eq!(probe("/bad/db?label=default")["result"], "ok");
    // The real guest's schema lives in alpha.db; bad's own file is empty.
    assert_eq!(probe("/bad/db?label=default")["tables"], 0);
    let alpha_db = h.dir.path().join("alpha.db").display().to_string();
    for label in [
        "alpha",
        "beta",
        "alpha.db",
        "../alpha.db",
        alpha_db.as_str(),
        "worse",
    ] {
        assert_eq!(
            probe(&format!("/bad/db?label={label}"))["result"],
            "access-denied",
            "{label}"
        );
    }
    assert_eq!(probe("/bad/var?name=secret_of_bad")["value"], "s3cret");
    assert_eq!(probe("/worse/var?name=secret_of_bad")["error"], "undefined");
}

#[test]
fn a_looping_guest_is_stopped_at_its_deadline_and_the_tenant_recovers() {
    let h = Host::start();
    let resp = h
        .get("x", "/bad/loop")
        .header("x-request-id", "loop-1")
        .send()
        .expect("GET");
    assert_eq!(resp.headers()["x-request-id"], "loop-1");
    assert_eq!(error(resp, 504), "Request timed out");
    assert!(h.logged(&[
        "exceeded its deadline",
        r#""tenant":"bad""#,
        r#""rid":"loop-1""#
    ]));
    assert_eq!(
        json(h.get("x", "/bad/ok").send().expect("GET"), 200)["ok"],
        true
    );
    assert_eq!(
        h.get("alpha.test", "/health").send().expect("GET").status(),
        200
    );
    let m = h.metrics();
    assert_eq!(
        sample(&m, r#"wasmpaste_guest_timeouts_total{tenant="bad"}"#),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn a_guest_that_allocates_without_bound_traps_at_its_memory_limit() {
    let h = Host::start();
    assert_eq!(
        error(h.get("x", "/bad/alloc").send().expect("GET"), 500),
        "Internal server error"
    );
    assert!(h.logged(&["the guest trapped", r#""tenant":"bad""#]));
    assert_eq!(
        json(h.get("x", "/bad/ok").send().expect("GET"), 200)["ok"],
        true
    );
    // The same component under the default 512 MiB limit is another tenant:
    // bad's limit did not leak into it, and it still answers.
    assert_eq!(
        json(h.get("x", "/worse/ok").send().expect("GET"), 200)["ok"],
        true
    );
}

#[test]
fn a_panicking_guest_fails_only_its_own_request() {
    let h = Host::start();
    let results = common::parallel(16, |i| {
        if i % 4 == 0 {
            h.get("x", "/bad/panic")
                .send()
                .expect("GET")
                .status()
                .as_u16()
        } else {
            h.post("alpha.test", "/")
                .body(format!("paste {i}"))
                .send()
                .expect("POST")
                .status()
                .as_u16()
        }
    });
    for (i, status) in results.iter().enumerate() {
        assert_eq!(*status, if i % 4 == 0 { 500 } else { 201 }, "request {i}");
    }
    // The panic message is forwarded, tagged with its tenant.
    assert!(h.logged(&["panicked", r#""tenant":"bad""#]));
}

/// What `/again/served` reports: requests its instance has handled. An
/// instance goes back to the pool just after its response is sent, so the
/// pause keeps a request from racing ahead of its predecessor's return (it
/// would meet a fresh instance: correct, but not what is being counted).
fn served(h: &Host) -> u64 {
    std::thread::sleep(Duration::from_millis(100));
    json(h.get("x", "/again/served").send().expect("GET"), 200)["served"]
        .as_u64()
        .expect("a count")
}

#[test]
fn reused_instances_serve_their_share_and_never_outlive_a_failure() {
    let h = Host::start();
    // One request at a time: each instance serves 3, then a fresh one takes over.
    let counts: Vec<u64> = (0..7).map(|_| served(&h)).collect();
    assert_eq!(counts, [1, 2, 3, 1, 2, 3, 1]);
    // Without reuse (the default) every request meets a fresh instance: after
    // the first, one made ready after the request before (`ready_instances`,
    // default 1) that has never run a request. With `ready_instances = 0`
    // (`bad`) each request waits for its own.
    for tenant in ["worse", "bad"] {
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            let resp = h
                .get("x", &format!("/{tenant}/served"))
                .send()
                .expect("GET");
            assert_eq!(json(resp, 200)["served"], 1, "{tenant}");
        }
    }
    // A trap, a timeout or the memory limit ends the instance it happened
    // in: each failure here is the second request of an instance that could
    // serve a third, and the request after it meets a fresh instance.
    for (path, status) in [
        ("/again/panic", 500),
        ("/again/loop", 504),
        ("/again/alloc", 500),
    ] {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(h.get("x", path).send().expect("GET").status(), status);
        assert_eq!(served(&h), 1, "the instance after {path}");
    }
    // Each request's log lines carry its own id, on the same instance.
    for rid in ["reuse-log-1", "reuse-log-2"] {
        let resp = h
            .get("x", &format!("/again/log?msg=from-{rid}"))
            .header("x-request-id", rid)
            .send()
            .expect("GET");
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(served(&h), 1, "the log requests used the instance up");
    // An instance that holds on to its request (body unread) is not reused:
    // the body would keep the client's connection waiting.
    std::thread::sleep(Duration::from_millis(100));
    let leak = h.post("x", "/again/leak").body("never read");
    assert_eq!(leak.send().expect("POST").status(), 200);
    assert_eq!(served(&h), 1, "the instance after /again/leak");
    for rid in ["reuse-log-1", "reuse-log-2"] {
        let message = format!(r#""message":"from-{rid}""#);
        let tag = format!(r#""rid":"{rid}""#);
        assert!(h.logged(&[&message, &tag, r#""tenant":"again""#]));
    }
    let m = h.metrics();
    // Started: 3 for the first seven requests, one after each failure, one
    // after the log requests used up the last, one after the leak.
    assert_eq!(
        sample(
            &m,
            r#"wasmpaste_instantiation_seconds_count{tenant="again"}"#
        ),
        Some(8.0),
        "{m}"
    );
    // Each instance after the first was made ready when its predecessor was
    // dropped, and the next request took it.
    let ready_used = |tenant: &str| {
        sample(
            &m,
            &format!(r#"wasmpaste_ready_instances_used_total{{tenant="{tenant}"}}"#),
        )
    };
    assert_eq!(ready_used("again"), Some(7.0), "{m}");
    let idle = r#"wasmpaste_idle_instances{tenant="again"}"#;
    assert_eq!(sample(&m, idle), Some(1.0), "{m}");
    // `worse` keeps one ready for its next request; `bad` none.
    assert_eq!(ready_used("worse"), Some(2.0), "{m}");
    assert_eq!(
        sample(&m, r#"wasmpaste_idle_instances{tenant="worse"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"wasmpaste_instantiation_seconds_count{tenant="worse"}"#
        ),
        Some(4.0),
        "{m}"
    );
    assert_eq!(ready_used("bad"), Some(0.0), "{m}");
    assert_eq!(
        sample(&m, r#"wasmpaste_idle_instances{tenant="bad"}"#),
        Some(0.0)
    );
    // Unused for its idle timeout, the instance is dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sample(&h.metrics(), idle) != Some(0.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "still idle after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(served(&h), 1);
}

#[test]
fn idle_instances_give_their_pool_slots_to_other_tenants() {
    // Two tenants reusing instances, a third making ready instances, and a
    // pool of one slot (`--max-instances 1`): the instance one tenant keeps
    // waiting must not lock the others out.
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = MISBEHAVE_WASM;
    let config = dir.path().join("tenants.toml");
    let text = format!(
        r#"
[defaults]
max_instance_reuse = 100

[[tenant]]
name = "one"
path_prefix = "/one"
component = "{wasm}"
db = "one.db"

[[tenant]]
name = "two"
path_prefix = "/two"
component = "{wasm}"
db = "two.db"

[[tenant]]
name = "three"
path_prefix = "/three"
component = "{wasm}"
db = "three.db"
limits = {{ max_instance_reuse = 1, ready_instances = 1 }}
"#
    );
    std::fs::write(&config, text).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmpaste"));
    cmd.arg("--config").arg(&config).args([
        "--max-instances",
        "1",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let (child, addr, admin, _logs) = common::spawn_command(cmd, &[]).expect("host starts");
    let _host = KillOnDrop(child);
    let admin = admin.expect("admin listener");
    let client = Client::new();
    let served = |tenant: &str| {
        let resp = client
            .get(format!("http://{addr}/{tenant}/served"))
            .send()
            .expect("GET");
        json(resp, 200)["served"].as_u64().expect("a count")
    };
    let idle = |tenant: &str| {
        let m = client
            .get(format!("http://{admin}/metrics"))
            .send()
            .and_then(|r| r.text())
            .expect("scrape");
        sample(
            &m,
            &format!(r#"wasmpaste_idle_instances{{tenant="{tenant}"}}"#),
        )
    };
    assert_eq!(served("one"), 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(idle("one"), Some(1.0), "one keeps its instance");
    // The only slot is one's idle instance: it gives way.
    assert_eq!(served("two"), 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!((idle("one"), idle("two")), (Some(0.0), Some(1.0)));
    // Reuse goes on where nothing is short.
    assert_eq!(served("two"), 2);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(served("one"), 1);
    // A ready instance takes the slot once its tenant's request is done...
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(served("three"), 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!((idle("one"), idle("three")), (Some(0.0), Some(1.0)));
    // ...and gives it up to another tenant's request, like a kept one.
    assert_eq!(served("one"), 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!((idle("one"), idle("three")), (Some(1.0), Some(0.0)));
}

/// A host process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_real_guest_keeps_its_promises_on_reused_instances() {
    let h = Host::start();
    let base = "/gamma";
    let create = |req: RequestBuilder| json(req.send().expect("POST"), 201);
    let plain = create(h.post("x", &format!("{base}/")).body("reused text"));
    let id = plain["id"].as_str().expect("id");
    for _ in 0..3 {
        let resp = h.get("x", &format!("{base}/{id}/raw")).send().expect("GET");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().expect("body"), "reused text");
    }
    // Burn-after-read still serves exactly once.
    let burn = create(
        h.post("x", &format!("{base}/"))
            .header("x-burn-after-read", "true")
            .body("once"),
    );
    let burn_raw = format!("{base}/{}/raw", burn["id"].as_str().expect("id"));
    assert_eq!(h.get("x", &burn_raw).send().expect("GET").status(), 200);
    assert_eq!(h.get("x", &burn_raw).send().expect("GET").status(), 404);
    // A password checked on one request is not remembered for the next.
    let locked = create(
        h.post("x", &format!("{base}/"))
            .header("x-paste-password", "hunter22")
            .body("secret"),
    );
    let locked_raw = format!("{base}/{}/raw", locked["id"].as_str().expect("id"));
    let ok = h
        .get("x", &locked_raw)
        .header("x-paste-password", "hunter22")
        .send()
        .expect("GET");
    assert_eq!(ok.text().expect("body"), "secret");
    assert_eq!(h.get("x", &locked_raw).send().expect("GET").status(), 401);
    // Nor is an identity: deleting needs one, whatever ran before.
    let deleted = h
        .to(reqwest::Method::DELETE, "x", &format!("{base}/{id}"))
        .send()
        .expect("DELETE");
    assert_eq!(deleted.status(), 401);
    let m = h.metrics();
    let started = sample(
        &m,
        r#"wasmpaste_instantiation_seconds_count{tenant="gamma"}"#,
    );
    let answered: f64 = m
        .lines()
        .filter(|l| l.starts_with(r#"wasmpaste_requests_total{tenant="gamma""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(answered, 11.0, "{m}");
    // One after another, one instance serves them all, unless a request
    // arrives before its predecessor's instance is back (see `served`).
    assert!(
        started.is_some_and(|n| (1.0..=3.0).contains(&n)),
        "instances started: {started:?}\n{m}"
    );
}

#[test]
fn a_tenant_at_its_concurrency_limit_gets_503_while_others_are_served() {
    let h = Host::start();
    let sleepers_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    // A probe below may hold a slot for the moment a sleeper
                    // arrives: the sleeper then gets the 503 itself and retries.
                    for _ in 0..100 {
                        let status = h
                            .get("x", "/worse/sleep?ms=5000")
                            .send()
                            .expect("GET")
                            .status();
                        if status != 503 {
                            return status;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    reqwest::StatusCode::SERVICE_UNAVAILABLE
                })
            })
            .collect();
        let waiter = scope.spawn(|| {
            for s in sleepers {
                assert_eq!(s.join().expect("sleeper"), 200);
            }
            sleepers_done.store(true, Ordering::SeqCst);
        });
        // Wait until both of worse's slots are taken.
        let mut refused = None;
        for _ in 0..400 {
            let resp = h.get("x", "/worse/ok").send().expect("GET");
            if resp.status() == 503 {
                refused = Some(resp);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let resp = refused.expect("worse refuses a third request");
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(error(resp, 503), "Server busy, retry shortly");
        // Other tenants are unaffected while worse is saturated.
        for _ in 0..20 {
            assert_eq!(
                h.get("alpha.test", "/health").send().expect("GET").status(),
                200
            );
            assert_eq!(h.get("x", "/bad/ok").send().expect("GET").status(), 200);
        }
        assert!(
            !sleepers_done.load(Ordering::SeqCst),
            "the other tenants' requests should have finished while worse was saturated"
        );
        waiter.join().expect("waiter");
    });
    assert_eq!(h.get("x", "/worse/ok").send().expect("GET").status(), 200);
    let m = h.metrics();
    assert!(
        counted(
            &m,
            r#"wasmpaste_limit_rejections_total{tenant="worse",kind="concurrency"}"#
        ),
        "{m}"
    );
}

#[test]
fn beyond_its_quota_a_tenant_gets_507_and_can_still_read_and_delete() {
    let h = Host::start();
    let mut ids = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let full = loop {
        // Incompressible content, so each paste takes its size in pages.
        let body: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect();
        let resp = h
            .post("x", "/beta/")
            .header("x-ssl-client-sha1", common::ALICE)
            .body(body)
            .send()
            .expect("POST");
        if resp.status() != 201 {
            break resp;
        }
        ids.push(json(resp, 201)["id"].as_str().expect("id").to_owned());
        assert!(ids.len() < 64, "the 1 MiB quota never applied");
    };
    assert_eq!(error(full, 507), "Storage quota exceeded");
    assert!(ids.len() >= 4, "only {} pastes fit", ids.len());
    let first = &ids[0];
    assert_eq!(
        h.get("x", &format!("/beta/{first}/raw"))
            .send()
            .expect("GET")
            .status(),
        200
    );
    let del = h
        .to(reqwest::Method::DELETE, "x", &format!("/beta/{first}"))
        .header("x-ssl-client-sha1", common::ALICE)
        .send()
        .expect("DELETE");
    assert_eq!(del.status(), 200);
    assert_eq!(
        h.get("x", &format!("/beta/{first}"))
            .send()
            .expect("GET")
            .status(),
        404
    );
    // Another tenant is not affected by beta's quota.
    assert_eq!(
        h.post("alpha.test", "/")
            .body("still room")
            .send()
            .expect("POST")
            .status(),
        201
    );
    let m = h.metrics();
    let size = sample(&m, r#"wasmpaste_db_size_bytes{tenant="beta"}"#).expect("beta's size");
    assert!(size > 512.0 * 1024.0 && size <= 1024.0 * 1024.0, "{size}");
}

#[test]
fn bodies_over_the_tenant_limit_are_refused_with_413() {
    let h = Host::start();
    let big = vec![b'x'; 1024 * 1024 + 1];
    let resp = h
        .post("x", "/beta/")
        .body(big.clone())
        .send()
        .expect("POST");
    assert!(error(resp, 413).contains("too large"));
    // Without a declared length the limit applies as the body streams. The
    // host reads the rest before answering (lingering close), so a client
    // that sends its whole body, as this one does before reading anything,
    // gets the 413 instead of a reset connection.
    let mut stream = std::net::TcpStream::connect(h.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut request =
        b"POST /beta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    // Several MiB over the limit: more than loopback's socket buffers hold, so
    // a host that stopped reading would make this write fail.
    let streamed = vec![b'x'; 6 * 1024 * 1024];
    for chunk in streamed.chunks(64 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream
        .write_all(&request)
        .expect("the whole body is accepted");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("an answer");
    assert_eq!(&head, b"HTTP/1.1 413");
    drop(stream);
    // The same with a declared length: the host still reads the body it was
    // sent before answering, and the connection stays usable.
    let mut stream = std::net::TcpStream::connect(h.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut request = format!(
        "POST /beta/ HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        streamed.len()
    )
    .into_bytes();
    request.extend_from_slice(&streamed);
    request.extend_from_slice(b"GET /beta/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream
        .write_all(&request)
        .expect("the whole body is accepted");
    let mut answers = String::new();
    stream.read_to_string(&mut answers).expect("two answers");
    assert!(answers.starts_with("HTTP/1.1 413"), "{answers}");
    assert_eq!(answers.matches("HTTP/1.1 ").count(), 2, "{answers}");
    // A client that waits for `100 Continue` is answered at once, and sends
    // nothing.
    let mut stream = std::net::TcpStream::connect(h.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
        .write_all(
            b"POST /beta/ HTTP/1.1\r\nHost: x\r\nContent-Length: 6291456\r\nExpect: 100-continue\r\n\r\n",
        )
        .expect("head");
    stream.read_exact(&mut head).expect("an answer");
    assert_eq!(&head, b"HTTP/1.1 413");
    drop(stream);
    // alpha has the default limit (64 MiB): the same size is only over the
    // guest's own 3 MiB anonymous limit when it is bigger than that.
    let resp = h
        .post("alpha.test", "/")
        .body(vec![b'y'; 1024 * 1024 + 1])
        .send()
        .expect("POST");
    assert_eq!(resp.status(), 201);
    let m = h.metrics();
    assert!(
        counted(
            &m,
            r#"wasmpaste_limit_rejections_total{tenant="beta",kind="body_size"}"#
        ),
        "{m}"
    );
}

#[test]
fn guest_log_lines_carry_tenant_and_request_id_and_requests_are_logged() {
    let h = Host::start();
    let resp = h
        .get("x", "/worse/log?msg=hello-from-worse")
        .header("x-request-id", "rid-worse-1")
        .send()
        .expect("GET");
    assert_eq!(resp.status(), 200);
    assert!(h.logged(&[
        r#""message":"hello-from-worse""#,
        r#""tenant":"worse""#,
        r#""rid":"rid-worse-1""#
    ]));
    // The real guest's own JSON lines keep its request id (the host's).
    h.post("alpha.test", "/")
        .header("x-request-id", "rid-alpha-1")
        .body("logged paste")
        .send()
        .expect("POST");
    assert!(h.logged(&[r#""tenant":"alpha""#, r#""rid":"rid-alpha-1""#]));
    assert!(h.logged(&[
        r#""message":"request""#,
        r#""rid":"rid-alpha-1""#,
        r#""tenant":"alpha""#,
        r#""status":201"#,
        r#""ms":"#
    ]));
}

#[test]
fn metrics_and_healthz_describe_every_tenant() {
    let h = Host::start();
    h.post("alpha.test", "/")
        .body("counted")
        .send()
        .expect("POST");
    h.get("x", "/beta/health").send().expect("GET");
    let _ = h.get("x", "/bad/panic").send();
    let m = h.metrics();
    for series in [
        r#"wasmpaste_requests_total{tenant="alpha",route="index",status="201"}"#,
        r#"wasmpaste_requests_total{tenant="beta",route="health",status="200"}"#,
        r#"wasmpaste_request_duration_seconds_count{tenant="alpha",route="index",status="201"}"#,
        r#"wasmpaste_instantiation_seconds_count{tenant="beta"}"#,
        r#"wasmpaste_guest_traps_total{tenant="bad"}"#,
        r#"wasmpaste_cleanup_runs_total{tenant="worse",kind="ok"}"#,
    ] {
        assert!(counted(&m, series), "{series} in\n{m}");
    }
    for tenant in ["alpha", "beta", "bad", "worse"] {
        let series = format!(r#"wasmpaste_db_size_bytes{{tenant="{tenant}"}}"#);
        assert!(sample(&m, &series).is_some_and(|v| v > 0.0), "{series}");
    }
    let health: Value = h
        .client
        .get(format!("http://{}/healthz", h.admin))
        .send()
        .expect("healthz")
        .json()
        .expect("JSON");
    assert_eq!(health, serde_json::json!({ "status": "ok", "tenants": 6 }));
    // The metrics are not served on the public port.
    let public = h.get("alpha.test", "/metrics").send().expect("GET");
    assert_ne!(public.status(), 200);
    assert!(
        !public
            .text()
            .expect("body")
            .contains("wasmpaste_requests_total")
    );
}

#[test]
fn the_scheduler_cleans_each_tenant_on_its_interval() {
    let h = Host::start();
    let created = json(
        h.post("alpha.test", "/")
            .header("x-expiry", "1")
            .body("short-lived")
            .send()
            .expect("POST"),
        201,
    );
    let id = created["id"].as_str().expect("id");
    // No request reaches alpha meanwhile: only the scheduler can remove it.
    assert!(
        h.logged(&[
            r#""message":"cleanup""#,
            r#""tenant":"alpha""#,
            r#""why":"scheduled""#,
            r#""expired_pastes":1"#
        ]),
        "{:#?}",
        h.logs.lock().expect("logs")
    );
    assert_eq!(
        h.get("alpha.test", &format!("/{id}"))
            .send()
            .expect("GET")
            .status(),
        404
    );
    let m = h.metrics();
    assert!(
        counted(
            &m,
            r#"wasmpaste_cleanup_removed_total{tenant="alpha",kind="expired_pastes"}"#
        ),
        "{m}"
    );
}

#[test]
fn sigterm_drains_requests_in_flight_then_exits() {
    let mut h = Host::start();
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            h.get("x", "/worse/sleep?ms=1500")
                .send()
                .expect("GET")
                .status()
        });
        std::thread::sleep(Duration::from_millis(300));
        let pid = h.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        assert_eq!(slow.join().expect("slow request"), 200);
    });
    let status = h.child.wait().expect("exit");
    assert!(status.success(), "{status}");
    assert!(h.logged(&["shutting down"]));
}

#[test]
fn the_shutdown_timeout_bounds_the_drain() {
    let mut h = Host::start_with(&[("WASMPASTE_SHUTDOWN_TIMEOUT", "1")]);
    // A client that sends half its body and then nothing: without a bound
    // the host would wait for it up to the request timeout (60 s).
    let mut stalled = std::net::TcpStream::connect(h.addr).expect("connect");
    std::io::Write::write_all(
        &mut stalled,
        b"POST /gamma/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf",
    )
    .expect("write");
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let pid = h.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = h.child.wait().expect("exit");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exited after {:?}",
        started.elapsed()
    );
    assert!(h.logged(&["gave up on connections"]));
}

#[test]
fn configuration_errors_name_the_tenant_and_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[[tenant]]
name = "one"
db = "one.db"
path_prefix = "no-slash"
limits = { max_memory_mib = 1 }

[[tenant]]
name = "two"
db = "one.db"
limits = { request_timout_secs = 5 }
"#,
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmpaste"))
        .args([
            "--config",
            &path.display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it must not start listening");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "tenant `one`: field `path_prefix`: `no-slash` must start with `/`",
        "tenant `one`: field `limits.max_memory_mib`: 1 is out of range",
        "tenant `two`: unknown field `request_timout_secs`",
    ] {
        assert!(stderr.contains(expected), "{expected} not in:\n{stderr}");
    }
}
