//! One exchange, plain or out of an intercepted tunnel: ask the policy about the head, inspect
//! the body when the policy needs its content, then forward or answer with a block page. Every
//! outcome ends in the exchange's log (audit event and metrics).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use http::header;
use http::request::Parts;
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::oneshot;

use crate::audit::EventAction;
use crate::inspect::{BodyMeta, Report};
use crate::policy::{Decision, InspectFailure, Policy, RequestCheck, RequestFacts};
use crate::proxy::blockpage::{self, BlockInfo};
use crate::proxy::body::{self, ProxyBody};
use crate::proxy::error::ProxyError;
use crate::proxy::forward::Switch;
use crate::proxy::hold::{self, Counted, Held, HoldError, Tee};
use crate::proxy::observe::{ExchangeLog, Late, Logged};
use crate::proxy::service::Conn;
use crate::proxy::target::Target;
use crate::proxy::websocket::{self, Relay};
use crate::proxy::{Proxy, forward, hop, respond};
use crate::spool::Spool;

/// Serves one non-CONNECT request. Never fails: errors become responses.
pub(crate) async fn run(
    proxy: Arc<Proxy>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let mut log = ExchangeLog::start(EventAction::Exchange, conn.client, Some(req.method()));
    match decide(&proxy, &conn, req, &mut log).await {
        Ok(Outcome::Forwarded { res, upload, late }) => {
            let status = res.status();
            res.map(|b| Logged::new(b, log, proxy, status, Some(upload), late).boxed_unsync())
        }
        Ok(Outcome::Answered(res)) => {
            log.finish(&proxy, res.status(), None);
            res
        }
        Err(err) => {
            tracing::debug!(client = %conn.client, error = %err, kind = err.kind(), "answered by the proxy");
            log.error(&proxy, &err);
            let res = respond::error(&err);
            log.finish(&proxy, res.status(), None);
            res
        }
    }
}

enum Outcome {
    /// The upstream answered; `upload` counts the request body bytes sent.
    Forwarded {
        res: Response<ProxyBody>,
        upload: Arc<AtomicU64>,
        late: Option<Late>,
    },
    /// The proxy answered itself (a block page).
    Answered(Response<ProxyBody>),
}

/// The request head as the policy sees it, owned so it can outlive the request.
#[derive(Clone)]
pub(crate) struct Facts {
    pub(crate) client: IpAddr,
    pub(crate) method: String,
    pub(crate) target: Target,
    pub(crate) path: String,
    pub(crate) has_body: bool,
}

impl Facts {
    pub(crate) fn view(&self) -> RequestFacts<'_> {
        RequestFacts {
            client: self.client,
            user: None,
            method: &self.method,
            scheme: self.target.scheme_str(),
            host: &self.target.host,
            port: self.target.port,
            path: &self.path,
            has_body: self.has_body,
        }
    }
}

async fn decide(
    proxy: &Arc<Proxy>,
    conn: &Arc<Conn>,
    req: Request<Incoming>,
    log: &mut ExchangeLog,
) -> Result<Outcome, ProxyError> {
    let target = target_of(&req, conn)?;
    log.target(
        proxy,
        &target,
        req.uri().path_and_query().map(|p| p.as_str()),
    );
    // One snapshot for the whole exchange: a reload in the middle does not change its rules.
    let policy = proxy.policy.current();
    log.policy_version(policy.version());
    let facts = Facts {
        client: conn.client.ip().to_canonical(),
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        has_body: !http_body::Body::is_end_stream(req.body()),
        target,
    };
    match policy.check_request(&facts.view()) {
        RequestCheck::Decided(decision) => {
            log.decision(&decision);
            if decision.blocks() {
                return Ok(Outcome::Answered(block(
                    &policy, &decision, log, &facts, &req, None,
                )));
            }
            let mut req = req;
            let switch = upgrade_switch(proxy, conn, &policy, &facts, &mut req, &decision)?;
            let upload = Arc::new(AtomicU64::new(0));
            let req = req.map(|b| Counted::new(b, upload.clone()).boxed_unsync());
            let res = forward::forward(proxy, conn, &facts.target, req, switch).await?;
            Ok(Outcome::Forwarded {
                res,
                upload,
                late: None,
            })
        }
        RequestCheck::Inspect { hold } => {
            let destination = policy.classify(&facts.target.host);
            log.destination(&destination);
            if !destination.internal && proxy.audit.refuse_uploads() {
                return Err(ProxyError::AuditUnavailable);
            }
            if hold {
                held(proxy, conn, policy, facts, req, log).await
            } else {
                teed(proxy, conn, policy, facts, req).await
            }
        }
    }
}

