//! The composition root: builds every part from the config, binds the listeners, and runs
//! until a signal says stop. The only module that sees all others.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Admin, AdminOptions, NoPolicy, Readiness};
use crate::audit::AuditSink;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::net::{AddressGuard, Dialer, UpstreamTlsConfigs};
use crate::proxy::{self, Proxy};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("upstream TLS: {0}")]
    UpstreamTls(String),
    #[error("{0}")]
    Setup(String),
}

/// A started proxy.
pub struct Running {
    proxy_addrs: Vec<SocketAddr>,
    admin_addrs: Vec<SocketAddr>,
    shutdown: CancellationToken,
    servers: JoinSet<()>,
    proxy: Arc<Proxy>,
    audit: AuditSink,
    grace: Duration,
}

/// Builds everything and binds the listeners; returns once the proxy accepts connections.
pub async fn start(config: Config) -> Result<Running, StartError> {
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
        upstream_tls(&config)?,
    ));
    let metrics = Arc::new(Metrics::new().map_err(|e| StartError::Setup(format!("metrics: {e}")))?);
    let audit = AuditSink::start(&config.audit, metrics.clone())
        .map_err(|e| StartError::Setup(e.to_string()))?;
    // The inspection engine takes this as `EngineConfig::fingerprint_key` once it is wired in.
    let _fingerprint_key = config
        .audit
        .fingerprint_key_file
        .as_deref()
        .map(crate::audit::load_or_create_key)
        .transpose()
        .map_err(|e| StartError::Setup(format!("audit.fingerprint_key_file: {e}")))?;
    let readiness = Arc::new(Readiness::new(&["policy", "ca"]));
    readiness.watch_audit(audit.clone());
    let proxy = Proxy::new(&config, dialer, audit.clone(), metrics.clone());
    let admin = Admin::new(
        admin_options(&config, &proxy_addrs)?,
        metrics,
        readiness,
        Arc::new(NoPolicy),
    );

    let shutdown = CancellationToken::new();
    let mut servers = JoinSet::new();
    for listener in proxy_listeners {
        servers.spawn(proxy::serve(listener, proxy.clone(), shutdown.clone()));
    }
    for listener in admin_listeners {
        servers.spawn(admin::serve(listener, admin.clone(), shutdown.clone()));
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
        audit,
        grace: config.proxy.shutdown_grace,
    })
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

/// Starts the proxy and runs it until SIGTERM or SIGINT; then drains and returns.
pub async fn run(config: Config) -> Result<(), StartError> {
    let running = start(config).await?;
    wait_for_stop_signal().await;
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

fn upstream_tls(config: &Config) -> Result<UpstreamTlsConfigs, StartError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &config.upstream.extra_ca {
        use pki_types::pem::PemObject;
        let certs = pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| StartError::UpstreamTls(format!("{}: {e}", path.display())))?;
        for cert in certs {
            let cert =
                cert.map_err(|e| StartError::UpstreamTls(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| StartError::UpstreamTls(format!("{}: {e}", path.display())))?;
        }
    }
    let build = |alpn: &[&[u8]]| -> Result<Arc<rustls::ClientConfig>, StartError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut c = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StartError::UpstreamTls(e.to_string()))?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(c))
    };
    Ok(UpstreamTlsConfigs {
        h2_and_h1: build(&[b"h2", b"http/1.1"])?,
        h1_only: build(&[b"http/1.1"])?,
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
