//! A real origin server (hyper, HTTP and HTTPS) that records what it received: method, target,
//! headers, body size and SHA-256, and which connection carried it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sha2::Digest;
use tokio::net::TcpListener;

use super::pki::ServerCert;

/// One request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub uri: http::Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body_len: u64,
    pub body_sha256: String,
    /// Which accepted connection carried the request (0, 1, ...).
    pub conn: usize,
    /// The request body ended cleanly (not cut off).
    pub complete: bool,
}

#[derive(Clone, Default)]
struct State {
    received: Arc<Mutex<Vec<Received>>>,
    /// Payloads of the WebSocket messages clients sent to `/ws`, in order.
    ws_messages: Arc<Mutex<Vec<Vec<u8>>>>,
    connections: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
}

pub struct Origin {
    pub addr: SocketAddr,
    state: State,
}

impl Origin {
    /// Plain HTTP, HTTP/1.1 and h2c.
    pub async fn http() -> Self {
        Self::spawn(None).await
    }

    /// HTTPS with `cert`, offering the given ALPN protocols.
    pub async fn https(cert: &ServerCert, alpn: &[&[u8]]) -> Self {
        Self::spawn(Some(tokio_rustls::TlsAcceptor::from(
            cert.server_config(alpn),
        )))
        .await
    }

    async fn spawn(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = State::default();
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let conn = st.connections.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), conn, req));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .await;
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .await;
                        }
                    }
                });
            }
        });
        Self { addr, state }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The WebSocket messages received on `/ws`, text and binary alike.
    pub fn websocket_messages(&self) -> Vec<Vec<u8>> {
        self.state.ws_messages.lock().unwrap().clone()
    }

    /// Requests whose head arrived (even if the body never completed).
    pub fn requests_started(&self) -> usize {
        self.state.started.load(Ordering::SeqCst)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

/// The seed of `/bytes/N` downloads (see `pseudo_random`).
pub const DOWNLOAD_SEED: u64 = 7;

async fn handle(
    state: State,
    conn: usize,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.started.fetch_add(1, Ordering::SeqCst);
    if req.uri().path() == "/ws" {
        state.received.lock().unwrap().push(Received {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
            body_len: 0,
            body_sha256: super::hex(&sha2::Sha256::digest(b"")),
            conn,
            complete: true,
        });
        return Ok(websocket_echo(&state, &mut req));
    }
    let (head, mut body) = req.into_parts();
    let mut hasher = sha2::Sha256::new();
    let mut len = 0u64;
    let mut complete = true;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    len += data.len() as u64;
                    hasher.update(data);
                }
            }
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    let sha = super::hex(&hasher.finalize());
    state.received.lock().unwrap().push(Received {
        method: head.method.clone(),
        uri: head.uri.clone(),
        version: head.version,
        headers: head.headers.clone(),
        body_len: len,
        body_sha256: sha.clone(),
        conn,
        complete,
    });
    let summary = serde_json::json!({
        "method": head.method.as_str(),
        "path": head.uri.path(),
        "len": len,
        "sha256": sha,
        "version": format!("{:?}", head.version),
    });
    // `/bytes/N`: a download of N pseudo-random bytes (seed 7), for tests of large responses.
    let download = head.uri.path().strip_prefix("/bytes/");
    let body = match download.and_then(|n| n.parse::<usize>().ok()) {
        _ if head.method == Method::HEAD => Bytes::new(),
        Some(n) => Bytes::from(super::pseudo_random(n.min(256 << 20), DOWNLOAD_SEED)),
        None => Bytes::from(summary.to_string()),
    };
    let mut res = Response::new(Full::new(body));
    res.headers_mut().insert("x-received-bytes", len.into());
    let content_type = if download.is_some() {
        "application/octet-stream"
    } else {
        "application/json"
    };
    res.headers_mut()
        .insert("content-type", content_type.parse().unwrap());
    Ok(res)
}

fn websocket_echo(state: &State, req: &mut Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        let mut res = Response::new(Full::new(Bytes::from_static(b"no key")));
        *res.status_mut() = StatusCode::BAD_REQUEST;
        return res;
    };
    let on_upgrade = hyper::upgrade::on(req);
    let messages = state.ws_messages.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        let (mut tx, mut rx) = ws.split();
        while let Some(Ok(msg)) = rx.next().await {
            if msg.is_close() {
                break;
            }
            if msg.is_text() || msg.is_binary() {
                messages
                    .lock()
                    .unwrap()
                    .push(msg.clone().into_data().to_vec());
            }
            if (msg.is_text() || msg.is_binary()) && tx.send(msg).await.is_err() {
                break;
            }
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// A listener that never accepts, with its accept queue already full: connecting to it hangs
/// until the connector gives up (Linux drops SYNs for a full queue).
pub struct Unaccepting {
    pub addr: SocketAddr,
    _listener: socket2::Socket,
    _fillers: Vec<std::net::TcpStream>,
}

/// An address on loopback where nothing listens: connecting to it is refused.
pub fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn unaccepting_listener() -> Unaccepting {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) =
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
        {
            fillers.push(s);
        }
    }
    Unaccepting {
        addr,
        _listener: socket,
        _fillers: fillers,
    }
}