/// For a request that asks to switch protocols (a WebSocket), how the switched connection will
/// be relayed and logged; `None` when there is no switch to make, or it is declined.
/// `decision` is the one for the request itself.
fn upgrade_switch(
    proxy: &Arc<Proxy>,
    conn: &Conn,
    policy: &Arc<Policy>,
    facts: &Facts,
    req: &mut Request<Incoming>,
    decision: &Decision,
) -> Result<Option<Switch>, ProxyError> {
    if req.version() != Version::HTTP_11 || !hop::wants_upgrade(req.headers()) {
        return Ok(None);
    }
    let Some(relay) = websocket::plan(policy, facts, req.headers(), conn.client) else {
        tracing::debug!(host = %facts.target.host, "protocol switch declined: it cannot be inspected");
        return Ok(None);
    };
    if let Relay::Inspect(_) = relay {
        if !decision.destination.internal && proxy.audit.refuse_uploads() {
            return Err(ProxyError::AuditUnavailable);
        }
        websocket::refuse_extensions(req.headers_mut());
    }
    let mut log = ExchangeLog::start(EventAction::Upgrade, conn.client, None);
    log.target(proxy, &facts.target, Some(&facts.path));
    log.policy_version(policy.version());
    log.decision(decision);
    // The only record of what went through after the switch.
    log.mark();
    Ok(Some(Switch { relay, log }))
}

/// Enforce mode: read the whole body while inspecting it; forward it only if the verdict
/// allows. A blocked upload leaks not one byte.
async fn held(
    proxy: &Arc<Proxy>,
    conn: &Arc<Conn>,
    policy: Arc<Policy>,
    facts: Facts,
    req: Request<Incoming>,
    log: &mut ExchangeLog,
) -> Result<Outcome, ProxyError> {
    let (head, body) = req.into_parts();
    let session = policy.engine().session(body_meta(&head));
    let started = Instant::now();
    let held = match hold::hold(body, session, Spool::new(proxy.spool.clone())).await {
        Ok(held) => held,
        Err(HoldError::Client(e)) => return Err(ProxyError::ClientBody(e.to_string())),
        Err(e @ (HoldError::Spool(_) | HoldError::Inspector)) => {
            tracing::warn!(error = %e, "cannot hold a body for inspection");
            let decision = policy.on_error(&facts.view(), InspectFailure::Failed);
            log.decision(&decision);
            let req = Request::from_parts(head, body::empty());
            if decision.blocks() {
                return Ok(Outcome::Answered(block(
                    &policy, &decision, log, &facts, &req, None,
                )));
            }
            return Err(ProxyError::HoldFailed);
        }
    };
    tracing::debug!(
        held_ms = started.elapsed().as_millis(),
        "body read, inspected and held"
    );
    let (spool, report, continuation) = match held {
        Held::Complete {
            spool,
            trailers,
            report,
        } => (spool, report, Continuation::Trailers(trailers)),
        Held::Settled {
            spool,
            rest,
            session,
            report,
        } => (spool, report, Continuation::Rest(rest, session)),
    };
    let decision = policy.evaluate_body(&facts.view(), &report);
    log.decision(&decision);
    if decision.blocks() {
        log.report(proxy, &report, started.elapsed());
        let req = Request::from_parts(head, body::empty());
        return Ok(Outcome::Answered(block(
            &policy,
            &decision,
            log,
            &facts,
            &req,
            Some(&report),
        )));
    }
    match continuation {
        Continuation::Trailers(trailers) => {
            log.report(proxy, &report, started.elapsed());
            let upload = Arc::new(AtomicU64::new(spool.len()));
            let req = Request::from_parts(head, hold::release(spool, trailers));
            let res = forward::forward(proxy, conn, &facts.target, req, None).await?;
            // The bytes were counted while held; the released body is not counted again.
            Ok(Outcome::Forwarded {
                res,
                upload,
                late: None,
            })
        }
        Continuation::Rest(rest, session) => {
            // Settled early: the verdict stands, the rest streams, and the session reads along
            // so the audit gets the final report (real sizes and hashes).
            let upload = Arc::new(AtomicU64::new(spool.len()));
            let (done, final_report) = oneshot::channel::<Report>();
            let rest = Tee::new(rest, *session, done, upload.clone()).boxed_unsync();
            let req = Request::from_parts(head, hold::release_then(spool, rest));
            let res = forward::forward(proxy, conn, &facts.target, req, None).await?;
            let late: Late = Box::new(move |log, proxy| {
                let mut final_report = final_report;
                let report = final_report.try_recv().unwrap_or(report);
                log.report(proxy, &report, started.elapsed());
            });
            Ok(Outcome::Forwarded {
                res,
                upload,
                late: Some(late),
            })
        }
    }
}

/// What follows the held part of a body that was allowed.
enum Continuation {
    /// The body was read to its end (with these trailers, if any).
    Trailers(Option<http::HeaderMap>),
    /// The session settled: the rest of the body, and the session to read it along.
    Rest(Incoming, Box<crate::inspect::Session>),
}

