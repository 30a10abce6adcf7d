//! Prometheus metrics: one `Metrics` registered once in its own registry, passed down, and
//! scraped at `/metrics` on the admin listener.
//!
//! Names follow Prometheus conventions (`sluis_` prefix, base units, `_total` on counters).
//! Label values come from fixed sets only: enums of the inspection report, the HTTP methods
//! (anything else is `other`), fixed error kinds. Rule ids and categories come from the loaded
//! policy, which the admin controls, so they are bounded too. Never a host, a path or a user.
//! `docs/metrics.md` lists every metric.

use std::time::Duration;

use http::Method;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::audit::{AuditObserver, PolicyAction, PolicyMode};
use crate::inspect::{DetectorKind, FileType, Report, Verdict};

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to upstream.
    Upload,
    /// Upstream to client.
    Download,
}

/// Every metric sluis exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    websocket_messages: IntCounterVec,
    // Series every request or connection touches are looked up once here, not by label on
    // each use (a lock and a SipHash of the label values).
    uploaded: IntCounter,
    downloaded: IntCounter,
    open_connections: IntGauge,
    connections: IntCounterVec,
    accepted: IntCounter,
    request_duration: Histogram,
    inspection_duration: Histogram,
    inspected_bytes: IntCounter,
    files: IntCounterVec,
    detections: IntCounterVec,
    tls_handshakes: IntCounterVec,
    tls_protocols: IntCounterVec,
    upstream_errors: IntCounterVec,
    policy_reloads: IntCounterVec,
    policy_info: IntGaugeVec,
    audit_written: IntCounterVec,
    audit_failed: IntCounterVec,
    audit_dropped: IntCounter,
}

/// Decrements the open-connections gauge when dropped.
#[derive(Debug)]
pub struct ConnectionGuard(IntGauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];
const INSPECTION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The methods that get their own label value.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

// === impl Metrics ===

