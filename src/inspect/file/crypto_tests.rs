//! Fixture tests for the crypto containers: OpenPGP, CMS / S/MIME, age and openssl enc.

use crate::inspect::file::testutil::{SPLITS, config, damage, fixture, run, scan};
use crate::inspect::report::{EncryptionKind, FileType, Verdict};
use crate::inspect::sink::TextOrigin::Body;

/// (fixture, type, verdict, kind, words of the reason, settles before the end)
type Case = (
    &'static str,
    FileType,
    Verdict,
    Option<EncryptionKind>,
    &'static str,
);

const CASES: &[Case] = &[
    (
        "pgp-symmetric.gpg",
        FileType::Openpgp,
        Verdict::Encrypted,
        Some(EncryptionKind::OpenpgpSymmetric),
        "passphrase",
    ),
    (
        "pgp-symmetric.asc",
        FileType::OpenpgpArmored,
        Verdict::Encrypted,
        Some(EncryptionKind::OpenpgpSymmetric),
        "passphrase",
    ),
    (
        "pgp-pubkey.gpg",
        FileType::Openpgp,
        Verdict::Encrypted,
        Some(EncryptionKind::OpenpgpPublicKey),
        "public-key",
    ),
    (
        "pgp-pubkey.asc",
        FileType::OpenpgpArmored,
        Verdict::Encrypted,
        Some(EncryptionKind::OpenpgpPublicKey),
        "public-key",
    ),
    (
        "pgp-signed.gpg",
        FileType::Openpgp,
        Verdict::NotEncrypted,
        None,
        "compressed",
    ),
    (
        "pgp-signed.asc",
        FileType::OpenpgpArmored,
        Verdict::NotEncrypted,
        None,
        "compressed",
    ),
    (
        "pgp-clearsigned.asc",
        FileType::OpenpgpArmored,
        Verdict::NotEncrypted,
        None,
        "cleartext-signed",
    ),
    (
        "pgp-public-key.gpg",
        FileType::Openpgp,
        Verdict::NotEncrypted,
        None,
        "public key",
    ),
    (
        "pgp-secret-key.gpg",
        FileType::Openpgp,
        Verdict::NotEncrypted,
        None,
        "OpenPGP secret key",
    ),
    (
        "pgp-secret-key.asc",
        FileType::OpenpgpArmored,
        Verdict::NotEncrypted,
        None,
        "OpenPGP secret key",
    ),
    (
        "cms-enveloped.der",
        FileType::Cms,
        Verdict::Encrypted,
        Some(EncryptionKind::CmsEnveloped),
        "envelopedData",
    ),
    (
        "cms-enveloped.pem",
        FileType::Cms,
        Verdict::Encrypted,
        Some(EncryptionKind::CmsEnveloped),
        "envelopedData",
    ),
    (
        "cms-authenveloped.der",
        FileType::Cms,
        Verdict::Encrypted,
        Some(EncryptionKind::CmsEnveloped),
        "authEnvelopedData",
    ),
    (
        "cms-encrypteddata.der",
        FileType::Cms,
        Verdict::Encrypted,
        Some(EncryptionKind::CmsEnveloped),
        "encryptedData",
    ),
    (
        "cms-signed.der",
        FileType::Cms,
        Verdict::NotEncrypted,
        None,
        "signed, not encrypted",
    ),
    (
        "cms-signed.pem",
        FileType::Cms,
        Verdict::NotEncrypted,
        None,
        "signed, not encrypted",
    ),
    (
        "smime-enveloped.eml",
        FileType::Cms,
        Verdict::Encrypted,
        Some(EncryptionKind::CmsEnveloped),
        "envelopedData",
    ),
    (
        "age-x25519.age",
        FileType::Age,
        Verdict::Encrypted,
        Some(EncryptionKind::Age),
        "X25519",
    ),
    (
        "age-x25519-armored.age",
        FileType::Age,
        Verdict::Encrypted,
        Some(EncryptionKind::Age),
        "X25519",
    ),
    (
        "age-scrypt.age",
        FileType::Age,
        Verdict::Encrypted,
        Some(EncryptionKind::Age),
        "passphrase",
    ),
    (
        "openssl-salted.bin",
        FileType::OpensslSalted,
        Verdict::Encrypted,
        Some(EncryptionKind::OpensslSalted),
        "salt",
    ),
    (
        "openssl-salted.b64",
        FileType::OpensslSalted,
        Verdict::Encrypted,
        Some(EncryptionKind::OpensslSalted),
        "base64",
    ),
];

#[test]
fn fixtures_get_their_verdict_at_every_split() {
    let config = config();
    for (name, file_type, verdict, kind, reason) in CASES {
        let bytes = fixture(name);
        for split in SPLITS {
            let (facts, _) = scan(&bytes, split, &config);
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
        }
    }
}

#[test]
fn readable_armor_reaches_the_sink() {
    let config = config();
    for split in SPLITS {
        let (_, sink) = scan(&fixture("pgp-clearsigned.asc"), split, &config);
        assert!(
            sink.has(Body, "BSN 111222333"),
            "@{split}: {:?}",
            sink.text(Body)
        );
        let (_, sink) = scan(&fixture("pgp-secret-key.asc"), split, &config);
        assert!(
            sink.has(Body, "-----BEGIN PGP PRIVATE KEY BLOCK-----"),
            "@{split}"
        );
        for signed in ["pgp-signed.gpg", "pgp-signed.asc"] {
            let (facts, sink) = scan(&fixture(signed), split, &config);
            assert!(
                sink.has(Body, "BSN 111222333"),
                "{signed} @{split}: {:?}",
                sink.text(Body)
            );
            assert!(facts.limits.is_empty());
        }
        let (_, sink) = scan(&fixture("pgp-symmetric.asc"), split, &config);
        assert!(sink.text(Body).is_empty(), "encrypted armor is not text");
    }
}

