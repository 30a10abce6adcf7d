//! `AuditSink`: the handle the request path records events through, and the writer thread
//! behind it.
//!
//! Events go through a bounded queue to one thread that owns the sinks, so the request path
//! never does file or socket I/O. A full queue holds the recording request for up to
//! `audit.queue_wait` (backpressure: a flood of requests slows down instead of outrunning the
//! log); after that the event is dropped and counted. Drops and write failures make the sink
//! unhealthy, which `/readyz` reports and the request path uses to refuse inspected uploads
//! while `audit.fail_closed` is on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::audit::config::AuditConfig;
use crate::audit::event::PolicyAction;
use crate::audit::event::{AuditEvent, EventAction};
use crate::audit::sink::{self, Severity, Sink};

/// Counts what happens to events; `Metrics` implements it. Every method defaults to nothing.
pub trait AuditObserver: Send + Sync {
    /// A line reached a sink of kind `sink` (`file`, `stdout`, `syslog`).
    fn written(&self, _sink: &'static str) {}
    /// A sink failed to take a line.
    fn failed(&self, _sink: &'static str) {}
    /// An event was dropped: the queue stayed full for `queue_wait`, or the sink is closed.
    fn dropped(&self) {}
}

/// An observer that counts nothing.
pub struct NoObserver;
impl AuditObserver for NoObserver {}

/// Cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    queue_wait: Duration,
    capacity: usize,
    fail_closed: bool,
    log_query: bool,
    hash_file_names: bool,
    state: Arc<State>,
    observer: Arc<dyn AuditObserver>,
}

#[derive(Default)]
struct State {
    /// Sinks whose last write failed.
    failing: AtomicUsize,
    /// An event was dropped and the queue has not drained below half since.
    saturated: AtomicBool,
    stopped: AtomicBool,
}

enum Msg {
    Event(Box<AuditEvent>),
    Tick,
    /// Flush everything queued before this, then answer.
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit sink: {0}")]
    Sink(std::io::Error),
    #[error("audit writer thread: {0}")]
    Thread(std::io::Error),
}

// === impl AuditSink ===

impl AuditSink {
    /// Opens every sink and starts the writer. Must run inside a Tokio runtime (it also starts
    /// the housekeeping timer for rotation and retention).
    pub fn start(
        config: &AuditConfig,
        observer: Arc<dyn AuditObserver>,
    ) -> Result<Self, AuditError> {
        let sinks = sink::open_all(&config.sinks).map_err(AuditError::Sink)?;
        Self::with_sinks(config, sinks, observer)
    }

    pub(crate) fn with_sinks(
        config: &AuditConfig,
        sinks: Vec<Box<dyn Sink>>,
        observer: Arc<dyn AuditObserver>,
    ) -> Result<Self, AuditError> {
        let capacity = config.queue.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let state = Arc::new(State::default());
        let writer = Writer {
            rx,
            sinks,
            failing: Vec::new(),
            state: state.clone(),
            observer: observer.clone(),
            capacity,
        };
        std::thread::Builder::new()
            .name("sluis-audit".into())
            .spawn(move || writer.run())
            .map_err(AuditError::Thread)?;
        let ticker = tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(mpsc::error::TrySendError::Closed(_)) = ticker.try_send(Msg::Tick) {
                    return;
                }
            }
        });
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                queue_wait: config.queue_wait,
                capacity,
                fail_closed: config.fail_closed,
                log_query: config.log_query,
                hash_file_names: config.hash_file_names,
                state,
                observer,
            }),
        })
    }

    /// Queues one event. Waits at most `audit.queue_wait` for room; then drops it and counts.
    pub async fn record(&self, event: AuditEvent) {
        let inner = &self.inner;
        let msg = Msg::Event(Box::new(event));
        let msg = match inner.tx.try_send(msg) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Closed(_)) => return self.dropped(),
            Err(mpsc::error::TrySendError::Full(msg)) => msg,
        };
        if inner.tx.send_timeout(msg, inner.queue_wait).await.is_err() {
            self.dropped();
        }
    }

    /// Queues one event without waiting (for paths that cannot await, such as `Drop`); a full
    /// queue drops it and counts.
    pub fn try_record(&self, event: AuditEvent) {
        if self.inner.tx.try_send(Msg::Event(Box::new(event))).is_err() {
            self.dropped();
        }
    }

    /// Queues one event without waiting; a full queue gives it back, so a caller that cannot
    /// await here (a body's `Drop`) can hand it to a task that may wait.
    pub fn try_queue(&self, event: AuditEvent) -> Result<(), Box<AuditEvent>> {
        match self.inner.tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.dropped();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(Msg::Event(event))) => Err(event),
            Err(mpsc::error::TrySendError::Full(_)) => Ok(()),
        }
    }

    fn dropped(&self) {
        self.inner.state.saturated.store(true, Ordering::Relaxed);
        self.inner.observer.dropped();
        tracing::warn!("audit event dropped: the audit queue is full or closed");
    }

    /// True while every sink takes lines and no event was lost recently.
    pub fn healthy(&self) -> bool {
        let s = &self.inner.state;
        s.failing.load(Ordering::Relaxed) == 0
            && !s.saturated.load(Ordering::Relaxed)
            && !s.stopped.load(Ordering::Relaxed)
    }

    /// Whether inspected uploads to external hosts must be refused now: auditing is unhealthy
    /// and `audit.fail_closed` is on.
    pub fn refuse_uploads(&self) -> bool {
        self.inner.fail_closed && !self.healthy()
    }

    pub fn log_query(&self) -> bool {
        self.inner.log_query
    }

    pub fn hash_file_names(&self) -> bool {
        self.inner.hash_file_names
    }

    /// Events waiting for the writer.
    pub fn queued(&self) -> usize {
        self.inner.capacity - self.inner.tx.capacity()
    }

    /// Waits until everything queued so far is written and flushed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Drains the queue, flushes and syncs every sink, and stops the writer. Events recorded
    /// afterwards are dropped and counted.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

