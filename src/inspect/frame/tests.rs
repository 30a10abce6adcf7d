//! Framing through whole sessions: multipart, encodings and their caps, forms, JSON blobs,
//! malformed input, and chunk-border independence.

use std::io::Write;
use std::sync::Arc;

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::inspect::report::{
    DetectorKind, FileType, LabelSource, Level, LimitKind, Report, Verdict,
};
use crate::inspect::{BodyMeta, Engine, EngineConfig, Limits};

const BSN_TEXT: &str = "Klantgegevens\nBSN: 111222333\nNaam: J. Jansen\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";

fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(EngineConfig::default()).unwrap())
}

fn meta(content_type: &str) -> BodyMeta {
    BodyMeta {
        content_type: Some(content_type.into()),
        ..BodyMeta::default()
    }
}

fn run_with(engine: &Arc<Engine>, meta: &BodyMeta, body: &[u8], split: usize) -> Report {
    let mut s = engine.session(meta.clone());
    for chunk in body.chunks(split.max(1)) {
        s.feed(chunk);
    }
    s.finish()
}

/// Runs a body at several chunkings and checks the reports agree.
fn run(meta: &BodyMeta, body: &[u8]) -> Report {
    let e = engine();
    let whole = run_with(&e, meta, body, body.len());
    let json = serde_json::to_string(&whole).unwrap();
    for split in [1, 7, 4096] {
        let other = serde_json::to_string(&run_with(&e, meta, body, split)).unwrap();
        assert_eq!(json, other, "split {split}");
    }
    whole
}

