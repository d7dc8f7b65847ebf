//! Start-up checks: bad settings are refused before the server binds, with
//! messages that name what to fix.

mod common;

use common::{ALICE, Server, spawn};

#[test]
fn invalid_guest_settings_are_refused_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let err = spawn(
        &dir.path().join("db.sqlite"),
        &[
            ("WASMPASTE_MAX_ANON", "lots"),
            ("WASMPASTE_EXPIRY_ANON", "-1"),
        ],
    )
    .expect_err("the server must refuse to start");
    assert!(err.contains("`max_anon`"), "{err}");
    assert!(err.contains("lots"), "{err}");
    assert!(err.contains("`expiry_anon`"), "{err}");
}

#[test]
fn invalid_host_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = spawn(
        &dir.path().join("db.sqlite"),
        &[("WASMPASTE_REQUEST_TIMEOUT", "0")],
    )
    .expect_err("the server must refuse to start");
    assert!(
        err.contains("request-timeout") || err.contains("REQUEST_TIMEOUT"),
        "{err}"
    );
}

#[test]
fn unusable_database_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = spawn(&file.join("db.sqlite"), &[]).expect_err("must refuse");
    assert!(err.contains("database"), "{err}");
}

#[test]
fn unknown_variables_are_warned_about() {
    let s = Server::with_env(&[("WASMPASTE_MAX_ANOM", "5")]);
    assert_eq!(s.get("/health").send().unwrap().status(), 200);
    assert!(s.logged("WASMPASTE_MAX_ANOM"), "{:#?}", s.logs());
    assert!(
        s.logged("did you mean WASMPASTE_MAX_ANON?"),
        "{:#?}",
        s.logs()
    );
}

#[test]
fn the_database_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("deep/er/db.sqlite");
    let (mut child, _, _) = spawn(&db, &[]).expect("starts");
    assert!(db.exists());
    let _ = child.kill();
    let _ = child.wait();
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[allow(clippy::panic)]
fn ready_line(s: &Server) -> String {
    s.logs_when(|lines| lines.iter().any(|l| l.contains("component ready")))
        .into_iter()
        .find(|l| l.contains("component ready"))
        .unwrap_or_else(|| panic!("no 'component ready' line in {:#?}", s.logs()))
}

#[test]
fn compiled_code_is_cached_across_restarts_and_survives_corruption() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let env = [("WASMPASTE_CACHE_DIR", cache_dir)];

    let first = Server::with_env(&env);
    assert!(
        ready_line(&first).contains("miss"),
        "{}",
        ready_line(&first)
    );
    let cached = files_under(cache.path());
    assert!(!cached.is_empty(), "nothing was written to the cache");
    let dir = first.kill();

    let second = Server::start_in(dir, &env);
    assert!(
        ready_line(&second).contains("hit"),
        "{}",
        ready_line(&second)
    );
    let id = second.create("cached")["id"].as_str().unwrap().to_owned();
    let dir = second.kill();

    // A damaged cache entry is recompiled, never executed or fatal.
    for file in files_under(cache.path()) {
        std::fs::write(file, b"not machine code").unwrap();
    }
    let third = Server::start_in(dir, &env);
    assert!(
        !ready_line(&third).contains("hit"),
        "{}",
        ready_line(&third)
    );
    let raw = third.get(&format!("/{id}/raw")).send().unwrap();
    assert_eq!(raw.text().unwrap(), "cached");
}

#[test]
fn no_cache_writes_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let s = Server::with_env(&[
        ("WASMPASTE_NO_CACHE", "true"),
        ("WASMPASTE_CACHE_DIR", cache.path().to_str().unwrap()),
    ]);
    assert!(ready_line(&s).contains("off"), "{}", ready_line(&s));
    assert_eq!(s.get("/health").send().unwrap().status(), 200);
    assert!(files_under(cache.path()).is_empty());
}

