//! The test harness: the real proxy binary, a real origin server that records what it
//! received, and real clients (reqwest and the curl binary), all on loopback with ephemeral
//! ports.

#![allow(dead_code)]

pub mod client;
pub mod lab;
pub mod origin;
pub mod pki;
pub mod proxy;

pub use client::{curl, curl_status, kept_alive_after_get, reqwest_via};
pub use lab::Lab;
pub use origin::Origin;
pub use pki::TestCa;
pub use proxy::TestProxy;

use std::time::Duration;

/// Polls `check` until it returns true or `within` passes; panics with `what` on timeout.
pub async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Deterministic pseudo-random bytes (xorshift), so uploads are not trivially compressible.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of one series (`name` or `name{labels}`) in a `/metrics` scrape.
pub fn metric(scrape: &str, series: &str) -> Option<u64> {
    scrape.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
