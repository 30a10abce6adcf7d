//! The streaming scan: one owner's text, pushed in pieces of any size.
//!
//! Every candidate is judged by its start position with a fixed window of bytes before it
//! ([`BEHIND`]) and after it ([`AHEAD`]). Large pushes are scanned in place; only the seam
//! between two pushes is copied (the last `BEHIND + AHEAD` bytes of the previous push plus as
//! many of the next). Small pushes (a docx text run) collect in the carry and are scanned in
//! batches. Since a candidate's verdict depends only on its position and the bytes around it,
//! the findings are the same however the text is split.

use std::cell::Cell;

use crate::inspect::detect::Detectors;
use crate::inspect::detect::digits::find_candidate;
use crate::inspect::detect::findings::{Findings, Mask};
use crate::inspect::detect::iban;
use crate::inspect::detect::marking::MAX_SEGMENT;
use crate::inspect::detect::number::{self, NumberKind};
use crate::inspect::detect::simd::{DELIMITERS, each_delimiter, first_delimiter};
use crate::inspect::report::{DetectorKind, LabelSource, Level, LimitHit, LimitKind};
use crate::inspect::sink::TextOrigin;

/// Context a candidate may look at before its start: the BSN keyword reach and then some.
const BEHIND: usize = 384;
/// Bytes a candidate may look at after its start: the longest token plus the keyword reach.
const AHEAD: usize = 448;
/// Small pushes are scanned once this many unscanned bytes have collected.
const BATCH: usize = 8 << 10;
/// How far a BSN keyword may stand from the number.
const BSN_REACH: usize = 300;
/// Header, footer and file-name text kept for whole-word marking matches.
const SHORT_CAP: usize = 4 << 10;

/// Detector state for one owner of text.
#[derive(Debug, Default, Clone)]
pub struct TextScanner {
    origin: Option<TextOrigin>,
    /// Stream bytes `[carry_base, pos)`.
    carry: Vec<u8>,
    scratch: Vec<u8>,
    carry_base: u64,
    pos: u64,
    /// First position not yet judged as a candidate start.
    next: u64,
    skip_numbers: u64,
    skip_secrets: u64,
    /// End of the last BSN counted: context carries on from one BSN to the next (a column of
    /// BSNs under one "BSN" header).
    bsn_chain: Option<u64>,
    short: Vec<u8>,
    findings: Findings,
    bytes: u64,
    capped: bool,
}

/// One region to judge: start positions `from..to` of `hay`, whose first byte is at stream
/// position `base`. Unless `eof`, `hay` has at least `AHEAD` bytes after `to`.
struct Region<'h> {
    hay: &'h [u8],
    base: u64,
    from: usize,
    to: usize,
    eof: bool,
}

// === impl TextScanner ===