fn multipart(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, content) in parts {
        write!(body, "--{boundary}\r\n{headers}\r\n\r\n").unwrap();
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    body
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn count(r: &Report, kind: DetectorKind) -> u64 {
    r.detector_count(kind)
}

fn limit_kinds(r: &Report) -> Vec<LimitKind> {
    r.limits
        .iter()
        .chain(r.files.iter().flat_map(|f| &f.limits))
        .map(|l| l.kind)
        .collect()
}

#[test]
fn multipart_files_and_fields() {
    let b = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let body = multipart(
        b,
        &[
            (
                "Content-Disposition: form-data; name=\"subject\"",
                b"Offerte",
            ),
            (
                "Content-Disposition: form-data; name=\"class\"",
                b"Vertrouwelijk",
            ),
            (
                "Content-Disposition: form-data; name=\"doc\"; filename=\"klanten.txt\"\r\nContent-Type: text/plain",
                BSN_TEXT.as_bytes(),
            ),
            (
                "Content-Disposition: form-data; name=\"pic\"; filename=\"logo.png\"\r\nContent-Type: image/png",
                PNG,
            ),
            (
                "Content-Disposition: form-data; name=\"note\"",
                b"IBAN NL91 ABNA 0417 1643 00",
            ),
        ],
    );
    let r = run(&meta(&format!("multipart/form-data; boundary={b}")), &body);
    assert_eq!(r.files.len(), 2);
    let (txt, png) = (&r.files[0], &r.files[1]);
    assert_eq!(txt.name.as_deref(), Some("klanten.txt"));
    assert_eq!(txt.field.as_deref(), Some("doc"));
    assert_eq!(txt.declared_type.as_deref(), Some("text/plain"));
    assert_eq!(txt.file_type, FileType::Text);
    assert_eq!(txt.size, BSN_TEXT.len() as u64);
    assert_eq!(txt.sha256, sha(BSN_TEXT.as_bytes()));
    assert_eq!(txt.encryption.verdict, Verdict::NotEncrypted);
    assert_eq!(txt.detections[0].kind, DetectorKind::Bsn);
    assert_eq!(png.file_type, FileType::Png);
    assert_eq!(png.sha256, sha(PNG));
    assert!(!png.type_mismatch && !txt.type_mismatch);
    assert_eq!(
        r.text.label.as_ref().map(|l| (l.level, l.source)),
        Some((Level::Confidential, LabelSource::Body))
    );
    assert_eq!(r.text.detections.len(), 1);
    assert_eq!(r.text.detections[0].kind, DetectorKind::Iban);
    assert!(r.limits.is_empty(), "{:?}", r.limits);
    assert_eq!(r.body_bytes, body.len() as u64);
}

#[test]
fn multipart_file_names_as_sent() {
    let body = multipart(
        "b",
        &[
            (
                "Content-Disposition: form-data; name=\"a\"; filename=\"na%C3%AFve.txt\"",
                b"x",
            ),
            (
                "Content-Disposition: form-data; name=\"b\"; filename=\"geheim-cijfers.txt\"; filename*=UTF-8''%E2%82%AC-geheim.txt",
                b"y",
            ),
            (
                "Content-Disposition: form-data; name=\"c\"; filename=\"r\u{e9}sum\u{e9}.txt\"",
                b"z",
            ),
        ],
    );
    let r = run(&meta("multipart/form-data; boundary=b"), &body);
    let names: Vec<_> = r.files.iter().map(|f| f.name.clone().unwrap()).collect();
    assert_eq!(names, ["naïve.txt", "€-geheim.txt", "résumé.txt"]);
    let label = r.files[1].label.as_ref().unwrap();
    assert_eq!(
        (label.level, label.source),
        (Level::Secret, LabelSource::FileName)
    );
}

#[test]
fn empty_file_inputs_are_not_files() {
    let body = multipart(
        "b",
        &[
            (
                "Content-Disposition: form-data; name=\"a\"; filename=\"\"\r\nContent-Type: application/octet-stream",
                b"",
            ),
            (
                "Content-Disposition: form-data; name=\"b\"; filename=\"\"",
                b"data",
            ),
            (
                "Content-Disposition: form-data; name=\"c\"; filename=\"leeg.txt\"",
                b"",
            ),
        ],
    );
    let r = run(&meta("multipart/form-data; boundary=b"), &body);
    assert_eq!(r.files.len(), 2);
    assert_eq!((r.files[0].name.as_deref(), r.files[0].size), (None, 4));
    assert_eq!(r.files[1].name.as_deref(), Some("leeg.txt"));
    assert_eq!(r.files[1].size, 0);
    assert_eq!(r.files[1].encryption.verdict, Verdict::NotEncrypted);
}

#[test]
fn multipart_related_and_base64_parts() {
    let b64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAAA=";
    let body = multipart(
        "rel",
        &[
            (
                "Content-Type: application/json; charset=UTF-8",
                b"{\"name\": \"foto.png\", \"bsn\": 111222333}",
            ),
            (
                "Content-Type: image/png\r\nContent-Transfer-Encoding: base64",
                b64.as_bytes(),
            ),
        ],
    );
    let r = run(&meta("multipart/related; boundary=rel"), &body);
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].file_type, FileType::Png);
    assert_eq!(r.files[0].size, PNG.len() as u64);
    assert_eq!(count(&r, DetectorKind::Bsn), 1, "JSON part is text");
}

#[test]
fn malformed_multipart_is_reported_not_fatal() {
    let full = multipart(
        "b",
        &[(
            "Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"",
            BSN_TEXT.as_bytes(),
        )],
    );
    let truncated = &full[..full.len() - 20];
    let r = run(&meta("multipart/form-data; boundary=b"), truncated);
    assert_eq!(r.files.len(), 1, "what was seen is reported");
    assert_eq!(count(&r, DetectorKind::Bsn), 1);
    assert_eq!(limit_kinds(&r), [LimitKind::Malformed]);

    let r = run(&meta("multipart/form-data"), BSN_TEXT.as_bytes());
    assert_eq!(limit_kinds(&r), [LimitKind::Malformed]);
    assert_eq!(r.files.len(), 1, "no boundary: scanned as one file");
    assert_eq!(count(&r, DetectorKind::Bsn), 1);

    let r = run(&meta("multipart/form-data; boundary=b"), b"--b\r\nxx");
    assert_eq!(limit_kinds(&r), [LimitKind::Malformed]);
    let r = run(&meta("multipart/form-data; boundary=b"), b"--bjunk\r\n\r\n");
    assert_eq!(limit_kinds(&r), [LimitKind::Malformed]);
    let r = run(
        &meta("multipart/form-data; boundary=zz"),
        &vec![b'x'; 100 << 10],
    );
    assert_eq!(limit_kinds(&r), [LimitKind::Malformed]);
}

