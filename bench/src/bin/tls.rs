//! `wasmpaste-tls`: what the host's own HTTPS listener costs, side by side
//! with its plain port in one run. Keep-alive cells (raw read and create of
//! 1 KiB pastes, HTTP/1.1) over plain TCP and over TLS, then new-connection
//! cells: a full handshake (no resumption), one `GET /health` and close,
//! over plain TCP, TLS without and TLS with a client certificate.
//!
//!   cargo build --release && cargo run --release -p wasmpaste-bench --bin wasmpaste-tls
//!
//! One client for every cell (rustls with ring, the server's own stack, and
//! HTTP/1.1 written by hand over it or over plain TCP), so the columns differ
//! by TLS alone. Certificates are P-256, made with `openssl`. Options
//! (environment): LOAD_SECONDS (per cell, default 5), LOAD_CONNECTIONS
//! (default 16), WASMPASTE_BIN (default: `wasmpaste` beside this binary).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use wasmpaste_loadgen::{Options, Scratch, Server, exit};

const PASTE_BYTES: usize = 1024;

fn main() -> ExitCode {
    exit(bench())
}

fn bench() -> Result<(), String> {
    let options = Options::from_env_or(5.0, "16")?;
    let connections = options.connections.clone();
    let scratch = Scratch::new("wasmpaste-tls")?;
    certificates(&scratch.path)?;
    let mut command = Command::new(&options.bin);
    command
        .current_dir(&scratch.path)
        .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
        .args(["--tls-cert", "server.crt", "--tls-key", "server.key"])
        .args(["--client-ca", "ca.crt", "--db", "bench.db"])
        .env("WASMPASTE_POW_DIFFICULTY", "0")
        .env("WASMPASTE_RATE_MAX", "0")
        .env("WASMPASTE_DEDUP_MAX", "0");
    let server = Server::start(command, &scratch.path.join("host.log"))?;
    let plain = address(&server.base)?;
    let https = address(server.https.as_deref().ok_or("no HTTPS listener")?)?;
    let anonymous = client_config(&scratch.path, false)?;
    let with_cert = client_config(&scratch.path, true)?;

    println!("{}", options.banner("wasmpaste-tls"));
    println!(
        "{:<28} {:>5} {:>10} {:>9} {:>9}",
        "cell", "conns", "req/s", "p50 ms", "p99 ms"
    );
    let body = vec![b'x'; PASTE_BYTES];
    let id = {
        let mut conn = Conn::open(plain, None)?;
        let (status, answer) = conn.request("POST", "/", &body, false)?;
        if status != 201 {
            return Err(format!("create: HTTP {status}"));
        }
        let answer: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        answer["id"].as_str().ok_or("no id")?.to_owned()
    };
    let read = format!("/{id}/raw");
    for &n in &connections {
        for (label, tls) in [("plain", None), ("tls", Some(&anonymous))] {
            let addr = if tls.is_some() { https } else { plain };
            let cell = run(
                n,
                options.seconds,
                || Conn::open(addr, tls),
                |conn, _| conn.request("GET", &read, &[], false).map(|(s, _)| s),
            );
            cell.print(&format!("raw read, keep-alive, {label}"), n);
            let cell = run(
                n,
                options.seconds,
                || Conn::open(addr, tls),
                |conn, i| {
                    // A different body each time: dedup is off, but keep it honest.
                    let mut body = body.clone();
                    body[..8].copy_from_slice(&i.to_le_bytes());
                    conn.request("POST", "/", &body, false).map(|(s, _)| s)
                },
            );
            cell.print(&format!("create, keep-alive, {label}"), n);
        }
        for (label, addr, tls) in [
            ("new conn, plain", plain, None),
            ("new conn, tls", https, Some(&anonymous)),
            ("new conn, tls+client cert", https, Some(&with_cert)),
        ] {
            let cell = run(
                n,
                options.seconds,
                || Ok(()),
                |(), _| {
                    let mut conn = Conn::open(addr, tls)?;
                    conn.request("GET", "/health", &[], true).map(|(s, _)| s)
                },
            );
            cell.print(label, n);
        }
    }
    Ok(())
}