impl TextScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of text scanned.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    pub fn label(&mut self, level: Level, source: LabelSource) {
        self.findings.label(level, source);
    }

    pub(super) fn note_text_cap(&mut self) {
        self.capped = true;
    }

    /// Ends the stream and hands over what was found, plus a limit if text was left unscanned.
    pub fn finish(mut self, det: &Detectors) -> (Findings, u64, Option<LimitHit>) {
        self.end(det);
        let limit = self.capped.then(|| LimitHit {
            kind: LimitKind::Buffer,
            detail: "text beyond the per-body cap was not scanned".into(),
        });
        (self.findings, self.bytes, limit)
    }

    /// What [`finish`](Self::finish) would hand over if the stream ended now, leaving the
    /// scanner as it is. Copies the carried bytes (a few KiB): meant for once per body.
    pub fn peek(&self, det: &Detectors) -> (Findings, u64, Option<LimitHit>) {
        self.clone().finish(det)
    }

    /// Adds text to the current stream; a change of origin ends the stream first.
    pub fn push(&mut self, det: &Detectors, data: &[u8], origin: TextOrigin) {
        if self.origin.is_some_and(|o| o != origin) {
            self.end(det);
        }
        self.origin = Some(origin);
        self.bytes += data.len() as u64;
        if matches!(origin, TextOrigin::HeaderFooter | TextOrigin::FileName) {
            let room = SHORT_CAP.saturating_sub(self.short.len());
            self.short
                .extend_from_slice(data.get(..room.min(data.len())).unwrap_or(&[]));
        }
        if data.len() >= BEHIND + AHEAD {
            self.push_large(det, data);
        } else {
            self.carry.extend_from_slice(data);
            self.pos += data.len() as u64;
            if self.pos - self.next >= (AHEAD + BATCH) as u64 {
                let to = self.pos - AHEAD as u64;
                self.scan_carry(det, to, false);
                self.next = to;
                self.trim_carry();
            }
        }
    }

    /// Ends the current stream: judges what is left and forgets it, so nothing matches across.
    pub fn end(&mut self, det: &Detectors) {
        if let Some(origin) = self.origin.take() {
            self.scan_carry(det, self.pos, true);
            if let Some(level) = det.markings.anywhere(&self.short) {
                self.findings.label(level, source_of(origin));
            }
        }
        self.carry.clear();
        self.short.clear();
        self.carry_base = 0;
        self.pos = 0;
        self.next = 0;
        self.skip_numbers = 0;
        self.skip_secrets = 0;
        self.bsn_chain = None;
    }

    fn push_large(&mut self, det: &Detectors, data: &[u8]) {
        let seam = BEHIND + AHEAD;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(&self.carry);
        scratch.extend_from_slice(data.get(..seam).unwrap_or(data));
        let origin = self.origin.unwrap_or(TextOrigin::Body);
        let carried = self.carry.len();
        self.scan(
            det,
            &Region {
                hay: &scratch,
                base: self.carry_base,
                from: offset(self.next, self.carry_base),
                to: carried + BEHIND,
                eof: false,
            },
            origin,
        );
        self.scratch = scratch;
        let to = data.len() - AHEAD;
        self.scan(
            det,
            &Region {
                hay: data,
                base: self.pos,
                from: BEHIND,
                to,
                eof: false,
            },
            origin,
        );
        let keep = to - BEHIND;
        self.carry.clear();
        self.carry
            .extend_from_slice(data.get(keep..).unwrap_or(&[]));
        self.carry_base = self.pos + keep as u64;
        self.next = self.pos + to as u64;
        self.pos += data.len() as u64;
    }

    fn scan_carry(&mut self, det: &Detectors, to: u64, eof: bool) {
        let carry = std::mem::take(&mut self.carry);
        let origin = self.origin.unwrap_or(TextOrigin::Body);
        self.scan(
            det,
            &Region {
                hay: &carry,
                base: self.carry_base,
                from: offset(self.next, self.carry_base),
                to: offset(to, self.carry_base),
                eof,
            },
            origin,
        );
        self.carry = carry;
    }

    /// Drops carried bytes no later candidate can look back at.
    fn trim_carry(&mut self) {
        let keep_from = self.next.saturating_sub(BEHIND as u64).max(self.carry_base);
        let drop = offset(keep_from, self.carry_base);
        self.carry.drain(..drop.min(self.carry.len()));
        self.carry_base = keep_from;
    }

    fn scan(&mut self, det: &Detectors, r: &Region<'_>, origin: TextOrigin) {
        if r.from >= r.to {
            return;
        }
        self.scan_numbers(det, r);
        self.scan_secrets(det, r);
        if matches!(origin, TextOrigin::Body | TextOrigin::Metadata) {
            self.scan_segments(det, r, source_of(origin));
        }
    }

    fn scan_numbers(&mut self, det: &Detectors, r: &Region<'_>) {
        let hay = r.hay;
        let mut i = r.from.max(offset(self.skip_numbers, r.base));
        let chain = Cell::new(self.bsn_chain);
        while i < r.to {
            let Some(candidate) = find_candidate(hay, i, r.to) else {
                break;
            };
            // Unless it is an IBAN's check digits, the candidate starts a run of three digits.
            // Only digits from a token's first such run count toward a BSN or card, and a token
            // with enough of them has that run as a candidate, so a candidate with fewer than
            // `MIN_DIGITS` from it on (an amount) lies in a token with too few. It is passed over
            // without walking back to where the token starts, which holds no IBAN either: an
            // IBAN's start would have been an earlier candidate.
            if !candidate
                .checked_sub(1)
                .and_then(|p| hay.get(p))
                .is_some_and(u8::is_ascii_alphabetic)
            {
                let (end, digits) = number::quick_extent(hay, candidate);
                if digits < number::MIN_DIGITS {
                    i = end;
                    continue;
                }
            }
            i = number::token_start(hay, candidate, i);
            if !number::starts_token(hay, i) {
                i += 1;
                continue;
            }
            if let Some(m) = iban_before(hay, i) {
                let value = m.value.get(..m.len).unwrap_or(&[]);
                let fp = det.fingerprinter.as_ref();
                self.findings
                    .record(DetectorKind::Iban, value, Mask::LastFour, fp);
                self.skip_numbers = r.base + m.end as u64;
                i = m.end;
                continue;
            }
            let (end, digits) = number::quick_extent(hay, i);
            if digits < number::MIN_DIGITS {
                i = end;
                continue;
            }
            let Some(tok) = number::parse_token(hay, i) else {
                i += 1;
                continue;
            };
            let findings = &mut self.findings;
            tok.matches(
                hay,
                |s, e| {
                    chain
                        .get()
                        .is_some_and(|c| r.base + s as u64 <= c + BSN_REACH as u64)
                        || det.bsn_context(hay, s, e, BSN_REACH)
                },
                |m| {
                    let kind = match m.kind {
                        NumberKind::Bsn => {
                            chain.set(Some(r.base + m.end as u64));
                            DetectorKind::Bsn
                        }
                        NumberKind::Card => DetectorKind::PaymentCard,
                    };
                    let value = m.digits.get(..m.len).unwrap_or(&[]);
                    findings.record(kind, value, Mask::LastFour, det.fingerprinter.as_ref());
                },
            );
            i = tok.end;
        }
        self.bsn_chain = chain.get();
    }

    fn scan_secrets(&mut self, det: &Detectors, r: &Region<'_>) {
        let until = if r.eof {
            r.hay.len()
        } else {
            (r.to + AHEAD).min(r.hay.len())
        };
        let mut p = r.from.max(offset(self.skip_secrets, r.base));
        let mut anchors = det.secrets.search(r.hay, until);
        while let Some(found) = anchors.next(p) {
            if found.at >= r.to {
                break;
            }
            match det.secrets.validate(r.hay, found) {
                Some(m) => {
                    let fp = det.fingerprinter.as_ref();
                    self.findings.record(m.kind, m.value, m.mask, fp);
                    self.skip_secrets = r.base + m.end as u64;
                    p = m.end;
                }
                None => p = found.at + 1,
            }
        }
    }

    /// Lines (and markup-delimited runs) that start in the region, judged as markings.
    fn scan_segments(&mut self, det: &Detectors, r: &Region<'_>, source: LabelSource) {
        let hay = r.hay;
        let first = r.base + r.from as u64 == 0
            || r.from
                .checked_sub(1)
                .and_then(|p| hay.get(p))
                .is_some_and(|&b| is_delim(b));
        let mut judge = |st: usize, end: Option<usize>| {
            if let Some(seg) = end.and_then(|e| hay.get(st..e))
                && det.markings.may_match(seg)
                && let Some(level) = det.markings.standalone(seg)
            {
                self.findings.label(level, source);
            }
        };
        let mut start = first.then_some(r.from);
        each_delimiter(hay, r.from, r.to, |d| {
            if let Some(st) = start {
                judge(st, Some(d));
            }
            // A segment that starts at `to` belongs to the next region.
            start = (d + 1 < r.to).then_some(d + 1);
        });
        if let Some(st) = start {
            judge(st, segment_end_beyond(hay, st, r.to, r.eof));
        }
    }
}

