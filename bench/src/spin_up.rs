//! Running the component on Fermyon Spin the way the tests and benchmarks
//! do it: `spin up` on the project's own `spin.toml`, with one change, its
//! component `source` pointed at the `.wasm` the native host embeds (built
//! by `host/build.rs` with the manifest's own build command: same package,
//! profile and target), so both hosts run the same bytes and no third build
//! of the guest is needed. Plain std, so the tests' harness
//! (`tests/common/spin.rs`) includes this file as well.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `spin` from `SPIN_BIN`, else from PATH.
pub fn find_spin() -> Option<PathBuf> {
    find_program("spin", "SPIN_BIN")
}

/// A third-party program (`spin`, `sqld`): the file `var` names, else
/// `name` on PATH.
pub fn find_program(name: &str, var: &str) -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(var) {
        return Some(PathBuf::from(bin));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `manifest` (the text of `spin.toml`) with its one component `source`
/// replaced by `wasm`.
pub fn with_source(manifest: &str, wasm: &Path) -> Result<String, String> {
    let mut replaced = 0;
    let mut out = String::with_capacity(manifest.len());
    for line in manifest.lines() {
        if line.starts_with("source = ") {
            replaced += 1;
            out.push_str(&format!("source = {:?}", wasm.display().to_string()));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if replaced == 1 {
        Ok(out)
    } else {
        Err(format!(
            "spin.toml has {replaced} `source = ` lines; expected the component's one"
        ))
    }
}

/// `spin up --from MANIFEST --listen 127.0.0.1:0 --state-dir STATE ARGS`,
/// with piped output, in a process group of its own: `spin up` serves from
/// a child (`spin trigger http`) that a signal to `spin up` alone leaves
/// running, so stop it with [`kill_group`].
pub fn up_command(spin: &Path, manifest: &Path, state_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(spin);
    cmd.arg("up")
        .arg("--from")
        .arg(manifest)
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state_dir)
        .args(args)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Variables come from the caller, not from whoever started us.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SPIN_VARIABLE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The address in Spin's `Serving http://ADDR` line (with `--listen
/// 127.0.0.1:0` it is the port the system chose).
pub fn serving_addr(line: &str) -> Option<SocketAddr> {
    line.trim().strip_prefix("Serving http://")?.parse().ok()
}

/// SIGKILL to the process group `leader` leads.
pub fn kill_group(leader: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{leader}")])
        .stderr(Stdio::null())
        .status();
}
