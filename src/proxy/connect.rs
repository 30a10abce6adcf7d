//! CONNECT: open the upstream connection first (so a failure is still an HTTP answer), then
//! answer 200 and splice the two byte streams, half-close included.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::proxy::Proxy;
use crate::proxy::body::{self, ProxyBody};
use crate::proxy::error::ProxyError;
use crate::proxy::idle::{Activity, ActivityIo};
use crate::proxy::observe::ExchangeLog;
use crate::proxy::service::Conn;
use crate::proxy::target::Target;

pub(crate) async fn handle(
    proxy: &Arc<Proxy>,
    conn: &Arc<Conn>,
    req: Request<Incoming>,
    log: &mut Option<ExchangeLog>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if conn.intercepted.is_some() {
        return Err(ProxyError::BadTarget(
            "CONNECT inside an intercepted connection".into(),
        ));
    }
    let target = connect_target(&req)?;
    if let Some(log) = log.as_mut() {
        log.target(proxy, &target, None);
    }
    let upstream = proxy
        .dialer
        .connect_tcp(&target.host, target.port)
        .await
        .map_err(|e| ProxyError::dial(&e))?;
    let on_upgrade = hyper::upgrade::on(req);
    let idle = proxy.settings.tunnel_idle_timeout;
    let conn = conn.clone();
    // From here the tunnel owns the audit event: it ends when the tunnel does.
    let log = log.take();
    let proxy2 = proxy.clone();
    proxy.tasks.spawn(async move {
        let (up, down) = match on_upgrade.await {
            Ok(client) => tunnel(TokioIo::new(client), upstream, idle).await,
            Err(e) => {
                tracing::debug!(client = %conn.client, error = %e, "CONNECT upgrade failed");
                (0, 0)
            }
        };
        if let Some(log) = log {
            log.finish_tunnel(&proxy2, up, down).await;
        }
        drop(conn);
    });
    Ok(Response::new(body::empty()))
}

/// `CONNECT host:port`: the authority form, port required.
fn connect_target(req: &Request<Incoming>) -> Result<Target, ProxyError> {
    let authority = req
        .uri()
        .authority()
        .ok_or_else(|| ProxyError::BadTarget("CONNECT needs host:port".into()))?;
    if authority.port_u16().is_none() {
        return Err(ProxyError::BadTarget("CONNECT needs host:port".into()));
    }
    Target::from_authority(authority, true, None)
}

/// Copies both ways until both directions have ended or the tunnel is idle too long. When one
/// side finishes sending, the other side's write half is shut down and the opposite direction
/// keeps flowing. Returns the bytes moved (client to upstream, upstream to client), as far as
/// they are known when the copy ends early.
async fn tunnel<C>(mut client: C, upstream: TcpStream, idle: Duration) -> (u64, u64)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let activity = Activity::new();
    let mut upstream = ActivityIo::new(upstream, activity.clone());
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    tokio::pin!(copy);
    loop {
        tokio::select! {
            res = &mut copy => {
                return match res {
                    Ok(moved) => moved,
                    Err(e) => {
                        tracing::debug!(error = %e, "tunnel ended with an error");
                        (0, 0)
                    }
                };
            }
            () = tokio::time::sleep_until(activity.deadline(idle)) => {
                if tokio::time::Instant::now() >= activity.deadline(idle) {
                    tracing::debug!("tunnel idle, closing");
                    return (0, 0);
                }
            }
        }
    }
}