fn source_of(origin: TextOrigin) -> LabelSource {
    match origin {
        TextOrigin::Body => LabelSource::Body,
        TextOrigin::HeaderFooter => LabelSource::HeaderFooter,
        TextOrigin::Metadata => LabelSource::Metadata,
        TextOrigin::FileName => LabelSource::FileName,
    }
}

fn offset(pos: u64, base: u64) -> usize {
    usize::try_from(pos.saturating_sub(base)).unwrap_or(usize::MAX)
}

fn is_delim(b: u8) -> bool {
    DELIMITERS.contains(&b)
}

/// The end of a segment that did not end before `to`: within [`MAX_SEGMENT`] bytes, or at the
/// end of the stream.
fn segment_end_beyond(hay: &[u8], st: usize, to: usize, eof: bool) -> Option<usize> {
    let lim = (st + MAX_SEGMENT + 1).min(hay.len());
    let from = to.max(st);
    if let Some(k) = hay.get(from..lim).and_then(first_delimiter) {
        return Some(from + k);
    }
    (eof && hay.len() - st <= MAX_SEGMENT).then_some(hay.len())
}

/// An IBAN whose check digits start the digit run at `i` (two letters just before it).
fn iban_before(hay: &[u8], i: usize) -> Option<iban::IbanMatch> {
    let start = i.checked_sub(2)?;
    let cc = hay.get(start..i)?;
    if !cc.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    iban::parse_at(hay, start)
}
