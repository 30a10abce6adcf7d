//! The name a leaf certificate is minted for.
//!
//! A client's SNI is the name it will check the certificate against, so it wins; without SNI (or
//! with an unusable one) the CONNECT host is the best remaining guess. IP addresses become an IP
//! SAN, since clients never match an IP against a DNS SAN.

use std::{borrow::Cow, fmt, net::IpAddr};

use pki_types::DnsName;

use crate::tls::TlsError;

/// A host a leaf certificate can be minted for: a DNS name or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServerTarget {
    /// A syntactically valid DNS name, lower-cased, without a trailing dot.
    Dns(String),
    /// An IP address (the certificate carries an IP SAN).
    Ip(IpAddr),
}

// === impl ServerTarget ===

impl ServerTarget {
    /// Parses a host as found in SNI or a CONNECT authority (without the port).
    ///
    /// Accepts `example.com`, `Example.COM.`, `192.0.2.7`, `2001:db8::1` and `[2001:db8::1]`.
    /// Wildcards, empty labels, and names longer than 253 bytes are refused.
    pub fn parse(host: &str) -> Result<Self, TlsError> {
        let invalid = || TlsError::InvalidName {
            name: host.to_owned(),
        };
        let trimmed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        if let Some(inner) = trimmed {
            return inner.parse::<IpAddr>().map(Self::Ip).map_err(|_| invalid());
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if name.is_empty() || name.len() > 253 || name.contains('*') {
            return Err(invalid());
        }
        DnsName::try_from(name.as_str()).map_err(|_| invalid())?;
        Ok(Self::Dns(name))
    }

    /// Picks the SNI name when the client sent a usable one, else the CONNECT host.
    pub fn from_sni_or_connect(sni: Option<&str>, connect_host: &str) -> Result<Self, TlsError> {
        match sni.map(Self::parse) {
            Some(Ok(target)) => Ok(target),
            Some(Err(_)) | None => Self::parse(connect_host),
        }
    }

    /// The name as written in the certificate and used as the cache key (borrowed for DNS
    /// names, so a cache hit allocates nothing).
    pub fn as_key(&self) -> Cow<'_, str> {
        match self {
            Self::Dns(name) => Cow::Borrowed(name),
            Self::Ip(ip) => Cow::Owned(ip.to_string()),
        }
    }

    /// Whether this target is an IP address.
    pub fn is_ip(&self) -> bool {
        matches!(self, Self::Ip(_))
    }
}

impl fmt::Display for ServerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}
