use std::sync::Arc;

use super::*;
use crate::inspect::BodyMeta;

fn ext(p: &Policy, r: &Report) -> String {
    p.evaluate_body(&post("example.org"), r)
        .rule_id()
        .to_owned()
}

#[test]
fn file_conditions_need_one_file_meeting_all_of_them() {
    let p = policy(&rule(
        "plain-pdf",
        "block",
        "file = { type = [\"pdf\"], encrypted = [\"no\"] }",
    ));
    // An encrypted PDF and a plain zip: each meets one condition, none meets both.
    let r = report(vec![
        file("a.pdf", FileType::Pdf, Verdict::Encrypted),
        file("b.zip", FileType::Zip, Verdict::NotEncrypted),
    ]);
    assert_eq!(ext(&p, &r), "-");
    let r = report(vec![
        file("a.pdf", FileType::Pdf, Verdict::Encrypted),
        file("c.pdf", FileType::Pdf, Verdict::NotEncrypted),
    ]);
    assert_eq!(ext(&p, &r), "plain-pdf");
    assert_eq!(ext(&p, &report(vec![])), "-");
}

#[test]
fn encrypted_yes_no_unknown_and_kinds() {
    let p = policy(
        &[
            rule(
                "weak",
                "block",
                "file = { encryption_kind = [\"zip-crypto\"] }",
            ),
            rule("unknown", "log", "file = { encrypted = [\"unknown\"] }"),
            rule("yes", "allow", "file = { encrypted = \"yes\" }"),
        ]
        .concat(),
    );
    let mut zc = file("a.zip", FileType::Zip, Verdict::Encrypted);
    zc.encryption = Encryption::encrypted(EncryptionKind::ZipCrypto, "legacy");
    assert_eq!(ext(&p, &report(vec![zc])), "weak");
    assert_eq!(
        ext(
            &p,
            &report(vec![file("a.bin", FileType::Unknown, Verdict::Unknown)])
        ),
        "unknown"
    );
    assert_eq!(
        ext(
            &p,
            &report(vec![file("a.zip", FileType::Zip, Verdict::Encrypted)])
        ),
        "yes"
    );
    assert_eq!(
        ext(
            &p,
            &report(vec![file("a.zip", FileType::Zip, Verdict::NotEncrypted)])
        ),
        "-"
    );
}

#[test]
fn form_parts_versus_raw_bodies_and_excluded_types() {
    let p = policy(
        &[
            rule(
                "form",
                "block",
                "file = { encrypted = [\"no\"], form = true }",
            ),
            rule(
                "raw-doc",
                "block",
                "file = { encrypted = [\"no\"], form = false, not_type = [\"json\", \"text\"] }",
            ),
        ]
        .concat(),
    );
    assert_eq!(
        ext(
            &p,
            &report(vec![file(
                "notes.txt",
                FileType::Text,
                Verdict::NotEncrypted
            )])
        ),
        "form"
    );
    assert_eq!(
        ext(
            &p,
            &report(vec![raw(file(
                "x.pdf",
                FileType::Pdf,
                Verdict::NotEncrypted
            ))])
        ),
        "raw-doc"
    );
    assert_eq!(
        ext(
            &p,
            &report(vec![raw(file(
                "beacon",
                FileType::Text,
                Verdict::NotEncrypted
            ))])
        ),
        "-"
    );
    assert_eq!(
        ext(
            &p,
            &report(vec![raw(file(
                "api",
                FileType::Json,
                Verdict::NotEncrypted
            ))])
        ),
        "-"
    );
}

#[test]
fn sizes() {
    let p = policy(&rule(
        "big",
        "block",
        "file = { min_size = \"1 KiB\", max_size = 2048 }",
    ));
    let mut f = file("a", FileType::Zip, Verdict::NotEncrypted);
    for (size, hit) in [(1023, false), (1024, true), (2048, true), (2049, false)] {
        f.size = size;
        assert_eq!(
            ext(&p, &report(vec![f.clone()])) == "big",
            hit,
            "size {size}"
        );
    }
}

#[test]
fn label_aggregates_over_files_and_text() {
    let p = policy(&rule("classified", "block", "label = \"confidential\""));
    let internal = labelled(
        file("a.docx", FileType::Docx, Verdict::NotEncrypted),
        Level::Internal,
    );
    assert_eq!(ext(&p, &report(vec![internal.clone()])), "-");
    let secret = labelled(
        file("b.docx", FileType::Docx, Verdict::Encrypted),
        Level::Secret,
    );
    assert_eq!(
        ext(&p, &report(vec![internal.clone(), secret])),
        "classified"
    );
    let mut r = report(vec![internal]);
    r.text = text_report(vec![], Some(Level::Confidential)).text;
    assert_eq!(ext(&p, &r), "classified");
}

