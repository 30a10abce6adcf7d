use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

use crate::support::client::{read_head, tls_via_proxy};
use crate::support::{Lab, eventually};

/// A BSN that passes the eleven-test, named as such (the detector wants that context for a bare
/// nine-digit number).
const BSN_TEXT: &str = "Het BSN van de klant is 111222333, graag verwerken";

/// The shipped policy, and an origin for `chat.test` (an external host) that speaks HTTP/1.1.
async fn chat_lab() -> Lab {
    Lab::builder(&["chat.test"])
        .alpn(&[b"http/1.1"])
        .start()
        .await
}

/// The WebSocket handshake as `origin` received it.
fn handshake(origin: &crate::support::Origin) -> crate::support::origin::Received {
    origin
        .received()
        .into_iter()
        .find(|r| r.uri.path() == "/ws")
        .expect("a handshake at the origin")
}

/// A WebSocket to `wss://{host}/ws` through the proxy, intercepted: CONNECT, TLS with the
/// proxy's leaf, then the handshake, offering compression as browsers do.
async fn open_wss(lab: &Lab, host: &str) -> WebSocketStream<impl AsyncRead + AsyncWrite + Unpin> {
    let tls = tls_via_proxy(&lab.proxy, host, &lab.sluis_ca).await;
    let mut req = format!("wss://{host}/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-extensions",
        "permessage-deflate; client_max_window_bits"
            .parse()
            .unwrap(),
    );
    let (ws, res) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    assert_eq!(res.status(), 101);
    ws
}

/// The next message, within a few seconds.
async fn next<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Message {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("no message within 10 s")
        .expect("the connection ended")
        .expect("a broken frame")
}

