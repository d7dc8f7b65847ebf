//! Shared harness of the end-to-end tests: starts a real server on
//! 127.0.0.1:0 with a temporary database and talks to it over HTTP.
//!
//! The server is the `wasmpaste` binary; `spin up` serving the same `.wasm`
//! in the test binaries whose name ends in `_on_spin`; the `wasmpaste`
//! binary with its database on a real libSQL server (`sqld`) in those whose
//! name ends in `_on_sqld`. The API suites are compiled into each (see
//! host/Cargo.toml), so a suite runs everywhere, and whatever needs one host
//! or one database lives in a suite that is not.

#![allow(dead_code)] // each test binary uses a different subset

pub mod spin;
#[path = "../../bench/src/spin_up.rs"]
pub mod spin_up;
pub mod sqld;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

/// A client certificate fingerprint (40 lowercase hex digits).
pub const ALICE: &str = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2";
pub const BOB: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

/// Settings that turn the abuse controls off.
const ABUSE_OFF: &[(&str, &str)] = &[
    ("WASMPASTE_POW_DIFFICULTY", "0"),
    ("WASMPASTE_RATE_MAX", "0"),
    ("WASMPASTE_DEDUP_MAX", "0"),
];

/// The host a test binary drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The `wasmpaste` binary.
    Native,
    /// `spin up` (Fermyon Spin) with the component the native host embeds.
    Spin,
    /// The `wasmpaste` binary with its database on a `sqld` of its own.
    Sqld,
}

impl Target {
    /// Which host this test binary drives: the `<suite>_on_spin` targets
    /// drive Spin, every other one the native host.
    pub fn current() -> Self {
        let name = env!("CARGO_CRATE_NAME");
        if name.ends_with("_on_spin") {
            Self::Spin
        } else if name.ends_with("_on_sqld") {
            Self::Sqld
        } else {
            Self::Native
        }
    }
}

/// [`ABUSE_OFF`], except what `env` sets, then `env`.
fn abuse_off_and<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all: Vec<(&str, &str)> = ABUSE_OFF
        .iter()
        .filter(|(k, _)| !env.iter().any(|(e, _)| e == k))
        .copied()
        .collect();
    all.extend_from_slice(env);
    all
}

