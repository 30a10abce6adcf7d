//! Verifying upstream certificates, and saying in plain words why one failed.
//!
//! Verification is webpki's. Around it sit two additions: a self-signed certificate is reported as
//! such (webpki only says "unknown issuer"), and the lab-only list of hosts whose invalid
//! certificates are accepted, with a warning on every use. Handshake signatures are always
//! verified, for listed hosts too: the exception covers the chain, never possession of the key.

use std::{error::Error as StdError, fmt, sync::Arc};

use pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
};
use time::OffsetDateTime;
use x509_parser::{certificate::X509Certificate, prelude::FromDer};

/// The upstream presented a self-signed certificate that is not among the trusted roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfSignedCertificate;

/// webpki verification plus self-signed detection and the lab-only exception list.
#[derive(Debug)]
pub(crate) struct UpstreamVerifier {
    inner: Arc<WebPkiServerVerifier>,
    /// Lower-case host names (or IP literals) whose invalid chains are accepted. Lab only.
    lab_hosts: Vec<String>,
}

// === impl UpstreamVerifier ===

impl UpstreamVerifier {
    pub(crate) fn new(inner: Arc<WebPkiServerVerifier>, lab_hosts: Vec<String>) -> Self {
        Self { inner, lab_hosts }
    }

    fn is_lab_host(&self, name: &ServerName<'_>) -> bool {
        let host = match name {
            ServerName::DnsName(dns) => dns.as_ref().trim_end_matches('.').to_ascii_lowercase(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            _ => return false,
        };
        self.lab_hosts.contains(&host)
    }
}

impl ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let err = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(err) => refine(err, end_entity),
        };
        if self.is_lab_host(server_name) {
            tracing::warn!(
                host = %server_name.to_str(),
                reason = describe_verify_error(&err).as_deref().unwrap_or("unknown"),
                "accepting an invalid upstream certificate: host is listed in \
                 danger_accept_invalid_certs_for (lab only, never in production)"
            );
            return Ok(ServerCertVerified::assertion());
        }
        Err(err)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Turns webpki's "unknown issuer" into "self-signed" when the certificate issued itself.
fn refine(err: Error, end_entity: &CertificateDer<'_>) -> Error {
    if !matches!(
        err,
        Error::InvalidCertificate(CertificateError::UnknownIssuer)
    ) {
        return err;
    }
    match X509Certificate::from_der(end_entity) {
        Ok((_, cert)) if cert.subject().as_raw() == cert.issuer().as_raw() => {
            Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                SelfSignedCertificate,
            ))))
        }
        _ => err,
    }
}

// === impl SelfSignedCertificate ===

impl fmt::Display for SelfSignedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("self-signed certificate")
    }
}

impl StdError for SelfSignedCertificate {}

// === error description ===

/// Short human text saying why upstream certificate verification failed, for the 502 page.
///
/// `None` when the error is not about the upstream's certificate.
pub fn describe_verify_error(err: &Error) -> Option<String> {
    let cert_err = match err {
        Error::InvalidCertificate(cert_err) => cert_err,
        Error::NoCertificatesPresented => {
            return Some("the server presented no certificate".into());
        }
        _ => return None,
    };
    Some(match cert_err {
        CertificateError::UnknownIssuer => "the certificate was issued by an unknown authority \
                                            (not among the trusted roots)"
            .into(),
        CertificateError::Other(other)
            if other.0.downcast_ref::<SelfSignedCertificate>().is_some() =>
        {
            "the certificate is self-signed".into()
        }
        CertificateError::Expired => "the certificate has expired".into(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("the certificate expired on {}", format_time(*not_after))
        }
        CertificateError::NotValidYet => "the certificate is not valid yet".into(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!(
                "the certificate is not valid until {}",
                format_time(*not_before)
            )
        }
        CertificateError::NotValidForName => "the certificate is not valid for this host".into(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names: Vec<&str> = presented.iter().take(5).map(String::as_str).collect();
            let more = if presented.len() > 5 { ", ..." } else { "" };
            format!(
                "the certificate is not valid for {} (it names {}{more})",
                expected.to_str(),
                names.join(", ")
            )
        }
        CertificateError::Revoked => "the certificate has been revoked".into(),
        CertificateError::UnknownRevocationStatus
        | CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => {
            "the certificate's revocation status is unknown".into()
        }
        CertificateError::BadSignature => "the certificate's signature is invalid".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not valid for TLS server authentication".into()
        }
        CertificateError::UnhandledCriticalExtension => {
            "the certificate has an unsupported critical extension".into()
        }
        CertificateError::BadEncoding => "the certificate is malformed".into(),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "the certificate uses an unsupported signature algorithm".into()
        }
        CertificateError::ApplicationVerificationFailure => {
            "the certificate was rejected by local policy".into()
        }
        other => format!("the certificate is invalid ({other})"),
    })
}

/// Finds the `rustls::Error` behind an error, looking through `io::Error` wrappers (whose
/// `source()` skips the wrapped error itself) and `source()` chains.
pub fn find_rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Error> {
    let mut current: Option<&'a (dyn StdError + 'static)> = Some(err);
    // Bounded: a source chain is short, and a cyclic one must not hang us.
    for _ in 0..32 {
        let e = current?;
        if let Some(found) = e.downcast_ref::<Error>() {
            return Some(found);
        }
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

fn format_time(t: UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => format!("{}-{:02}-{:02}", dt.year(), u8::from(dt.month()), dt.day()),
        Err(_) => format!("{secs} (unix time)"),
    }
}
