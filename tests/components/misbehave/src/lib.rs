//! A component that misbehaves on request, so the host's end-to-end tests can
//! prove that one bad request costs that request only: a CPU loop is stopped
//! by the timeout, unbounded allocation by the memory limit, a panic traps,
//! and the next request still gets a fresh, working instance.
//!
//! It implements the real guest's world (`wasmpaste:app/wasmpaste`), so the
//! host links and runs it exactly like the guest. The routes that behave
//! report what the host lets a component see (`/db`, `/var`) or do (`/log`,
//! `/sleep`), and `/served` how many requests this instance has handled (to
//! observe instance reuse). `/leak` answers, then leaks its request (body
//! unread) instead of dropping it. Every response is JSON; query values are
//! not percent-decoded.

// Only a wasm build is a component. Natively (`cargo build --workspace`) the
// crate is empty: the native linker rejects export names such as
// `wasi:http/incoming-handler@0.2.0#handle`.
#![cfg(target_arch = "wasm32")]

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

// The generated glue and `export!` expand to `unsafe` code (the canonical
// ABI); this module holds only them, and nothing else in the crate may.
#[allow(unsafe_code)]
mod bindings {
    use super::Component;

    wit_bindgen::generate!({
        path: "../../../wit",
        world: "wasmpaste:app/wasmpaste",
        // Also binds what the world's interfaces use, among them the
        // monotonic clock (`wasi:http/types` uses its `duration`) that
        // `/sleep` waits on: no world of our own is needed.
        generate_all,
    });

    export!(Component);
}

use bindings::exports::wasi::http0_2_0::incoming_handler::Guest as IncomingHandler;
use bindings::exports::wasmpaste::app::maintenance::{
    CleanupReport, ConfigReport, Guest as MaintenanceGuest,
};
use bindings::fermyon::spin::{sqlite, variables};
use bindings::wasi::clocks0_2_0::monotonic_clock;
use bindings::wasi::http0_2_0::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Component;

/// Requests this instance has handled, the current one included. Memory
/// outlives a request only when the host reuses the instance.
static SERVED: AtomicU64 = AtomicU64::new(0);

impl IncomingHandler for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        SERVED.fetch_add(1, Ordering::Relaxed);
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((&path_with_query, ""));
        let (status, body) = route(path, query);
        send(out, status, &body);
        if path == "/leak" {
            // The handle is never dropped: the host keeps the request, and
            // its body, in this instance's resource table.
            std::mem::forget(request);
        }
    }
}

/// Nothing to clean and nothing to configure: the host's startup checks pass.
impl MaintenanceGuest for Component {
    fn cleanup() -> Result<CleanupReport, String> {
        Ok(CleanupReport {
            expired_pastes: 0,
            expired_short_urls: 0,
            used_nonces: 0,
            rate_windows: 0,
            content_hashes: 0,
        })
    }

