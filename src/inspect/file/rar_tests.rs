use crate::inspect::engine::EngineConfig;
use crate::inspect::file::testutil::{damage, fixture, run, scan, scan_all};
use crate::inspect::report::{EncryptionKind, FileType, Verdict};
use crate::inspect::sink::TextOrigin::FileName;

fn config() -> EngineConfig {
    EngineConfig::default()
}

#[test]
fn rar_verdicts() {
    use EncryptionKind::{Rar4, Rar5};
    let cases = [
        ("rar4-clear.rar", Verdict::NotEncrypted, None, true),
        ("rar4-enc.rar", Verdict::Encrypted, Some(Rar4), true),
        ("rar4-mixed.rar", Verdict::NotEncrypted, None, true),
        ("rar4-hdr-enc.rar", Verdict::Encrypted, Some(Rar4), false),
        ("rar5-clear.rar", Verdict::NotEncrypted, None, true),
        ("rar5-enc.rar", Verdict::Encrypted, Some(Rar5), true),
        ("rar5-mixed.rar", Verdict::NotEncrypted, None, true),
        ("rar5-hdr-enc.rar", Verdict::Encrypted, Some(Rar5), false),
    ];
    for (name, verdict, kind, names_visible) in cases {
        let (facts, sink) = scan_all(&fixture(name), &config());
        assert_eq!(facts.file_type, FileType::Rar, "{name}");
        assert_eq!(facts.encryption.verdict, verdict, "{name}: {facts:?}");
        assert_eq!(facts.encryption.kind, kind, "{name}");
        assert_eq!(
            sink.has(FileName, "Vertrouwelijk-plan.txt"),
            names_visible,
            "{name}"
        );
        assert!(facts.limits.is_empty(), "{name}: {:?}", facts.limits);
        if names_visible {
            let names: Vec<&str> = facts.members.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["notulen.txt", "Vertrouwelijk-plan.txt"], "{name}");
        }
        // Clear stored members are scanned as files; encrypted ones cannot be typed.
        for m in &facts.members {
            let expect = match m.encryption.verdict {
                Verdict::Encrypted => FileType::Unknown,
                _ => FileType::Text,
            };
            assert_eq!(m.file_type, expect, "{name}: {}", m.name);
            assert_ne!(m.encryption.verdict, Verdict::Unknown, "{name}: {}", m.name);
        }
    }
    let (facts, _) = scan_all(&fixture("rar5-mixed.rar"), &config());
    assert!(facts.encryption.reason.contains("1 of 2"));
}

#[test]
fn encrypted_rar_headers_settle_early() {
    for name in ["rar4-hdr-enc.rar", "rar5-hdr-enc.rar"] {
        let bytes = fixture(name);
        // The first header decides: a prefix of the archive is enough.
        let (facts, _) = scan(&bytes[..60], 7, &config());
        assert_eq!(facts.encryption.verdict, Verdict::Encrypted, "{name}");
    }
}

#[test]
fn truncated_or_damaged_rar() {
    for name in [
        "rar4-enc.rar",
        "rar5-enc.rar",
        "rar4-clear.rar",
        "rar5-clear.rar",
    ] {
        let bytes = fixture(name);
        let (facts, _) = scan(&bytes[..bytes.len() - 10], 7, &config());
        assert!(!facts.limits.is_empty(), "{name}");
        // Cut before the end record: encrypted files cannot be confirmed; a clear one seen
        // is enough.
        let expect = if name.contains("enc") {
            Verdict::Unknown
        } else {
            Verdict::NotEncrypted
        };
        assert_eq!(facts.encryption.verdict, expect, "{name}");
        for facts in damage(&bytes, &config()) {
            if name.contains("clear") {
                assert_ne!(facts.encryption.verdict, Verdict::Encrypted, "{name}");
            }
        }
    }
}

#[test]
fn settled_only_when_headers_are_encrypted() {
    for (name, settled) in [
        ("rar5-hdr-enc.rar", true),
        ("rar4-hdr-enc.rar", true),
        ("rar5-enc.rar", false),
    ] {
        let bytes = fixture(name);
        let run = run(&bytes[..60], 7, &config());
        assert_eq!(run.settled_at.is_some(), settled, "{name}");
    }
}
