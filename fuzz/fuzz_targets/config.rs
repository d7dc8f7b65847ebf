//! Operator input: every setting's parser on arbitrary values, then the
//! whole configuration from arbitrary `name=value` lines, and certificate
//! common names (which end up in certificates and the audit log).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmpaste_guest::config::{ALL, Config};
use wasmpaste_guest::domain::pki;
use wasmpaste_guest::testkit::MapVars;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for setting in ALL {
        let _ = setting.check(&text);
    }
    let mut vars = MapVars::default();
    for line in text.lines() {
        if let Some((name, value)) = line.split_once('=') {
            vars = vars.with(name, value);
        }
    }
    let _ = Config::new(&vars).check_all();

    if let Ok(Some(name)) = pki::common_name(Some(&text)) {
        assert!(name.chars().count() <= pki::MAX_COMMON_NAME, "{name:?}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }
});
