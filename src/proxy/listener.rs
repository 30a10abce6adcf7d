//! Accepting clients: the allow-list, the connection limit, per-connection timeouts, and
//! draining on shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::proxy::error::ProxyError;
use crate::proxy::idle::{Activity, ActivityIo};
use crate::proxy::observe;
use crate::proxy::service::{Conn, Slot};
use crate::proxy::{Proxy, h1, respond};

/// Accepts connections until the proxy's shutdown fires, then lets open connections finish their
/// exchanges (no new requests are read) and returns once they are all done. The caller bounds
/// the wait.
///
/// Every shard accepts on the listener itself and serves what it accepts, unless it already
/// serves clearly more than another shard: then it hands the connection over. Accepting where
/// the connection is served spares a thread wake-up per connection; the hand-over keeps
/// long-lived connections spread, which the race between acceptors alone would not. A new
/// client wakes every idle shard and one of them wins; busy shards only find the listener
/// ready on their next turn. One socket per shard (`SO_REUSEPORT`) would wake only one, but
/// would also let a second sluis started by mistake share the port instead of failing to
/// bind.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>) {
    let listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot hand the listener to the shards");
            return;
        }
    };
    let gate = Gate {
        permits: Arc::new(Semaphore::new(proxy.settings.max_connections)),
        conns: TaskTracker::new(),
    };
    // The last shard takes the listener itself, so that one shard accepts whatever happens to
    // the copies. Once they all stop, the kernel refuses new clients while open ones finish.
    let shards: Vec<_> = proxy.shards.handles().collect();
    let Some((last, others)) = shards.split_last() else {
        return;
    };
    let mut loops = Vec::new();
    for (index, shard) in others.iter().enumerate() {
        match listener.try_clone() {
            Ok(l) => loops.push(shard.spawn(accept(l, index, proxy.clone(), gate.clone()))),
            Err(e) => tracing::error!(shard = index, error = %e, "shard cannot accept"),
        }
    }
    loops.push(last.spawn(accept(listener, others.len(), proxy.clone(), gate.clone())));
    for accepting in loops {
        let _ = accepting.await;
    }
    gate.conns.close();
    gate.conns.wait().await;
}

/// What every shard's accept loop shares: the connection limit, and the connections to wait
/// for on shutdown.
#[derive(Clone)]
struct Gate {
    permits: Arc<Semaphore>,
    conns: TaskTracker,
}

/// One shard's accept loop, until the proxy's shutdown fires.
async fn accept(listener: std::net::TcpListener, here: usize, proxy: Arc<Proxy>, gate: Gate) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(shard = here, error = %e, "shard cannot accept");
            return;
        }
    };
    let Gate { permits, conns } = gate;
    let shutdown = proxy.shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let ip = peer.ip().to_canonical();
        if !proxy.settings.clients.iter().any(|net| net.contains(&ip)) {
            tracing::warn!(client = %peer, "client not on the allow-list, refused");
            let proxy = proxy.clone();
            conns.spawn(async move {
                observe::acl_denied(&proxy, peer).await;
                refuse(proxy, stream, ProxyError::ClientDenied(ip)).await;
            });
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(client = %peer, limit = proxy.settings.max_connections, "connection limit reached, refused");
            proxy.metrics.connection_refused("limit");
            conns.spawn(refuse(proxy.clone(), stream, ProxyError::Overloaded));
            continue;
        };
        let (elsewhere, placed) = proxy.shards.place(here);
        let slot = Slot {
            _permit: permit,
            _open: proxy.metrics.connection_opened(),
            _placed: placed,
        };
        let conn = Arc::new(Conn::new(Activity::new(), peer, None, Arc::new(slot)));
        let Some(shard) = elsewhere else {
            conns.spawn(serve_client(proxy.clone(), stream, conn));
            continue;
        };
        // The socket moves to the other shard's reactor: it leaves this one's here and joins
        // that one's there.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(client = %peer, error = %e, "cannot hand the connection to a shard");
                continue;
            }
        };
        let proxy = proxy.clone();
        shard.spawn(conns.track_future(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve_client(proxy, stream, conn).await,
                Err(e) => {
                    tracing::warn!(client = %peer, error = %e, "shard cannot take the connection")
                }
            }
        }));
    }
}

async fn serve_client(proxy: Arc<Proxy>, stream: TcpStream, conn: Arc<Conn>) {
    let io = ActivityIo::new(stream, conn.activity.clone());
    h1::serve(&proxy, conn, io).await;
}

pub(crate) fn http1_builder(proxy: &Proxy) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        // Our watchdog (`drive`) times request heads; hyper's timer would also run between
        // requests and cut idle keep-alive connections at the header timeout.
        .header_read_timeout(None)
        .max_header_size(proxy.settings.max_header_bytes)
        .keep_alive(true);
    b
}

