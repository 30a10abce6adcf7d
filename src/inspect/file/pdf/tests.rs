use super::crypt::{ATTACHMENTS_ONLY, OWNER_ONLY};
use crate::inspect::file::testutil::{SPLITS, config, damage, fixture, scan};
use crate::inspect::report::{EncryptionKind, FileType, LabelSource, Level, Verdict};
use crate::inspect::sink::TextOrigin::{Body, Metadata};

/// (fixture, verdict, kind, words of the reason)
const CASES: &[(&str, Verdict, Option<EncryptionKind>, &str)] = &[
    (
        "pdf-clear.pdf",
        Verdict::NotEncrypted,
        None,
        "no encryption",
    ),
    (
        "pdf-incremental.pdf",
        Verdict::NotEncrypted,
        None,
        "no encryption",
    ),
    (
        "pdf-label-info.pdf",
        Verdict::NotEncrypted,
        None,
        "no encryption",
    ),
    (
        "pdf-label-xmp.pdf",
        Verdict::NotEncrypted,
        None,
        "no encryption",
    ),
    (
        "pdf-xref-stream-clear.pdf",
        Verdict::NotEncrypted,
        None,
        "no encryption",
    ),
    (
        "pdf-user-aes256.pdf",
        Verdict::Encrypted,
        Some(EncryptionKind::PdfAes256),
        "user password",
    ),
    (
        "pdf-user-aes128.pdf",
        Verdict::Encrypted,
        Some(EncryptionKind::PdfAes128),
        "user password",
    ),
    (
        "pdf-user-rc4-128.pdf",
        Verdict::Encrypted,
        Some(EncryptionKind::PdfRc4),
        "user password",
    ),
    (
        "pdf-user-rc4-40.pdf",
        Verdict::Encrypted,
        Some(EncryptionKind::PdfRc4),
        "user password",
    ),
    (
        "pdf-xref-stream-encrypted.pdf",
        Verdict::Encrypted,
        Some(EncryptionKind::PdfAes256),
        "user password",
    ),
    (
        "pdf-owner-only-aes256.pdf",
        Verdict::NotEncrypted,
        None,
        OWNER_ONLY,
    ),
    (
        "pdf-owner-only-rc4.pdf",
        Verdict::NotEncrypted,
        None,
        OWNER_ONLY,
    ),
];

#[test]
fn fixtures_get_their_verdict_at_every_split() {
    let config = config();
    for (name, verdict, kind, reason) in CASES {
        let bytes = fixture(name);
        for split in SPLITS {
            let (facts, _) = scan(&bytes, split, &config);
            assert_eq!(facts.file_type, FileType::Pdf, "{name} @{split}");
            assert_eq!(
                facts.encryption.verdict, *verdict,
                "{name} @{split}: {:?}",
                facts.encryption
            );
            assert_eq!(facts.encryption.kind, *kind, "{name} @{split}");
            assert!(
                facts.encryption.reason.contains(reason),
                "{name}: {:?}",
                facts.encryption
            );
            assert!(facts.limits.is_empty(), "{name}: {:?}", facts.limits);
        }
    }
}

#[test]
fn page_text_and_info_reach_the_sink() {
    let config = config();
    let bytes = fixture("pdf-clear.pdf");
    for split in SPLITS {
        let (_, sink) = scan(&bytes, split, &config);
        for want in [
            "Vertrouwelijk\n",
            "111222333",
            "Café Oost",
            "(haakjes)",
            "\\backslash",
        ] {
            assert!(
                sink.has(Body, want),
                "@{split}: {want:?} not in {:?}",
                sink.text(Body)
            );
        }
        for want in ["Kwartaalrapport", "Klantgegevens", "rapport intern"] {
            assert!(
                sink.has(Metadata, want),
                "@{split}: {:?}",
                sink.text(Metadata)
            );
        }
        assert!(sink.labels.is_empty());
    }
}

#[test]
fn object_streams_are_read_for_info_and_text() {
    let (_, sink) = scan(&fixture("pdf-xref-stream-clear.pdf"), 7, &config());
    assert!(sink.has(Body, "111222333"), "{:?}", sink.text(Body));
    assert!(
        sink.has(Metadata, "Kwartaalrapport"),
        "{:?}",
        sink.text(Metadata)
    );
}

#[test]
fn incremental_update_text_is_seen() {
    let (_, sink) = scan(&fixture("pdf-incremental.pdf"), 4096, &config());
    assert!(
        sink.has(Metadata, "Bijgewerkt rapport"),
        "{:?}",
        sink.text(Metadata)
    );
}

