//! `fpaste` end to end: the real CLI binary against the real `wasmpaste`
//! binary over loopback, each test with its own server, database and
//! config directory. What the server stored is checked with a second,
//! independent client (reqwest), and certificates with `openssl`.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Server, json};
use serde_json::Value;

const EXIT_LOCAL: i32 = 1;
const EXIT_USAGE: i32 = 2;
const EXIT_SERVER: i32 = 3;
const EXIT_NETWORK: i32 = 4;
const EXIT_DECRYPT: i32 = 5;

/// The CLI with a private HOME and config directory, pointed at `server`.
struct Fpaste {
    home: tempfile::TempDir,
    server: String,
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "fpaste failed: {}", self.stderr);
        self
    }

    fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code; stderr: {}",
            self.stderr
        );
        self
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[allow(clippy::panic)] // test harness: a failed expectation is a failed test
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

impl Fpaste {
    fn new(server: &Server) -> Self {
        Self {
            home: tempfile::tempdir().expect("temp dir"),
            server: server.url(""),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.home.path().join("config").join("fpaste")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fpaste"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("FPASTE_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("FPASTE_SERVER", &self.server);
        cmd
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_command(self.command(args), stdin)
    }
}

fn run_command(mut cmd: Command, stdin: &[u8]) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fpaste starts");
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().expect("fpaste finishes");
    writer.join().expect("stdin writer");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The paste ID of a URL `fpaste` printed.
fn id_of(url: &str) -> String {
    let path = url.split('#').next().expect("url");
    path.rsplit('/').next().expect("id").to_owned()
}

/// Deterministic bytes that are not text: a PNG signature then noise.
fn binary_blob(len: usize) -> Vec<u8> {
    let mut blob = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let mut x: u32 = 0x9e37_79b9;
    while blob.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        blob.push(x.to_le_bytes()[0]);
    }
    blob
}

#[test]
fn encrypted_pastes_round_trip_and_the_server_never_sees_the_key() {
    let server = Server::start();
    let cli = Fpaste::new(&server);
    let secret = b"the launch code is 0000\n";
    let created = cli.run(&["--json"], secret).ok().json();
    let url = created["url"].as_str().expect("url").to_owned();
    let key = created["key"].as_str().expect("key").to_owned();
    assert_eq!(
        url,
        format!(
            "{}/{}#{key}",
            server.url(""),
            created["id"].as_str().expect("id")
        )
    );

    // What the server holds: version byte, nonce, ciphertext and tag, typed as opaque bytes.
    let resp = server
        .get(&format!("/{}/raw", id_of(&url)))
        .send()
        .expect("raw");
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let stored = resp.bytes().expect("body").to_vec();
    assert_eq!(stored.len(), 1 + 12 + secret.len() + 16);
    assert_eq!(stored[0], 1);
    assert!(!stored.windows(6).any(|w| w == b"launch"));
    assert!(
        !server.logs().iter().any(|l| l.contains(&key)),
        "the key reached the server"
    );

    assert_eq!(cli.run(&["get", &url], b"").ok().stdout, secret);
    // Without the key: the stored bytes, unchanged.
    assert_eq!(cli.run(&["get", &id_of(&url)], b"").ok().stdout, stored);
    // A well-formed key of another paste: a clear error, no garbage output.
    let other = cli.run(&["--json", "create"], b"other").ok().json();
    let wrong = format!("{}#{}", id_of(&url), other["key"].as_str().expect("key"));
    let run = cli.run(&["get", &wrong], b"").code(EXIT_DECRYPT);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("decryption failed"), "{}", run.stderr);
    let run = cli
        .run(&["get", &format!("{}#short", id_of(&url))], b"")
        .code(EXIT_DECRYPT);
    assert!(run.stderr.contains("43 characters"), "{}", run.stderr);
}

