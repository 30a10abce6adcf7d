//! Intercepting a CONNECT tunnel: accept the client's TLS with a leaf certificate for the name
//! it asked for, then serve the requests inside with the same service as plain requests. Each
//! inner request is forwarded on its own, verified TLS connection from the pool. A client that
//! offers both HTTP/2 and HTTP/1.1 is offered what the origin speaks (`net::origins`), which may
//! mean dialing the origin during the handshake; the proxy translates between the two when the
//! client insists on HTTP/2 or the origin has changed its mind.

use std::sync::Arc;

use bytes::Bytes;
use hyper::rt::{Read, Write};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;

use crate::net::batched::Batched;
use crate::proxy::idle::{Activity, ActivityIo};
use crate::proxy::listener::{Drain, Ended, Timeouts, drive};
use crate::proxy::rewind::Rewind;
use crate::proxy::service::{self, Conn};
use crate::proxy::target::Target;
use crate::proxy::{Proxy, ProxyBody};
use crate::proxy::{h1, hop};
use crate::tls::{Alpn, is_client_cert_rejection};

/// What the first bytes of a tunnel say it carries.
enum Carried {
    Tls,
    PlainHttp,
    Other,
}

/// Serves an intercepted tunnel until the client is done. `outer` is the client's proxy
/// connection; `target` the CONNECT authority. `dial_ahead`: whether the origin may be dialed
/// before a request asks for it (not when every request will get the block page).
///
/// Boxed: the requests inside are served by the same service that called this, and the boxed
/// (type-erased) future is what lets that recursion have a type.
pub(crate) fn serve<I>(
    proxy: Arc<Proxy>,
    outer: Arc<Conn>,
    target: Target,
    io: I,
    dial_ahead: bool,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(serve_tunnel(proxy, outer, target, io, dial_ahead))
}

async fn serve_tunnel<I>(
    proxy: Arc<Proxy>,
    outer: Arc<Conn>,
    target: Target,
    io: I,
    dial_ahead: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let mut io = ActivityIo::new(io, activity.clone());
    let mut first = [0u8; 1];
    let peeked =
        tokio::time::timeout(proxy.settings.header_read_timeout, io.read(&mut first)).await;
    let Ok(Ok(1)) = peeked else { return };
    let io = Rewind::new(Bytes::copy_from_slice(&first), io);
    match classify(first[0]) {
        Carried::Tls => serve_tls(proxy, outer, target, io, activity, dial_ahead).await,
        Carried::PlainHttp => {
            let plain = Target {
                tls: false,
                ..target
            };
            let inner = inner_conn(&outer, plain, &activity);
            h1::serve(&proxy, inner, io).await;
        }
        Carried::Other => {
            tracing::info!(host = %target.host, port = target.port, "intercepted tunnel carries neither TLS nor HTTP; closed");
        }
    }
}

fn classify(first: u8) -> Carried {
    match first {
        // TLS handshake record.
        0x16 => Carried::Tls,
        // An HTTP method starts with an uppercase letter.
        b'A'..=b'Z' => Carried::PlainHttp,
        _ => Carried::Other,
    }
}

async fn serve_tls<I>(
    proxy: Arc<Proxy>,
    outer: Arc<Conn>,
    target: Target,
    io: I,
    activity: Arc<Activity>,
    dial_ahead: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed, like serving HTTP/2 below and the TLS stream itself: a future is as large as its
    // largest state, and the handshake's, hyper's HTTP/2 connection or the rustls connection
    // (moved through several states, each with a slot of its own) would otherwise stay with
    // every connection for its whole life, parked HTTP/1.1 ones included.
    let Some(tls) = Box::pin(accept(&proxy, &target, io, dial_ahead)).await else {
        return;
    };
    proxy.observe_tls_handshake("ok");
    let protocol = match tls.get_ref().1.alpn_protocol() {
        Some(b"h2") => "h2",
        Some(b"http/1.1") => "http/1.1",
        _ => "none",
    };
    proxy.metrics.tls_protocol(protocol);
    let inner = inner_conn(&outer, target, &activity);
    if protocol == "h2" {
        Box::pin(serve_http2(&proxy, inner, TokioIo::new(tls), &activity)).await;
    } else {
        h1::serve(&proxy, inner, tls).await;
    }
}