#[test]
fn labels_from_info_map_by_name_and_from_xmp_by_guid() {
    let config = config();
    for split in SPLITS {
        let (_, sink) = scan(&fixture("pdf-label-info.pdf"), split, &config);
        assert_eq!(
            sink.labels,
            [(Level::Confidential, LabelSource::Metadata)],
            "@{split}"
        );
        let (_, sink) = scan(&fixture("pdf-label-xmp.pdf"), split, &config);
        assert_eq!(
            sink.labels,
            [(Level::Secret, LabelSource::Metadata)],
            "@{split}"
        );
        assert!(
            sink.has(Metadata, "Jaarplan Geheim"),
            "{:?}",
            sink.text(Metadata)
        );
    }
}

#[test]
fn encrypted_files_yield_no_readable_text() {
    let (_, sink) = scan(&fixture("pdf-user-aes256.pdf"), 4096, &config());
    assert!(!sink.has(Body, "Vertrouwelijk"));
    assert!(sink.labels.is_empty());
}

/// A minimal PDF around an encryption dictionary and a trailer.
fn synthetic(encrypt: &str, trailer: &str) -> Vec<u8> {
    format!(
        "%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n5 0 obj {encrypt} endobj\n\
         xref\n0 1\n0000000000 65535 f \ntrailer {trailer}\nstartxref\n0\n%%EOF\n"
    )
    .into_bytes()
}

#[test]
fn public_key_security_is_encrypted() {
    let pdf = synthetic(
        "<< /Filter /Adobe.PubSec /SubFilter /adbe.pkcs7.s5 /V 4 /Recipients [<3082>] >>",
        "<< /Root 1 0 R /Encrypt 5 0 R /ID [<00><00>] >>",
    );
    let (facts, _) = scan(&pdf, 1, &config());
    assert_eq!(facts.encryption.kind, Some(EncryptionKind::PdfPublicKey));
}

#[test]
fn escaped_names_are_matched() {
    let pdf = synthetic(
        "<< /Fil#74er /Adobe#2EPubSec /V 4 /Recipients [<3082>] >>",
        "<< /Root 1 0 R /Encr#79pt 5 0 R >>",
    );
    let (facts, _) = scan(&pdf, 7, &config());
    assert_eq!(facts.encryption.kind, Some(EncryptionKind::PdfPublicKey));
}

#[test]
fn attachments_only_encryption_is_not_encrypted() {
    let o = "00".repeat(32);
    let pdf = synthetic(
        &format!(
            "<< /Filter /Standard /V 4 /R 4 /Length 128 /P -4 /O <{o}> /U <{o}> \
             /CF << /StdCF << /CFM /AESV2 >> >> /StmF /Identity /StrF /Identity /EFF /StdCF >>"
        ),
        "<< /Root 1 0 R /Encrypt 5 0 R /ID [<0102><0102>] >>",
    );
    let (facts, _) = scan(&pdf, 4096, &config());
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
    assert_eq!(facts.encryption.reason, ATTACHMENTS_ONLY);
}

#[test]
fn encryption_missing_from_the_last_trailer_is_unknown() {
    let mut pdf = synthetic(
        "<< /Filter /Adobe.PubSec /V 4 /Recipients [<3082>] >>",
        "<< /Root 1 0 R /Encrypt 5 0 R >>",
    );
    pdf.extend_from_slice(b"trailer << /Root 1 0 R /Prev 0 >>\n%%EOF\n");
    let (facts, _) = scan(&pdf, 4096, &config());
    assert_eq!(facts.encryption.verdict, Verdict::Unknown);
}

#[test]
fn unresolvable_encrypt_reference_is_unknown() {
    let pdf = synthetic("<< /Type /Pages >>", "<< /Root 1 0 R /Encrypt 9 0 R >>");
    let (facts, _) = scan(&pdf, 4096, &config());
    assert_eq!(facts.encryption.verdict, Verdict::Unknown);
}

#[test]
fn truncated_file_without_trailer_is_unknown() {
    let bytes = fixture("pdf-clear.pdf");
    let (facts, _) = scan(&bytes[..bytes.len() / 2], 4096, &config());
    assert_eq!(facts.encryption.verdict, Verdict::Unknown);
    assert!(!facts.limits.is_empty());
}

#[test]
fn truncated_and_damaged_files_never_panic() {
    for (name, ..) in CASES {
        assert!(damage(&fixture(name), &config()).len() > 20);
    }
}

#[test]
fn decompression_budget_is_enforced() {
    let mut config = config();
    config.limits.max_expanded_bytes = 10;
    let (facts, _) = scan(&fixture("pdf-clear.pdf"), usize::MAX, &config);
    assert!(
        facts
            .limits
            .iter()
            .any(|l| l.kind == crate::inspect::report::LimitKind::ExpandedSize)
    );
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
}
