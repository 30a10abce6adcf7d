//! The request service: one entry point for every request the proxy receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;

use http_body_util::BodyExt;

use crate::proxy::body::ProxyBody;
use crate::proxy::idle::{Activity, InFlight};
use crate::proxy::target::Target;
use crate::proxy::{Proxy, connect, exchange};

/// One client connection, as the request path sees it.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Traffic and requests in flight, for the connection's timeouts.
    pub(crate) activity: Arc<Activity>,
    pub(crate) client: SocketAddr,
    /// The CONNECT target, when the requests come out of an intercepted tunnel.
    pub(crate) intercepted: Option<Target>,
    /// Held for as long as anything serves this client (tunnels included), so the connection
    /// limit counts every client connection.
    pub(crate) _permit: Option<Arc<OwnedSemaphorePermit>>,
    /// Keeps the open-connections gauge up for as long as the permit is held.
    pub(crate) _open: Option<Arc<crate::metrics::ConnectionGuard>>,
}

/// Serves one request. Never fails: every error becomes a response.
pub(crate) async fn handle(
    proxy: Arc<Proxy>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let in_flight = conn.activity.request();
    let res = if req.method() == Method::CONNECT {
        connect::run(proxy, conn, req).await
    } else {
        exchange::run(proxy, conn, req).await
    };
    // In flight until the response body has been sent.
    Ok(res.map(|body| {
        Guarded {
            body,
            _in_flight: in_flight,
        }
        .boxed_unsync()
    }))
}

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
