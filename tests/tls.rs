//! The native host's own HTTPS listener (`--tls-listen`): real TLS over
//! loopback with real certificates, made by `openssl` or issued by the
//! server's own `POST /register`, and real clients (`curl`, `openssl
//! s_client`, a rustls client).

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{make_ca, make_key_and_csr, make_leaf, openssl_in as openssl};
use serde_json::Value;

const PKI_PASSWORD: &str = "tls-test-ca-password";

/// A host with an HTTPS listener.
struct Host {
    child: Child,
    http: SocketAddr,
    https: SocketAddr,
    admin: Option<SocketAddr>,
    logs: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// The host on `dir/db`, HTTPS with `cert`/`key` (and `args`), abuse
    /// controls off, the PKI usable.
    fn start(dir: tempfile::TempDir, cert: &Path, key: &Path, args: &[&str]) -> Self {
        Self::try_start(dir, cert, key, args).expect("the host starts")
    }

    fn try_start(
        dir: tempfile::TempDir,
        cert: &Path,
        key: &Path,
        args: &[&str],
    ) -> Result<Self, String> {
        let mut cmd = Command::new(common::host_binary());
        cmd.args(["--tls-listen", "127.0.0.1:0", "--tls-cert"])
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir.path());
        if !args.contains(&"--config") {
            cmd.arg("--db").arg(dir.path().join("paste.db"));
        }
        let env = [
            ("WASMPASTE_POW_DIFFICULTY", "0"),
            ("WASMPASTE_REGISTER_POW", "0"),
            ("WASMPASTE_RATE_MAX", "0"),
            ("WASMPASTE_DEDUP_MAX", "0"),
            ("WASMPASTE_PKI_CA_PASSWORD", PKI_PASSWORD),
            ("WASMPASTE_PKI_ENABLED", "true"),
        ];
        let (child, http, admin, logs) = common::spawn_command(cmd, &env)?;
        let https = logs
            .lock()
            .map_err(|e| e.to_string())?
            .iter()
            .find_map(|l| {
                l.strip_prefix("wasmpaste listening on https://")?
                    .parse()
                    .ok()
            })
            .ok_or("no https line")?;
        Ok(Self {
            child,
            http,
            https,
            admin,
            logs,
            dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https.port())
    }

    fn metrics(&self) -> String {
        let admin = self.admin.expect("admin listener");
        reqwest::blocking::get(format!("http://{admin}/metrics"))
            .and_then(reqwest::blocking::Response::text)
            .expect("metrics")
    }

