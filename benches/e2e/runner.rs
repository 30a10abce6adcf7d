//! The order of a run: every repetition runs every chosen workload, direct and through sluis,
//! one instance of sluis for the whole run (as the peers harness does per repetition), and IDLE
//! and IDLEt once at the end. The two sides alternate (direct first in odd repetitions, sluis first in
//! even ones), so a machine that drifts during the run hits both alike.

use std::path::Path;
use std::time::Duration;

use crate::Error;
use crate::client::Endpoint;
use crate::measure::Bench;
use crate::opts::{Intercept, Opts};
use crate::report::Record;
use crate::sluis::Sluis;
use crate::workload::{UPLOAD_HOST, Via, Workload};

/// Workloads left out, with the reason.
pub(crate) type Skipped = Vec<(Workload, String)>;

/// Runs everything; records are appended to `jsonl` as each workload's pair completes.
pub(crate) async fn run_all(
    bench: &Bench,
    opts: &Opts,
    sluis: &mut Sluis,
    jsonl: &Path,
) -> Result<(Vec<Record>, Skipped), Error> {
    let intercepting = match opts.intercept {
        Intercept::Off => Err("interception off (--intercept off)".to_owned()),
        Intercept::On => Ok(()),
        Intercept::Auto => probe_interception(bench).await,
    };
    let mut skipped = Skipped::new();
    let mut chosen = Vec::new();
    for &w in &opts.workloads {
        match (w.intercepted(), &intercepting) {
            (true, Err(why)) => skipped.push((w, why.clone())),
            _ => chosen.push(w),
        }
    }
    // IDLE and IDLEt run once, last: the allocator keeps much of what 10,000 connections used,
    // which would inflate every later reading of the proxy's memory. IDLE, the target, first.
    let idle: Vec<Workload> = chosen.iter().copied().filter(|w| w.idle()).collect();
    chosen.retain(|w| !w.idle());
    let mut records = Vec::new();
    for rep in 1..=opts.reps {
        for &w in &chosen {
            let pair = run_pair(bench, sluis, w, rep).await?;
            for record in &pair {
                record.append_to(jsonl)?;
            }
            records.extend(pair);
        }
    }
    for w in idle {
        let pair = run_pair(bench, sluis, w, 1).await?;
        for record in &pair {
            record.append_to(jsonl)?;
        }
        records.extend(pair);
    }
    Ok((records, skipped))
}

/// One workload on both sides (IDLE, IDLEt: sluis only), in this repetition's order, with the ratio
/// set on the sluis record.
async fn run_pair(
    bench: &Bench,
    sluis: &mut Sluis,
    w: Workload,
    rep: usize,
) -> Result<Vec<Record>, Error> {
    let order: &[Via] = match (w, rep % 2) {
        (w, _) if w.idle() => &[Via::Sluis],
        (_, 1) => &[Via::Direct, Via::Sluis],
        _ => &[Via::Sluis, Via::Direct],
    };
    let mut pair = Vec::with_capacity(2);
    for &via in order {
        if !sluis.alive() {
            let log = sluis.log.display();
            return Err(format!("sluis died before {} {}; see {log}", w.name(), via.name()).into());
        }
        let mut record = bench.run(w, via).await;
        record.rep = rep;
        eprintln!("{}", progress_line(&record));
        pair.push(record);
    }
    let direct = pair
        .iter()
        .find(|r| r.via == Via::Direct.name())
        .map(|r| r.headline);
    if let Some(s) = pair.iter_mut().find(|r| r.via == Via::Sluis.name()) {
        s.ratio = direct.filter(|d| *d > 0.0).map(|d| s.headline / d);
    }
    Ok(pair)
}

/// Does sluis intercept TLS for the upload host? One CONNECT and a handshake that trusts only
/// the interception CA tell: a tunnel would show the origin's certificate instead.
async fn probe_interception(bench: &Bench) -> Result<(), String> {
    let endpoint: Endpoint = Workload::W4.endpoint(Via::Sluis, &bench.net);
    match tokio::time::timeout(Duration::from_secs(10), endpoint.connect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "sluis does not intercept {UPLOAD_HOST} (a handshake trusting only the interception CA failed: {e})"
        )),
        Err(_) => Err("the interception probe timed out".to_owned()),
    }
}

fn progress_line(r: &Record) -> String {
    let cpu = match (r.sluis_cpu_ms_per_1k_req, r.sluis_cpu_s_per_gb) {
        (Some(ms), _) => format!(", sluis {ms:.1} CPU-ms/1k req"),
        (None, Some(s)) => format!(", sluis {s:.2} CPU-s/GB"),
        _ => String::new(),
    };
    format!(
        "[{} {}] ok {} fail {} | {:.0} req/s {:.1} MB/s | p50 {:.2} p99 {:.2} ms{cpu}{}",
        r.workload,
        r.via,
        r.ok,
        r.failures,
        r.req_per_s,
        r.mb_per_s,
        r.p50_ms,
        r.p99_ms,
        r.first_error
            .as_deref()
            .map(|e| format!(" | first error: {e}"))
            .unwrap_or_default()
    )
}
