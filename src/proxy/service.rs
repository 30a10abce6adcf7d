//! The request service: one entry point for every request the proxy receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use http_body_util::BodyExt;

use crate::proxy::body::ProxyBody;
use crate::proxy::idle::{Activity, InFlight};
use crate::proxy::shard::Placed;
use crate::proxy::target::Target;
use crate::proxy::upgrade::{OnUpgrade, Upgraded};
use crate::proxy::{Proxy, connect, exchange};

/// One client connection, as the request path sees it.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Traffic and requests in flight, for the connection's timeouts.
    pub(crate) activity: Arc<Activity>,
    pub(crate) client: SocketAddr,
    /// The CONNECT target, when the requests come out of an intercepted tunnel.
    pub(crate) intercepted: Option<Target>,
    /// Held for as long as anything serves this client (tunnels included).
    pub(crate) slot: Arc<Slot>,
    /// Who takes the connection over once the answer being sent switches protocols.
    upgrade: Mutex<Option<oneshot::Sender<Upgraded>>>,
}

/// What a client connection counts in, for as long as anything serves it: the connection
/// limit, the open-connections gauge and its shard's load.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) _permit: OwnedSemaphorePermit,
    pub(crate) _open: crate::metrics::ConnectionGuard,
    pub(crate) _placed: Placed,
}

/// Serves one request. Never fails: every error becomes a response.
pub(crate) async fn handle(
    proxy: Arc<Proxy>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let in_flight = conn.activity.request();
    let connect = req.method() == Method::CONNECT;
    let res = if connect {
        connect::run(proxy, conn.clone(), req).await
    } else {
        exchange::run(proxy, conn.clone(), req).await
    };
    // A switch asked for on the way but not answered (the answer was replaced by an error, a
    // block page): the connection stays HTTP, and whoever waits for it learns so now.
    let switches =
        res.status() == StatusCode::SWITCHING_PROTOCOLS || (connect && res.status().is_success());
    if !switches {
        drop(conn.take_upgrade());
    }
    // In flight until the response body has been sent.
    Ok(res.map(|body| {
        Guarded {
            body,
            _in_flight: in_flight,
        }
        .boxed_unsync()
    }))
}

// === impl Conn ===

impl Conn {
    pub(crate) fn new(
        activity: Arc<Activity>,
        client: SocketAddr,
        intercepted: Option<Target>,
        slot: Arc<Slot>,
    ) -> Self {
        Self {
            activity,
            client,
            intercepted,
            slot,
            upgrade: Mutex::new(None),
        }
    }

    /// The connection itself, once the answer now being prepared (101, or 2xx to a CONNECT)
    /// has been written. Call it only when sending such an answer; the connection is handed
    /// over with the bytes the client sent after its request head. Fails if the connection
    /// ends first, or if the answer sent is not a switch after all.
    pub(crate) fn on_upgrade(&self) -> OnUpgrade {
        let (tx, rx) = oneshot::channel();
        *self.upgrade.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        rx
    }

    /// The taker of the connection, if an answer switched it. HTTP/1.1 serving only.
    pub(crate) fn take_upgrade(&self) -> Option<oneshot::Sender<Upgraded>> {
        self.upgrade
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

// === impl Guarded ===

/// A response body that keeps its request counted as in flight until it is done.
struct Guarded {
    body: ProxyBody,
    _in_flight: InFlight,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = crate::proxy::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