impl Metrics {
    /// Registers everything in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;
        let bytes = counter_vec(
            r,
            "sluis_transferred_bytes_total",
            "Body bytes passed through, by direction (upload: client to upstream).",
            &["direction"],
        )?;
        let connections = counter_vec(
            r,
            "sluis_connections_total",
            "Client connections accepted or refused (not_allowed: allow-list; limit: connection limit).",
            &["result"],
        )?;
        let m = Self {
            requests: counter_vec(
                r,
                "sluis_requests_total",
                "Requests decided, by policy action, mode, rule, destination category and method.",
                &["action", "mode", "rule", "category", "method"],
            )?,
            websocket_messages: counter_vec(
                r,
                "sluis_websocket_messages_total",
                "WebSocket messages and control frames clients sent that were inspected, by policy action, mode and rule.",
                &["action", "mode", "rule"],
            )?,
            uploaded: bytes.with_label_values(&["upload"]),
            downloaded: bytes.with_label_values(&["download"]),
            open_connections: reg(
                r,
                IntGauge::new("sluis_open_connections", "Client connections open now.")?,
            )?,
            accepted: connections.with_label_values(&["accepted"]),
            connections,
            request_duration: histogram(
                r,
                "sluis_request_duration_seconds",
                "Time from request head to the end of the response.",
                REQUEST_BUCKETS,
            )?,
            inspection_duration: histogram(
                r,
                "sluis_inspection_duration_seconds",
                "Time spent inspecting one request body.",
                INSPECTION_BUCKETS,
            )?,
            inspected_bytes: reg(
                r,
                IntCounter::new(
                    "sluis_inspected_bytes_total",
                    "Request body bytes inspected.",
                )?,
            )?,
            files: counter_vec(
                r,
                "sluis_inspected_files_total",
                "Files inspected, by detected type and encryption verdict.",
                &["type", "verdict"],
            )?,
            detections: counter_vec(
                r,
                "sluis_detections_total",
                "Values found by each detector (count of matches).",
                &["detector"],
            )?,
            tls_handshakes: counter_vec(
                r,
                "sluis_tls_handshakes_total",
                "TLS handshakes with clients on intercepted connections, by result.",
                &["result"],
            )?,
            tls_protocols: counter_vec(
                r,
                "sluis_tls_client_protocols_total",
                "Application protocols intercepted clients settled on (ALPN), by protocol.",
                &["protocol"],
            )?,
            upstream_errors: counter_vec(
                r,
                "sluis_upstream_errors_total",
                "Failures reaching or talking to upstream servers, by kind.",
                &["kind"],
            )?,
            policy_reloads: counter_vec(
                r,
                "sluis_policy_reloads_total",
                "Policy loads and reloads, by result.",
                &["result"],
            )?,
            policy_info: gauge_vec(
                r,
                "sluis_policy_info",
                "The active policy version (value 1).",
                &["version"],
            )?,
            audit_written: counter_vec(
                r,
                "sluis_audit_events_written_total",
                "Audit lines written, by sink kind.",
                &["sink"],
            )?,
            audit_failed: counter_vec(
                r,
                "sluis_audit_write_failures_total",
                "Audit lines a sink failed to take, by sink kind.",
                &["sink"],
            )?,
            audit_dropped: reg(
                r,
                IntCounter::new(
                    "sluis_audit_events_dropped_total",
                    "Audit events dropped because the queue stayed full or the writer was stopped.",
                )?,
            )?,
            registry,
        };
        let build = gauge_vec(
            &m.registry,
            "sluis_build_info",
            "Build information (value 1).",
            &["version", "commit"],
        )?;
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("SLUIS_GIT_COMMIT").unwrap_or("unknown"),
            ])
            .set(1);
        #[cfg(target_os = "linux")]
        m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(m)
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 << 10);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }

    /// One decided request. `rule` and `category` come from the loaded policy.
    pub fn request(
        &self,
        action: Option<PolicyAction>,
        mode: Option<PolicyMode>,
        rule: Option<&str>,
        category: &str,
        method: &Method,
    ) {
        let action = action.map_or("none", |a| a.as_str());
        let mode = mode.map_or("none", |m| m.as_str());
        let method = METHODS
            .iter()
            .find(|m| **m == method.as_str())
            .copied()
            .unwrap_or("other");
        let category = if category.is_empty() {
            "none"
        } else {
            category
        };
        self.requests
            .with_label_values(&[action, mode, rule.unwrap_or("none"), category, method])
            .inc();
    }

    /// One inspected WebSocket message (or control frame) and what the policy made of it.
    pub fn websocket_message(&self, action: &str, mode: &str, rule: Option<&str>) {
        self.websocket_messages
            .with_label_values(&[action, mode, rule.unwrap_or("none")])
            .inc();
    }

    pub fn bytes(&self, direction: Direction, n: u64) {
        match direction {
            Direction::Upload => self.uploaded.inc_by(n),
            Direction::Download => self.downloaded.inc_by(n),
        }
    }

    /// A client connection was accepted; the gauge drops when the guard does.
    pub fn connection_opened(&self) -> ConnectionGuard {
        self.accepted.inc();
        self.open_connections.inc();
        ConnectionGuard(self.open_connections.clone())
    }

    /// A client connection was refused: `not_allowed` (allow-list) or `limit`.
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections.with_label_values(&[reason]).inc();
    }

    pub fn request_duration(&self, d: Duration) {
        self.request_duration.observe(d.as_secs_f64());
    }

    /// One inspected body: its duration, bytes, files and detections.
    pub fn inspection(&self, d: Duration, report: &Report) {
        self.inspection_duration.observe(d.as_secs_f64());
        self.inspected_bytes.inc_by(report.body_bytes);
        for f in &report.files {
            self.file_inspected(f.file_type, f.encryption.verdict);
        }
        let all = report
            .files
            .iter()
            .flat_map(|f| &f.detections)
            .chain(&report.text.detections);
        for d in all {
            self.detection(d.kind, d.count);
        }
    }

    pub fn file_inspected(&self, file_type: FileType, verdict: Verdict) {
        self.files
            .with_label_values(&[file_type.as_str(), verdict.as_str()])
            .inc();
    }

    pub fn detection(&self, kind: DetectorKind, count: u32) {
        self.detections
            .with_label_values(&[kind.as_str()])
            .inc_by(u64::from(count));
    }

    /// `result`: `ok`, `failed`, or `client_rejected` (the client refused our certificate:
    /// usually certificate pinning).
    pub fn tls_handshake(&self, result: &'static str) {
        self.tls_handshakes.with_label_values(&[result]).inc();
    }

    /// An intercepted client's handshake settled on `protocol`: `h2`, `http/1.1` or `none`.
    pub fn tls_protocol(&self, protocol: &'static str) {
        self.tls_protocols.with_label_values(&[protocol]).inc();
    }

    /// Exports the leaf cache's own counters, read at scrape time: the cache counts every lookup
    /// already, so the request path pays nothing extra.
    pub fn watch_leaf_cache(
        &self,
        stats: impl Fn() -> (u64, u64) + Send + Sync + 'static,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(Box::new(Totals::new(
            "sluis_tls_leaf_cache_lookups_total",
            "Leaf certificate cache lookups, by result (hit, miss).",
            ("result", ["hit", "miss"]),
            Box::new(move || {
                let (hits, misses) = stats();
                [hits, misses]
            }),
        )?))
    }

    /// `sluis_held_memory_bytes`, `sluis_spill_files_kept_bytes` and
    /// `sluis_spilled_bytes_total`, read from the spool at every scrape: it counts them
    /// already.
    pub fn watch_spool(
        &self,
        held_memory: impl Fn() -> u64 + Send + Sync + 'static,
        kept_files: impl Fn() -> u64 + Send + Sync + 'static,
        spilled: impl Fn() -> [u64; 2] + Send + Sync + 'static,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(Box::new(Sampled::new(
            "sluis_held_memory_bytes",
            "Bytes of held request bodies in memory now.",
            Box::new(held_memory),
        )?))?;
        self.registry.register(Box::new(Sampled::new(
            "sluis_spill_files_kept_bytes",
            "Bytes of idle spill files kept for the next large bodies.",
            Box::new(kept_files),
        )?))?;
        self.registry.register(Box::new(Totals::new(
            "sluis_spilled_bytes_total",
            "Bytes of held request bodies written to spill files (as ciphertext), through the \
             page cache or with direct I/O to the disk.",
            ("through", ["page_cache", "disk"]),
            Box::new(spilled),
        )?))
    }

    /// `kind` is a fixed error kind (`connect`, `resolve`, `connect_timeout`, `tls`, ...).
    pub fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors.with_label_values(&[kind]).inc();
    }

    pub fn policy_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.policy_reloads.with_label_values(&[result]).inc();
    }

    /// Sets the active policy version; the previous version's series goes away.
    pub fn policy_info(&self, version: &str) {
        self.policy_info.reset();
        self.policy_info.with_label_values(&[version]).set(1);
    }
}

