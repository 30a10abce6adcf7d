use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    Origin, TestProxy, eventually, kept_alive_after_get, pseudo_random, sha256_hex,
};

fn parked(proxy: &TestProxy) -> usize {
    proxy
        .logs()
        .iter()
        .filter(|v| v["message"] == "client connection parked")
        .count()
}

/// Waits until `count` connections have been parked: the proxy parks a connection quiet for a
/// second, noticing it within another second.
async fn until_parked(proxy: &TestProxy, count: usize) {
    let started = Instant::now();
    eventually("connections parked", Duration::from_secs(5), || {
        parked(proxy) >= count
    })
    .await;
    assert_eq!(parked(proxy), count);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "parked too soon"
    );
}

/// One client connection to the proxy, driven by hyper's client: a request fails if the proxy
/// closed the connection in between.
async fn connection(proxy: &TestProxy) -> http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    method: &str,
    url: &str,
    body: Vec<u8>,
) -> serde_json::Value {
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("host", url.trim_start_matches("http://"))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parked_keep_alive_connection_serves_further_requests() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let url = format!("http://{}", origin.addr);
    let mut sender = connection(&proxy).await;

    send(&mut sender, "GET", &format!("{url}/first"), Vec::new()).await;
    until_parked(&proxy, 1).await;

    // A body after parking: the first byte woke the connection, the rest follows it.
    let upload = pseudo_random(300_000, 11);
    let answer = send(
        &mut sender,
        "POST",
        &format!("{url}/second"),
        upload.clone(),
    )
    .await;
    assert_eq!(answer["len"], 300_000);
    assert_eq!(answer["sha256"], sha256_hex(&upload));
    until_parked(&proxy, 2).await;

    let answer = send(&mut sender, "GET", &format!("{url}/third"), Vec::new()).await;
    assert_eq!(answer["path"], "/third");
    let paths: Vec<String> = origin
        .received()
        .iter()
        .map(|r| r.uri.path().to_owned())
        .collect();
    assert_eq!(paths, ["/first", "/second", "/third"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_head_split_across_parking_is_put_back_together() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let req = format!(
        "GET http://{0}/split HTTP/1.1\r\nHost: {0}\r\n\r\n",
        origin.addr
    );
    // The first request, then the next one in two pieces: the first piece wakes the parked
    // connection.
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    until_parked(&proxy, 1).await;
    let (a, b) = req.as_bytes().split_at(7);
    s.write_all(a).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write_all(b).await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert_eq!(origin.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parked_connection_ends_at_the_idle_timeout() {
    let origin = Origin::http().await;
    let proxy = TestProxy::builder()
        .set("proxy", "idle_timeout", "\"3s\"")
        .spawn()
        .await;
    let mut s = kept_alive_after_get(proxy.addr, origin.addr).await;
    let mut buf = vec![0u8; 4096];
    let answered = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(15), s.read(&mut buf))
        .await
        .expect("parked connection still open after 15 s");
    let waited = answered.elapsed();
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert_eq!(parked(&proxy), 1, "closed without being parked first");
    assert!(
        waited >= Duration::from_millis(2800),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(6), "closed after {waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_closes_parked_connections_at_once() {
    let origin = Origin::http().await;
    let mut proxy = TestProxy::builder()
        .set("proxy", "shutdown_grace", "\"30s\"")
        .spawn()
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(kept_alive_after_get(proxy.addr, origin.addr).await);
    }
    until_parked(&proxy, 3).await;
    let signalled = Instant::now();
    proxy.signal("TERM");
    for s in &mut held {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("parked connection still open 5 s after SIGTERM");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
    let status = proxy.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    // Not held up until the grace period ran out.
    assert!(signalled.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn parked_connections_still_count_against_the_limit() {
    let origin = Origin::http().await;
    let proxy = TestProxy::builder()
        .set("proxy", "max_connections", "1")
        .spawn()
        .await;
    let mut s = kept_alive_after_get(proxy.addr, origin.addr).await;
    let req = format!("GET http://{0}/ HTTP/1.1\r\nHost: {0}\r\n\r\n", origin.addr);
    let mut buf = vec![0u8; 4096];
    until_parked(&proxy, 1).await;

    let mut other = TcpStream::connect(proxy.addr).await.unwrap();
    other.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), other.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");

    // The parked connection itself is still served.
    s.write_all(req.as_bytes()).await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}