#[test]
fn binary_files_round_trip_byte_for_byte_with_and_without_encryption() {
    let server = Server::start();
    let cli = Fpaste::new(&server);
    let blob = binary_blob(300 * 1024);
    let file = cli.home.path().join("image.png");
    std::fs::write(&file, &blob).expect("write");
    let file = file.to_str().expect("utf-8 path");

    let plain = cli.run(&["--json", "create", "-E", file], b"").ok().json();
    assert_eq!(plain["mime_type"], "image/png");
    assert!(plain.get("key").is_none());
    let out = cli.home.path().join("plain.out");
    let run = cli
        .run(
            &[
                "get",
                plain["url"].as_str().expect("url"),
                "-o",
                out.to_str().expect("path"),
            ],
            b"",
        )
        .ok();
    assert!(run.text().contains("wrote"), "{}", run.text());
    assert_eq!(std::fs::read(&out).expect("read"), blob);

    // Encrypted, positional file (the `fpaste FILE` form), content to a pipe.
    let sealed = cli.run(&["--json", file], b"").ok().json();
    assert_eq!(sealed["mime_type"], "application/octet-stream");
    let run = cli
        .run(&["get", sealed["url"].as_str().expect("url")], b"")
        .ok();
    assert_eq!(run.stdout, blob);
}

