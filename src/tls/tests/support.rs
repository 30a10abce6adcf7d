//! Shared test helpers: fixture CAs in private temp dirs, and in-memory TLS handshakes.

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use x509_parser::{certificate::X509Certificate, prelude::FromDer};

use crate::tls::{
    Ca,
    pem::{CERT_FILE_MODE, KEY_FILE_MODE, write_new},
};

/// A fixture CA copied into a temp dir, its key with mode 0600 (git stores 0644).
pub(super) struct FixtureCa {
    pub(super) _dir: tempfile::TempDir,
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
}

pub(super) fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

pub(super) fn fixture_ca(name: &str) -> FixtureCa {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("ca.pem");
    let key = dir.path().join("ca.key");
    let src = fixture_path(name);
    write_new(
        &cert,
        &std::fs::read(src.join("ca.pem")).unwrap(),
        CERT_FILE_MODE,
    )
    .unwrap();
    write_new(
        &key,
        &std::fs::read(src.join("ca.key")).unwrap(),
        KEY_FILE_MODE,
    )
    .unwrap();
    FixtureCa {
        _dir: dir,
        cert,
        key,
    }
}

pub(super) fn load_fixture_ca(name: &str) -> Arc<Ca> {
    let fixture = fixture_ca(name);
    Arc::new(Ca::load(&fixture.cert, &fixture.key).unwrap())
}

pub(super) fn generated_ca() -> Arc<Ca> {
    Arc::new(Ca::generate(&Default::default()).unwrap())
}

/// A client config trusting exactly `roots`, offering `alpn`.
pub(super) fn client_trusting(
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    client_with_versions(roots, alpn, rustls::DEFAULT_VERSIONS)
}

/// A client config trusting exactly `roots`, offering `alpn` and only `versions`.
pub(super) fn client_with_versions(
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// What the client saw of a successful handshake.
#[derive(Debug)]
pub(super) struct ClientView {
    pub(super) alpn: Option<Vec<u8>>,
    pub(super) kind: Option<HandshakeKind>,
    pub(super) suite: Option<rustls::CipherSuite>,
    pub(super) peer_chain: Vec<CertificateDer<'static>>,
}

/// Both sides of one handshake over an in-memory pipe.
pub(super) struct Outcome {
    pub(super) client: io::Result<ClientView>,
    pub(super) server: io::Result<()>,
}

/// Runs a TLS handshake between `client` (connecting to `name`) and `server`, then sends two
/// bytes server to client so TLS 1.3 session tickets reach the client.
pub(super) async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: &str,
) -> Outcome {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let server_side = async move {
        let mut tls = TlsAcceptor::from(server).accept(server_io).await?;
        tls.write_all(b"ok").await?;
        tls.flush().await?;
        // Wait for the client to close, so the tickets are not cut off.
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest).await;
        Ok(())
    };
    let client_side = async move {
        let mut tls = TlsConnector::from(client).connect(name, client_io).await?;
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ok");
        let (_, conn) = tls.get_ref();
        let view = ClientView {
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            kind: conn.handshake_kind(),
            suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
            peer_chain: conn.peer_certificates().unwrap_or_default().to_vec(),
        };
        tls.shutdown().await?;
        Ok(view)
    };
    let both = async { tokio::join!(client_side, server_side) };
    let (client, server) = tokio::time::timeout(Duration::from_secs(20), both)
        .await
        .unwrap();
    Outcome { client, server }
}

pub(super) fn parse_cert(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

#[cfg(unix)]
pub(super) fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Runs `f` with a subscriber that records every WARN event as "message field=value ...".
pub(super) fn capture_warnings(f: impl FnOnce()) -> Vec<String> {
    use std::sync::Mutex;
    use tracing_subscriber::{Layer, layer::SubscriberExt};

    struct Recorder(Arc<Mutex<Vec<String>>>);
    struct Fields(String);
    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    impl<S: tracing::Subscriber> Layer<S> for Recorder {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if *event.metadata().level() == tracing::Level::WARN {
                let mut fields = Fields(String::new());
                event.record(&mut fields);
                self.0.lock().unwrap().push(fields.0);
            }
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Recorder(seen.clone()));
    tracing::subscriber::with_default(subscriber, f);
    seen.lock().unwrap().clone()
}
