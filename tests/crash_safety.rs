//! Crash safety: SIGKILL the host in the middle of concurrent creates, start
//! it again on the same files, and every paste that got a 201 is there, byte
//! for byte, in a database that passes `PRAGMA integrity_check`.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Server;

const WRITERS: usize = 8;

/// Content no other writer produces, of varying size (some past one page).
fn content(writer: usize, n: usize) -> Vec<u8> {
    let mut bytes = format!("writer {writer} paste {n}\n").into_bytes();
    let filler = (n * 7919 + writer * 104_729) % 9000;
    bytes.extend((0..filler).map(|i| u8::try_from((i * 31 + writer) % 251).unwrap_or(0)));
    bytes
}

#[test]
fn acknowledged_pastes_survive_sigkill() {
    let s = Server::start();
    let base = s.url("");
    let stop = AtomicBool::new(false);
    let acknowledged: Mutex<Vec<(String, Vec<u8>)>> = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (base, stop, acknowledged) = (&base, &stop, &acknowledged);
            scope.spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = content(writer, n);
                    let Ok(r) = client.post(format!("{base}/")).body(body.clone()).send() else {
                        break; // the server is gone
                    };
                    if r.status() != 201 {
                        continue;
                    }
                    let Ok(created) = r.json::<serde_json::Value>() else {
                        break;
                    };
                    let id = created["id"].as_str().unwrap().to_owned();
                    acknowledged.lock().unwrap().push((id, body));
                }
            });
        }
        // Let the writers get going, then SIGKILL the host while they write.
        while acknowledged.lock().unwrap().len() < 200 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let dir = s.kill();
        // Writers notice the dead server on their next request and stop.
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        check(dir, &acknowledged);
    });
}

fn check(dir: tempfile::TempDir, acknowledged: &Mutex<Vec<(String, Vec<u8>)>>) {
    let db = dir.path().join("wasmpaste.db");
    {
        let conn = rusqlite::Connection::open(&db).expect("check after restart");
        let verdict: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("check after restart");
        assert_eq!(verdict, "ok");
    }
    let s = Server::start_in(dir, &[]);
    let pastes = acknowledged.lock().expect("check after restart").clone();
    assert!(
        pastes.len() >= 40,
        "only {} pastes were acknowledged",
        pastes.len()
    );
    eprintln!("{} acknowledged pastes checked after SIGKILL", pastes.len());
    for (id, body) in &pastes {
        let r = s
            .get(&format!("/{id}/raw"))
            .send()
            .expect("check after restart");
        assert_eq!(r.status(), 200, "acknowledged paste {id} is gone");
        assert_eq!(
            &r.bytes().expect("check after restart")[..],
            &body[..],
            "paste {id} changed"
        );
    }
}
