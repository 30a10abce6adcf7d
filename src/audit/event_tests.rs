use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::*;
use crate::inspect::{
    Detection, DetectorKind, Encryption, EncryptionKind, FileType, LabelSource, Level, LimitHit,
    LimitKind, MemberReport,
};

fn report() -> Report {
    let file = FileReport {
        name: Some("klanten.xlsx".into()),
        field: Some("upload".into()),
        declared_type: Some("application/octet-stream".into()),
        file_type: FileType::Zip,
        type_mismatch: true,
        size: 2048,
        sha256: "ab".repeat(32),
        encryption: Encryption::encrypted(EncryptionKind::ZipAes, "all entries AES"),
        label: Some(LabelFinding {
            level: Level::Confidential,
            source: LabelSource::Metadata,
        }),
        detections: vec![Detection {
            kind: DetectorKind::Bsn,
            count: 3,
            evidence: vec!["*****6782".into()],
            fingerprints: vec!["f1".into(), "f2".into()],
        }],
        members: vec![MemberReport {
            name: "a.csv".into(),
            file_type: FileType::Csv,
            size: 10,
            encryption: Encryption::encrypted(EncryptionKind::ZipAes, "aes"),
        }],
        limits: vec![LimitHit {
            kind: LimitKind::Members,
            detail: "over 1000".into(),
        }],
    };
    let mut r = Report {
        files: vec![file],
        body_bytes: 4096,
        decoded_bytes: 4096,
        ..Report::default()
    };
    r.text.bytes = 120;
    r.text.detections.push(Detection {
        kind: DetectorKind::Iban,
        count: 1,
        evidence: vec!["NL**ABNA******4300".into()],
        fingerprints: vec!["f3".into()],
    });
    r.limits.push(LimitHit {
        kind: LimitKind::Malformed,
        detail: "broken".into(),
    });
    r
}

fn full_event() -> AuditEvent {
    let client = "10.1.2.3:50123".parse().unwrap();
    let start = UNIX_EPOCH + Duration::from_micros(1_790_000_000_123_456);
    let mut e = AuditEvent::new(
        "0123456789ABCDEF".into(),
        EventAction::Exchange,
        client,
        start,
    );
    e.set_duration(Duration::from_millis(12));
    e.event.outcome = Outcome::Success;
    e.user = Some(UserFields {
        name: "jdoe".into(),
    });
    e.http = Some(HttpFields {
        request: HttpRequest {
            method: "POST".into(),
            bytes: Some(4096),
        },
        response: Some(HttpResponse {
            status_code: 403,
            bytes: Some(512),
        }),
    });
    e.url = Some(UrlFields::new(
        "https",
        "www.dropbox.com",
        443,
        "/upload?token=secret",
        false,
    ));
    e.rule = Some(RuleFields {
        id: "cloud-upload".into(),
        reference: Some("KSP 1.4".into()),
    });
    e.sluis.destination = Destination {
        category: Some("cloud_storage".into()),
        internal: false,
    };
    e.sluis.action = Some(PolicyAction::Block);
    e.sluis.mode = Some(PolicyMode::Enforce);
    e.sluis.policy = Some(PolicyFields {
        version: "2026-11-01.3".into(),
    });
    e.set_report(&report(), false);
    e
}

