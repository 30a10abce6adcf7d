//! The TLS client configuration for connections to upstream servers.
//!
//! Intercepting takes the client's own certificate check away, so the proxy must do it on the
//! client's behalf, always: the system roots (or the bundled Mozilla roots) plus an optional
//! corporate bundle. There is no fallback to an unverified connection; a failure becomes a 502
//! that says why (see [`describe_verify_error`](crate::tls::describe_verify_error)).

use std::{path::PathBuf, sync::Arc};

use pki_types::CertificateDer;
use rustls::{
    CipherSuite, ClientConfig, RootCertStore,
    client::{Resumption, WebPkiServerVerifier},
    crypto::CryptoProvider,
};

use crate::tls::{ServerTarget, TlsError, pem, verify::UpstreamVerifier};

/// Sessions remembered per client config for resumption with upstreams.
const UPSTREAM_SESSIONS: usize = 4096;

/// Where upstream certificates are verified against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamTlsOptions {
    /// A PEM bundle of additional trusted CAs (e.g. the corporate root for internal services).
    pub extra_roots: Option<PathBuf>,
    /// Use the operating system's trust store; when false, or when the system store is empty or
    /// unreadable, the bundled Mozilla roots (webpki-roots) are used.
    pub use_system_roots: bool,
    /// LAB ONLY. Hosts whose invalid certificate chains are accepted, each use logged as a
    /// warning. Handshake signatures are still checked.
    pub danger_accept_invalid_certs_for: Vec<String>,
}

/// Which application protocols to offer: to an upstream, or to an intercepted client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// `h2` and `http/1.1`: ordinary requests.
    H2AndH1,
    /// `http/1.1` only: WebSocket upgrades, and clients of an origin that speaks only HTTP/1.1.
    H1Only,
}

/// Where the base roots came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootsSource {
    /// The operating system's trust store.
    System,
    /// The bundled Mozilla roots.
    Bundled,
}

/// Prebuilt client configs for upstream connections.
#[derive(Clone, Debug)]
pub struct UpstreamTls {
    h2_and_h1: Arc<ClientConfig>,
    h1_only: Arc<ClientConfig>,
    roots_source: RootsSource,
    root_count: usize,
}

// === impl UpstreamTlsOptions ===

impl Default for UpstreamTlsOptions {
    fn default() -> Self {
        Self {
            extra_roots: None,
            use_system_roots: true,
            danger_accept_invalid_certs_for: Vec::new(),
        }
    }
}

// === impl UpstreamTls ===

impl UpstreamTls {
    /// Builds the root store and the two client configs.
    pub fn new(options: &UpstreamTlsOptions) -> Result<Self, TlsError> {
        let (mut roots, roots_source) = base_roots(options.use_system_roots);
        if let Some(path) = &options.extra_roots {
            add_extra_roots(&mut roots, path)?;
        }
        let root_count = roots.len();
        let lab_hosts = lab_hosts(&options.danger_accept_invalid_certs_for)?;
        if !lab_hosts.is_empty() {
            tracing::warn!(
                hosts = ?lab_hosts,
                "danger_accept_invalid_certs_for is set: upstream certificate errors for these \
                 hosts are ignored (lab only)"
            );
        }
        let provider = Arc::new(aes_128_first(super::provider().as_ref().clone()));
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let verifier = Arc::new(UpstreamVerifier::new(webpki, lab_hosts));

        let build = |alpn: &[&[u8]]| -> Result<Arc<ClientConfig>, TlsError> {
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|source| TlsError::Rustls {
                    what: "the upstream client config",
                    source,
                })?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth();
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            config.resumption = Resumption::in_memory_sessions(UPSTREAM_SESSIONS);
            Ok(Arc::new(config))
        };
        Ok(Self {
            h2_and_h1: build(&[b"h2", b"http/1.1"])?,
            h1_only: build(&[b"http/1.1"])?,
            roots_source,
            root_count,
        })
    }

    /// The client config offering `alpn`.
    pub fn client_config(&self, alpn: Alpn) -> Arc<ClientConfig> {
        match alpn {
            Alpn::H2AndH1 => self.h2_and_h1.clone(),
            Alpn::H1Only => self.h1_only.clone(),
        }
    }

    /// Where the base roots came from.
    pub fn roots_source(&self) -> RootsSource {
        self.roots_source
    }

    /// Trusted roots in total (base plus extra).
    pub fn root_count(&self) -> usize {
        self.root_count
    }
}

/// The upstream leg offers AES-128-GCM first, as browsers do. It is as safe as AES-256-GCM for
/// a connection's life and costs a quarter less (10 rounds, not 14) on every byte the proxy
/// sends upstream. Servers that follow the client's order, most of them, pick it. The client
/// leg keeps the client's own order: that choice is the browser's.
fn aes_128_first(mut provider: CryptoProvider) -> CryptoProvider {
    provider.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            CipherSuite::TLS13_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    provider
}

fn base_roots(use_system: bool) -> (RootCertStore, RootsSource) {
    if use_system {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "reading the system trust store");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        if ignored > 0 {
            tracing::warn!(ignored, "unparsable certificates in the system trust store");
        }
        if added > 0 {
            tracing::info!(
                roots = added,
                "upstream TLS verified against the system trust store"
            );
            return (roots, RootsSource::System);
        }
        tracing::warn!("the system trust store is empty or unreadable; using the bundled roots");
    }
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    (roots, RootsSource::Bundled)
}

fn add_extra_roots(roots: &mut RootCertStore, path: &std::path::Path) -> Result<(), TlsError> {
    let bytes = pem::read_file(path)?;
    let certs: Vec<CertificateDer<'static>> =
        pem::parse_certs(path, &bytes).map_err(|e| TlsError::ExtraRoots {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    for (index, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::ExtraRoots {
            path: path.to_owned(),
            detail: format!("certificate #{}: {e}", index + 1),
        })?;
    }
    Ok(())
}

/// Normalises the lab-only host list the way upstream names are compared.
fn lab_hosts(hosts: &[String]) -> Result<Vec<String>, TlsError> {
    hosts
        .iter()
        .map(|h| ServerTarget::parse(h).map(|t| t.as_key().into_owned()))
        .collect()
}
