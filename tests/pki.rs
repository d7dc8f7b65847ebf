//! The PKI end to end: registration bundles, the CA endpoints, trust levels,
//! the admin, revocation and the audit log, against the real binary. Every
//! certificate, key and PKCS#12 is checked with the `openssl` command-line
//! tool, an implementation independent of ours. Also runs on Spin
//! (`api_on_spin`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ALICE, Server, error, json, solved_challenge};
use reqwest::blocking::Response;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";

/// PKI on, registration proof-of-work at a difficulty tests solve at once.
fn pki_server(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("WASMPASTE_PKI_ENABLED", "1"),
        ("WASMPASTE_PKI_CA_PASSWORD", PASSWORD),
        ("WASMPASTE_REGISTER_POW", "0"),
    ];
    env.extend_from_slice(extra);
    Server::with_env(&env)
}

/// Runs `openssl` with `args`; (success, stdout + stderr).
fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command-line tool (CI installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn openssl_ok(args: &[&str]) -> String {
    let (ok, text) = openssl(args);
    assert!(ok, "openssl {args:?} failed:\n{text}");
    text
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("test helper step");
    path
}

fn p(path: &Path) -> &str {
    path.to_str().expect("test helper step")
}

/// `openssl x509 -fingerprint -sha1` as our headers write it.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = openssl_ok(&["x509", "-in", p(cert), "-noout", "-fingerprint", "-sha1"]);
    out.trim()
        .rsplit('=')
        .next()
        .expect("test helper step")
        .replace(':', "")
        .to_ascii_lowercase()
}

/// Writes one part of a PKCS#12 bundle (empty password) to `out` as PEM:
/// `-clcerts -nokeys`, `-cacerts -nokeys` or `-nocerts -nodes`.
fn extract(bundle: &Path, part: [&str; 2], out: &Path) {
    openssl_ok(&[
        "pkcs12",
        "-in",
        p(bundle),
        "-passin",
        "pass:",
        part[0],
        part[1],
        "-out",
        p(out),
    ]);
}

/// Asserts that `openssl x509 -text` of `cert` shows every one of `expected`.
fn assert_x509_shows(cert: &Path, expected: &[&str]) {
    let text = openssl_ok(&["x509", "-in", p(cert), "-noout", "-text"]);
    for e in expected {
        assert!(text.contains(e), "{e} missing:\n{text}");
    }
}

/// Asserts that the private key in `key` belongs to the certificate in `cert`.
fn assert_key_matches(cert: &Path, key: &Path) {
    let cert_pub = openssl_ok(&["x509", "-in", p(cert), "-noout", "-pubkey"]);
    let key_pub = openssl_ok(&["pkey", "-in", p(key), "-pubout"]);
    assert_eq!(cert_pub.trim(), key_pub.trim());
}

fn register(s: &Server, body: &str, who: Option<&str>) -> Response {
    let mut req = s.post("/register").body(body.to_owned());
    if let Some(fp) = who {
        req = req.header("X-SSL-Client-SHA1", fp);
    }
    req.send().expect("POST /register")
}

