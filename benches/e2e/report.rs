//! Results: one JSON record per workload and side (appended to a `.jsonl` file as it is
//! measured), and the Markdown tables printed at the end.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::Error;
use crate::workload::{Headline, Workload};

/// One workload on one side (direct or sluis).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Record {
    pub(crate) run: String,
    pub(crate) date: String,
    pub(crate) commit: String,
    pub(crate) machine: String,
    /// Load average when the workload started: other work on the machine shows here.
    pub(crate) load_avg: String,
    pub(crate) mode: String,
    pub(crate) workload: &'static str,
    pub(crate) via: &'static str,
    /// Repetition (1, 2, ...); in a summary, the number of repetitions.
    pub(crate) rep: usize,
    pub(crate) conns: usize,
    pub(crate) window_s: f64,
    pub(crate) ok: u64,
    pub(crate) failures: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) req_per_s: f64,
    pub(crate) mb_per_s: f64,
    pub(crate) conns_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Body bytes of the counted requests.
    pub(crate) up_bytes: u64,
    /// Body bytes the origin received during the window (all requests, counted or not).
    pub(crate) origin_bytes: u64,
    pub(crate) sluis_cpu_s: Option<f64>,
    pub(crate) sluis_cpu_s_per_gb: Option<f64>,
    pub(crate) sluis_cpu_ms_per_1k_req: Option<f64>,
    pub(crate) sluis_peak_rss_mib: Option<f64>,
    pub(crate) sluis_rss_mib: Option<f64>,
    /// IDLE: the proxy's RSS before the connections were opened.
    pub(crate) sluis_rss_before_mib: Option<f64>,
    /// IDLE: connections opened (each carried one request).
    pub(crate) idle_opened: Option<u64>,
    /// IDLE: of those, the ones that still served a request after the idle period.
    pub(crate) idle_conns: Option<u64>,
    /// IDLE: seconds the connections stayed idle.
    pub(crate) idle_hold_s: f64,
    pub(crate) client_cpu_s: f64,
    pub(crate) origin_cpu_s: f64,
    /// Share of both cores busy during the window (everything on the machine).
    pub(crate) machine_busy: f64,
    /// The workload's headline figure (req/s, MB/s, conn/s or MiB).
    pub(crate) headline: f64,
    /// sluis's headline divided by direct's in the same repetition; in a summary, the median
    /// of those ratios.
    pub(crate) ratio: Option<f64>,
}

/// What the run was, for the table's heading.
pub(crate) struct RunInfo {
    pub(crate) mode: String,
    pub(crate) date: String,
    pub(crate) commit: String,
    pub(crate) machine: String,
    pub(crate) load_avg: String,
    pub(crate) settings: String,
}

// === impl Record ===

