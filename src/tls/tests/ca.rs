//! The CA: generation, files and modes, loading corporate CAs.

use std::{path::Path, sync::Arc};

use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;

use super::support::{fixture_ca, generated_ca, load_fixture_ca, mode_of, parse_cert};
use crate::tls::{
    Ca, CaKeyAlgorithm, CaOptions, Created, TlsError, init_command, pem, trust_instructions,
};

#[test]
fn generated_ca_has_the_promised_shape() {
    let ca = Ca::generate(&CaOptions {
        organization: "KPN Egress".into(),
        ..Default::default()
    })
    .unwrap();
    let cert = parse_cert(ca.cert_der());
    let subject = cert.subject().to_string();
    assert!(
        subject.starts_with("O=KPN Egress, OU=created "),
        "{subject}"
    );
    assert!(subject.ends_with(", CN=sluis interception CA"), "{subject}");
    assert_eq!(ca.subject(), subject);
    let other = Ca::generate(&CaOptions {
        organization: "KPN Egress".into(),
        ..Default::default()
    })
    .unwrap();
    assert_ne!(parse_cert(other.cert_der()).subject().to_string(), subject);
    assert_eq!(cert.subject().as_raw(), cert.issuer().as_raw());

    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && ku.digital_signature());
    assert!(!ku.key_encipherment());
    assert!(cert.name_constraints().unwrap().is_none());
    let has_ski = cert.extensions().iter().any(|e| {
        matches!(
            e.parsed_extension(),
            ParsedExtension::SubjectKeyIdentifier(_)
        )
    });
    assert!(has_ski);

    let now = OffsetDateTime::now_utc();
    let nb = cert.validity().not_before.to_datetime();
    let na = cert.validity().not_after.to_datetime();
    assert!(nb <= now - Duration::hours(23) && nb >= now - Duration::hours(25));
    assert!(na >= now + Duration::days(3649) && na <= now + Duration::days(3651));

    let serial = cert.raw_serial();
    assert_eq!(serial.len(), 16);
    assert!(serial[0] & 0x80 == 0, "serial must be positive");
    assert_eq!(ca.algorithm(), CaKeyAlgorithm::EcdsaP256);
    assert_eq!(ca.fingerprint_sha256().len(), 32 * 3 - 1);
}

#[test]
fn p384_can_be_generated_rsa_cannot() {
    let opts = CaOptions {
        algorithm: CaKeyAlgorithm::EcdsaP384,
        ..Default::default()
    };
    assert_eq!(
        Ca::generate(&opts).unwrap().algorithm(),
        CaKeyAlgorithm::EcdsaP384
    );
    let opts = CaOptions {
        validity_days: u32::MAX,
        ..Default::default()
    };
    assert!(matches!(
        Ca::generate(&opts),
        Err(TlsError::InvalidOption { .. })
    ));
    let opts = CaOptions {
        algorithm: CaKeyAlgorithm::Rsa,
        ..Default::default()
    };
    assert!(matches!(
        Ca::generate(&opts),
        Err(TlsError::UnsupportedKey { .. })
    ));
}