#[test]
fn binary_content_is_not_printed_to_a_terminal_without_consent() {
    let server = Server::start();
    let cli = Fpaste::new(&server);
    let created = cli
        .run(&["--json", "create", "-E"], &binary_blob(64))
        .ok()
        .json();
    let url = created["url"].as_str().expect("url");
    // `script` runs fpaste on a pseudo-terminal; its input (and so the answer) is empty.
    let fpaste = env!("CARGO_BIN_EXE_fpaste");
    let mut cmd = cli.command(&[]);
    cmd.env_remove("FPASTE_SERVER");
    let mut script = Command::new("script");
    script.args([
        "-q",
        "-e",
        "-c",
        &format!("{fpaste} --server {} get {url}", cli.server),
        "/dev/null",
    ]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let run = run_command(script, b"");
    let screen = run.text();
    assert!(screen.contains("Print anyway? [y/N]"), "{screen}");
    assert!(
        screen.contains("not printed: the content is binary"),
        "{screen}"
    );
    assert!(
        !screen.contains("IHDR"),
        "binary reached the terminal: {screen}"
    );
    assert_eq!(run.code, EXIT_LOCAL, "{screen}");
    // Text is printed as it is.
    let text = cli
        .run(&["--json", "create", "-E"], b"just text\n")
        .ok()
        .json();
    let mut script = Command::new("script");
    let cmd = format!(
        "{fpaste} --server {} get {}",
        cli.server,
        text["url"].as_str().expect("url")
    );
    script
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("HOME", cli.home.path());
    let run = run_command(script, b"");
    assert!(run.text().contains("just text"), "{}", run.text());
    assert_eq!(run.code, 0, "{}", run.text());
}

#[test]
fn proof_of_work_shows_progress_on_a_terminal_only() {
    let server = Server::with_env(&[("WASMPASTE_POW_DIFFICULTY", "16")]);
    let cli = Fpaste::new(&server);
    let file = cli.home.path().join("note.txt");
    std::fs::write(&file, "worth the work").expect("write");
    let fpaste = env!("CARGO_BIN_EXE_fpaste");
    let mut script = Command::new("script");
    let cmd = format!("{fpaste} --server {} -E {}", cli.server, path(&file));
    script
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("HOME", cli.home.path());
    let run = run_command(script, b"");
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(
        run.text().contains("proof-of-work: solved"),
        "{}",
        run.text()
    );
    // Piped: no progress line in the output scripts read.
    let piped = cli.run(&["-E", path(&file)], b"").ok();
    assert!(!piped.stderr.contains("proof-of-work"), "{}", piped.stderr);
    assert!(piped.text().starts_with(&server.url("/")));
}

#[test]
fn burn_after_read_pastes_are_readable_once() {
    let server = Server::start();
    let cli = Fpaste::new(&server);
    let created = cli.run(&["--json", "-b"], b"read me once").ok().json();
    assert_eq!(created["burn_after_read"], true);
    let url = created["url"].as_str().expect("url");
    assert_eq!(cli.run(&["get", url], b"").ok().stdout, b"read me once");
    let run = cli.run(&["get", url], b"").code(EXIT_SERVER);
    assert!(run.stderr.contains("Paste not found"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    // A wrong key still burns it (the server cannot tell): the error says so.
    let burn = cli.run(&["--json", "-b"], b"gone").ok().json();
    let other = cli.run(&["--json"], b"other").ok().json();
    let wrong = format!(
        "{}#{}",
        burn["id"].as_str().expect("id"),
        other["key"].as_str().expect("key")
    );
    let run = cli.run(&["get", &wrong], b"").code(EXIT_DECRYPT);
    assert!(run.stderr.contains("burn-after-read"), "{}", run.stderr);
}

#[test]
fn password_protected_pastes_need_the_password() {
    let server = Server::start();
    let cli = Fpaste::new(&server);
    let created = cli
        .run(&["--json", "create", "-p", "hunter2"], b"guarded")
        .ok()
        .json();
    assert_eq!(created["password_protected"], true);
    let url = created["url"].as_str().expect("url");
    let run = cli.run(&["get", url], b"").code(EXIT_SERVER);
    assert!(run.stderr.contains("Password required"), "{}", run.stderr);
    assert!(
        run.stderr.contains("-p"),
        "the hint says how: {}",
        run.stderr
    );
    let run = cli.run(&["get", url, "-p", "wrong"], b"").code(EXIT_SERVER);
    assert!(run.stderr.contains("Invalid password"), "{}", run.stderr);
    assert_eq!(
        cli.run(&["get", url, "-p", "hunter2"], b"").ok().stdout,
        b"guarded"
    );
    // The password also comes from the environment (kept out of `ps`).
    let mut cmd = cli.command(&["get", url]);
    cmd.env("FPASTE_PASSWORD", "hunter2");
    assert_eq!(run_ok(cmd).stdout, b"guarded");
    let meta = cli
        .run(&["--json", "get", "-m", url, "-p", "hunter2"], b"")
        .ok()
        .json();
    assert_eq!(meta["size"], 1 + 12 + 7 + 16);
}

fn run_ok(cmd: Command) -> Run {
    run_command(cmd, b"").ok()
}

#[test]
fn proof_of_work_is_solved_for_pastes_and_short_urls() {
    let server = Server::with_env(&[("WASMPASTE_POW_DIFFICULTY", "12")]);
    let cli = Fpaste::new(&server);
    let info = cli.run(&["--json", "info"], b"").ok().json();
    assert_eq!(info["pow"]["enabled"], true);
    assert_eq!(info["pow"]["difficulty"], 12);
    assert!(info["pow"].get("token").is_none());
    let human = cli.run(&["info"], b"").ok().text();
    assert!(human.contains("proof-of-work: 12 bits"), "{human}");

    let created = cli.run(&["--json"], b"worked for it").ok().json();
    assert_eq!(
        cli.run(&["get", created["url"].as_str().expect("url")], b"")
            .ok()
            .stdout,
        b"worked for it"
    );

    let short = cli
        .run(
            &["--json", "shorten", "https://example.com/a/long/path"],
            b"",
        )
        .ok()
        .json();
    let resp = server
        .get(&format!("/s/{}", short["id"].as_str().expect("id")))
        .send()
        .expect("redirect");
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "https://example.com/a/long/path"
    );
    assert!(
        short["url"]
            .as_str()
            .expect("url")
            .starts_with(&server.url("/s/"))
    );
    // Without proof-of-work the same request is refused: the CLI did the work.
    let resp = server.post("/").body("no work").send().expect("post");
    assert_eq!(common::error(resp, 400), "Proof-of-work required");
}

fn pki_server() -> Server {
    Server::with_env(&[
        ("WASMPASTE_PKI_ENABLED", "1"),
        ("WASMPASTE_PKI_CA_PASSWORD", "correct horse battery staple"),
        ("WASMPASTE_REGISTER_POW", "10"),
    ])
}

#[test]
fn register_then_manage_your_pastes_with_the_new_identity() {
    let server = pki_server();
    let cli = Fpaste::new(&server);
    // Anonymous first: listing needs an identity, and the hint says how to get one.
    let run = cli.run(&["list"], b"").code(EXIT_SERVER);
    assert!(
        run.stderr.contains("fpaste register --configure"),
        "{}",
        run.stderr
    );

    let reg = cli
        .run(&["--json", "register", "--configure", "-n", "laptop"], b"")
        .ok()
        .json();
    let fingerprint = reg["fingerprint"].as_str().expect("fingerprint").to_owned();
    let dir = cli.config_dir();
    let config = std::fs::read_to_string(dir.join("config.toml")).expect("config written");
    // The certificate is the identity; the fingerprint is derived from it.
    assert!(!config.contains(&fingerprint), "{config}");
    assert!(config.contains("client.crt"), "{config}");
    assert!(config.contains("client.key"), "{config}");
    #[cfg(unix)]
    for name in ["client.key", "client.p12", "config.toml"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join(name))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is readable by others");
    }
    // The certificate and key are a pair, and the fingerprint is the certificate's.
    let cert = dir.join("client.crt");
    let x509 = openssl(&[
        "x509",
        "-in",
        path(&cert),
        "-noout",
        "-fingerprint",
        "-sha1",
        "-pubkey",
    ]);
    assert!(
        x509.to_lowercase().replace(':', "").contains(&fingerprint),
        "{x509}"
    );
    let pubkey = openssl(&["pkey", "-in", path(&dir.join("client.key")), "-pubout"]);
    assert!(
        x509.contains(pubkey.trim()),
        "key does not match the certificate"
    );
    let stored = std::fs::read_to_string(dir.join("client.sha1")).expect("fingerprint file");
    assert_eq!(stored.trim(), fingerprint);
    // A second registration does not silently replace the identity.
    let run = cli.run(&["register"], b"").code(EXIT_LOCAL);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);

    // From here on the config file supplies the identity.
    let notes = cli
        .run(&["--json", "create", "-E", "-n", "notes"], b"my notes\n")
        .ok()
        .json();
    assert_eq!(notes["owner"], fingerprint.as_str());
    let image_file = cli.home.path().join("pic.png");
    std::fs::write(&image_file, binary_blob(2048)).expect("write");
    let image = cli
        .run(&["--json", "create", "-E", path(&image_file)], b"")
        .ok()
        .json();
    let secret = cli.run(&["--json", "create", "-b"], b"burn me").ok().json();

    let list = cli.run(&["--json", "list"], b"").ok().json();
    assert_eq!(list["total"], 3);
    let human = cli.run(&["list"], b"").ok().text();
    assert!(
        human.contains("notes") && human.contains("image/png"),
        "{human}"
    );
    let found = cli
        .run(&["--json", "search", "--type", "image/*"], b"")
        .ok()
        .json();
    let ids: Vec<&str> = found["pastes"]
        .as_array()
        .expect("pastes")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, vec![image["id"].as_str().expect("id")]);
    let none = cli
        .run(&["--json", "search", "--before", "2000-01-01"], b"")
        .ok()
        .json();
    assert_eq!(none["total"], 0);

    // Update: metadata, then new content under a new key.
    let notes_id = notes["id"].as_str().expect("id");
    let updated = cli
        .run(
            &["--json", "update", notes_id, "-n", "renamed", "-x", "1h"],
            b"",
        )
        .ok()
        .json();
    assert_eq!(updated["display_name"], "renamed");
    let updated = cli
        .run(&["--json", "update", notes_id, "-f", "-"], b"new notes")
        .ok()
        .json();
    let new_url = updated["url"].as_str().expect("url");
    assert!(new_url.contains('#'));
    assert_eq!(cli.run(&["get", new_url], b"").ok().stdout, b"new notes");
    let run = cli.run(&["update", notes_id], b"").code(EXIT_USAGE);
    assert!(run.stderr.contains("nothing to update"), "{}", run.stderr);

    // Export writes what it can read and leaves burn-after-read pastes alone.
    let out = cli.home.path().join("export");
    let exported = cli
        .run(&["--json", "export", "-o", path(&out)], b"")
        .ok()
        .json();
    assert_eq!(exported["exported"], 2);
    assert_eq!(exported["skipped"], 1);
    let image_id = image["id"].as_str().expect("id");
    assert_eq!(
        std::fs::read(out.join(format!("{image_id}.png"))).expect("png"),
        binary_blob(2048)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["pastes"].as_array().expect("list").len(), 3);
    let burn_url = secret["url"].as_str().expect("url");
    assert_eq!(
        cli.run(&["get", burn_url], b"").ok().stdout,
        b"burn me",
        "export burnt it"
    );

    // Someone else cannot delete; the owner can.
    let stranger = Fpaste::new(&server);
    let mut cmd = stranger.command(&["delete", image_id]);
    cmd.env(
        "FPASTE_FINGERPRINT",
        "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0",
    );
    let run = run_command(cmd, b"").code(EXIT_SERVER);
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);
    let deleted = cli
        .run(&["--json", "delete", image_id, notes_id], b"")
        .ok()
        .json();
    assert_eq!(deleted["deleted"].as_array().expect("ids").len(), 2);
    assert_eq!(cli.run(&["--json", "list"], b"").ok().json()["total"], 0);

    let status = cli.run(&["--json", "pki", "status"], b"").ok().json();
    assert_eq!(status["ca_exists"], true);
}

