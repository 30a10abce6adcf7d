//! Early release: the report a settled session shows is the report its end gives.
//!
//! Every fixture under `tests/fixtures` is fed as a raw body at several chunkings; at the
//! moment `settled()` first turns true, `settled_report()` must equal `finish()`'s report in
//! everything but the byte counts and hashes. Multipart and Content-Encoding bodies are
//! checked for when they may settle.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::inspect::report::{LimitKind, Report, Verdict};
use crate::inspect::{BodyMeta, Engine, EngineConfig, Session};

/// Chunkings: 1-byte and 7-byte feeds over the first 64 KiB (then the rest at once), 4 KiB
/// feeds, and the whole file at once.
const SPLITS: [usize; 4] = [1, 7, 4096, usize::MAX];
/// Fine-grained feeding stops here; a file is not expected to settle later than this in
/// bytes that matter to the test, and the rest goes in one piece.
const FINE: usize = 64 << 10;

fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(EngineConfig::default()).unwrap())
}

/// Every file under `tests/fixtures`, sorted.
fn fixtures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        &mut out,
    );
    out.sort();
    out
}

/// The report without what only the end of the body can know.
fn without_counts(report: &Report) -> serde_json::Value {
    let mut r = report.clone();
    r.body_bytes = 0;
    r.decoded_bytes = 0;
    for f in &mut r.files {
        f.size = 0;
        f.sha256.clear();
    }
    serde_json::to_value(&r).unwrap()
}

/// What happened to one body fed in `split`-byte pieces.
struct Run {
    /// Bytes fed when the session first settled, and its report then.
    settled: Option<(usize, Report)>,
    last: Report,
}

fn run(engine: &Arc<Engine>, meta: &BodyMeta, body: &[u8], split: usize) -> Run {
    let mut session: Session = engine.session(meta.clone());
    let mut settled = None;
    let mut fed = 0;
    while fed < body.len() {
        let step = if fed < FINE { split } else { usize::MAX };
        let end = fed.saturating_add(step).min(body.len());
        session.feed(&body[fed..end]);
        fed = end;
        if settled.is_none() && session.settled() {
            settled = Some((fed, session.settled_report().expect("settled")));
        } else if settled.is_none() {
            assert!(session.settled_report().is_none());
        }
    }
    Run {
        settled,
        last: session.finish(),
    }
}

/// Runs `body` at every split and checks the settled report against the final one. Returns
/// the bytes fed when the whole-file run settled, if it did.
fn check(engine: &Arc<Engine>, meta: &BodyMeta, body: &[u8], what: &str) -> Option<usize> {
    let mut at = None;
    for split in SPLITS {
        let run = run(engine, meta, body, split);
        if let Some((fed, early)) = &run.settled {
            let mut last = run.last.clone();
            // The one thing the end may add: a Content-Encoding that breaks off later.
            let later = last
                .limits
                .split_off(early.limits.len().min(last.limits.len()));
            assert!(
                later
                    .iter()
                    .all(|l| l.detail.starts_with("content-encoding")),
                "{what}: {later:?}"
            );
            assert_eq!(
                without_counts(early),
                without_counts(&last),
                "{what} at split {split}, settled after {fed} bytes"
            );
            for (file, last) in early.files.iter().zip(&run.last.files) {
                // A file still arriving has no hash yet; one that ended has its final one.
                if file.sha256.is_empty() {
                    assert!(file.size <= last.size, "{what}");
                } else {
                    assert_eq!(
                        (file.size, &file.sha256),
                        (last.size, &last.sha256),
                        "{what}"
                    );
                }
            }
            assert!(early.body_bytes == *fed as u64, "{what}");
        }
        if split == 1 {
            at = run.settled.map(|(fed, _)| fed);
        }
    }
    at
}

fn raw(path: &Path) -> BodyMeta {
    BodyMeta {
        file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        ..BodyMeta::default()
    }
}

fn fixture(area_and_name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(area_and_name),
    )
    .unwrap()
}

/// `body` followed by 1 KiB of noise: a binary file without magic is typed from a 512-byte
/// window, so the small fixtures end before they can settle, where real files go on.
fn padded(body: &[u8]) -> Vec<u8> {
    let mut x = 0x2545_F491_u32;
    let noise = (0..1024).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    });
    body.iter().copied().chain(noise).collect()
}

#[test]
fn every_fixture_settles_to_its_final_report() {
    let engine = engine();
    let mut early = Vec::new();
    let mut never = Vec::new();
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        check(&engine, &raw(&path), &body, &name);
        let body = padded(&body);
        match check(&engine, &raw(&path), &body, &format!("{name} padded")) {
            Some(fed) if fed < body.len() => early.push(name),
            _ => never.push(name),
        }
    }
    // The property is only as good as the fixtures that settle before their end.
    for name in [
        "age-scrypt.age",
        "age-x25519-armored.age",
        "age-x25519.age",
        "cms-authenveloped.der",
        "cms-encrypteddata.der",
        "cms-enveloped.der",
        "cms-enveloped.pem",
        "openssl-salted.b64",
        "openssl-salted.bin",
        "pgp-pubkey.gpg",
        "pgp-symmetric.asc",
        "pgp-symmetric.gpg",
        "rar4-hdr-enc.rar",
        "rar5-hdr-enc.rar",
        "smime-enveloped.eml",
    ] {
        assert!(early.iter().any(|e| e == name), "{name} settles: {early:?}");
    }
    for name in [
        "bsn.csv",
        "zip-aes256.zip",
        "pdf-user-aes256.pdf",
        "docx-msip.docx",
    ] {
        assert!(never.iter().any(|e| e == name), "{name} is read to its end");
    }
}

