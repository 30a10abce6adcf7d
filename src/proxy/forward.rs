//! Forwarding an exchange upstream: rewrite the head for the next hop, send it through the
//! pooled client, pass the response back, and splice upgraded connections.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;

use crate::proxy::body::{self, ProxyBody};
use crate::proxy::error::ProxyError;
use crate::proxy::observe::ExchangeLog;
use crate::proxy::service::Conn;
use crate::proxy::target::Target;
use crate::proxy::upgrade::OnUpgrade;
use crate::proxy::websocket::{self, Relay};
use crate::proxy::{Proxy, hop};

/// What follows a switch of protocols: how the connection is relayed, and its audit record.
pub(crate) struct Switch {
    pub(crate) relay: Relay,
    pub(crate) log: ExchangeLog,
}

/// Sends the request upstream and returns the upstream's response, ready for the client. A
/// request may switch protocols only with a `switch` that says what follows; without one its
/// `Upgrade` is dropped.
pub(crate) async fn forward(
    proxy: &Arc<Proxy>,
    conn: &Conn,
    target: &Target,
    req: Request<ProxyBody>,
    switch: Option<Switch>,
) -> Result<Response<ProxyBody>, ProxyError> {
    // Upgrades are HTTP/1.1 only (an h2 client never asks for one this way).
    let upgrade =
        switch.is_some() && req.version() == Version::HTTP_11 && hop::wants_upgrade(req.headers());
    let (mut head, body) = req.into_parts();
    prepare_request(proxy, conn, target, &mut head, upgrade)?;
    let req = Request::from_parts(head, body);

    let upstream = proxy.upstream();
    let client = if upgrade {
        &upstream.upgrade
    } else {
        &upstream.client
    };
    let mut res = client
        .request(req)
        .await
        .map_err(|e| ProxyError::from_client(&e))?;

    let switching = res.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching
        && upgrade
        && let Some(switch) = switch
    {
        splice_upgrade(
            proxy,
            conn.on_upgrade(),
            hyper::upgrade::on(&mut res),
            switch,
        );
    }
    prepare_response(proxy, &mut res, switching);
    Ok(res.map(body::incoming))
}

/// Rewrites the request head for the upstream hop.
fn prepare_request(
    proxy: &Proxy,
    conn: &Conn,
    target: &Target,
    head: &mut http::request::Parts,
    upgrade: bool,
) -> Result<(), ProxyError> {
    let via = via_value(proxy, head.version);
    head.uri = target.uri(head.uri.path_and_query())?;
    // The pooled client speaks whatever the upstream negotiated; HTTP/1.1 semantics are the
    // common ground (an h2 upstream gets the request as h2).
    head.version = Version::HTTP_11;
    let h = &mut head.headers;
    hop::strip(h, upgrade);
    // The client sets Host (HTTP/1.1) or :authority (h2) from the URI, which names the target.
    h.remove(header::HOST);
    // 100-continue is between the client and us: hyper sends it when the body is first read.
    h.remove(header::EXPECT);
    if let Some(via) = via {
        h.append(header::VIA, via);
    }
    // Plain HTTP goes upstream as HTTP/1.1; over TLS, an origin not known to speak HTTP/1.1
    // only may get HTTP/2, whose header table would pin the client's read buffer.
    if target.tls && proxy.origins.known(&target.host, target.port) != Some(false) {
        hop::own_values(h);
    }
    if proxy.settings.forwarded_for
        && let Ok(v) = HeaderValue::from_str(&conn.client.ip().to_string())
    {
        h.append("x-forwarded-for", v);
    }
    Ok(())
}

fn prepare_response<B>(proxy: &Proxy, res: &mut Response<B>, switching: bool) {
    // We speak HTTP/1.1 (or h2) to the client whatever the upstream spoke.
    *res.version_mut() = Version::HTTP_11;
    let headers = res.headers_mut();
    hop::strip(headers, switching);
    if let Some(via) = &proxy.settings.via {
        headers.append(header::VIA, via.clone());
    }
}

/// `Via` names the protocol version the message was received with.
fn via_value(proxy: &Proxy, version: Version) -> Option<HeaderValue> {
    let via = proxy.settings.via.as_ref()?;
    if version == Version::HTTP_2 {
        let text = via.to_str().ok()?.replacen("1.1 ", "2 ", 1);
        return HeaderValue::from_str(&text).ok();
    }
    Some(via.clone())
}

/// Joins the client's and the upstream's upgraded connections once both sides switched: spliced,
/// or with the client's WebSocket messages inspected.
fn splice_upgrade(
    proxy: &Arc<Proxy>,
    client: OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    switch: Switch,
) {
    let owned = Arc::clone(proxy);
    proxy.tasks.spawn(async move {
        let proxy = owned;
        let (client, upstream) = tokio::join!(client, upstream);
        let (mut client, mut upstream) = match (client, upstream) {
            (Ok(client), Ok(upstream)) => (client, TokioIo::new(upstream)),
            (Err(_), _) => {
                tracing::debug!("upgrade failed: the client connection ended first");
                return;
            }
            (_, Err(e)) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let Switch { relay, log } = switch;
        let (up, down, ended_by) = match &relay {
            Relay::Splice => {
                match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    Ok((up, down)) => (up, down, None),
                    Err(e) => {
                        tracing::debug!(error = %e, "upgraded connection ended with an error");
                        (0, 0, None)
                    }
                }
            }
            Relay::Inspect(messages) => websocket::relay(&proxy, client, upstream, messages).await,
        };
        log.finish_upgrade(&proxy, up, down, ended_by).await;
    });
}
