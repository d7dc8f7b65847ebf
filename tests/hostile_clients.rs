//! Ugly inputs over raw sockets and concurrency: nothing here may crash the
//! server, leak a 500, or lose data.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{PARALLEL, Server, json, parallel};

#[test]
fn http10_without_host_gets_a_json_400() {
    let s = Server::start();
    let resp = s.raw_exchange(b"GET /health HTTP/1.0\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.0 400"), "{resp}");
    assert!(resp.contains("\"error\""), "{resp}");
    assert!(resp.contains("x-content-type-options: nosniff"), "{resp}");
}

#[test]
fn garbage_and_huge_heads_are_refused_and_the_server_lives_on() {
    let s = Server::start();
    let garbage = s.raw_exchange(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n");
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage}"
    );
    let mut huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 200_000));
    huge.extend_from_slice(b"\r\n\r\n");
    let resp = s.raw_exchange(&huge);
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 431"),
        "{}",
        &resp[..resp.len().min(200)]
    );
    assert_eq!(s.get("/health").send().unwrap().status(), 200);
}

#[test]
fn non_utf8_header_values_are_handled() {
    let s = Server::start();
    let resp = s.raw_exchange(
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\
          X-SSL-Client-SHA1: a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2\r\n\
          X-Display-Name: caf\xe9\r\n\r\nabc",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        resp.contains("Display name contains invalid characters"),
        "{resp}"
    );
    let resp = s.raw_exchange(
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\
          X-Expiry: \xff\xfe\r\nX-Burn-After-Read: \xff\r\n\r\nabc",
    );
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
}

#[test]
fn client_disconnecting_mid_upload_does_not_hurt_the_server() {
    let s = Server::start();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(s.addr).unwrap();
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial body")
            .unwrap();
        drop(stream);
    }
    // And one that disconnects while the response is being written.
    let big = s.create(vec![7u8; 2 * 1024 * 1024]);
    let mut stream = TcpStream::connect(s.addr).unwrap();
    write!(
        stream,
        "GET /{}/raw HTTP/1.1\r\nHost: x\r\n\r\n",
        big["id"].as_str().unwrap()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(stream);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.get("/health").send().unwrap().status(), 200);
    let id = s.create("still here")["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get(&format!("/{id}/raw")).send().unwrap().text().unwrap(),
        "still here"
    );
    assert!(
        !s.logs().iter().any(|l| l.contains("panicked")),
        "{:#?}",
        s.logs()
    );
}

#[test]
fn spoofed_spin_headers_are_dropped() {
    // The guest must only ever see the host's own spin-client-addr; a client
    // copy would let anyone pick their rate-limit bucket. Until a route shows
    // the address, check that a spoofing request is served normally.
    let s = Server::start();
    let resp = s
        .get("/health")
        .header("spin-client-addr", "6.6.6.6:1")
        .header("spin-full-url", "http://evil/")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[test]
fn concurrent_creates_are_all_stored_intact() {
    let s = Server::start();
    let created: Vec<(String, Vec<u8>)> = parallel(PARALLEL, |i| {
        let key = u8::try_from(i).unwrap();
        let body: Vec<u8> = (0..=255u8).cycle().take(4096).map(|j| j ^ key).collect();
        let v = s.create(body.clone());
        (v["id"].as_str().unwrap().to_owned(), body)
    });
    let mut ids: Vec<_> = created.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), PARALLEL);
    for (id, body) in &created {
        let got = s
            .get(&format!("/{id}/raw"))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(got.as_ref(), body.as_slice());
    }
}

#[test]
fn options_and_head_on_every_route() {
    let s = Server::start();
    let resp = s
        .client
        .request(reqwest::Method::OPTIONS, s.url("/"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["allow"], "GET, HEAD, POST, OPTIONS");
    let head = s.head("/").send().unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers().contains_key("content-length"));
    let head = s.head("/health").send().unwrap();
    assert_eq!(head.status(), 200);
    let body = json(s.get("/health").send().unwrap(), 200);
    assert_eq!(body["status"], "healthy");
}

/// Bodies that never finish hold an instance only until the request
/// deadline: then they get 504, their slots come back, and the server
/// serves everyone else again.
#[test]
fn bodies_that_never_finish_are_cut_off_at_the_deadline() {
    let s = Server::with_env(&[
        // Long enough for the probes below to find both slots taken even on
        // a loaded machine; the test still ends at this deadline.
        ("WASMPASTE_REQUEST_TIMEOUT", "4"),
        ("WASMPASTE_MAX_CONCURRENCY", "2"),
    ]);
    let stall = || {
        let mut stream = TcpStream::connect(s.addr).expect("connect");
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a little")
            .expect("write");
        // No answer for a while: the host has taken the request in and holds
        // a slot for it. Only then does the next stall (or the first probe)
        // go out, so a probe cannot take the second slot first.
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        let silent = matches!(
            std::io::Read::read(&mut stream, &mut byte),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        );
        assert!(silent, "a stalled upload was answered at once");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream
    };
    let stalled = [stall(), stall()];
    // Both slots are taken by clients that will never finish their bodies.
    let mut refused = false;
    for _ in 0..300 {
        let resp = s.get("/health").send().expect("GET");
        if resp.status() == 503 {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(refused, "stalled uploads should occupy the two slots");
    for mut stream in stalled {
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
        assert!(answer.contains("Request timed out"), "{answer}");
    }
    assert_eq!(
        json(s.get("/health").send().expect("GET"), 200)["status"],
        "healthy"
    );
    json(
        s.post("/").body("after the stall").send().expect("POST"),
        201,
    );
}
