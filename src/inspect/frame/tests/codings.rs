//! Content-Encoding: every coding, stacked codings, bombs, corruption, unknown codings.

use std::io::Write;
use std::sync::Arc;

use super::*;
use crate::inspect::report::{DetectorKind, FileType, LimitKind};
use crate::inspect::{BodyMeta, Engine, EngineConfig, Limits};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn coded(coding: &str) -> BodyMeta {
    BodyMeta {
        content_encoding: Some(coding.into()),
        file_name: Some("klanten.txt".into()),
        ..BodyMeta::default()
    }
}

#[test]
fn content_encodings_are_undone() {
    let text = BSN_TEXT.repeat(50);
    let mut two_members = gzip(&text.as_bytes()[..100]);
    two_members.extend(gzip(&text.as_bytes()[100..]));
    let zstd = zstd::encode_all(text.as_bytes(), 3).unwrap();
    let zstd_gzip = gzip(&zstd);
    for (coding, body) in [
        ("gzip", gzip(text.as_bytes())),
        ("x-gzip", two_members),
        ("deflate", zlib(text.as_bytes())),
        ("deflate", raw_deflate(text.as_bytes())),
        ("zstd", zstd),
        ("zstd, gzip", zstd_gzip),
        ("identity", text.clone().into_bytes()),
    ] {
        let r = run(&coded(coding), &body);
        assert!(r.limits.is_empty(), "{coding}: {:?}", r.limits);
        assert_eq!(r.decoded_bytes, text.len() as u64, "{coding}");
        assert_eq!(r.body_bytes, body.len() as u64);
        assert_eq!(r.files[0].sha256, sha(text.as_bytes()), "{coding}");
        assert_eq!(count(&r, DetectorKind::Bsn), 50, "{coding}");
    }
}

#[test]
fn brotli_and_stacked_codings_from_fixtures() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/text/");
    let plain = std::fs::read(format!("{dir}bsn.csv")).unwrap();
    for (file, coding) in [("bsn.csv.br", "br"), ("bsn.csv.gz.br", "gzip, br")] {
        let body = std::fs::read(format!("{dir}{file}")).unwrap();
        let r = run(&coded(coding), &body);
        assert!(r.limits.is_empty(), "{coding}: {:?}", r.limits);
        assert_eq!(r.files[0].sha256, sha(&plain));
        assert_eq!(r.files[0].file_type, FileType::Csv);
        assert_eq!(count(&r, DetectorKind::Bsn), 100);
    }
}

#[test]
fn decompression_bombs_are_limits_not_outages() {
    let zeros = vec![0u8; 64 << 20];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 128 << 10);
    let e = engine();
    let mut s = e.session(coded("gzip"));
    for chunk in bomb.chunks(16 << 10) {
        s.feed(chunk);
    }
    assert!(s.settled(), "nothing more is inspected");
    let r = s.finish();
    assert_eq!(limit_kinds(&r), [LimitKind::Ratio]);
    assert!(r.decoded_bytes <= (bomb.len() as u64) * 200 + (32 << 10));

    let small_cap = EngineConfig {
        limits: Limits {
            max_expanded_bytes: 1 << 20,
            ..Limits::default()
        },
        ..EngineConfig::default()
    };
    let e = Arc::new(Engine::new(small_cap).unwrap());
    let text = BSN_TEXT.repeat(40_000);
    let r = run_with(
        &e,
        &coded("zstd"),
        &zstd::encode_all(text.as_bytes(), 1).unwrap(),
        4096,
    );
    assert_eq!(limit_kinds(&r), [LimitKind::ExpandedSize]);
    assert!(r.decoded_bytes <= 1 << 20);
    assert!(
        count(&r, DetectorKind::Bsn) > 0,
        "what was decoded is still reported"
    );
}

#[test]
fn broken_and_unknown_codings() {
    let mut bad = gzip(BSN_TEXT.as_bytes());
    let n = bad.len();
    bad[n / 2] ^= 0xFF;
    bad[n / 2 + 1] ^= 0xFF;
    let r = run(&coded("gzip"), &bad);
    assert!(
        limit_kinds(&r).contains(&LimitKind::Malformed),
        "{:?}",
        r.limits
    );

    let good = gzip(BSN_TEXT.as_bytes());
    let r = run(&coded("gzip"), &good[..good.len() - 4]);
    assert_eq!(limit_kinds(&r), [LimitKind::Malformed], "truncated");

    let e = engine();
    let mut s = e.session(coded("compress"));
    assert!(s.settled());
    s.feed(b"\x1f\x9d\x90data");
    let r = s.finish();
    assert_eq!(limit_kinds(&r), [LimitKind::UnsupportedEncoding]);
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].file_type, FileType::Unknown);
    assert_eq!(r.files[0].encryption.verdict, Verdict::Unknown);
    assert_eq!(r.files[0].sha256, sha(b"\x1f\x9d\x90data"));
}

#[test]
fn output_ending_on_a_buffer_border_is_complete() {
    for size in [32 << 10, 64 << 10, 100_000] {
        let text: Vec<u8> = BSN_TEXT.bytes().cycle().take(size).collect();
        for (coding, body) in [
            ("gzip", gzip(&text)),
            ("deflate", zlib(&text)),
            ("zstd", zstd::encode_all(text.as_slice(), 3).unwrap()),
        ] {
            let r = run(&coded(coding), &body);
            assert!(r.limits.is_empty(), "{coding} {size}: {:?}", r.limits);
            assert_eq!(r.decoded_bytes, size as u64);
        }
    }
}