/// `127.0.0.1:PORT` of `http(s)://127.0.0.1:PORT`.
fn address(url: &str) -> Result<SocketAddr, String> {
    url.split("://")
        .nth(1)
        .ok_or_else(|| format!("not a URL: {url}"))?
        .parse()
        .map_err(|e| format!("{url}: {e}"))
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all
/// P-256, in `dir`.
fn certificates(dir: &Path) -> Result<(), String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.crt"],
            &["-days", "1", "-subj", "/CN=bench CA"],
        ]
        .concat(),
    )?;
    for (name, ext) in [
        ("server", "subjectAltName=IP:127.0.0.1\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).map_err(|e| e.to_string())?;
        let (key, csr, crt, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &["-keyout", &key, "-out", &csr, "-subj", "/CN=bench"],
            ]
            .concat(),
        )?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "1",
            "-extfile",
            &extfile,
        ])?;
    }
    Ok(())
}

/// A client config trusting the bench CA, without session resumption (every
/// new connection is a full handshake), with or without the client certificate.
fn client_config(dir: &Path, with_cert: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("ca.crt")).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = if with_cert {
        let chain = CertificateDer::pem_file_iter(dir.join("client.crt"))
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let key =
            PrivateKeyDer::from_pem_file(dir.join("client.key")).map_err(|e| e.to_string())?;
        builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| e.to_string())?
    } else {
        builder.with_no_client_auth()
    };
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// One HTTP/1.1 connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn open(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Self, String> {
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let Some(config) = tls else {
            return Ok(Self::Plain(tcp));
        };
        let name = ServerName::IpAddress(addr.ip().into());
        let conn =
            rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("handshake: {e}"))?;
        }
        Ok(Self::Tls(Box::new(stream)))
    }

    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => s.as_mut(),
        }
    }

    /// Sends one request and reads its answer (`Content-Length` framed);
    /// the status and body.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        close: bool,
    ) -> Result<(u16, Vec<u8>), String> {
        let connection = if close { "close" } else { "keep-alive" };
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n");
        if method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        let io = self.io();
        io.write_all(&out).map_err(|e| e.to_string())?;
        io.flush().map_err(|e| e.to_string())?;
        read_response(io)
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn read_response(io: &mut dyn ReadWrite) -> Result<(u16, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = io.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no Content-Length")?;
    while buf.len() < head_end + length {
        let n = io.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed in the body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, buf[head_end..head_end + length].to_vec()))
}

/// Latencies (µs) and failures of one cell.
struct Cell {
    latencies: Vec<u32>,
    failures: u64,
    seconds: f64,
}

impl Cell {
    fn print(&self, label: &str, connections: usize) {
        let pct = |p: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let i = ((self.latencies.len().saturating_sub(1)) as f64 * p).round() as usize;
            self.latencies
                .get(i)
                .map_or(0.0, |&us| f64::from(us) / 1000.0)
        };
        #[allow(clippy::cast_precision_loss)]
        let rps = self.latencies.len() as f64 / self.seconds;
        let failures = if self.failures > 0 {
            format!("  ({} failed)", self.failures)
        } else {
            String::new()
        };
        println!(
            "{label:<28} {connections:>5} {rps:>10.0} {:>9.2} {:>9.2}{failures}",
            pct(0.5),
            pct(0.99)
        );
    }
}

/// `connections` threads for `seconds`, each with its own `open()` state,
/// calling `op(state, n)`; a 2xx status counts.
fn run<S>(
    connections: usize,
    seconds: f64,
    open: impl Fn() -> Result<S, String> + Sync,
    op: impl Fn(&mut S, u64) -> Result<u16, String> + Sync,
) -> Cell {
    let stop = AtomicBool::new(false);
    let results: Vec<(Vec<u32>, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                let (stop, open, op) = (&stop, &open, &op);
                scope.spawn(move || {
                    let (mut latencies, mut failures) = (Vec::new(), 0);
                    let mut state = None;
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        if state.is_none() {
                            state = open().ok();
                        }
                        let Some(s) = state.as_mut() else {
                            failures += 1;
                            continue;
                        };
                        n += 1;
                        match op(s, n) {
                            Ok(status) if (200..300).contains(&status) => {
                                let us = started.elapsed().as_micros();
                                latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                            }
                            _ => {
                                failures += 1;
                                state = None;
                            }
                        }
                    }
                    (latencies, failures)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut cell = Cell {
        latencies: Vec::new(),
        failures: 0,
        seconds,
    };
    for (latencies, failures) in results {
        cell.latencies.extend(latencies);
        cell.failures += failures;
    }
    cell.latencies.sort_unstable();
    cell
}
