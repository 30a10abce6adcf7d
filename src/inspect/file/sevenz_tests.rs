use crate::inspect::engine::EngineConfig;
use crate::inspect::file::testutil::{damage, fixture, scan, scan_all};
use crate::inspect::report::{EncryptionKind, FileType, LimitKind, Verdict};
use crate::inspect::sink::TextOrigin::FileName;

fn config() -> EngineConfig {
    EngineConfig::default()
}

#[test]
fn clear_7z_lists_members() {
    let (facts, sink) = scan_all(&fixture("7z-clear.7z"), &config());
    assert_eq!(facts.file_type, FileType::SevenZip);
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
    let names: Vec<&str> = facts.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["klanten.csv", "notulen.txt"]);
    assert!(sink.has(FileName, "notulen.txt"));
    assert!(facts.limits.is_empty(), "{:?}", facts.limits);
    // Sizes from the header; content is not unpacked, so the type stays unknown.
    let sizes: Vec<u64> = facts.members.iter().map(|m| m.size).collect();
    assert_eq!(sizes, [66, 43]);
    for m in &facts.members {
        assert_eq!(m.file_type, FileType::Unknown);
        assert_eq!(m.encryption.verdict, Verdict::NotEncrypted);
    }
}

#[test]
fn aes_7z_is_encrypted_names_readable() {
    for name in ["7z-aes.7z", "7z-aes-plainheader.7z"] {
        let (facts, sink) = scan_all(&fixture(name), &config());
        assert_eq!(
            facts.encryption.verdict,
            Verdict::Encrypted,
            "{name}: {facts:?}"
        );
        assert_eq!(facts.encryption.kind, Some(EncryptionKind::SevenZipAes));
        assert!(sink.has(FileName, "klanten.csv"), "{name}");
        for m in &facts.members {
            assert_eq!(
                m.encryption.kind,
                Some(EncryptionKind::SevenZipAes),
                "{name}"
            );
        }
        assert_eq!(facts.members[0].size, 66, "{name}");
    }
}

#[test]
fn encrypted_headers_hide_names() {
    let (facts, sink) = scan_all(&fixture("7z-aes-headers.7z"), &config());
    assert_eq!(facts.encryption.verdict, Verdict::Encrypted);
    assert_eq!(facts.encryption.reason, "headers and data encrypted");
    assert!(sink.text(FileName).is_empty());
}

#[test]
fn one_clear_folder_makes_7z_not_encrypted() {
    let (facts, _) = scan_all(&fixture("7z-mixed.7z"), &config());
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
    assert!(
        facts.encryption.reason.contains("1 of 2"),
        "{}",
        facts.encryption.reason
    );
    let members: Vec<(&str, u64, Verdict)> = facts
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.size, m.encryption.verdict))
        .collect();
    assert_eq!(
        members,
        [
            ("notulen.txt", 43, Verdict::NotEncrypted),
            ("klanten.csv", 66, Verdict::Encrypted)
        ]
    );
}

#[test]
fn truncated_or_damaged_7z_is_unknown() {
    for name in ["7z-aes.7z", "7z-aes-headers.7z", "7z-clear.7z"] {
        let bytes = fixture(name);
        for cut in [3, 32, bytes.len() / 2, bytes.len() - 1] {
            let (facts, _) = scan(&bytes[..cut], 7, &config());
            assert_eq!(
                facts.encryption.verdict,
                Verdict::Unknown,
                "{name} at {cut}"
            );
            // Shorter than the signature, the bytes are not recognised at all.
            let expect = if cut >= 6 {
                FileType::SevenZip
            } else {
                FileType::Unknown
            };
            assert_eq!(facts.file_type, expect, "{name} at {cut}");
            if expect == FileType::SevenZip {
                assert!(facts.limits.iter().any(|h| h.kind == LimitKind::Malformed));
            }
        }
        let _ = damage(&bytes, &config());
    }
}
