//! `wasmpaste health`: asks a running server for `GET /health`, for container
//! health checks in images that have no shell and no curl.
//!
//! A health check is a separate process started beside the server: it shares
//! the container's environment (so `WASMPASTE_LISTEN`) but not the server's
//! arguments, so when the server got `--listen` as an argument the check reads
//! it from the server's command line in `/proc`. It only reads: it never
//! writes a file and never signals the server.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::ffi::OsStringExt as _;
use std::path::Path;
use std::time::Duration;

use clap::CommandFactory as _;
use clap::parser::ValueSource;

use crate::cli::Args;

/// The `--listen` argument's id in [`Args`].
const LISTEN: &str = "listen";

/// The address of the server to check. `own` is this process's `--listen`:
/// used as is when it was given on this command line (`wasmpaste --listen
/// ADDR health`); otherwise the server's own `--listen` argument wins if it
/// has one (`podman run IMAGE --listen 0.0.0.0:9000` with the image's
/// `HEALTHCHECK`), and `own` (the shared environment, or the default) is the
/// fallback.
pub fn listen_address(own: SocketAddr) -> SocketAddr {
    let explicit = Args::command()
        .try_get_matches_from(std::env::args_os())
        .is_ok_and(|m| m.value_source(LISTEN) == Some(ValueSource::CommandLine));
    if explicit {
        return own;
    }
    server_listen_argument(Path::new("/proc")).unwrap_or(own)
}

/// The `--listen` argument of the wasmpaste server this process runs beside:
/// PID 1 (a container's main process), or else the only child of PID 1 that
/// is one (under an init: `--init`'s tini or catatonit). A server is a
/// process of this same executable run without a subcommand. `None` when no
/// server or several are found, or when the server has no `--listen`
/// argument (then it read the same environment this process reads).
fn server_listen_argument(proc: &Path) -> Option<SocketAddr> {
    let exe = std::fs::read_link(proc.join("self/exe")).ok()?;
    if let Some(args) = server_args(&proc.join("1"), &exe) {
        return listen_argument(args);
    }
    let mut children = std::fs::read_dir(proc)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|dir| parent_pid(dir) == Some(1))
        .filter_map(|dir| server_args(&dir, &exe));
    let only = children.next()?;
    if children.next().is_some() {
        return None;
    }
    listen_argument(only)
}

/// The matched arguments of the process `/proc/PID` (`dir`), if it runs
/// `exe` as a server.
fn server_args(dir: &Path, exe: &Path) -> Option<clap::ArgMatches> {
    if std::fs::read_link(dir.join("exe")).ok()? != *exe {
        return None;
    }
    let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
    // NUL-terminated arguments; an empty argument is still an argument.
    let cmdline = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
    let args = cmdline
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()));
    let matches = Args::command().try_get_matches_from(args).ok()?;
    matches.subcommand_name().is_none().then_some(matches)
}

/// `--listen` when it was given as an argument, not taken from the
/// environment or the default.
fn listen_argument(matches: clap::ArgMatches) -> Option<SocketAddr> {
    if matches.value_source(LISTEN) != Some(ValueSource::CommandLine) {
        return None;
    }
    matches.get_one::<SocketAddr>(LISTEN).copied()
}

/// The parent's PID from `/proc/PID/stat` (`dir`): the field after the state,
/// which follows the command name in parentheses (which may hold spaces and
/// parentheses itself, hence the last `)`).
fn parent_pid(dir: &Path) -> Option<u32> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Where to reach a server listening on `listen`: a wildcard address is
/// reached through loopback.
fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `Ok` when the server on `listen` answers `GET /health` with 200.
pub fn check(listen: SocketAddr, timeout: Duration) -> Result<(), String> {
    let addr = target(listen);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let io = |e: std::io::Error| format!("{addr}: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).map_err(io)?;
    match status.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("{addr} is unhealthy: {}", status.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_reached_through_loopback() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(target(v4), "127.0.0.1:8080".parse().unwrap());
        let v6: SocketAddr = "[::]:80".parse().unwrap();
        assert_eq!(target(v6), "[::1]:80".parse().unwrap());
        let fixed: SocketAddr = "10.0.0.5:9000".parse().unwrap();
        assert_eq!(target(fixed), fixed);
    }

    /// A fake `/proc`: this process runs the same executable as `exe` entries
    /// pointing at `BIN`.
    const BIN: &str = "/usr/local/bin/wasmpaste";

    fn fake_proc() -> tempfile::TempDir {
        let proc = tempfile::tempdir().unwrap();
        std::fs::create_dir(proc.path().join("self")).unwrap();
        std::os::unix::fs::symlink(BIN, proc.path().join("self/exe")).unwrap();
        proc
    }

    fn process(proc: &Path, pid: u32, ppid: u32, exe: &str, args: &[&str]) {
        let dir = proc.join(pid.to_string());
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
        let mut cmdline = Vec::new();
        for arg in args {
            cmdline.extend_from_slice(arg.as_bytes());
            cmdline.push(0);
        }
        std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        // A command name with a space and a parenthesis, as the kernel allows.
        let stat = format!("{pid} (odd) name) S {ppid} {pid} {pid} 0 -1 4194560");
        std::fs::write(dir.join("stat"), stat).unwrap();
    }

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_servers_listen_argument_is_found_on_pid_1() {
        let proc = fake_proc();
        process(proc.path(), 1, 0, BIN, &[BIN, "--listen", "0.0.0.0:9000"]);
        process(proc.path(), 8, 0, BIN, &[BIN, "health"]);
        assert_eq!(server_listen_argument(proc.path()), addr("0.0.0.0:9000"));
    }

    #[test]
    fn the_servers_listen_argument_is_found_under_an_init() {
        let proc = fake_proc();
        process(proc.path(), 1, 0, "/catatonit", &["/catatonit", "--", BIN]);
        process(
            proc.path(),
            2,
            1,
            BIN,
            &[BIN, "--listen=[::]:9001", "--no-cache"],
        );
        process(proc.path(), 3, 1, BIN, &[BIN, "health"]);
        process(
            proc.path(),
            4,
            1,
            "/bin/other",
            &["/bin/other", "--listen", "1.2.3.4:5"],
        );
        assert_eq!(server_listen_argument(proc.path()), addr("[::]:9001"));
    }

    #[test]
    fn no_argument_no_server_or_several_leave_the_environment_in_charge() {
        // The server took its address from the environment (or the default).
        let proc = fake_proc();
        process(proc.path(), 1, 0, BIN, &[BIN, "--db", "/data/x.db"]);
        assert_eq!(server_listen_argument(proc.path()), None);
        // PID 1 is another program (a host's init), and no child is a server.
        let proc = fake_proc();
        process(
            proc.path(),
            1,
            0,
            "/sbin/init",
            &["/sbin/init", "--listen", "1.2.3.4:5"],
        );
        assert_eq!(server_listen_argument(proc.path()), None);
        // Two servers under one init: which one to check is not ours to guess.
        let proc = fake_proc();
        process(proc.path(), 1, 0, "/sbin/init", &["/sbin/init"]);
        process(proc.path(), 20, 1, BIN, &[BIN, "--listen", "127.0.0.1:1"]);
        process(proc.path(), 21, 1, BIN, &[BIN, "--listen", "127.0.0.1:2"]);
        assert_eq!(server_listen_argument(proc.path()), None);
    }
}