#[test]
fn signed_cms_content_reaches_the_sink() {
    let config = config();
    for name in [
        "cms-signed.der",
        "cms-signed.pem",
        "cms-signed-streamed.pem",
        "smime-signed.eml",
    ] {
        for split in SPLITS {
            let (_, sink) = scan(&fixture(name), split, &config);
            // S/MIME canonicalises line ends to CRLF.
            assert_eq!(
                sink.text(Body).replace('\r', ""),
                "Vertrouwelijk\nKlantnummer en BSN 111222333 van de aanvrager.\n",
                "{name} @{split}"
            );
        }
    }
    let (_, sink) = scan(&fixture("cms-enveloped.der"), 1, &config);
    assert!(sink.text(Body).is_empty());
}

#[test]
fn literal_data_in_partial_lengths_is_joined_exactly() {
    // 300 copies of the message, split by gpg into 8 KiB partial-length pieces.
    for split in SPLITS {
        let (_, sink) = scan(&fixture("pgp-signed-uncompressed.gpg"), split, &config());
        assert_eq!(
            sink.text(Body)
                .matches("BSN 111222333 van de aanvrager.\nVertrouwelijk")
                .count(),
            299,
            "@{split}"
        );
    }
}

#[test]
fn header_decided_files_settle_early() {
    let config = config();
    for name in [
        "pgp-symmetric.gpg",
        "pgp-pubkey.asc",
        "cms-enveloped.der",
        "cms-enveloped.pem",
        "smime-enveloped.eml",
        "age-x25519.age",
        "age-x25519-armored.age",
        "openssl-salted.bin",
        "openssl-salted.b64",
    ] {
        // Files shorter than the sniff window are sniffed at their end: lengthen them (the
        // extra bytes stand for more ciphertext).
        let mut bytes = fixture(name);
        bytes.resize(bytes.len() + 8192, b'A');
        let settled_at = run(&bytes, 1, &config).settled_at;
        let at = settled_at.unwrap_or_else(|| panic!("{name} never settled"));
        assert!(at <= 1024, "{name} settled only at byte {at}");
    }
}

#[test]
fn readable_pgp_does_not_settle() {
    let config = config();
    let bytes = fixture("pgp-clearsigned.asc");
    assert_eq!(run(&bytes, 1, &config).settled_at, None);
    assert_eq!(run(&bytes, usize::MAX, &config).settled_at, None);
}

#[test]
fn truncated_and_damaged_files_never_panic() {
    for (name, ..) in CASES {
        assert!(damage(&fixture(name), &config()).len() > 20);
    }
}

#[test]
fn truncated_headers_are_unknown_not_encrypted() {
    let config = config();
    for (name, cut) in [
        ("openssl-salted.bin", 12),
        ("age-x25519.age", 25),
        ("cms-enveloped.der", 8),
        ("pgp-symmetric.asc", 31),
    ] {
        let bytes = fixture(name);
        let (facts, _) = scan(&bytes[..cut], 4096, &config);
        assert_eq!(
            facts.encryption.verdict,
            Verdict::Unknown,
            "{name}: {:?}",
            facts.encryption
        );
    }
}

#[test]
fn signed_data_around_enveloped_data_is_encrypted() {
    // ContentInfo(signedData) → SignedData { version, digestAlgorithms, encapContentInfo
    // { envelopedData ... } }.
    let der = [
        0x30, 0x80, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02, 0xA0, 0x80,
        0x30, 0x80, 0x02, 0x01, 0x01, 0x31, 0x00, 0x30, 0x80, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86,
        0xF7, 0x0D, 0x01, 0x07, 0x03, 0xA0, 0x80, 0x04, 0x00,
    ];
    let (facts, _) = scan(&der, 1, &config());
    assert_eq!(facts.file_type, FileType::Cms);
    assert_eq!(
        facts.encryption.verdict,
        Verdict::Encrypted,
        "{:?}",
        facts.encryption
    );
}

#[test]
fn random_bytes_never_sniff_as_crypto_containers() {
    use crate::inspect::file::{Sniff, sniff};
    let mut state = 0xD1B5_4A32_D192_ED03u64;
    let mut prefix = [0u8; 512];
    for round in 0..100_000u32 {
        for chunk in prefix.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        // Every fourth prefix starts like a DER SEQUENCE, the most common false start.
        if round % 4 == 0 {
            prefix[0] = 0x30;
            prefix[1] = 0x82;
        }
        let got = sniff(&prefix, true);
        assert!(
            !matches!(got, Sniff::Type(FileType::Openpgp | FileType::Cms)),
            "round {round}: {got:?}"
        );
    }
}

#[test]
fn signed_message_inflation_is_charged_to_the_budget() {
    let mut config = config();
    config.limits.max_expanded_bytes = 16;
    let (facts, sink) = scan(&fixture("pgp-signed.gpg"), 4096, &config);
    assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
    assert!(
        facts
            .limits
            .iter()
            .any(|l| l.kind == crate::inspect::report::LimitKind::ExpandedSize),
        "{:?}",
        facts.limits
    );
    assert!(!sink.has(Body, "111222333"));
}
