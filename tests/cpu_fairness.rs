//! Guest CPU under contention, end to end: the real host with a tenants file,
//! real traffic over loopback, CPU-heavy requests (password-protected
//! creates: PBKDF2, 600,000 rounds, about a quarter of a second of CPU each)
//! next to light ones (reads of a small paste). Assertions are orderings and
//! ratios measured in the same test, never wall times: these machines are
//! noisy. What they pin is docs/operations.md, "CPU scheduling".

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{counted, sample};
use reqwest::blocking::Client;

/// These tests measure shares of the CPU: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const ABUSE_OFF: &str = "pow_difficulty = 0, rate_max = 0, dedup_max = 0";
const PASSWORD: &str = "correct horse battery staple";

struct Host {
    child: std::process::Child,
    base: String,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// A host with one tenant per `(name, limits)`, each at path `/name`.
    fn start(tenants: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut text = String::new();
        for (name, limits) in tenants {
            text.push_str(&format!(
                "[[tenant]]\nname = \"{name}\"\npath_prefix = \"/{name}\"\ndb = \"{name}.db\"\n\
                 variables = {{ {ABUSE_OFF} }}\nlimits = {{ {limits} }}\n"
            ));
        }
        let config = dir.path().join("tenants.toml");
        std::fs::write(&config, text).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmpaste"));
        cmd.arg("--config").arg(&config).args([
            "--admin-listen",
            "127.0.0.1:0",
            "--cleanup-every",
            "0",
        ]);
        let (child, addr, admin, _logs) = common::spawn_command(cmd, &[]).expect("host starts");
        Self {
            child,
            base: format!("http://{addr}"),
            admin: format!("http://{}", admin.expect("admin listener")),
            _dir: dir,
        }
    }

    fn url(&self, tenant: &str, path: &str) -> String {
        format!("{}/{tenant}{path}", self.base)
    }

    fn metrics(&self) -> String {
        client()
            .get(format!("{}/metrics", self.admin))
            .send()
            .and_then(|r| r.text())
            .expect("scrape")
    }

    /// Guest CPU seconds of `tenant` so far.
    fn cpu_seconds(&self, tenant: &str) -> f64 {
        let series = format!("wasmpaste_guest_cpu_seconds_total{{tenant=\"{tenant}\"}}");
        sample(&self.metrics(), &series).unwrap_or(0.0)
    }

