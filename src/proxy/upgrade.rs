//! Handing a client connection over from HTTP to whatever it switched to (a CONNECT tunnel, a
//! WebSocket). HTTP/1.1 connections are served without hyper's own upgrade support, because
//! that support rules out taking the socket back from an idle connection (parking, `h1`); so
//! the handover is done here: the request path asks its `Conn` for the connection
//! (`Conn::on_upgrade`) before it answers with the switch, and the serving loop sends it the
//! socket once the answer is written.
//!
//! The socket arrives with the bytes the client sent after the request head that HTTP had
//! already read; the proxy's own TCP socket arrives unboxed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::proxy::idle::ActivityIo;
use crate::proxy::rewind::Rewind;

/// A client connection taken over from HTTP. Reads replay `read_ahead` first.
pub(crate) struct Upgraded {
    io: Rewind<ClientIo>,
}

/// The client's side of an upgraded connection.
pub(crate) enum ClientIo {
    /// The proxy's own client socket.
    Tcp(TcpStream),
    /// Anything layered (TLS inside an intercepted tunnel, ...).
    Other(Box<dyn Io>),
}

/// A byte stream an upgraded connection can run on.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Waits for the connection an answer switched (`Conn::on_upgrade`). Fails if the connection
/// ended before the answer was written.
pub(crate) type OnUpgrade = oneshot::Receiver<Upgraded>;

/// The streams HTTP/1.1 is served on, as an upgrade hands them over.
pub(crate) trait IntoClientIo {
    fn into_client_io(self) -> ClientIo;
}

// === impl Upgraded ===

impl Upgraded {
    pub(crate) fn new(read_ahead: Bytes, io: ClientIo) -> Self {
        Self {
            io: Rewind::new(read_ahead, io),
        }
    }
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded").finish_non_exhaustive()
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

// === impl ClientIo ===

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Other(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Other(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Other(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(s) => s.is_write_vectored(),
            Self::Other(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Other(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Other(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

// === impl IntoClientIo ===

/// The proxy's client socket: what HTTP counted on it no longer matters once it is a tunnel.
impl IntoClientIo for ActivityIo<TcpStream> {
    fn into_client_io(self) -> ClientIo {
        ClientIo::Tcp(self.into_inner())
    }
}

/// TLS or plain HTTP inside an intercepted tunnel.
impl<T: Io + 'static> IntoClientIo for tokio_rustls::server::TlsStream<T> {
    fn into_client_io(self) -> ClientIo {
        ClientIo::Other(Box::new(self))
    }
}

impl<T: Io + 'static> IntoClientIo for Rewind<T> {
    fn into_client_io(self) -> ClientIo {
        ClientIo::Other(Box::new(self))
    }
}
