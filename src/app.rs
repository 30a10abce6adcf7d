//! The composition root: builds every part from the config, binds the listeners, and runs
//! until a signal says stop. The only module that sees all others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Admin, AdminOptions, AdminSource, PolicyView, Readiness};
use crate::audit::AuditSink;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::net::{AddressGuard, Dialer};
use crate::policy::{PolicyStore, ReloadOutcome};
use crate::proxy::{self, Parts, Proxy};
use crate::tls::{
    Ca, CaOptions, Created, LeafMinter, LeafOptions, UpstreamTls, UpstreamTlsOptions,
};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The policy does not load; the message names file, line and key.
    #[error("policy: {0}")]
    Policy(String),
    /// The interception CA or the upstream trust store is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Setup(String),
}

impl StartError {
    /// The process exit status: configuration problems an admin must fix are `EX_CONFIG`.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Policy(_) | StartError::Tls(_) | StartError::Setup(_) => {
                crate::config::EXIT_CONFIG
            }
            StartError::Bind { .. } => 1,
        }
    }
}

/// A started proxy.
pub struct Running {
    proxy_addrs: Vec<SocketAddr>,
    admin_addrs: Vec<SocketAddr>,
    shutdown: CancellationToken,
    servers: JoinSet<()>,
    proxy: Arc<Proxy>,
    policy: Arc<PolicyStore>,
    audit: AuditSink,
    grace: Duration,
}

/// Builds everything and binds the listeners; returns once the proxy accepts connections.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let metrics = Arc::new(Metrics::new().map_err(|e| StartError::Setup(format!("metrics: {e}")))?);
    let fingerprint_key = config
        .audit
        .fingerprint_key_file
        .as_deref()
        .map(crate::audit::load_or_create_key)
        .transpose()
        .map_err(|e| StartError::Setup(format!("audit.fingerprint_key_file: {e}")))?;
    let policy = load_policy(&config, fingerprint_key, &metrics)?;
    let minter = interception(&config, &metrics)?;
    let upstream_tls = UpstreamTls::new(&UpstreamTlsOptions {
        extra_roots: config.upstream.extra_ca.clone(),
        use_system_roots: config.upstream.system_roots,
        danger_accept_invalid_certs_for: config.upstream.danger_accept_invalid_certs_for.clone(),
    })
    .map_err(|e| StartError::Tls(format!("upstream trust: {e}")))?;

    let proxy_listeners = bind_all(&config.proxy.listen).await?;
    let admin_listeners = bind_all(&config.admin.listen).await?;
    let proxy_addrs = local_addrs(&proxy_listeners);
    let admin_addrs = local_addrs(&admin_listeners);

    let own = proxy_addrs.iter().chain(&admin_addrs).copied().collect();
    let guard = AddressGuard::new(config.upstream.allow_private.clone(), own);
    let dialer = Arc::new(Dialer::new(
        config.resolve.clone(),
        guard,
        config.upstream.connect_timeout,
        upstream_tls,
    ));
    let audit = AuditSink::start(&config.audit, metrics.clone())
        .map_err(|e| StartError::Setup(e.to_string()))?;
    let readiness = Arc::new(Readiness::new(&["policy", "ca"]));
    readiness.watch_audit(audit.clone());
    readiness.set("policy", true);
    readiness.set("ca", minter.is_some());
    let shutdown = CancellationToken::new();
    let shards = proxy::Shards::start(config.proxy.worker_count(), config.proxy.pin_workers)
        .map_err(|e| StartError::Setup(format!("cannot start the serving threads: {e}")))?;
    let proxy = Proxy::new(
        &config,
        Parts {
            dialer,
            policy: policy.clone(),
            minter,
            audit: audit.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            shards,
        },
    );
    let admin = Admin::new(
        admin_options(&config, &proxy_addrs)?,
        metrics,
        readiness,
        Arc::new(PolicySource(policy.clone())),
    );

    let mut servers = JoinSet::new();
    for listener in proxy_listeners {
        servers.spawn(proxy::serve(listener, proxy.clone()));
    }
    for listener in admin_listeners {
        servers.spawn(admin::serve(listener, admin.clone(), shutdown.clone()));
    }
    if config.policy.watch {
        policy.watch();
    }
    for addr in &proxy_addrs {
        tracing::info!(listener = "proxy", %addr, "listening");
    }
    for addr in &admin_addrs {
        tracing::info!(listener = "admin", %addr, "listening");
    }
    Ok(Running {
        proxy_addrs,
        admin_addrs,
        shutdown,
        servers,
        proxy,
        policy,
        audit,
        grace: config.proxy.shutdown_grace,
    })
}