/// A served connection that can be asked to finish its exchange and close.
pub(crate) trait Drain: Future {
    fn drain(self: Pin<&mut Self>);
}

/// The timeouts a served connection runs under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// No byte moved for this long: finish the exchange and close; after another such period,
    /// drop.
    pub(crate) idle: std::time::Duration,
    /// A request head that has started to arrive must be complete within this; `None` for
    /// protocols where the idea does not apply (h2 multiplexes heads with other frames).
    pub(crate) head: Option<std::time::Duration>,
    /// Quiet this long between requests: hand the socket back (`h1`); `None` = never.
    pub(crate) park: Option<std::time::Duration>,
}

/// Why `drive` returned.
pub(crate) enum Ended {
    /// The connection finished: the client left, an exchange closed it, an upgrade took it,
    /// or it was asked to close (shutdown, idle timeout) and did.
    Finished(Result<(), hyper::Error>),
    /// It was idle and closed its HTTP side at once when asked to park: the socket is free.
    Parked,
    /// Cut off: a request head took too long, or it stayed idle after being asked to close.
    Dropped,
}

/// Runs a served connection to its end. On shutdown it is asked to finish its exchange and
/// close. A request head that does not complete within the header timeout drops the
/// connection; a connection with no traffic for the idle timeout is asked to close, and dropped
/// after a further idle period, so a stalled client cannot hold its slot forever. With
/// `timeouts.park`, a connection quiet that long between requests is asked to close: if it does
/// so at once (it was idle), it is `Ended::Parked`.
pub(crate) async fn drive<C: Drain>(
    mut conn: Pin<&mut C>,
    activity: &Activity,
    timeouts: Timeouts,
    shutdown: &CancellationToken,
) -> Ended
where
    C::Output: Into<Result<(), hyper::Error>>,
{
    let mut draining = false;
    loop {
        let idle_at = activity.deadline(timeouts.idle);
        let head_at = timeouts.head.and_then(|t| activity.head_deadline(t));
        // While busy, look again every park period: nothing wakes this loop when a request
        // ends.
        let park_at = timeouts.park.filter(|_| !draining).map(|t| {
            activity
                .park_deadline(t)
                .unwrap_or_else(|| Instant::now() + t)
        });
        let wake = [head_at, park_at]
            .into_iter()
            .flatten()
            .fold(idle_at, Instant::min);
        tokio::select! {
            res = conn.as_mut() => return Ended::Finished(res.into()),
            () = shutdown.cancelled(), if !draining => {
                conn.as_mut().drain();
                draining = true;
            }
            () = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if let Some(t) = timeouts.head
                    && activity.head_deadline(t).is_some_and(|at| now >= at)
                {
                    tracing::debug!("request head not complete within the header timeout; dropped");
                    return Ended::Dropped;
                }
                if let Some(t) = timeouts.park
                    && !draining
                    && activity.park_deadline(t).is_some_and(|at| now >= at)
                {
                    if let Some(ended) = park(conn.as_mut()).await {
                        return ended;
                    }
                    draining = true;
                    continue;
                }
                if now < activity.deadline(timeouts.idle) {
                    continue;
                }
                if draining {
                    tracing::debug!("connection idle while draining, dropped");
                    return Ended::Dropped;
                }
                conn.as_mut().drain();
                draining = true;
                activity.touch();
            }
        }
    }
}

/// Asks a quiet connection to close and sees whether it does at once, as an idle HTTP/1.1
/// connection does. If it does not (it was still busy in a way the activity stamps cannot see,
/// such as a request body the client paused), it finishes its exchange and closes: `None`.
async fn park<C: Drain>(mut conn: Pin<&mut C>) -> Option<Ended>
where
    C::Output: Into<Result<(), hyper::Error>>,
{
    conn.as_mut().drain();
    let polled = std::future::poll_fn(|cx| Poll::Ready(conn.as_mut().poll(cx))).await;
    match polled {
        Poll::Ready(res) => Some(match res.into() {
            Ok(()) => Ended::Parked,
            Err(e) => Ended::Finished(Err(e)),
        }),
        Poll::Pending => {
            tracing::debug!("quiet connection was busy; it closes after its exchange");
            None
        }
    }
}

/// Answers one request with `err` and closes: the client gets a reason instead of a reset.
async fn refuse(proxy: Arc<Proxy>, stream: TcpStream, err: ProxyError) {
    let err = Arc::new(err);
    let svc = service_fn(move |_req| {
        let err = err.clone();
        async move { Ok::<_, std::convert::Infallible>(respond::error(&err)) }
    });
    let mut b = http1_builder(&proxy);
    b.keep_alive(false);
    let served = b.serve_connection(TokioIo::new(stream), svc);
    let _ = tokio::time::timeout(proxy.settings.header_read_timeout * 2, served).await;
}