#[test]
fn pki_issue_writes_a_key_pair_and_revoke_ends_it() {
    let server = pki_server();
    let cli = Fpaste::new(&server);
    cli.run(&["register", "--configure"], b"").ok();
    let out = cli.home.path().join("issued");
    std::fs::create_dir_all(&out).expect("dir");
    let issued = cli
        .run(
            &[
                "--json",
                "pki",
                "issue",
                "-n",
                "build-bot",
                "-o",
                path(&out),
            ],
            b"",
        )
        .ok()
        .json();
    assert!(
        issued.get("private_key_pem").is_none(),
        "the key is never printed"
    );
    let serial = issued["serial"].as_str().expect("serial");
    let key = out.join(format!("{serial}.key"));
    let crt = out.join(format!("{serial}.crt"));
    let subject = openssl(&["x509", "-in", path(&crt), "-noout", "-subject"]);
    assert!(subject.contains("build-bot"), "{subject}");
    openssl(&["pkey", "-in", path(&key), "-noout"]);
    let revoked = cli
        .run(&["--json", "pki", "revoke", serial], b"")
        .ok()
        .json();
    assert_eq!(revoked["message"], "Certificate revoked");
    let run = cli.run(&["pki", "revoke", serial], b"").code(EXIT_SERVER);
    assert!(run.stderr.contains("already revoked"), "{}", run.stderr);
    cli.run(&["pki", "revoke", "not-hex"], b"").code(EXIT_USAGE);
}

