//! The request service: one entry point for every request the proxy receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;

use crate::audit::EventAction;
use crate::proxy::Proxy;
use crate::proxy::body::ProxyBody;
use crate::proxy::error::ProxyError;
use crate::proxy::observe::ExchangeLog;
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
    /// Keeps the open-connections gauge up for as long as the permit is held.
    pub(crate) _open: Option<Arc<crate::metrics::ConnectionGuard>>,
}

/// Serves one request. Never fails: every error becomes a response from `respond`.
pub(crate) async fn handle(
    proxy: Arc<Proxy>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let connect = req.method() == Method::CONNECT;
    let action = if connect {
        EventAction::Connect
    } else {
        EventAction::Exchange
    };
    // One event per request: finished below, or (a CONNECT that became a tunnel) by the tunnel.
    let mut log = Some(ExchangeLog::start(action, conn.client, Some(req.method())));
    let result = if connect {
        connect::handle(&proxy, &conn, req, &mut log).await
    } else {
        exchange(&proxy, &conn, req, log.as_mut()).await
    };
    let res = result.unwrap_or_else(|err| {
        tracing::debug!(client = %conn.client, error = %err, kind = err.kind(), "answered by the proxy");
        if let Some(log) = log.as_mut() {
            log.error(&proxy, &err);
        }
        respond::error(&err)
    });
    if let Some(log) = log {
        log.finish(&proxy, res.status()).await;
    }
    Ok(res)
}

async fn exchange(
    proxy: &Arc<Proxy>,
    conn: &Arc<Conn>,
    req: Request<Incoming>,
    log: Option<&mut ExchangeLog>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let target = match &conn.intercepted {
        None => Target::from_absolute(req.uri())?,
        Some(tunnel) => inner_target(&req, tunnel)?,
    };
    if let Some(log) = log {
        let path = req.uri().path_and_query().map(|p| p.as_str());
        log.target(proxy, &target, path);
    }
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
