//! Request bodies the policy wants inspected.
//!
//! Enforce mode holds: the body is read from the client, fed to the inspector and kept in a
//! [`Spool`] at the same time; nothing reaches the upstream until the verdict. A released body is
//! replayed from the spool at copy speed. Monitor mode tees: the body streams upstream as it
//! arrives and the inspector reads along, for the audit log.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::inspect::{Report, Session};
use crate::proxy::body::{BoxError, ProxyBody};
use crate::spool::Spool;

/// A held body, with what inspection found.
pub(crate) enum Held {
    /// Read to its end.
    Complete {
        spool: Spool,
        trailers: Option<HeaderMap>,
        report: Report,
    },
    /// The inspector settled before the end: no later byte can change a verdict. What was read
    /// is in `spool`; the rest can stream while `session` keeps reading along for the final
    /// report (real sizes and hashes).
    Settled {
        spool: Spool,
        rest: Incoming,
        session: Box<Session>,
        report: Report,
    },
}

/// Why a held body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HoldError {
    /// The client broke off the upload (or sent a malformed body).
    #[error("the client stopped sending the body: {0}")]
    Client(hyper::Error),
    /// The spool could not store the body (disk full, I/O error).
    #[error("the body could not be held: {0}")]
    Spool(std::io::Error),
    /// The inspection thread stopped before the body's end.
    #[error("the inspection of the body stopped unexpectedly")]
    Inspector,
}

/// A body longer than this is inspected on a thread of its own while the connection goes on
/// reading and spooling, so that one long upload keeps two cores busy instead of one. Shorter
/// bodies are inspected in place: there a hand-over costs more than it overlaps.
const OFFLOAD_AFTER: u64 = 4 << 20;
/// Chunks go to an offloaded inspection in batches of about this many bytes: a TLS body arrives
/// in 16 KiB records, and a hand-over per record costs a thread wake-up each.
const OFFLOAD_BATCH: usize = 256 << 10;
/// Batches queued ahead of an offloaded inspection: with the batch being filled and the one
/// being inspected, what a slower inspector may pin in memory (about 1.5 MiB).
const OFFLOAD_QUEUE: usize = 4;

/// Offloaded inspections running at once: one per core. Each keeps a core busy, so more gain
/// nothing, and the blocking pool must keep threads for the spool's I/O, which the connections
/// feeding those inspections wait on. Beyond the limit a body is inspected in place.
static OFFLOAD_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Arc::new(Semaphore::new(cores))
});

/// Reads `body`, feeding `session` and keeping every byte in `spool`, until its end or until
/// the session settles (then the rest need not be held).
pub(crate) async fn hold(
    mut body: Incoming,
    session: Session,
    mut spool: Spool,
) -> Result<Held, HoldError> {
    let mut inspector = Inspector::new(session);
    let mut trailers = None;
    let mut read = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(HoldError::Client)?;
        match frame.into_data() {
            Ok(data) => {
                read += data.len() as u64;
                inspector.feed(&data).await?;
                spool.push(data).await.map_err(HoldError::Spool)?;
                if body.is_end_stream() {
                    continue;
                }
                if let Some(report) = inspector.settled_report() {
                    return Ok(Held::Settled {
                        spool,
                        rest: body,
                        session: inspector.into_session().await?,
                        report,
                    });
                }
                inspector = inspector.offload_once_long(read);
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    Ok(Held::Complete {
        report: inspector.into_session().await?.finish(),
        spool,
        trailers,
    })
}

/// Where a held body's session runs.
pub(crate) enum Inspector {
    /// On the connection's task, chunk by chunk between reads.
    Inline(Box<Session>),
    /// On the blocking pool, fed in batches through a bounded queue.
    Offloaded {
        batch: Vec<Bytes>,
        batched: usize,
        queue: mpsc::Sender<Vec<Bytes>>,
        settled: oneshot::Receiver<Report>,
        worker: JoinHandle<Session>,
    },
}

impl Inspector {
    pub(crate) fn new(session: Session) -> Self {
        Self::Inline(Box::new(session))
    }

    pub(crate) async fn feed(&mut self, data: &Bytes) -> Result<(), HoldError> {
        match self {
            Self::Inline(session) => {
                session.feed(data);
                Ok(())
            }
            Self::Offloaded {
                batch,
                batched,
                queue,
                ..
            } => {
                batch.push(data.clone());
                *batched += data.len();
                if *batched < OFFLOAD_BATCH {
                    return Ok(());
                }
                *batched = 0;
                queue
                    .send(std::mem::take(batch))
                    .await
                    .map_err(|_| HoldError::Inspector)
            }
        }
    }

    /// The report once no later byte can change it. An offloaded session says so a few chunks
    /// later than an inline one would; those chunks are simply held.
    fn settled_report(&mut self) -> Option<Report> {
        match self {
            Self::Inline(session) => session.settled_report(),
            Self::Offloaded { settled, .. } => settled.try_recv().ok(),
        }
    }

    /// Moves an inline session to a thread of its own once `read` bytes make the body long
    /// ([`OFFLOAD_AFTER`]), if a slot is free.
    pub(crate) fn offload_once_long(self, read: u64) -> Self {
        if read > OFFLOAD_AFTER {
            self.offload()
        } else {
            self
        }
    }

    /// Moves an inline session to a thread of its own, if a slot is free.
    fn offload(self) -> Self {
        let Self::Inline(session) = self else {
            return self;
        };
        let Ok(slot) = Arc::clone(&OFFLOAD_SLOTS).try_acquire_owned() else {
            return Self::Inline(session);
        };
        let (queue, batches) = mpsc::channel(OFFLOAD_QUEUE);
        let (settle, settled) = oneshot::channel();
        let worker = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            inspect_queued(*session, batches, settle)
        });
        Self::Offloaded {
            batch: Vec::new(),
            batched: 0,
            queue,
            settled,
            worker,
        }
    }

    /// The session, with every chunk fed so far inspected.
    pub(crate) async fn into_session(self) -> Result<Box<Session>, HoldError> {
        match self {
            Self::Inline(session) => Ok(session),
            Self::Offloaded {
                batch,
                queue,
                worker,
                ..
            } => {
                if !batch.is_empty() && queue.send(batch).await.is_err() {
                    return Err(HoldError::Inspector);
                }
                drop(queue);
                worker.await.map(Box::new).map_err(|_| HoldError::Inspector)
            }
        }
    }
}

