//! The interception CA: generated on first start, or an existing (corporate) CA loaded from PEM.
//!
//! The CA key is the most sensitive secret of the deployment: whoever holds it can impersonate any
//! site to every client that trusts it. So the key is created 0600 in one step, a key file that
//! group or others can access is refused at start, and a loaded CA is test-signed once at start so
//! that a certificate/key or subject problem fails there, not at the first intercepted connection.

use std::{
    fs::DirBuilder,
    path::{Path, PathBuf},
    sync::Arc,
};

use pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::{
    RootCertStore,
    client::{WebPkiServerVerifier, danger::ServerCertVerifier},
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use x509_parser::{certificate::X509Certificate, oid_registry, prelude::FromDer};

use crate::tls::{
    ServerTarget, TlsError,
    mint::{mint_leaf, random_serial},
    pem::{self, CERT_FILE_MODE, KEY_FILE_MODE, io_err},
};

/// File name of the CA certificate inside the certificate directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside the certificate directory.
pub const CA_KEY_FILE: &str = "ca.key";

/// The interception CA: its certificate (and chain) and its signing key.
pub struct Ca {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    /// Served after each leaf: the CA certificate, then the rest of its PEM bundle.
    chain: Vec<CertificateDer<'static>>,
    issuer: Issuer<'static, KeyPair>,
    algorithm: CaKeyAlgorithm,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    subject: String,
    cert_path: PathBuf,
}

/// The CA key algorithms sluis can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaKeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default for generated CAs).
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// RSA (PKCS#1 v1.5 signatures with SHA-256); load only, never generated.
    Rsa,
}

/// How a generated CA looks.
#[derive(Clone, Debug)]
pub struct CaOptions {
    /// Subject common name, shown by browsers as the issuer of every intercepted site.
    pub common_name: String,
    /// Subject organisation.
    pub organization: String,
    /// Key algorithm: [`CaKeyAlgorithm::EcdsaP256`] or [`CaKeyAlgorithm::EcdsaP384`].
    pub algorithm: CaKeyAlgorithm,
    /// Lifetime in days (the notBefore lies a day back).
    pub validity_days: u32,
}

/// Whether [`Ca::load_or_init`] found a CA or made one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// A new CA was generated and written: tell the operator how to trust it.
    New,
    /// An existing CA was loaded.
    Existing,
}

// === impl CaOptions ===

impl Default for CaOptions {
    fn default() -> Self {
        Self {
            common_name: "sluis interception CA".to_owned(),
            organization: "sluis".to_owned(),
            algorithm: CaKeyAlgorithm::EcdsaP256,
            validity_days: 3650,
        }
    }
}

// === impl Ca ===

impl Ca {
    /// Generates a CA in memory: ECDSA key, CA:true with pathlen 0, keyCertSign|cRLSign|
    /// digitalSignature, a subject key identifier, a random serial, no name constraints.
    pub fn generate(options: &CaOptions) -> Result<Self, TlsError> {
        let alg = match options.algorithm {
            CaKeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            CaKeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            CaKeyAlgorithm::Rsa => {
                return Err(TlsError::UnsupportedKey {
                    path: "(generated CA)".into(),
                    detail: "sluis generates ECDSA CAs only; bring an RSA CA as PEM files".into(),
                });
            }
        };
        let key = KeyPair::generate_for(alg).map_err(|source| TlsError::Generate {
            what: "generate the CA key",
            source,
        })?;

        let now = OffsetDateTime::now_utc();
        // The OU makes each generated CA's subject unique: clients that still hold an older CA
        // with the same subject may otherwise try the wrong key and report a bad signature.
        let unit = format!(
            "created {}-{:02}-{:02} id {}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            hex::encode(rand::random::<[u8; 4]>())
        );
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, options.organization.as_str());
        dn.push(DnType::OrganizationalUnitName, unit.as_str());
        dn.push(DnType::CommonName, options.common_name.as_str());
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(i64::from(options.validity_days));

        let cert = params
            .self_signed(&key)
            .map_err(|source| TlsError::Generate {
                what: "self-sign the CA",
                source,
            })?;
        let cert_der = cert.der().clone();

