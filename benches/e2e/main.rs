//! End-to-end load bench: the same workloads straight to a local origin ("direct") and through
//! the real `sluis` binary, in one run, reported as ratios. Loopback only; the origin, the
//! client and the proxy share the machine, and the client's and origin's CPU is recorded beside
//! the proxy's so that the accounting stays honest. See benches/README.md.
//!
//! `cargo bench --bench e2e [-- --full] [-- W1 W3 ...]`; `cargo test` runs a short smoke pass.

#![allow(
    clippy::print_stdout,
    reason = "the Markdown report on stdout is this bench's output"
)]

mod body;
mod client;
mod idle;
mod load;
mod measure;
mod opts;
mod origin;
mod pki;
mod procfs;
mod report;
mod runner;
mod sluis;
mod workload;

use std::process::ExitCode;
use std::time::Duration;

use crate::body::Payload;
use crate::measure::{Bench, Settings};
use crate::opts::Opts;
use crate::origin::Origin;
use crate::pki::Ca;
use crate::report::{Record, RunInfo};
use crate::sluis::{Sluis, SluisSetup};
use crate::workload::{Network, TUNNEL_HOST, UPLOAD_HOST};

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// Bytes of prose every body is cut from.
const PAYLOAD_BYTES: usize = 4 << 20;

fn main() -> ExitCode {
    let result = Opts::from_env().and_then(run);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("e2e: some requests failed; see the table and the .jsonl file");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("e2e: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the whole bench; true if nothing failed.
fn run(mut opts: Opts) -> Result<bool, Error> {
    let limit = procfs::raise_nofile(opts.idle_conns as u64 + 4096);
    let fit = usize::try_from(limit.saturating_sub(1024)).unwrap_or(usize::MAX);
    if opts.idle_conns > fit {
        eprintln!(
            "e2e: open-file limit {limit}: IDLE uses {fit} connections instead of {}",
            opts.idle_conns
        );
        opts.idle_conns = fit;
    }
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = date.chars().filter(char::is_ascii_digit).collect();
    let run_dir = opts.out.join(format!("run-{stamp}"));
    std::fs::create_dir_all(&run_dir)?;
    let info = RunInfo {
        mode: opts.mode.to_owned(),
        date: date.clone(),
        commit: commit(),
        machine: procfs::machine_description(),
        load_avg: procfs::load_average(),
        settings: settings_line(&opts),
    };
    let template = Record {
        run: stamp.clone(),
        date,
        commit: info.commit.clone(),
        machine: info.machine.clone(),
        mode: info.mode.clone(),
        ..Record::default()
    };

    let origin_rt = runtime(procfs::ORIGIN_THREADS)?;
    let client_rt = runtime(procfs::CLIENT_THREADS)?;
    let origin_ca = Ca::new("sluis bench origin CA")?;
    let proxy_ca = Ca::new("sluis bench interception CA")?;
    let origin = Origin::start(
        &origin_rt,
        origin_ca.server_config(&[UPLOAD_HOST, TUNNEL_HOST])?,
    )?;
    let origin_ca_files = origin_ca.write(&run_dir, "origin-ca")?;
    let proxy_ca_files = proxy_ca.write(&run_dir, "proxy-ca")?;
    let mut sluis = Sluis::start(&SluisSetup {
        bin: &opts.sluis_bin,
        run_dir: &run_dir,
        origin_ca: &origin_ca_files.cert,
        proxy_ca_cert: &proxy_ca_files.cert,
        proxy_ca_key: &proxy_ca_files.key,
        inspect_host: UPLOAD_HOST,
        tunnel_host: TUNNEL_HOST,
        policy_dir: &opts.policy_dir,
        extra: opts.sluis_config.as_deref(),
    })?;
    eprintln!(
        "e2e: sluis pid {} on {}; config {}; log {}",
        sluis.pid,
        sluis.addr,
        sluis.config.display(),
        sluis.log.display()
    );

    let bench = Bench {
        net: Network {
            origin_http: origin.http,
            origin_https: origin.https,
            proxy: sluis.addr,
            origin_trust: pki::client_config(&origin_ca.cert_der)?,
            proxy_trust: pki::client_config(&proxy_ca.cert_der)?,
        },
        payload: Payload::new(PAYLOAD_BYTES),
        origin: origin.stats.clone(),
        sluis_pid: sluis.pid,
        settings: Settings {
            conns: opts.conns,
            warmup: opts.warmup,
            duration: opts.duration,
            large_bytes: opts.large_bytes,
            idle_conns: opts.idle_conns,
            idle_hold: opts.idle_hold,
        },
        template,
    };
    let jsonl = opts.out.join(format!("{stamp}.jsonl"));
    let (records, skipped) =
        client_rt.block_on(runner::run_all(&bench, &opts, &mut sluis, &jsonl))?;

    let summary = report::summarize(&records);
    let markdown = report::markdown(&info, &summary, &skipped);
    println!("{markdown}");
    std::fs::write(opts.out.join(format!("{stamp}.md")), &markdown)?;
    eprintln!(
        "e2e: results in {} and {}",
        jsonl.display(),
        opts.out.join(format!("{stamp}.md")).display()
    );
    sluis.stop(Duration::from_secs(10));
    client_rt.shutdown_timeout(Duration::from_secs(1));
    origin_rt.shutdown_timeout(Duration::from_secs(1));
    let bad_bodies = origin
        .stats
        .bad_bodies
        .load(std::sync::atomic::Ordering::Relaxed);
    let clean = records
        .iter()
        .all(|r| r.failures == 0 && (r.ok > 0 || !opts.strict))
        && bad_bodies == 0;
    let complete = !opts.strict || skipped.iter().all(|(w, _)| w.intercepted());
    Ok(clean && complete)
}

fn settings_line(opts: &Opts) -> String {
    let reps = if opts.reps > 1 {
        format!(
            " {} repetitions, sides alternating; figures are the median repetition, ratios the median ratio.",
            opts.reps
        )
    } else {
        String::new()
    };
    format!(
        "{} s measured per workload after {} s warm-up, {} connections, W5/W5t {} MiB, IDLE {} connections held {} s.{reps}",
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        opts.conns,
        opts.large_bytes >> 20,
        opts.idle_conns,
        opts.idle_hold.as_secs_f64()
    )
}

fn runtime(name: &str) -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()?)
}

/// The commit under test, marked when the worktree has changes.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_owned();
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}+changes")
    } else {
        head
    }
}
