//! Runs one workload on one side and accounts for it: what the client saw, and what the proxy,
//! the client and the origin spent, read from /proc around the measured window.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::body::Payload;
use crate::idle;
use crate::load::{self, LoadResult, LoadSpec, Window};
use crate::origin::OriginStats;
use crate::procfs::{self, CLIENT_THREADS, MachineTicks, ORIGIN_THREADS};
use crate::report::{Record, mib};
use crate::workload::{Headline, Network, Via, Workload};

/// Longest a 1 MiB exchange may take; longest the single large upload may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(900);

/// How long and how hard.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) conns: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) large_bytes: u64,
    pub(crate) idle_conns: usize,
    /// How long the idle connections stay idle before memory is read and they are probed.
    pub(crate) idle_hold: Duration,
}

/// Everything a workload run needs.
pub(crate) struct Bench {
    pub(crate) net: Network,
    pub(crate) payload: Payload,
    pub(crate) origin: Arc<OriginStats>,
    pub(crate) sluis_pid: u32,
    pub(crate) settings: Settings,
    /// Run-wide fields copied into every record.
    pub(crate) template: Record,
}

/// Counters read at the edges of a window.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    sluis_cpu: Option<f64>,
    client_cpu: f64,
    origin_cpu: f64,
    machine: MachineTicks,
    origin_bytes: u64,
}

// === impl Snapshot ===

impl Snapshot {
    fn take(pid: Option<u32>, origin: &OriginStats) -> Self {
        Self {
            sluis_cpu: pid.and_then(procfs::process_cpu),
            client_cpu: procfs::threads_cpu(CLIENT_THREADS),
            origin_cpu: procfs::threads_cpu(ORIGIN_THREADS),
            machine: procfs::machine_ticks(),
            origin_bytes: origin.body_bytes.load(Ordering::Relaxed),
        }
    }
}

// === impl Bench ===

impl Bench {
    pub(crate) async fn run(&self, w: Workload, via: Via) -> Record {
        if w.idle() {
            return self.run_idle(w).await;
        }
        let pid = (via == Via::Sluis).then_some(self.sluis_pid);
        let shape = w.shape(self.settings.large_bytes);
        let spec = Arc::new(LoadSpec {
            endpoint: w.endpoint(via, &self.net),
            method: shape.method.clone(),
            path: shape.path,
            body_len: shape.body_len,
            conns: if shape.single { 1 } else { self.settings.conns },
            new_conn: shape.new_conn,
            timeout: if shape.single {
                UPLOAD_TIMEOUT
            } else {
                REQUEST_TIMEOUT
            },
        });
        let load_avg = procfs::load_average();
        if let Some(pid) = pid {
            let _ = procfs::reset_peak_rss(pid);
        }
        let (result, window, before, after) = if shape.single {
            let before = Snapshot::take(pid, &self.origin);
            let (result, window) = load::single(&spec, &self.payload).await;
            (result, window, before, Snapshot::take(pid, &self.origin))
        } else {
            let start = Instant::now() + self.settings.warmup;
            let window = Window {
                start,
                end: start + self.settings.duration,
            };
            let workers = load::start(spec.clone(), &self.payload, window);
            tokio::time::sleep_until(window.start).await;
            let before = Snapshot::take(pid, &self.origin);
            tokio::time::sleep_until(window.end).await;
            let after = Snapshot::take(pid, &self.origin);
            (load::finish(workers).await, window, before, after)
        };
        let mut record = self.record(w, via, &spec, &result, window, before, after);
        record.load_avg = load_avg;
        if let Some(pid) = pid {
            record.sluis_peak_rss_mib = mib(procfs::status_bytes(pid, "VmHWM"));
            record.sluis_rss_mib = mib(procfs::status_bytes(pid, "VmRSS"));
        }
        record
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        w: Workload,
        via: Via,
        spec: &LoadSpec,
        result: &LoadResult,
        window: Window,
        before: Snapshot,
        after: Snapshot,
    ) -> Record {
        let secs = window.secs().max(1e-9);
        let up_bytes = result.ok * spec.body_len;
        let sluis_cpu = after.sluis_cpu.zip(before.sluis_cpu).map(|(a, b)| a - b);
        let mut r = Record {
            workload: w.name(),
            via: via.name(),
            conns: spec.conns,
            window_s: window.secs(),
            ok: result.ok,
            failures: result.failures,
            first_error: result.first_error.clone(),
            req_per_s: result.ok as f64 / secs,
            mb_per_s: up_bytes as f64 / 1e6 / secs,
            conns_per_s: if spec.new_conn {
                result.ok as f64 / secs
            } else {
                0.0
            },
            p50_ms: result.quantile_ms(0.5),
            p99_ms: result.quantile_ms(0.99),
            max_ms: result.quantile_ms(1.0),
            up_bytes,
            origin_bytes: after.origin_bytes.saturating_sub(before.origin_bytes),
            sluis_cpu_s: sluis_cpu,
            client_cpu_s: after.client_cpu - before.client_cpu,
            origin_cpu_s: after.origin_cpu - before.origin_cpu,
            machine_busy: procfs::busy_share(before.machine, after.machine),
            ..self.template.clone()
        };
        if let Some(cpu) = sluis_cpu {
            if w.cpu_per_request() && result.ok > 0 {
                r.sluis_cpu_ms_per_1k_req = Some(cpu * 1000.0 / (result.ok as f64 / 1000.0));
            } else if up_bytes > 0 {
                r.sluis_cpu_s_per_gb = Some(cpu / (up_bytes as f64 / 1e9));
            }
        }
        r.headline = match w.headline() {
            Headline::ReqPerSec => r.req_per_s,
            Headline::ConnPerSec => r.conns_per_s,
            Headline::MbPerSec => r.mb_per_s,
            Headline::RssMib => r.sluis_rss_mib.unwrap_or(0.0),
        };
        r
    }

    async fn run_idle(&self, w: Workload) -> Record {
        let endpoint = w.endpoint(Via::Sluis, &self.net);
        let load_avg = procfs::load_average();
        let before = Snapshot::take(Some(self.sluis_pid), &self.origin);
        let started = Instant::now();
        let result = idle::run(
            &endpoint,
            w.shape(self.settings.large_bytes).path,
            &self.payload,
            self.settings.idle_conns,
            self.sluis_pid,
            self.settings.idle_hold,
        )
        .await;
        let after = Snapshot::take(Some(self.sluis_pid), &self.origin);
        let window_s = started.elapsed().as_secs_f64();
        Record {
            workload: w.name(),
            via: Via::Sluis.name(),
            load_avg,
            conns: self.settings.idle_conns,
            window_s,
            ok: result.still_open,
            failures: result.failures,
            first_error: result.first_error,
            sluis_cpu_s: after.sluis_cpu.zip(before.sluis_cpu).map(|(a, b)| a - b),
            sluis_peak_rss_mib: mib(result.peak_rss),
            sluis_rss_mib: mib(result.rss_idle),
            sluis_rss_before_mib: mib(result.rss_before),
            idle_opened: Some(result.opened),
            idle_conns: Some(result.still_open),
            idle_hold_s: self.settings.idle_hold.as_secs_f64(),
            client_cpu_s: after.client_cpu - before.client_cpu,
            origin_cpu_s: after.origin_cpu - before.origin_cpu,
            machine_busy: procfs::busy_share(before.machine, after.machine),
            headline: mib(result.rss_idle).unwrap_or(0.0),
            ..self.template.clone()
        }
    }
}
