//! Upstream verification: roots, the extra bundle, the lab-only exception, the 502 reasons.

use std::{path::PathBuf, sync::Arc};

use pki_types::PrivateKeyDer;
use rustls::ServerConfig;
use time::{Duration, OffsetDateTime};

use super::support::{capture_warnings, generated_ca, handshake};
use crate::tls::{
    Alpn, Ca, LeafMinter, LeafOptions, RootsSource, ServerTarget, TlsError, UpstreamTls,
    UpstreamTlsOptions, describe_verify_error, find_rustls_error, mint::mint_leaf, pem::write_new,
};

/// An upstream server whose certificate comes from a CA nobody trusts by default.
struct TestUpstream {
    ca: Arc<Ca>,
    minter: LeafMinter,
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
}

impl TestUpstream {
    fn new() -> Self {
        let ca = generated_ca();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("extra.pem");
        write_new(&ca_file, ca.cert_pem().as_bytes(), 0o644).unwrap();
        let minter = LeafMinter::new(ca.clone(), LeafOptions::default()).unwrap();
        Self {
            ca,
            minter,
            _dir: dir,
            ca_file,
        }
    }

    async fn server(&self, name: &str) -> Arc<ServerConfig> {
        self.minter
            .server_config(&ServerTarget::parse(name).unwrap())
            .await
            .unwrap()
    }
}

fn options(extra: Option<PathBuf>, lab: &[&str]) -> UpstreamTlsOptions {
    UpstreamTlsOptions {
        extra_roots: extra,
        use_system_roots: false,
        danger_accept_invalid_certs_for: lab.iter().map(|h| (*h).to_owned()).collect(),
    }
}

/// Connects with the upstream config and returns the reason text of a verification failure.
async fn failure_reason(upstream: &UpstreamTls, server: Arc<ServerConfig>, name: &str) -> String {
    let outcome = handshake(server, upstream.client_config(Alpn::H2AndH1), name).await;
    let err = outcome.client.expect_err("verification should fail");
    let rustls_err = find_rustls_error(&err).expect("a rustls error inside");
    describe_verify_error(rustls_err).expect("a verification error")
}

#[tokio::test]
async fn unknown_issuer_fails_without_extra_roots_and_passes_with_them() {
    let up = TestUpstream::new();
    let server = up.server("upstream.test").await;

    let plain = UpstreamTls::new(&options(None, &[])).unwrap();
    let reason = failure_reason(&plain, server.clone(), "upstream.test").await;
    assert!(reason.contains("unknown authority"), "{reason}");

    let with_extra = UpstreamTls::new(&options(Some(up.ca_file.clone()), &[])).unwrap();
    assert_eq!(with_extra.root_count(), plain.root_count() + 1);
    let h2 = handshake(
        server.clone(),
        with_extra.client_config(Alpn::H2AndH1),
        "upstream.test",
    )
    .await;
    assert_eq!(h2.client.unwrap().alpn.as_deref(), Some(&b"h2"[..]));
    let h1 = handshake(
        server,
        with_extra.client_config(Alpn::H1Only),
        "upstream.test",
    )
    .await;
    assert_eq!(h1.client.unwrap().alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn the_lab_exception_applies_to_listed_hosts_only() {
    let up = TestUpstream::new();
    let lab = UpstreamTls::new(&options(None, &["Lab.Example.test."])).unwrap();

    let server = up.server("lab.example.test").await;
    let listed = handshake(server, lab.client_config(Alpn::H2AndH1), "lab.example.test").await;
    listed.client.unwrap();
    listed.server.unwrap();

    let server = up.server("prod.example.test").await;
    let reason = failure_reason(&lab, server, "prod.example.test").await;
    assert!(reason.contains("unknown authority"), "{reason}");
}

#[test]
fn every_lab_exception_use_is_logged_with_the_host() {
    let warnings = capture_warnings(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let up = TestUpstream::new();
            let lab = UpstreamTls::new(&options(None, &["lab.example.test"])).unwrap();
            let server = up.server("lab.example.test").await;
            // Resumption would skip certificate verification; use fresh configs each time.
            for _ in 0..2 {
                let mut client = rustls::ClientConfig::clone(&lab.client_config(Alpn::H1Only));
                client.resumption = rustls::client::Resumption::disabled();
                handshake(server.clone(), Arc::new(client), "lab.example.test")
                    .await
                    .client
                    .unwrap();
            }
        });
    });
    let at_start = warnings
        .iter()
        .filter(|w| w.contains("danger_accept_invalid_certs_for is set"))
        .count();
    let per_use: Vec<_> = warnings
        .iter()
        .filter(|w| w.contains("accepting an invalid upstream certificate"))
        .collect();
    assert_eq!(at_start, 1, "{warnings:?}");
    assert_eq!(per_use.len(), 2, "{warnings:?}");
    assert!(
        per_use
            .iter()
            .all(|w| w.contains("host=lab.example.test") && w.contains("unknown authority")),
        "{per_use:?}"
    );
}