#[test]
fn multipart_settles_only_after_its_end() {
    let body = multipart(
        "b",
        &[(
            "Content-Disposition: form-data; name=\"f\"; filename=\"a.png\"",
            PNG,
        )],
    );
    let e = engine();
    let mut s = e.session(meta("multipart/form-data; boundary=b"));
    s.feed(&body[..body.len() - 8]);
    assert!(!s.settled(), "a later part could still come");
    s.feed(&body[body.len() - 8..]);
    assert!(s.settled(), "past the closing boundary");
    s.feed(b"epilogue");
    assert_eq!(s.finish().files.len(), 1);
}

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

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn json_base64_blobs_become_files() {
    let doc = BSN_TEXT.repeat(30);
    let blob = b64(doc.as_bytes()).replace('/', "\\/");
    let body = format!(
        "{{\"message\": {{\"subject\": \"Offerte\", \"attachments\": [\
         {{\"name\": \"klanten.txt\", \"contentBytes\": \"{blob}\"}},\
         {{\"contentBytes\": \"data:image/png;base64,{}\", \"filename\": \"logo.png\"}},\
         {{\"short\": \"aGVsbG8=\", \"broken\": \"{}*\"}}]}}}}",
        b64(&[PNG, &[0u8; 800][..]].concat()),
        "QUJD".repeat(300),
    );
    let r = run(&meta("application/json"), body.as_bytes());
    let (txt, png) = (&r.files[0], &r.files[1]);
    assert_eq!(txt.name.as_deref(), Some("klanten.txt"));
    assert_eq!(txt.field.as_deref(), Some("contentbytes"));
    assert_eq!(txt.sha256, sha(doc.as_bytes()));
    assert_eq!(txt.file_type, FileType::Text);
    assert_eq!(txt.detections[0].count, 30);
    assert_eq!(png.name.as_deref(), Some("logo.png"), "name after the blob");
    assert_eq!(png.declared_type.as_deref(), Some("image/png"));
    assert_eq!(png.file_type, FileType::Png);
    assert_eq!(
        count(&r, DetectorKind::Bsn),
        30,
        "the base64 text is not also counted as text"
    );
    assert!(r.limits.is_empty(), "{:?}", r.limits);
    assert_eq!(r.files.len(), 3);
    assert_eq!(
        r.files[2].limits[0].kind,
        LimitKind::Malformed,
        "broken base64 is reported"
    );
}

