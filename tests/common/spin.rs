//! The Spin side of the harness: `spin up` serving the component the
//! native host embeds (how: bench/src/spin_up.rs, shared with the
//! benchmarks). Variables are passed as `SPIN_VARIABLE_<NAME>`, as
//! docs/deployment.md tells operators.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;

use super::Spawned;

use super::spin_up;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// What every Spin server of this test binary shares.
struct Setup {
    spin: PathBuf,
    /// A directory holding the manifest (`spin.toml`).
    app: tempfile::TempDir,
    /// The component's variables, from the manifest's `[variables]`.
    variables: BTreeSet<String>,
}

/// Starts `spin up` with its state (and so its default database) in
/// `state_dir`, `env` holding `WASMPASTE_<NAME>` guest variables, and more
/// `args` for `spin up`.
pub fn spawn(state_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Result<Spawned, String> {
    let setup = setup();
    let mut cmd = up_command(setup, state_dir, args);
    for (name, value) in env {
        cmd.env(spin_variable(setup, name), value);
    }
    start(cmd)
}

fn up_command(setup: &Setup, state_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = spin_up::up_command(
        &setup.spin,
        &setup.app.path().join("spin.toml"),
        state_dir,
        args,
    );
    cmd.env_remove("RUST_BACKTRACE");
    cmd
}

/// `WASMPASTE_POW_DIFFICULTY` -> `SPIN_VARIABLE_POW_DIFFICULTY`. A native
/// host setting has no Spin equivalent: a test that needs one belongs in a
/// suite that only runs on the native host.
#[allow(clippy::panic)] // test harness: a misplaced test is a failed test
fn spin_variable(setup: &Setup, name: &str) -> String {
    let variable = name
        .strip_prefix("WASMPASTE_")
        .map(str::to_ascii_lowercase)
        .filter(|v| setup.variables.contains(v))
        .unwrap_or_else(|| {
            panic!(
                "{name} is not a variable of the component (spin.toml [variables]) but a native \
                 host setting: a test that needs it belongs in a native-only suite"
            )
        });
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}

/// Runs `cmd` and waits for Spin's `Serving http://ADDR` line.
fn start(mut cmd: Command) -> Result<Spawned, String> {
    let mut child = cmd.spawn().map_err(|e| format!("cannot run spin: {e}"))?;
    let logs = super::collect_lines(child.stderr.take().ok_or("no stderr")?);
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(addr) = spin_up::serving_addr(&line) {
            // Keep draining stdout so Spin never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return Ok((child, addr, logs));
        }
    }
    kill_group(&child);
    let status = child.wait().map_err(|e| e.to_string())?;
    std::thread::sleep(std::time::Duration::from_millis(100));
    let logs = logs.lock().map(|l| l.join("\n")).unwrap_or_default();
    Err(format!("spin up exited ({status}) before serving:\n{logs}"))
}

/// Sends SIGKILL to the process group `child` leads.
pub fn kill_group(child: &Child) {
    spin_up::kill_group(child.id());
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let spin = spin_binary();
        let manifest = std::fs::read_to_string(Path::new(WORKSPACE).join("spin.toml"))
            .expect("the workspace's spin.toml");
        let variables = manifest
            .parse::<toml::Table>()
            .expect("spin.toml parses")
            .get("variables")
            .and_then(toml::Value::as_table)
            .expect("spin.toml has [variables]")
            .keys()
            .cloned()
            .collect();
        let app = tempfile::tempdir().expect("temp dir");
        let manifest = spin_up::with_source(&manifest, &guest_wasm()).expect("spin.toml");
        std::fs::write(app.path().join("spin.toml"), manifest).expect("write the manifest");
        let setup = Setup {
            spin,
            app,
            variables,
        };
        warm_up(&setup);
        setup
    })
}

/// The component the native host embeds (its build script names it).
#[allow(clippy::panic)]
fn guest_wasm() -> PathBuf {
    let Some(path) = option_env!("WASMPASTE_GUEST_WASM_PATH") else {
        panic!("the Spin suites belong to wasmpaste-host, whose build names the component")
    };
    let path = PathBuf::from(path);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// One `spin up` before the tests start theirs: it compiles the component
/// into Wasmtime's cache, so that the servers the tests start at once load
/// machine code instead of each running Cranelift.
#[allow(clippy::panic)]
fn warm_up(setup: &Setup) {
    let state = tempfile::tempdir().expect("temp dir");
    match start(up_command(setup, state.path(), &[])) {
        Ok((mut child, _, _)) => {
            kill_group(&child);
            let _ = child.wait();
        }
        Err(e) => panic!("{e}"),
    }
}

/// `spin` (`SPIN_BIN`, else PATH), or a skip ([`super::tool_or_skip`]).
fn spin_binary() -> PathBuf {
    super::tool_or_skip("spin", "SPIN_BIN", "Spin 4.0.2")
}
