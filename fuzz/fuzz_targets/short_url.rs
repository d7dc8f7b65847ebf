//! Short-URL targets: whatever `validate_target` accepts is safe to send in
//! a `Location` header: ASCII, no control characters, http(s) only, within
//! the length limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmpaste_guest::domain::short_url;

const MAX_LEN: u64 = 2048;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(target) = short_url::validate_target(&raw, MAX_LEN) {
        assert!(target.is_ascii(), "{target:?}");
        assert!(!target.bytes().any(|b| b.is_ascii_control()), "{target:?}");
        assert!(
            target.starts_with("http://") || target.starts_with("https://"),
            "{target:?}"
        );
        assert!(target.len() as u64 <= MAX_LEN, "{target:?}");
    }
});