#[test]
fn json_and_forms_are_text() {
    let r = run(
        &meta("application/json"),
        br#"{"bsn": 111222333, "klasse": "Geheim", "note": "wij behandelen dit geheim"}"#,
    );
    assert!(r.files.is_empty());
    assert_eq!(count(&r, DetectorKind::Bsn), 1);
    assert_eq!(r.text.label.as_ref().map(|l| l.level), Some(Level::Secret));
    let r = run(
        &meta("application/json"),
        br#"{"a": "\u0042SN 111\u0032\u00322333 \ud83d\ude00"}"#,
    );
    assert_eq!(count(&r, DetectorKind::Bsn), 1, "escapes are decoded");
    let r = run(&meta("application/json"), br#"{"a": [1, 2"#);
    assert_eq!(limit_kinds(&r), [LimitKind::Malformed]);

    let r = run(
        &meta("application/x-www-form-urlencoded"),
        b"sofinummer=1234.56.782&classificatie=Strikt+Vertrouwelijk&iban=NL91%20ABNA%200417%201643%2000",
    );
    assert!(r.files.is_empty());
    assert_eq!(count(&r, DetectorKind::Bsn), 1);
    assert_eq!(count(&r, DetectorKind::Iban), 1);
    assert_eq!(
        r.text.label.as_ref().map(|l| l.level),
        Some(Level::Confidential)
    );
}

#[test]
fn raw_bodies_are_one_file() {
    let put = BodyMeta {
        file_name: Some("Jaarplan_VERTROUWELIJK.txt".into()),
        ..meta("text/plain")
    };
    let r = run(&put, b"nothing marked here\n");
    assert_eq!(r.files.len(), 1);
    let label = r.files[0].label.as_ref().unwrap();
    assert_eq!(
        (label.level, label.source),
        (Level::Confidential, LabelSource::FileName)
    );

    let r = run(
        &BodyMeta {
            file_name: Some("report.pdf".into()),
            ..meta("application/pdf")
        },
        PNG,
    );
    assert!(r.files[0].type_mismatch);
    let r = run(&meta("application/octet-stream"), PNG);
    assert!(!r.files[0].type_mismatch);
}

#[test]
fn raw_bodies_settle_when_their_scanner_does() {
    let e = engine();
    let mut s = e.session(meta("image/png"));
    s.feed(&PNG[..4]);
    assert!(!s.settled(), "short prefix: type not decided yet");
    s.feed(&PNG[4..]);
    assert!(s.settled(), "media verdict is decided by the type");

    let mut s = e.session(BodyMeta::default());
    let mut x = 0x1234_5678_u32;
    let noise: Vec<u8> = (0..70_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    s.feed(&noise);
    assert!(s.settled(), "unknown bytes past the entropy window");
    let r = s.finish();
    assert_eq!(r.files[0].file_type, FileType::Unknown);
    assert_eq!(r.files[0].encryption.verdict, Verdict::Unknown);
    assert!(
        r.files[0]
            .encryption
            .reason
            .contains("entropy 8.00 bits/byte"),
        "{}",
        r.files[0].encryption.reason
    );

    let mut s = e.session(meta("text/plain"));
    s.feed(BSN_TEXT.repeat(100).as_bytes());
    assert!(!s.settled(), "text must be read to the end");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn multipart_report_does_not_depend_on_chunking(
        cuts in proptest::collection::vec(0usize..4000, 0..12),
        fields in proptest::collection::vec(0usize..5, 1..6),
    ) {
        let pieces: [(&str, &[u8]); 5] = [
            ("Content-Disposition: form-data; name=\"t\"", b"BSN 111222333"),
            ("Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"", BSN_TEXT.as_bytes()),
            ("Content-Disposition: form-data; name=\"p\"; filename=\"p.png\"", PNG),
            ("Content-Disposition: form-data; name=\"j\"\r\nContent-Type: application/json", br#"{"k": "Vertrouwelijk", "n": 4111111111111111}"#),
            ("Content-Disposition: form-data; name=\"u\"; filename=\"geheim.txt\"", b"--b- \r\n--bx \r\n KPN Intern\n"),
        ];
        let parts: Vec<(&str, &[u8])> = fields.iter().map(|&i| pieces[i]).collect();
        let body = multipart("b", &parts);
        let e = engine();
        let m = meta("multipart/form-data; boundary=b");
        let whole = serde_json::to_string(&run_with(&e, &m, &body, body.len())).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        let mut s = e.session(m);
        let mut at = 0;
        for c in cuts.into_iter().chain([body.len()]) {
            s.feed(&body[at..c]);
            at = c;
        }
        prop_assert_eq!(whole, serde_json::to_string(&s.finish()).unwrap());
    }
}
