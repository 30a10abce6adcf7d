//! One audit event and the metric increments per exchange, CONNECT tunnel and refused client,
//! from a single place: an `ExchangeLog` is started when the request arrives, learns the
//! decision, the inspection report and the byte counts as the exchange goes, and is finished
//! exactly once, when the response has been sent (or the exchange failed).
//!
//! Metrics are counted for every exchange; an audit event is written for every decision worth
//! explaining later (`audit.events`, default `decisions`): inspected bodies, `log` and `block`
//! outcomes, would-blocks, refusals and failures. Plain browsing no rule looked at stays out of
//! the audit log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{Method, StatusCode};

use crate::audit::{
    AuditEvent, AuditScope, EventAction, HttpFields, HttpRequest, HttpResponse, Outcome,
    PolicyAction, PolicyFields, PolicyMode, RuleFields, UrlFields,
};
use crate::inspect::Report;
use crate::metrics::Direction;
use crate::policy::{Action, Decision, Destination, Mode};
use crate::proxy::Proxy;
use crate::proxy::error::ProxyError;
use crate::proxy::target::Target;

pub(crate) struct ExchangeLog {
    event: AuditEvent,
    started: Instant,
    method: Option<Method>,
    /// Something happened that the audit log must show (a finding, inspection, a failure).
    notable: bool,
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
            notable: false,
        }
    }

    /// The incident id: shown on block pages, so an employee's report finds this event.
    pub(crate) fn id(&self) -> &str {
        self.event.id()
    }

    /// Where the request goes; the query string is dropped unless `audit.log_query`.
    pub(crate) fn target(&mut self, proxy: &Proxy, target: &Target, path_and_query: Option<&str>) {
        self.event.url = Some(UrlFields::new(
            target.scheme_str(),
            &target.host,
            target.port,
            path_and_query.unwrap_or(""),
            proxy.audit.log_query(),
        ));
    }

    pub(crate) fn policy_version(&mut self, version: &str) {
        self.event.sluis.policy = Some(PolicyFields {
            version: version.to_owned(),
        });
    }

    /// What the policy decided (the last call wins: the content stage refines the head stage).
    pub(crate) fn decision(&mut self, decision: &Decision) {
        self.destination(&decision.destination);
        self.event.sluis.action = Some(match decision.action {
            Action::Allow => PolicyAction::Allow,
            Action::Log => PolicyAction::Log,
            Action::Block => PolicyAction::Block,
        });
        self.event.sluis.mode = Some(match decision.mode {
            Mode::Enforce => PolicyMode::Enforce,
            Mode::Monitor => PolicyMode::Monitor,
        });
        self.event.sluis.would_block = decision.would_block();
        self.event.rule = decision.rule.as_ref().map(|r| RuleFields {
            id: r.id.clone(),
            reference: Some(r.ksp.clone()),
        });
        if decision.blocks() {
            self.event.event.outcome = Outcome::Failure;
        }
        self.notable |= decision.is_finding();
    }

    pub(crate) fn destination(&mut self, destination: &Destination) {
        self.event.sluis.destination.internal = destination.internal;
        self.event.sluis.destination.category = destination.category.as_deref().map(str::to_owned);
    }

    /// What inspection found. An inspected exchange is always audited.
    pub(crate) fn report(&mut self, proxy: &Proxy, report: &Report, took: std::time::Duration) {
        self.event.set_report(report, proxy.audit.hash_file_names());
        proxy.metrics.inspection(took, report);
        self.notable = true;
    }

    /// This exchange belongs in the audit log whatever the scope (e.g. a tunnel: the only record
    /// of traffic that went through uninspected).
    pub(crate) fn mark(&mut self) {
        self.notable = true;
    }

    pub(crate) fn request_bytes(&mut self, n: u64) {
        if let Some(http) = self.event.http.as_mut() {
            http.request.bytes = Some(n);
        }
    }

    /// The proxy answered instead of the upstream.
    pub(crate) fn error(&mut self, proxy: &Proxy, err: &ProxyError) {
        self.event.sluis.error = Some(err.kind());
        self.event.event.outcome = Outcome::Failure;
        self.notable = true;
        if let ProxyError::Upstream { kind, .. } = err {
            proxy.metrics.upstream_error(kind);
        }
    }

    /// Ends an exchange answered with `status` whose body sent `bytes` (when known). Usable
    /// where nothing may wait (a body's end or drop): when the audit queue is full, the event is
    /// handed to a task that waits for room.
    pub(crate) fn finish(mut self, proxy: &Arc<Proxy>, status: StatusCode, bytes: Option<u64>) {
        if let Some(n) = bytes {
            proxy.metrics.bytes(Direction::Download, n);
        }
        if let Some(http) = self.event.http.as_mut() {
            http.response = Some(HttpResponse {
                status_code: status.as_u16(),
                bytes,
            });
            if let Some(up) = http.request.bytes {
                proxy.metrics.bytes(Direction::Upload, up);
            }
        }
        if let Some(event) = self.complete(proxy)
            && let Err(event) = proxy.audit.try_queue(event)
        {
            let proxy = proxy.clone();
            tokio::spawn(async move { proxy.audit.record(*event).await });
        }
    }

    /// Ends a tunnel that moved `up` bytes to the upstream and `down` bytes back.
    pub(crate) async fn finish_tunnel(self, proxy: &Proxy, up: u64, down: u64) {
        self.finish_moved(proxy, StatusCode::OK, up, down).await;
    }

    /// Ends a switched connection (a WebSocket) that moved `up` bytes to the upstream and `down`
    /// bytes back; `ended_by` names the error when a message closed it. Its upgrade request was
    /// counted as an exchange of its own.
    pub(crate) async fn finish_upgrade(
        mut self,
        proxy: &Proxy,
        up: u64,
        down: u64,
        ended_by: Option<&'static str>,
    ) {
        // Shown as the GET it was, but not counted as a request again (no `self.method`).
        self.event.http = Some(HttpFields {
            request: HttpRequest {
                method: Method::GET.as_str().to_owned(),
                bytes: None,
            },
            response: None,
        });
        if let Some(kind) = ended_by {
            self.event.event.outcome = Outcome::Failure;
            self.event.sluis.error = Some(kind);
        }
        self.finish_moved(proxy, StatusCode::SWITCHING_PROTOCOLS, up, down)
            .await;
    }

    /// Ends a connection that moved `up` bytes to the upstream and `down` bytes back after
    /// `status`: counts them, and records the event when the audit log should get it.
    async fn finish_moved(mut self, proxy: &Proxy, status: StatusCode, up: u64, down: u64) {
        proxy.metrics.bytes(Direction::Upload, up);
        proxy.metrics.bytes(Direction::Download, down);
        if let Some(http) = self.event.http.as_mut() {
            http.request.bytes = Some(up);
            http.response = Some(HttpResponse {
                status_code: status.as_u16(),
                bytes: Some(down),
            });
        }
        if let Some(event) = self.complete(proxy) {
            proxy.audit.record(event).await;
        }
    }

    /// Counts the exchange; returns the event when the audit log should get it.
    fn complete(mut self, proxy: &Proxy) -> Option<AuditEvent> {
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
        let audited =
            audited(proxy, self.notable) || self.event.event.action == EventAction::AclDenied;
        audited.then_some(self.event)
    }
}

