//! The guest must run on Fermyon Spin unchanged: every interface it imports
//! must be one Spin links, and it must export `wasi:http/incoming-handler`.
//!
//! Spin's offer is read from the vendored WIT (`wit/deps/spin@2.0.0`, world
//! `fermyon:spin/platform@2.0.0`, which includes `wasi:cli/imports@0.2.0`).
//! Versions match the way wasmtime links them: same package and interface,
//! same `0.x` line (a guest built against WASI 0.2.6 runs on a 0.2.0 host),
//! whereas `wasm-tools component targets` compares patch versions exactly and
//! would refuse a valid guest. The guest's imports must also all be listed in
//! `tests/fixtures/guest-imports.txt`, so a new one is a reviewed decision.
//!
//! The API suites themselves also run on a real Spin (the `*_on_spin` test
//! targets, see tests/common/spin.rs); this one checks the component's
//! interface and what `spin up` does with the documented configuration.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Server, json};
use wasmparser::{Parser, Payload};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// An interface name split into `ns:pkg/iface` and its version.
fn split(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    }
}

/// The compatibility line of a version: `0.2.6` -> `0.2`, `2.0.0` -> `2`.
fn line(version: &str) -> String {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}"),
        (Some(major), _) => major.to_owned(),
        _ => version.to_owned(),
    }
}

/// `ns:pkg/iface@line`, the form the fixture lists.
fn key(name: &str) -> String {
    match split(name) {
        (path, Some(version)) => format!("{path}@{}", line(version)),
        (path, None) => path.to_owned(),
    }
}

