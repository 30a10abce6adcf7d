//! Minting one leaf certificate: a fresh key, a random serial, the extensions browsers check.
//!
//! Every leaf gets its own ECDSA P-256 key (a shared key would let one leaked leaf impersonate
//! every host) and a random serial (browsers refuse a second certificate with the same issuer
//! and serial, as users of proxies with counter or hash serials found out). The server config
//! around the leaf is built here too, so a blocking task can do the whole job.

use std::sync::Arc;

use pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    server::{ProducesTickets, StoresServerSessions},
};
use time::{Duration, OffsetDateTime};

use crate::tls::{Ca, LeafConfigs, ServerTarget, TlsError};

/// How far back a leaf's notBefore lies, for clients whose clock runs behind ours.
pub(crate) const CLOCK_SKEW: Duration = Duration::hours(1);

/// The longest common name X.520 allows; longer DNS names go in the SAN only.
const MAX_CN_LEN: usize = 64;

/// Everything needed to turn a name into a ready server config; shared with blocking tasks.
pub(crate) struct LeafFactory {
    pub(crate) ca: Arc<Ca>,
    pub(crate) validity: Duration,
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) sessions: Arc<dyn StoresServerSessions>,
    pub(crate) ticketer: Arc<dyn ProducesTickets>,
}

/// The server configs for a fresh leaf, and how long that leaf is valid from now.
pub(crate) struct MadeConfig {
    pub(crate) configs: LeafConfigs,
    pub(crate) remaining: Duration,
}

/// A freshly minted leaf: its chain (leaf first, then the CA's chain) and its private key.
pub(crate) struct MintedLeaf {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivatePkcs8KeyDer<'static>,
    pub(crate) not_after: OffsetDateTime,
}

/// Mints a leaf for `target`, valid from `now - CLOCK_SKEW` for `validity`, within the CA's
/// own validity.
pub(crate) fn mint_leaf(
    ca: &Ca,
    target: &ServerTarget,
    validity: Duration,
    now: OffsetDateTime,
) -> Result<MintedLeaf, TlsError> {
    let not_before = (now - CLOCK_SKEW).max(ca.not_before());
    let not_after = now
        .checked_add(validity)
        .map_or(ca.not_after(), |end| end.min(ca.not_after()));
    if not_after <= now {
        return Err(TlsError::CaValidity {
            path: ca.cert_path().to_owned(),
            reason: format!("it expired at {}", ca.not_after()),
        });
    }

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
        TlsError::Generate {
            what: "generate a leaf key",
            source,
        }
    })?;
    let params = leaf_params(target, not_before, not_after)?;
    let cert = params
        .signed_by(&key, ca.issuer())
        .map_err(|source| TlsError::Generate {
            what: "sign a leaf certificate",
            source,
        })?;

    let mut chain = Vec::with_capacity(1 + ca.chain().len());
    chain.push(cert.der().clone());
    chain.extend(ca.chain().iter().cloned());
    Ok(MintedLeaf {
        chain,
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        not_after,
    })
}

// === impl LeafFactory ===

impl LeafFactory {
    /// Mints a leaf for `target` and wraps it in server configs: ring provider, TLS 1.2 and
    /// 1.3, the shared session cache and ticket key, and ALPN `h2` then `http/1.1` in one,
    /// `http/1.1` alone in the other.
    pub(crate) fn make(&self, target: &ServerTarget) -> Result<MadeConfig, TlsError> {
        let now = OffsetDateTime::now_utc();
        let leaf = mint_leaf(&self.ca, target, self.validity, now)?;
        let rustls_err = |source| TlsError::Rustls {
            what: "the leaf server config",
            source,
        };
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(rustls_err)?
            .with_no_client_auth()
            .with_single_cert(leaf.chain, PrivateKeyDer::Pkcs8(leaf.key))
            .map_err(rustls_err)?;
        config.session_storage = self.sessions.clone();
        config.ticketer = self.ticketer.clone();
        let mut h1_only = config.clone();
        h1_only.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(MadeConfig {
            configs: LeafConfigs {
                h2_and_h1: Arc::new(config),
                h1_only: Arc::new(h1_only),
            },
            remaining: leaf.not_after - now,
        })
    }
}

fn leaf_params(
    target: &ServerTarget,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, TlsError> {
    let name = target.as_key().into_owned();
    let san = match target {
        ServerTarget::Ip(ip) => SanType::IpAddress(*ip),
        ServerTarget::Dns(dns) => SanType::DnsName(
            dns.clone()
                .try_into()
                .map_err(|_| TlsError::InvalidName { name: name.clone() })?,
        ),
    };
    let mut distinguished_name = DistinguishedName::new();
    if name.len() <= MAX_CN_LEN {
        distinguished_name.push(DnType::CommonName, name);
    }

    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name;
    params.subject_alt_names = vec![san];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}

/// A random, positive, 16-byte serial number (126 random bits).
///
/// The top bit is cleared so the INTEGER is positive, and the next one set so the DER encoding is
/// always exactly 16 bytes.
pub(crate) fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}