/// Registers and returns (fingerprint, p12 bytes).
fn registered(s: &Server, common_name: &str) -> (String, Vec<u8>) {
    let r = register(s, &format!(r#"{{"common_name":"{common_name}"}}"#), None);
    assert_eq!(r.status(), 200);
    let fp = r.headers()["x-fingerprint-sha1"]
        .to_str()
        .expect("test helper step")
        .to_owned();
    (fp, r.bytes().expect("test helper step").to_vec())
}

fn serial_of(s: &Server, fp: &str) -> String {
    let certs = json(
        s.get("/pki/certs")
            .header("X-SSL-Client-SHA1", fp)
            .send()
            .expect("test helper step"),
        200,
    );
    certs["certificates"]
        .as_array()
        .expect("test helper step")
        .iter()
        .find(|c| c["fingerprint_sha1"] == fp)
        .expect("own certificate listed")["serial"]
        .as_str()
        .expect("test helper step")
        .to_owned()
}

#[test]
fn register_returns_a_pkcs12_that_openssl_reads_and_verifies() {
    let s = pki_server(&[]);
    let r = register(&s, r#"{"common_name":"alice"}"#, None);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-pkcs12");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"client.p12\""
    );
    let fp = r.headers()["x-fingerprint-sha1"]
        .to_str()
        .unwrap()
        .to_owned();
    let expires: i64 = r.headers()["x-certificate-expires"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let p12 = r.bytes().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let bundle = write(dir.path(), "client.p12", &p12);
    // OpenSSL 3 defaults, empty password, no legacy provider.
    let all = openssl_ok(&["pkcs12", "-in", p(&bundle), "-passin", "pass:", "-nodes"]);
    assert_eq!(
        all.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{all}"
    );
    assert_eq!(
        all.matches("-----BEGIN PRIVATE KEY-----").count(),
        1,
        "{all}"
    );
    let info = openssl_ok(&[
        "pkcs12",
        "-info",
        "-in",
        p(&bundle),
        "-passin",
        "pass:",
        "-nodes",
    ]);
    assert!(info.contains("AES-256-CBC"), "{info}");
    assert!(info.contains("sha256"), "{info}");

    let client = dir.path().join("client.pem");
    extract(&bundle, ["-clcerts", "-nokeys"], &client);
    let ca = dir.path().join("ca.pem");
    extract(&bundle, ["-cacerts", "-nokeys"], &ca);
    let key = dir.path().join("client.key");
    extract(&bundle, ["-nocerts", "-nodes"], &key);

    // The header is exactly what a TLS proxy would forward for this certificate.
    assert_eq!(openssl_fingerprint(&client), fp);
    let verify = openssl_ok(&["verify", "-CAfile", p(&ca), p(&client)]);
    assert!(verify.contains(": OK"), "{verify}");

    assert_x509_shows(
        &client,
        &[
            "Version: 3",
            "ecdsa-with-SHA384",
            "NIST CURVE: P-384",
            "CA:FALSE",
            "Digital Signature",
            "TLS Web Client Authentication",
            "X509v3 Authority Key Identifier",
            "CN = alice",
        ],
    );
    assert_x509_shows(
        &ca,
        &[
            "CA:TRUE",
            "Certificate Sign, CRL Sign",
            "X509v3 Basic Constraints: critical",
            "X509v3 Key Usage: critical",
            "X509v3 Subject Key Identifier",
            "CN = wasmpaste CA",
        ],
    );
    assert_key_matches(&client, &key);

    // Serial: 32 hex digits here, the same integer in openssl's output.
    let serial = serial_of(&s, &fp);
    assert_eq!(serial.len(), 32);
    let shown = openssl_ok(&["x509", "-in", p(&client), "-noout", "-serial"]);
    let shown = shown
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    assert_eq!(
        shown.trim_start_matches('0'),
        serial.trim_start_matches('0')
    );
    let certs = json(
        s.get("/pki/certs")
            .header("X-SSL-Client-SHA1", &fp)
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(certs["count"], 1);
    let listed = &certs["certificates"][0];
    assert_eq!(listed["common_name"], "alice");
    assert_eq!(listed["status"], "valid");
    assert_eq!(listed["expires_at"].as_i64(), Some(expires));
    assert_eq!(
        expires - listed["created_at"].as_i64().unwrap(),
        365 * 86_400,
        "pki_cert_days"
    );
}

#[test]
fn the_ca_endpoints() {
    let off = Server::start();
    for path in ["/pki", "/pki/status"] {
        assert_eq!(
            json(off.get(path).send().unwrap(), 200),
            serde_json::json!({"enabled": false})
        );
    }
    for r in [
        off.post("/pki/ca").send().unwrap(),
        off.get("/pki/ca.crt").send().unwrap(),
        off.post("/pki/issue")
            .body(r#"{"common_name":"x"}"#)
            .send()
            .unwrap(),
        off.get("/pki/certs").send().unwrap(),
        off.post(&format!("/pki/revoke/{}", "0".repeat(32)))
            .send()
            .unwrap(),
    ] {
        assert_eq!(error(r, 404), "PKI not enabled");
    }

    let s = pki_server(&[]);
    let status = json(s.get("/pki").send().unwrap(), 200);
    assert_eq!(status["ca_exists"], false);
    assert_eq!(status["hint"], "POST /pki/ca to generate CA");
    assert_eq!(
        error(s.get("/pki/ca.crt").send().unwrap(), 404),
        "CA not initialized"
    );
    let r = s
        .post("/pki/issue")
        .body(r#"{"common_name":"bob"}"#)
        .send()
        .unwrap();
    assert_eq!(error(r, 404), "CA not initialized");
    assert_eq!(
        error(s.post("/pki/issue").send().unwrap(), 400),
        "common_name required"
    );
    let r = s.post("/pki/ca").body("{oops").send().unwrap();
    assert_eq!(error(r, 400), "Invalid JSON body");
    let long = format!(r#"{{"common_name":"{}"}}"#, "x".repeat(65));
    let r = s.post("/pki/ca").body(long).send().unwrap();
    assert_eq!(error(r, 400), "Invalid common_name: at most 64 characters");

    let created = json(
        s.post("/pki/ca")
            .body(r#"{"common_name":"My CA"}"#)
            .send()
            .unwrap(),
        201,
    );
    assert_eq!(created["message"], "CA generated");
    assert_eq!(created["common_name"], "My CA");
    assert_eq!(created["download"], "/pki/ca.crt");
    assert_eq!(
        created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap(),
        3650 * 86_400
    );
    assert_eq!(
        error(s.post("/pki/ca").send().unwrap(), 409),
        "CA already exists"
    );
    let status = json(s.get("/pki").send().unwrap(), 200);
    assert_eq!(status["ca_exists"], true);
    assert_eq!(status["key_algorithm"], "ec:secp384r1");
    assert_eq!(status["fingerprint_sha1"], created["fingerprint_sha1"]);
    // The roadmap's name for the same answer.
    assert_eq!(json(s.get("/pki/status").send().unwrap(), 200), status);

    let r = s.get("/pki/ca.crt").send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-pem-file");
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.pem", &r.bytes().unwrap());
    assert_eq!(
        openssl_fingerprint(&ca),
        created["fingerprint_sha1"].as_str().unwrap()
    );

    // Issue: certificate and key as PEM, chained to the CA, owned by the requester.
    let issued = json(
        s.post("/pki/issue")
            .header("X-SSL-Client-SHA1", ALICE)
            .body(r#"{"common_name":"bob"}"#)
            .send()
            .unwrap(),
        201,
    );
    assert_eq!(issued["message"], "Certificate issued");
    assert_eq!(issued["common_name"], "bob");
    let cert = write(
        dir.path(),
        "bob.pem",
        issued["certificate_pem"].as_str().unwrap().as_bytes(),
    );
    let key = write(
        dir.path(),
        "bob.key",
        issued["private_key_pem"].as_str().unwrap().as_bytes(),
    );
    assert!(openssl_ok(&["verify", "-CAfile", p(&ca), p(&cert)]).contains(": OK"));
    assert_eq!(
        openssl_fingerprint(&cert),
        issued["fingerprint_sha1"].as_str().unwrap()
    );
    assert_key_matches(&cert, &key);
    assert_x509_shows(&cert, &["Issuer: O = wasmpaste, CN = My CA"]);

    // The requester sees what it requested.
    let mine = json(
        s.get("/pki/certs")
            .header("X-SSL-Client-SHA1", ALICE)
            .send()
            .unwrap(),
        200,
    );
    assert_eq!(mine["count"], 1);
    assert_eq!(mine["certificates"][0]["issued_to"], ALICE);
    let anonymous = json(s.get("/pki/certs").send().unwrap(), 200);
    assert_eq!(
        anonymous,
        serde_json::json!({"certificates": [], "count": 0})
    );
}

#[test]
fn registration_needs_its_own_proof_of_work_and_the_ca_password() {
    let s = Server::with_env(&[
        ("WASMPASTE_PKI_CA_PASSWORD", PASSWORD),
        ("WASMPASTE_REGISTER_POW", "10"),
        ("WASMPASTE_POW_DIFFICULTY", "4"),
    ]);
    let body = json(s.post("/register").send().unwrap(), 400);
    assert_eq!(body["error"], "Proof-of-work required");
    assert_eq!(body["hint"], "GET /register/challenge for a new challenge");

    // A paste challenge is signed for 4 bits: not enough to register.
    let (token, solution) = solved_challenge(&s, "/challenge");
    let r = s
        .post("/register")
        .header("X-PoW-Token", &token)
        .header("X-PoW-Solution", &solution)
        .send()
        .unwrap();
    assert!(error(r, 400).starts_with("Proof-of-work failed"));

    let (token, solution) = solved_challenge(&s, "/register/challenge");
    let r = s
        .post("/register")
        .header("X-PoW-Token", &token)
        .header("X-PoW-Solution", &solution)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .post("/register")
        .header("X-PoW-Token", &token)
        .header("X-PoW-Solution", &solution)
        .send()
        .unwrap();
    assert_eq!(
        error(r, 400),
        "Proof-of-work failed: Challenge already used"
    );

    let no_password = Server::with_env(&[("WASMPASTE_REGISTER_POW", "0")]);
    assert_eq!(
        error(no_password.post("/register").send().unwrap(), 500),
        "PKI_CA_PASSWORD not configured"
    );
    let pki_no_password = Server::with_env(&[("WASMPASTE_PKI_ENABLED", "1")]);
    assert_eq!(
        error(pki_no_password.post("/pki/ca").send().unwrap(), 500),
        "PKI_CA_PASSWORD not configured"
    );
}

#[test]
fn trust_levels_admin_rights_and_revocation() {
    let s = pki_server(&[]);
    let (admin, _) = registered(&s, "admin");
    let (user, _) = registered(&s, "user");

    // Trusted clients get the trusted default expiry; other fingerprints the untrusted one.
    let lifetime = |fp: &str| {
        let created = json(
            s.post("/")
                .header("X-SSL-Client-SHA1", fp)
                .body("x")
                .send()
                .unwrap(),
            201,
        );
        created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap()
    };
    assert_eq!(lifetime(&user), 2_592_000);
    assert_eq!(lifetime(ALICE), 604_800);

    // The first registered certificate is the admin.
    let alice_paste = json(
        s.post("/")
            .header("X-SSL-Client-SHA1", ALICE)
            .body("alice's")
            .send()
            .unwrap(),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_url = json(
        s.post("/s")
            .header("X-SSL-Client-SHA1", ALICE)
            .body("https://alice.example/")
            .send()
            .unwrap(),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let everything = json(
        s.get("/pastes?all=1")
            .header("X-SSL-Client-SHA1", &admin)
            .send()
            .unwrap(),
        200,
    );
    assert!(everything["total"].as_i64().unwrap() >= 3, "{everything}");
    let r = s
        .get("/pastes?all=1")
        .header("X-SSL-Client-SHA1", &user)
        .send()
        .unwrap();
    assert_eq!(error(r, 403), "Admin access required");
    let r = s
        .delete(&format!("/{alice_paste}"))
        .header("X-SSL-Client-SHA1", &user)
        .send()
        .unwrap();
    assert_eq!(error(r, 403), "Permission denied");
    let r = s
        .delete(&format!("/{alice_paste}"))
        .header("X-SSL-Client-SHA1", &admin)
        .send()
        .unwrap();
    assert_eq!(json(r, 200)["message"], "Paste deleted");
    let r = s
        .delete(&format!("/s/{alice_url}"))
        .header("X-SSL-Client-SHA1", &admin)
        .send()
        .unwrap();
    assert_eq!(json(r, 200)["message"], "Short URL deleted");

    // Revocation: by the requester of a certificate, or its holder.
    let issued = json(
        s.post("/pki/issue")
            .header("X-SSL-Client-SHA1", &admin)
            .body(r#"{"common_name":"device"}"#)
            .send()
            .unwrap(),
        201,
    );
    let serial = issued["serial"].as_str().unwrap().to_owned();
    let device = issued["fingerprint_sha1"].as_str().unwrap().to_owned();
    let revoke = |serial: &str, who: Option<&str>| {
        let mut req = s.post(&format!("/pki/revoke/{serial}"));
        if let Some(fp) = who {
            req = req.header("X-SSL-Client-SHA1", fp);
        }
        req.send().unwrap()
    };
    assert_eq!(error(revoke(&serial, None), 401), "Authentication required");
    assert_eq!(
        error(revoke(&serial, Some(&user)), 403),
        "Permission denied"
    );
    assert_eq!(
        error(revoke(&"f".repeat(32), Some(&admin)), 404),
        "Certificate not found"
    );
    assert_eq!(
        error(revoke("not-a-serial", Some(&admin)), 404),
        "Certificate not found"
    );
    let r = revoke(&serial, Some(&admin));
    let body = json(r, 200);
    assert_eq!(body["message"], "Certificate revoked");
    assert_eq!(body["serial"], serial.as_str());
    assert_eq!(
        error(revoke(&serial, Some(&admin)), 409),
        "Certificate already revoked"
    );

    // A revoked certificate is anonymous from now on, and the attempt is audited.
    let created = json(
        s.post("/")
            .header("X-SSL-Client-SHA1", &device)
            .body("y")
            .send()
            .unwrap(),
        201,
    );
    assert!(created.get("owner").is_none(), "{created}");
    let r = s
        .get("/pastes")
        .header("X-SSL-Client-SHA1", &device)
        .send()
        .unwrap();
    assert_eq!(error(r, 401), "Authentication required");
    let mine = json(
        s.get("/pki/certs")
            .header("X-SSL-Client-SHA1", &admin)
            .send()
            .unwrap(),
        200,
    );
    let statuses: Vec<(&str, &str)> = mine["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["common_name"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(statuses.contains(&("device", "revoked")), "{statuses:?}");
    assert!(statuses.contains(&("admin", "valid")), "{statuses:?}");

    // A holder revokes its own certificate.
    let user_serial = serial_of(&s, &user);
    assert_eq!(revoke(&user_serial, Some(&user)).status(), 200);

    let audit: Vec<Value> = s
        .logs_when(|lines| lines.iter().filter(|l| l.contains("cert_revoked")).count() >= 2)
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["logger"] == "app.audit")
        .collect();
    let events: Vec<&str> = audit.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events.iter().filter(|e| **e == "cert_issued").count(),
        3,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| **e == "cert_revoked").count(),
        2,
        "{events:?}"
    );
    let failure = audit
        .iter()
        .find(|l| l["event"] == "auth_failure")
        .expect("an auth_failure line");
    assert_eq!(failure["outcome"], "failure");
    assert_eq!(failure["level"], "WARNING");
    assert_eq!(failure["details"]["fingerprint"], device.as_str());
    assert_eq!(failure["details"]["reason"], "certificate revoked");
    assert_eq!(failure["client_ip"], "127.0.0.1");
    let issued_line = audit.iter().find(|l| l["event"] == "cert_issued").unwrap();
    assert_eq!(issued_line["details"]["type"], "registration");
    assert_eq!(issued_line["details"]["common_name"], "admin");
    assert!(issued_line["time"].is_string());
}

#[test]
fn the_ca_key_is_stored_encrypted_under_the_password() {
    let s = pki_server(&[]);
    registered(&s, "someone");
    let db = s.db_path();
    let dir = s.kill();

    // Everything SQLite wrote: the database and its write-ahead log.
    let mut stored = Vec::new();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    for file in [db, wal] {
        if let Ok(bytes) = std::fs::read(file) {
            stored.extend(bytes);
        }
    }
    let text = String::from_utf8_lossy(&stored);
    assert!(
        !text.contains("BEGIN PRIVATE KEY"),
        "a plain private key was stored"
    );
    assert!(!text.contains("BEGIN EC PRIVATE KEY"));
    let begin = text
        .find("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        .expect("the CA key, encrypted");
    let end_marker = "-----END ENCRYPTED PRIVATE KEY-----";
    let end = text[begin..].find(end_marker).unwrap() + begin + end_marker.len();
    let keys = tempfile::tempdir().unwrap();
    let pem = write(
        keys.path(),
        "ca.key",
        format!("{}\n", &text[begin..end]).as_bytes(),
    );
    let decrypted = openssl_ok(&[
        "pkey",
        "-in",
        p(&pem),
        "-passin",
        &format!("pass:{PASSWORD}"),
    ]);
    assert!(decrypted.contains("BEGIN PRIVATE KEY"));
    let (ok, _) = openssl(&["pkey", "-in", p(&pem), "-passin", "pass:wrong password"]);
    assert!(!ok, "the CA key opened with a wrong password");

    // The server with another password cannot sign, and says so without details.
    let s = Server::start_in(
        dir,
        &[
            ("WASMPASTE_PKI_ENABLED", "1"),
            ("WASMPASTE_PKI_CA_PASSWORD", "not the password"),
            ("WASMPASTE_REGISTER_POW", "0"),
        ],
    );
    assert_eq!(
        error(s.post("/register").send().unwrap(), 500),
        "Certificate generation failed"
    );
    let r = s
        .post("/pki/issue")
        .body(r#"{"common_name":"x"}"#)
        .send()
        .unwrap();
    assert_eq!(error(r, 500), "Certificate issuance failed");
    assert!(s.logged("does not decrypt"), "{:#?}", s.logs());
}

#[test]
fn concurrent_first_registrations_share_one_ca() {
    let server = pki_server(&[]);
    let s = &server;
    let bundles: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| scope.spawn(move || registered(s, &format!("user{i}")).1))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let status = json(s.get("/pki").send().unwrap(), 200);
    let ca_fp = status["fingerprint_sha1"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, bundle) in bundles.iter().enumerate() {
        let file = write(dir.path(), &format!("{i}.p12"), bundle);
        let ca = dir.path().join(format!("{i}-ca.pem"));
        extract(&file, ["-cacerts", "-nokeys"], &ca);
        assert_eq!(openssl_fingerprint(&ca), ca_fp, "bundle {i} has another CA");
    }
}
