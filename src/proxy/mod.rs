//! The proxy: listeners, the request service, CONNECT handling, forwarding.
//!
//! Every request, whether it arrived in absolute form on the proxy port or inside an
//! intercepted TLS connection, goes through `service::handle`; scheme and authority are the
//! only difference.

mod blockpage;
mod body;
mod connect;
mod error;
mod exchange;
mod forward;
mod h1;
mod hold;
mod hop;
mod idle;
mod intercept;
mod listener;
mod observe;
mod respond;
mod rewind;
mod service;
mod shard;
mod target;
mod tunnel;
mod upgrade;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{AuditScope, AuditSink};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::net::{Connector, Dialer, Origins, TlsUpstream};
use crate::policy::PolicyStore;
use crate::spool::{MemoryBudget, SpillFiles, SpoolConfig};
use crate::tls::{Alpn, LeafMinter};

pub use body::{BoxError, ProxyBody, full as full_body};
pub use listener::serve;
pub use shard::Shards;

/// State shared by every connection of the proxy.
pub struct Proxy {
    settings: Settings,
    dialer: Arc<Dialer>,
    /// Where client connections are served.
    shards: Shards,
    /// The upstream clients, one set per shard, so that an exchange and its pooled upstream
    /// connection stay on one thread.
    upstreams: Box<[Upstream]>,
    /// What TLS origins chose between h2 and http/1.1, learned by the clients; intercepted
    /// clients are offered the same.
    origins: Arc<Origins<TlsUpstream>>,
    /// Tunnels and upgraded connections, which outlive the HTTP connection they came from.
    tasks: TaskTracker,
    /// Fires when the proxy stops: connections finish their exchange and close.
    shutdown: CancellationToken,
    policy: Arc<PolicyStore>,
    /// Mints leaf certificates for intercepted tunnels; `None` = interception is off.
    minter: Option<Arc<LeafMinter>>,
    /// Where held bodies wait for their verdict.
    spool: SpoolConfig,
    audit: AuditSink,
    audit_scope: AuditScope,
    metrics: Arc<Metrics>,
}

/// One shard's pooled upstream clients.
struct Upstream {
    /// Offers h2 and http/1.1 over TLS.
    client: Client<Connector, ProxyBody>,
    /// HTTP/1.1 only, for upgrades (WebSocket needs HTTP/1.1 end to end).
    upgrade: Client<Connector, ProxyBody>,
}

/// What the proxy is built from, besides the config.
pub struct Parts {
    pub dialer: Arc<Dialer>,
    pub policy: Arc<PolicyStore>,
    pub minter: Option<Arc<LeafMinter>>,
    pub audit: AuditSink,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    pub shards: Shards,
}

/// The parts of the config the request path reads.
#[derive(Debug, Clone)]
struct Settings {
    via: Option<HeaderValue>,
    forwarded_for: bool,
    clients: Vec<ipnet::IpNet>,
    max_connections: usize,
    max_header_bytes: usize,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    tunnel_idle_timeout: Duration,
}

// === impl Settings ===

impl Settings {
    fn http1_timeouts(&self) -> listener::Timeouts {
        listener::Timeouts {
            idle: self.idle_timeout,
            head: Some(self.header_read_timeout),
            park: None,
        }
    }
}

// === impl Proxy ===

impl Proxy {
    pub fn new(config: &Config, parts: Parts) -> Arc<Self> {
        let Parts {
            dialer,
            policy,
            minter,
            audit,
            metrics,
            shutdown,
            shards,
        } = parts;
        let p = &config.proxy;
        let settings = Settings {
            via: (!p.via.is_empty())
                .then(|| HeaderValue::from_str(&format!("1.1 {}", p.via)).ok())
                .flatten(),
            forwarded_for: p.forwarded_for,
            clients: p.clients.clone(),
            max_connections: p.max_connections,
            max_header_bytes: p.max_header_bytes,
            header_read_timeout: p.header_read_timeout,
            idle_timeout: p.idle_timeout,
            tunnel_idle_timeout: p.tunnel_idle_timeout,
        };
        let up = &config.upstream;
        let client_builder = || {
            let mut b = Client::builder(TokioExecutor::new());
            b.timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(up.pool_idle_timeout)
                .pool_max_idle_per_host(up.pool_max_idle_per_host)
                // Requests whose body was already read from the client cannot be replayed.
                .retry_canceled_requests(false);
            b
        };
        let origins = Origins::new();
        let spool = SpoolConfig {
            budget: MemoryBudget::new(config.inspect.total_memory),
            request_memory: config.inspect.request_memory,
            files: SpillFiles::new(config.inspect.spool_dir.clone(), config.inspect.spool_keep),
        };
        sample_spool(&metrics, &spool);
        let upstreams = (0..shards.count())
            .map(|_| Upstream {
                client: client_builder()
                    .build(Connector::learning(dialer.clone(), origins.clone())),
                upgrade: client_builder().build(Connector::new(dialer.clone(), Alpn::H1Only)),
            })
            .collect();
        Arc::new(Self {
            shards,
            upstreams,
            origins,
            dialer,
            settings,
            tasks: TaskTracker::new(),
            shutdown,
            policy,
            minter,
            spool,
            audit,
            audit_scope: config.audit.events,
            metrics,
        })
    }

    /// The upstream clients of the shard this runs on (the first shard's off the shards).
    fn upstream(&self) -> &Upstream {
        let index = shard::current().unwrap_or(0);
        &self.upstreams[index % self.upstreams.len()]
    }

    /// A client TLS handshake on an intercepted tunnel ended: `ok`, `failed`, or
    /// `client_rejected` (the client refused our certificate).
    fn observe_tls_handshake(&self, result: &'static str) {
        self.metrics.tls_handshake(result);
    }

    /// Waits for tunnels and upgraded connections to end, at most `grace`.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

/// The spool's own counts as metrics. Registering fails only for a name taken, and a metric is
/// not worth failing a start for.
fn sample_spool(metrics: &Metrics, spool: &SpoolConfig) {
    let budget = Arc::clone(&spool.budget);
    let files = Arc::clone(&spool.files);
    let spilled = Arc::clone(&spool.files);
    if let Err(e) = metrics.watch_spool(
        move || budget.used(),
        move || files.kept(),
        move || spilled.written(),
    ) {
        tracing::debug!(error = %e, "spool metrics not registered");
    }
}
