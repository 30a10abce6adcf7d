//! JSON and form bodies, raw bodies, and chunking of multipart bodies.

use proptest::prelude::*;

use super::*;
use crate::inspect::BodyMeta;
use crate::inspect::report::{DetectorKind, FileType, LabelSource, Level, LimitKind, Verdict};

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes under every framing and coding: a report, never a panic.
    #[test]
    fn arbitrary_bodies_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        split in 1usize..700,
        kind in 0usize..8,
    ) {
        let m = match kind {
            0 => meta("multipart/form-data; boundary=b"),
            1 => meta("application/json"),
            2 => meta("application/x-www-form-urlencoded"),
            3 => BodyMeta { content_encoding: Some("gzip".into()), ..BodyMeta::default() },
            4 => BodyMeta { content_encoding: Some("br".into()), ..BodyMeta::default() },
            5 => BodyMeta { content_encoding: Some("zstd, deflate".into()), ..BodyMeta::default() },
            6 => meta("multipart/related; boundary=\"\r\n--\""),
            _ => BodyMeta::default(),
        };
        let mut body = body;
        if kind == 0 {
            let mut framed = b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n".to_vec();
            framed.append(&mut body);
            body = framed;
        }
        let r = run_with(&engine(), &m, &body, split);
        prop_assert_eq!(r.body_bytes, body.len() as u64);
    }
}

#[test]
fn json_blobs_are_capped() {
    let config = crate::inspect::EngineConfig {
        limits: crate::inspect::Limits {
            max_members: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let e = std::sync::Arc::new(crate::inspect::Engine::new(config).unwrap());
    let blob = "QUJD".repeat(300);
    let body = format!("[\"{blob}\", \"{blob}\", \"{blob}\", \"BSN 111222333\"]");
    let r = run_with(&e, &meta("application/json"), body.as_bytes(), 100);
    assert_eq!(r.files.len(), 2);
    assert_eq!(limit_kinds(&r), [LimitKind::Members]);
    assert_eq!(
        count(&r, DetectorKind::Bsn),
        1,
        "text after the cap is still scanned"
    );
}

fn text_fixture(name: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/text/");
    std::fs::read(format!("{dir}{name}")).unwrap()
}

#[test]
fn form_upload_made_by_urllib3() {
    let body = text_fixture("form.multipart");
    let r = run(
        &meta("multipart/form-data; boundary=sluis-fixture-boundary"),
        &body,
    );
    assert!(r.limits.is_empty(), "{:?}", r.limits);
    let names: Vec<_> = r
        .files
        .iter()
        .map(|f| f.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["klanten.csv", "résumé \"2026\".txt"]);
    assert_eq!(r.files[0].sha256, sha(&text_fixture("bsn.csv")));
    assert_eq!(r.files[0].file_type, FileType::Csv);
    assert_eq!(r.files[0].detections[0].count, 100);
    assert_eq!(
        r.files[1].detections[0].count, 1,
        "sofinummer in 4-2-3 layout"
    );
    let label = r.text.label.as_ref().unwrap();
    assert_eq!(
        (label.level, label.source),
        (Level::Confidential, LabelSource::Body)
    );
}

#[test]
fn gzipped_json_mail_with_an_attachment() {
    let body = text_fixture("graph-mail.json.gz");
    let m = BodyMeta {
        content_encoding: Some("gzip".into()),
        ..meta("application/json")
    };
    let r = run(&m, &body);
    assert!(r.limits.is_empty(), "{:?}", r.limits);
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].name.as_deref(), Some("klanten.csv"));
    assert_eq!(r.files[0].sha256, sha(&text_fixture("bsn.csv")));
    assert_eq!(count(&r, DetectorKind::Bsn), 100);
    assert!(r.text.bytes > 0 && r.text.detections.is_empty());
}
