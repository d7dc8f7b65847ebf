//! Beyond one machine: several hosts (and Spin) on ONE libSQL server, a real
//! `sqld` on 127.0.0.1. The guest keeps no state between requests and makes
//! every state change one atomic statement, so what is exact on one host
//! must stay exact across hosts: burn-after-read, single-use nonces, rate
//! limits, counters, the schema migration. And a server that dies under
//! load loses no acknowledged write, costs clients 503s (never 500s), and
//! the hosts carry on when it is back. (The API suites themselves run on
//! sqld too: `api_on_sqld`.)

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::sqld::{Sqld, query_i64};
use common::{PARALLEL, Server, error, json, parallel, solved_challenge};

/// A fresh sqld with its data in a temporary directory (kept alive with it).
fn sqld() -> (Sqld, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Sqld::start(&dir.path().join("sqld")).expect("sqld starts");
    (server, dir)
}

/// Two hosts with `env` on one fresh sqld.
fn two_hosts(env: &[(&str, &str)]) -> (Sqld, tempfile::TempDir, [Server; 2]) {
    let (db, dir) = sqld();
    let hosts = [
        Server::on_libsql(&db.url, env),
        Server::on_libsql(&db.url, env),
    ];
    (db, dir, hosts)
}

fn id_of(v: &serde_json::Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

#[test]
fn burn_after_read_has_one_winner_across_two_hosts() {
    let (_db, _dir, hosts) = two_hosts(&[]);
    let created = hosts[0].create_with(
        hosts[0]
            .post("/")
            .header("X-Burn-After-Read", "true")
            .body("only once"),
    );
    let id = id_of(&created);
    let answers = parallel(PARALLEL, |i| {
        let r = hosts[i % 2].get(&format!("/{id}/raw")).send().expect("GET");
        (r.status().as_u16(), r.text().expect("body"))
    });
    let winners: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert_eq!(winners[0].1, "only once");
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 200 || *status == 404),
        "{answers:?}"
    );
}

#[test]
fn a_proof_of_work_used_on_one_host_is_refused_on_the_other() {
    let (_db, _dir, [a, b]) = two_hosts(&[("WASMPASTE_POW_DIFFICULTY", "8")]);
    // The signing key is generated once and stored: B accepts A's challenge.
    let (token, solution) = solved_challenge(&a, "/challenge");
    let submit = |s: &Server, body: &'static str| {
        s.post("/")
            .header("X-PoW-Token", &token)
            .header("X-PoW-Solution", &solution)
            .body(body)
            .send()
            .expect("POST")
    };
    json(submit(&b, "first use, on B"), 201);
    assert_eq!(
        error(submit(&a, "replayed on A"), 400),
        "Proof-of-work failed: Challenge already used"
    );
}