#[test]
fn the_health_subcommand_checks_a_running_server() {
    let s = Server::start();
    let health = |listen: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wasmpaste"))
            .arg("health")
            .env("WASMPASTE_LISTEN", listen)
            .output()
            .unwrap()
    };
    assert!(health(&s.addr.to_string()).status.success());
    // A wildcard address is reached through loopback, as inside a container.
    let wildcard = format!("0.0.0.0:{}", s.addr.port());
    assert!(health(&wildcard).status.success());
    // --listen given to the check itself wins over the environment.
    let explicit = std::process::Command::new(env!("CARGO_BIN_EXE_wasmpaste"))
        .args(["--listen", &s.addr.to_string(), "health"])
        .env("WASMPASTE_LISTEN", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(explicit.status.success(), "{explicit:?}");
    let dead = s.addr;
    drop(s.kill());
    let out = health(&dead.to_string());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

/// With JSON logs an operator's collector reads stdout too: every line there
/// is a JSON object, with the address a script needs in `url`.
#[test]
fn under_json_logs_every_stdout_line_is_json() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmpaste"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--log-format", "json", "--no-cache"])
        .env("WASMPASTE_DB", dir.path().join("db.sqlite"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<String> = std::io::BufReader::new(stdout)
        .lines()
        .take(2)
        .map(Result::unwrap)
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, what) in lines
        .iter()
        .zip(["wasmpaste admin on", "wasmpaste listening on"])
    {
        let object: serde_json::Value = serde_json::from_str(line).expect(line);
        let url = object["url"].as_str().expect(line);
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        assert_eq!(object["message"], format!("{what} {url}"), "{line}");
        assert_eq!(object["level"], "INFO", "{line}");
        assert!(object["timestamp"].is_string(), "{line}");
    }
}

/// Under JSON logs the reason a start failed is a JSON line on stderr too.
#[test]
fn under_json_logs_a_failed_start_says_why_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-tenants.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmpaste"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--config",
        ])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR line in {stderr}"));
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("no-such-tenants.toml"), "{message}");
}

/// `--db x.db` in the working directory: the cache beside it is a relative
/// path, which wasmtime's cache refuses unless the host resolves it.
#[test]
fn relative_database_and_cache_paths_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(common::host_binary());
    cmd.current_dir(dir.path()).args(["--db", "relative.db"]);
    let (mut child, addr, _, _) =
        common::spawn_command(cmd, &[("WASMPASTE_CACHE_DIR", "cache")]).expect("starts");
    let resp = reqwest::blocking::get(format!("http://{addr}/health")).expect("health");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(resp.status(), 200);
    assert!(dir.path().join("relative.db").exists());
    assert!(dir.path().join("cache").is_dir());
}

#[test]
fn flaskpaste_variable_names_configure_the_same_settings() {
    let s = Server::with_env(&[
        ("FLASKPASTE_PROXY_SECRET", "s3cret"),
        ("FLASKPASTE_MAX_ANON", "10"),
    ]);
    let too_big = s.post("/").body("eleven bytes").send().unwrap();
    assert_eq!(too_big.status(), 413, "FLASKPASTE_MAX_ANON applies");
    // FLASKPASTE_PROXY_SECRET turns the proxy check on: without the secret,
    // a client's own fingerprint header is not trusted.
    let spoofed = s.create_with(s.post("/").header("x-ssl-client-sha1", ALICE).body("hi"));
    assert!(spoofed.get("owner").is_none(), "{spoofed}");
    let proxied = s.create_with(
        s.post("/")
            .header("x-ssl-client-sha1", ALICE)
            .header("x-proxy-secret", "s3cret")
            .body("hi"),
    );
    assert_eq!(proxied["owner"], ALICE);
}

#[test]
fn both_names_of_a_setting_with_different_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = spawn(
        &dir.path().join("db.sqlite"),
        &[
            ("WASMPASTE_PROXY_SECRET", "first-secret"),
            ("FLASKPASTE_PROXY_SECRET", "second-secret"),
        ],
    )
    .expect_err("the server must refuse to start");
    assert!(err.contains("WASMPASTE_PROXY_SECRET"), "{err}");
    assert!(err.contains("FLASKPASTE_PROXY_SECRET"), "{err}");
    assert!(
        !err.contains("first-secret") && !err.contains("second-secret"),
        "{err}"
    );
    // The same value under both names is one setting, not a conflict.
    let s = Server::with_env(&[("WASMPASTE_MAX_ANON", "10"), ("FLASKPASTE_MAX_ANON", "10")]);
    assert_eq!(s.get("/health").send().unwrap().status(), 200);
}

#[test]
fn unknown_flaskpaste_names_get_a_did_you_mean_warning() {
    let s = Server::with_env(&[("FLASKPASTE_MAX_ANNON", "5")]);
    assert_eq!(s.get("/health").send().unwrap().status(), 200);
    assert!(
        s.logged("FLASKPASTE_MAX_ANNON is set but is not a setting of this component; did you mean FLASKPASTE_MAX_ANON?"),
        "{:#?}",
        s.logs()
    );
}
