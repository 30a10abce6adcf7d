//! The interception CA: generated on first start, or an existing (corporate) CA loaded from PEM.
//!
//! The CA key is the most sensitive secret of the deployment: whoever holds it can impersonate any
//! site to every client that trusts it. So the key is created 0600 in one step, a key file that
//! group or others can access is refused at start, and a loaded CA is test-signed once at start so
//! that a certificate/key or subject problem fails there, not at the first intercepted connection.

use std::{
    fs::DirBuilder,
    path::{Path, PathBuf},
};

use pki_types::CertificateDer;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use self::load::{inspect_ca_cert, key_pair};
use crate::tls::{
    TlsError,
    mint::random_serial,
    pem::{self, CERT_FILE_MODE, KEY_FILE_MODE, io_err},
};

mod load;

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
        params.not_after = now
            .checked_add(Duration::days(i64::from(options.validity_days)))
            .filter(|t| t.year() <= 9999)
            .ok_or_else(|| TlsError::InvalidOption {
                option: "CA validity_days",
                detail: format!("{} days ends past the year 9999", options.validity_days),
            })?;

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
