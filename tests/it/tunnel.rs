use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::support::client::{connect_via, read_head};
use crate::support::{Origin, TestCa, TestProxy, curl};

#[tokio::test(flavor = "multi_thread")]
async fn connect_reaches_a_tls_origin_with_its_own_certificate() {
    let ca = TestCa::new("Origin Test CA");
    let cert = ca.server_cert(&["secure.test"]);
    let origin = Origin::https(&cert, &[b"http/1.1"]).await;
    let proxy = TestProxy::builder()
        .resolve("secure.test", origin.addr)
        .spawn()
        .await;
    let ca_file = ca.write_pem(proxy.workdir.path(), "origin-ca.pem");
    // curl trusts only the origin's CA: success proves the bytes were tunnelled untouched.
    let out = curl(&[
        "-v",
        "-x",
        &proxy.url(),
        "--cacert",
        ca_file.to_str().unwrap(),
        "--data-binary",
        "through the tunnel",
        &format!("https://secure.test:{}/tunnelled", origin.port()),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("issuer: CN=Origin Test CA"), "{stderr}");
    let got = origin.received().pop().unwrap();
    assert_eq!(got.uri.path(), "/tunnelled");
    assert_eq!(got.body_len, 18);
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_keeps_half_closed_tunnels_flowing() {
    // An upstream that reads until the client stops sending, then answers and closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        s.write_all(format!("got {} bytes", all.len()).as_bytes())
            .await
            .unwrap();
        s.shutdown().await.unwrap();
    });
    let proxy = TestProxy::start().await;
    let (mut s, head) = connect_via(&proxy, &upstream.to_string()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s.write_all(&vec![b'x'; 100_000]).await.unwrap();
    assert_eq!(finish_and_read(s).await, "got 100000 bytes");
}

/// CONNECT and the first bytes of the tunnel in one write, as a client that does not wait for
/// the proxy's answer sends them: the early bytes reach the upstream first, then the rest.
#[tokio::test(flavor = "multi_thread")]
async fn bytes_sent_with_the_connect_head_go_first() {
    // An upstream that reads until the client stops sending, then sends it all back.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        s.write_all(&all).await.unwrap();
        s.shutdown().await.unwrap();
    });
    let proxy = TestProxy::start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        format!("CONNECT {upstream} HTTP/1.1\r\nHost: {upstream}\r\n\r\nearly|").as_bytes(),
    )
    .await
    .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s.write_all(b"late").await.unwrap();
    assert_eq!(finish_and_read(s).await, "early|late");
}

/// Ends the client's side of a tunnel and reads what comes back until the upstream closes.
async fn finish_and_read(mut s: TcpStream) -> String {
    s.shutdown().await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    answer
}

/// The same with TLS: the ClientHello travels in the CONNECT's packet.
#[tokio::test(flavor = "multi_thread")]
async fn connect_with_the_client_hello_in_the_same_write() {
    let ca = TestCa::new("Origin Test CA");
    let cert = ca.server_cert(&["secure.test"]);
    let origin = Origin::https(&cert, &[b"http/1.1"]).await;
    let proxy = TestProxy::builder()
        .resolve("secure.test", origin.addr)
        .spawn()
        .await;
    let (addr, port, ca_pem) = (proxy.addr, origin.port(), ca.cert_pem.clone());
    let answer = tokio::task::spawn_blocking(move || pipelined_https_get(addr, port, &ca_pem))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("/pipelined"), "{answer}");
    assert_eq!(origin.received().pop().unwrap().uri.path(), "/pipelined");
}

/// Writes `CONNECT` and the ClientHello at once, then finishes the handshake and sends one GET
/// through the tunnel; returns the answer.
fn pipelined_https_get(proxy: std::net::SocketAddr, port: u16, ca_pem: &str) -> String {
    use std::io::{Read, Write};

    let config = crate::support::client::tls_client_config(&[ca_pem]);
    let name = rustls::pki_types::ServerName::try_from("secure.test").unwrap();
    let mut tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut first =
        format!("CONNECT secure.test:{port} HTTP/1.1\r\nHost: secure.test:{port}\r\n\r\n")
            .into_bytes();
    let hello = tls.write_tls(&mut first).unwrap();
    assert!(hello > 0);
    let mut sock = std::net::TcpStream::connect(proxy).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.write_all(&first).unwrap();
    // The proxy's answer, a byte at a time so that none of the server's TLS is taken with it.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(sock.read(&mut byte).unwrap(), 1, "{head:?}");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    let mut stream = rustls::Stream::new(&mut tls, &mut sock);
    stream
        .write_all(b"GET /pipelined HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    // A server may close without close_notify: what arrived is what counts.
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_needs_a_port_and_reports_unreachable_upstreams() {
    let proxy = TestProxy::start().await;
    let (_, head) = connect_via(&proxy, "no-port.test").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let closed = crate::support::origin::closed_port();
    let (_, head) = connect_via(&proxy, &closed.to_string()).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_upgrade_on_the_plain_proxy_path() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    // Absolute-form upgrade request, as a client that does not tunnel ws:// would send it.
    let req = format!(
        "GET http://{0}/ws HTTP/1.1\r\nHost: {0}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        origin.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        s,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    for i in 0..3 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text(format!("hello {i}")));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed, Message::binary(vec![0u8, 1, 2, 255]));
}