#[test]
fn init_writes_a_0600_key_in_a_0700_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let ca = Ca::init(&dir, &CaOptions::default()).unwrap();

    assert_eq!(mode_of(&dir.join("ca.key")), 0o600);
    assert_eq!(mode_of(&dir), 0o700);
    let pem_on_disk = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    assert_eq!(pem_on_disk, ca.cert_pem());
    assert!(
        std::fs::read_to_string(dir.join("ca.key"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    // What was written loads back as the same CA.
    let loaded = Ca::load(&dir.join("ca.pem"), &dir.join("ca.key")).unwrap();
    assert_eq!(loaded.fingerprint_sha256(), ca.fingerprint_sha256());
}

#[test]
fn init_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    Ca::init(tmp.path(), &CaOptions::default()).unwrap();
    let before = std::fs::read(tmp.path().join("ca.key")).unwrap();

    let err = Ca::init(tmp.path(), &CaOptions::default()).unwrap_err();
    assert!(matches!(err, TlsError::AlreadyExists { .. }), "{err}");
    assert_eq!(std::fs::read(tmp.path().join("ca.key")).unwrap(), before);

    // A lone certificate also blocks init, and no key is left behind.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("ca.pem"), "x").unwrap();
    assert!(matches!(
        Ca::init(tmp.path(), &CaOptions::default()),
        Err(TlsError::AlreadyExists { .. })
    ));
    assert!(!tmp.path().join("ca.key").exists());
}

#[test]
fn group_readable_key_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    Ca::init(tmp.path(), &CaOptions::default()).unwrap();
    let key = tmp.path().join("ca.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();

    let err = Ca::load(&tmp.path().join("ca.pem"), &key).unwrap_err();
    let TlsError::KeyFileTooOpen { mode, .. } = &err else {
        panic!("unexpected {err}")
    };
    assert_eq!(*mode, 0o644);
    let message = err.to_string();
    assert!(message.contains(&key.display().to_string()), "{message}");
    assert!(message.contains("0644"), "{message}");
    assert!(
        message.contains(&format!("chmod 600 {}", key.display())),
        "{message}"
    );

    // The same at start-up through load_or_init, and for group-only access.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = Ca::load_or_init(tmp.path(), &CaOptions::default()).unwrap_err();
    assert!(
        matches!(err, TlsError::KeyFileTooOpen { mode: 0o640, .. }),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(Ca::load_or_init(tmp.path(), &CaOptions::default()).is_ok());
}

#[test]
fn load_or_init_creates_once_then_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, created) = Ca::load_or_init(tmp.path(), &CaOptions::default()).unwrap();
    assert_eq!(created, Created::New);
    let (second, created) = Ca::load_or_init(tmp.path(), &CaOptions::default()).unwrap();
    assert_eq!(created, Created::Existing);
    assert_eq!(first.fingerprint_sha256(), second.fingerprint_sha256());

    std::fs::remove_file(tmp.path().join("ca.pem")).unwrap();
    let err = Ca::load_or_init(tmp.path(), &CaOptions::default()).unwrap_err();
    let TlsError::PartialCa { present, missing } = err else {
        panic!("unexpected {err}")
    };
    assert_eq!(present, tmp.path().join("ca.key"));
    assert_eq!(missing, tmp.path().join("ca.pem"));
}

#[test]
fn openssl_made_cas_load_with_their_algorithm() {
    for (name, alg) in [
        ("rsa2048", CaKeyAlgorithm::Rsa),
        ("p384", CaKeyAlgorithm::EcdsaP384),
        ("p256-pkcs8", CaKeyAlgorithm::EcdsaP256),
        ("intermediate", CaKeyAlgorithm::EcdsaP256),
    ] {
        let ca = load_fixture_ca(name);
        assert_eq!(ca.algorithm(), alg, "{name}");
        let subject = parse_cert(ca.cert_der()).subject().to_string();
        assert_eq!(ca.subject(), subject);
    }
    // The issuing CA is served together with its root.
    assert_eq!(load_fixture_ca("intermediate").chain().len(), 2);
    assert_eq!(load_fixture_ca("p384").chain().len(), 1);
}

#[test]
fn unusable_cas_are_refused_with_reasons() {
    let not_ca = fixture_ca("not-ca");
    let err = Ca::load(&not_ca.cert, &not_ca.key).unwrap_err();
    assert!(matches!(err, TlsError::NotACa { .. }), "{err}");

    let encrypted = fixture_ca("encrypted");
    let err = Ca::load(&encrypted.cert, &encrypted.key).unwrap_err();
    assert!(matches!(err, TlsError::EncryptedKey { .. }), "{err}");
    assert!(err.to_string().contains("openssl pkey"), "{err}");

    let dup = fixture_ca("dup-ou");
    let err = Ca::load(&dup.cert, &dup.key).unwrap_err();
    assert!(matches!(err, TlsError::CaUnusable { .. }), "{err}");
    assert!(err.to_string().contains("repeats attribute"), "{err}");
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    // Same algorithm, different key.
    let p256 = fixture_ca("p256-pkcs8");
    let other = fixture_ca("intermediate");
    let err = Ca::load(&p256.cert, &other.key).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");

    // An RSA key for an ECDSA certificate.
    let p384 = fixture_ca("p384");
    let rsa = fixture_ca("rsa2048");
    let err = Ca::load(&p384.cert, &rsa.key).unwrap_err();
    assert!(matches!(err, TlsError::UnsupportedKey { .. }), "{err}");

    // A P-256 PKCS#8 key for a P-384 certificate.
    let err = Ca::load(&p384.cert, &p256.key).unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::UnsupportedKey { .. } | TlsError::KeyMismatch { .. }
        ),
        "{err}"
    );
}

