use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use super::*;
use crate::audit::chain::ChainState;
use crate::audit::config::{FileSinkConfig, SinkConfig};
use crate::audit::event::{AuditEvent, EventAction};

#[derive(Default)]
struct Counting {
    written: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl AuditObserver for Counting {
    fn written(&self, _: &'static str) {
        self.written.fetch_add(1, Ordering::SeqCst);
    }
    fn failed(&self, _: &'static str) {
        self.failed.fetch_add(1, Ordering::SeqCst);
    }
    fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(
        format!("E{i}"),
        EventAction::Exchange,
        "127.0.0.1:9".parse().unwrap(),
        SystemTime::now(),
    )
}

/// A sink the test controls: it blocks while `gate` is held, fails while `fail` is set.
struct Controlled {
    gate: Arc<Mutex<()>>,
    fail: Arc<AtomicBool>,
    lines: Arc<AtomicU64>,
    chain: ChainState,
}

impl Sink for Controlled {
    fn kind(&self) -> &'static str {
        "test"
    }
    fn prepare(&mut self, _: SystemTime) -> std::io::Result<()> {
        Ok(())
    }
    fn chain(&mut self) -> &mut ChainState {
        &mut self.chain
    }
    fn write_line(&mut self, _: &[u8], _: Severity, _: &str) -> std::io::Result<()> {
        let _held = self.gate.lock().unwrap();
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("disk full"));
        }
        self.lines.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Harness {
    sink: AuditSink,
    observer: Arc<Counting>,
    gate: Arc<Mutex<()>>,
    fail: Arc<AtomicBool>,
    lines: Arc<AtomicU64>,
}

fn controlled(queue: usize, wait: Duration) -> Harness {
    let config = AuditConfig {
        queue,
        queue_wait: wait,
        ..AuditConfig::default()
    };
    let (gate, fail, lines) = (
        Arc::default(),
        Arc::new(AtomicBool::new(false)),
        Arc::default(),
    );
    let sink: Box<dyn Sink> = Box::new(Controlled {
        gate: Arc::clone(&gate),
        fail: Arc::clone(&fail),
        lines: Arc::clone(&lines),
        chain: ChainState::new("test".into(), "now".into(), None),
    });
    let observer = Arc::new(Counting::default());
    let sink = AuditSink::with_sinks(&config, vec![sink], observer.clone()).unwrap();
    Harness {
        sink,
        observer,
        gate,
        fail,
        lines,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let config = AuditConfig {
        sinks: vec![SinkConfig::File(FileSinkConfig {
            path: path.clone(),
            ..FileSinkConfig::default()
        })],
        queue: 64,
        ..AuditConfig::default()
    };
    let observer = Arc::new(Counting::default());
    let sink = AuditSink::start(&config, observer.clone()).unwrap();
    let n = 2_000;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let sink = sink.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / 8 {
                sink.record(event(t * 1000 + i)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    sink.close().await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), n);
    assert_eq!(observer.written.load(Ordering::SeqCst), n as u64);
    assert_eq!(observer.dropped.load(Ordering::SeqCst), 0);
    let report = crate::audit::chain::verify_stream(text.as_bytes()).unwrap();
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    // After close, events are dropped and counted, not lost silently.
    sink.record(event(0)).await;
    assert_eq!(observer.dropped.load(Ordering::SeqCst), 1);
    assert!(!sink.healthy());
}

// The std lock blocks the writer thread (as a stuck disk would), never this task.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_sink_applies_backpressure_then_drops_and_goes_unhealthy() {
    let h = controlled(4, Duration::from_millis(30));
    assert!(h.sink.healthy());
    let held = h.gate.lock().unwrap();
    let started = std::time::Instant::now();
    for i in 0..20 {
        h.sink.record(event(i)).await;
    }
    let dropped = h.observer.dropped.load(Ordering::SeqCst);
    // One event is in the writer's hands, four in the queue: the rest waited, then dropped.
    assert!((14..=16).contains(&dropped), "dropped {dropped}");
    assert!(
        started.elapsed() >= Duration::from_millis(30 * 14),
        "each drop waited first"
    );
    assert!(!h.sink.healthy());
    assert!(h.sink.refuse_uploads(), "fail_closed is the default");
    drop(held);
    h.sink.flush().await;
    assert_eq!(
        h.lines.load(Ordering::SeqCst) + dropped,
        20,
        "every event written or counted"
    );
    assert!(h.sink.healthy(), "recovers once the queue drained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_failures_are_counted_and_recover() {
    let h = controlled(16, Duration::from_millis(10));
    h.fail.store(true, Ordering::SeqCst);
    h.sink.record(event(1)).await;
    h.sink.flush().await;
    assert_eq!(h.observer.failed.load(Ordering::SeqCst), 1);
    assert!(!h.sink.healthy());
    h.fail.store(false, Ordering::SeqCst);
    h.sink.record(event(2)).await;
    h.sink.flush().await;
    assert!(h.sink.healthy());
    assert_eq!(h.observer.written.load(Ordering::SeqCst), 1);
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_record_never_waits() {
    let h = controlled(2, Duration::from_secs(10));
    let held = h.gate.lock().unwrap();
    let started = std::time::Instant::now();
    for i in 0..10 {
        h.sink.try_record(event(i));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(h.observer.dropped.load(Ordering::SeqCst) >= 7);
    drop(held);
    h.sink.close().await;
}
