//! The request service: one entry point for every request the proxy receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;

use crate::proxy::Proxy;
use crate::proxy::body::ProxyBody;
use crate::proxy::error::ProxyError;
use crate::proxy::target::Target;
use crate::proxy::{connect, forward, respond};

/// One client connection, as the request path sees it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) client: SocketAddr,
    /// The CONNECT target, when the requests come out of an intercepted tunnel.
    pub(crate) intercepted: Option<Target>,
    /// Held for as long as anything serves this client (tunnels included), so the connection
    /// limit counts every client connection.
    pub(crate) _permit: Option<Arc<OwnedSemaphorePermit>>,
}

/// Serves one request. Never fails: every error becomes a response from `respond`.
pub(crate) async fn handle(
    proxy: Arc<Proxy>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let result = if req.method() == Method::CONNECT {
        connect::handle(&proxy, &conn, req).await
    } else {
        exchange(&proxy, &conn, req).await
    };
    Ok(result.unwrap_or_else(|err| {
        tracing::debug!(client = %conn.client, error = %err, kind = err.kind(), "answered by the proxy");
        respond::error(&err)
    }))
}

async fn exchange(
    proxy: &Arc<Proxy>,
    conn: &Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let target = match &conn.intercepted {
        None => Target::from_absolute(req.uri())?,
        Some(tunnel) => inner_target(&req, tunnel)?,
    };
    forward::forward(proxy, conn, &target, req).await
}

/// Inside an intercepted tunnel the request names its host (`:authority` or `Host`); the
/// connection goes where the request says, so what the policy judged is where bytes go.
fn inner_target(req: &Request<Incoming>, tunnel: &Target) -> Result<Target, ProxyError> {
    let authority = req.uri().authority().cloned().or_else(|| {
        req.headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse().ok())
    });
    match authority {
        Some(a) => Target::from_authority(&a, true, Some(tunnel.port)),
        None => Ok(tunnel.clone()),
    }
}