    fn check_config() -> ConfigReport {
        ConfigReport {
            known: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// The response (status, JSON body) for a request path; the method is ignored.
fn route(path: &str, query: &str) -> (u16, String) {
    match path {
        "/ok" | "/leak" => (200, r#"{"ok":true}"#.to_owned()),
        "/served" => (
            200,
            format!(r#"{{"served":{}}}"#, SERVED.load(Ordering::Relaxed)),
        ),
        "/loop" => burn_cpu_forever(),
        "/alloc" => allocate_forever(),
        #[allow(clippy::panic, reason = "trapping is this route's whole purpose")]
        "/panic" => panic!("misbehave: panic on purpose"),
        "/sleep" => sleep(param(query, "ms")),
        "/db" => open_db(param(query, "label").unwrap_or_default()),
        "/var" => variable(param(query, "name").unwrap_or_default()),
        "/log" => log(param(query, "msg").unwrap_or_default()),
        _ => (404, r#"{"error":"Not found"}"#.to_owned()),
    }
}

/// Never returns and never yields to the host: only epoch interruption (the
/// request timeout) can stop it. `black_box` keeps the optimizer from
/// removing the loop body.
fn burn_cpu_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

/// Grows memory 1 MiB at a time until the host's limit refuses to grow it
/// (the allocation failure aborts, which traps). The chunks are filled with
/// non-zero bytes so every page is really touched, and kept alive in `chunks`.
fn allocate_forever() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        chunks.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&chunks);
    }
}

/// Waits on a monotonic-clock pollable: the instance blocks in the host
/// without burning CPU, holding its concurrency slot for `ms` milliseconds.
fn sleep(ms: Option<&str>) -> (u16, String) {
    let Some(ms) = ms.and_then(|ms| ms.parse::<u64>().ok()) else {
        return (
            400,
            r#"{"error":"ms must be a whole number of milliseconds"}"#.to_owned(),
        );
    };
    monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
    (200, format!(r#"{{"slept_ms":{ms}}}"#))
}

/// Opens the database named `label` (the host decides which names it allows)
/// and, when that works, counts the schema's entries to prove it is usable.
fn open_db(label: &str) -> (u16, String) {
    let label_json = json_string(label);
    let result = sqlite::Connection::open(label)
        .and_then(|connection| connection.execute("SELECT count(*) FROM sqlite_master", &[]));
    let body = match result {
        Ok(counted) => {
            let tables = match counted.rows.first().and_then(|row| row.values.first()) {
                Some(sqlite::Value::Integer(n)) => n.to_string(),
                _ => "null".to_owned(),
            };
            format!(r#"{{"label":{label_json},"result":"ok","tables":{tables}}}"#)
        }
        Err(error) => {
            let (kind, detail) = sqlite_error(&error);
            format!(
                r#"{{"label":{label_json},"result":"{kind}","detail":{}}}"#,
                json_string(&detail)
            )
        }
    };
    (200, body)
}

/// The WIT variant name in kebab-case, and a sentence about it.
fn sqlite_error(error: &sqlite::Error) -> (&'static str, String) {
    match error {
        sqlite::Error::NoSuchDatabase => ("no-such-database", "no such database".into()),
        sqlite::Error::AccessDenied => ("access-denied", "access denied".into()),
        sqlite::Error::InvalidConnection => ("invalid-connection", "invalid connection".into()),
        sqlite::Error::DatabaseFull => ("database-full", "database full".into()),
        sqlite::Error::Io(message) => ("io", message.clone()),
    }
}

/// Reads one application variable, as the host's configuration exposes it.
fn variable(name: &str) -> (u16, String) {
    let name_json = json_string(name);
    let body = match variables::get(name) {
        Ok(value) => format!(r#"{{"name":{name_json},"value":{}}}"#, json_string(&value)),
        Err(error) => {
            let (kind, detail) = match &error {
                variables::Error::InvalidName(d) => ("invalid-name", d),
                variables::Error::Undefined(d) => ("undefined", d),
                variables::Error::Provider(d) => ("provider", d),
                variables::Error::Other(d) => ("other", d),
            };
            format!(
                r#"{{"name":{name_json},"error":"{kind}","detail":{}}}"#,
                json_string(detail)
            )
        }
    };
    (200, body)
}

/// Writes one JSON log line to stderr in a single write, as the real guest's
/// log lines look to the host.
fn log(message: &str) -> (u16, String) {
    let line = format!(
        "{{\"logger\":\"misbehave\",\"message\":{}}}\n",
        json_string(message)
    );
    let written = std::io::stderr().write_all(line.as_bytes()).is_ok();
    (200, format!(r#"{{"logged":{written}}}"#))
}

/// The value of the first `name=value` pair called `name` (not decoded).
fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// `s` as a JSON string literal, quotes included.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Sends a JSON response. Failures (a client gone) end the request quietly:
/// this component traps only on purpose.
fn send(out: ResponseOutparam, status: u16, body: &str) {
    let headers = Fields::from_list(&[
        ("content-type".to_owned(), b"application/json".to_vec()),
        (
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    if response.set_status_code(status).is_err() {
        let _ = response.set_status_code(500);
    }
    let Ok(out_body) = response.body() else {
        ResponseOutparam::set(out, Ok(response));
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    let Ok(stream) = out_body.write() else {
        return;
    };
    // blocking-write-and-flush takes at most 4096 bytes per call.
    let written = body
        .as_bytes()
        .chunks(4096)
        .all(|chunk| stream.blocking_write_and_flush(chunk).is_ok());
    // The stream is a child of the body: it must go before the body finishes.
    drop(stream);
    if written {
        let _ = OutgoingBody::finish(out_body, None);
    }
}