#[test]
fn garbage_and_huge_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let good = fixture_ca("p384");
    let junk = tmp.path().join("junk.pem");
    pem::write_new(&junk, b"not pem at all", 0o600).unwrap();
    assert!(matches!(
        Ca::load(&junk, &good.key),
        Err(TlsError::Pem { .. })
    ));
    assert!(matches!(
        Ca::load(&good.cert, &junk),
        Err(TlsError::Pem { .. })
    ));

    let huge = tmp.path().join("huge.pem");
    let big = vec![b'A'; usize::try_from(pem::MAX_PEM_BYTES).unwrap() + 1];
    pem::write_new(&huge, &big, 0o600).unwrap();
    assert!(matches!(
        Ca::load(&huge, &good.key),
        Err(TlsError::FileTooLarge { .. })
    ));

    let missing = tmp.path().join("missing.key");
    let err = Ca::load(&good.cert, &missing).unwrap_err();
    assert!(
        matches!(err, TlsError::Io { .. }) && err.to_string().contains("missing.key"),
        "{err}"
    );
}

#[test]
fn init_command_and_trust_lines_name_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my certs");
    let message = init_command(&dir, &CaOptions::default()).unwrap();
    let ca = Ca::load(&dir.join("ca.pem"), &dir.join("ca.key")).unwrap();
    assert!(
        message.contains(&dir.join("ca.key").display().to_string()),
        "{message}"
    );
    assert!(message.contains(&ca.fingerprint_sha256()), "{message}");

    let lines = trust_instructions(&dir.join("ca.pem"));
    let quoted = format!("'{}'", dir.join("ca.pem").display());
    for needle in [
        "Firefox:",
        "sql:$HOME/.mozilla/firefox/",
        "Chromium:",
        "sql:$HOME/.pki/nssdb",
        "/usr/local/share/ca-certificates/sluis.crt && sudo update-ca-certificates",
        "curl:",
        "--cacert",
        quoted.as_str(),
    ] {
        assert!(lines.contains(needle), "missing {needle:?} in\n{lines}");
    }
    assert_eq!(lines.lines().count(), 4);
    assert_eq!(
        trust_instructions(Path::new("certs/ca.pem"))
            .matches("-i certs/ca.pem")
            .count(),
        2
    );
}

#[test]
fn debug_output_never_shows_the_key() {
    let ca = generated_ca();
    let key_pem = ca.issuer().key().serialize_pem();
    let body: String = key_pem.lines().nth(1).unwrap().to_owned();
    let debug = format!("{:?}", Arc::clone(&ca));
    assert!(!debug.contains(&body));
    assert!(debug.contains("sluis interception CA"));
}

#[test]
fn expired_cas_are_refused_and_short_lived_ones_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let expired = tmp.path().join("expired");
    Ca::init(
        &expired,
        &CaOptions {
            validity_days: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let err = Ca::load(&expired.join("ca.pem"), &expired.join("ca.key")).unwrap_err();
    assert!(matches!(err, TlsError::CaValidity { .. }), "{err}");

    // Expiring within 30 days: accepted, with a warning.
    let short = tmp.path().join("short");
    Ca::init(
        &short,
        &CaOptions {
            validity_days: 10,
            ..Default::default()
        },
    )
    .unwrap();
    let warnings = super::support::capture_warnings(|| {
        Ca::load(&short.join("ca.pem"), &short.join("ca.key")).unwrap();
    });
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("expires within 30 days")),
        "{warnings:?}"
    );
}

#[test]
fn a_name_constrained_ca_loads() {
    let ca = load_fixture_ca("constrained");
    assert_eq!(ca.algorithm(), CaKeyAlgorithm::EcdsaP256);
}
