//! The bench's certificates, made fresh at every start with rcgen: an origin CA and the origin's
//! certificate (both bench host names), and a second CA for the proxy to sign intercepted
//! connections with. Clients trust exactly one of the two CAs per workload, so a passing
//! tunnel workload proves a real tunnel and a passing interception workload proves interception.
//!
//! Keys are ECDSA P-256 (rcgen's default; ring cannot generate RSA keys).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// A certificate authority: its certificate (PEM, DER) and what it needs to sign.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) cert_der: CertificateDer<'static>,
}

/// The CA files on disk, for the proxy's config.
pub(crate) struct CaFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

// === impl Ca ===

impl Ca {
    pub(crate) fn new(common_name: &str) -> Result<Self, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A TLS server config for `names`, signed by this CA, speaking HTTP/1.1 only.
    pub(crate) fn server_config(&self, names: &[&str]) -> Result<Arc<rustls::ServerConfig>, Error> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Writes `<stem>.pem` and `<stem>.key` into `dir`; the key is created with mode 0600, as a
    /// CA key must be.
    pub(crate) fn write(&self, dir: &Path, stem: &str) -> Result<CaFiles, Error> {
        let cert = dir.join(format!("{stem}.pem"));
        std::fs::write(&cert, &self.cert_pem).map_err(|e| format!("{}: {e}", cert.display()))?;
        let key = dir.join(format!("{stem}.key"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key)
            .map_err(|e| format!("{}: {e}", key.display()))?;
        file.write_all(self.key_pem.as_bytes())?;
        Ok(CaFiles { cert, key })
    }
}

/// A TLS client config that trusts only `ca`, speaks HTTP/1.1, and never resumes a session, so
/// every new connection pays a full handshake (the worst case, as the peers harness measures).
pub(crate) fn client_config(
    ca: &CertificateDer<'static>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}