    fn logged(&self, needle: &str) -> bool {
        self.logs
            .lock()
            .is_ok_and(|l| l.iter().any(|line| line.contains(needle)))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `curl` against the host, trusting `ca`; `--resolve` pins every name the
/// test uses to loopback. Returns the exit code and stdout.
/// `openssl s_client` against the host's HTTPS port with `args`, its input
/// closed at once (connect, handshake, quit): what it printed.
fn s_client(host: &Host, args: &[&str]) -> String {
    let connect = host.https.to_string();
    let mut all = vec!["s_client", "-connect", connect.as_str()];
    all.extend_from_slice(args);
    openssl(host.dir.path(), &all)
}

fn curl(host: &Host, ca: &Path, args: &[&str]) -> (i32, String) {
    let port = host.https.port();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "--cacert"]).arg(ca);
    for name in ["localhost", "a.test", "b.test", "other.test"] {
        cmd.args(["--resolve", &format!("{name}:{port}:127.0.0.1")]);
    }
    let out = cmd.args(args).output().expect("curl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[allow(clippy::panic)] // test harness: a failed expectation is a failed test
fn curl_json(host: &Host, ca: &Path, args: &[&str]) -> Value {
    let (code, out) = curl(host, ca, args);
    assert_eq!(code, 0, "curl {args:?} failed: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A client certificate of CA `ca` that expired in 2020 (`openssl ca` sets
/// the dates; `x509 -req` cannot).
fn make_expired_client(dir: &Path, ca: &str, name: &str) {
    std::fs::write(dir.join("index.txt"), "").expect("write");
    std::fs::write(dir.join("serial"), "1000\n").expect("write");
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n",
    )
    .expect("write");
    make_key_and_csr(dir, name, "/CN=expired");
    let (csr, ca_crt, ca_key, crt) = (
        format!("{name}.csr"),
        format!("{ca}.crt"),
        format!("{ca}.key"),
        format!("{name}.crt"),
    );
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            &ca_crt,
            "-keyfile",
            &ca_key,
            "-in",
            &csr,
            "-out",
            &crt,
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-notext",
        ],
    );
}

/// The server's TLS files: CA `tls-ca`, certificate `server` for localhost.
fn server_files(dir: &Path) -> common::TlsFiles {
    common::tls_server_files(dir)
}

/// Registers over HTTPS and unpacks the PKCS#12 into `who.crt`/`who.key`;
/// returns the announced fingerprint.
fn register(host: &Host, ca: &Path, who: &str, base: &str) -> String {
    let p12 = host.path(&format!("{who}.p12"));
    let headers = host.path(&format!("{who}.headers"));
    let (code, _) = curl(
        host,
        ca,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!(r#"{{"common_name":"{who}"}}"#),
            "-D",
            &headers.display().to_string(),
            "-o",
            &p12.display().to_string(),
            &format!("{base}/register"),
        ],
    );
    assert_eq!(code, 0, "register");
    let headers = std::fs::read_to_string(headers).expect("headers");
    assert!(headers.starts_with("HTTP/2 200"), "{headers}");
    let fingerprint = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-fingerprint-sha1:")
                .map(|v| v.trim().to_owned())
        })
        .expect("X-Fingerprint-SHA1");
    let dir = host.dir.path();
    let p12 = p12.display().to_string();
    // The certificate, then the key, out of the bundle (empty password).
    for (only, out) in [
        (["-nokeys", "-clcerts"], format!("{who}.crt")),
        (["-nocerts", "-nodes"], format!("{who}.key")),
    ] {
        let args = [
            &["pkcs12", "-in", &p12, "-passin", "pass:"][..],
            &only,
            &["-out", &out],
        ];
        openssl(dir, &args.concat());
    }
    fingerprint
}

fn cert_args(host: &Host, who: &str) -> [String; 4] {
    [
        "--cert".into(),
        host.path(&format!("{who}.crt")).display().to_string(),
        "--key".into(),
        host.path(&format!("{who}.key")).display().to_string(),
    ]
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn https_serves_the_api_over_http1_and_http2_to_curl_openssl_and_the_plain_port_stays() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_files(dir.path());
    let host = Host::start(dir, &tls.cert, &tls.key, &[]);

    let created = curl_json(
        &host,
        &tls.ca,
        &["--http1.1", "--data-binary", "over tls", &host.url("/")],
    );
    let id = created["id"].as_str().expect("id");
    let (code, body) = curl(
        &host,
        &tls.ca,
        &["--http2", &host.url(&format!("/{id}/raw"))],
    );
    assert_eq!((code, body.as_str()), (0, "over tls"));
    let (_, version) = curl(
        &host,
        &tls.ca,
        &[
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            &host.url("/health"),
        ],
    );
    assert_eq!(version, "2", "ALPN should pick HTTP/2");
    // HTTP/2 has no Host header: the component still sees the authority the
    // client asked for (the index describes the API under it).
    let (_, index) = curl(&host, &tls.ca, &["--http2", &host.url("/")]);
    let authority = format!("localhost:{}", host.https.port());
    assert!(index.contains(&authority), "{index}");
    let h2 = curl_json(
        &host,
        &tls.ca,
        &["--http2", "--data-binary", "h2 body", &host.url("/")],
    );
    assert_eq!(
        h2["raw"].as_str().map(|r| r.ends_with("/raw")),
        Some(true),
        "{h2}"
    );

    // openssl s_client: TLS 1.3, h2 offered and chosen, the server's chain.
    let ca = tls.ca.to_str().expect("a UTF-8 path");
    let out = s_client(
        &host,
        &[
            "-servername",
            "localhost",
            "-alpn",
            "h2,http/1.1",
            "-CAfile",
            ca,
        ],
    );
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("TLSv1.3"), "{out}");

    // A second connection resumes the first one's session: the site's
    // config (and its session cache) is built once, not per handshake.
    let resumed = |flag: &str| {
        s_client(
            &host,
            &["-tls1_2", "-servername", "localhost", flag, "session.pem"],
        )
    };
    let first = resumed("-sess_out");
    assert!(first.contains("New, TLSv1.2"), "{first}");
    let second = resumed("-sess_in");
    assert!(second.contains("Reused, TLSv1.2"), "{second}");

    // TLS 1.1 is refused.
    let old = Command::new("curl")
        .args(["-sS", "--tls-max", "1.1", "--cacert"])
        .arg(&tls.ca)
        .arg(host.url("/health"))
        .output()
        .expect("curl");
    assert!(!old.status.success(), "TLS 1.1 must be refused");

    // The plain listener serves the same tenant.
    let plain = reqwest::blocking::get(format!("http://{}/{id}/raw", host.http))
        .and_then(reqwest::blocking::Response::text)
        .expect("plain read");
    assert_eq!(plain, "over tls");
}

