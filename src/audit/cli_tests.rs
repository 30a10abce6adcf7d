use std::os::unix::fs::PermissionsExt;
use std::time::SystemTime;

use super::*;
use crate::audit::config::FileSinkConfig;
use crate::audit::event::{AuditEvent, EventAction, UrlFields};
use crate::audit::sink::{FileSink, Severity, Sink};
use crate::audit::writer::write_one;
use crate::inspect::{Detection, DetectorKind, Encryption, FileReport, FileType, Report};

const KEY: &str = "00112233445566778899aabbccddeeff";

fn report_with_bsn(bsn: &str) -> Report {
    let key = KEY.as_bytes();
    Report {
        files: vec![FileReport {
            name: Some("lijst.csv".into()),
            field: None,
            declared_type: None,
            file_type: FileType::Csv,
            type_mismatch: false,
            size: 10,
            sha256: "00".repeat(32),
            encryption: Encryption::not_encrypted("plain text"),
            label: None,
            detections: vec![Detection {
                kind: DetectorKind::Bsn,
                count: 1,
                evidence: vec![],
                fingerprints: vec![fingerprint::fingerprint("bsn", bsn, key)],
            }],
            members: vec![],
            limits: vec![],
        }],
        ..Report::default()
    }
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("fp.key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = dir.path().join("audit.log");
    let config = FileSinkConfig {
        path: log.clone(),
        max_size: 0,
        rotate_every: None,
        retention: None,
    };
    let mut sink = FileSink::open(config, SystemTime::now()).unwrap();
    for (i, bsn) in ["123456782", "999999990"].iter().enumerate() {
        let mut e = AuditEvent::new(
            format!("EVENT{i}"),
            EventAction::Exchange,
            "10.0.0.9:4000".parse().unwrap(),
            SystemTime::now(),
        );
        e.url = Some(UrlFields::new(
            "https",
            "files.example.net",
            443,
            "/up",
            false,
        ));
        e.set_report(&report_with_bsn(bsn), false);
        write_one(
            &mut sink,
            &mut e,
            SystemTime::now(),
            Severity::Info,
            "exchange",
        )
        .unwrap();
    }
    sink.flush().unwrap();
    (dir, key, log)
}

fn run_find(value: &str, kind: Option<&str>, key: &Path, log: &Path) -> (i32, String) {
    let mut out = Vec::new();
    let status = find(value, kind, key, &[log.to_owned()], &mut out);
    (status, String::from_utf8(out).unwrap())
}

#[test]
fn finds_a_value_however_it_is_written() {
    let (_dir, key, log) = setup();
    let (status, out) = run_find("123.456.782", Some("bsn"), &key, &log);
    assert_eq!(status, OK, "{out}");
    assert!(
        out.contains("id=EVENT0") && !out.contains("EVENT1"),
        "{out}"
    );
    assert!(
        out.contains("destination=https://files.example.net:443/up"),
        "{out}"
    );
    assert!(out.contains("found=bsn@file:lijst.csv"), "{out}");
    let (status, out) = run_find(" 1234 56 782", None, &key, &log);
    assert_eq!(status, OK, "without --kind every kind is tried: {out}");
}

#[test]
fn other_values_kinds_or_keys_find_nothing() {
    let (dir, key, log) = setup();
    assert_eq!(run_find("111222333", Some("bsn"), &key, &log).0, NOT_OK);
    assert_eq!(run_find("123456782", Some("card"), &key, &log).0, NOT_OK);
    let other = dir.path().join("other.key");
    std::fs::write(&other, "another key").unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(run_find("123456782", Some("bsn"), &other, &log).0, NOT_OK);
    // The log itself holds no BSN.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("123456782") && !text.contains("999999990"));
}

#[test]
fn bad_arguments_are_errors() {
    let (dir, key, log) = setup();
    assert_eq!(run_find("1", Some("phone"), &key, &log).0, ERROR);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(run_find("123456782", None, &key, &log).0, ERROR);
    let mut out = Vec::new();
    assert_eq!(verify(&[dir.path().join("missing.log")], &mut out), ERROR);
}

#[test]
fn verify_reports_the_line() {
    let (_dir, _key, log) = setup();
    let mut out = Vec::new();
    assert_eq!(verify(std::slice::from_ref(&log), &mut out), OK);
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        text.replacen("files.example.net", "files.example.org", 1),
    )
    .unwrap();
    let mut out = Vec::new();
    assert_eq!(verify(std::slice::from_ref(&log), &mut out), NOT_OK);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("line 1: edited"), "{out}");
}
