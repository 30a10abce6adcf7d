//! The origin every workload ends at: HTTP and HTTPS on loopback, HTTP/1.1 with keep-alive. It
//! reads every request body to the end before it answers (a server that answers first and
//! drains later would flatter any proxy that holds bodies), checks the length against
//! `Content-Length`, and reports what it got in `x-received-bytes`, which the client compares
//! with what it sent. GETs get 1 KiB.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::Error;

/// Size of the answer to a GET.
pub(crate) const GET_BYTES: usize = 1024;
/// What a GET of `DOWNLOAD_PATH` answers with: a download (IDLEh2).
pub(crate) const DOWNLOAD_BYTES: usize = 1 << 20;
pub(crate) const DOWNLOAD_PATH: &str = "/1m";

static DOWNLOAD: std::sync::LazyLock<Bytes> =
    std::sync::LazyLock::new(|| Bytes::from(vec![b'x'; DOWNLOAD_BYTES]));

/// The running origin: where it listens and what it has received.
pub(crate) struct Origin {
    pub(crate) http: SocketAddr,
    pub(crate) https: SocketAddr,
    pub(crate) stats: Arc<OriginStats>,
}

/// Counters the bench reads to check that bodies really arrived.
#[derive(Debug, Default)]
pub(crate) struct OriginStats {
    pub(crate) requests: AtomicU64,
    pub(crate) body_bytes: AtomicU64,
    /// Bodies whose length differed from their `Content-Length` (or that broke off).
    pub(crate) bad_bodies: AtomicU64,
}

// === impl Origin ===

impl Origin {
    /// Binds both listeners on 127.0.0.1 (ephemeral ports) and serves them on `rt`.
    pub(crate) fn start(
        rt: &tokio::runtime::Runtime,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<Self, Error> {
        let stats = Arc::new(OriginStats::default());
        let _enter = rt.enter();
        let http = bind()?;
        let https = bind()?;
        let (http_addr, https_addr) = (http.local_addr()?, https.local_addr()?);
        rt.spawn(accept_loop(http, None, stats.clone()));
        rt.spawn(accept_loop(
            https,
            Some(TlsAcceptor::from(tls)),
            stats.clone(),
        ));
        Ok(Self {
            http: http_addr,
            https: https_addr,
            stats,
        })
    }
}

fn bind() -> Result<TcpListener, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    Ok(TcpListener::from_std(listener)?)
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, stats: Arc<OriginStats>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors: wait for some to close rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, tls.clone(), stats.clone()));
    }
}

async fn serve(stream: TcpStream, tls: Option<TlsAcceptor>, stats: Arc<OriginStats>) {
    let svc = service_fn(move |req| handle(stats.clone(), req));
    let builder = http1::Builder::new();
    match tls {
        None => {
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        }
        Some(acceptor) => {
            if let Ok(stream) = acceptor.accept(stream).await {
                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
            }
        }
    }
}

async fn handle(
    stats: Arc<OriginStats>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let is_get = req.method() == Method::GET;
    let download = req.uri().path() == DOWNLOAD_PATH;
    let mut body = req.into_body();
    let mut received = 0u64;
    let mut complete = true;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    received += data.len() as u64;
                }
            }
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    stats.body_bytes.fetch_add(received, Ordering::Relaxed);
    let good = complete && declared.is_none_or(|d| d == received);
    if !good {
        stats.bad_bodies.fetch_add(1, Ordering::Relaxed);
    }
    let (status, body) = match (good, is_get) {
        (false, _) => (
            StatusCode::BAD_REQUEST,
            Bytes::from_static(b"body length mismatch\n"),
        ),
        (true, true) if download => (StatusCode::OK, DOWNLOAD.clone()),
        (true, true) => (StatusCode::OK, Bytes::from_static(&[b'x'; GET_BYTES])),
        (true, false) => (StatusCode::OK, Bytes::from_static(b"ok\n")),
    };
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert("x-received-bytes", http::HeaderValue::from(received));
    Ok(res)
}