#[test]
fn file_label_is_per_file_and_text_label_is_text_only() {
    let p = policy(
        &[
            rule(
                "clear-classified",
                "block",
                "file = { label = \"confidential\", encrypted = [\"no\", \"unknown\"] }",
            ),
            rule("form-classified", "block", "text = { label = \"secret\" }"),
        ]
        .concat(),
    );
    // Labelled but encrypted, beside an unlabelled plain file: no single file meets both.
    let r = report(vec![
        labelled(
            file("a.docx", FileType::Docx, Verdict::Encrypted),
            Level::Secret,
        ),
        file("b.txt", FileType::Text, Verdict::NotEncrypted),
    ]);
    assert_eq!(ext(&p, &r), "-");
    let r = report(vec![labelled(
        file("a.docx", FileType::Docx, Verdict::NotEncrypted),
        Level::Confidential,
    )]);
    assert_eq!(ext(&p, &r), "clear-classified");
    assert_eq!(
        ext(&p, &text_report(vec![], Some(Level::Secret))),
        "form-classified"
    );
    assert_eq!(
        ext(&p, &text_report(vec![], Some(Level::Confidential))),
        "-"
    );
}

#[test]
fn detector_counts_sum_over_files_and_text() {
    let p = policy(&rule(
        "many-ibans",
        "block",
        "detectors = { iban = 3, bsn = 1 }",
    ));
    let mut a = file("a.csv", FileType::Csv, Verdict::NotEncrypted);
    a.detections = vec![
        detection(DetectorKind::Iban, 2),
        detection(DetectorKind::Bsn, 1),
    ];
    let r = report(vec![a.clone()]);
    assert_eq!(ext(&p, &r), "-", "2 IBANs < 3");
    let mut r2 = r.clone();
    r2.text.detections = vec![detection(DetectorKind::Iban, 1)];
    assert_eq!(ext(&p, &r2), "many-ibans", "2 in the file + 1 in the text");
    // Every listed detector must reach its minimum.
    a.detections = vec![detection(DetectorKind::Iban, 5)];
    assert_eq!(ext(&p, &report(vec![a])), "-");
}

#[test]
fn file_and_text_detectors_are_scoped() {
    let p = policy(
        &[
            rule("file-bsn", "block", "file = { detectors = { bsn = 2 } }"),
            rule(
                "text-card",
                "block",
                "text = { detectors = { payment_card = 1 } }",
            ),
        ]
        .concat(),
    );
    let mut a = file("a.csv", FileType::Csv, Verdict::NotEncrypted);
    a.detections = vec![detection(DetectorKind::Bsn, 1)];
    let mut b = a.clone();
    b.name = Some("b.csv".into());
    // One BSN in each of two files: no single file has two.
    assert_eq!(ext(&p, &report(vec![a.clone(), b])), "-");
    a.detections = vec![
        detection(DetectorKind::Bsn, 1),
        detection(DetectorKind::Bsn, 1),
    ];
    assert_eq!(ext(&p, &report(vec![a.clone()])), "file-bsn");
    let mut f = file("c.csv", FileType::Csv, Verdict::NotEncrypted);
    f.detections = vec![detection(DetectorKind::PaymentCard, 4)];
    assert_eq!(
        ext(&p, &report(vec![f])),
        "-",
        "a card in a file is not text"
    );
    assert_eq!(
        ext(
            &p,
            &text_report(vec![detection(DetectorKind::PaymentCard, 1)], None)
        ),
        "text-card"
    );
}

#[test]
fn reports_from_the_engine() {
    let p = policy(
        &[
            rule(
                "plain-pdf",
                "block",
                "file = { type = [\"pdf\"], encrypted = [\"no\"] }",
            ),
            rule("unknown", "block", "file = { encrypted = [\"unknown\"] }"),
        ]
        .concat(),
    );
    let engine: &Arc<crate::inspect::Engine> = p.engine();
    let inspect = |bytes: &[u8]| {
        let mut s = engine.session(BodyMeta {
            file_name: Some("f".into()),
            ..BodyMeta::default()
        });
        for chunk in bytes.chunks(7) {
            s.feed(chunk);
        }
        s.finish()
    };
    let pdf = inspect(
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    );
    assert_eq!(pdf.files.first().map(|f| f.file_type), Some(FileType::Pdf));
    // A PDF without an /Encrypt dictionary is readable by anyone.
    assert_eq!(
        pdf.files.first().map(|f| f.encryption.verdict),
        Some(Verdict::NotEncrypted)
    );
    assert_eq!(ext(&p, &pdf), "plain-pdf");
    let noise = inspect(&[0x8f, 0x12, 0xee, 0x01, 0x77, 0x3c, 0xa0, 0x55]);
    assert_eq!(
        noise.files.first().map(|f| f.encryption.verdict),
        Some(Verdict::Unknown)
    );
    assert_eq!(ext(&p, &noise), "unknown");
}

#[test]
fn the_engine_gets_the_policy_markings_and_labels() {
    let p = Policy::load(&super::shipped()).unwrap();
    let cfg = p.engine().config();
    assert!(
        cfg.markings
            .iter()
            .any(|m| m.phrase == "KPN Vertrouwelijk" && m.level == Level::Confidential)
    );
    assert!(
        cfg.markings
            .iter()
            .any(|m| m.phrase == "Geheim" && m.level == Level::Secret)
    );
    assert_eq!(
        cfg.labels.names.get("vertrouwelijk"),
        Some(&Level::Confidential)
    );
    assert_eq!(
        cfg.labels.guids.get("00000000-0000-4000-8000-0000000000a4"),
        Some(&Level::Secret)
    );
    assert_eq!(cfg.limits.max_depth, 4);
}
