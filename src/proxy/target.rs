//! Where a request goes: scheme, host and port, taken from the absolute-form URI on the proxy
//! port, or from the inner request and the CONNECT authority inside an intercepted connection.

use std::fmt;

use http::uri::{Authority, PathAndQuery, Scheme, Uri};

use crate::proxy::error::ProxyError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) tls: bool,
    /// Lowercase, no trailing dot; IPv6 without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    /// From an absolute-form URI (`http://host[:port]/...`).
    pub(crate) fn from_absolute(uri: &Uri) -> Result<Self, ProxyError> {
        let tls = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => false,
            Some(s) if *s == Scheme::HTTPS => true,
            Some(other) => {
                return Err(ProxyError::BadTarget(format!("unsupported scheme {other}")));
            }
            None => return Err(ProxyError::NotAProxyRequest),
        };
        let authority = uri.authority().ok_or(ProxyError::NotAProxyRequest)?;
        Self::from_authority(authority, tls, None)
    }

    /// From an authority (`host[:port]`); `default_port` overrides the scheme's default.
    pub(crate) fn from_authority(
        authority: &Authority,
        tls: bool,
        default_port: Option<u16>,
    ) -> Result<Self, ProxyError> {
        if authority.as_str().contains('@') {
            return Err(ProxyError::BadTarget(
                "user information in the authority".into(),
            ));
        }
        let host = authority.host().trim_matches(|c| c == '[' || c == ']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(ProxyError::BadTarget("empty host".into()));
        }
        let port = authority
            .port_u16()
            .or(default_port)
            .unwrap_or(if tls { 443 } else { 80 });
        if port == 0 {
            return Err(ProxyError::BadTarget("port 0".into()));
        }
        Ok(Self { tls, host, port })
    }

    pub(crate) fn scheme_str(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The absolute URI for the upstream request.
    pub(crate) fn uri(&self, path: Option<&PathAndQuery>) -> Result<Uri, ProxyError> {
        let path = path.map(PathAndQuery::as_str).unwrap_or("/");
        Uri::builder()
            .scheme(self.scheme_str())
            .authority(self.authority())
            .path_and_query(path)
            .build()
            .map_err(|e| ProxyError::BadTarget(e.to_string()))
    }

    /// `host[:port]`, the port only when it is not the scheme's default.
    pub(crate) fn authority(&self) -> String {
        // Pieces pushed into one allocation: each forwarded request builds this, and `format!`
        // cost several times as much.
        let ipv6 = self.host.contains(':');
        let mut port = itoa::Buffer::new();
        let port = (self.port != if self.tls { 443 } else { 80 }).then(|| port.format(self.port));
        let mut s = String::with_capacity(self.host.len() + 8);
        if ipv6 {
            s.push('[');
        }
        s.push_str(&self.host);
        if ipv6 {
            s.push(']');
        }
        if let Some(port) = port {
            s.push(':');
            s.push_str(port);
        }
        s
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme_str(), self.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form() {
        let t = Target::from_absolute(&"http://WWW.Example.COM./x?y".parse().unwrap()).unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port),
            (false, "www.example.com", 80)
        );
        let t = Target::from_absolute(&"https://[::1]:8443/".parse().unwrap()).unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "::1", 8443));
        assert_eq!(t.authority(), "[::1]:8443");
        assert!(matches!(
            Target::from_absolute(&"/just/a/path".parse().unwrap()),
            Err(ProxyError::NotAProxyRequest)
        ));
        assert!(Target::from_absolute(&"ftp://x/".parse().unwrap()).is_err());
        assert!(Target::from_absolute(&"http://user@x/".parse().unwrap()).is_err());
    }

    #[test]
    fn authority_leaves_out_the_schemes_default_port() {
        let authority = |tls, host: &str, port| {
            let host = host.into();
            Target { tls, host, port }.authority()
        };
        assert_eq!(authority(false, "a.test", 80), "a.test");
        assert_eq!(authority(true, "a.test", 443), "a.test");
        assert_eq!(authority(false, "a.test", 443), "a.test:443");
        assert_eq!(authority(true, "a.test", 80), "a.test:80");
        assert_eq!(authority(true, "::1", 443), "[::1]");
        assert_eq!(authority(false, "10.0.0.1", 65535), "10.0.0.1:65535");
    }

    #[test]
    fn uri_keeps_path_and_query() {
        let t = Target {
            tls: false,
            host: "a.test".into(),
            port: 8080,
        };
        let uri = t.uri(Some(&"/p?q=1".parse().unwrap())).unwrap();
        assert_eq!(uri.to_string(), "http://a.test:8080/p?q=1");
    }
}