/// A TLS-terminating front that demands a client certificate from our CA,
/// as a proxy in front of wasmpaste would: `openssl s_server -WWW` serving a
/// canned `/pki` answer from a directory.
#[test]
fn register_configure_over_https_then_the_certificate_alone_is_the_identity() {
    // The host terminates TLS itself and takes its own CA's certificates.
    let certs = tempfile::tempdir().expect("dir");
    let tls = common::tls_server_files(certs.path());
    let server = Server::with_env(&[
        ("WASMPASTE_PKI_ENABLED", "1"),
        ("WASMPASTE_PKI_CA_PASSWORD", "correct horse battery staple"),
        ("WASMPASTE_REGISTER_POW", "0"),
        ("WASMPASTE_TLS_LISTEN", "127.0.0.1:0"),
        ("WASMPASTE_TLS_CERT", path(&tls.cert)),
        ("WASMPASTE_TLS_KEY", path(&tls.key)),
        ("WASMPASTE_CLIENT_CA", "pki"),
    ]);
    let https = server.https_addr().expect("an HTTPS listener");
    let url = format!("https://localhost:{}", https.port());
    let mut cli = Fpaste::new(&server);
    cli.server = url.clone();

    // The server's certificate is from a private CA: untrusted without --ca-cert.
    let untrusted = cli.run(&["pki", "status"], b"").code(EXIT_NETWORK);
    assert!(
        untrusted.stderr.to_lowercase().contains("certificate"),
        "{}",
        untrusted.stderr
    );
    let reg = cli
        .run(
            &[
                "--json",
                "--ca-cert",
                path(&tls.ca),
                "register",
                "--configure",
            ],
            b"",
        )
        .ok()
        .json();
    let fingerprint = reg["fingerprint"].as_str().expect("fingerprint").to_owned();

    // From now on the config alone: the server, its CA, the certificate.
    let config = std::fs::read_to_string(cli.config_dir().join("config.toml")).expect("config");
    assert!(
        config.contains("tls-ca.crt") && config.contains("client.crt"),
        "{config}"
    );
    let mut plain = cli.command(&["--json", "create"]);
    plain.env_remove("FPASTE_SERVER");
    let created = run_command(plain, b"mine over mutual TLS").ok().json();
    let id = id_of(created["url"].as_str().expect("url"));
    let mut list = cli.command(&["--json", "list"]);
    list.env_remove("FPASTE_SERVER");
    let listed = run_command(list, b"").ok().json();
    assert!(listed.to_string().contains(&id), "{listed}");
    // The owner is the certificate's fingerprint, as the server saw it in the handshake.
    assert_eq!(created["owner"], fingerprint.as_str(), "{created}");
}

