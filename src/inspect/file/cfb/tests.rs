use super::legacy::{DEFAULT_PASSWORD_REASON, FilePass};
use super::{EncryptionInfoVersion, encryption_info_version};
use crate::inspect::file::testutil::{SPLITS, config, damage, fixture, scan};
use crate::inspect::report::{EncryptionKind, FileType, Verdict};
use crate::inspect::sink::TextOrigin::Body;

/// (fixture, type, verdict, kind, words of the reason)
const CASES: &[(&str, FileType, Verdict, Option<EncryptionKind>, &str)] = &[
    (
        "docx-agile.docx",
        FileType::OoxmlEncrypted,
        Verdict::Encrypted,
        Some(EncryptionKind::OoxmlAgile),
        "agile",
    ),
    (
        "xlsx-agile.xlsx",
        FileType::OoxmlEncrypted,
        Verdict::Encrypted,
        Some(EncryptionKind::OoxmlAgile),
        "agile",
    ),
    (
        "irm-synthetic.cfb",
        FileType::OoxmlEncrypted,
        Verdict::Encrypted,
        Some(EncryptionKind::OoxmlIrm),
        "IRM",
    ),
    (
        "doc-plain.doc",
        FileType::Doc,
        Verdict::NotEncrypted,
        None,
        "without encryption",
    ),
    (
        "doc-rc4.doc",
        FileType::Doc,
        Verdict::Encrypted,
        Some(EncryptionKind::LegacyOfficeRc4),
        "RC4",
    ),
    (
        "xls-plain.xls",
        FileType::Xls,
        Verdict::NotEncrypted,
        None,
        "without FILEPASS",
    ),
    (
        "xls-rc4.xls",
        FileType::Xls,
        Verdict::Encrypted,
        Some(EncryptionKind::LegacyOfficeRc4),
        "password",
    ),
    (
        "xls-velvetsweatshop.xls",
        FileType::Xls,
        Verdict::NotEncrypted,
        None,
        DEFAULT_PASSWORD_REASON,
    ),
    (
        "ppt-plain.ppt",
        FileType::Ppt,
        Verdict::NotEncrypted,
        None,
        "without encryption",
    ),
    (
        "ppt-encrypted-token.ppt",
        FileType::Ppt,
        Verdict::Encrypted,
        Some(EncryptionKind::LegacyOfficeRc4),
        "encrypted",
    ),
];

#[test]
fn fixtures_get_their_verdict_at_every_split() {
    let config = config();
    for (name, file_type, verdict, kind, reason) in CASES {
        let bytes = fixture(name);
        for split in SPLITS {
            let (facts, sink) = scan(&bytes, split, &config);
            assert_eq!(facts.file_type, *file_type, "{name} @{split}");
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
            // Legacy text extraction is out of scope: nothing reaches the sink.
            assert!(sink.text(Body).is_empty() && sink.labels.is_empty());
        }
    }
}

#[test]
fn truncated_and_damaged_files_never_panic() {
    for (name, ..) in CASES {
        assert!(damage(&fixture(name), &config()).len() > 20);
    }
}

#[test]
fn a_cut_off_directory_leaves_the_verdict_open() {
    // The directory of the agile file sits after its streams: without it there is no proof.
    let bytes = fixture("docx-agile.docx");
    let (facts, _) = scan(&bytes[..1024], 4096, &config());
    assert_ne!(facts.encryption.verdict, Verdict::Encrypted);
}

#[test]
fn encryption_info_versions() {
    let version = |bytes: &[u8]| {
        let mut unit = [0u8; 64];
        unit[..bytes.len()].copy_from_slice(bytes);
        encryption_info_version(&unit)
    };
    assert_eq!(
        version(&[4, 0, 4, 0, 0x40, 0, 0, 0]),
        Some(EncryptionInfoVersion::Agile)
    );
    assert_eq!(
        version(&[3, 0, 2, 0, 0x24, 0, 0, 0]),
        Some(EncryptionInfoVersion::Standard)
    );
    assert_eq!(
        version(&[4, 0, 2, 0, 0x24, 0, 0, 0]),
        Some(EncryptionInfoVersion::Standard)
    );
    assert_eq!(
        version(&[4, 0, 3, 0, 0x24, 0, 0, 0]),
        Some(EncryptionInfoVersion::Extensible)
    );
    assert_eq!(version(&[4, 0, 4, 0, 0x41, 0, 0, 0]), None);
}

fn cryptoapi_vector(name: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture("filepass-cryptoapi.txt")).unwrap();
    let line = text.lines().find(|l| l.starts_with(name)).unwrap();
    hex::decode(line.split_once(' ').unwrap().1).unwrap()
}

/// A BOF record, then FILEPASS with `body`.
fn workbook_start(body: &[u8]) -> Vec<u8> {
    let mut stream = vec![0x09, 0x08, 0x10, 0x00, 0x00, 0x06, 0x05, 0x00];
    stream.extend_from_slice(&[0; 12]);
    stream.extend_from_slice(&[0x2F, 0x00]);
    stream.extend_from_slice(&(body.len() as u16).to_le_bytes());
    stream.extend_from_slice(body);
    stream
}

#[test]
fn default_password_with_rc4_cryptoapi_is_readable() {
    for (name, verdict) in [
        ("velvet-128", Verdict::NotEncrypted),
        ("velvet-40", Verdict::NotEncrypted),
        ("secret-128", Verdict::Encrypted),
    ] {
        let stream = workbook_start(&cryptoapi_vector(name));
        let encryption = FilePass::find(&stream).unwrap().verdict();
        assert_eq!(encryption.verdict, verdict, "{name}: {encryption:?}");
    }
}

#[test]
fn default_password_with_xor_obfuscation_is_readable() {
    // Verifier bytes of "VelvetSweatshop" from MS-OFFCRYPTO's method 1 (0x9A0A).
    let stream = workbook_start(&[0, 0, 0x34, 0x12, 0x0A, 0x9A]);
    let encryption = FilePass::find(&stream).unwrap().verdict();
    assert_eq!(encryption.reason, DEFAULT_PASSWORD_REASON);
    let stream = workbook_start(&[0, 0, 0x34, 0x12, 0x0B, 0x9A]);
    let encryption = FilePass::find(&stream).unwrap().verdict();
    assert_eq!(encryption.kind, Some(EncryptionKind::LegacyOfficeXor));
}

#[test]
fn random_data_is_an_unknown_compound_file() {
    let mut bytes = fixture("doc-plain.doc")[..512].to_vec();
    let mut state = 7u64;
    for _ in 0..8192 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push(state as u8);
    }
    let (facts, _) = scan(&bytes, 4096, &config());
    assert_eq!(facts.file_type, FileType::Cfb);
    assert_eq!(facts.encryption.verdict, Verdict::Unknown);
}
