//! Where audit lines go. Each sink keeps its own hash chain, because each is read on its own:
//! a file by `sluis audit verify`, a syslog stream by whatever collects it.
//!
//! Sinks are blocking and run on the audit writer thread only, never on the runtime.

mod file;
mod syslog;

use std::io::{self, Write};
use std::time::SystemTime;

use crate::audit::chain::ChainState;
use crate::audit::config::SinkConfig;

pub(crate) use file::FileSink;
pub(crate) use syslog::SyslogSink;

/// How important a line is, for sinks that say so (syslog severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// A block, an ACL denial: syslog `notice`.
    Notice,
    /// Everything else: syslog `info`.
    Info,
}

/// A destination for audit lines.
pub(crate) trait Sink: Send {
    /// A fixed name for metrics (`file`, `stdout`, `syslog`).
    fn kind(&self) -> &'static str;
    /// Rotates or reconnects when due, before the next line's chain link is taken.
    fn prepare(&mut self, now: SystemTime) -> io::Result<()>;
    /// The chain the next line continues.
    fn chain(&mut self) -> &mut ChainState;
    /// Writes one line (no newline in `line`); the chain is committed by the caller on success.
    fn write_line(&mut self, line: &[u8], severity: Severity, msgid: &str) -> io::Result<()>;
    /// Makes buffered lines durable enough to survive a crash of the process.
    fn flush(&mut self) -> io::Result<()>;
    /// Periodic housekeeping (time rotation, retention).
    fn tick(&mut self, _now: SystemTime) -> io::Result<()> {
        Ok(())
    }
}

/// Opens every configured sink; fails if one cannot be opened, so a broken audit setup stops
/// the proxy at start instead of losing events.
pub(crate) fn open_all(configs: &[SinkConfig]) -> io::Result<Vec<Box<dyn Sink>>> {
    let mut out: Vec<Box<dyn Sink>> = Vec::with_capacity(configs.len());
    for c in configs {
        match c {
            SinkConfig::File(f) => {
                out.push(Box::new(FileSink::open(f.clone(), SystemTime::now())?))
            }
            SinkConfig::Stdout => out.push(Box::new(StdoutSink::new())),
            SinkConfig::Syslog(s) => out.push(Box::new(SyslogSink::new(s.clone())?)),
        }
    }
    Ok(out)
}

pub(crate) fn started_text(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// One JSON line per event on standard output, for container log collectors.
pub(crate) struct StdoutSink {
    chain: ChainState,
    out: io::BufWriter<io::Stdout>,
}

impl StdoutSink {
    fn new() -> Self {
        Self {
            chain: ChainState::new("stdout".into(), started_text(SystemTime::now()), None),
            out: io::BufWriter::new(io::stdout()),
        }
    }
}

impl Sink for StdoutSink {
    fn kind(&self) -> &'static str {
        "stdout"
    }

    fn prepare(&mut self, _now: SystemTime) -> io::Result<()> {
        Ok(())
    }

    fn chain(&mut self) -> &mut ChainState {
        &mut self.chain
    }

    fn write_line(&mut self, line: &[u8], _: Severity, _: &str) -> io::Result<()> {
        self.out.write_all(line)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