/// Top-level imports and exports of a component (not of the modules inside it).
fn component_world(wasm: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.expect("the guest is a valid component") {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    imports.push(import.expect("import").name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    exports.push(export.expect("export").name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    (imports, exports)
}

/// Every interface of `fermyon:spin/platform@2.0.0`, from the vendored WIT.
fn spin_platform() -> BTreeSet<String> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(Path::new(WORKSPACE).join("wit"))
        .expect("the vendored WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("fermyon:spin/platform@2.0.0"))
        .expect("Spin's platform world is vendored");
    resolve.worlds[world]
        .imports
        .keys()
        .filter_map(|k| match k {
            wit_parser::WorldKey::Interface(id) => resolve.id_of(*id),
            wit_parser::WorldKey::Name(_) => None,
        })
        .collect()
}

fn reviewed() -> BTreeSet<String> {
    let path = Path::new(WORKSPACE).join("tests/fixtures/guest-imports.txt");
    std::fs::read_to_string(&path)
        .expect("the fixture")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_guest_import_is_provided_by_spin() {
    let platform: BTreeSet<String> = spin_platform().iter().map(|n| key(n)).collect();
    // Sanity: the world really is Spin's, with WASI included.
    for expected in [
        "fermyon:spin/sqlite@2",
        "wasi:io/streams@0.2",
        "wasi:http/types@0.2",
    ] {
        assert!(
            platform.contains(expected),
            "{expected} not in {platform:#?}"
        );
    }
    let (imports, _) = component_world(wasmpaste_host::guest::EMBEDDED);
    assert!(!imports.is_empty());
    let missing: Vec<&String> = imports
        .iter()
        .filter(|i| !platform.contains(&key(i)))
        .collect();
    assert!(
        missing.is_empty(),
        "the guest imports what Spin does not provide: {missing:?}"
    );
}

#[test]
fn the_guest_imports_only_reviewed_interfaces() {
    let (imports, _) = component_world(wasmpaste_host::guest::EMBEDDED);
    let actual: BTreeSet<String> = imports.iter().map(|i| key(i)).collect();
    let reviewed = reviewed();
    let new: Vec<&String> = actual.difference(&reviewed).collect();
    assert!(
        new.is_empty(),
        "new imports {new:?}: check Spin links them, then list them in \
         tests/fixtures/guest-imports.txt (all imports: {actual:#?})"
    );
    let stale: Vec<&String> = reviewed.difference(&actual).collect();
    assert!(
        stale.is_empty(),
        "no longer imported, remove from the fixture: {stale:?}"
    );
}

#[test]
fn the_guest_exports_the_http_handler() {
    let (_, exports) = component_world(wasmpaste_host::guest::EMBEDDED);
    assert!(
        exports
            .iter()
            .any(|e| key(e) == "wasi:http/incoming-handler@0.2"),
        "{exports:?}"
    );
}

#[test]
fn version_lines_follow_wasmtime() {
    assert_eq!(key("wasi:io/streams@0.2.6"), "wasi:io/streams@0.2");
    assert_eq!(key("wasi:io/streams@0.2.0"), key("wasi:io/streams@0.2.6"));
    assert_ne!(key("wasi:io/streams@0.3.0"), key("wasi:io/streams@0.2.0"));
    assert_eq!(key("fermyon:spin/sqlite@2.0.0"), "fermyon:spin/sqlite@2");
    assert_ne!(
        key("fermyon:spin/sqlite@3.0.0"),
        key("fermyon:spin/sqlite@2.0.0")
    );
    // A foreign interface never matches Spin's set.
    let platform: BTreeSet<String> = spin_platform().iter().map(|n| key(n)).collect();
    assert!(!platform.contains(&key("wasi:nn/inference@0.2.0-rc-2024-10-28")));
}

/// A runtime-config file, the way Spin operators place the database
/// (docs/deployment.md): the paste lands in the file it names.
#[test]
fn a_runtime_config_file_places_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("pastes.db");
    let rc = dir.path().join("runtime-config.toml");
    std::fs::write(
        &rc,
        format!(
            "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n",
            db.display().to_string()
        ),
    )
    .expect("write the runtime config");
    let s = Server::on_spin(
        &[("WASMPASTE_POW_DIFFICULTY", "0")],
        &["--runtime-config-file", &rc.display().to_string()],
    );
    let id = s.create("placed")["id"].as_str().expect("id").to_owned();
    let stored: String = rusqlite::Connection::open(&db)
        .expect("the configured database")
        .query_row("SELECT content FROM pastes WHERE id = ?1", [&id], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .expect("the paste, in the configured file");
    assert_eq!(stored, "placed");
    assert!(
        !s.db_path().exists(),
        "the default database was used: {}",
        s.db_path().display()
    );
}

/// The native host refuses to start with a variable that does not parse;
/// Spin has no start-up hook, so there the same sentence is logged, the
/// health check fails and requests that need the variable get a JSON 500
/// naming it.
#[test]
fn a_misconfigured_variable_is_reported_as_on_the_native_host() {
    let env = [("WASMPASTE_POW_DIFFICULTY", "abc")];
    let dir = tempfile::tempdir().expect("temp dir");
    let refused = match common::spawn(&dir.path().join("w.db"), &env) {
        Err(refused) => refused,
        Ok((mut started, ..)) => {
            let _ = started.kill();
            String::from("the native host started")
        }
    };
    let sentence = refused
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("variable `pow_difficulty`"));
    assert!(
        sentence.is_some(),
        "no sentence naming the variable: {refused}"
    );
    let sentence = sentence.expect("checked").to_owned();

    let s = Server::on_spin(&env, &[]);
    let health = json(s.get("/health").send().expect("GET /health"), 503);
    assert_eq!(health["configuration"], "invalid");
    let create = json(s.post("/").body("x").send().expect("POST /"), 500);
    assert_eq!(create["error"], "Server configuration error");
    assert_eq!(create["variable"], "pow_difficulty");
    assert!(s.logged(&sentence), "{sentence:?} not in {:#?}", s.logs());
    // Everything that does not need the variable still works.
    json(s.get("/").send().expect("GET /"), 200);
}

/// Spin opens its database in rollback-journal mode (every write syncs a
/// journal and blocks readers); the component's schema 5 asks for WAL,
/// which stays with the file.
#[test]
fn the_component_switches_the_spin_database_to_wal() {
    let s = Server::on_spin(&[("WASMPASTE_POW_DIFFICULTY", "0")], &[]);
    s.create("x");
    let mode: String = rusqlite::Connection::open(s.db_path())
        .expect("open the database")
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}
