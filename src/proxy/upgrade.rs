//! Handing a client connection over from HTTP to whatever it switched to (a CONNECT tunnel, a
//! WebSocket). HTTP/1.1 connections are served without hyper's own upgrade support, because
//! that support rules out taking the socket back from an idle connection (parking, `h1`); so
//! the handover is done here: the request path asks its `Conn` for the connection
//! (`Conn::on_upgrade`) before it answers with the switch, and the serving loop sends it the
//! socket once the answer is written, behind the bytes the client sent after its request head
//! that HTTP had already read.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

use crate::proxy::rewind::Rewind;

/// A client connection taken over from HTTP. Reads replay what HTTP had read ahead first.
pub(crate) type Upgraded = Rewind<Box<dyn Io>>;

/// A byte stream an upgraded connection can run on: the proxy's own client socket, or TLS or
/// plain HTTP inside an intercepted tunnel.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Waits for the connection an answer switched (`Conn::on_upgrade`). Fails if the connection
/// ended before the answer was written.
pub(crate) type OnUpgrade = oneshot::Receiver<Upgraded>;