impl Record {
    /// Appends this record as one JSON line.
    pub(crate) fn append_to(&self, path: &Path) -> Result<(), Error> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let line = serde_json::to_string(self)?;
        writeln!(file, "{line}")?;
        Ok(())
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// One record per workload and side: the repetition with the median headline (so its figures
/// belong together), the median of the per-repetition ratios, failures summed over all.
pub(crate) fn summarize(records: &[Record]) -> Vec<Record> {
    let mut keys: Vec<(&str, &str)> = records.iter().map(|r| (r.workload, r.via)).collect();
    keys.dedup();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for key in keys {
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let mut group: Vec<&Record> = records
            .iter()
            .filter(|r| (r.workload, r.via) == key)
            .collect();
        group.sort_by(|a, b| a.headline.total_cmp(&b.headline));
        let Some(mid) = group.get(group.len() / 2) else {
            continue;
        };
        let mut ratios: Vec<f64> = group.iter().filter_map(|r| r.ratio).collect();
        ratios.sort_by(f64::total_cmp);
        let mut summary = (*mid).clone();
        summary.ratio = ratios.get(ratios.len() / 2).copied();
        summary.failures = group.iter().map(|r| r.failures).sum();
        summary.rep = group.len();
        out.push(summary);
    }
    out
}

pub(crate) fn mib(bytes: Option<u64>) -> Option<f64> {
    bytes.map(|b| b as f64 / MIB)
}

/// The Markdown report: the headline table, where the CPU went, and the targets this bench
/// can check on its own (the others need the peers harness).
pub(crate) fn markdown(
    info: &RunInfo,
    records: &[Record],
    skipped: &[(Workload, String)],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## sluis end-to-end: {} mode, {}, commit {}\n",
        info.mode, info.date, info.commit
    );
    let _ = writeln!(
        out,
        "Machine: {}; load average at start {}.",
        info.machine, info.load_avg
    );
    let _ = writeln!(out, "{}\n", info.settings);
    let _ = writeln!(
        out,
        "| workload | what | direct | sluis | sluis/direct | p50 / p99 ms direct | p50 / p99 ms sluis | sluis CPU | sluis peak RSS | failures direct / sluis |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for w in Workload::ALL {
        let find = |via: &str| {
            records
                .iter()
                .find(|r| r.workload == w.name() && r.via == via)
        };
        let (direct, sluis) = (find("direct"), find("sluis"));
        if direct.is_none() && sluis.is_none() {
            continue;
        }
        let _ = writeln!(out, "{}", table_row(w, direct, sluis));
    }
    let mut reasons: Vec<&String> = skipped.iter().map(|(_, why)| why).collect();
    reasons.dedup();
    for why in reasons {
        let names: Vec<&str> = skipped
            .iter()
            .filter(|(_, w)| w == why)
            .map(|(w, _)| w.name())
            .collect();
        let _ = writeln!(out, "\nSkipped {}: {why}.", names.join(", "));
    }
    out.push_str(&cores_table(records));
    out.push_str(&targets(records));
    out
}

fn table_row(w: Workload, direct: Option<&Record>, sluis: Option<&Record>) -> String {
    let figure = |r: Option<&Record>| r.map_or("–".to_owned(), |r| headline_text(w, r));
    let lat = |r: Option<&Record>| {
        r.filter(|_| !w.idle()).map_or("–".to_owned(), |r| {
            format!("{} / {}", num(r.p50_ms, 2), num(r.p99_ms, 2))
        })
    };
    let ratio = sluis
        .and_then(|r| r.ratio)
        .map_or("–".to_owned(), |x| format!("**{}**", num(x, 2)));
    let cpu = sluis.map_or("–".to_owned(), |r| {
        match (r.sluis_cpu_ms_per_1k_req, r.sluis_cpu_s_per_gb) {
            (Some(ms), _) if w == Workload::W4c => format!("{} ms/conn", num(ms / 1000.0, 2)),
            (Some(ms), _) => format!("{} ms/1k req", num(ms, 1)),
            (None, Some(s)) => format!("{} s/GB", num(s, 2)),
            _ => "–".to_owned(),
        }
    });
    let rss = sluis
        .and_then(|r| r.sluis_peak_rss_mib)
        .map_or("–".to_owned(), |m| format!("{} MiB", num(m, 0)));
    let fails = |r: Option<&Record>| r.map_or("–".to_owned(), |r| r.failures.to_string());
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
        w.name(),
        w.describe(),
        figure(direct),
        figure(sluis),
        ratio,
        lat(direct),
        lat(sluis),
        cpu,
        rss,
        fails(direct),
        fails(sluis)
    )
}

