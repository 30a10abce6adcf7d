//! One way to reach the origin, and one verified exchange over it. The same code serves the
//! direct rows and the proxied rows, so the only difference between them is the proxy:
//!
//! * plain HTTP through the proxy: absolute-form request line (`POST http://host:port/path`);
//! * HTTPS through the proxy: `CONNECT host:port`, then TLS to whatever answers, trusting only
//!   the CA given (the origin's for a tunnel, the proxy's for interception);
//! * direct: the same requests in origin form, straight to the origin's port.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::Error;
use crate::body::UploadBody;
use crate::origin::{DOWNLOAD_BYTES, DOWNLOAD_PATH, GET_BYTES};

/// A client connection ready for requests.
pub(crate) enum Sender {
    H1(http1::SendRequest<UploadBody>),
    H2(http2::SendRequest<UploadBody>),
}

/// Where requests go and how.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// The proxy to go through; `None` = direct to `origin`.
    pub(crate) proxy: Option<SocketAddr>,
    /// The origin's own address (used when direct).
    pub(crate) origin: SocketAddr,
    /// Host name in the URL and the TLS server name.
    pub(crate) host: String,
    /// Port in the URL (the origin's port).
    pub(crate) port: u16,
    /// TLS to the origin (or to the intercepting proxy), trusting one CA.
    pub(crate) tls: Option<TlsConnector>,
    /// HTTP/2 over the TLS (whose config must offer `h2`), instead of HTTP/1.1.
    pub(crate) h2: bool,
}

// === impl Endpoint ===

impl Endpoint {
    pub(crate) fn new(
        proxy: Option<SocketAddr>,
        origin: SocketAddr,
        host: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        Self {
            proxy,
            origin,
            host: host.to_owned(),
            port: origin.port(),
            tls: tls.map(TlsConnector::from),
            h2: false,
        }
    }

    /// The same endpoint spoken to over HTTP/2; `tls` must offer `h2` in its ALPN.
    pub(crate) fn http2(self, tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            tls: Some(TlsConnector::from(tls)),
            h2: true,
            ..self
        }
    }

    /// Opens a connection: TCP, then CONNECT and TLS as the endpoint needs, then HTTP/1.1.
    pub(crate) async fn connect(&self) -> Result<Sender, Error> {
        let mut stream = TcpStream::connect(self.proxy.unwrap_or(self.origin)).await?;
        stream.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return handshake(stream).await;
        };
        if self.proxy.is_some() {
            connect_tunnel(&mut stream, &self.host, self.port).await?;
        }
        let name = ServerName::try_from(self.host.clone())?;
        let stream = tls
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS handshake with {}: {e}", self.host))?;
        if self.h2 {
            return handshake_h2(stream).await;
        }
        handshake(stream).await
    }

    /// A request for `path` with a body of `body_len` bytes (0 = none).
    pub(crate) fn request(
        &self,
        method: &Method,
        path: &str,
        body: UploadBody,
        body_len: u64,
    ) -> Result<Request<UploadBody>, Error> {
        let authority = format!("{}:{}", self.host, self.port);
        let uri = if self.h2 {
            format!("https://{authority}{path}")
        } else if self.proxy.is_some() && self.tls.is_none() {
            format!("http://{authority}{path}")
        } else {
            path.to_owned()
        };
        let mut builder = Request::builder().method(method.clone()).uri(uri);
        if !self.h2 {
            builder = builder.header(header::HOST, authority);
        }
        if body_len > 0 {
            builder = builder.header(header::CONTENT_LENGTH, body_len);
        }
        Ok(builder.body(body)?)
    }
}

async fn handshake<T>(io: T) -> Result<Sender, Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Sender::H1(sender))
}

async fn handshake_h2<T>(io: T) -> Result<Sender, Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Sender::H2(sender))
}

// === impl Sender ===

impl Sender {
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    async fn send(&mut self, req: Request<UploadBody>) -> hyper::Result<http::Response<Incoming>> {
        match self {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }
}

/// Sends `CONNECT host:port` and reads the proxy's answer head; anything but a 200 is an error.
async fn connect_tunnel(stream: &mut TcpStream, host: &str, port: u16) -> Result<(), Error> {
    let head = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("proxy closed the connection during CONNECT".into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let status = buf.get(..end).unwrap_or_default();
            let ok = status.starts_with(b"HTTP/1.1 200") || status.starts_with(b"HTTP/1.0 200");
            if !ok {
                let line = String::from_utf8_lossy(status);
                let first = line.lines().next().unwrap_or_default().to_owned();
                return Err(format!("CONNECT refused: {first}").into());
            }
            if end + 4 != buf.len() {
                return Err("proxy sent bytes after its CONNECT answer".into());
            }
            return Ok(());
        }
        if buf.len() > 16 << 10 {
            return Err("CONNECT answer head too long".into());
        }
    }
}

/// Sends one request and checks the answer: status 200, the whole body read, the origin's
/// `x-received-bytes` equal to what was sent, and 1 KiB back for a GET.
pub(crate) async fn exchange(
    sender: &mut Sender,
    req: Request<UploadBody>,
    sent: u64,
) -> Result<(), Error> {
    let is_get = req.method() == Method::GET;
    let expected = if req.uri().path() == DOWNLOAD_PATH {
        DOWNLOAD_BYTES
    } else {
        GET_BYTES
    };
    let res = sender.send(req).await?;
    let status = res.status();
    let received = res
        .headers()
        .get("x-received-bytes")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = res.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(body.get(..body.len().min(200)).unwrap_or_default());
        return Err(format!("status {status}: {}", text.trim()).into());
    }
    if received != Some(sent) {
        return Err(format!("origin received {received:?} bytes of {sent}").into());
    }
    if is_get && body.len() != expected {
        return Err(format!("GET answer of {} bytes, expected {expected}", body.len()).into());
    }
    Ok(())
}