#[tokio::test]
async fn resumption_with_upstreams_works() {
    let up = TestUpstream::new();
    let tls = UpstreamTls::new(&options(Some(up.ca_file.clone()), &[])).unwrap();
    let server = up.server("resume.upstream.test").await;
    let config = tls.client_config(Alpn::H2AndH1);
    handshake(server.clone(), config.clone(), "resume.upstream.test")
        .await
        .client
        .unwrap();
    let again = handshake(server, config, "resume.upstream.test")
        .await
        .client
        .unwrap();
    assert_eq!(again.kind, Some(rustls::HandshakeKind::Resumed));
}

#[tokio::test]
async fn the_upstream_leg_gets_aes_128_gcm_from_a_server_that_follows_the_client() {
    let up = TestUpstream::new();
    let tls = UpstreamTls::new(&options(Some(up.ca_file.clone()), &[])).unwrap();
    let server = up.server("suite.upstream.test").await;
    let suite = |client| async {
        let view = handshake(server.clone(), client, "suite.upstream.test").await;
        view.client.unwrap().suite
    };
    let aes_128 = Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    assert_eq!(suite(tls.client_config(Alpn::H2AndH1)).await, aes_128);
    assert_eq!(suite(tls.client_config(Alpn::H1Only)).await, aes_128);
    // rustls's own client order would have given AES-256-GCM: the preference is ours.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(up.ca.cert_der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let default_order = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert_eq!(
        suite(Arc::new(default_order)).await,
        Some(rustls::CipherSuite::TLS13_AES_256_GCM_SHA384)
    );
}

#[tokio::test]
async fn reasons_for_expired_wrong_name_and_self_signed() {
    let up = TestUpstream::new();
    let tls = UpstreamTls::new(&options(Some(up.ca_file.clone()), &[])).unwrap();

    let reason = failure_reason(&tls, up.server("a.test").await, "b.test").await;
    assert!(
        reason.contains("not valid for b.test") && reason.contains("a.test"),
        "{reason}"
    );

    let past = OffsetDateTime::now_utc() - Duration::days(10);
    let expired = mint_leaf(
        &up.ca,
        &ServerTarget::parse("old.test").unwrap(),
        Duration::days(1),
        past,
    )
    .unwrap();
    let reason = failure_reason(
        &tls,
        server_with(expired.chain, expired.key.into()),
        "old.test",
    )
    .await;
    assert!(
        reason.starts_with("the certificate expired") || reason.contains("has expired"),
        "{reason}"
    );

    let self_signed = rcgen::generate_simple_self_signed(vec!["self.test".to_owned()]).unwrap();
    let chain = vec![self_signed.cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(self_signed.signing_key.serialize_der().into());
    let reason = failure_reason(&tls, server_with(chain, key), "self.test").await;
    assert_eq!(reason, "the certificate is self-signed");
}

#[test]
fn bundled_roots_and_bad_extra_bundles() {
    let bundled = UpstreamTls::new(&options(None, &[])).unwrap();
    assert_eq!(bundled.roots_source(), RootsSource::Bundled);
    assert!(bundled.root_count() > 100, "{}", bundled.root_count());

    // The system store, or the bundled roots when it is empty: never no roots at all.
    let system = UpstreamTls::new(&UpstreamTlsOptions::default()).unwrap();
    assert!(system.root_count() > 0);

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    write_new(&junk, b"no certificates here", 0o644).unwrap();
    let err = UpstreamTls::new(&options(Some(junk), &[])).unwrap_err();
    assert!(matches!(err, TlsError::ExtraRoots { .. }), "{err}");
    let missing = dir.path().join("missing.pem");
    assert!(matches!(
        UpstreamTls::new(&options(Some(missing), &[])),
        Err(TlsError::Io { .. })
    ));
    assert!(matches!(
        UpstreamTls::new(&options(None, &["not a host"])),
        Err(TlsError::InvalidName { .. })
    ));
}

#[test]
fn describe_is_only_about_certificates() {
    use rustls::{CertificateError as C, Error as E};
    let text = |e: E| describe_verify_error(&e);
    assert_eq!(
        text(E::InvalidCertificate(C::Revoked)).as_deref(),
        Some("the certificate has been revoked")
    );
    assert!(
        text(E::InvalidCertificate(C::NotValidYet))
            .unwrap()
            .contains("not valid yet")
    );
    assert!(
        text(E::NoCertificatesPresented)
            .unwrap()
            .contains("no certificate")
    );
    assert_eq!(text(E::DecryptError), None);
    assert_eq!(
        text(E::AlertReceived(rustls::AlertDescription::HandshakeFailure)),
        None
    );
}

#[test]
fn find_rustls_error_looks_through_wrappers() {
    #[derive(Debug, thiserror::Error)]
    #[error("connect failed")]
    struct Outer(#[source] std::io::Error);

    let inner = std::io::Error::other(rustls::Error::InvalidCertificate(
        rustls::CertificateError::Expired,
    ));
    let outer = Outer(inner);
    let found = find_rustls_error(&outer).unwrap();
    assert_eq!(
        found,
        &rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
    );
    assert!(find_rustls_error(&std::io::Error::other("plain")).is_none());
}

fn server_with(
    chain: Vec<pki_types::CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}
