//! `GET /client`: the `fpaste` binary the native host serves (the roadmap's
//! `curl https://server/client > fpaste`) is a static program that runs here
//! as downloaded, and talks to the server that served it.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::Server;

/// Whether an ELF executable asks for a dynamic loader (`PT_INTERP`): a
/// static one runs on any x86_64 Linux, whatever its C library.
fn needs_a_loader(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().expect("8 bytes"));
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let table = usize::try_from(u64_at(0x20)).expect("a table offset");
    let (size, count) = (usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    (0..count).any(|i| u32_at(table + i * size) == PT_INTERP)
}

fn fpaste(bin: &Path, home: &Path, server: &str, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(bin)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("FPASTE_SERVER", server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the downloaded fpaste starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write");
    child.wait_with_output().expect("fpaste finishes")
}

#[test]
fn the_downloaded_client_runs_and_round_trips_an_encrypted_paste() {
    let s = Server::start();
    let resp = s.get("/client").send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"fpaste\""
    );
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let binary = resp.bytes().unwrap();
    assert!(
        !needs_a_loader(&binary),
        "the client must be statically linked"
    );

    let head = s.head("/client").send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        binary.len().to_string().as_str()
    );

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("fpaste");
    std::fs::write(&bin, &binary).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = s.url("");
    let help = fpaste(&bin, dir.path(), &server, &["--help"], b"");
    assert!(help.status.success(), "{help:?}");
    assert!(String::from_utf8_lossy(&help.stdout).contains("fpaste"));

    let created = fpaste(
        &bin,
        dir.path(),
        &server,
        &[],
        b"sent with the downloaded client",
    );
    assert!(created.status.success(), "{created:?}");
    let stdout = String::from_utf8(created.stdout).unwrap();
    let url = stdout.lines().next().expect("the paste's URL");
    assert!(
        url.contains('#'),
        "encrypted by default: the key is in the fragment"
    );
    let read = fpaste(&bin, dir.path(), &server, &["get", url], b"");
    assert!(read.status.success(), "{read:?}");
    assert_eq!(read.stdout, b"sent with the downloaded client");
}

#[test]
fn no_client_turns_the_download_off_and_a_client_file_replaces_it() {
    let off = Server::with_env(&[("WASMPASTE_NO_CLIENT", "true")]);
    let resp = off.get("/client").send().unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"], "Not found");
    assert!(body["hint"].as_str().unwrap().contains("cargo install"));

    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("my-fpaste");
    std::fs::write(&own, b"an operator's own build").unwrap();
    let s = Server::with_env(&[("WASMPASTE_CLIENT_FILE", own.to_str().unwrap())]);
    let resp = s.get("/client").send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), b"an operator's own build");
}