#[test]
fn exit_codes_and_json_errors_tell_usage_server_and_network_apart() {
    let server = Server::start();
    let cli = Fpaste::new(&server);
    cli.run(&["get", "../pki"], b"").code(EXIT_USAGE);
    cli.run(&["--fingerprint", "not-a-fingerprint", "list"], b"")
        .code(EXIT_USAGE);
    cli.run(&["create", "--expiry", "0"], b"x").code(EXIT_USAGE);
    cli.run(&["--server", "ftp://example.com", "info"], b"")
        .code(EXIT_USAGE);
    cli.run(&["--no-such-flag"], b"").code(EXIT_USAGE);

    let run = cli
        .run(&["--json", "get", "0123456789abcdef"], b"")
        .code(EXIT_SERVER);
    let err: Value = serde_json::from_str(run.stderr.trim()).expect("JSON error");
    assert_eq!(err["kind"], "server");
    assert_eq!(err["status"], 404);
    assert!(run.stdout.is_empty());

    let closed = unused_addr();
    let run = cli
        .run(
            &["--json", "--server", &format!("http://{closed}"), "info"],
            b"",
        )
        .code(EXIT_NETWORK);
    let err: Value = serde_json::from_str(run.stderr.trim()).expect("JSON error");
    assert_eq!(err["kind"], "network");
    assert!(err["hint"].as_str().expect("hint").contains("--server"));

    // A missing input file is a local error that names the file.
    let run = cli
        .run(&["create", "/nonexistent/file.txt"], b"")
        .code(EXIT_LOCAL);
    assert!(
        run.stderr.contains("/nonexistent/file.txt"),
        "{}",
        run.stderr
    );
}

#[test]
fn flags_beat_environment_beats_config_file() {
    let server = Server::start();
    let cli = Fpaste::new(&server);
    let closed = unused_addr();
    let dir = cli.config_dir();
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("config.toml"),
        format!("server = \"http://{closed}\"\n"),
    )
    .expect("write");

    // The config file alone: the closed port.
    let mut cmd = cli.command(&["info"]);
    cmd.env_remove("FPASTE_SERVER");
    run_command(cmd, b"").code(EXIT_NETWORK);
    // The environment wins over the file.
    cli.run(&["info"], b"").ok();
    // A flag wins over the environment.
    cli.run(&["--server", &format!("http://{closed}"), "info"], b"")
        .code(EXIT_NETWORK);
    // A typo in the file is reported with its name, not ignored.
    std::fs::write(dir.join("config.toml"), "sever = \"x\"\n").expect("write");
    let run = cli.run(&["info"], b"").code(EXIT_LOCAL);
    assert!(run.stderr.contains("sever"), "{}", run.stderr);
}

/// A loopback address nothing listens on (the port was free a moment ago).
fn unused_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
}

fn openssl(args: &[&str]) -> String {
    common::openssl_in(Path::new("."), args)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn json_answers_of_the_server_pass_through() {
    let server = Server::start();
    let cli = Fpaste::new(&server);
    let created = cli
        .run(&["--json", "create", "-E", "-x", "2h"], b"short-lived")
        .ok()
        .json();
    let expected = json(
        server
            .get(&format!("/{}", created["id"].as_str().expect("id")))
            .send()
            .expect("meta"),
        200,
    );
    assert_eq!(created["expires_at"], expected["expires_at"]);
    let lifetime = created["expires_at"].as_i64().expect("expiry")
        - created["created_at"].as_i64().expect("created");
    assert_eq!(lifetime, 7200);
}

#[test]
fn completions_and_the_manual_page_generate_and_a_shell_loads_them() {
    let home = tempfile::tempdir().expect("temp dir");
    // Generated from the parser alone: a broken config file is no obstacle.
    let broken = home.path().join("broken.toml");
    std::fs::write(&broken, "server = [").expect("write");
    let generate = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fpaste"));
        cmd.args(args).env("FPASTE_CONFIG", &broken);
        run_command(cmd, b"")
    };
    let bash = generate(&["completions", "bash"]).ok().text();
    let script = home.path().join("fpaste.bash");
    std::fs::write(&script, &bash).expect("write");
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p fpaste", path(&script)))
        .output()
        .expect("bash runs");
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("fpaste"));
    assert!(
        generate(&["completions", "zsh"])
            .ok()
            .text()
            .starts_with("#compdef fpaste")
    );
    assert!(
        generate(&["completions", "fish"])
            .ok()
            .text()
            .contains("complete -c fpaste")
    );
    let page = generate(&["man"]).ok().text();
    assert!(page.contains(".TH fpaste 1"), "{page}");
    assert!(page.contains("register"), "{page}");
    generate(&["completions", "tcsh"]).code(EXIT_USAGE);
}