#[test]
#[allow(clippy::panic)]
fn certificates_from_the_servers_own_register_identify_their_owner_and_nothing_else_does() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_files(dir.path());
    make_leaf(dir.path(), "tls-ca", "foreign", "mallory", None);
    let host = Host::start(dir, &tls.cert, &tls.key, &["--client-ca", "pki"]);
    let ca = &tls.ca;

    // Before any CA exists, a certificate is refused, not ignored.
    let foreign = cert_args(&host, "foreign");
    let (code, _) = curl(
        &host,
        ca,
        &[&refs(&foreign)[..], &[&host.url("/pastes")]].concat(),
    );
    assert_ne!(
        code, 0,
        "a certificate no CA of ours issued must fail the handshake"
    );

    // The certificate POST /register hands out works on the next connection.
    let fingerprint = register(&host, ca, "alice", &host.url(""));
    let alice = cert_args(&host, "alice");
    let mine = curl_json(
        &host,
        ca,
        &[
            &refs(&alice)[..],
            &["--data-binary", "mine", &host.url("/")],
        ]
        .concat(),
    );
    assert_eq!(mine["owner"], fingerprint.as_str(), "{mine}");
    let listed = curl_json(
        &host,
        ca,
        &[&refs(&alice)[..], &[&host.url("/pastes")]].concat(),
    );
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["pastes"][0]["id"], mine["id"]);

    // No certificate: anonymous. A client claiming the fingerprint in a
    // header (and a proxy secret) is anonymous too: the host owns them here.
    let anonymous = curl_json(&host, ca, &["--data-binary", "theirs", &host.url("/")]);
    assert!(
        anonymous.get("owner").is_none_or(Value::is_null),
        "{anonymous}"
    );
    let (_, listed) = curl(
        &host,
        ca,
        &[
            "-H",
            &format!("X-SSL-Client-SHA1: {fingerprint}"),
            "-H",
            "X-Proxy-Secret: guess",
            &host.url("/pastes"),
        ],
    );
    assert!(listed.contains("Authentication required"), "{listed}");

    // Another CA's certificate fails the handshake, with a log line.
    let (code, _) = curl(
        &host,
        ca,
        &[&refs(&foreign)[..], &[&host.url("/pastes")]].concat(),
    );
    assert_ne!(code, 0, "a foreign certificate must fail the handshake");
    assert!(host.logged("refused a client certificate"));

    // Revoked through the API: still connects, anonymous from then on.
    let certs = curl_json(
        &host,
        ca,
        &[&refs(&alice)[..], &[&host.url("/pki/certs")]].concat(),
    );
    let serial = certs["certificates"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["fingerprint_sha1"] == fingerprint.as_str())
        })
        .and_then(|c| c["serial"].as_str())
        .unwrap_or_else(|| panic!("own certificate listed: {certs}"))
        .to_owned();
    let revoked = curl_json(
        &host,
        ca,
        &[
            &refs(&alice)[..],
            &["-X", "POST", &host.url(&format!("/pki/revoke/{serial}"))],
        ]
        .concat(),
    );
    assert!(revoked.to_string().contains("revoked"), "{revoked}");
    let (code, after) = curl(
        &host,
        ca,
        &[&refs(&alice)[..], &[&host.url("/pastes")]].concat(),
    );
    assert_eq!(code, 0, "a revoked certificate still connects");
    assert!(after.contains("Authentication required"), "{after}");

    let metrics = host.metrics();
    assert!(
        common::counted(
            &metrics,
            "wasmpaste_tls_handshakes_total{outcome=\"client_cert\"}"
        ),
        "{metrics}"
    );
    assert!(
        common::counted(
            &metrics,
            "wasmpaste_tls_handshakes_total{outcome=\"bad_client_cert\"}"
        ),
        "{metrics}"
    );
    assert!(
        common::counted(
            &metrics,
            "wasmpaste_tls_handshakes_total{outcome=\"no_client_cert\"}"
        ),
        "{metrics}"
    );
    assert!(
        common::counted(
            &metrics,
            "wasmpaste_client_cert_requests_total{tenant=\"default\"}"
        ),
        "{metrics}"
    );
}