/// The client's TLS handshake, with a leaf for the name it asked for and the protocols its
/// origin speaks (see `offers_h2_and_h1`).
async fn accept<I>(
    proxy: &Arc<Proxy>,
    target: &Target,
    io: I,
    dial_ahead: bool,
) -> Option<Box<tokio_rustls::server::TlsStream<Batched<I>>>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let minter = proxy.minter.as_ref()?;
    // An upload arrives one TLS record per read otherwise.
    let accept = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), Batched::new(io));
    let start = match tokio::time::timeout(proxy.settings.header_read_timeout, accept).await {
        Ok(Ok(start)) => start,
        Ok(Err(e)) => {
            tracing::debug!(host = %target.host, error = %e, "no TLS ClientHello in intercepted tunnel");
            return None;
        }
        Err(_) => return None,
    };
    let hello = start.client_hello();
    let sni = hello.server_name().map(str::to_owned);
    let offers_both = offers_h2_and_h1(hello.alpn());
    let mint = minter.server_config_for_connect(sni.as_deref(), &target.host);
    let offer = async {
        if !(offers_both && dial_ahead) {
            // Nothing to choose, or nothing will be forwarded.
            return Alpn::H2AndH1;
        }
        let (dialer, host, port) = (proxy.dialer.clone(), target.host.clone(), target.port);
        let dial = async move { dialer.connect_tls(&host, port, Alpn::H2AndH1).await };
        proxy.origins.offer(&target.host, target.port, dial).await
    };
    let (minted, offer) = tokio::join!(mint, offer);
    let config = match minted {
        Ok((_, configs)) => configs.offering(offer).clone(),
        Err(e) => {
            tracing::warn!(host = %target.host, sni = ?sni, error = %e, "cannot mint a certificate");
            return None;
        }
    };
    let handshake = start.into_stream(config);
    match tokio::time::timeout(proxy.settings.header_read_timeout, handshake).await {
        Ok(Ok(tls)) => Some(Box::new(tls)),
        Ok(Err(e)) => {
            handshake_failed(proxy, target, sni.as_deref(), &e);
            None
        }
        Err(_) => None,
    }
}

/// Whether a ClientHello offers both HTTP/2 and HTTP/1.1: a client that offers one of them
/// only must get that one, whatever the origin speaks.
fn offers_h2_and_h1<'a>(alpn: Option<impl Iterator<Item = &'a [u8]>>) -> bool {
    let (mut h2, mut h1) = (false, false);
    for protocol in alpn.into_iter().flatten() {
        h2 |= protocol == b"h2";
        h1 |= protocol == b"http/1.1";
    }
    h2 && h1
}

/// A client that refuses our certificate is usually an app that pins its server's key: tell the
/// admin which host, so it can go on the bypass list.
fn handshake_failed(proxy: &Proxy, target: &Target, sni: Option<&str>, err: &std::io::Error) {
    match is_client_cert_rejection(err) {
        Some(alert) => {
            proxy.observe_tls_handshake("client_rejected");
            tracing::warn!(
                host = %target.host,
                sni = sni.unwrap_or(""),
                alert,
                "client rejected the interception certificate (certificate pinning?); add the host to the TLS bypass list if it must work"
            );
        }
        None => {
            proxy.observe_tls_handshake("failed");
            tracing::debug!(host = %target.host, error = %err, "client TLS handshake failed");
        }
    }
}

fn inner_conn(outer: &Conn, target: Target, activity: &Arc<Activity>) -> Arc<Conn> {
    Arc::new(Conn::new(
        activity.clone(),
        outer.client,
        Some(target),
        outer.slot.clone(),
    ))
}

/// The service for HTTP/2 clients: the usual one, with the response's header values copied so
/// that the client connection's HPACK table does not pin the upstream's read buffer
/// (`hop::own_values`).
async fn handle_h2(
    proxy: Arc<Proxy>,
    conn: Arc<Conn>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<ProxyBody>, std::convert::Infallible> {
    let mut res = service::handle(proxy, conn, req).await?;
    hop::own_values(res.headers_mut());
    Ok(res)
}

/// How much of an upload an HTTP/2 client may send ahead of the proxy's reading, per stream (the
/// connection gets twice this). With hyper's default of 1 MiB, curl kept stopping for window
/// updates: a held 1 GiB upload took 4.4-4.8 s, against 3.8-4.0 s with 4 MiB, and curl spent
/// a fifth less CPU. What a stalled stream may pin in memory grows with the window (the proxy's
/// peak RSS in that upload: 35 -> 40 MiB), so it is no larger.
const H2_STREAM_WINDOW: u32 = 4 << 20;

async fn serve_http2<I>(proxy: &Arc<Proxy>, conn: Arc<Conn>, io: I, activity: &Activity)
where
    I: Read + Write + Unpin + Send + 'static,
{
    let svc = {
        let (proxy, conn) = (proxy.clone(), conn.clone());
        // Boxed: hyper keeps the in-flight request future inside the connection state, so an
        // unboxed one (the whole request path) would be paid by every idle connection.
        service_fn(move |req| Box::pin(handle_h2(proxy.clone(), conn.clone(), req)))
    };
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(proxy.settings.max_header_bytes as u32)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(2 * H2_STREAM_WINDOW);
    let served = builder.serve_connection(io, svc);
    let timeouts = Timeouts {
        idle: proxy.settings.idle_timeout,
        head: None,
        park: None,
    };
    tokio::pin!(served);
    if let Ended::Finished(Err(e)) = drive(served, activity, timeouts, &proxy.shutdown).await {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}

impl<I, S, B> Drain for http2::Connection<I, S, TokioExecutor>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: Read + Write + Unpin + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
{
    fn drain(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::offers_h2_and_h1;

    #[test]
    fn only_a_client_offering_both_protocols_leaves_the_choice_to_the_origin() {
        let offers = |list: &[&[u8]]| offers_h2_and_h1(Some(list.iter().copied()));
        assert!(offers(&[b"h2", b"http/1.1"]));
        assert!(offers(&[b"http/1.1", b"spdy/3", b"h2"]));
        assert!(!offers(&[b"h2"]));
        assert!(!offers(&[b"http/1.1"]));
        assert!(!offers_h2_and_h1(None::<std::iter::Empty<&[u8]>>));
    }
}
