//! The load generator: `conns` workers in a closed loop, each sending its next request as soon
//! as the last one was answered and checked, on a kept-alive connection or a new one per
//! request. Requests are counted when they complete inside the measured window (after the
//! warm-up); a failure is counted wherever it happens, warm-up included.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Error;
use crate::body::Payload;
use crate::client::{Endpoint, Sender, exchange};

/// One load run.
pub(crate) struct LoadSpec {
    pub(crate) endpoint: Endpoint,
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) body_len: u64,
    pub(crate) conns: usize,
    /// A new connection (TCP, CONNECT, TLS handshake) for every request.
    pub(crate) new_conn: bool,
    /// Longest time one request (connect included) may take before it counts as failed.
    pub(crate) timeout: Duration,
}

/// The measured window of a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start: Instant,
    pub(crate) end: Instant,
}

/// What the workers saw.
#[derive(Debug, Default)]
pub(crate) struct LoadResult {
    /// Requests that completed and passed every check inside the window.
    pub(crate) ok: u64,
    pub(crate) failures: u64,
    pub(crate) first_error: Option<String>,
    /// Latency of each counted request in microseconds, sorted.
    pub(crate) latencies_us: Vec<u32>,
    /// Connections opened (inside and outside the window).
    pub(crate) conns_opened: u64,
}

// === impl Window ===

impl Window {
    pub(crate) fn secs(&self) -> f64 {
        self.end.duration_since(self.start).as_secs_f64()
    }
}

// === impl LoadResult ===

impl LoadResult {
    fn merge(&mut self, other: LoadResult) {
        self.ok += other.ok;
        self.failures += other.failures;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
        self.conns_opened += other.conns_opened;
    }

    /// The `q` quantile (0.0..=1.0) of the counted latencies, in milliseconds.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let last = self.latencies_us.len() - 1;
        let idx = ((last as f64) * q).round() as usize;
        self.latencies_us
            .get(idx.min(last))
            .map_or(0.0, |&us| f64::from(us) / 1000.0)
    }
}

/// Starts the workers on the current runtime; they stop sending when `window.end` passes.
/// Returns the set to await for the result.
pub(crate) fn start(spec: Arc<LoadSpec>, payload: &Payload, window: Window) -> JoinSet<LoadResult> {
    let mut workers = JoinSet::new();
    for _ in 0..spec.conns {
        workers.spawn(worker(spec.clone(), payload.clone(), window));
    }
    workers
}

/// Waits for every worker and merges what they saw.
pub(crate) async fn finish(mut workers: JoinSet<LoadResult>) -> LoadResult {
    let mut total = LoadResult::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(result) => total.merge(result),
            Err(e) => {
                total.failures += 1;
                total
                    .first_error
                    .get_or_insert_with(|| format!("worker died: {e}"));
            }
        }
    }
    total.latencies_us.sort_unstable();
    total
}

async fn worker(spec: Arc<LoadSpec>, payload: Payload, window: Window) -> LoadResult {
    let mut seen = LoadResult::default();
    let mut kept: Option<Sender> = None;
    loop {
        let began = Instant::now();
        if began >= window.end {
            break;
        }
        let reuse = kept.take().filter(|s| !spec.new_conn && !s.is_closed());
        if reuse.is_none() {
            seen.conns_opened += 1;
        }
        let attempt = tokio::time::timeout(spec.timeout, one(&spec, &payload, reuse)).await;
        let done = Instant::now();
        match attempt {
            Ok(Ok(sender)) => {
                if !spec.new_conn {
                    kept = Some(sender);
                }
                if done >= window.start && done <= window.end {
                    seen.ok += 1;
                    let us = done.duration_since(began).as_micros();
                    seen.latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            Ok(Err(e)) => fail(&mut seen, e.to_string()).await,
            Err(_) => fail(&mut seen, format!("no answer within {:?}", spec.timeout)).await,
        }
    }
    seen
}

/// One request on `reuse` or on a new connection; returns the connection for the next one.
async fn one(spec: &LoadSpec, payload: &Payload, reuse: Option<Sender>) -> Result<Sender, Error> {
    let mut sender = match reuse {
        Some(sender) => sender,
        None => spec.endpoint.connect().await?,
    };
    let body = payload.body(spec.body_len);
    let req = spec
        .endpoint
        .request(&spec.method, spec.path, body, spec.body_len)?;
    exchange(&mut sender, req, spec.body_len).await?;
    Ok(sender)
}

async fn fail(seen: &mut LoadResult, error: String) {
    seen.failures += 1;
    seen.first_error.get_or_insert(error);
    // A refusing proxy answers at once; pausing keeps a failing run from spinning a core.
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Exactly one request on a new connection; the window is that request, connect included.
pub(crate) async fn single(spec: &LoadSpec, payload: &Payload) -> (LoadResult, Window) {
    let mut seen = LoadResult {
        conns_opened: 1,
        ..LoadResult::default()
    };
    let start = Instant::now();
    let attempt = tokio::time::timeout(spec.timeout, one(spec, payload, None)).await;
    let end = Instant::now();
    match attempt {
        Ok(Ok(_)) => {
            seen.ok = 1;
            let us = end.duration_since(start).as_micros();
            seen.latencies_us
                .push(u32::try_from(us).unwrap_or(u32::MAX));
        }
        Ok(Err(e)) => {
            seen.failures = 1;
            seen.first_error = Some(e.to_string());
        }
        Err(_) => {
            seen.failures = 1;
            seen.first_error = Some(format!("no answer within {:?}", spec.timeout));
        }
    }
    (seen, Window { start, end })
}
