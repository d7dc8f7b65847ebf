//! The libSQL side of the harness: a real `sqld` (the server behind Turso)
//! on 127.0.0.1, for the test binaries whose name ends in `_on_sqld` (the
//! native host with its tenant's database on the server) and for the tests
//! that put several hosts on one server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `sqld`, killed when dropped. Its data stays in its directory,
/// so a new one on the same directory has the same databases.
pub struct Sqld {
    child: Child,
    /// `http://127.0.0.1:PORT`, what a runtime config's `url` names.
    pub url: String,
    dir: PathBuf,
}

impl Sqld {
    /// Starts `sqld` with its data in `dir` and waits until it answers.
    pub fn start(dir: &Path) -> Result<Self, String> {
        let bin = binary();
        let mut last = String::new();
        // A port found free can be taken before sqld binds it: try again.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port();
            let mut child = spawn(&bin, dir, &port.to_string())?;
            let url = format!("http://127.0.0.1:{port}");
            if wait_healthy(&url, &mut child) {
                return Ok(Self {
                    child,
                    url,
                    dir: dir.to_owned(),
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            last = format!("sqld did not answer on port {port}");
        }
        Err(last)
    }

    /// Starts it again on the same port and data after [`Sqld::kill`], as a
    /// supervisor would.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let port = self.url.rsplit(':').next().unwrap_or_default().to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let mut child = spawn(&binary(), &self.dir, &port)?;
            if wait_healthy(&self.url, &mut child) {
                self.child = child;
                return Ok(());
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(format!("sqld did not come back on port {port}"))
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The SQLite file sqld keeps the default database in.
    pub fn data_file(&self) -> PathBuf {
        data_file(&self.dir)
    }
}

impl Drop for Sqld {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The file of the default database of a sqld whose data is in `dir`.
pub fn data_file(dir: &Path) -> PathBuf {
    dir.join("dbs/default/data")
}

/// A runtime-config file naming the server at `url` (Spin's format).
pub fn runtime_config(url: &str) -> String {
    format!("[sqlite_database.default]\ntype = \"libsql\"\nurl = \"{url}\"\ntoken = \"\"\n")
}

/// The first column of the first row of `sql`, run on the server at `url`
/// (Hrana over HTTP, as the host talks to it).
#[allow(clippy::panic)]
pub fn query_i64(url: &str, sql: &str) -> i64 {
    let body = serde_json::json!({
        "baton": null,
        "requests": [
            { "type": "execute", "stmt": { "sql": sql, "want_rows": true } },
            { "type": "close" },
        ],
    });
    let answer: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{url}/v2/pipeline"))
        .json(&body)
        .send()
        .and_then(reqwest::blocking::Response::json)
        .unwrap_or_else(|e| panic!("{sql} on {url}: {e}"));
    answer["results"][0]["response"]["result"]["rows"][0][0]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{sql} on {url}: {answer}"))
}

/// `sqld` with its data in `dir`, on 127.0.0.1:`port`.
fn spawn(bin: &Path, dir: &Path, port: &str) -> Result<Child, String> {
    Command::new(bin)
        .arg("--db-path")
        .arg(dir)
        .args(["--http-listen-addr", &format!("127.0.0.1:{port}")])
        .arg("--no-welcome")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run sqld: {e}"))
}

fn wait_healthy(url: &str, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = reqwest::blocking::Client::new();
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if client
            .get(format!("{url}/health"))
            .timeout(Duration::from_secs(1))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// `sqld` (`SQLD_BIN`, else PATH), or a skip ([`super::tool_or_skip`]).
fn binary() -> PathBuf {
    super::tool_or_skip("sqld", "SQLD_BIN", "sqld 0.24.33")
}
