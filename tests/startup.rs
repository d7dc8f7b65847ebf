//! Start-up checks: bad settings are refused before the server binds, with
//! messages that name what to fix.

mod common;

use common::{Server, spawn};

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
    assert!(
        s.logs().iter().any(|l| l.contains("WASMPASTE_MAX_ANOM")),
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
