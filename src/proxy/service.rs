//! The request service: one entry point for every request the proxy receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;

use crate::proxy::body::ProxyBody;
use crate::proxy::target::Target;
use crate::proxy::{Proxy, connect, exchange};

/// One client connection, as the request path sees it.
#[derive(Debug)]
pub(crate) struct Conn {
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
    if req.method() == Method::CONNECT {
        Ok(connect::run(proxy, conn, req).await)
    } else {
        Ok(exchange::run(proxy, conn, req).await)
    }
}
