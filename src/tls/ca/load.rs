//! Checking a CA brought from outside before trusting it with every intercepted connection.

use std::{path::Path, sync::Arc};

use pki_types::{PrivatePkcs8KeyDer, ServerName, UnixTime};
use rcgen::KeyPair;
use rustls::{
    RootCertStore,
    client::{WebPkiServerVerifier, danger::ServerCertVerifier},
};
use time::{Duration, OffsetDateTime};
use x509_parser::{certificate::X509Certificate, oid_registry, prelude::FromDer};

use crate::tls::{Ca, CaKeyAlgorithm, ServerTarget, TlsError, mint::mint_leaf};

/// What the loader needs to know about a CA certificate.
pub(super) struct CaCertInfo {
    pub(super) algorithm: CaKeyAlgorithm,
    pub(super) public_key: Vec<u8>,
    pub(super) not_before: OffsetDateTime,
    pub(super) not_after: OffsetDateTime,
    pub(super) subject: String,
    pub(super) has_name_constraints: bool,
}

pub(super) fn inspect_ca_cert(path: &Path, der: &[u8]) -> Result<CaCertInfo, TlsError> {
    let cert_err = |detail: String| TlsError::Certificate {
        path: path.to_owned(),
        detail,
    };
    let not_ca = |reason: &str| TlsError::NotACa {
        path: path.to_owned(),
        reason: reason.into(),
    };
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| cert_err(e.to_string()))?;

    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        Ok(_) => return Err(not_ca("basicConstraints does not say CA:TRUE")),
        Err(e) => return Err(cert_err(format!("basicConstraints: {e}"))),
    }
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => {
            return Err(not_ca("keyUsage does not include keyCertSign"));
        }
        Ok(_) => {}
        Err(e) => return Err(cert_err(format!("keyUsage: {e}"))),
    }
    check_subject(path, &cert)?;

    let validity = cert.validity();
    let (not_before, not_after) = (
        validity.not_before.to_datetime(),
        validity.not_after.to_datetime(),
    );
    let now = OffsetDateTime::now_utc();
    if not_after <= now || not_before > now {
        return Err(TlsError::CaValidity {
            path: path.to_owned(),
            reason: format!("valid from {not_before} to {not_after}, now is {now}"),
        });
    }
    if not_after - now < Duration::days(30) {
        tracing::warn!(path = %path.display(), %not_after, "the interception CA expires within 30 days");
    }
    Ok(CaCertInfo {
        algorithm: key_algorithm(path, &cert)?,
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        not_before,
        not_after,
        subject: cert.subject().to_string(),
        has_name_constraints: matches!(cert.name_constraints(), Ok(Some(_))),
    })
}

/// rcgen re-encodes the issuer name from single-valued, distinct attributes only; refuse other
/// subjects with a message instead of minting leaves whose issuer no client can match.
fn check_subject(path: &Path, cert: &X509Certificate<'_>) -> Result<(), TlsError> {
    let mut seen = Vec::new();
    for rdn in cert.subject().iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(TlsError::CaUnusable {
                path: path.to_owned(),
                reason: "its subject has an empty or multi-valued RDN".into(),
            });
        };
        let oid = attr.attr_type().to_id_string();
        if seen.contains(&oid) {
            return Err(TlsError::CaUnusable {
                path: path.to_owned(),
                reason: format!("its subject repeats attribute {oid}, which cannot be reproduced"),
            });
        }
        seen.push(oid);
    }
    Ok(())
}

fn key_algorithm(path: &Path, cert: &X509Certificate<'_>) -> Result<CaKeyAlgorithm, TlsError> {
    let spki = cert.public_key();
    let unsupported = |detail: &str| TlsError::UnsupportedKey {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    if spki.algorithm.algorithm == oid_registry::OID_PKCS1_RSAENCRYPTION {
        return Ok(CaKeyAlgorithm::Rsa);
    }
    if spki.algorithm.algorithm != oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY {
        return Err(unsupported("the certificate key is neither RSA nor ECDSA"));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    match curve {
        Some(oid) if oid == oid_registry::OID_EC_P256 => Ok(CaKeyAlgorithm::EcdsaP256),
        Some(oid) if oid == oid_registry::OID_NIST_EC_P384 => Ok(CaKeyAlgorithm::EcdsaP384),
        _ => Err(unsupported("ECDSA on a curve other than P-256 or P-384")),
    }
}

pub(super) fn key_pair(
    cert_path: &Path,
    key_path: &Path,
    pkcs8: &PrivatePkcs8KeyDer<'_>,
    cert_public_key: &[u8],
) -> Result<KeyPair, TlsError> {
    let key = KeyPair::try_from(pkcs8).map_err(|e| {
        let detail = format!("{e} (or it does not match the certificate's key type)");
        TlsError::UnsupportedKey {
            path: key_path.to_owned(),
            detail,
        }
    })?;
    if key.public_key_raw() != cert_public_key {
        return Err(TlsError::KeyMismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        });
    }
    Ok(key)
}

// === impl Ca ===

impl Ca {
    /// Signs a throw-away leaf and verifies it against the CA as the only trust anchor.
    ///
    /// Catches, at start: a subject that cannot be reproduced byte for byte in the leaves' issuer
    /// field, a signature the chain check rejects. With name constraints the test name may
    /// legitimately be outside them, so only the issuer bytes are compared.
    pub(super) fn self_test(&self, has_name_constraints: bool) -> Result<(), TlsError> {
        let unusable = |reason: String| TlsError::CaUnusable {
            path: self.cert_path.clone(),
            reason,
        };
        let name = "sluis-self-test.invalid";
        let target = ServerTarget::Dns(name.to_owned());
        let now = OffsetDateTime::now_utc();
        let leaf = mint_leaf(self, &target, Duration::hours(1), now)?;
        let leaf_der = leaf
            .chain
            .first()
            .ok_or_else(|| unusable("no leaf minted".into()))?;

        let (_, ca_cert) = X509Certificate::from_der(&self.cert_der)
            .map_err(|e| unusable(format!("re-parsing the CA: {e}")))?;
        let (_, leaf_cert) = X509Certificate::from_der(leaf_der)
            .map_err(|e| unusable(format!("parsing the test leaf: {e}")))?;
        if leaf_cert.issuer().as_raw() != ca_cert.subject().as_raw() {
            return Err(unusable(
                "its subject cannot be reproduced exactly in the leaves' issuer field \
                 (repeated attribute types or multi-valued RDNs are not supported)"
                    .into(),
            ));
        }
        if has_name_constraints {
            return Ok(());
        }
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert_der.clone())
            .map_err(|e| unusable(format!("as a trust anchor: {e}")))?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crate::tls::provider())
                .build()
                .map_err(|e| unusable(e.to_string()))?;
        let server_name = ServerName::try_from(name).map_err(|e| unusable(e.to_string()))?;
        let intermediates = leaf.chain.get(1..).unwrap_or_default();
        verifier
            .verify_server_cert(leaf_der, intermediates, &server_name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| unusable(format!("a test leaf does not verify: {e}")))
    }
}
