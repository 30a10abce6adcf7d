//! Content-Encoding of request bodies: gzip, deflate (zlib or raw), br, zstd, stacked.
//!
//! Decoding is push-based with fixed output buffers, and every piece of output is counted
//! against the body's expansion budget and ratio cap before it goes on: a decompression bomb
//! stops as a reported `LimitHit`, having cost at most one buffer of work past the cap.

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use flate2::{Decompress, FlushDecompress, Status};

use crate::inspect::frame::gzip::Gzip;
use crate::inspect::limits::Limits;
use crate::inspect::report::{LimitHit, LimitKind};

const OUT_BUF: usize = 32 << 10;
/// Below this much output the ratio is not judged: small, very compressible bodies are normal.
const RATIO_FLOOR: u64 = 1 << 20;
/// zstd frames may ask for a window up to 2^24 bytes; larger ones are refused.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// The decoding chain of one body.
pub(crate) struct Decoding {
    stages: Vec<Stage>,
    encoded: u64,
    decoded: u64,
    stopped: bool,
    max_ratio: u64,
    limits: Vec<LimitHit>,
}

struct Stage {
    name: &'static str,
    codec: Codec,
    buf: Box<[u8]>,
    finished: bool,
}

enum Codec {
    Deflate(Option<Decompress>, Vec<u8>),
    Gzip(Gzip),
    Brotli(Box<BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>>),
    Zstd(Box<zstd::stream::raw::Decoder<'static>>),
}

/// Why a coding cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unsupported {
    Coding(String),
}

// === impl Decoding ===

impl Decoding {
    /// Parses a Content-Encoding header value. Codings are listed in the order applied, so
    /// they are undone from the last.
    pub(crate) fn new(header: Option<&str>, limits: &Limits) -> Result<Self, Unsupported> {
        let mut stages = Vec::new();
        for coding in header.unwrap_or("").split(',').rev() {
            let coding = coding.trim().to_ascii_lowercase();
            let (name, codec) = match coding.as_str() {
                "" | "identity" => continue,
                "gzip" | "x-gzip" => ("gzip", Codec::Gzip(Gzip::new())),
                "deflate" => ("deflate", Codec::Deflate(None, Vec::new())),
                "br" => (
                    "br",
                    Codec::Brotli(Box::new(BrotliState::new(
                        StandardAlloc::default(),
                        StandardAlloc::default(),
                        StandardAlloc::default(),
                    ))),
                ),
                "zstd" => (
                    "zstd",
                    Codec::Zstd(Box::new(
                        zstd_decoder().ok_or_else(|| Unsupported::Coding(coding.clone()))?,
                    )),
                ),
                _ => return Err(Unsupported::Coding(coding)),
            };
            stages.push(Stage {
                name,
                codec,
                buf: vec![0; OUT_BUF].into_boxed_slice(),
                finished: false,
            });
        }
        Ok(Self {
            stages,
            encoded: 0,
            decoded: 0,
            stopped: false,
            max_ratio: u64::from(limits.max_ratio),
            limits: Vec::new(),
        })
    }

    /// No decoding: for a body whose coding is not understood and is kept as it is.
    pub(crate) fn identity() -> Self {
        Self {
            stages: Vec::new(),
            encoded: 0,
            decoded: 0,
            stopped: false,
            max_ratio: u64::MAX,
            limits: Vec::new(),
        }
    }

    /// True once a cap or a corrupt stream ended decoding: later bytes are only counted.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    pub(crate) fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Limits met so far (a stop); `finish` may add one for a stream that ends early.
    pub(crate) fn limits(&self) -> &[LimitHit] {
        &self.limits
    }

    /// Decodes `input` and hands each piece of output to `sink`, with the expansion budget.
    pub(crate) fn push(
        &mut self,
        input: &[u8],
        budget: &mut u64,
        sink: &mut dyn FnMut(&[u8], &mut u64),
    ) {
        if self.stopped {
            return;
        }
        self.encoded += input.len() as u64;
        if self.stages.is_empty() {
            self.decoded += input.len() as u64;
            sink(input, budget);
            return;
        }
        let mut ctl = Ctl {
            encoded: self.encoded,
            decoded: &mut self.decoded,
            max_ratio: self.max_ratio,
            budget,
            stop: None,
        };
        run(&mut self.stages, input, &mut ctl, sink);
        if let Some(hit) = ctl.stop {
            self.stopped = true;
            self.limits.push(hit);
        }
    }

    /// Ends the body; a coding that did not reach its end is reported as truncated.
    pub(crate) fn finish(mut self) -> Vec<LimitHit> {
        if !self.stopped
            && self.encoded > 0
            && let Some(stage) = self.stages.iter().find(|s| !s.finished)
        {
            self.limits.push(LimitHit {
                kind: LimitKind::Malformed,
                detail: format!("content-encoding {}: stream ends early", stage.name).into(),
            });
        }
        self.limits
    }
}

/// Shared by the stages of one `push`.
struct Ctl<'a> {
    encoded: u64,
    decoded: &'a mut u64,
    max_ratio: u64,
    budget: &'a mut u64,
    stop: Option<LimitHit>,
}