pub struct Server {
    child: Child,
    pub target: Target,
    /// The libSQL server of a [`Target::Sqld`] server.
    sqld: Option<sqld::Sqld>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub client: Client,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts a server with the abuse controls (proof-of-work, rate limits,
    /// dedup) off, for tests of everything else.
    pub fn start() -> Self {
        Self::with_env(&[])
    }

    /// Like [`Server::start`], with extra `WASMPASTE_*` environment variables
    /// (which may turn abuse controls back on).
    pub fn with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, env)
    }

    /// A server with the production defaults (abuse controls on) plus `env`.
    pub fn with_defaults_and(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::launch(dir, env)
    }

    /// Like [`Server::with_env`] on an existing directory (restarts keep the database).
    pub fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        Self::launch(dir, &abuse_off_and(env))
    }

    fn launch(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        let target = Target::current();
        let mut sqld = None;
        let spawned = match target {
            Target::Native => spawn(&database_file(target, dir.path()), env),
            Target::Spin => spin::spawn(dir.path(), env, &[]),
            Target::Sqld => {
                let server = sqld::Sqld::start(&dir.path().join("sqld")).expect("sqld starts");
                let spawned = spawn_on(&server.url, dir.path(), env);
                sqld = Some(server);
                spawned
            }
        };
        let mut server = Self::with_spawned(target, dir, spawned.expect("server starts"));
        server.sqld = sqld;
        server
    }

    /// The native host with its database on the libSQL server at `url`,
    /// abuse controls off unless `env` turns them on; several may share one
    /// server.
    pub fn on_libsql(url: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let spawned = spawn_on(url, dir.path(), &abuse_off_and(env)).expect("the host starts");
        Self::with_spawned(Target::Native, dir, spawned)
    }

    /// The HTTPS listener's address, when `WASMPASTE_TLS_LISTEN` turned it on.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.logs().iter().find_map(|l| {
            l.strip_prefix("wasmpaste listening on https://")?
                .parse()
                .ok()
        })
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().is_ok_and(|status| status.is_none())
    }

    /// `spin up` with `env` (`WASMPASTE_<NAME>` guest variables, nothing
    /// turned off) and more `args`, in any test binary.
    pub fn on_spin(env: &[(&str, &str)], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let spawned = spin::spawn(dir.path(), env, args).expect("spin up serves");
        Self::with_spawned(Target::Spin, dir, spawned)
    }

    fn with_spawned(target: Target, dir: tempfile::TempDir, spawned: Spawned) -> Self {
        let (child, addr, stderr) = spawned;
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            // Tests look at redirects (the shortener) instead of following them.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            child,
            target,
            sqld: None,
            addr,
            dir,
            client,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn put(&self, path: &str) -> RequestBuilder {
        self.client.put(self.url(path))
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path))
    }

    pub fn head(&self, path: &str) -> RequestBuilder {
        self.client.head(self.url(path))
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Creates a paste and returns the 201 body.
    pub fn create(&self, body: impl Into<reqwest::blocking::Body>) -> Value {
        self.create_with(self.post("/").body(body))
    }

    pub fn create_with(&self, req: RequestBuilder) -> Value {
        let resp = req.send().expect("POST /");
        assert_eq!(resp.status(), 201, "create failed");
        resp.json().expect("JSON")
    }

    /// Sends raw bytes on a fresh connection and returns everything read back.
    pub fn raw_exchange(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.write_all(request).expect("write");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The server's stderr once `done` holds for it (or after 10 s): log
    /// lines arrive through a pipe, slightly after the response.
    pub fn logs_when(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if done(&logs) || std::time::Instant::now() > deadline {
                return logs;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a log line containing `needle` arrives (within 10 s).
    pub fn logged(&self, needle: &str) -> bool {
        self.logs_when(|lines| lines.iter().any(|l| l.contains(needle)))
            .iter()
            .any(|l| l.contains(needle))
    }

    /// The server's stderr so far (logs of host and guest).
    pub fn logs(&self) -> Vec<String> {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops the server with SIGKILL and hands the directory back for a restart.
    pub fn kill(mut self) -> tempfile::TempDir {
        self.stop();
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn db_path(&self) -> PathBuf {
        database_file(self.target, self.dir.path())
    }

    /// The URL of the libSQL server a [`Target::Sqld`] server uses.
    pub fn sqld_url(&self) -> Option<&str> {
        self.sqld.as_ref().map(|s| s.url.as_str())
    }

    /// The libSQL server a [`Target::Sqld`] server uses.
    pub fn sqld_mut(&mut self) -> Option<&mut sqld::Sqld> {
        self.sqld.as_mut()
    }

    fn stop(&mut self) {
        if self.target == Target::Spin {
            // `spin up` runs the server as a child (`spin trigger http`):
            // SIGKILL reaches only the process it is sent to, so send it to
            // the group `spin::spawn` made.
            spin::kill_group(&self.child);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(sqld) = &mut self.sqld {
            sqld.kill();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The SQLite file of a server whose directory is `dir`: the native host's
/// `WASMPASTE_DB`, or Spin's default database in its state directory.
pub fn database_file(target: Target, dir: &std::path::Path) -> PathBuf {
    match target {
        Target::Native => dir.join("wasmpaste.db"),
        Target::Spin => dir.join("sqlite_db.db"),
        Target::Sqld => sqld::data_file(&dir.join("sqld")),
    }
}

type Spawned = (
    Child,
    SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
);

/// The server binary. Cargo names it to the host's own tests; other packages'
/// tests (the CLI's) find it in their target directory, where `cargo test
/// --workspace` has built it before any test runs.
pub fn host_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_wasmpaste") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/wasmpaste
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join("wasmpaste"))
        .expect("a target directory");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace`, or `cargo build -p wasmpaste-host` first",
        bin.display()
    );
    bin
}

/// Runs the binary and waits for its "listening on" line.
pub fn spawn(db: &std::path::Path, env: &[(&str, &str)]) -> Result<Spawned, String> {
    let mut cmd = Command::new(host_binary());
    cmd.env("WASMPASTE_DB", db);
    spawn_command(cmd, env).map(|(child, addr, _, logs)| (child, addr, logs))
}

/// Runs the binary with its database on the libSQL server at `url` (a
/// runtime-config file in `dir` names it) and waits until it listens.
pub fn spawn_on(url: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Result<Spawned, String> {
    let rc = dir.join("runtime-config.toml");
    std::fs::write(&rc, sqld::runtime_config(url)).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(host_binary());
    cmd.env("WASMPASTE_RUNTIME_CONFIG_FILE", rc);
    spawn_command(cmd, env).map(|(child, addr, _, logs)| (child, addr, logs))
}

type SpawnedWithAdmin = (
    Child,
    SocketAddr,
    Option<SocketAddr>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
);

/// Runs `cmd` (the binary with its arguments) on 127.0.0.1:0 and waits for
/// its "listening on" line, noting the admin address if it prints one.
pub fn spawn_command(mut cmd: Command, env: &[(&str, &str)]) -> Result<SpawnedWithAdmin, String> {
    cmd.env("WASMPASTE_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        // One compilation cache for every test server: each start after the
        // first loads machine code instead of running Cranelift.
        .env(
            "WASMPASTE_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/component-cache"),
        )
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let stderr_lines = collect_lines(child.stderr.take().ok_or("no stderr")?);
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut admin = None;
    while let Some(Ok(line)) = lines.next() {
        // Under --log-format json the same sentence is the line's `message`.
        let line = if line.starts_with('{') {
            let object: Value =
                serde_json::from_str(&line).map_err(|e| format!("bad JSON in {line}: {e}"))?;
            object["message"]
                .as_str()
                .ok_or_else(|| format!("no message in {line}"))?
                .to_owned()
        } else {
            line
        };
        // The HTTPS listener's line comes first; kept with the logs for
        // [`Server::https_addr`].
        if line.starts_with("wasmpaste listening on https://") {
            if let Ok(mut logs) = stderr_lines.lock() {
                logs.push(line);
            }
            continue;
        }
        if let Some(a) = line.strip_prefix("wasmpaste admin on http://") {
            admin = Some(
                a.parse()
                    .map_err(|e| format!("bad address in {line}: {e}"))?,
            );
            continue;
        }
        let addr = line
            .strip_prefix("wasmpaste listening on http://")
            .ok_or_else(|| format!("unexpected line: {line}"))?
            .parse()
            .map_err(|e| format!("bad address in {line}: {e}"))?;
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        return Ok((child, addr, admin, stderr_lines));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(100));
    let logs = stderr_lines
        .lock()
        .map(|l| l.join("\n"))
        .unwrap_or_default();
    Err(format!(
        "server exited ({status}) before listening:\n{logs}"
    ))
}

/// Collects the lines of a child's output as they arrive.
pub fn collect_lines(
    output: impl Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    lines
}

/// The JSON body of a response, after checking its status.
#[allow(clippy::panic)] // test harness: a failed expectation is a failed test
pub fn json(resp: Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let text = resp.text().expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The `error` message of a JSON error response with the given status.
pub fn error(resp: Response, status: u16) -> String {
    json(resp, status)["error"]
        .as_str()
        .expect("an `error` string")
        .to_owned()
}

/// A proof-of-work solver, written from the reference's algorithm alone:
/// the smallest N with at least `difficulty` leading zero bits in
/// SHA-256(nonce ":" N).
pub fn solve(nonce: &str, difficulty: u32) -> u64 {
    use sha2::{Digest, Sha256};
    (0u64..)
        .find(|n| {
            let hash = Sha256::digest(format!("{nonce}:{n}").as_bytes());
            let mut zeros = 0;
            for byte in hash.iter() {
                zeros += byte.leading_zeros();
                if *byte != 0 {
                    break;
                }
            }
            zeros >= difficulty
        })
        .expect("a solution exists")
}

/// Fetches a challenge and solves it: `(token, solution)`.
pub fn solved_challenge(s: &Server, path: &str) -> (String, String) {
    let c = json(s.get(path).send().expect("challenge"), 200);
    let nonce = c["nonce"].as_str().expect("nonce");
    let difficulty = u32::try_from(c["difficulty"].as_u64().expect("difficulty")).expect("small");
    (
        c["token"].as_str().expect("token").to_owned(),
        solve(nonce, difficulty).to_string(),
    )
}

/// Clients the concurrency tests run at once.
pub const PARALLEL: usize = 64;

/// Runs `f(i)` for `i` in `0..n`, each on its own thread, all released at
/// the same moment; the results in order of `i`.
pub fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let start = std::sync::Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (start, f) = (&start, &f);
                scope.spawn(move || {
                    start.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread panicked"))
            .collect()
    })
}

/// The value of one sample line of a Prometheus exposition, e.g.
/// `wasmpaste_guest_traps_total{tenant="bad"}`.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Whether `series` counted at least one event.
pub fn counted(metrics: &str, series: &str) -> bool {
    sample(metrics, series).is_some_and(|n| n >= 1.0)
}

/// Files of a throwaway TLS set-up made with the `openssl` command-line tool.
pub struct TlsFiles {
    /// The CA certificate (PEM) a client is told to trust.
    pub ca: PathBuf,
    /// A server certificate the CA signed, for `localhost` and 127.0.0.1.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Runs the `openssl` command-line tool in `dir`; its stdout. A failure
/// fails the test with openssl's own message.
pub fn openssl_in(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs (CI installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl req` arguments for a new unencrypted P-256 key.
pub const NEW_P256_KEY: [&str; 6] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-batch",
];

/// A self-signed CA `name.crt`/`name.key` (P-256, two days) in `dir`.
pub fn make_ca(dir: &std::path::Path, name: &str) {
    let (key, crt, subject) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    let args = [
        &["req", "-x509"][..],
        &NEW_P256_KEY,
        &["-keyout", &key, "-out", &crt],
        &["-days", "2", "-subj", &subject],
    ];
    openssl_in(dir, &args.concat());
}

/// A new P-256 key `name.key` and a signing request `name.csr` for
/// `subject` (`/CN=...`) in `dir`.
pub fn make_key_and_csr(dir: &std::path::Path, name: &str, subject: &str) {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    let args = [
        &["req"][..],
        &NEW_P256_KEY,
        &["-keyout", &key, "-out", &csr, "-subj", subject],
    ];
    openssl_in(dir, &args.concat());
}

/// `name.crt`/`name.key` signed by CA `ca` (a day), for `cn`: a server
/// certificate for the names in `san` (`DNS:localhost,IP:127.0.0.1`), or
/// without one a client certificate.
pub fn make_leaf(dir: &std::path::Path, ca: &str, name: &str, cn: &str, san: Option<&str>) {
    make_key_and_csr(dir, name, &format!("/CN={cn}"));
    let ext = format!("{name}.ext");
    let text = match san {
        Some(san) => format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\n"),
        None => "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n".to_owned(),
    };
    std::fs::write(dir.join(&ext), text).expect("write extensions");
    let (csr, ca_crt, ca_key, crt) = (
        format!("{name}.csr"),
        format!("{ca}.crt"),
        format!("{ca}.key"),
        format!("{name}.crt"),
    );
    openssl_in(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "1",
            "-extfile",
            &ext,
        ],
    );
}

/// A CA and a server certificate it signed (P-256, valid for a day), in `dir`.
pub fn tls_server_files(dir: &std::path::Path) -> TlsFiles {
    make_ca(dir, "tls-ca");
    make_leaf(
        dir,
        "tls-ca",
        "server",
        "localhost",
        Some("DNS:localhost,IP:127.0.0.1"),
    );
    TlsFiles {
        ca: dir.join("tls-ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}

/// A third-party server the tests run (`spin`, `sqld`): `var`, else PATH.
/// Without one, the test binary prints why and ends (a skip) on a user's
/// machine, and fails under `CI=true`.
#[allow(clippy::panic)]
pub fn tool_or_skip(name: &str, var: &str, what: &str) -> PathBuf {
    match spin_up::find_program(name, var) {
        Some(bin) => bin,
        None if std::env::var_os("CI").is_some() => {
            panic!("no `{name}` on PATH under CI=true: eval \"$(../shared/tools/install)\"")
        }
        None => {
            // Outside the test's captured output, so the reason is seen.
            let _ = writeln!(
                std::io::stderr(),
                "skipping {}: no `{name}` on PATH (eval \"$(../shared/tools/install)\" puts \
                 {what} there)",
                env!("CARGO_CRATE_NAME")
            );
            std::process::exit(0)
        }
    }
}
