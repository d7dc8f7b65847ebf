//! MIME detection: magic bytes plus the declared Content-Type. Input: the
//! declared type up to the first newline (when that line is short), then the
//! content. The answer is never empty and never carries control characters
//! (it goes back out in a Content-Type header).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmpaste_guest::domain::mime;

fuzz_target!(|data: &[u8]| {
    let (declared, content) = match data.iter().position(|&b| b == b'\n') {
        Some(at) if at < 80 => (Some(String::from_utf8_lossy(&data[..at])), &data[at + 1..]),
        _ => (None, data),
    };
    let detected = mime::detect(content, declared.as_deref());
    assert!(!detected.is_empty());
    assert!(
        !detected.bytes().any(|b| b.is_ascii_control()),
        "{detected:?}"
    );
});
