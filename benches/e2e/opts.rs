//! Options: arguments after `--`, each with an `E2E_*` environment variable as fallback, and
//! three presets. `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) the
//! bench runs its smoke preset, a few seconds that prove every path works.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::Error;
use crate::workload::Workload;

#[derive(Debug, Parser)]
#[command(
    name = "e2e",
    about = "End-to-end load bench: a local origin, direct and through the real sluis binary",
    after_help = "Every option also reads E2E_<NAME> from the environment (E2E_FULL=1, \
                  E2E_DURATION=10, E2E_WORKLOADS=\"W1 W3\", E2E_INTERCEPT=on, ...)."
)]
struct Args {
    /// Workloads to run: W1 W2 W3 W4 W4h2 W4b W4c W5 W5t IDLE IDLEt IDLEh2 (default: all).
    workloads: Vec<String>,
    /// The peers harness's settings: 15 s per workload, 1 GiB uploads.
    #[arg(long)]
    full: bool,
    /// Seconds measured per workload (default 5; full 15).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of load before the measured window (default 1).
    #[arg(long)]
    warmup: Option<f64>,
    /// Repetitions; the sides alternate and the table shows medians (default 1; full 3).
    #[arg(long)]
    reps: Option<usize>,
    /// Client connections for W1-W4c and W4h2 (default 32).
    #[arg(long)]
    conns: Option<usize>,
    /// Size of the W5/W5t upload, e.g. 268435456, 256MiB, 1GiB (default 256MiB; full 1GiB).
    #[arg(long)]
    large: Option<String>,
    /// Connections for IDLE, IDLEt and IDLEh2 (default 10000).
    #[arg(long)]
    idle_conns: Option<usize>,
    /// Seconds the idle workloads' connections stay idle before they are measured and probed (default 2;
    /// full 15, longer than sluis's header_read_timeout).
    #[arg(long)]
    idle_hold: Option<f64>,
    /// W4, W4h2, W4b, W4c, W5t, IDLEt, IDLEh2: run them if a probe shows sluis intercepts
    /// (auto), always (on: failures count), or never (off).
    #[arg(long, value_enum)]
    intercept: Option<Intercept>,
    /// TOML file merged over the generated sluis config (its values win); none by default.
    #[arg(long)]
    sluis_config: Option<PathBuf>,
    /// Another sluis binary to measure instead of this checkout's (A/B of two builds).
    #[arg(long)]
    sluis_bin: Option<PathBuf>,
    /// Policy directory for sluis (default: the repository's policies/).
    #[arg(long)]
    policy_dir: Option<PathBuf>,
    /// Where results go (default: target/e2e).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Intercept {
    Auto,
    On,
    Off,
}

/// The options the bench runs with.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) mode: &'static str,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) reps: usize,
    pub(crate) conns: usize,
    pub(crate) large_bytes: u64,
    pub(crate) idle_conns: usize,
    pub(crate) idle_hold: Duration,
    pub(crate) intercept: Intercept,
    pub(crate) sluis_config: Option<PathBuf>,
    pub(crate) sluis_bin: PathBuf,
    pub(crate) policy_dir: PathBuf,
    pub(crate) out: PathBuf,
    /// Smoke runs fail on anything short of a clean pass; they are a test.
    pub(crate) strict: bool,
}

// === impl Opts ===