fn headline_text(w: Workload, r: &Record) -> String {
    match w.headline() {
        Headline::ReqPerSec => format!("{} req/s", num(r.req_per_s, 0)),
        Headline::ConnPerSec => format!("{} conn/s", num(r.conns_per_s, 0)),
        Headline::MbPerSec if w == Workload::W4b => format!(
            "{} MB/s ({} conn/s)",
            num(r.mb_per_s, 0),
            num(r.conns_per_s, 0)
        ),
        Headline::MbPerSec if matches!(w, Workload::W5 | Workload::W5t) => {
            let places = if r.window_s < 1.0 { 3 } else { 1 };
            format!(
                "{} MB/s ({} s)",
                num(r.mb_per_s, 0),
                num(r.window_s, places)
            )
        }
        Headline::MbPerSec => format!("{} MB/s", num(r.mb_per_s, 0)),
        Headline::RssMib => {
            let before = r.sluis_rss_before_mib.unwrap_or(0.0);
            let after = r.sluis_rss_mib.unwrap_or(0.0);
            let opened = r.idle_opened.unwrap_or(0);
            let kept = r.idle_conns.unwrap_or(0);
            let per_conn = if opened > 0 {
                (after - before) * 1024.0 / opened as f64
            } else {
                0.0
            };
            format!(
                "{} conns, {} still open after {} s: RSS {} MiB (+{} MiB, {} KiB/conn)",
                num(opened as f64, 0),
                num(kept as f64, 0),
                r.idle_hold_s,
                num(after, 1),
                num(after - before, 1),
                num(per_conn, 1)
            )
        }
    }
}

fn cores_table(records: &[Record]) -> String {
    let mut out = String::from(
        "\nWhere the CPU went during each window (CPU-seconds per second; 2.0 = both cores):\n\n\
         | workload | via | client | origin | sluis | whole machine busy |\n|---|---|---|---|---|---|\n",
    );
    // CPU time comes in 10 ms ticks: shorter windows would show mostly rounding.
    for r in records.iter().filter(|r| r.window_s >= 0.2) {
        let per_s = |s: f64| num(s / r.window_s, 2);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} % |",
            r.workload,
            r.via,
            per_s(r.client_cpu_s),
            per_s(r.origin_cpu_s),
            r.sluis_cpu_s.map_or("–".to_owned(), per_s),
            num(r.machine_busy * 100.0, 0)
        );
    }
    out
}

/// The targets from the issue that need no peer: W3 against direct, W5t memory, IDLE memory.
fn targets(records: &[Record]) -> String {
    let sluis = |w: Workload| {
        records
            .iter()
            .find(|r| r.workload == w.name() && r.via == "sluis")
    };
    let mut out = String::from(
        "\nTargets this bench checks on its own (the rest need the peers harness):\n\n",
    );
    let mut line = |text: String, pass: Option<bool>| {
        let mark = match pass {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        let _ = writeln!(out, "- {text}: {mark}");
    };
    let w3 = sluis(Workload::W3).and_then(|r| r.ratio);
    line(
        format!(
            "W3 tunnel at least 0.9x direct (got {})",
            w3.map_or("–".into(), |x| num(x, 2))
        ),
        w3.map(|x| x >= 0.9),
    );
    let w5t = sluis(Workload::W5t).and_then(|r| r.sluis_peak_rss_mib);
    line(
        format!(
            "W5t peak RSS at most 64 MiB (got {})",
            w5t.map_or("–".into(), |x| format!("{} MiB", num(x, 0)))
        ),
        w5t.map(|x| x <= 64.0),
    );
    let idle = sluis(Workload::Idle);
    let idle_rss = idle.and_then(|r| r.sluis_rss_mib);
    let opened = idle.and_then(|r| r.idle_opened).unwrap_or(0);
    let kept = idle.and_then(|r| r.idle_conns).unwrap_or(0);
    line(
        format!(
            "10,000 idle connections in at most 100 MiB, all kept (got {} with {} opened, {} kept)",
            idle_rss.map_or("–".into(), |x| format!("{} MiB", num(x, 0))),
            num(opened as f64, 0),
            num(kept as f64, 0)
        ),
        idle_rss
            .filter(|_| opened >= 10_000)
            .map(|x| x <= 100.0 && kept == opened),
    );
    out
}

/// A number with thousands separators and `decimals` digits after the point.
pub(crate) fn num(x: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}