#[test]
fn a_ca_bundle_accepts_its_certificates_and_refuses_expired_and_foreign_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_files(dir.path());
    make_ca(dir.path(), "users");
    make_leaf(dir.path(), "users", "bob", "bob", None);
    make_leaf(dir.path(), "tls-ca", "foreign", "mallory", None);
    make_expired_client(dir.path(), "users", "expired");
    let bundle = dir.path().join("users.crt");
    let host = Host::start(
        dir,
        &tls.cert,
        &tls.key,
        &["--client-ca", &bundle.display().to_string()],
    );
    let ca = &tls.ca;

    let bob_der = openssl(
        host.dir.path(),
        &["x509", "-in", "bob.crt", "-noout", "-fingerprint", "-sha1"],
    );
    let bob_fp: String = bob_der
        .split('=')
        .nth(1)
        .expect("fingerprint")
        .trim()
        .replace(':', "")
        .to_ascii_lowercase();
    let bob = cert_args(&host, "bob");
    let created = curl_json(
        &host,
        ca,
        &[&refs(&bob)[..], &["--data-binary", "bob's", &host.url("/")]].concat(),
    );
    assert_eq!(created["owner"], bob_fp.as_str(), "{created}");

    for who in ["expired", "foreign"] {
        let args = cert_args(&host, who);
        let (code, out) = curl(
            &host,
            ca,
            &[&refs(&args)[..], &["--data-binary", "x", &host.url("/")]].concat(),
        );
        assert_ne!(code, 0, "{who}: the handshake must fail, got {out}");
    }
    assert!(host.logged("refused a client certificate"));
}