#[test]
fn encrypted_headers_release_with_the_final_verdict() {
    let engine = engine();
    for (name, at_most) in [
        ("documents/age-x25519.age", 200),
        ("documents/openssl-salted.bin", 16),
        ("documents/pgp-symmetric.gpg", 512),
        ("documents/cms-enveloped.der", 512),
        ("archives/rar5-hdr-enc.rar", 100),
    ] {
        let body = padded(&fixture(name));
        let meta = raw(Path::new(name));
        let run = run(&engine, &meta, &body, 1);
        let (fed, report) = run.settled.expect(name);
        assert!(fed <= at_most, "{name} settled after {fed} bytes");
        let file = &report.files[0];
        assert_eq!(file.encryption.verdict, Verdict::Encrypted, "{name}");
        assert_eq!(file.size, fed as u64, "{name}: bytes so far");
        assert!(file.sha256.is_empty(), "{name}");
        assert_eq!(run.last.files[0].size, body.len() as u64, "{name}");
        assert_eq!(run.last.files[0].sha256.len(), 64, "{name}");
    }
}

fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, content) in parts {
        write!(
            body,
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    body
}

#[test]
fn multipart_bodies_settle_only_at_the_closing_boundary() {
    let engine = engine();
    let meta = BodyMeta {
        content_type: Some("multipart/form-data; boundary=XyZ".into()),
        ..BodyMeta::default()
    };
    let age = fixture("documents/age-x25519.age");
    let csv = fixture("text/bsn.csv");
    for parts in [
        vec![("a.age", &age[..])],
        vec![("a.age", &age[..]), ("klanten.csv", &csv[..])],
    ] {
        let body = multipart(&parts);
        let closing = body.len() - b"--\r\n".len();
        for split in SPLITS {
            let run = run(&engine, &meta, &body, split);
            let (fed, early) = run.settled.expect("settles at the closing boundary");
            assert!(
                fed >= closing,
                "settled after {fed} of {} bytes",
                body.len()
            );
            assert_eq!(without_counts(&early), without_counts(&run.last));
            assert_eq!(early.files.len(), parts.len());
        }
        check(&engine, &meta, &body, "multipart");
    }
}

#[test]
fn encoded_bodies_settle_when_the_decoded_file_does() {
    let engine = engine();
    let meta = BodyMeta {
        content_encoding: Some("gzip".into()),
        file_name: Some("a.age".into()),
        ..BodyMeta::default()
    };
    let age = fixture("documents/age-x25519.age");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&age).unwrap();
    let body = gz.finish().unwrap();
    let fed = check(&engine, &meta, &body, "gzip age").expect("settles");
    assert!(
        fed < body.len(),
        "settled after {fed} of {} bytes",
        body.len()
    );

    let meta = BodyMeta {
        content_encoding: Some("gzip".into()),
        ..BodyMeta::default()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&fixture("text/bsn.csv")).unwrap();
    let body = gz.finish().unwrap();
    assert_eq!(
        check(&engine, &meta, &body, "gzip csv"),
        None,
        "text never settles"
    );
}

#[test]
fn a_decoding_that_stops_settles_with_the_report_it_ends_with() {
    let engine = engine();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 8 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    let raw = BodyMeta {
        content_encoding: Some("gzip".into()),
        file_name: Some("zeros.bin".into()),
        ..BodyMeta::default()
    };
    let form = BodyMeta {
        content_encoding: Some("gzip".into()),
        content_type: Some("multipart/form-data; boundary=XyZ".into()),
        ..BodyMeta::default()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&multipart(&[("zeros.bin", &vec![0u8; 8 << 20])]))
        .unwrap();
    let form_bomb = gz.finish().unwrap();
    // Zeros are `unknown` once the entropy window is full: the raw body settles there, and
    // the ratio cap is met later, in the final report only.
    let run_raw = run(&engine, &raw, &bomb, 7);
    let (_, early) = run_raw.settled.unwrap();
    assert!(early.limits.is_empty());
    assert_eq!(limit_kinds(&run_raw.last), [LimitKind::Ratio]);
    check(&engine, &raw, &bomb, "bomb");
    // In a form, the part is unfinished when decoding stops: the stop settles the body, and
    // the form is ended there.
    let fed = check(&engine, &form, &form_bomb, "form bomb").expect("the ratio cap stops");
    assert!(fed < form_bomb.len());
    let run_form = run(&engine, &form, &form_bomb, 4096);
    let (_, early) = run_form.settled.unwrap();
    assert_eq!(
        limit_kinds(&early),
        [LimitKind::Malformed, LimitKind::Ratio],
        "{:?}",
        early.limits
    );
    assert_eq!(early.files.len(), 1);
    assert_eq!(
        early.files[0].sha256, run_form.last.files[0].sha256,
        "ended early"
    );
}

fn limit_kinds(r: &Report) -> Vec<LimitKind> {
    r.limits.iter().map(|l| l.kind).collect()
}
