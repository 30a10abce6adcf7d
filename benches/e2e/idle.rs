//! IDLE: many kept-alive client connections that each carried one request and now wait, as
//! browsers leave them. What they cost the proxy is its resident memory with them open minus
//! before; afterwards every connection sends one more request, which shows that the proxy
//! kept them all.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::Error;
use crate::body::Payload;
use crate::client::{Endpoint, Sender, exchange};
use crate::procfs;

/// Connections opened (or probed) at once.
const PARALLEL: usize = 256;
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub(crate) struct IdleResult {
    /// Connections that were opened and carried their first request.
    pub(crate) opened: u64,
    /// Of those, the ones that carried a second request after the idle period.
    pub(crate) still_open: u64,
    pub(crate) failures: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) rss_before: Option<u64>,
    pub(crate) rss_idle: Option<u64>,
    pub(crate) peak_rss: Option<u64>,
    pub(crate) open_secs: f64,
}

/// Opens `count` connections to `endpoint` (each with one GET of `path`), waits `settle`, reads
/// the proxy's memory, then sends a second GET on each and closes them all.
pub(crate) async fn run(
    endpoint: &Endpoint,
    path: &'static str,
    payload: &Payload,
    count: usize,
    proxy_pid: u32,
    settle: Duration,
) -> IdleResult {
    let mut result = IdleResult {
        rss_before: procfs::status_bytes(proxy_pid, "VmRSS"),
        ..IdleResult::default()
    };
    let _ = procfs::reset_peak_rss(proxy_pid);
    let started = tokio::time::Instant::now();
    let senders = open_all(endpoint, path, payload, count, &mut result).await;
    result.open_secs = started.elapsed().as_secs_f64();
    result.opened = senders.len() as u64;
    tokio::time::sleep(settle).await;
    result.rss_idle = procfs::status_bytes(proxy_pid, "VmRSS");
    result.peak_rss = procfs::status_bytes(proxy_pid, "VmHWM");
    result.still_open = probe_all(endpoint, path, payload, senders, &mut result).await;
    result
}

async fn open_all(
    endpoint: &Endpoint,
    path: &'static str,
    payload: &Payload,
    count: usize,
    result: &mut IdleResult,
) -> Vec<Sender> {
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let (gate, endpoint, payload) = (gate.clone(), endpoint.clone(), payload.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let open = async {
                let mut sender = endpoint.connect().await?;
                get(&endpoint, path, &payload, &mut sender).await?;
                Ok::<_, Error>(sender)
            };
            tokio::time::timeout(TIMEOUT, open)
                .await
                .map_err(|_| Error::from("no answer within 30 s"))?
        });
    }
    let mut senders = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(Error::from).and_then(|r| r) {
            Ok(sender) => senders.push(sender),
            Err(e) => note_failure(result, &e),
        }
    }
    senders
}

async fn probe_all(
    endpoint: &Endpoint,
    path: &'static str,
    payload: &Payload,
    senders: Vec<Sender>,
    result: &mut IdleResult,
) -> u64 {
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let mut tasks = JoinSet::new();
    for mut sender in senders {
        let (gate, endpoint, payload) = (gate.clone(), endpoint.clone(), payload.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            tokio::time::timeout(TIMEOUT, get(&endpoint, path, &payload, &mut sender))
                .await
                .map_err(|_| Error::from("no answer within 30 s"))?
        });
    }
    let mut alive = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(Error::from).and_then(|r| r) {
            Ok(()) => alive += 1,
            Err(e) => note_failure(result, &e),
        }
    }
    alive
}

async fn get(
    endpoint: &Endpoint,
    path: &str,
    payload: &Payload,
    sender: &mut Sender,
) -> Result<(), Error> {
    let req = endpoint.request(&Method::GET, path, payload.body(0), 0)?;
    exchange(sender, req, 0).await
}

fn note_failure(result: &mut IdleResult, e: &Error) {
    result.failures += 1;
    result.first_error.get_or_insert_with(|| e.to_string());
}
