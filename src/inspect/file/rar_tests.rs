use crate::inspect::engine::EngineConfig;
use crate::inspect::file::testutil::{damage, fixture, scan_all, scan_with};
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
    }
    let (facts, _) = scan_all(&fixture("rar5-mixed.rar"), &config());
    assert!(facts.encryption.reason.contains("1 of 2"));
}

#[test]
fn encrypted_rar_headers_settle_early() {
    for name in ["rar4-hdr-enc.rar", "rar5-hdr-enc.rar"] {
        let bytes = fixture(name);
        // The first header decides: a prefix of the archive is enough.
        let (facts, _) = scan_with(&bytes[..60], 7, &config());
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
        let (facts, _) = scan_with(&bytes[..bytes.len() - 10], 7, &config());
        assert!(!facts.limits.is_empty(), "{name}");
        if name.contains("enc") {
            assert_eq!(facts.encryption.verdict, Verdict::Unknown, "{name}");
        }
        for facts in damage(&bytes, &config()) {
            if name.contains("clear") {
                assert_ne!(facts.encryption.verdict, Verdict::Encrypted, "{name}");
            }
        }
    }
}

#[test]
fn settled_only_when_headers_are_encrypted() {
    use crate::inspect::file::{FileScanner, ScanCx};
    let config = config();
    for (name, settled) in [
        ("rar5-hdr-enc.rar", true),
        ("rar4-hdr-enc.rar", true),
        ("rar5-enc.rar", false),
    ] {
        let bytes = fixture(name);
        let mut sink = crate::inspect::sink::NullSink;
        let mut budget = u64::MAX;
        let mut cx = ScanCx {
            config: &config,
            sink: &mut sink,
            expand_budget: &mut budget,
        };
        let mut scanner = FileScanner::new(&config, 0);
        scanner.feed(&bytes[..60], &mut cx);
        assert_eq!(scanner.settled(), settled, "{name}");
    }
}
