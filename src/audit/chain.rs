//! Tamper evidence: every line carries the SHA-256 of the line before it, so an edited,
//! deleted or reordered line breaks the chain at a place `verify` can name.
//!
//! Each line has `sluis.chain.seq` (1, 2, ... within a file or stream) and `sluis.chain.prev`
//! (hex SHA-256 of the previous line's exact bytes, newline excluded). The first line of a file
//! also has `sluis.chain.start`: the stream's name, when it started, and the previous file of
//! the same sink if there was one. Its `prev` is then the hash of that file's last line, which
//! links rotated files; for a first file ever it is the hash of the genesis text
//! `sluis-audit-genesis\n{stream}\n{started}`, so line 1 is checked too.
//!
//! The chain is unkeyed: it proves integrity against a reader holding earlier copies or later
//! files, not against someone who can rewrite the file and everything after it. Ship a copy
//! off the box (the syslog sink) for that.

use std::io::{self, BufRead};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The chain fields of one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    pub seq: u64,
    pub prev: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<ChainStart>,
}

/// How a chain began; on the first line only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStart {
    pub stream: String,
    pub started: String,
    /// The rotated file this one continues, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_stream: Option<String>,
}

/// The writer's side: what the next line must carry.
#[derive(Debug, Clone)]
pub(crate) struct ChainState {
    seq: u64,
    prev: String,
    start: Option<ChainStart>,
}

/// Why a chain is broken, at a 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub line: u64,
    pub kind: BreakKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The line's bytes differ from what the next line recorded.
    Edited,
    /// One or more lines are missing before this one.
    Deleted,
    /// The line is out of order.
    Reordered,
    /// The line is not an audit line (not JSON, no chain fields, cut off).
    Malformed,
    /// The first line does not start a chain as it should.
    BadStart,
}

/// What `verify_stream` found in one file.
#[derive(Debug, Clone, Default)]
pub struct StreamReport {
    pub lines: u64,
    pub first_break: Option<Break>,
    /// How the chain started (from line 1).
    pub start: Option<ChainStart>,
    /// `prev` of line 1: for a continued file, the hash of the previous file's last line.
    pub first_prev: Option<String>,
    /// Hash of the last line, to check the next file's link.
    pub last_hash: Option<String>,
}

/// Lines longer than this are malformed; keeps `verify` bounded on hostile input.
pub const MAX_LINE: usize = 4 << 20;

// === impl ChainState ===

impl ChainState {
    /// A new chain for `stream` started at `started`, continuing `previous` (a file's name and
    /// the hash of its last line) when given.
    pub(crate) fn new(stream: String, started: String, previous: Option<(String, String)>) -> Self {
        let (prev, prev_stream) = match previous {
            Some((name, hash)) => (hash, Some(name)),
            None => (genesis_hash(&stream, &started), None),
        };
        Self {
            seq: 0,
            prev,
            start: Some(ChainStart {
                stream,
                started,
                prev_stream,
            }),
        }
    }

    /// The chain fields for the next line.
    pub(crate) fn next_link(&self) -> ChainLink {
        ChainLink {
            seq: self.seq + 1,
            prev: self.prev.clone(),
            start: (self.seq == 0).then(|| self.start.clone()).flatten(),
        }
    }

    /// Records that `line` (the bytes of the line carrying `next_link()`) was written.
    pub(crate) fn commit(&mut self, line: &[u8]) {
        self.seq += 1;
        self.prev = line_hash(line);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.seq == 0
    }

    /// Hash of the last committed line, once there is one.
    pub(crate) fn last_hash(&self) -> Option<&str> {
        (self.seq > 0).then_some(self.prev.as_str())
    }
}

pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

pub fn genesis_hash(stream: &str, started: &str) -> String {
    line_hash(format!("sluis-audit-genesis\n{stream}\n{started}").as_bytes())
}

// === verification ===

#[derive(Deserialize)]
struct LineChain {
    sluis: LineSluis,
}

#[derive(Deserialize)]
struct LineSluis {
    chain: ChainLink,
}

/// Reads one line (without its newline) into `buf`; false at end of input. Lines over
/// `MAX_LINE` are cut there (and then fail to parse).
pub(crate) fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    let mut limited = io::Read::take(&mut *r, MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        // Skip the rest of the overlong line.
        let mut sink = Vec::new();
        while r.read_until(b'\n', &mut sink)? > 0 && sink.last() != Some(&b'\n') {
            sink.clear();
        }
    }
    Ok(true)
}

/// Checks one file's chain; stops at the first break.
pub fn verify_stream(mut r: impl BufRead) -> io::Result<StreamReport> {
    let mut report = StreamReport::default();
    let (mut cur, mut next) = (Vec::new(), Vec::new());
    let mut have_next = read_line(&mut r, &mut next)?;
    let mut prev: Option<(u64, String)> = None; // seq and hash of the previous line
    while have_next {
        std::mem::swap(&mut cur, &mut next);
        have_next = read_line(&mut r, &mut next)?;
        report.lines += 1;
        let n = report.lines;
        let Ok(line) = serde_json::from_slice::<LineChain>(&cur) else {
            report.first_break = Some(brk(
                n,
                BreakKind::Malformed,
                "not an audit line with chain fields (cut off or edited?)",
            ));
            return Ok(report);
        };
        let link = line.sluis.chain;
        let next_seq = || {
            serde_json::from_slice::<LineChain>(&next)
                .ok()
                .map(|l| l.sluis.chain.seq)
        };
        let expected = prev.as_ref().map_or(1, |(s, _)| s + 1);
        if link.seq != expected {
            report.first_break = Some(sequence_break(
                n,
                expected,
                link.seq,
                have_next.then(next_seq).flatten(),
            ));
            return Ok(report);
        }
        match &prev {
            None => {
                if let Some(b) = check_start(&link) {
                    report.first_break = Some(b);
                    return Ok(report);
                }
                report.first_prev = Some(link.prev.clone());
                report.start = link.start.clone();
            }
            Some((_, hash)) if *hash != link.prev => {
                report.first_break = Some(brk(
                    n - 1,
                    BreakKind::Edited,
                    &format!("line {n} recorded a different hash for it"),
                ));
                return Ok(report);
            }
            Some(_) => {}
        }
        let hash = line_hash(&cur);
        report.last_hash = Some(hash.clone());
        prev = Some((link.seq, hash));
    }
    Ok(report)
}

fn sequence_break(line: u64, expected: u64, found: u64, next: Option<u64>) -> Break {
    let detail = format!("sequence {found} where {expected} was expected");
    if found < expected || next == Some(expected) {
        brk(line, BreakKind::Reordered, &detail)
    } else {
        let missing = found - expected;
        brk(
            line,
            BreakKind::Deleted,
            &format!("{missing} line(s) missing before it ({detail})"),
        )
    }
}

fn check_start(link: &ChainLink) -> Option<Break> {
    let Some(start) = &link.start else {
        return Some(brk(1, BreakKind::BadStart, "line 1 does not start a chain"));
    };
    if start.prev_stream.is_none() && link.prev != genesis_hash(&start.stream, &start.started) {
        return Some(brk(
            1,
            BreakKind::Edited,
            "line 1 does not match its genesis value",
        ));
    }
    None
}

fn brk(line: u64, kind: BreakKind, detail: &str) -> Break {
    Break {
        line,
        kind,
        detail: detail.to_owned(),
    }
}

impl BreakKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakKind::Edited => "edited",
            BreakKind::Deleted => "deleted",
            BreakKind::Reordered => "reordered",
            BreakKind::Malformed => "malformed",
            BreakKind::BadStart => "bad start",
        }
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