#[test]
fn sni_picks_each_tenants_certificate_and_an_identity_stays_with_its_tenant() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_files(dir.path());
    make_leaf(dir.path(), "tls-ca", "a", "a.test", Some("DNS:a.test"));
    make_leaf(dir.path(), "tls-ca", "b", "b.test", Some("DNS:b.test"));
    std::fs::write(
        dir.path().join("tenants.toml"),
        r#"
[[tenant]]
name = "a"
hosts = ["a.test"]
db = "a.db"
tls_cert = "a.crt"
tls_key = "a.key"
client_ca = "pki"
# Behind a proxy too: the host's TLS listener vouches with the secret.
variables = { proxy_secret = "only-the-proxy-knows" }

[[tenant]]
name = "b"
hosts = ["b.test"]
db = "b.db"
tls_cert = "b.crt"
tls_key = "b.key"
client_ca = "pki"

[[tenant]]
name = "rest"
db = "rest.db"
"#,
    )
    .expect("write tenants");
    let host = Host::start(dir, &tls.cert, &tls.key, &["--config", "tenants.toml"]);
    let port = host.https.port();

    let subject = |name: &str| {
        s_client(&host, &["-servername", name])
            .lines()
            .find(|l| l.starts_with("subject="))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        subject("a.test").contains("CN = a.test"),
        "{}",
        subject("a.test")
    );
    assert!(
        subject("b.test").contains("CN = b.test"),
        "{}",
        subject("b.test")
    );
    assert!(
        subject("other.test").contains("CN = localhost"),
        "{}",
        subject("other.test")
    );

    // Each tenant's users are its own CA's.
    let url = |name: &str, path: &str| format!("https://{name}:{port}{path}");
    let fp = register(&host, &tls.ca, "alice", &url("a.test", ""));
    let alice = cert_args(&host, "alice");
    let mine = curl_json(
        &host,
        &tls.ca,
        &[
            &refs(&alice)[..],
            &["--data-binary", "a's", &url("a.test", "/")],
        ]
        .concat(),
    );
    assert_eq!(mine["owner"], fp.as_str());
    // Tenant b's CA does not know alice.
    curl_json(
        &host,
        &tls.ca,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{}",
            &url("b.test", "/pki/ca"),
        ],
    );
    let (code, _) = curl(
        &host,
        &tls.ca,
        &[&refs(&alice)[..], &[&url("b.test", "/pastes")]].concat(),
    );
    assert_ne!(code, 0, "tenant b's CA must refuse tenant a's certificate");
    // A connection verified for a.test asking for b.test: 421, not b's data
    // under a's identity.
    let (_, out) = curl(
        &host,
        &tls.ca,
        &[
            &refs(&alice)[..],
            &["-H", "Host: b.test", &url("a.test", "/pastes")],
        ]
        .concat(),
    );
    assert!(out.contains("Misdirected"), "{out}");
}

