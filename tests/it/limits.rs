use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Origin, TestProxy, kept_alive_after_get, reqwest_via};

async fn read_all(s: &mut TcpStream, within: Duration) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_400_and_close_only_their_own_connection() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    // A healthy keep-alive connection, open before and used after the bad one.
    let client = reqwest_via(&proxy.url(), &[]);
    let url = format!("http://{}/ok", origin.addr);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    for garbage in [
        &b"THIS IS NOT HTTP\r\n\r\n"[..],
        b"GET http://x/ HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
        b"GET http://x/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(garbage).await.unwrap();
        let answer = read_all(&mut s, Duration::from_secs(5)).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?} -> {answer:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(origin.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_are_refused() {
    let proxy = TestProxy::builder()
        .set("proxy", "max_header_bytes", "\"16KiB\"")
        .spawn()
        .await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let big = "a".repeat(40_000);
    let req = format!("GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\nX-Big: {big}\r\n\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let answer = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_client_is_cut_off_by_the_header_timeout() {
    let proxy = TestProxy::builder()
        .set("proxy", "header_read_timeout", "\"1s\"")
        .spawn()
        .await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET http://x.test/ HTTP/1.1\r\nHost: x")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("still open after 10 s");
    let elapsed = started.elapsed();
    // Closed (EOF, or a reset), not answered: the head never completed.
    assert!(
        matches!(n, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"),
        "{n:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed too early: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_outlasts_the_header_timeout_and_ends_at_the_idle_timeout() {
    let origin = Origin::http().await;
    let proxy = TestProxy::builder()
        .set("proxy", "header_read_timeout", "\"1s\"")
        .set("proxy", "idle_timeout", "\"3s\"")
        .spawn()
        .await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let req = format!("GET http://{0}/ HTTP/1.1\r\nHost: {0}\r\n\r\n", origin.addr);
    let mut buf = vec![0u8; 4096];
    for pause in [Duration::ZERO, Duration::from_millis(2000)] {
        // Idle longer than the header timeout: the connection must still be there.
        tokio::time::sleep(pause).await;
        s.write_all(req.as_bytes()).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "after {pause:?}"
        );
    }
    let started = Instant::now();
    let rest = read_all(&mut s, Duration::from_secs(15)).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "closed after {waited:?}, before the idle timeout"
    );
    assert!(
        waited < Duration::from_secs(10),
        "idle connection kept open for {waited:?}"
    );
    assert!(!rest.contains("HTTP/1.1"), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_max_connections_clients_get_a_clear_503() {
    let origin = Origin::http().await;
    let proxy = TestProxy::builder()
        .set("proxy", "max_connections", "2")
        .spawn()
        .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(kept_alive_after_get(proxy.addr, origin.addr).await);
    }
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let req = format!("GET http://{0}/ HTTP/1.1\r\nHost: {0}\r\n\r\n", origin.addr);
    s.write_all(req.as_bytes()).await.unwrap();
    let answer = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("connection limit"), "{answer:?}");
    // A slot frees up when a client leaves.
    drop(held.pop());
    let client = reqwest_via(&proxy.url(), &[]);
    let mut ok = false;
    for _ in 0..50 {
        if client
            .get(format!("http://{}/", origin.addr))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "slot never freed");
}
