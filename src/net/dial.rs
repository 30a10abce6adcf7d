//! The one way out: resolve (static overrides, then the system resolver), refuse what the
//! guard refuses, connect with a timeout, and wrap in verified TLS when asked. The pooled HTTP
//! client and CONNECT tunnels both dial through here, so the SSRF guard cannot be bypassed by
//! picking the other path.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::ResolveOverrides;
use crate::net::batched::Batched;
use crate::net::guard::{AddressGuard, Refusal};
use crate::net::origins::{Negotiated, Origins};
use crate::tls::{Alpn, UpstreamTls};

/// Why a connection to an upstream could not be made. Each variant is who or what failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("{host}: the proxy does not connect to {reason}")]
    Forbidden { host: String, reason: Refusal },
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{host} has no address")]
    NoAddress { host: String },
    #[error("connecting to {host} timed out")]
    Timeout { host: String },
    #[error("cannot connect to {host}: {source}")]
    Connect { host: String, source: io::Error },
    #[error("TLS with {host} failed: {source}")]
    Tls { host: String, source: io::Error },
    #[error("invalid upstream address {0:?}")]
    BadTarget(String),
}

impl DialError {
    /// A fixed name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DialError::Forbidden { .. } => "forbidden",
            DialError::Resolve { .. } | DialError::NoAddress { .. } => "resolve",
            DialError::Timeout { .. } => "connect_timeout",
            DialError::Connect { .. } => "connect",
            DialError::Tls { .. } => "tls",
            DialError::BadTarget(_) => "bad_target",
        }
    }

    /// Finds a `DialError` in an error's source chain (the pooled client wraps ours).
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a DialError> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(found) = e.downcast_ref::<DialError>() {
                return Some(found);
            }
            cur = e.source();
        }
        None
    }
}

pub struct Dialer {
    overrides: ResolveOverrides,
    guard: AddressGuard,
    connect_timeout: Duration,
    tls: UpstreamTls,
}

// === impl Dialer ===

impl Dialer {
    pub fn new(
        overrides: ResolveOverrides,
        guard: AddressGuard,
        connect_timeout: Duration,
        tls: UpstreamTls,
    ) -> Self {
        Self {
            overrides,
            guard,
            connect_timeout,
            tls,
        }
    }

    /// Addresses for `host:port` that the guard allows, in resolver order.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DialError> {
        let candidates = if let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            vec![SocketAddr::new(ip, port)]
        } else if let Some(addrs) = self.overrides.lookup(host, port) {
            addrs
        } else {
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| DialError::Resolve {
                    host: host.to_owned(),
                    source,
                })?
                .collect()
        };
        let mut refusal = None;
        let allowed: Vec<_> = candidates
            .into_iter()
            .filter(|a| match self.guard.check(*a) {
                Ok(()) => true,
                Err(r) => {
                    refusal.get_or_insert(r);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refusal) {
            (false, _) => Ok(allowed),
            (true, Some(reason)) => Err(DialError::Forbidden {
                host: host.to_owned(),
                reason,
            }),
            (true, None) => Err(DialError::NoAddress {
                host: host.to_owned(),
            }),
        }
    }

    /// A TCP connection to the first address that answers within the connect timeout.
    pub async fn connect_tcp(&self, host: &str, port: u16) -> Result<TcpStream, DialError> {
        let addrs = self.resolve(host, port).await?;
        let attempt = async {
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(stream);
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(DialError::Connect {
                host: host.to_owned(),
                source: last.unwrap_or_else(|| io::Error::other("no address")),
            })
        };
        tokio::time::timeout(self.connect_timeout, attempt)
            .await
            .map_err(|_| DialError::Timeout {
                host: host.to_owned(),
            })?
    }

    /// TCP + verified TLS. The server name is `host` (an IP literal is verified as an IP).
    pub async fn connect_tls(
        &self,
        host: &str,
        port: u16,
        alpn: Alpn,
    ) -> Result<TlsUpstream, DialError> {
        // A download arrives one TLS record per read otherwise.
        let tcp = Batched::new(self.connect_tcp(host, port).await?);
        let name = server_name(host)?;
        let handshake = TlsConnector::from(self.tls.client_config(alpn)).connect(name, tcp);
        tokio::time::timeout(self.connect_timeout, handshake)
            .await
            .map_err(|_| DialError::Timeout {
                host: host.to_owned(),
            })?
            .map_err(|source| DialError::Tls {
                host: host.to_owned(),
                source,
            })
    }
}

fn server_name(host: &str) -> Result<pki_types::ServerName<'static>, DialError> {
    let bare = host.trim_matches(|c| c == '[' || c == ']');
    pki_types::ServerName::try_from(bare.to_owned())
        .map_err(|_| DialError::BadTarget(host.to_owned()))
}

/// A verified TLS connection to an upstream.
pub type TlsUpstream = TlsStream<Batched<TcpStream>>;

impl Negotiated for TlsUpstream {
    fn speaks_h2(&self) -> bool {
        self.get_ref().1.alpn_protocol() == Some(b"h2")
    }
}

// === Connector: the Dialer as a connector for the pooled HTTP client ===

/// Plugs the `Dialer` into hyper-util's pooled client.
#[derive(Clone)]
pub struct Connector {
    dialer: Arc<Dialer>,
    alpn: Alpn,
    origins: Option<Arc<Origins<TlsUpstream>>>,
}

impl Connector {
    pub fn new(dialer: Arc<Dialer>, alpn: Alpn) -> Self {
        Self {
            dialer,
            alpn,
            origins: None,
        }
    }

    /// A connector that tells `origins` what each TLS origin chose and first uses the
    /// connections dialed ahead there. Only for `Alpn::H2AndH1`: the choice is learned between
    /// both protocols.
    pub fn learning(dialer: Arc<Dialer>, origins: Arc<Origins<TlsUpstream>>) -> Self {
        Self {
            dialer,
            alpn: Alpn::H2AndH1,
            origins: Some(origins),
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<UpstreamStream>;
    type Error = DialError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, DialError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), DialError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let dialer = self.dialer.clone();
        let alpn = self.alpn;
        let origins = self.origins.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| DialError::BadTarget(uri.to_string()))?;
            let host = host.to_ascii_lowercase();
            let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
            let stream = if tls {
                let ahead = match &origins {
                    Some(origins) => origins.take(&host, port).await,
                    None => None,
                };
                let conn = match ahead {
                    Some(made) => made?,
                    None => dialer.connect_tls(&host, port, alpn).await?,
                };
                if let Some(origins) = &origins {
                    origins.learn(&host, port, conn.speaks_h2());
                }
                UpstreamStream::Tls(Box::new(conn))
            } else {
                UpstreamStream::Tcp(dialer.connect_tcp(&host, port).await?)
            };
            Ok(TokioIo::new(stream))
        })
    }
}

/// A plain or TLS upstream connection.
pub enum UpstreamStream {
    Tcp(TcpStream),
    Tls(Box<TlsUpstream>),
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        match self {
            UpstreamStream::Tcp(_) => Connected::new(),
            UpstreamStream::Tls(tls) => {
                if tls.speaks_h2() {
                    Connected::new().negotiated_h2()
                } else {
                    Connected::new()
                }
            }
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Tcp(s) => s.is_write_vectored(),
            UpstreamStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