#[test]
fn full_event_snapshot() {
    let got = serde_json::to_value(full_event()).unwrap();
    let want = json!({
        "@timestamp": "2026-09-21T14:13:20.123456Z",
        "ecs": {"version": "8.11.0"},
        "event": {
            "id": "0123456789ABCDEF", "kind": "event", "category": ["web"], "type": ["access"],
            "action": "exchange", "outcome": "success", "duration": 12_000_000,
            "dataset": "sluis.audit"
        },
        "client": {"ip": "10.1.2.3", "port": 50123},
        "user": {"name": "jdoe"},
        "http": {
            "request": {"method": "POST", "bytes": 4096},
            "response": {"status_code": 403, "bytes": 512}
        },
        "url": {"scheme": "https", "domain": "www.dropbox.com", "port": 443, "path": "/upload"},
        "rule": {"id": "cloud-upload", "reference": "KSP 1.4"},
        "sluis": {
            "destination": {"category": "cloud_storage", "internal": false},
            "action": "block", "mode": "enforce", "would_block": false,
            "policy": {"version": "2026-11-01.3"},
            "files": [{
                "name": "klanten.xlsx", "type": "zip", "type_mismatch": true, "size": 2048,
                "hash": {"sha256": "ab".repeat(32)}, "encrypted": true, "encryption": "zip-aes",
                "label": {"level": "confidential", "source": "metadata"},
                "detections": {"bsn": 3}, "fingerprints": {"bsn": ["f1", "f2"]}, "members": 1
            }],
            "text": {"bytes": 120, "detections": {"iban": 1}, "fingerprints": {"iban": ["f3"]}},
            "limits": ["malformed", "members"]
        }
    });
    assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap());
}

#[test]
fn never_logs_content_query_or_evidence() {
    let line = serde_json::to_string(&full_event()).unwrap();
    for forbidden in [
        "token=secret",
        "secret",
        "6782",
        "4300",
        "all entries AES",
        "a.csv",
        "\"field\"",
        "declared",
    ] {
        assert!(
            !line.contains(forbidden),
            "{forbidden:?} leaked into {line}"
        );
    }
}

#[test]
fn query_only_when_enabled() {
    let off = UrlFields::new("http", "example.org", 80, "/search?q=jan+jansen#x", false);
    let v = serde_json::to_value(&off).unwrap();
    assert_eq!(
        v,
        json!({"scheme": "http", "domain": "example.org", "port": 80, "path": "/search"})
    );
    let on = UrlFields::new("http", "example.org", 80, "/search?q=jan+jansen", true);
    assert_eq!(serde_json::to_value(&on).unwrap()["query"], "q=jan+jansen");
    let bare = UrlFields::new("https", "example.org", 443, "", true);
    assert_eq!(
        serde_json::to_value(&bare).unwrap(),
        json!({"scheme": "https", "domain": "example.org", "port": 443})
    );
}

#[test]
fn file_names_can_be_hashed() {
    let mut e = full_event();
    e.set_report(&report(), true);
    let f = &serde_json::to_value(&e).unwrap()["sluis"]["files"][0];
    assert!(f.get("name").is_none());
    // sha256("klanten.xlsx")
    use sha2::Digest;
    assert_eq!(
        f["name_sha256"],
        hex::encode(sha2::Sha256::digest(b"klanten.xlsx"))
    );
}

#[test]
fn unknown_verdict_is_null() {
    let mut r = report();
    r.files[0].encryption = Encryption::unknown("truncated");
    let mut e = full_event();
    e.set_report(&r, false);
    let f = &serde_json::to_value(&e).unwrap()["sluis"]["files"][0];
    assert!(f["encrypted"].is_null() && f.get("encryption").is_none());
}

#[test]
fn ids_are_16_readable_characters() {
    let a = AuditEvent::new_id();
    let b = AuditEvent::new_id();
    assert_eq!(a.len(), 16);
    assert_ne!(a, b);
    assert!(
        a.chars()
            .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c)))
    );
}

#[test]
fn acl_denial_is_a_network_denied_event() {
    let e = AuditEvent::new(
        "X".into(),
        EventAction::AclDenied,
        "[::ffff:192.0.2.1]:1".parse().unwrap(),
        UNIX_EPOCH,
    );
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["event"]["category"], json!(["network"]));
    assert_eq!(v["event"]["type"], json!(["denied"]));
    assert_eq!(
        v["client"]["ip"], "192.0.2.1",
        "IPv4-mapped addresses are shown as IPv4"
    );
}