/// The close frame the proxy sends, skipping pongs before it.
async fn close_of<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> CloseFrame {
    loop {
        match next(ws).await {
            Message::Pong(_) => continue,
            Message::Close(Some(frame)) => return frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Closes as a browser does: the close handshake, then the connection.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>) {
    ws.close(None).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
}

/// The `message` and `upgrade` audit events, once the upgrade has been logged at its close.
async fn audit_of_websocket(lab: &Lab) -> (Vec<serde_json::Value>, serde_json::Value) {
    eventually("the upgrade's audit event", Duration::from_secs(10), || {
        lab.audit_events()
            .iter()
            .any(|e| e["event"]["action"] == "upgrade")
    })
    .await;
    let events = lab.audit_events();
    let messages = events
        .iter()
        .filter(|e| e["event"]["action"] == "message")
        .cloned()
        .collect();
    let upgrade = events
        .into_iter()
        .find(|e| e["event"]["action"] == "upgrade")
        .unwrap();
    (messages, upgrade)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_with_a_bsn_closes_the_websocket_and_never_reaches_the_origin() {
    let lab = chat_lab().await;
    let mut ws = open_wss(&lab, "chat.test").await;
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("hello"));

    ws.send(Message::text(BSN_TEXT)).await.unwrap();
    let close = close_of(&mut ws).await;
    assert_eq!(close.code, CloseCode::Policy);
    let reason = close.reason.to_string();
    let incident = reason
        .strip_prefix("blocked by sluis: ksp-privacy-4-bsn, incident ")
        .unwrap_or_else(|| panic!("close reason: {reason}"))
        .to_owned();

    // The origin saw the handshake without the compression offer, and the first message only.
    let handshake = handshake(&lab.origin);
    assert!(handshake.headers.contains_key("sec-websocket-key"));
    assert!(!handshake.headers.contains_key("sec-websocket-extensions"));
    eventually(
        "the origin's end of the socket",
        Duration::from_secs(5),
        || !lab.origin.websocket_messages().is_empty(),
    )
    .await;
    assert_eq!(lab.origin.websocket_messages(), vec![b"hello".to_vec()]);

    let (messages, upgrade) = audit_of_websocket(&lab).await;
    let blocked: Vec<_> = messages
        .iter()
        .filter(|e| e["sluis"]["action"] == "block")
        .collect();
    assert_eq!(blocked.len(), 1, "{messages:?}");
    assert_eq!(blocked[0]["event"]["id"], incident.as_str());
    assert_eq!(blocked[0]["rule"]["id"], "ksp-privacy-4-bsn");
    assert_eq!(blocked[0]["url"]["domain"], "chat.test");
    assert_eq!(blocked[0]["url"]["path"], "/ws");
    // Counts and keyed hashes only: the number itself is nowhere in the log.
    let file = &blocked[0]["sluis"]["files"][0];
    assert_eq!(file["type"], "text");
    assert_eq!(file["detections"]["bsn"], 1, "{file}");
    let log = std::fs::read_to_string(lab.proxy.workdir.path().join("audit/audit.log")).unwrap();
    assert!(!log.contains("111222333"));

    assert_eq!(upgrade["sluis"]["error"], "message_blocked");
    assert_eq!(upgrade["event"]["outcome"], "failure");
    assert_eq!(upgrade["http"]["response"]["status_code"], 101);
    // Upstream got the "hello" frame alone: 2 bytes of head, 4 of mask, 5 of text.
    assert_eq!(upgrade["http"]["request"]["bytes"], 11);

    let metrics = lab.proxy.metrics().await;
    assert!(
        metrics.contains(
            "sluis_websocket_messages_total{action=\"block\",mode=\"enforce\",rule=\"ksp-privacy-4-bsn\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bsn_split_over_fragments_with_a_ping_between_is_caught() {
    let lab = chat_lab().await;
    let mut ws = open_wss(&lab, "chat.test").await;
    // Cut inside the number.
    let (first, rest) = BSN_TEXT.split_at(28);
    let text = OpCode::Data(Data::Text);
    let more = OpCode::Data(Data::Continue);
    ws.send(Message::Frame(Frame::message(
        first.to_owned(),
        text,
        false,
    )))
    .await
    .unwrap();
    // A control frame inside a fragmented message passes on its own.
    ws.send(Message::Ping(b"p".to_vec().into())).await.unwrap();
    ws.send(Message::Frame(Frame::message(rest.to_owned(), more, true)))
        .await
        .unwrap();
    let close = close_of(&mut ws).await;
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("ksp-privacy-4-bsn"), "{close:?}");

    let (_, upgrade) = audit_of_websocket(&lab).await;
    // Of all that, the ping alone went upstream (2 + 4 + 1 bytes).
    assert_eq!(upgrade["http"]["request"]["bytes"], 7);
    assert!(lab.origin.websocket_messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frame_that_cannot_be_read_is_a_failed_inspection() {
    let lab = chat_lab().await;
    let mut ws = open_wss(&lab, "chat.test").await;
    // RSV1 marks a compressed message; none was agreed, so its bytes mean nothing readable.
    let mut frame = Frame::message(BSN_TEXT.to_owned(), OpCode::Data(Data::Text), true);
    frame.header_mut().rsv1 = true;
    ws.send(Message::Frame(frame)).await.unwrap();
    let close = close_of(&mut ws).await;
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("on-error-failed"), "{close:?}");
    let (_, upgrade) = audit_of_websocket(&lab).await;
    assert_eq!(upgrade["http"]["request"]["bytes"], 0);
    assert!(lab.origin.websocket_messages().is_empty());
}

/// A WebSocket to `ws://{host}/ws` on the plain proxy path: the absolute-form handshake a client
/// that does not tunnel `ws://` sends.
async fn open_ws(lab: &Lab, host: &str) -> WebSocketStream<TcpStream> {
    let mut s = TcpStream::connect(lab.proxy.addr).await.unwrap();
    let req = format!(
        "GET http://{host}/ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    WebSocketStream::from_raw_socket(
        s,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn on_the_plain_path_external_messages_are_inspected_and_internal_ones_pass_unread() {
    let lab = Lab::builder(&["chat.test", "intranet.kpn.nl"])
        .start()
        .await;
    let mut ws = open_ws(&lab, "intranet.kpn.nl").await;
    ws.send(Message::text(BSN_TEXT)).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text(BSN_TEXT));
    // Spliced: the compression offer stays, for the origin to take or leave.
    let handshake = handshake(&lab.http);
    assert!(handshake.headers.contains_key("sec-websocket-extensions"));
    close(ws).await;
    let (messages, upgrade) = audit_of_websocket(&lab).await;
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(upgrade["sluis"]["destination"]["internal"], true);
    assert!(upgrade["sluis"]["error"].is_null(), "{upgrade}");

    let mut ws = open_ws(&lab, "chat.test").await;
    ws.send(Message::text(BSN_TEXT)).await.unwrap();
    let close = close_of(&mut ws).await;
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("ksp-privacy-4-bsn"), "{close:?}");
    assert_eq!(
        lab.http.websocket_messages(),
        vec![BSN_TEXT.as_bytes().to_vec()],
        "only the internal host's message arrived"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_mode_lets_the_message_through_and_logs_a_would_block() {
    let dir = crate::support::lab::monitor_policy();
    let lab = Lab::builder(&["chat.test"])
        .alpn(&[b"http/1.1"])
        .policy(dir.path())
        .start()
        .await;
    let mut ws = open_wss(&lab, "chat.test").await;
    ws.send(Message::text(BSN_TEXT)).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text(BSN_TEXT));
    close(ws).await;
    let (messages, upgrade) = audit_of_websocket(&lab).await;
    let flagged: Vec<_> = messages
        .iter()
        .filter(|e| e["sluis"]["would_block"] == true)
        .collect();
    assert_eq!(flagged.len(), 1, "{messages:?}");
    assert_eq!(flagged[0]["rule"]["id"], "ksp-privacy-4-bsn");
    assert_eq!(flagged[0]["sluis"]["mode"], "monitor");
    assert!(upgrade["sluis"]["error"].is_null(), "{upgrade}");
    assert_eq!(
        lab.origin.websocket_messages(),
        vec![BSN_TEXT.as_bytes().to_vec()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_message_spills_while_held_then_arrives_whole() {
    let lab = chat_lab().await;
    let mut ws = open_wss(&lab, "chat.test").await;
    // Past the memory a request may hold (4 MiB): the message spills, then goes on intact. Text
    // that is not a file, so the policy lets it pass.
    let line = "de vergadering is verplaatst naar donderdag om tien uur\n";
    let body = line.repeat((6 << 20) / line.len());
    ws.send(Message::text(body.clone())).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text(body.clone()));
    assert_eq!(lab.origin.websocket_messages(), vec![body.into_bytes()]);
    let metrics = lab.proxy.metrics().await;
    let spilled: u64 = ["page_cache", "disk"]
        .map(|through| {
            let series = format!("sluis_spilled_bytes_total{{through=\"{through}\"}}");
            crate::support::metric(&metrics, &series).unwrap()
        })
        .iter()
        .sum();
    assert!(spilled >= 2 << 20, "held in memory only: {spilled}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_switch_that_cannot_be_read_is_declined_and_the_request_goes_on() {
    let lab = chat_lab().await;
    // An h2c upgrade: after it, sluis could read nothing, so the origin never hears of it.
    let mut s = TcpStream::connect(lab.proxy.addr).await.unwrap();
    s.write_all(
        b"GET http://chat.test/page HTTP/1.1\r\nHost: chat.test\r\n\
          Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
          HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    while !String::from_utf8_lossy(&answer).contains("\"path\":\"/page\"") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let got = lab.http.received().pop().unwrap();
    assert_eq!(got.uri.path(), "/page");
    for name in ["upgrade", "http2-settings", "connection"] {
        assert!(!got.headers.contains_key(name), "{name}: {:?}", got.headers);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn frames_cut_anywhere_by_the_network_are_read_whole() {
    let lab = chat_lab().await;
    let mut ws = open_wss(&lab, "chat.test").await;
    // Frames as a client writes them (masked), sent a few bytes at a time, so that heads,
    // masks and payloads arrive split over many reads.
    let frame = |text: &str| {
        let mut f = Frame::message(text.to_owned(), OpCode::Data(Data::Text), true);
        f.header_mut().mask = Some([0x37, 0xfa, 0x21, 0x3d]);
        let mut out = Vec::new();
        f.format(&mut out).unwrap();
        out
    };
    for (text, piece) in [("hello in pieces", 1), (&"lang bericht ".repeat(20)[..], 3)] {
        for chunk in frame(text).chunks(piece) {
            ws.get_mut().write_all(chunk).await.unwrap();
            ws.get_mut().flush().await.unwrap();
        }
        assert_eq!(next(&mut ws).await, Message::text(text));
    }
    for chunk in frame(BSN_TEXT).chunks(2) {
        ws.get_mut().write_all(chunk).await.unwrap();
        ws.get_mut().flush().await.unwrap();
    }
    let close = close_of(&mut ws).await;
    assert!(close.reason.contains("ksp-privacy-4-bsn"), "{close:?}");
    assert_eq!(lab.origin.websocket_messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn over_a_websocket_to_a_cloud_service_nothing_is_sent() {
    // The shipped policy blocks anything sent to public cloud storage, whatever it holds.
    let lab = Lab::builder(&["www.dropbox.com"])
        .alpn(&[b"http/1.1"])
        .start()
        .await;
    let mut ws = open_wss(&lab, "www.dropbox.com").await;
    ws.send(Message::text("hello")).await.unwrap();
    let close = close_of(&mut ws).await;
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("ksp-1.4-cloud-upload"), "{close:?}");
    let (_, upgrade) = audit_of_websocket(&lab).await;
    assert_eq!(upgrade["http"]["request"]["bytes"], 0);
    assert_eq!(upgrade["sluis"]["destination"]["category"], "cloud-storage");
    assert!(lab.origin.websocket_messages().is_empty());
}