// === the writer thread ===

struct Writer {
    rx: mpsc::Receiver<Msg>,
    sinks: Vec<Box<dyn Sink>>,
    failing: Vec<bool>,
    state: Arc<State>,
    observer: Arc<dyn AuditObserver>,
    capacity: usize,
}

impl Writer {
    fn run(mut self) {
        self.failing.resize(self.sinks.len(), false);
        while let Some(msg) = self.rx.blocking_recv() {
            match msg {
                Msg::Event(event) => self.write(*event),
                Msg::Tick => self.tick(),
                Msg::Flush(done) => {
                    self.flush();
                    let _ = done.send(());
                }
                Msg::Close(done) => {
                    self.rx.close();
                    while let Ok(msg) = self.rx.try_recv() {
                        if let Msg::Event(event) = msg {
                            self.write(*event);
                        }
                    }
                    self.flush();
                    self.state.stopped.store(true, Ordering::Relaxed);
                    let _ = done.send(());
                    return;
                }
            }
            if self.rx.is_empty() {
                self.flush();
            }
            if self.rx.len() < self.capacity / 2 {
                self.state.saturated.store(false, Ordering::Relaxed);
            }
        }
        self.flush();
        self.state.stopped.store(true, Ordering::Relaxed);
    }

    fn write(&mut self, mut event: AuditEvent) {
        let now = SystemTime::now();
        let notice = event.sluis.action == Some(PolicyAction::Block)
            || event.sluis.would_block
            || event.event.action == EventAction::AclDenied;
        let severity = if notice {
            Severity::Notice
        } else {
            Severity::Info
        };
        let msgid = event.event.action.as_str();
        for i in 0..self.sinks.len() {
            let Some(sink) = self.sinks.get_mut(i) else {
                continue;
            };
            let kind = sink.kind();
            let res = write_one(sink.as_mut(), &mut event, now, severity, msgid);
            match res {
                Ok(()) => {
                    self.observer.written(kind);
                    self.set_failing(i, false);
                }
                Err(e) => {
                    self.observer.failed(kind);
                    if !self.failing.get(i).copied().unwrap_or(false) {
                        tracing::error!(sink = kind, error = %e, "audit sink failed");
                    }
                    self.set_failing(i, true);
                }
            }
        }
    }

    fn tick(&mut self) {
        let now = SystemTime::now();
        for sink in &mut self.sinks {
            if let Err(e) = sink.tick(now) {
                tracing::warn!(sink = sink.kind(), error = %e, "audit housekeeping failed");
            }
        }
    }

    fn flush(&mut self) {
        for i in 0..self.sinks.len() {
            let Some(sink) = self.sinks.get_mut(i) else {
                continue;
            };
            if let Err(e) = sink.flush() {
                tracing::error!(sink = sink.kind(), error = %e, "audit flush failed");
                self.observer.failed(sink.kind());
                self.set_failing(i, true);
            }
        }
    }

    fn set_failing(&mut self, i: usize, failing: bool) {
        let Some(slot) = self.failing.get_mut(i) else {
            return;
        };
        if *slot != failing {
            *slot = failing;
            if failing {
                self.state.failing.fetch_add(1, Ordering::Relaxed);
            } else {
                self.state.failing.fetch_sub(1, Ordering::Relaxed);
                tracing::info!("audit sink recovered");
            }
        }
    }
}

/// Writes `event` to one sink as the next link of its chain.
pub(crate) fn write_one(
    sink: &mut dyn Sink,
    event: &mut AuditEvent,
    now: SystemTime,
    severity: Severity,
    msgid: &str,
) -> std::io::Result<()> {
    sink.prepare(now)?;
    event.sluis.chain = Some(sink.chain().next_link());
    let line = serde_json::to_vec(&event).map_err(std::io::Error::other)?;
    sink.write_line(&line, severity, msgid)?;
    sink.chain().commit(&line);
    Ok(())
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