/// Monitor mode: stream the body upstream while the inspector reads along; the verdict is
/// logged (as a would-block) when the exchange ends.
async fn teed(
    proxy: &Arc<Proxy>,
    conn: &Arc<Conn>,
    policy: Arc<Policy>,
    facts: Facts,
    req: Request<Incoming>,
) -> Result<Outcome, ProxyError> {
    let (head, body) = req.into_parts();
    let session = policy.engine().session(body_meta(&head));
    let (done, report) = oneshot::channel::<Report>();
    let upload = Arc::new(AtomicU64::new(0));
    let body = Tee::new(body, session, done, upload.clone()).boxed_unsync();
    let started = Instant::now();
    let late_facts = facts.clone();
    let late: Late = Box::new(move |log, proxy| {
        let mut report = report;
        let decision = match report.try_recv() {
            Ok(report) => {
                log.report(proxy, &report, started.elapsed());
                policy.evaluate_body(&late_facts.view(), &report)
            }
            // The upstream answered before the whole body was read.
            Err(_) => policy.on_error(&late_facts.view(), InspectFailure::Failed),
        };
        log.decision(&decision);
    });
    let req = Request::from_parts(head, body);
    let res = forward::forward(proxy, conn, &facts.target, req, None).await?;
    Ok(Outcome::Forwarded {
        res,
        upload,
        late: Some(late),
    })
}

/// Where the request goes: the absolute-form URI on the proxy port; inside an intercepted
/// tunnel, the request's own authority (`:authority` or `Host`), so what the policy judges is
/// where the bytes go.
fn target_of(req: &Request<Incoming>, conn: &Conn) -> Result<Target, ProxyError> {
    let Some(tunnel) = &conn.intercepted else {
        return Target::from_absolute(req.uri());
    };
    let authority = req.uri().authority().cloned().or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse().ok())
    });
    match authority {
        Some(a) => Target::from_authority(&a, tunnel.tls, Some(tunnel.port)),
        None => Ok(tunnel.clone()),
    }
}

/// How the body is framed, and the file name when the request names one outside the body.
fn body_meta(head: &Parts) -> BodyMeta {
    let text = |name: header::HeaderName| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    BodyMeta {
        content_type: text(header::CONTENT_TYPE),
        content_encoding: text(header::CONTENT_ENCODING),
        file_name: file_name_hint(head),
    }
}

/// Raw uploads carry the file name outside the body: in an API header (Dropbox), in
/// `Content-Disposition`, or as the last path segment (`PUT /upload/report.pdf`, transfer.sh).
fn file_name_hint(head: &Parts) -> Option<String> {
    let header = |name: &str| head.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(arg) = header("dropbox-api-arg")
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(arg)
        && let Some(path) = v.get("path").and_then(|p| p.as_str())
    {
        return last_segment(path);
    }
    if let Some(cd) = header("content-disposition")
        && let Some(name) = cd
            .split(';')
            .find_map(|p| p.trim().strip_prefix("filename="))
    {
        return Some(name.trim_matches('"').to_owned());
    }
    last_segment(head.uri.path()).filter(|s| s.contains('.'))
}

fn last_segment(path: &str) -> Option<String> {
    let seg = path.rsplit('/').next().filter(|s| !s.is_empty())?;
    Some(
        percent_encoding::percent_decode_str(seg)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// The block page, in the language of the client's `Accept` header.
fn block<B>(
    policy: &Policy,
    decision: &Decision,
    log: &ExchangeLog,
    facts: &Facts,
    req: &Request<B>,
    report: Option<&Report>,
) -> Response<ProxyBody> {
    let rule = decision.rule.as_deref();
    let info = BlockInfo {
        incident: log.id().to_owned(),
        rule_id: rule.map_or_else(|| "default".to_owned(), |r| r.id.clone()),
        ksp: rule.map(|r| r.ksp.clone()).unwrap_or_default(),
        reason_nl: rule.map_or_else(
            || "Dit verzoek is niet toegestaan door het beleid.".to_owned(),
            |r| r.reason_nl.clone(),
        ),
        reason_en: rule.map_or_else(
            || "This request is not allowed by the policy.".to_owned(),
            |r| r.reason_en.clone(),
        ),
        request: format!("{} {}{}", facts.method, facts.target, facts.path),
        files: report
            .map(|r| r.files.iter().filter_map(|f| f.name.clone()).collect())
            .unwrap_or_default(),
        contact: contact_line(policy),
    };
    tracing::info!(
        incident = %info.incident,
        rule = %info.rule_id,
        host = %facts.target.host,
        method = %facts.method,
        "blocked"
    );
    blockpage::render(&info, req.headers().get(header::ACCEPT))
}

fn contact_line(policy: &Policy) -> String {
    let c = policy.contact();
    let mut parts = vec![c.name.clone()];
    parts.extend(c.email.clone());
    parts.extend(c.phone.clone());
    parts.extend(c.url.clone());
    parts.retain(|p| !p.is_empty());
    parts.join(", ")
}