/// Feeds `input` through the first stage and its output through the rest, then to `sink`.
fn run(
    stages: &mut [Stage],
    input: &[u8],
    ctl: &mut Ctl<'_>,
    sink: &mut dyn FnMut(&[u8], &mut u64),
) {
    let Some((stage, rest)) = stages.split_first_mut() else {
        deliver(input, ctl, sink);
        return;
    };
    let mut input = input;
    while ctl.stop.is_none() {
        if stage.finished {
            if input.is_empty() {
                return;
            }
            // gzip members and zstd frames may follow one another; other codings end once.
            if !matches!(stage.codec, Codec::Gzip(_) | Codec::Zstd(_)) {
                ctl.stop = Some(malformed(stage.name, "data after the end of the stream"));
                return;
            }
            stage.finished = false;
        }
        let step = match stage.codec.step(input, &mut stage.buf) {
            Ok(step) => step,
            Err(why) => {
                ctl.stop = Some(malformed(stage.name, why));
                return;
            }
        };
        input = input.get(step.consumed..).unwrap_or(&[]);
        stage.finished = step.finished;
        if step.produced > 0 {
            run(
                rest,
                stage.buf.get(..step.produced).unwrap_or(&[]),
                ctl,
                sink,
            );
        }
        let stalled = step.consumed == 0 && step.produced == 0;
        if stalled || (input.is_empty() && step.produced < stage.buf.len() && !step.finished) {
            return;
        }
    }
}

fn deliver(piece: &[u8], ctl: &mut Ctl<'_>, sink: &mut dyn FnMut(&[u8], &mut u64)) {
    let n = piece.len() as u64;
    if n > *ctl.budget {
        ctl.stop = Some(LimitHit {
            kind: LimitKind::ExpandedSize,
            detail: "content-encoding: expanded size above the limit".into(),
        });
        return;
    }
    let total = *ctl.decoded + n;
    if total > RATIO_FLOOR && total > ctl.encoded.saturating_mul(ctl.max_ratio) {
        ctl.stop = Some(LimitHit {
            kind: LimitKind::Ratio,
            detail: "content-encoding: expansion ratio above the limit".into(),
        });
        return;
    }
    *ctl.budget -= n;
    *ctl.decoded = total;
    sink(piece, ctl.budget);
}

fn malformed(name: &'static str, why: &'static str) -> LimitHit {
    LimitHit {
        kind: LimitKind::Malformed,
        detail: format!("content-encoding {name}: {why}").into(),
    }
}

fn zstd_decoder() -> Option<zstd::stream::raw::Decoder<'static>> {
    let mut d = zstd::stream::raw::Decoder::new().ok()?;
    d.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(
        ZSTD_WINDOW_LOG_MAX,
    ))
    .ok()?;
    Some(d)
}

/// What one decoding step did.
pub(super) struct Step {
    pub(super) consumed: usize,
    pub(super) produced: usize,
    pub(super) finished: bool,
}

// === impl Codec ===

impl Codec {
    fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Step, &'static str> {
        match self {
            Codec::Deflate(inner, head) => deflate_step(inner, head, input, out),
            Codec::Gzip(gz) => gz.step(input, out),
            Codec::Brotli(state) => brotli_step(state, input, out),
            Codec::Zstd(d) => {
                use zstd::stream::raw::Operation;
                let st = d.run_on_buffers(input, out).map_err(|_| "corrupt stream")?;
                Ok(Step {
                    consumed: st.bytes_read,
                    produced: st.bytes_written,
                    finished: st.remaining == 0,
                })
            }
        }
    }
}

/// "deflate" is zlib by the RFC, raw deflate by some clients: the first two bytes tell.
fn deflate_step(
    inner: &mut Option<Decompress>,
    head: &mut Vec<u8>,
    input: &[u8],
    out: &mut [u8],
) -> Result<Step, &'static str> {
    if inner.is_none() {
        let take = 2usize.saturating_sub(head.len()).min(input.len());
        head.extend_from_slice(input.get(..take).unwrap_or(&[]));
        if head.len() < 2 {
            return Ok(Step {
                consumed: take,
                produced: 0,
                finished: false,
            });
        }
        let zlib = matches!(head.as_slice(), [cmf, flg] if cmf & 0x0F == 8 && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0);
        let mut d = Decompress::new(zlib);
        let held = std::mem::take(head);
        let step = inflate(&mut d, &held, out)?;
        if step.consumed != held.len() {
            return Err("corrupt stream");
        }
        *inner = Some(d);
        return Ok(Step {
            consumed: take,
            ..step
        });
    }
    let Some(d) = inner.as_mut() else {
        return Err("corrupt stream");
    };
    inflate(d, input, out)
}

pub(super) fn inflate(
    d: &mut Decompress,
    input: &[u8],
    out: &mut [u8],
) -> Result<Step, &'static str> {
    let (in0, out0) = (d.total_in(), d.total_out());
    let status = d
        .decompress(input, out, FlushDecompress::None)
        .map_err(|_| "corrupt stream")?;
    Ok(Step {
        consumed: usize::try_from(d.total_in() - in0).unwrap_or(0),
        produced: usize::try_from(d.total_out() - out0).unwrap_or(0),
        finished: status == Status::StreamEnd,
    })
}

fn brotli_step(
    state: &mut BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
    input: &[u8],
    out: &mut [u8],
) -> Result<Step, &'static str> {
    let (mut avail_in, mut in_off) = (input.len(), 0usize);
    let (mut avail_out, mut out_off, mut total) = (out.len(), 0usize, 0usize);
    let r = BrotliDecompressStream(
        &mut avail_in,
        &mut in_off,
        input,
        &mut avail_out,
        &mut out_off,
        out,
        &mut total,
        state,
    );
    match r {
        BrotliResult::ResultFailure => Err("corrupt stream"),
        r => Ok(Step {
            consumed: in_off,
            produced: out_off,
            finished: matches!(r, BrotliResult::ResultSuccess),
        }),
    }
}
