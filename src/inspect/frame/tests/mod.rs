//! Framing through whole sessions: multipart, encodings and their caps, forms, JSON blobs,
//! malformed input, and chunk-border independence.

mod bodies;
mod codings;

use std::io::Write;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::inspect::report::{
    DetectorKind, FileType, LabelSource, Level, LimitKind, Report, Verdict,
};
use crate::inspect::{BodyMeta, Engine, EngineConfig};

pub(super) const BSN_TEXT: &str = "Klantgegevens\nBSN: 111222333\nNaam: J. Jansen\n";
pub(super) const PNG: &[u8] = b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";

pub(super) fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(EngineConfig::default()).unwrap())
}

pub(super) fn meta(content_type: &str) -> BodyMeta {
    BodyMeta {
        content_type: Some(content_type.into()),
        ..BodyMeta::default()
    }
}

pub(super) fn run_with(engine: &Arc<Engine>, meta: &BodyMeta, body: &[u8], split: usize) -> Report {
    let mut s = engine.session(meta.clone());
    for chunk in body.chunks(split.max(1)) {
        s.feed(chunk);
    }
    s.finish()
}

/// Runs a body at several chunkings and checks the reports agree.
pub(super) fn run(meta: &BodyMeta, body: &[u8]) -> Report {
    let e = engine();
    let whole = run_with(&e, meta, body, body.len());
    let json = serde_json::to_string(&whole).unwrap();
    for split in [1, 7, 4096] {
        let other = serde_json::to_string(&run_with(&e, meta, body, split)).unwrap();
        assert_eq!(json, other, "split {split}");
    }
    whole
}

pub(super) fn multipart(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, content) in parts {
        write!(body, "--{boundary}\r\n{headers}\r\n\r\n").unwrap();
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    body
}

pub(super) fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(super) fn count(r: &Report, kind: DetectorKind) -> u64 {
    r.detector_count(kind)
}

pub(super) fn limit_kinds(r: &Report) -> Vec<LimitKind> {
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
