use std::time::Duration;

use futures_util::StreamExt;

use crate::support::client::after_get;
use crate::support::{Origin, TestProxy, curl, pseudo_random, reqwest_via, sha256_hex};

#[tokio::test(flavor = "multi_thread")]
async fn every_method_reaches_the_origin() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let client = reqwest_via(&proxy.url(), &[]);
    let url = format!("http://{}/thing", origin.addr);

    for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = client
            .request(m, &url)
            .body(if method == "GET" || method == "HEAD" {
                ""
            } else {
                "payload"
            })
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{method}");
        let via = res
            .headers()
            .get("via")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(via.as_deref(), Some("1.1 sluis"), "{method}: response Via");
        let body = res.bytes().await.unwrap();
        if method == "HEAD" {
            assert!(body.is_empty());
        } else {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["method"], method);
        }
    }
    let got: Vec<String> = origin
        .received()
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(
        got,
        ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    );
    let post = &origin.received()[2];
    assert_eq!(post.body_len, 7);
    assert_eq!(post.uri.path(), "/thing");
}

#[tokio::test(flavor = "multi_thread")]
async fn large_upload_streams_through_intact() {
    const SIZE: usize = 50 << 20;
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let client = reqwest_via(&proxy.url(), &[]);
    let data = pseudo_random(SIZE, 7);
    let expected = sha256_hex(&data);
    // Streamed in 256 KiB pieces without a Content-Length: chunked on the wire.
    let chunks: Vec<bytes::Bytes> = data
        .chunks(256 << 10)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let body =
        reqwest::Body::wrap_stream(futures_util::stream::iter(chunks).map(Ok::<_, std::io::Error>));
    let res = client
        .put(format!("http://{}/upload", origin.addr))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = origin.received().pop().unwrap();
    assert!(got.complete);
    assert_eq!(got.body_len, SIZE as u64);
    assert_eq!(got.body_sha256, expected);
    // Streaming, not buffering: the proxy's peak memory stays far below the upload's size.
    let peak = proxy.peak_rss_bytes();
    assert!(
        peak < 40 << 20,
        "proxy peak RSS {} MiB for a 50 MiB upload",
        peak >> 20
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_upload_with_curl() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let data = pseudo_random(3 << 20, 11);
    let file = proxy.workdir.path().join("body.bin");
    std::fs::write(&file, &data).unwrap();
    let out = curl(&[
        "-x",
        &proxy.url(),
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("http://{}/chunked", origin.addr),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = origin.received().pop().unwrap();
    assert_eq!(got.body_len, data.len() as u64);
    assert_eq!(got.body_sha256, sha256_hex(&data));
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_100_continue_is_answered_and_the_body_follows() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let out = curl(&[
        "-v",
        "-x",
        &proxy.url(),
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "30",
        "--data-binary",
        "hello, continue",
        &format!("http://{}/continue", origin.addr),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("HTTP/1.1 100 Continue"),
        "no 100 Continue seen:\n{stderr}"
    );
    let got = origin.received().pop().unwrap();
    assert_eq!(got.body_len, 15);
    // The expectation is between client and proxy; the upstream hop does not repeat it.
    assert!(got.headers.get("expect").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_reused_on_both_sides() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let url = format!("http://{}/ka", origin.addr);
    // curl fetches the URL five times over one client connection when keep-alive works.
    let mut args = vec!["-v".to_owned(), "-x".to_owned(), proxy.url()];
    for _ in 0..5 {
        args.extend(["-o".to_owned(), "/dev/null".to_owned(), url.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = curl(&args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.matches("Re-using existing connection").count() >= 4,
        "client side not reused:\n{stderr}"
    );
    assert_eq!(origin.received().len(), 5);
    assert_eq!(origin.connections(), 1, "upstream side not pooled");
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_headers_are_removed_and_no_forwarded_for() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let out = curl(&[
        "-x",
        &proxy.url(),
        "-H",
        "Connection: keep-alive, X-Hop-Secret",
        "-H",
        "X-Hop-Secret: 1",
        "-H",
        "Keep-Alive: timeout=5",
        "-H",
        "Proxy-Authorization: Basic dXNlcjpwYXNz",
        "-H",
        "Proxy-Connection: keep-alive",
        "-H",
        "TE: trailers",
        "-H",
        "X-End-To-End: kept",
        &format!("http://{}/hop", origin.addr),
    ])
    .await;
    assert!(out.status.success());
    let got = origin.received().pop().unwrap();
    for gone in [
        "x-hop-secret",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "x-forwarded-for",
    ] {
        assert!(
            got.headers.get(gone).is_none(),
            "{gone} reached the origin: {:?}",
            got.headers
        );
    }
    assert_eq!(got.headers["x-end-to-end"], "kept");
    assert_eq!(got.headers["via"], "1.1 sluis");
    assert_eq!(got.headers["host"], origin.addr.to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn via_and_forwarded_for_are_configurable() {
    let origin = Origin::http().await;
    let proxy = TestProxy::builder()
        .set("proxy", "via", "\"egress-7\"")
        .set("proxy", "forwarded_for", "true")
        .spawn()
        .await;
    let res = reqwest_via(&proxy.url(), &[])
        .get(format!("http://{}/", origin.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["via"], "1.1 egress-7");
    let got = origin.received().pop().unwrap();
    assert_eq!(got.headers["via"], "1.1 egress-7");
    assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");

    let proxy = TestProxy::builder()
        .set("proxy", "via", "\"\"")
        .spawn()
        .await;
    let res = reqwest_via(&proxy.url(), &[])
        .get(format!("http://{}/", origin.addr))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("via").is_none());
    assert!(
        origin
            .received()
            .pop()
            .unwrap()
            .headers
            .get("via")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_upstream_answers_502_and_a_hanging_one_504() {
    let proxy = TestProxy::builder()
        .set("upstream", "connect_timeout", "\"500ms\"")
        .spawn()
        .await;
    // A port nobody listens on: connection refused.
    let closed = crate::support::origin::closed_port();
    let res = reqwest_via(&proxy.url(), &[])
        .get(format!("http://{closed}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    assert_eq!(res.headers()["sluis-error"], "connect");
    let text = res.text().await.unwrap();
    assert!(text.contains("cannot connect"), "{text}");

    // A listener whose backlog is full never completes the handshake: connect times out.
    let hanging = crate::support::origin::unaccepting_listener();
    let res = reqwest_via(&proxy.url(), &[])
        .get(format!("http://{}/", hanging.addr))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert!(
        res.status() == 504 || res.status() == 502,
        "{}",
        res.status()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_open_at_once_are_spread_over_the_serving_threads() {
    let proxy = TestProxy::builder()
        .set("proxy", "workers", "3")
        .spawn()
        .await;
    // Each request goes to a port nobody listens on, so the thread serving it logs an answer
    // of its own, with the client's address.
    let closed = crate::support::origin::closed_port();
    // A thread serves more than one connection beyond the least busy one only past an eighth
    // of its load, so with six open at once none of the three can be left without one.
    let mut clients = Vec::new();
    for _ in 0..6 {
        let s = after_get(proxy.addr, closed, 502).await;
        clients.push((s.local_addr().unwrap().to_string(), s));
    }
    let answered = || {
        proxy
            .logs()
            .iter()
            .filter(|v| v["message"] == "answered by the proxy")
            .map(|v| {
                let client = v["client"].as_str().unwrap().to_owned();
                (client, v["threadName"].as_str().unwrap().to_owned())
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    crate::support::eventually("six answers logged", Duration::from_secs(10), || {
        answered().len() == 6
    })
    .await;
    let threads = answered();
    for (client, _) in &clients {
        assert!(
            threads.contains_key(client),
            "{client} not logged: {threads:?}"
        );
    }
    let serving: std::collections::BTreeSet<&str> = threads.values().map(String::as_str).collect();
    assert_eq!(
        serving.into_iter().collect::<Vec<_>>(),
        ["sluis-shard-0", "sluis-shard-1", "sluis-shard-2"],
        "{threads:?}"
    );
}
