use std::time::Duration;

use futures_util::StreamExt;

use crate::support::proxy::run_cli;
use crate::support::{Origin, TestProxy, pseudo_random, reqwest_via, sha256_hex};

#[tokio::test(flavor = "multi_thread")]
async fn config_errors_name_file_line_and_key_and_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[proxy]\nlisten = \"127.0.0.1:0\"\n\n[upstream]\nconnect_timeout = \"forever\"\n",
    )
    .unwrap();
    let out = run_cli(&["run", "--config", "bad.toml"], dir.path());
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:5: upstream.connect_timeout: invalid duration"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("typo.toml"),
        "[proxy]\nlisen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = run_cli(&["run", "--config", "typo.toml"], dir.path());
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("typo.toml:2") && stderr.contains("lisen"),
        "{stderr}"
    );

    let out = run_cli(&["run", "--config", "missing.toml"], dir.path());
    assert_eq!(out.status.code(), Some(78));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_inflight_upload_finish_then_exits_0() {
    const SIZE: usize = 8 << 20;
    let origin = Origin::http().await;
    let mut proxy = TestProxy::start().await;
    let data = pseudo_random(SIZE, 3);
    let expected = sha256_hex(&data);
    // A slow upload: 32 pieces, 100 ms apart, ~3 s in all.
    let chunks: Vec<bytes::Bytes> = data
        .chunks(SIZE / 32)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let stream = futures_util::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(c)
    });
    let client = reqwest_via(&proxy.url(), &[]);
    let url = format!("http://{}/slow", origin.addr);
    let upload = tokio::spawn(async move {
        client
            .put(url)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
    });

    crate::support::eventually("the upload to start", Duration::from_secs(10), || {
        origin.requests_started() == 1
    })
    .await;
    proxy.signal("TERM");
    proxy
        .wait_for_log("shutdown start", |v| v["message"] == "stop requested")
        .await;
    // New clients are turned away once shutdown began.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(proxy.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "listener still accepting after SIGTERM");

    let res = upload.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    let got = origin.received().pop().unwrap();
    assert!(got.complete);
    assert_eq!(got.body_sha256, expected);
    let status = proxy.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0));
    assert!(
        proxy
            .logs()
            .iter()
            .any(|v| v["message"] == "shut down cleanly")
    );
}
