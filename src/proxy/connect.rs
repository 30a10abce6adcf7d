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
use crate::proxy::service::Conn;
use crate::proxy::target::Target;

pub(crate) async fn handle(
    proxy: &Arc<Proxy>,
    conn: &Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if conn.intercepted.is_some() {
        return Err(ProxyError::BadTarget(
            "CONNECT inside an intercepted connection".into(),
        ));
    }
    let target = connect_target(&req)?;
    let upstream = proxy
        .dialer
        .connect_tcp(&target.host, target.port)
        .await
        .map_err(|e| ProxyError::dial(&e))?;
    let on_upgrade = hyper::upgrade::on(req);
    let idle = proxy.settings.tunnel_idle_timeout;
    let conn = conn.clone();
    proxy.tasks.spawn(async move {
        match on_upgrade.await {
            Ok(client) => tunnel(TokioIo::new(client), upstream, idle).await,
            Err(e) => tracing::debug!(client = %conn.client, error = %e, "CONNECT upgrade failed"),
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
/// keeps flowing.
async fn tunnel<C>(mut client: C, upstream: TcpStream, idle: Duration)
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
                if let Err(e) = res {
                    tracing::debug!(error = %e, "tunnel ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(activity.deadline(idle)) => {
                if tokio::time::Instant::now() >= activity.deadline(idle) {
                    tracing::debug!("tunnel idle, closing");
                    return;
                }
            }
        }
    }
}
