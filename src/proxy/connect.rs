//! CONNECT: ask the policy whether to refuse, tunnel untouched, or intercept. A tunnel opens the
//! upstream connection first (so a failure is still an HTTP answer), then answers 200 and splices
//! the two byte streams, half-close included. An interception answers 200 and serves the
//! requests inside (`intercept`).

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::audit::EventAction;
use crate::policy::{ConnectDecision, ConnectFacts};
use crate::proxy::body::{self, ProxyBody};
use crate::proxy::error::ProxyError;
use crate::proxy::observe::ExchangeLog;
use crate::proxy::service::Conn;
use crate::proxy::target::Target;
use crate::proxy::{Proxy, intercept, respond, tunnel};

/// Serves one CONNECT. Never fails: errors become responses.
pub(crate) async fn run(
    proxy: Arc<Proxy>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let mut log = ExchangeLog::start(EventAction::Connect, conn.client, Some(req.method()));
    let step = match connect_target(&req) {
        Ok(target) => decide(&proxy, &conn, &target, &mut log).map(|route| (target, route)),
        Err(err) => Err(err),
    };
    let (target, route) = match step {
        Ok(step) => step,
        Err(err) => return fail(&proxy, &conn, log, &err),
    };
    drop(req);
    if let Route::Intercept { blocked } = route {
        let on_upgrade = conn.on_upgrade();
        // The log ends when the intercepted tunnel does; its requests have their own logs.
        let task_proxy = proxy.clone();
        proxy.tasks.spawn(async move {
            match on_upgrade.await {
                Ok(client) => {
                    intercept::serve(task_proxy.clone(), conn, target, client, !blocked).await;
                }
                Err(_) => tracing::debug!("CONNECT upgrade failed: the client left"),
            }
            log.finish(&task_proxy, http::StatusCode::OK, None);
        });
        return Response::new(body::empty());
    }
    let upstream = match proxy.dialer.connect_tcp(&target.host, target.port).await {
        Ok(upstream) => upstream,
        Err(e) => return fail(&proxy, &conn, log, &ProxyError::dial(&e)),
    };
    let idle = proxy.settings.tunnel_idle_timeout;
    log.mark();
    let on_upgrade = conn.on_upgrade();
    let task_proxy = proxy.clone();
    proxy.tasks.spawn(async move {
        let (up, down) = match on_upgrade.await {
            Ok(client) => tunnel::run(client, upstream, idle).await,
            Err(_) => {
                tracing::debug!(client = %conn.client, "CONNECT upgrade failed: the client left");
                (0, 0)
            }
        };
        log.finish_tunnel(&task_proxy, up, down).await;
        drop(conn);
    });
    Response::new(body::empty())
}

/// Where a CONNECT the policy allows goes.
enum Route {
    Tunnel,
    /// `blocked`: every request inside gets the block page.
    Intercept {
        blocked: bool,
    },
}

/// The policy's answer; `Err` refuses the CONNECT.
fn decide(
    proxy: &Proxy,
    conn: &Conn,
    target: &Target,
    log: &mut ExchangeLog,
) -> Result<Route, ProxyError> {
    if conn.intercepted.is_some() {
        return Err(ProxyError::BadTarget(
            "CONNECT inside an intercepted connection".into(),
        ));
    }
    log.target(proxy, target, None);
    let policy = proxy.policy.current();
    log.policy_version(policy.version());
    let client = conn.client.ip().to_canonical();
    let facts = ConnectFacts {
        client,
        user: None,
        host: &target.host,
        port: target.port,
    };
    let decision = policy.check_connect(&facts);
    log.decision(decision.decision());
    match decision {
        // Blocked outright: if the tunnel can be intercepted, its requests get the block page
        // (a browser shows it; a refused CONNECT only shows a network error). Otherwise the
        // CONNECT itself is refused.
        ConnectDecision::Block(d) if proxy.minter.is_none() => {
            Err(ProxyError::Blocked(d.rule.map(|r| r.id.clone())))
        }
        ConnectDecision::Block(_) if proxy.minter.is_some() => {
            Ok(Route::Intercept { blocked: true })
        }
        ConnectDecision::Intercept(_) if proxy.minter.is_some() => {
            Ok(Route::Intercept { blocked: false })
        }
        ConnectDecision::Block(_) | ConnectDecision::Intercept(_) | ConnectDecision::Tunnel(_) => {
            Ok(Route::Tunnel)
        }
    }
}

fn fail(
    proxy: &Arc<Proxy>,
    conn: &Conn,
    mut log: ExchangeLog,
    err: &ProxyError,
) -> Response<ProxyBody> {
    tracing::debug!(client = %conn.client, error = %err, kind = err.kind(), "CONNECT answered by the proxy");
    log.error(proxy, err);
    let res = respond::error(err);
    log.finish(proxy, res.status(), None);
    res
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
