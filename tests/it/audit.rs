use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::proxy::run_cli;
use crate::support::{Origin, TestProxy, eventually, reqwest_via};

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn n_exchanges_under_load_make_exactly_n_events() {
    let origin = Origin::http().await;
    // The shipped policy inspects every body going to an external host (127.0.0.1 is not on
    // its internal list): each of these exchanges is a decision with an event.
    let proxy = TestProxy::builder().shipped_policy().spawn().await;
    let log = proxy.workdir.path().join("audit/audit.log");
    let n_clients = 8;
    let per_client = 40;
    let mut tasks = Vec::new();
    for c in 0..n_clients {
        let client = reqwest_via(&proxy.url(), &[]);
        let url = format!(
            "http://{}/upload/{c}?name=jan.jansen&token=s3cr3t",
            origin.addr
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let res = client
                    .post(&url)
                    .body(format!("body {c} {i}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = n_clients * per_client;
    eventually("every exchange audited", Duration::from_secs(10), || {
        events(&log).len() >= n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all = events(&log);
    assert_eq!(all.len(), n, "exactly one event per exchange");
    let ids: HashSet<&str> = all
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), n, "incident ids are unique");
    for e in &all {
        assert_eq!(e["event"]["action"], "exchange");
        assert_eq!(e["http"]["request"]["method"], "POST");
        assert_eq!(e["http"]["response"]["status_code"], 200);
        assert_eq!(e["url"]["domain"], "127.0.0.1");
        assert!(e["url"]["path"].as_str().unwrap().starts_with("/upload/"));
        assert!(e["url"].get("query").is_none());
        assert_eq!(e["client"]["ip"], "127.0.0.1");
        assert!(e["event"]["duration"].as_u64().unwrap() > 0);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in ["s3cr3t", "jan.jansen", "body 0"] {
        assert!(!text.contains(secret), "{secret} leaked into the audit log");
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // The chain verifies with the command line tool, and an edit is caught at its line.
    let cwd = proxy.workdir.path();
    let out = run_cli(&["audit", "verify", log.to_str().unwrap()], cwd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let tampered = cwd.join("tampered.log");
    let mut lines: Vec<&str> = text.lines().collect();
    let edited = lines[41].replace("\"status_code\":200", "\"status_code\":403");
    lines[41] = &edited;
    std::fs::write(&tampered, lines.join("\n") + "\n").unwrap();
    let out = run_cli(&["audit", "verify", tampered.to_str().unwrap()], cwd);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("line 42: edited"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tunnels_errors_and_refused_clients_are_audited() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let log = proxy.workdir.path().join("audit/audit.log");

    // A CONNECT tunnel carrying one request: one event when the tunnel closes, with bytes.
    let mut s = std::net::TcpStream::connect(proxy.addr).unwrap();
    write!(s, "CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n", origin.addr).unwrap();
    let mut head = [0u8; 256];
    let n = s.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    write!(s, "GET /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    drop(s);
    // A failed exchange.
    let client = reqwest_via(&proxy.url(), &[]);
    assert_eq!(
        client
            .get("http://127.0.0.1:1/")
            .send()
            .await
            .unwrap()
            .status(),
        502
    );

    eventually("two events", Duration::from_secs(10), || {
        events(&log).len() >= 2
    })
    .await;
    let all = events(&log);
    let connect = all
        .iter()
        .find(|e| e["event"]["action"] == "connect")
        .expect("connect event");
    assert_eq!(connect["url"]["port"], origin.addr.port());
    assert!(connect["http"]["request"]["bytes"].as_u64().unwrap() > 20);
    assert_eq!(
        connect["http"]["response"]["bytes"].as_u64().unwrap(),
        reply.len() as u64
    );
    let failed = all
        .iter()
        .find(|e| e["event"]["outcome"] == "failure")
        .expect("failure event");
    assert_eq!(failed["sluis"]["error"], "connect");
    assert_eq!(failed["http"]["response"]["status_code"], 502);

    // A client outside the allow-list.
    let strict = TestProxy::builder()
        .set("proxy", "clients", "[\"10.0.0.0/8\"]")
        .spawn()
        .await;
    let res = reqwest_via(&strict.url(), &[])
        .get(format!("http://{}/", origin.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let strict_log = strict.workdir.path().join("audit/audit.log");
    eventually("acl event", Duration::from_secs(10), || {
        !events(&strict_log).is_empty()
    })
    .await;
    let denied = &events(&strict_log)[0];
    assert_eq!(denied["event"]["action"], "acl_denied");
    assert_eq!(denied["sluis"]["error"], "client_denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_also_go_to_syslog_and_shutdown_flushes() {
    let origin = Origin::http().await;
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let syslog = format!("udp://{}", collector.local_addr().unwrap());
    let mut b = TestProxy::builder();
    b.set("audit", "events", "\"all\"");
    // `[[audit.sink]]` tables, written inline since the builder writes `key = value` lines.
    b.set(
        "audit",
        "sink",
        &format!("[{{ type = \"file\", path = \"audit/a.log\" }}, {{ type = \"syslog\", address = \"{syslog}\", facility = \"local4\" }}]"),
    );
    let mut proxy = b.spawn().await;
    let client = reqwest_via(&proxy.url(), &[]);
    for i in 0..3 {
        client
            .get(format!("http://{}/{i}", origin.addr))
            .send()
            .await
            .unwrap();
    }
    proxy.signal("TERM");
    assert_eq!(
        proxy.wait_exit(Duration::from_secs(15)).await.code(),
        Some(0)
    );
    let file_events = events(&proxy.workdir.path().join("audit/a.log"));
    assert_eq!(file_events.len(), 3);
    let mut buf = [0u8; 65536];
    for (i, file_event) in file_events.iter().enumerate() {
        let n = collector.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        // local4.info = 20 * 8 + 6
        assert!(msg.starts_with("<166>1 "), "{msg}");
        let json = &msg[msg.find(" - {").unwrap() + 3..];
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["url"]["path"], format!("/{i}"));
        assert_eq!(v["event"]["id"], file_event["event"]["id"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn while_the_audit_log_fails_inspected_uploads_to_external_hosts_wait() {
    let origin = Origin::http().await;
    // A syslog collector that is not there: every write fails.
    let dead = crate::support::origin::closed_port();
    let mut b = TestProxy::builder();
    b.shipped_policy().set(
        "audit",
        "sink",
        &format!("[{{ type = \"syslog\", address = \"tcp://{dead}\" }}]"),
    );
    let proxy = b.spawn().await;
    let client = reqwest_via(&proxy.url(), &[]);
    let upload = || {
        client
            .post(format!("http://{}/in", origin.addr))
            .body("quarterly text")
            .send()
    };
    // The first decision finds the sink broken.
    let _ = upload().await.unwrap();
    let mut refused = None;
    for _ in 0..100 {
        let res = upload().await.unwrap();
        if res.status() == 503 {
            refused = Some(res.text().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = refused.expect("uploads were not refused while auditing failed");
    assert!(text.contains("audit log"), "{text}");
    // Plain browsing that needs no inspection is not held up.
    assert_eq!(
        client
            .get(format!("http://{}/page", origin.addr))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = crate::support::client::direct()
        .get(format!("{}/readyz", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("audit"));
}
