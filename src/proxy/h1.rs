//! Serving HTTP/1.1 client connections, with parking.
//!
//! hyper keeps a read buffer and a write buffer (8 KiB each) and its dispatcher for as long as
//! a keep-alive connection lives, and most client connections spend most of their life idle
//! between requests. So a connection quiet for `PARK_AFTER` is parked: hyper is asked to close
//! it (an idle HTTP/1.1 connection closes at once, without writing anything), its socket is
//! taken back, and only the socket and a small waiting task remain until the client sends its
//! next byte; then a new hyper connection is started on the socket, that byte replayed first.
//! Nothing of HTTP/1.1 carries over between requests on one connection, so the client cannot
//! tell.
//!
//! Taking the socket back is incompatible with hyper's own upgrade support, so upgrades (CONNECT
//! tunnels, WebSocket) are handed over here as well (`upgrade`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::proxy::Proxy;
use crate::proxy::idle::Activity;
use crate::proxy::listener::{Drain, Ended, drive, http1_builder};
use crate::proxy::rewind::Rewind;
use crate::proxy::service::{self, Conn};
use crate::proxy::upgrade::Io;

/// How long a connection must be quiet between requests before it is parked. Short, because a
/// parked connection costs a fraction of a served one, and waking one costs about as much as
/// the allocations of one request.
const PARK_AFTER: Duration = Duration::from_secs(1);

/// How long closing a connection's write side may take (a TLS close_notify to a client that
/// reads nothing) before it is simply dropped.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

/// Serves HTTP/1.1 on `io` until the client leaves, an upgrade takes the connection over, a
/// timeout cuts it, or the proxy shuts down. `io` must stamp `conn.activity` as bytes move
/// (`ActivityIo` somewhere in it).
pub(crate) async fn serve<T>(proxy: &Arc<Proxy>, conn: Arc<Conn>, io: T)
where
    T: Io + 'static,
{
    let mut io = Rewind::new(Bytes::new(), io);
    while let Some((read_ahead, idle)) = serve_until_idle(proxy, &conn, io).await {
        io = if read_ahead.is_empty() {
            tracing::debug!("client connection parked");
            match park(proxy, &conn.activity, idle).await {
                Some(woken) => woken,
                None => break,
            }
        } else {
            Rewind::new(read_ahead, idle)
        };
    }
    // Whoever waited for an upgrade that did not happen (the connection failed before the
    // answer was written) must not wait for ever.
    drop(conn.take_upgrade());
}

/// One hyper connection on `io`. Returns the socket and the bytes read ahead if the connection
/// went idle and was parked; `None` once it is over.
async fn serve_until_idle<T>(
    proxy: &Arc<Proxy>,
    conn: &Arc<Conn>,
    io: Rewind<T>,
) -> Option<(Bytes, T)>
where
    T: Io + 'static,
{
    let svc = {
        let (proxy, conn) = (proxy.clone(), conn.clone());
        // Boxed: hyper keeps the in-flight request future inside the connection state, so an
        // unboxed one (the whole request path) would be paid by every idle connection.
        service_fn(move |req| Box::pin(service::handle(proxy.clone(), conn.clone(), req)))
    };
    // Boxed: what a parked connection's task keeps must not be sized for hyper's state.
    let mut served = Box::pin(Served(
        http1_builder(proxy).serve_connection(TokioIo::new(io), svc),
    ));
    let mut timeouts = proxy.settings.http1_timeouts();
    timeouts.park = Some(PARK_AFTER);
    let ended = drive(served.as_mut(), &conn.activity, timeouts, &proxy.shutdown).await;
    let finished = match ended {
        Ended::Parked => true,
        Ended::Finished(Ok(())) => false,
        Ended::Finished(Err(e)) => {
            tracing::debug!(error = %e, "client connection ended with an error");
            return None;
        }
        Ended::Dropped => return None,
    };
    let parts = Pin::into_inner(served).0.into_parts();
    let (unread, io) = parts.io.into_inner().into_parts();
    let read_ahead = join(parts.read_buf, unread);
    if finished {
        return Some((read_ahead, io));
    }
    match conn.take_upgrade() {
        Some(taker) => {
            let _ = taker.send(Rewind::new(read_ahead, Box::new(io)));
        }
        None => close(io).await,
    }
    None
}

/// Waits for the next byte from a parked connection's client, closing it when the idle timeout
/// runs out or the proxy shuts down. Returns the connection with that byte to replay, or `None`
/// once it is closed.
async fn park<T>(proxy: &Proxy, activity: &Activity, mut io: T) -> Option<Rewind<T>>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let idle = proxy.settings.idle_timeout;
    let mut first = [0u8; 1];
    loop {
        tokio::select! {
            read = io.read(&mut first) => match read {
                Ok(1) => return Some(Rewind::new(Bytes::copy_from_slice(&first), io)),
                Ok(_) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "parked client connection failed");
                    return None;
                }
            },
            () = proxy.shutdown.cancelled() => break,
            () = tokio::time::sleep_until(activity.deadline(idle)) => {
                if tokio::time::Instant::now() >= activity.deadline(idle) {
                    tracing::debug!("parked client connection idle, closing");
                    break;
                }
            }
        }
    }
    close(io).await;
    None
}

/// Shuts the write side down, as hyper does when it closes a connection.
async fn close<T: AsyncWrite + Unpin>(mut io: T) {
    let _ = tokio::time::timeout(CLOSE_WITHIN, io.shutdown()).await;
}

/// hyper's unparsed bytes come before those it had not read yet. Copied out, even when one
/// part is empty: both are slices of hyper's read buffer (8 KiB or more), which a parked
/// connection or a tunnel would otherwise keep for its whole life.
fn join(first: Bytes, then: Bytes) -> Bytes {
    if first.is_empty() && then.is_empty() {
        return Bytes::new();
    }
    let mut all = BytesMut::with_capacity(first.len() + then.len());
    all.extend_from_slice(&first);
    all.extend_from_slice(&then);
    all.freeze()
}

/// A served connection that leaves its socket open when it is done, for the next owner: a new
/// hyper connection after parking, or an upgrade.
struct Served<I, S>(http1::Connection<I, S>)
where
    S: hyper::service::HttpService<hyper::body::Incoming>;

// === impl Served ===

impl<I, S, B> Future for Served<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = Result<(), hyper::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_without_shutdown(cx)
    }
}

impl<I, S, B> Drain for Served<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn drain(self: Pin<&mut Self>) {
        Pin::new(&mut self.get_mut().0).graceful_shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_keeps_its_order() {
        let a = Bytes::from_static(b"GET / HTTP/1.1\r\n");
        let b = Bytes::from_static(b"Host: x\r\n\r\n");
        assert_eq!(join(a.clone(), Bytes::new()), a);
        assert_eq!(join(Bytes::new(), b.clone()), b);
        assert_eq!(
            join(a, b),
            Bytes::from_static(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        );
    }

    #[test]
    fn read_ahead_holds_no_part_of_hypers_buffer() {
        let buffer = Bytes::from(vec![b'x'; 8192]);
        drop(join(buffer.slice(8192..), Bytes::new()));
        let kept = join(buffer.slice(10..12), Bytes::new());
        assert_eq!(kept, Bytes::from_static(b"xx"));
        assert!(
            buffer.is_unique(),
            "the read-ahead still holds hyper's buffer"
        );
    }
}