/// Whether an event goes to the audit log under `audit.events`: a `notable` one always, any
/// other only when every exchange is logged.
pub(crate) fn audited(proxy: &Proxy, notable: bool) -> bool {
    notable || proxy.audit_scope == AuditScope::All
}

/// A client refused by the allow-list: one event, no request read.
pub(crate) async fn acl_denied(proxy: &Proxy, client: SocketAddr) {
    let mut log = ExchangeLog::start(EventAction::AclDenied, client, None);
    log.event.event.outcome = Outcome::Failure;
    log.event.sluis.error = Some("client_denied");
    proxy.metrics.connection_refused("not_allowed");
    if let Some(event) = log.complete(proxy) {
        proxy.audit.record(event).await;
    }
}

/// Work that can only happen when the exchange ends (e.g. the monitor-mode verdict, once the
/// teed request body has been read).
pub(crate) type Late = Box<dyn FnOnce(&mut ExchangeLog, &Proxy) + Send>;

/// The response body, counted; finishes the exchange's log when it ends or is dropped (a
/// client that goes away mid-download still gets its exchange logged).
pub(crate) struct Logged {
    inner: crate::proxy::ProxyBody,
    state: Option<Finishing>,
    bytes: u64,
}

struct Finishing {
    log: ExchangeLog,
    proxy: Arc<Proxy>,
    status: StatusCode,
    upload: Option<Arc<std::sync::atomic::AtomicU64>>,
    late: Option<Late>,
}

impl Logged {
    pub(crate) fn new(
        inner: crate::proxy::ProxyBody,
        log: ExchangeLog,
        proxy: Arc<Proxy>,
        status: StatusCode,
        upload: Option<Arc<std::sync::atomic::AtomicU64>>,
        late: Option<Late>,
    ) -> Self {
        Self {
            inner,
            state: Some(Finishing {
                log,
                proxy,
                status,
                upload,
                late,
            }),
            bytes: 0,
        }
    }

    fn finish(&mut self) {
        let Some(f) = self.state.take() else { return };
        let Finishing {
            mut log,
            proxy,
            status,
            upload,
            late,
        } = f;
        if let Some(up) = upload {
            log.request_bytes(up.load(std::sync::atomic::Ordering::Relaxed));
        }
        if let Some(late) = late {
            late(&mut log, &proxy);
        }
        log.finish(&proxy, status, Some(self.bytes));
    }
}

impl http_body::Body for Logged {
    type Data = bytes::Bytes;
    type Error = crate::proxy::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
            }
            std::task::Poll::Ready(None) => this.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.finish();
    }
}