#[test]
fn sighup_rotates_the_certificate_while_an_upload_on_an_old_connection_completes() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_files(dir.path());
    make_leaf(
        dir.path(),
        "tls-ca",
        "next",
        "localhost",
        Some("DNS:localhost,IP:127.0.0.1"),
    );
    let host = Host::start(dir, &tls.cert, &tls.key, &[]);
    let serial = |host: &Host| {
        let pem = s_client(host, &["-servername", "localhost"]);
        let mut x509 = Command::new("openssl")
            .args(["x509", "-noout", "-serial"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("x509");
        x509.stdin
            .take()
            .expect("stdin")
            .write_all(pem.as_bytes())
            .expect("pipe");
        String::from_utf8_lossy(&x509.wait_with_output().expect("serial").stdout).into_owned()
    };
    let before = serial(&host);
    let next = openssl(
        host.dir.path(),
        &["x509", "-in", "next.crt", "-noout", "-serial"],
    );
    assert_ne!(before, next);

    // An upload in flight on a connection made with the old certificate.
    let mut upload = rustls_client(&host, &tls.ca);
    let body = vec![b'u'; 64 * 1024];
    write!(
        upload,
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("head");
    upload
        .write_all(&body[..body.len() / 2])
        .expect("first half");
    upload.flush().expect("flush");

    // A broken new file keeps the old certificate in service...
    std::fs::write(&tls.cert, "not a certificate").expect("break the file");
    hangup(&host);
    wait_for(|| host.logged("keeping the previous TLS certificate"));
    assert_eq!(serial(&host), before);
    // ...and the good one replaces it for new connections.
    std::fs::copy(host.path("next.crt"), &tls.cert).expect("rotate cert");
    std::fs::copy(host.path("next.key"), &tls.key).expect("rotate key");
    hangup(&host);
    wait_for(|| host.logged("reloaded the TLS certificate"));
    assert_eq!(serial(&host), next);

    upload
        .write_all(&body[body.len() / 2..])
        .expect("second half");
    let mut response = String::new();
    let _ = upload.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
}

#[test]
fn a_handshake_that_never_completes_is_dropped_while_others_are_served() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_files(dir.path());
    let host = Host::start(dir, &tls.cert, &tls.key, &["--tls-handshake-timeout", "1"]);

    let mut stalled = TcpStream::connect(host.https).expect("connect");
    // Half a ClientHello record header, then silence.
    stalled.write_all(&[0x16, 0x03]).expect("write");
    let started = Instant::now();
    let (code, body) = curl(&host, &tls.ca, &[&host.url("/health")]);
    assert_eq!(code, 0, "{body}");
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let read = stalled.read(&mut buf);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the server should have closed the stalled connection: {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "dropped at the handshake timeout"
    );
    wait_for(|| {
        common::counted(
            &host.metrics(),
            "wasmpaste_tls_handshakes_total{outcome=\"timeout\"}",
        )
    });
}

#[test]
#[allow(clippy::panic)]
fn https_only_serves_no_plain_port_and_bad_tls_files_stop_start_up_naming_the_field() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_files(dir.path());
    make_leaf(
        dir.path(),
        "tls-ca",
        "other",
        "localhost",
        Some("DNS:localhost"),
    );

    // A key that is not the certificate's: refused before any port opens.
    let other_key = dir.path().join("other.key");
    let Err(err) = Host::try_start(
        tempfile::tempdir().expect("dir"),
        &tls.cert,
        &other_key,
        &[],
    ) else {
        panic!("a mismatched key must stop start-up");
    };
    assert!(
        err.contains("--tls-key") && err.contains("is not the private key"),
        "{err}"
    );

    // The same, in a tenants file: the tenant and field are named.
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(
        &tenants,
        format!(
            "[[tenant]]\nname = \"a\"\nhosts = [\"a.test\"]\ndb = \"a.db\"\ntls_cert = \"{}\"\ntls_key = \"missing.key\"\n",
            tls.cert.display()
        ),
    )
    .expect("write");
    let Err(err) = Host::try_start(
        tempfile::tempdir().expect("dir"),
        &tls.cert,
        &tls.key,
        &["--config", &tenants.display().to_string()],
    ) else {
        panic!("a missing key must stop start-up");
    };
    assert!(err.contains("tenant `a`: field `tls_key`"), "{err}");

    // HTTPS only: --no-http, the https line is the only one.
    let mut cmd = Command::new(common::host_binary());
    cmd.args(["--tls-listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&tls.cert)
        .arg("--tls-key")
        .arg(&tls.key)
        .arg("--no-http")
        .arg("--db")
        .arg(dir.path().join("only.db"))
        .env(
            "WASMPASTE_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/component-cache"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(
        first.starts_with("wasmpaste listening on https://"),
        "{first}"
    );
    let addr: SocketAddr = first
        .trim_start_matches("wasmpaste listening on https://")
        .parse()
        .expect("addr");
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&tls.ca)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
        .arg(format!("https://localhost:{}/health", addr.port()))
        .output()
        .expect("curl");
    let _ = child.kill();
    let _ = child.wait();
    assert!(String::from_utf8_lossy(&out.stdout).contains("healthy"));
    assert!(lines.next().is_none(), "no plain listener line");
}

fn hangup(host: &Host) {
    let status = Command::new("kill")
        .args(["-HUP", &host.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_for(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TLS connection (rustls, HTTP/1.1 by hand) to the host, trusting `ca`.
fn rustls_client(
    host: &Host,
    ca: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(cert.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(host.https).expect("connect");
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    // Finish the handshake now, so the connection predates any rotation.
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("handshake");
    }
    stream
}
