//! Proof-of-work tokens and solutions. Input: `token\nsolution`, the first
//! byte choosing the minimum difficulty. A token whose signature part is
//! `SIGN` is signed with the server key first, so the fuzzer gets past the
//! HMAC to the expiry, difficulty and work checks. Whatever `verify` accepts
//! must really be unexpired, hard enough and solved.
#![no_main]

use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use wasmpaste_guest::domain::{hex, pow};

const KEY: &[u8] = b"fuzz-key";
const NOW: i64 = 1_700_000_000;

fn signed(token: &str) -> String {
    match token.rsplit_once(':') {
        Some((message, "SIGN")) => {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(KEY).expect("any key length");
            mac.update(message.as_bytes());
            format!("{message}:{}", hex(&mac.finalize().into_bytes()))
        }
        _ => token.to_owned(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let min_difficulty = u32::from(first % 25);
    let text = String::from_utf8_lossy(rest);
    let (token, solution) = text.split_once('\n').unwrap_or((&text, ""));
    let token = signed(token);
    if let Ok(v) = pow::verify(KEY, Some(&token), Some(solution), NOW, min_difficulty) {
        assert!(v.expires > NOW, "expired token accepted: {token}");
        assert!(
            v.difficulty >= min_difficulty,
            "easy token accepted: {token}"
        );
        let work = Sha256::new()
            .chain_update(v.nonce.as_bytes())
            .chain_update(b":")
            .chain_update(solution.trim().as_bytes())
            .finalize();
        assert!(
            pow::leading_zero_bits(&work) >= v.difficulty,
            "unsolved token accepted: {token} {solution}"
        );
    }
});
