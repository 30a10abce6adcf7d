//! The errors of the TLS building blocks, and recognising a client that refused our certificate.
//!
//! Every variant names what failed (file, mode, name, step) so that a start-up error can be fixed
//! from the message alone.

use std::{io, path::PathBuf};

use rustls::AlertDescription;

use crate::tls::verify::find_rustls_error;

/// Why a TLS building block could not be made or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "CA key {path} has mode {mode:04o}: it is readable or writable by group or others; \
         refusing to use it. Fix: chmod 600 {path}"
    )]
    KeyFileTooOpen { path: PathBuf, mode: u32 },

    #[error("{path} already exists; refusing to overwrite an existing CA (move it away first)")]
    AlreadyExists { path: PathBuf },

    #[error(
        "found {present} but not {missing}: a CA needs both files; restore the missing one or \
         move the other away to create a new CA"
    )]
    PartialCa { present: PathBuf, missing: PathBuf },

    #[error("{path} is larger than {limit} bytes; not a PEM certificate or key")]
    FileTooLarge { path: PathBuf, limit: u64 },

    #[error("{path}: {detail}")]
    Pem { path: PathBuf, detail: String },

    #[error(
        "{path} holds an encrypted private key; sluis needs it unencrypted (mode 0600). \
         Decrypt with: openssl pkey -in {path} -out <new file>"
    )]
    EncryptedKey { path: PathBuf },

    #[error("{path}: unsupported private key: {detail}")]
    UnsupportedKey { path: PathBuf, detail: String },

    #[error("{path}: cannot parse certificate: {detail}")]
    Certificate { path: PathBuf, detail: String },

    #[error("{path} is not a CA certificate: {reason}")]
    NotACa { path: PathBuf, reason: String },

    #[error("the key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },

    #[error("CA certificate {path} is not valid now: {reason}")]
    CaValidity { path: PathBuf, reason: String },

    #[error("CA certificate {path} cannot be used to sign leaves: {reason}")]
    CaUnusable { path: PathBuf, reason: String },

    #[error("cannot {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },

    #[error("not a host name or IP address usable in a certificate: {name:?}")]
    InvalidName { name: String },

    #[error("cannot build {what}: {source}")]
    Rustls {
        what: &'static str,
        #[source]
        source: rustls::Error,
    },

    #[error("extra root bundle {path}: {detail}")]
    ExtraRoots { path: PathBuf, detail: String },

    #[error("cannot build the upstream certificate verifier: {0}")]
    Verifier(String),

    #[error("invalid {option}: {detail}")]
    InvalidOption {
        option: &'static str,
        detail: String,
    },

    #[error("the minting task stopped: {0}")]
    MintTask(String),
}

/// Recognises a handshake that failed because the client refused our certificate.
///
/// Returns the TLS alert the client sent (`"unknown_ca"`, `"bad_certificate"`, ...) when the
/// error is such a refusal. Apps that pin their server's certificate, and clients that do not
/// trust our CA, answer our leaf with one of these alerts; counting them per host tells an admin
/// which hosts belong on the bypass list. A client that simply closes the connection instead of
/// alerting cannot be told apart from other resets and is not reported here.
pub fn is_client_cert_rejection(err: &io::Error) -> Option<&'static str> {
    let rustls_err = find_rustls_error(err)?;
    let rustls::Error::AlertReceived(alert) = rustls_err else {
        return None;
    };
    Some(match alert {
        AlertDescription::BadCertificate => "bad_certificate",
        AlertDescription::UnsupportedCertificate => "unsupported_certificate",
        AlertDescription::CertificateRevoked => "certificate_revoked",
        AlertDescription::CertificateExpired => "certificate_expired",
        AlertDescription::CertificateUnknown => "certificate_unknown",
        AlertDescription::UnknownCA => "unknown_ca",
        AlertDescription::AccessDenied => "access_denied",
        _ => return None,
    })
}