#[test]
fn the_rate_limit_counts_exactly_across_two_hosts() {
    let (_db, _dir, hosts) = two_hosts(&[("WASMPASTE_RATE_MAX", "5")]);
    let statuses = parallel(PARALLEL, |i| {
        hosts[i % 2]
            .post("/")
            .body(format!("paste {i}"))
            .send()
            .expect("POST")
            .status()
            .as_u16()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        PARALLEL - 5,
        "{statuses:?}"
    );
}

#[test]
fn a_short_url_counts_every_hit_on_either_host() {
    let (_db, _dir, hosts) = two_hosts(&[]);
    let created = json(
        hosts[0]
            .post("/s")
            .body("https://example.com/popular")
            .send()
            .expect("POST /s"),
        201,
    );
    let id = id_of(&created);
    const HITS: usize = 3;
    parallel(PARALLEL, |i| {
        for _ in 0..HITS {
            let r = hosts[i % 2].get(&format!("/s/{id}")).send().expect("GET");
            assert_eq!(r.status(), 302);
        }
    });
    let info = json(
        hosts[1].get(&format!("/s/{id}/info")).send().expect("info"),
        200,
    );
    assert_eq!(info["access_count"], PARALLEL * HITS);
}

#[test]
fn hosts_started_at_once_migrate_the_schema_once() {
    let (db, _dir) = sqld();
    let hosts = parallel(4, |_| Server::on_libsql(&db.url, &[]));
    for host in &hosts {
        json(host.get("/health").send().expect("health"), 200);
    }
    assert_eq!(query_i64(&db.url, "SELECT count(*) FROM meta"), 1);
    let version = query_i64(&db.url, "SELECT schema_version FROM meta");
    assert!(version >= 5, "schema {version}");
    // Every host writes and reads the one schema.
    let id = id_of(&hosts[0].create("migrated"));
    for host in &hosts {
        let raw = host.get(&format!("/{id}/raw")).send().expect("GET");
        assert_eq!(raw.text().expect("body"), "migrated");
    }
}

/// Spin's own libSQL client and our host on one server: one fleet.
#[test]
fn spin_and_the_native_host_serve_the_same_pastes() {
    let (db, dir) = sqld();
    let rc = dir.path().join("runtime-config.toml");
    std::fs::write(&rc, common::sqld::runtime_config(&db.url)).expect("runtime config");
    let off = [
        ("WASMPASTE_POW_DIFFICULTY", "0"),
        ("WASMPASTE_RATE_MAX", "0"),
        ("WASMPASTE_DEDUP_MAX", "0"),
    ];
    let spin = Server::on_spin(&off, &["--runtime-config-file", &rc.display().to_string()]);
    let ours = Server::on_libsql(&db.url, &[]);
    let from_spin = id_of(&spin.create("created through Spin"));
    let from_ours = id_of(&ours.create("created through our host"));
    let read = |s: &Server, id: &str| {
        s.get(&format!("/{id}/raw"))
            .send()
            .expect("GET")
            .text()
            .expect("body")
    };
    assert_eq!(read(&ours, &from_spin), "created through Spin");
    assert_eq!(read(&spin, &from_ours), "created through our host");
}

/// Writers while the server is killed and restarted: what was acknowledged
/// is there afterwards, nothing answered 500, the host never exited.
#[test]
fn a_server_killed_under_load_loses_no_acknowledged_write() {
    const WRITERS: usize = 16;
    let (mut db, _dir) = sqld();
    let mut host = Server::on_libsql(&db.url, &[]);
    let acknowledged = Mutex::new(Vec::new());
    let statuses = Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (host, acknowledged, statuses, stop) = (&host, &acknowledged, &statuses, &stop);
            scope.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let content = format!("writer {writer} paste {n}");
                    n += 1;
                    let Ok(r) = host.post("/").body(content.clone()).send() else {
                        continue;
                    };
                    let status = r.status().as_u16();
                    *statuses.lock().expect("lock").entry(status).or_default() += 1;
                    if status == 201 {
                        let id = id_of(&r.json().expect("JSON"));
                        acknowledged.lock().expect("lock").push((id, content));
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(700));
        db.kill();
        std::thread::sleep(Duration::from_millis(700));
        db.restart().expect("sqld restarts");
        // Writes succeed again by themselves.
        let deadline = Instant::now() + Duration::from_secs(10);
        let before = acknowledged.lock().expect("lock").len();
        while acknowledged.lock().expect("lock").len() < before + WRITERS
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let statuses = statuses.into_inner().expect("lock");
    assert!(
        statuses.keys().all(|s| *s == 201 || *s == 503),
        "only 201 and 503: {statuses:?}"
    );
    assert!(statuses.get(&503).is_some_and(|n| *n > 0), "{statuses:?}");
    assert!(host.is_running(), "the host exited");
    let acknowledged = acknowledged.into_inner().expect("lock");
    assert!(acknowledged.len() > 2 * WRITERS, "{}", acknowledged.len());
    for (id, content) in &acknowledged {
        let raw = host.get(&format!("/{id}/raw")).send().expect("GET");
        assert_eq!(raw.status(), 200, "{id} was acknowledged and is gone");
        assert_eq!(&raw.text().expect("body"), content);
    }
}

/// Moving a tenant from its file to a server: `deploy/sqld-import` copies the
/// file, and a host on the server serves what the file held.
#[test]
fn a_tenant_file_moves_into_sqld_with_the_import_script() {
    let before = Server::start();
    let text = id_of(&before.create("written to a file"));
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let blob = id_of(&before.create(binary.clone()));
    let short = id_of(&json(
        before
            .post("/s")
            .body("https://example.com/moved")
            .send()
            .expect("POST /s"),
        201,
    ));
    let file = before.db_path();
    let dir = before.kill();

    let (db, _data) = sqld();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/sqld-import");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&file)
        .arg(&db.url)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rows of"));
    drop(dir);

    let after = Server::on_libsql(&db.url, &[]);
    let read = |id: &str| {
        after
            .get(&format!("/{id}/raw"))
            .send()
            .expect("GET")
            .bytes()
            .expect("body")
            .to_vec()
    };
    assert_eq!(read(&text), b"written to a file");
    assert_eq!(read(&blob), binary);
    let redirect = after.get(&format!("/s/{short}")).send().expect("GET /s");
    assert_eq!(redirect.status(), 302);
    // A second import into the now full database fails as a whole.
    let again = std::process::Command::new("python3")
        .arg(script)
        .arg(&file)
        .arg(&db.url)
        .output()
        .expect("python3 runs");
    assert!(!again.status.success());
}

/// A host may start before its server (a fleet comes up in any order): it
/// serves 503 with `Retry-After` until the server answers, then migrates
/// and serves.
#[test]
fn a_host_started_before_its_server_serves_once_the_server_is_up() {
    let (mut db, _dir) = sqld();
    db.kill();
    let host = Server::on_libsql(&db.url, &[]);
    let early = host.post("/").body("too early").send().expect("POST");
    assert_eq!(early.status(), 503);
    assert_eq!(
        early
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    assert!(
        host.logged("starting without the database"),
        "{:#?}",
        host.logs()
    );
    db.restart().expect("sqld starts");
    let id = id_of(&host.create("on time"));
    let raw = host.get(&format!("/{id}/raw")).send().expect("GET");
    assert_eq!(raw.text().expect("body"), "on time");
}

/// A TLS-terminating proxy in front of sqld (Python's standard library):
/// `https://` as Turso serves it, with a certificate from a private CA.
const TLS_PROXY: &str = r#"
import asyncio, ssl, sys
cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    finally:
        w.close()
async def serve(r, w):
    ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
    await asyncio.gather(pipe(r, uw), pipe(ur, w), return_exceptions=True)
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"#;

#[test]
fn an_https_server_is_reached_with_the_system_trust_store() {
    use std::io::BufRead as _;
    let (db, dir) = sqld();
    let tls = common::tls_server_files(dir.path());
    let port = db.url.rsplit(':').next().expect("port");
    let mut proxy = KillOnDrop(
        std::process::Command::new("python3")
            .args(["-c", TLS_PROXY])
            .arg(&tls.cert)
            .arg(&tls.key)
            .arg(port)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs"),
    );
    let mut line = String::new();
    std::io::BufReader::new(proxy.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the proxy's port");
    let https = format!("https://localhost:{}", line.trim());

    let ca = tls.ca.display().to_string();
    let trusting = Server::on_libsql(&https, &[("SSL_CERT_FILE", &ca)]);
    let id = id_of(&trusting.create("over TLS"));
    let raw = trusting.get(&format!("/{id}/raw")).send().expect("GET");
    assert_eq!(raw.text().expect("body"), "over TLS");
    // The same server is unknown to a host that does not trust the CA: its
    // requests fail as an unavailable database, never in the clear.
    let other = Server::on_libsql(&https, &[]);
    assert_eq!(
        other
            .get(&format!("/{id}/raw"))
            .send()
            .expect("GET")
            .status(),
        503
    );
}

/// A helper process, stopped with the test (also when it fails).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
