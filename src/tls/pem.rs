//! Reading and writing the CA's PEM files.
//!
//! Reads are bounded (a CA certificate or key is a few KiB; anything above [`MAX_PEM_BYTES`] is
//! not one), the key's mode is checked on the open handle so the file checked is the file read,
//! and keys arrive as PKCS#8 whatever their encoding on disk, because ring signs only with PKCS#8.
//! New files are created with their final mode in one step (`create_new` + mode), never chmodded
//! after the secret is already on disk.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    path::Path,
};

use pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer,
    pem::{self, PemObject},
};

use crate::tls::{CaKeyAlgorithm, TlsError};

/// Upper bound on a certificate bundle or key file we are willing to read.
pub(crate) const MAX_PEM_BYTES: u64 = 1 << 20;

/// Mode of a newly written private key: owner read/write only.
pub(crate) const KEY_FILE_MODE: u32 = 0o600;

/// Mode of a newly written certificate: public.
pub(crate) const CERT_FILE_MODE: u32 = 0o644;

/// Reads a whole file of at most [`MAX_PEM_BYTES`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let file = File::open(path).map_err(|source| io_err("opening", path, source))?;
    read_bounded(file, path)
}

/// Reads a private key file, refusing it when group or others have any access to it.
pub(crate) fn read_key_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let file = File::open(path).map_err(|source| io_err("opening", path, source))?;
    check_key_mode(&file, path)?;
    read_bounded(file, path)
}

/// Creates `path` with `mode` (never overwriting) and writes `contents` to disk.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            TlsError::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            io_err("creating", path, source)
        }
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_err("writing", path, source))
}

/// Parses every certificate in a PEM bundle, in file order.
pub(crate) fn parse_certs(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            detail: "no PEM CERTIFICATE block found".to_owned(),
        });
    }
    Ok(certs)
}

/// Parses the private key of a certificate whose key algorithm is `alg`, as PKCS#8.
///
/// PKCS#1 (`RSA PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`) keys are wrapped in a PKCS#8
/// structure whose algorithm identifier is the certificate's; ring checks the curve again when it
/// loads the key.
pub(crate) fn parse_key(
    path: &Path,
    bytes: &[u8],
    alg: CaKeyAlgorithm,
) -> Result<PrivatePkcs8KeyDer<'static>, TlsError> {
    let key = match PrivateKeyDer::from_pem_slice(bytes) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) if is_encrypted_pem(bytes) => {
            return Err(TlsError::EncryptedKey {
                path: path.to_owned(),
            });
        }
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError::Pem {
                path: path.to_owned(),
                detail: "no PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block found"
                    .to_owned(),
            });
        }
        Err(e) => return Err(pem_err(path, e)),
    };
    let unsupported = |detail: &str| TlsError::UnsupportedKey {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    match (key, alg) {
        (PrivateKeyDer::Pkcs8(key), _) => Ok(key.clone_key()),
        (PrivateKeyDer::Pkcs1(key), CaKeyAlgorithm::Rsa) => {
            Ok(wrap_pkcs8(RSA_ALG_ID, key.secret_pkcs1_der()))
        }
        (PrivateKeyDer::Sec1(key), CaKeyAlgorithm::EcdsaP256) => {
            Ok(wrap_pkcs8(P256_ALG_ID, key.secret_sec1_der()))
        }
        (PrivateKeyDer::Sec1(key), CaKeyAlgorithm::EcdsaP384) => {
            Ok(wrap_pkcs8(P384_ALG_ID, key.secret_sec1_der()))
        }
        (PrivateKeyDer::Pkcs1(_), _) => Err(unsupported(
            "an RSA (PKCS#1) key, but the certificate's key is not RSA",
        )),
        (PrivateKeyDer::Sec1(_), _) => Err(unsupported(
            "an EC (SEC1) key, but the certificate's key is not ECDSA P-256 or P-384",
        )),
        _ => Err(unsupported("unknown private key encoding")),
    }
}

// === PKCS#8 wrapping ===

/// AlgorithmIdentifier { rsaEncryption, NULL }.
const RSA_ALG_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// AlgorithmIdentifier { id-ecPublicKey, prime256v1 }.
const P256_ALG_ID: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
/// AlgorithmIdentifier { id-ecPublicKey, secp384r1 }.
const P384_ALG_ID: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];

/// PrivateKeyInfo ::= SEQUENCE { version INTEGER (0), algorithm, privateKey OCTET STRING }.
fn wrap_pkcs8(alg_id: &[u8], key: &[u8]) -> PrivatePkcs8KeyDer<'static> {
    let mut inner = vec![0x02, 0x01, 0x00];
    inner.extend_from_slice(alg_id);
    der_tlv(0x04, key, &mut inner);
    let mut out = Vec::with_capacity(inner.len() + 6);
    der_tlv(0x30, &inner, &mut out);
    PrivatePkcs8KeyDer::from(out)
}

fn der_tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        // Short form; the guard makes the cast lossless.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
}

// === helpers ===

fn read_bounded(file: File, path: &Path) -> Result<Vec<u8>, TlsError> {
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| io_err("reading", path, source))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::FileTooLarge {
            path: path.to_owned(),
            limit: MAX_PEM_BYTES,
        });
    }
    Ok(bytes)
}

#[cfg(unix)]
fn check_key_mode(file: &File, path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = file
        .metadata()
        .map_err(|source| io_err("inspecting", path, source))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyFileTooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_mode(_file: &File, _path: &Path) -> Result<(), TlsError> {
    Ok(())
}

fn is_encrypted_pem(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"ENCRYPTED").is_some()
}

fn pem_err(path: &Path, e: pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        detail: format!("invalid PEM: {e}"),
    }
}

pub(crate) fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}