        Ok(Self {
            cert_pem: cert.pem(),
            chain: vec![cert_der.clone()],
            cert_der,
            issuer: Issuer::new(params.clone(), key),
            algorithm: options.algorithm,
            not_before: params.not_before,
            not_after: params.not_after,
            subject: format!(
                "O={}, OU={unit}, CN={}",
                options.organization, options.common_name
            ),
            cert_path: PathBuf::from("(generated CA)"),
        })
    }

    /// Generates a CA and writes `dir/ca.pem` and `dir/ca.key` (mode 0600, created that way).
    ///
    /// Creates `dir` with mode 0700 when it is missing. Refuses to overwrite either file.
    pub fn init(dir: &Path, options: &CaOptions) -> Result<Self, TlsError> {
        let (cert_path, key_path) = ca_paths(dir);
        create_dir(dir)?;
        for path in [&cert_path, &key_path] {
            if exists(path)? {
                return Err(TlsError::AlreadyExists { path: path.clone() });
            }
        }
        let mut ca = Self::generate(options)?;
        let key_pem = ca.issuer.key().serialize_pem();
        pem::write_new(&key_path, key_pem.as_bytes(), KEY_FILE_MODE)?;
        if let Err(e) = pem::write_new(&cert_path, ca.cert_pem.as_bytes(), CERT_FILE_MODE) {
            // A key without its certificate would block the next start; it is ours, remove it.
            let _ = std::fs::remove_file(&key_path);
            return Err(e);
        }
        ca.cert_path = cert_path;
        Ok(ca)
    }

    /// Loads an existing CA: a PEM certificate (optionally followed by its chain, which is served
    /// after each leaf) and its unencrypted key (PKCS#8, SEC1 or PKCS#1; ECDSA P-256/P-384 or
    /// RSA).
    ///
    /// Refuses a key file whose mode grants group or others any access, a certificate that is
    /// not a CA or not valid now, a key that does not belong to the certificate, and a CA whose
    /// test leaf does not verify.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let key_bytes = pem::read_key_file(key_path)?;
        let cert_bytes = pem::read_file(cert_path)?;
        let chain = pem::parse_certs(cert_path, &cert_bytes)?;
        let Some(cert_der) = chain.first().cloned() else {
            return Err(TlsError::Pem {
                path: cert_path.to_owned(),
                detail: "empty".into(),
            });
        };
        let info = inspect_ca_cert(cert_path, &cert_der)?;
        let pkcs8 = pem::parse_key(key_path, &key_bytes, info.algorithm)?;
        let key = key_pair(cert_path, key_path, &pkcs8, &info.public_key)?;
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| TlsError::CaUnusable {
                path: cert_path.to_owned(),
                reason: e.to_string(),
            })?;
        let ca = Self {
            cert_pem: String::from_utf8_lossy(&cert_bytes).into_owned(),
            cert_der,
            chain,
            issuer,
            algorithm: info.algorithm,
            not_before: info.not_before,
            not_after: info.not_after,
            subject: info.subject,
            cert_path: cert_path.to_owned(),
        };
        ca.self_test(info.has_name_constraints)?;
        Ok(ca)
    }

    /// Loads `dir/ca.pem` + `dir/ca.key` when both exist, generates them when neither does.
    ///
    /// Only one of the two is an error: a lone key may be a CA whose certificate got lost, and
    /// replacing it silently would break every client that trusts it.
    pub fn load_or_init(dir: &Path, options: &CaOptions) -> Result<(Self, Created), TlsError> {
        let (cert_path, key_path) = ca_paths(dir);
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => Ok((Self::load(&cert_path, &key_path)?, Created::Existing)),
            (false, false) => Ok((Self::init(dir, options)?, Created::New)),
            (true, false) => Err(TlsError::PartialCa {
                present: cert_path,
                missing: key_path,
            }),
            (false, true) => Err(TlsError::PartialCa {
                present: key_path,
                missing: cert_path,
            }),
        }
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate (and chain) as PEM, as written or read.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificates served after each leaf: the CA, then its own chain.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The key algorithm of the CA.
    pub fn algorithm(&self) -> CaKeyAlgorithm {
        self.algorithm
    }

    /// Start of the CA's validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of the CA's validity; no leaf outlives it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The CA subject, for logs.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// SHA-256 fingerprint of the CA certificate, as colon-separated upper-case hex (the form
    /// browsers show).
    pub fn fingerprint_sha256(&self) -> String {
        let digest = Sha256::digest(self.cert_der.as_ref());
        let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        pairs.join(":")
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Where the certificate came from, for error messages.
    pub(crate) fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Signs a throw-away leaf and verifies it against the CA as the only trust anchor.
    ///
    /// Catches, at start: a subject that cannot be reproduced byte for byte in the leaves' issuer
    /// field, a signature the chain check rejects. With name constraints the test name may
    /// legitimately be outside them, so only the issuer bytes are compared.
    fn self_test(&self, has_name_constraints: bool) -> Result<(), TlsError> {
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
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), super::provider())
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

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Ca")
            .field("subject", &self.subject)
            .field("algorithm", &self.algorithm)
            .field("not_after", &self.not_after)
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

// === loading helpers ===

/// What the loader needs to know about a CA certificate.
struct CaCertInfo {
    algorithm: CaKeyAlgorithm,
    public_key: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    subject: String,
    has_name_constraints: bool,
}

fn inspect_ca_cert(path: &Path, der: &[u8]) -> Result<CaCertInfo, TlsError> {
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

fn key_pair(
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

fn ca_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE))
}

fn exists(path: &Path) -> Result<bool, TlsError> {
    // symlink_metadata: a dangling symlink still counts as "there".
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(io_err("inspecting", path, source)),
    }
}

fn create_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|source| io_err("creating directory", dir, source))
}
