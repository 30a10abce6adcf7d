use super::*;
use crate::inspect::{Detection, Encryption, FileReport};

fn scrape(m: &Metrics) -> String {
    String::from_utf8(m.encode()).unwrap()
}

#[test]
fn traffic_series_exist_before_any_traffic() {
    // A dashboard's rate() over these needs the series from the first scrape on.
    let text = scrape(&Metrics::new().unwrap());
    for want in [
        r#"sluis_transferred_bytes_total{direction="upload"} 0"#,
        r#"sluis_transferred_bytes_total{direction="download"} 0"#,
        r#"sluis_connections_total{result="accepted"} 0"#,
    ] {
        assert!(text.contains(want), "missing {want}\n{text}");
    }
}

#[test]
fn typed_methods_feed_bounded_labels() {
    let m = Metrics::new().unwrap();
    m.request(
        Some(PolicyAction::Block),
        Some(PolicyMode::Enforce),
        Some("cloud-upload"),
        "cloud_storage",
        &Method::POST,
    );
    m.request(
        None,
        None,
        None,
        "",
        &Method::from_bytes(b"PROPFIND").unwrap(),
    );
    m.bytes(Direction::Upload, 100);
    m.bytes(Direction::Download, 7);
    let guard = m.connection_opened();
    m.connection_refused("not_allowed");
    m.tls_handshake("ok");
    m.tls_protocol("http/1.1");
    m.watch_leaf_cache(|| (3, 1)).unwrap();
    m.upstream_error("connect_timeout");
    m.policy_reload(false);
    m.policy_info("v1");
    m.policy_info("v2");
    m.written("file");
    m.dropped();
    let text = scrape(&m);
    for want in [
        r#"sluis_requests_total{action="block",category="cloud_storage",method="POST",mode="enforce",rule="cloud-upload"} 1"#,
        r#"sluis_requests_total{action="none",category="none",method="other",mode="none",rule="none"} 1"#,
        r#"sluis_transferred_bytes_total{direction="upload"} 100"#,
        r#"sluis_transferred_bytes_total{direction="download"} 7"#,
        "sluis_open_connections 1",
        r#"sluis_connections_total{result="accepted"} 1"#,
        r#"sluis_connections_total{result="not_allowed"} 1"#,
        r#"sluis_tls_handshakes_total{result="ok"} 1"#,
        r#"sluis_tls_client_protocols_total{protocol="http/1.1"} 1"#,
        r#"sluis_tls_leaf_cache_lookups_total{result="hit"} 3"#,
        r#"sluis_tls_leaf_cache_lookups_total{result="miss"} 1"#,
        r#"sluis_upstream_errors_total{kind="connect_timeout"} 1"#,
        r#"sluis_policy_reloads_total{result="error"} 1"#,
        r#"sluis_policy_info{version="v2"} 1"#,
        r#"sluis_audit_events_written_total{sink="file"} 1"#,
        "sluis_audit_events_dropped_total 1",
        "sluis_build_info{",
    ] {
        assert!(text.contains(want), "missing {want}\n{text}");
    }
    assert!(
        !text.contains(r#"version="v1""#),
        "old policy version is removed"
    );
    drop(guard);
    assert!(scrape(&m).contains("sluis_open_connections 0"));
}

#[test]
fn inspection_counts_files_and_detections() {
    let m = Metrics::new().unwrap();
    let mut report = Report {
        body_bytes: 1000,
        ..Report::default()
    };
    report.files.push(FileReport {
        name: None,
        field: None,
        declared_type: None,
        file_type: FileType::Pdf,
        type_mismatch: false,
        size: 1000,
        sha256: String::new(),
        encryption: Encryption::not_encrypted("no /Encrypt"),
        label: None,
        detections: vec![Detection {
            kind: DetectorKind::Bsn,
            count: 4,
            evidence: vec![],
            fingerprints: vec![],
        }],
        members: vec![],
        limits: vec![],
    });
    m.inspection(Duration::from_millis(3), &report);
    let text = scrape(&m);
    assert!(
        text.contains(r#"sluis_inspected_files_total{type="pdf",verdict="not_encrypted"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"sluis_detections_total{detector="bsn"} 4"#));
    assert!(text.contains("sluis_inspected_bytes_total 1000"));
    assert!(text.contains("sluis_inspection_duration_seconds_count 1"));
    assert!(text.contains(r#"sluis_inspection_duration_seconds_bucket{le="0.005"} 1"#));
}

#[test]
fn each_registry_is_separate() {
    let a = Metrics::new().unwrap();
    let b = Metrics::new().unwrap();
    a.policy_reload(true);
    assert!(!scrape(&b).contains(r#"sluis_policy_reloads_total{result="ok"}"#));
}

#[test]
fn spool_metrics_read_the_spool_at_every_scrape() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let m = Metrics::new().unwrap();
    let held = Arc::new(AtomicU64::new(7));
    let read = Arc::clone(&held);
    let to_disk = Arc::new(AtomicU64::new(5 << 20));
    let disk = Arc::clone(&to_disk);
    m.watch_spool(
        move || read.load(Ordering::Relaxed),
        || 3 << 20,
        move || [1 << 20, disk.load(Ordering::Relaxed)],
    )
    .unwrap();
    let text = scrape(&m);
    for want in [
        "sluis_held_memory_bytes 7\n",
        "sluis_spill_files_kept_bytes 3145728\n",
        "sluis_spilled_bytes_total{through=\"page_cache\"} 1048576\n",
        "sluis_spilled_bytes_total{through=\"disk\"} 5242880\n",
        "# TYPE sluis_spilled_bytes_total counter\n",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
    held.store(4096, Ordering::Relaxed);
    to_disk.store(6 << 20, Ordering::Relaxed);
    let text = scrape(&m);
    assert!(text.contains("sluis_held_memory_bytes 4096\n"), "{text}");
    assert!(
        text.contains("sluis_spilled_bytes_total{through=\"disk\"} 6291456\n"),
        "{text}"
    );
    // Registered twice, the names are refused rather than exported twice.
    assert!(m.watch_spool(|| 0, || 0, || [0, 0]).is_err());
}
