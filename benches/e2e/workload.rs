//! The workloads, the same as the peers harness runs (plus IDLE, IDLEt and IDLEh2), and how each
//! one reaches the origin directly and through the proxy.

use std::net::SocketAddr;
use std::sync::Arc;

use http::Method;

use crate::client::Endpoint;
use crate::origin::DOWNLOAD_PATH;

/// The host whose uploads the proxy inspects (intercepted over HTTPS).
pub(crate) const UPLOAD_HOST: &str = "upload.bench.test";
/// The host the proxy must tunnel untouched.
pub(crate) const TUNNEL_HOST: &str = "passthrough.bench.test";
/// Body of the 1 MiB workloads.
pub(crate) const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    W1,
    W2,
    W3,
    W4,
    /// W4 with the client speaking HTTP/2 to the proxy, as browsers upload to most sites.
    W4h2,
    W4b,
    W4c,
    W5,
    W5t,
    Idle,
    /// IDLE over intercepted HTTPS: what a browser's idle connections to HTTPS sites cost.
    IdleTls,
    /// IDLEt over HTTP/2, each connection after a 1 MiB download.
    IdleH2,
}

/// Which side of the comparison a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Direct,
    Sluis,
}

/// The figure a workload is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Headline {
    ReqPerSec,
    MbPerSec,
    ConnPerSec,
    RssMib,
}

/// What the load generator sends.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) body_len: u64,
    pub(crate) new_conn: bool,
    /// One request only (the large uploads), not a timed run.
    pub(crate) single: bool,
}

/// The addresses and trust anchors endpoints are built from.
pub(crate) struct Network {
    pub(crate) origin_http: SocketAddr,
    pub(crate) origin_https: SocketAddr,
    pub(crate) proxy: SocketAddr,
    /// Trusts only the origin CA.
    pub(crate) origin_trust: Arc<rustls::ClientConfig>,
    /// Trusts only the proxy's interception CA.
    pub(crate) proxy_trust: Arc<rustls::ClientConfig>,
}

// === impl Workload ===

impl Workload {
    pub(crate) const ALL: [Workload; 12] = [
        Self::W1,
        Self::W2,
        Self::W3,
        Self::W4,
        Self::W4h2,
        Self::W4b,
        Self::W4c,
        Self::W5,
        Self::W5t,
        Self::Idle,
        Self::IdleTls,
        Self::IdleH2,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::W1 => "W1",
            Self::W2 => "W2",
            Self::W3 => "W3",
            Self::W4 => "W4",
            Self::W4h2 => "W4h2",
            Self::W4b => "W4b",
            Self::W4c => "W4c",
            Self::W5 => "W5",
            Self::W5t => "W5t",
            Self::Idle => "IDLE",
            Self::IdleTls => "IDLEt",
            Self::IdleH2 => "IDLEh2",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::W1 => "GET 1 KiB, plain HTTP, keep-alive",
            Self::W2 => "POST 1 MiB, plain HTTP, keep-alive",
            Self::W3 => "POST 1 MiB, HTTPS through a CONNECT tunnel",
            Self::W4 => "POST 1 MiB, HTTPS intercepted, keep-alive",
            Self::W4h2 => "POST 1 MiB, HTTPS intercepted, HTTP/2 to the proxy (direct: as W4)",
            Self::W4b => "POST 1 MiB, HTTPS intercepted, new connection per request",
            Self::W4c => "POST 1 KiB, HTTPS intercepted, new connection per request",
            Self::W5 => "one large PUT, plain HTTP",
            Self::W5t => "one large PUT, HTTPS intercepted",
            Self::Idle => "idle keep-alive connections",
            Self::IdleTls => "idle keep-alive connections, HTTPS intercepted",
            Self::IdleH2 => "idle HTTP/2 connections, HTTPS intercepted, after a 1 MiB download",
        }
    }

    /// Needs the proxy to intercept TLS for the upload host.
    pub(crate) fn intercepted(self) -> bool {
        matches!(
            self,
            Self::W4
                | Self::W4h2
                | Self::W4b
                | Self::W4c
                | Self::W5t
                | Self::IdleTls
                | Self::IdleH2
        )
    }

    /// Held open and measured by memory, through sluis only.
    pub(crate) fn idle(self) -> bool {
        matches!(self, Self::Idle | Self::IdleTls | Self::IdleH2)
    }

    pub(crate) fn headline(self) -> Headline {
        match self {
            Self::W1 => Headline::ReqPerSec,
            Self::W4c => Headline::ConnPerSec,
            Self::Idle | Self::IdleTls | Self::IdleH2 => Headline::RssMib,
            _ => Headline::MbPerSec,
        }
    }

    /// Request-bound workloads report proxy CPU per 1000 requests; the others per GB.
    pub(crate) fn cpu_per_request(self) -> bool {
        matches!(self, Self::W1 | Self::W4c)
    }

    pub(crate) fn shape(self, large: u64) -> Shape {
        let post = |body_len, new_conn| Shape {
            method: Method::POST,
            path: "/upload",
            body_len,
            new_conn,
            single: false,
        };
        match self {
            Self::W1 | Self::Idle | Self::IdleTls => Shape {
                method: Method::GET,
                path: "/1k",
                body_len: 0,
                new_conn: false,
                single: false,
            },
            Self::IdleH2 => Shape {
                method: Method::GET,
                path: DOWNLOAD_PATH,
                body_len: 0,
                new_conn: false,
                single: false,
            },
            Self::W2 | Self::W3 | Self::W4 | Self::W4h2 => post(MIB, false),
            Self::W4b => post(MIB, true),
            Self::W4c => post(1024, true),
            Self::W5 | Self::W5t => Shape {
                method: Method::PUT,
                path: "/upload",
                body_len: large,
                new_conn: true,
                single: true,
            },
        }
    }

    /// How the client reaches the origin for this workload.
    pub(crate) fn endpoint(self, via: Via, net: &Network) -> Endpoint {
        let proxy = (via == Via::Sluis).then_some(net.proxy);
        match self {
            Self::W1 | Self::W2 | Self::W5 | Self::Idle => {
                Endpoint::new(proxy, net.origin_http, UPLOAD_HOST, None)
            }
            Self::W3 => Endpoint::new(
                proxy,
                net.origin_https,
                TUNNEL_HOST,
                Some(net.origin_trust.clone()),
            ),
            Self::W4 | Self::W4b | Self::W4c | Self::W5t | Self::IdleTls => {
                // Direct, the client talks TLS with the origin; through the proxy, with the
                // proxy's forged certificate.
                let trust = match via {
                    Via::Direct => net.origin_trust.clone(),
                    Via::Sluis => net.proxy_trust.clone(),
                };
                Endpoint::new(proxy, net.origin_https, UPLOAD_HOST, Some(trust))
            }
            // The origin speaks HTTP/1.1 only, so direct W4h2 is W4: the figure to compare is
            // what HTTP/2 between client and proxy costs against HTTP/1.1 there.
            Self::W4h2 if via == Via::Direct => Self::W4.endpoint(via, net),
            Self::IdleH2 | Self::W4h2 => {
                // h2 alone: the proxy serves HTTP/2 to a client that offers nothing else, even
                // for this HTTP/1.1 origin.
                let mut tls = rustls::ClientConfig::clone(&net.proxy_trust);
                tls.alpn_protocols = vec![b"h2".to_vec()];
                Endpoint::new(proxy, net.origin_https, UPLOAD_HOST, None).http2(Arc::new(tls))
            }
        }
    }
}

// === impl Via ===

impl Via {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Sluis => "sluis",
        }
    }
}