/// The offloaded session's loop: feeds it every queued batch until the queue closes, and says
/// once when it has settled.
fn inspect_queued(
    mut session: Session,
    mut batches: mpsc::Receiver<Vec<Bytes>>,
    settle: oneshot::Sender<Report>,
) -> Session {
    let mut settle = Some(settle);
    while let Some(batch) = batches.blocking_recv() {
        batch.iter().for_each(|data| session.feed(data));
        if settle.is_some()
            && let Some(report) = session.settled_report()
            && let Some(settle) = settle.take()
        {
            let _ = settle.send(report);
        }
    }
    session
}

/// The held body, released: its chunks from the spool, then its trailers.
pub(crate) fn release(spool: Spool, trailers: Option<HeaderMap>) -> ProxyBody {
    let reader = Some(spool.into_reader());
    let stream =
        futures_util::stream::unfold((reader, trailers), |(reader, trailers)| async move {
            let mut reader = reader?;
            match reader.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(Frame::data(chunk)), (Some(reader), trailers))),
                Ok(None) => trailers.map(|t| (Ok(Frame::trailers(t)), (None, None))),
                Err(e) => Some((Err(BoxError::from(e)), (None, None))),
            }
        });
    StreamBody::new(stream).boxed_unsync()
}

/// A body released early: the held chunks from the spool, then the rest as it arrives.
pub(crate) fn release_then(spool: Spool, rest: ProxyBody) -> ProxyBody {
    enum Part {
        Held(Box<crate::spool::SpoolReader>, ProxyBody),
        Rest(ProxyBody),
    }
    let start = Part::Held(Box::new(spool.into_reader()), rest);
    let stream = futures_util::stream::unfold(Some(start), |part| async move {
        match part? {
            Part::Held(mut reader, rest) => match reader.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(Frame::data(chunk)), Some(Part::Held(reader, rest)))),
                Ok(None) => next_of(rest).await,
                Err(e) => Some((Err(BoxError::from(e)), None)),
            },
            Part::Rest(rest) => next_of(rest).await,
        }
    });
    async fn next_of(
        mut rest: ProxyBody,
    ) -> Option<(Result<Frame<Bytes>, BoxError>, Option<Part>)> {
        let frame = rest.frame().await?;
        Some((frame, Some(Part::Rest(rest))))
    }
    StreamBody::new(stream).boxed_unsync()
}

/// Monitor mode: passes the client's body through unchanged while the inspector reads along;
/// the report goes to `done` when the body ends.
pub(crate) struct Tee {
    inner: Incoming,
    session: Option<Session>,
    done: Option<oneshot::Sender<Report>>,
    bytes: Arc<AtomicU64>,
}

impl Tee {
    pub(crate) fn new(
        inner: Incoming,
        session: Session,
        done: oneshot::Sender<Report>,
        bytes: Arc<AtomicU64>,
    ) -> Self {
        Self {
            inner,
            session: Some(session),
            done: Some(done),
            bytes,
        }
    }

    fn finish(&mut self) {
        if let (Some(session), Some(done)) = (self.session.take(), self.done.take()) {
            let _ = done.send(session.finish());
        }
    }
}

impl Drop for Tee {
    /// A body cut off (or not read to its end) still reports what was seen.
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(session)) = (frame.data_ref(), this.session.as_mut()) {
                    session.feed(data);
                    this.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                // A body of known length is not polled past its last frame.
                if this.inner.is_end_stream() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Counts the bytes of a body as they pass (for the audit log and the byte metrics).
pub(crate) struct Counted<B> {
    inner: B,
    bytes: Arc<AtomicU64>,
}

impl<B> Counted<B> {
    pub(crate) fn new(inner: B, bytes: Arc<AtomicU64>) -> Self {
        Self { inner, bytes }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
