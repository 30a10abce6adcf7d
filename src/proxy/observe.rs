//! One audit event and the metric increments per exchange, CONNECT tunnel and refused client,
//! from a single place: an `ExchangeLog` is started when the request arrives and finished
//! exactly once when its outcome is known.
//!
//! Later stages add what they learn through `event_mut()` (the policy decision, the inspection
//! report, body byte counts) before `finish`.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use http::{Method, StatusCode};

use crate::audit::{
    AuditEvent, EventAction, HttpFields, HttpRequest, HttpResponse, Outcome, UrlFields,
};
use crate::metrics::Direction;
use crate::proxy::Proxy;
use crate::proxy::error::ProxyError;
use crate::proxy::target::Target;

pub(crate) struct ExchangeLog {
    event: AuditEvent,
    started: Instant,
    method: Option<Method>,
}

impl ExchangeLog {
    pub(crate) fn start(action: EventAction, client: SocketAddr, method: Option<&Method>) -> Self {
        let mut event = AuditEvent::new(AuditEvent::new_id(), action, client, SystemTime::now());
        if let Some(m) = method {
            event.http = Some(HttpFields {
                request: HttpRequest {
                    method: m.as_str().to_owned(),
                    bytes: None,
                },
                response: None,
            });
        }
        Self {
            event,
            started: Instant::now(),
            method: method.cloned(),
        }
    }

    /// The incident id (for block pages).
    #[allow(dead_code)]
    pub(crate) fn id(&self) -> &str {
        self.event.id()
    }

    #[allow(dead_code)]
    pub(crate) fn event_mut(&mut self) -> &mut AuditEvent {
        &mut self.event
    }

    /// Where the request goes; the query string is dropped unless `audit.log_query`.
    pub(crate) fn target(&mut self, proxy: &Proxy, target: &Target, path_and_query: Option<&str>) {
        let scheme = if target.tls { "https" } else { "http" };
        self.event.url = Some(UrlFields::new(
            scheme,
            &target.host,
            target.port,
            path_and_query.unwrap_or(""),
            proxy.audit.log_query(),
        ));
    }

    /// The proxy answered instead of the upstream.
    pub(crate) fn error(&mut self, proxy: &Proxy, err: &ProxyError) {
        self.event.sluis.error = Some(err.kind());
        self.event.event.outcome = Outcome::Failure;
        if let ProxyError::Upstream { kind, .. } = err {
            proxy.metrics.upstream_error(kind);
        }
    }

    /// Ends an exchange answered with `status`.
    pub(crate) async fn finish(mut self, proxy: &Proxy, status: StatusCode) {
        if let Some(http) = self.event.http.as_mut() {
            http.response = Some(HttpResponse {
                status_code: status.as_u16(),
                bytes: None,
            });
        }
        self.record(proxy).await;
    }

    /// Ends a tunnel that moved `up` bytes to the upstream and `down` bytes back.
    pub(crate) async fn finish_tunnel(mut self, proxy: &Proxy, up: u64, down: u64) {
        proxy.metrics.bytes(Direction::Upload, up);
        proxy.metrics.bytes(Direction::Download, down);
        if let Some(http) = self.event.http.as_mut() {
            http.request.bytes = Some(up);
            http.response = Some(HttpResponse {
                status_code: 200,
                bytes: Some(down),
            });
        }
        self.record(proxy).await;
    }

    async fn record(mut self, proxy: &Proxy) {
        let elapsed = self.started.elapsed();
        self.event.set_duration(elapsed);
        if self.event.event.outcome == Outcome::Unknown {
            self.event.event.outcome = Outcome::Success;
        }
        if let Some(method) = &self.method {
            let s = &self.event.sluis;
            let category = s.destination.category.as_deref().unwrap_or("none");
            let rule = self.event.rule.as_ref().map(|r| r.id.as_str());
            proxy
                .metrics
                .request(s.action, s.mode, rule, category, method);
            proxy.metrics.request_duration(elapsed);
        }
        proxy.audit.record(self.event).await;
    }
}

/// A client refused by the allow-list: one event, no request read.
pub(crate) async fn acl_denied(proxy: &Proxy, client: SocketAddr) {
    let mut log = ExchangeLog::start(EventAction::AclDenied, client, None);
    log.event.event.outcome = Outcome::Failure;
    log.event.sluis.error = Some("client_denied");
    proxy.metrics.connection_refused("not_allowed");
    log.record(proxy).await;
}