/// A counter with one label whose totals another part of the proxy keeps, copied in when
/// collected, so that the counting side pays nothing for the export.
struct Totals<const N: usize> {
    values: [&'static str; N],
    read: Box<dyn Fn() -> [u64; N] + Send + Sync>,
    counter: IntCounterVec,
}

impl<const N: usize> Totals<N> {
    fn new(
        name: &str,
        help: &str,
        (label, values): (&str, [&'static str; N]),
        read: Box<dyn Fn() -> [u64; N] + Send + Sync>,
    ) -> Result<Self, prometheus::Error> {
        let counter = IntCounterVec::new(Opts::new(name, help), &[label])?;
        Ok(Self {
            values,
            read,
            counter,
        })
    }
}

impl<const N: usize> prometheus::core::Collector for Totals<N> {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.counter.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        for (value, total) in self.values.into_iter().zip((self.read)()) {
            let counter = self.counter.with_label_values(&[value]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        self.counter.collect()
    }
}

impl AuditObserver for Metrics {
    fn written(&self, sink: &'static str) {
        self.audit_written.with_label_values(&[sink]).inc();
    }

    fn failed(&self, sink: &'static str) {
        self.audit_failed.with_label_values(&[sink]).inc();
    }

    fn dropped(&self) {
        self.audit_dropped.inc();
    }
}

fn reg<M: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    m: M,
) -> Result<M, prometheus::Error> {
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    reg(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

/// A gauge set from its source when collected.
struct Sampled {
    gauge: IntGauge,
    read: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl Sampled {
    fn new(
        name: &str,
        help: &str,
        read: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            gauge: IntGauge::new(name, help)?,
            read,
        })
    }
}

impl prometheus::core::Collector for Sampled {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.gauge
            .set(i64::try_from((self.read)()).unwrap_or(i64::MAX));
        self.gauge.collect()
    }
}

fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, prometheus::Error> {
    reg(r, IntGaugeVec::new(Opts::new(name, help), labels)?)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> Result<Histogram, prometheus::Error> {
    reg(
        r,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?,
    )
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
