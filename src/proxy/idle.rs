//! Timeouts for client connections: an IO wrapper stamps the time of the last byte moved and
//! when the head of the next request began to arrive, and a watchdog (`listener::drive`)
//! compares them with the header and idle timeouts. Stamping is a relaxed atomic store per read
//! or write call, cheaper than resetting a timer on every call.
//!
//! The two timeouts are kept apart on purpose: a keep-alive connection may sit idle for the idle
//! timeout, but once a request head starts to arrive it must complete within the (shorter)
//! header timeout, so a slow client cannot hold a slot by trickling a head.
//!
//! The same stamps tell when an HTTP/1.1 connection may be parked (`h1`): no request in flight,
//! no head arriving, no response bytes stuck behind a full socket, and quiet for a while.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection last moved a byte, and whether a request head is on its way.
#[derive(Debug)]
pub(crate) struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
    /// When the first byte of the next request head arrived, in ms since `origin` plus one;
    /// 0 = no head is arriving.
    head_since: AtomicU64,
    /// Requests between head and end of response.
    in_flight: AtomicUsize,
    /// The last write found the socket full: bytes are still waiting in the server's buffers.
    write_blocked: AtomicBool,
}

/// Marks a request as in flight until dropped (when its response has been sent).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Activity {
    /// A new connection: its first request head is expected from now on.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            head_since: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            write_blocked: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    pub(crate) fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Bytes arrived from the client: with no request in flight, they start a request head.
    fn read(&self) {
        let now = self.now_ms();
        self.last_ms.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_since
                    .compare_exchange(0, now + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// A request head is complete; the request is in flight until the guard drops.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// The instant `idle` after the last activity.
    pub(crate) fn deadline(&self, idle: Duration) -> Instant {
        self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }

    /// The instant a connection quiet since its last exchange may be parked: `None` while a
    /// request is in flight, a head is arriving or a write is waiting for the socket.
    pub(crate) fn park_deadline(&self, after: Duration) -> Option<Instant> {
        let busy = self.in_flight.load(Ordering::Relaxed) != 0
            || self.head_since.load(Ordering::Relaxed) != 0
            || self.write_blocked.load(Ordering::Relaxed);
        (!busy).then(|| self.deadline(after))
    }

    fn wrote(&self, res: &Poll<io::Result<usize>>) {
        match res {
            Poll::Ready(Ok(n)) => {
                if *n > 0 {
                    self.touch();
                }
                self.write_blocked.store(false, Ordering::Relaxed);
            }
            Poll::Ready(Err(_)) => {}
            Poll::Pending => self.write_blocked.store(true, Ordering::Relaxed),
        }
    }

    /// The instant a request head that is arriving must be complete by, if one is arriving.
    pub(crate) fn head_deadline(&self, timeout: Duration) -> Option<Instant> {
        match self.head_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(self.origin + Duration::from_millis(since - 1) + timeout),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Stamps `activity` whenever bytes move through `inner`.
pub(crate) struct ActivityIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> ActivityIo<T> {
    pub(crate) fn new(inner: T, activity: Arc<Activity>) -> Self {
        activity.touch();
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ActivityIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() != before {
            this.activity.read();
        }
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ActivityIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.activity.wrote(&res);
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.activity.wrote(&res);
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