/// The policy store, with reloads counted and the active version exported.
fn load_policy(
    config: &Config,
    fingerprint_key: Option<Vec<u8>>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<PolicyStore>, StartError> {
    let m = metrics.clone();
    let store =
        PolicyStore::load(
            config.policy.dir.clone(),
            fingerprint_key,
            move |outcome| match outcome {
                ReloadOutcome::Applied { version } => {
                    m.policy_reload(true);
                    m.policy_info(version);
                }
                ReloadOutcome::Unchanged { .. } => m.policy_reload(true),
                ReloadOutcome::Rejected { .. } => m.policy_reload(false),
            },
        )
        .map_err(|e| StartError::Policy(e.to_string()))?;
    metrics.policy_info(store.current().version());
    Ok(Arc::new(store))
}

/// The interception CA (loaded, or created on first start) and the leaf minter.
fn interception(config: &Config, metrics: &Metrics) -> Result<Option<Arc<LeafMinter>>, StartError> {
    let tls = &config.tls;
    let ca = match (&tls.ca_cert, &tls.ca_key) {
        (Some(cert), Some(key)) => {
            Ca::load(cert, key).map_err(|e| StartError::Tls(e.to_string()))?
        }
        _ => {
            let (ca, created) = Ca::load_or_init(&tls.ca_dir, &CaOptions::default())
                .map_err(|e| StartError::Tls(e.to_string()))?;
            if created == Created::New {
                announce_new_ca(&ca, &tls.ca_dir);
            }
            ca
        }
    };
    tracing::info!(subject = ca.subject(), sha256 = %ca.fingerprint_sha256(), "interception CA ready");
    let options = LeafOptions {
        cache_size: tls.leaf_cache_size,
        validity: tls.leaf_validity,
        ..LeafOptions::default()
    };
    let minter = Arc::new(
        LeafMinter::new(Arc::new(ca), options).map_err(|e| StartError::Tls(e.to_string()))?,
    );
    let stats = minter.clone();
    metrics
        .watch_leaf_cache(move || (stats.hits(), stats.misses()))
        .map_err(|e| StartError::Setup(format!("metrics: {e}")))?;
    Ok(Some(minter))
}

/// First start: tell the admin where the new CA is and how to make clients trust it.
fn announce_new_ca(ca: &Ca, dir: &Path) {
    let text = crate::tls::describe_new_ca(ca, dir);
    tracing::warn!(dir = %dir.display(), "created a new interception CA; clients must trust it");
    eprintln!("{text}");
}

/// The admin endpoints' view of the active policy.
struct PolicySource(Arc<PolicyStore>);

impl AdminSource for PolicySource {
    fn policy(&self) -> Option<PolicyView> {
        let p = self.0.current();
        let (internal_domains, internal_networks) = p.internal_hosts();
        Some(PolicyView {
            version: p.version().to_owned(),
            summary: serde_json::to_value(p.summary()).unwrap_or_default(),
            internal_domains,
            internal_networks,
        })
    }
}

/// `[admin]` resolved: the token read (0600 only), the PAC proxy address defaulted to the
/// first proxy listener (the host name when it listens on all addresses).
fn admin_options(config: &Config, proxy_addrs: &[SocketAddr]) -> Result<AdminOptions, StartError> {
    let token = match &config.admin.token_file {
        Some(path) => Some(
            crate::audit::read_secret_file(path)
                .map_err(|e| StartError::Setup(format!("admin.token_file: {e}")))?,
        ),
        None => None,
    };
    let pac_proxy = if !config.admin.pac_proxy.is_empty() {
        config.admin.pac_proxy.clone()
    } else {
        match proxy_addrs.first() {
            Some(a) if a.ip().is_unspecified() => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
                format!("{}:{}", host.trim(), a.port())
            }
            Some(a) => a.to_string(),
            None => String::new(),
        }
    };
    Ok(AdminOptions {
        token,
        pac_proxy,
        pac_direct: config.admin.pac_direct.clone(),
        pac_public: config.admin.pac_public,
    })
}

/// Starts the proxy and runs it until SIGTERM or SIGINT; then drains and returns. SIGHUP
/// reloads the policy.
pub async fn run(config: Config) -> Result<(), StartError> {
    let running = start(config).await?;
    let reloads = reload_on_sighup(running.policy.clone());
    wait_for_stop_signal().await;
    reloads.abort();
    tracing::info!(grace = ?running.grace, "shutting down: no new connections, finishing exchanges");
    let clean = running.stop().await;
    if clean {
        tracing::info!("shut down cleanly");
    } else {
        tracing::warn!("shutdown grace period over; dropping what is still open");
    }
    Ok(())
}

// === impl Running ===

impl Running {
    pub fn proxy_addrs(&self) -> &[SocketAddr] {
        &self.proxy_addrs
    }

    pub fn admin_addrs(&self) -> &[SocketAddr] {
        &self.admin_addrs
    }

    /// Stops accepting, lets exchanges finish within the grace period. True if everything
    /// finished in time.
    pub async fn stop(mut self) -> bool {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + self.grace;
        let servers = async { while self.servers.join_next().await.is_some() {} };
        let servers_done = tokio::time::timeout_at(deadline, servers).await.is_ok();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let tasks_done = self.proxy.drain(left).await;
        // Every exchange has ended, so every event is queued: write them all out.
        self.audit.close().await;
        servers_done && tasks_done
    }
}

async fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, StartError> {
    let mut out = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        out.push(listener);
    }
    Ok(out)
}

fn local_addrs(listeners: &[TcpListener]) -> Vec<SocketAddr> {
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect()
}

/// Reloads the policy on every SIGHUP (compiling off the async threads).
fn reload_on_sighup(policy: Arc<PolicyStore>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot install the SIGHUP handler; reload by file change only");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!(signal = "SIGHUP", "policy reload requested");
            let store = policy.clone();
            let _ = tokio::task::spawn_blocking(move || store.reload()).await;
        }
    })
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "stop requested"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "stop requested"),
    }
}