    /// Creates a small paste for `tenant`; the URL of its raw content.
    fn paste(&self, tenant: &str) -> String {
        let resp = client()
            .post(self.url(tenant, "/"))
            .body("hello, world")
            .send()
            .expect("POST");
        assert_eq!(resp.status(), 201);
        let v: serde_json::Value = resp.json().expect("JSON");
        self.url(tenant, &format!("/{}/raw", v["id"].as_str().expect("id")))
    }
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// What heavy clients got done.
#[derive(Default)]
struct Heavy {
    completed: AtomicU64,
    failed: AtomicU64,
}

/// Runs `body` while `clients` threads keep creating password-protected
/// pastes at `url`; waits for their last requests to finish.
fn with_heavy_load<T>(url: &str, clients: usize, heavy: &Heavy, body: impl FnOnce() -> T) -> T {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for worker in 0..clients {
            let stop = &stop;
            scope.spawn(move || {
                let client = client();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let status = client
                        .post(url)
                        .header("x-paste-password", PASSWORD)
                        .body(format!("secret {worker}-{n}"))
                        .send()
                        .map(|r| r.status().as_u16());
                    let counter = match status {
                        Ok(201) => &heavy.completed,
                        _ => &heavy.failed,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Every heavy client has a request running before `body` measures.
        std::thread::sleep(Duration::from_millis(500));
        let out = body();
        stop.store(true, Ordering::Relaxed);
        out
    })
}

/// Reads of `url` completed by `readers` threads in `period`.
fn reads(url: &str, readers: usize, period: Duration) -> u64 {
    let done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..readers {
            scope.spawn(|| {
                let client = client();
                let end = Instant::now() + period;
                while Instant::now() < end {
                    let resp = client.get(url).send().expect("GET");
                    assert_eq!(resp.status(), 200, "a light read failed");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.into_inner()
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `read` from 4 connections alone, then while `clients` keep
/// creating password-protected pastes at `heavy_url`: light work must keep
/// most of its throughput (before light-first scheduling it fell to a few
/// percent), many more reads must complete than heavy requests, and every
/// heavy request must still complete.
fn reads_survive_heavy_load(read: &str, heavy_url: &str, clients: usize) {
    let period = Duration::from_secs(3);
    let alone = reads(read, 4, period);
    let heavy = Heavy::default();
    let loaded = with_heavy_load(heavy_url, clients, &heavy, || reads(read, 4, period));
    let completed = heavy.completed.load(Ordering::Relaxed);
    eprintln!("reads alone {alone}, under load {loaded}; heavy completed {completed}");
    assert_eq!(
        heavy.failed.load(Ordering::Relaxed),
        0,
        "a heavy request failed"
    );
    assert!(completed >= 1, "no heavy request completed");
    assert!(
        loaded * 5 >= alone,
        "reads under load {loaded} vs alone {alone}"
    );
    assert!(
        loaded >= 20 * completed,
        "{loaded} reads vs {completed} heavy"
    );
}

#[test]
fn light_requests_run_while_heavy_ones_of_the_same_tenant_hog_the_cpu() {
    let _serial = lock();
    let h = Host::start(&[("solo", "")]);
    reads_survive_heavy_load(&h.paste("solo"), &h.url("solo", "/"), 4);
}

#[test]
fn a_noisy_tenant_leaves_a_quiet_one_its_reads() {
    let _serial = lock();
    let h = Host::start(&[("quiet", ""), ("noisy", "")]);
    reads_survive_heavy_load(&h.paste("quiet"), &h.url("noisy", "/"), 16);
}

#[test]
fn a_tenant_over_its_cpu_quota_is_throttled_and_another_is_not() {
    let _serial = lock();
    let h = Host::start(&[("capped", "cpu_ms_per_sec = 100"), ("free", "")]);
    let heavy_capped = Heavy::default();
    let heavy_free = Heavy::default();
    let period = Duration::from_secs(4);
    let (capped, free) = with_heavy_load(&h.url("capped", "/"), 3, &heavy_capped, || {
        with_heavy_load(&h.url("free", "/"), 3, &heavy_free, || {
            let before = (h.cpu_seconds("capped"), h.cpu_seconds("free"));
            std::thread::sleep(period);
            let after = (h.cpu_seconds("capped"), h.cpu_seconds("free"));
            (after.0 - before.0, after.1 - before.1)
        })
    });
    eprintln!("CPU in {period:?}: capped {capped:.3} s, free {free:.3} s");
    // 100 ms per second, plus what a paused request runs past its turn.
    let allowed = 0.1 * period.as_secs_f64() + 0.15;
    assert!(
        capped <= allowed,
        "capped used {capped:.3} s of CPU in {period:?}"
    );
    assert!(
        free >= 3.0 * capped,
        "free {free:.3} s vs capped {capped:.3} s"
    );
    let m = h.metrics();
    assert!(
        counted(&m, r#"wasmpaste_cpu_throttled_total{tenant="capped"}"#),
        "{m}"
    );
    assert!(
        !counted(&m, r#"wasmpaste_cpu_throttled_total{tenant="free"}"#),
        "{m}"
    );
    assert!(heavy_free.completed.load(Ordering::Relaxed) >= 1);
}

#[test]
fn cpu_weights_two_to_one_share_the_cpu_two_to_one() {
    let _serial = lock();
    let h = Host::start(&[
        ("double", "cpu_weight = 200"),
        ("single", "cpu_weight = 100"),
    ]);
    let (double_load, single_load) = (Heavy::default(), Heavy::default());
    let period = Duration::from_secs(5);
    let (double, single) = with_heavy_load(&h.url("double", "/"), 4, &double_load, || {
        with_heavy_load(&h.url("single", "/"), 4, &single_load, || {
            let before = (h.cpu_seconds("double"), h.cpu_seconds("single"));
            std::thread::sleep(period);
            let after = (h.cpu_seconds("double"), h.cpu_seconds("single"));
            (after.0 - before.0, after.1 - before.1)
        })
    });
    let ratio = double / single.max(1e-9);
    eprintln!("CPU in {period:?}: weight 200 {double:.3} s, weight 100 {single:.3} s");
    assert!(
        (1.4..=2.8).contains(&ratio),
        "weights 2:1 gave {double:.3} s : {single:.3} s of CPU ({ratio:.2})"
    );
    assert!(
        single_load.completed.load(Ordering::Relaxed) >= 1,
        "the lighter weight still runs"
    );
}

#[test]
fn past_its_queue_a_throttled_tenant_gets_503_with_retry_after_and_deadlines_hold() {
    let _serial = lock();
    let h = Host::start(&[
        (
            "strict",
            "cpu_ms_per_sec = 10, cpu_queue = 0, request_timeout_secs = 2",
        ),
        ("calm", ""),
    ]);
    let calm = h.paste("calm");
    // Start-up (check-config, the first cleanup and its migrations) is the
    // tenant's own CPU too: wait until its bucket has refilled, which a
    // light request sees as a 404 for a paste that does not exist instead
    // of the 503 of a tenant in debt with no queue.
    let missing = h.url("strict", "/0123456789abcdef");
    let until = Instant::now() + Duration::from_secs(30);
    while client().get(&missing).send().expect("GET").status() == 503 {
        assert!(Instant::now() < until, "the quota never refilled");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::scope(|scope| {
        // One password create needs about 25 s of a 10 ms/s quota.
        let heavy = scope.spawn(|| {
            client()
                .post(h.url("strict", "/"))
                .header("x-paste-password", PASSWORD)
                .body("secret")
                .send()
                .expect("POST")
                .status()
        });
        std::thread::sleep(Duration::from_millis(300));
        let refused = client().get(&missing).send().expect("GET");
        assert_eq!(refused.status(), 503);
        let retry: u64 = refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert!(retry >= 1);
        let body: serde_json::Value = refused.json().expect("a JSON error");
        assert!(body["error"].is_string(), "{body}");
        // Another tenant is not held back by this one's quota.
        assert_eq!(client().get(&calm).send().expect("GET").status(), 200);
        assert_eq!(
            heavy.join().expect("thread"),
            504,
            "the deadline still holds"
        );
    });
    let m = h.metrics();
    assert!(counted(
        &m,
        r#"wasmpaste_limit_rejections_total{tenant="strict",kind="cpu_quota"}"#
    ));
    assert!(
        counted(&m, r#"wasmpaste_cpu_throttled_total{tenant="strict"}"#),
        "{m}"
    );
}

#[test]
fn the_quota_and_weight_settings_are_checked_before_the_port_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("t.toml");
    std::fs::write(
        &config,
        "[[tenant]]\nname = \"a\"\ndb = \"a.db\"\nlimits = { cpu_weight = 0, cpu_ms_per_sec = 0 }\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmpaste"))
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tenant `a`: field `limits.cpu_weight`: 0 is out of range"),
        "{err}"
    );
    assert!(
        err.contains("field `limits.cpu_ms_per_sec`: 0 is out of range"),
        "{err}"
    );
}