impl Opts {
    /// Reads the command line (as `cargo bench` passes it) and the environment.
    pub(crate) fn from_env() -> Result<Self, Error> {
        let argv: Vec<String> = std::env::args().collect();
        if !argv.iter().any(|a| a == "--bench") {
            return Self::smoke();
        }
        let args = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
        let full = args.full || env("FULL").is_some_and(|v| v != "0");
        let mut names = args.workloads;
        if names.is_empty()
            && let Some(list) = env("WORKLOADS")
        {
            names = list.split_whitespace().map(str::to_owned).collect();
        }
        let large = args.large.or_else(|| env("LARGE"));
        Ok(Self {
            mode: if full { "full" } else { "short" },
            workloads: parse_workloads(&names)?,
            duration: secs(args.duration, "DURATION", if full { 15.0 } else { 5.0 })?,
            warmup: secs(args.warmup, "WARMUP", 1.0)?,
            reps: num(args.reps, "REPS", if full { 3 } else { 1 })?.max(1),
            conns: num(args.conns, "CONNS", 32)?,
            large_bytes: match large {
                Some(text) => parse_size(&text)?,
                None if full => 1 << 30,
                None => 256 << 20,
            },
            idle_conns: num(args.idle_conns, "IDLE_CONNS", 10_000)?,
            idle_hold: secs(args.idle_hold, "IDLE_HOLD", if full { 15.0 } else { 5.0 })?,
            intercept: match args.intercept {
                Some(i) => i,
                None => match env("INTERCEPT").as_deref() {
                    None | Some("auto") => Intercept::Auto,
                    Some("1" | "on") => Intercept::On,
                    Some("0" | "off") => Intercept::Off,
                    Some(other) => {
                        return Err(format!("E2E_INTERCEPT={other}: auto, on or off").into());
                    }
                },
            },
            sluis_config: args
                .sluis_config
                .or_else(|| env("SLUIS_CONFIG").map(PathBuf::from)),
            sluis_bin: args
                .sluis_bin
                .or_else(|| env("SLUIS_BIN").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluis"))),
            policy_dir: args
                .policy_dir
                .or_else(|| env("POLICY_DIR").map(PathBuf::from))
                .unwrap_or_else(default_policy_dir),
            out: args
                .out
                .or_else(|| env("OUT").map(PathBuf::from))
                .unwrap_or_else(default_out),
            strict: false,
        })
    }

    /// Under `cargo test`: every workload, briefly, few connections, small uploads.
    fn smoke() -> Result<Self, Error> {
        Ok(Self {
            mode: "smoke",
            workloads: Workload::ALL.to_vec(),
            duration: Duration::from_millis(400),
            warmup: Duration::from_millis(200),
            reps: 1,
            conns: 4,
            large_bytes: 8 << 20,
            idle_conns: 64,
            idle_hold: Duration::from_millis(500),
            intercept: Intercept::Auto,
            sluis_config: env("SLUIS_CONFIG").map(PathBuf::from),
            sluis_bin: PathBuf::from(env!("CARGO_BIN_EXE_sluis")),
            policy_dir: default_policy_dir(),
            out: default_out().join("smoke"),
            strict: true,
        })
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(format!("E2E_{name}"))
        .ok()
        .filter(|v| !v.is_empty())
}

fn secs(arg: Option<f64>, name: &str, default: f64) -> Result<Duration, Error> {
    let value = match arg {
        Some(v) => v,
        None => match env(name) {
            Some(text) => text
                .parse()
                .map_err(|_| format!("E2E_{name}={text}: not a number"))?,
            None => default,
        },
    };
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{name}: {value} is not a duration").into())
}

fn num(arg: Option<usize>, name: &str, default: usize) -> Result<usize, Error> {
    match (arg, env(name)) {
        (Some(v), _) => Ok(v),
        (None, Some(text)) => Ok(text
            .parse()
            .map_err(|_| format!("E2E_{name}={text}: not a number"))?),
        (None, None) => Ok(default),
    }
}

fn parse_workloads(names: &[String]) -> Result<Vec<Workload>, Error> {
    if names.is_empty() {
        return Ok(Workload::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| Workload::parse(n).ok_or_else(|| format!("unknown workload {n:?}").into()))
        .collect()
}

/// Bytes, or a number with KiB, MiB or GiB.
pub(crate) fn parse_size(text: &str) -> Result<u64, Error> {
    let text = text.trim();
    let (digits, shift) = [("GiB", 30), ("MiB", 20), ("KiB", 10)]
        .into_iter()
        .find_map(|(unit, shift)| text.strip_suffix(unit).map(|d| (d, shift)))
        .unwrap_or((text, 0));
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size (bytes, KiB, MiB, GiB)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large").into())
}

fn default_policy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}

fn default_out() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("e2e")
}
