use crate::inspect::engine::EngineConfig;
use crate::inspect::file::testutil::{damage, fixture, scan, scan_all};
use crate::inspect::report::{EncryptionKind, FileType, LimitKind, Verdict};
use crate::inspect::sink::TextOrigin;

fn config() -> EngineConfig {
    EngineConfig::default()
}

fn names(facts: &crate::inspect::file::FormatFacts) -> Vec<&str> {
    facts.members.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn clear_zip_is_scanned_member_by_member() {
    let (facts, sink) = scan_all(&fixture("zip-clear.zip"), &config());
    assert_eq!(facts.file_type, FileType::Zip);
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
    assert_eq!(
        names(&facts),
        [
            "klanten.csv",
            "notulen.txt",
            "Vertrouwelijk-plan.txt",
            "map/",
            "map/los.txt"
        ]
    );
    assert!(facts.limits.is_empty(), "{:?}", facts.limits);
    assert!(sink.has(TextOrigin::FileName, "Vertrouwelijk-plan.txt"));
    // The members' content reaches the sink through the nested scanners.
    assert_eq!(facts.members[0].size, 66);
    assert!(sink.has(TextOrigin::Body, "111222333"));
    let types: Vec<FileType> = facts.members.iter().map(|m| m.file_type).collect();
    use FileType::{Csv, Text, Unknown};
    assert_eq!(types, [Csv, Text, Text, Unknown, Text]);
    for m in &facts.members {
        assert_eq!(m.encryption.verdict, Verdict::NotEncrypted, "{}", m.name);
    }
    assert_eq!(facts.members[3].encryption.reason, "directory entry");
}

#[test]
fn package_parts_show_their_type() {
    let (facts, _) = scan_all(&fixture("docx-msip.docx"), &config());
    assert_eq!(facts.file_type, FileType::Docx);
    let member = |name: &str| {
        facts
            .members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    // Read by the text extractor, read for the type only, and a thumbnail.
    for (name, t) in [
        ("word/document.xml", FileType::Xml),
        ("[Content_Types].xml", FileType::Xml),
        ("word/styles.xml", FileType::Xml),
        ("_rels/.rels", FileType::Xml),
        ("docProps/thumbnail.jpeg", FileType::Jpeg),
    ] {
        assert_eq!(member(name).file_type, t, "{name}");
        assert_eq!(
            member(name).encryption.verdict,
            Verdict::NotEncrypted,
            "{name}"
        );
    }
    assert_eq!(member("word/styles.xml").size, 349_458);
    assert!(
        facts
            .members
            .iter()
            .all(|m| m.encryption.verdict == Verdict::NotEncrypted),
        "{:?}",
        facts.members
    );
}

#[test]
fn odf_members_follow_the_manifest() {
    let (facts, _) = scan_all(&fixture("odt-clear.odt"), &config());
    let of = |facts: &crate::inspect::file::FormatFacts, name: &str| {
        let m = facts.members.iter().find(|m| m.name == name).unwrap();
        (m.file_type, m.encryption.verdict, m.encryption.kind)
    };
    assert_eq!(
        of(&facts, "mimetype"),
        (FileType::Text, Verdict::NotEncrypted, None)
    );
    assert_eq!(
        of(&facts, "content.xml"),
        (FileType::Xml, Verdict::NotEncrypted, None)
    );
    assert_eq!(
        of(&facts, "Thumbnails/thumbnail.png"),
        (FileType::Png, Verdict::NotEncrypted, None)
    );
    // With a password, the manifest names the encrypted members; their bytes are ciphertext.
    let (facts, _) = scan_all(&fixture("odt-encrypted.odt"), &config());
    let odf = Some(EncryptionKind::OdfEncrypted);
    for name in ["content.xml", "styles.xml", "meta.xml"] {
        assert_eq!(
            of(&facts, name),
            (FileType::Unknown, Verdict::Encrypted, odf),
            "{name}"
        );
    }
    assert_eq!(
        of(&facts, "META-INF/manifest.xml"),
        (FileType::Xml, Verdict::NotEncrypted, None)
    );
    assert_eq!(of(&facts, "mimetype").1, Verdict::NotEncrypted);
}

#[test]
fn zipcrypto_archive_is_encrypted_and_names_still_reach_the_sink() {
    let (facts, sink) = scan_all(&fixture("zipcrypto.zip"), &config());
    assert_eq!(facts.encryption.verdict, Verdict::Encrypted);
    assert_eq!(facts.encryption.kind, Some(EncryptionKind::ZipCrypto));
    assert_eq!(names(&facts), ["klanten.csv", "notulen.txt"]);
    assert!(sink.has(TextOrigin::FileName, "klanten.csv"));
    assert!(!sink.has(TextOrigin::Body, "111222333"));
    assert!(facts.limits.is_empty(), "{:?}", facts.limits);
}

#[test]
fn winzip_aes_is_encrypted_with_strength() {
    let (facts, _) = scan_all(&fixture("zip-aes256.zip"), &config());
    assert_eq!(facts.encryption.verdict, Verdict::Encrypted);
    assert_eq!(facts.encryption.kind, Some(EncryptionKind::ZipAes));
    assert!(
        facts.encryption.reason.contains("AES-256"),
        "{}",
        facts.encryption.reason
    );
    assert!(facts.limits.is_empty(), "{:?}", facts.limits);
}

#[test]
fn mixed_aes_and_zipcrypto_reports_the_weakest() {
    let (facts, _) = scan_all(&fixture("zip-aes-zipcrypto.zip"), &config());
    assert_eq!(facts.encryption.verdict, Verdict::Encrypted);
    assert_eq!(facts.encryption.kind, Some(EncryptionKind::ZipCrypto));
    let reason = &facts.encryption.reason;
    assert!(
        reason.contains("AES-128") && reason.contains("weakest is ZipCrypto"),
        "{reason}"
    );
}

#[test]
fn one_clear_member_makes_the_archive_not_encrypted() {
    let (facts, sink) = scan_all(&fixture("zip-mixed.zip"), &config());
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
    assert!(
        facts.encryption.reason.contains("1 of 2"),
        "{}",
        facts.encryption.reason
    );
    assert_eq!(
        facts.members[0].encryption.kind,
        Some(EncryptionKind::ZipCrypto)
    );
    assert_eq!(facts.members[1].file_type, FileType::Text);
    assert_eq!(facts.members[1].encryption.verdict, Verdict::NotEncrypted);
    assert!(sink.has(TextOrigin::FileName, "notulen.txt"));
}

#[test]
fn empty_files_and_directories_do_not_count() {
    let (facts, _) = scan_all(&fixture("zipcrypto-with-empty.zip"), &config());
    assert_eq!(facts.encryption.verdict, Verdict::Encrypted);
    assert_eq!(names(&facts), ["klanten.csv", "leeg.txt", "map/"]);
}

#[test]
fn empty_zip_is_not_encrypted() {
    let (facts, _) = scan_all(&fixture("zip-empty.zip"), &config());
    assert_eq!(facts.file_type, FileType::Zip);
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
    assert!(facts.members.is_empty());
}

#[test]
fn streamed_members_with_data_descriptors() {
    for name in ["zip-stream-deflate.zip", "zip-stream-stored.zip"] {
        let (facts, _) = scan_all(&fixture(name), &config());
        assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted, "{name}");
        assert!(facts.limits.is_empty(), "{name}: {:?}", facts.limits);
    }
    let (facts, _) = scan_all(&fixture("zip-stream-stored.zip"), &config());
    assert_eq!(names(&facts), ["klanten.csv", "notulen.txt"]);
    // An encrypted member of unknown size is found by its descriptor, then confirmed.
    let (facts, _) = scan_all(&fixture("zip-stream-zipcrypto.zip"), &config());
    assert_eq!(facts.encryption.verdict, Verdict::Encrypted, "{:?}", facts);
    assert!(facts.limits.is_empty(), "{:?}", facts.limits);
}

#[test]
fn zip_of_encrypted_files_is_encrypted() {
    let (facts, _) = scan_all(&fixture("zip-of-gpg.zip"), &config());
    assert_eq!(names(&facts), ["klanten.csv.gpg", "notulen.txt.gpg"]);
    for m in &facts.members {
        assert_eq!(m.file_type, FileType::Openpgp, "{}", m.name);
        assert_eq!(m.encryption.verdict, Verdict::Encrypted, "{}", m.name);
        assert_eq!(m.encryption.kind, Some(EncryptionKind::OpenpgpSymmetric));
    }
    assert_eq!(facts.encryption.verdict, Verdict::Encrypted);
    assert_eq!(
        facts.encryption.kind,
        Some(EncryptionKind::OpenpgpSymmetric)
    );
    assert!(
        facts.encryption.reason.contains("encrypted files"),
        "{}",
        facts.encryption.reason
    );
    let (facts, _) = scan_all(&fixture("zip-of-encrypted-odt.zip"), &config());
    assert_eq!(facts.members[0].file_type, FileType::Odt);
    assert_eq!(
        facts.members[0].encryption.kind,
        Some(EncryptionKind::OdfEncrypted)
    );
    assert_eq!(facts.encryption.verdict, Verdict::Encrypted);
    assert_eq!(facts.encryption.kind, Some(EncryptionKind::OdfEncrypted));
}

#[test]
fn nested_zip_is_scanned_one_level_down() {
    let (facts, sink) = scan_all(&fixture("nested.zip"), &config());
    assert_eq!(names(&facts), ["inner.zip", "notulen.txt"]);
    assert_eq!(facts.members[0].file_type, FileType::Zip);
    // The inner member's name reached the sink too.
    assert!(sink.has(TextOrigin::FileName, "klanten.csv"));
    // One level allowed: the inner zip is read (its names too) but not its members.
    let mut shallow = config();
    shallow.limits.max_depth = 1;
    let (facts, sink) = scan(&fixture("nested.zip"), usize::MAX, &shallow);
    assert!(
        facts.limits.iter().any(|h| h.kind == LimitKind::Depth),
        "{:?}",
        facts.limits
    );
    assert!(sink.has(TextOrigin::FileName, "klanten.csv"));
    // None allowed: members are not opened at all.
    shallow.limits.max_depth = 0;
    let (facts, sink) = scan(&fixture("nested.zip"), usize::MAX, &shallow);
    assert!(
        facts.limits.iter().any(|h| h.kind == LimitKind::Depth),
        "{:?}",
        facts.limits
    );
    assert_eq!(facts.members[0].file_type, FileType::Unknown);
    assert!(!sink.has(TextOrigin::FileName, "klanten.csv"));
}

#[test]
fn bomb_stops_at_the_ratio_or_budget() {
    let (facts, _) = scan(&fixture("zip-bomb.zip"), 4096, &config());
    assert!(
        facts.limits.iter().any(|h| h.kind == LimitKind::Ratio),
        "{:?}",
        facts.limits
    );
    let mut small = config();
    small.limits.max_ratio = 100_000;
    small.limits.max_expanded_bytes = 1 << 20;
    let (facts, _) = scan(&fixture("zip-bomb.zip"), 4096, &small);
    assert!(
        facts
            .limits
            .iter()
            .any(|h| h.kind == LimitKind::ExpandedSize),
        "{:?}",
        facts.limits
    );
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
}

#[test]
fn member_limit_makes_the_archive_unknown() {
    let mut few = config();
    few.limits.max_members = 2;
    let (facts, _) = scan(&fixture("zip-clear.zip"), 7, &few);
    assert_eq!(facts.encryption.verdict, Verdict::Unknown);
    assert!(facts.limits.iter().any(|h| h.kind == LimitKind::Members));
}

#[test]
fn damaged_archives_never_claim_encryption_wrongly() {
    for name in [
        "zip-clear.zip",
        "zip-mixed.zip",
        "zip-stream-deflate.zip",
        "zip-stream-stored.zip",
    ] {
        for facts in damage(&fixture(name), &config()) {
            assert_ne!(
                facts.encryption.verdict,
                Verdict::Encrypted,
                "{name}: {facts:?}"
            );
        }
    }
    for name in [
        "zipcrypto.zip",
        "zip-aes256.zip",
        "zip-stream-zipcrypto.zip",
    ] {
        let bytes = fixture(name);
        for cut in [10, bytes.len() / 2, bytes.len() - 5] {
            let (facts, _) = scan(&bytes[..cut], 7, &config());
            assert_eq!(
                facts.encryption.verdict,
                Verdict::Unknown,
                "{name} cut at {cut}"
            );
            assert!(!facts.limits.is_empty());
        }
        let _ = damage(&bytes, &config());
    }
}

#[test]
fn local_and_central_flags_must_agree() {
    // Clear the encryption flag in the central directory only: readers would see a clear
    // member where the local header says encrypted.
    let mut bytes = fixture("zipcrypto.zip");
    let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    bytes[cd + 8] &= !1;
    let (facts, _) = scan_all(&bytes, &config());
    assert_eq!(facts.encryption.verdict, Verdict::Unknown);
    assert!(facts.limits.iter().any(|h| h.kind == LimitKind::Malformed));
}

#[test]
fn data_after_the_end_spoils_an_encrypted_verdict() {
    let mut bytes = fixture("zipcrypto.zip");
    bytes.extend_from_slice(b"BSN 111222333 in de staart");
    let (facts, _) = scan_all(&bytes, &config());
    assert_eq!(facts.encryption.verdict, Verdict::Unknown);
}
