//! Decompression under the body's caps, shared by every scanner that inflates something
//! (ZIP members, gzip/bzip2/xz/zstd files, the 7z header).
//!
//! A decompressor is a small [`Codec`]; [`Expander`] drives it with one fixed output buffer
//! (no allocation per chunk), charges every produced byte to `ScanCx::expand_budget` and stops
//! at the ratio limit, so a few KiB of input can never turn into gigabytes of work.

use std::borrow::Cow;

use crate::inspect::file::ScanCx;
use crate::inspect::report::{LimitHit, LimitKind};

/// Output buffer of one expander: large enough to amortise calls, small enough to keep per
/// stream.
const OUT_BUF: usize = 32 << 10;

/// Expansion below this many bytes is never called a bomb: small, repetitive files (a page of
/// spaces, an empty spreadsheet) compress far beyond any sane ratio and are harmless.
pub(crate) const RATIO_FLOOR: u64 = 1 << 20;

/// One decompression step: consume some of `input`, write some of `output`.
pub(crate) trait Codec: Send {
    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, Cow<'static, str>>;
}

/// What one [`Codec::step`] did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub(crate) read: usize,
    pub(crate) written: usize,
    /// The compressed stream ended (bytes after it belong to whatever follows).
    pub(crate) end: bool,
}

/// How a call to [`Expander::feed`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fed {
    /// All input was consumed; the stream goes on.
    More,
    /// The stream ended after `n` bytes of this input.
    End(usize),
    /// Decoding stopped for good: a limit or corrupt data.
    Stop(LimitHit),
}

/// Drives a codec under the ratio limit and the shared budget.
pub(crate) struct Expander<C> {
    codec: C,
    out: Box<[u8]>,
    read: u64,
    written: u64,
}

// === impl Expander ===

impl<C: Codec> Expander<C> {
    pub(crate) fn new(codec: C) -> Self {
        Self {
            codec,
            out: vec![0; OUT_BUF].into_boxed_slice(),
            read: 0,
            written: 0,
        }
    }

    pub(crate) fn codec_mut(&mut self) -> &mut C {
        &mut self.codec
    }

    /// Starts counting a new stream (the codec itself is reset by its owner).
    pub(crate) fn restart(&mut self) {
        self.read = 0;
        self.written = 0;
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Decodes `input`, handing each piece of output to `out`.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        cx: &mut ScanCx<'_>,
        out: &mut dyn FnMut(&[u8], &mut ScanCx<'_>),
    ) -> Fed {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            let step = match self.codec.step(rest, &mut self.out) {
                Ok(step) => step,
                Err(detail) => return Fed::Stop(malformed(detail)),
            };
            pos += step.read.min(rest.len());
            self.read += step.read as u64;
            if step.written > 0 {
                if let Err(hit) = self.charge(step.written as u64, cx) {
                    return Fed::Stop(hit);
                }
                out(self.out.get(..step.written).unwrap_or_default(), cx);
            }
            if step.end {
                return Fed::End(pos);
            }
            if step.read == 0 && step.written == 0 {
                // No progress possible without more input.
                return if pos >= input.len() {
                    Fed::More
                } else {
                    Fed::Stop(malformed("decompressor stalled"))
                };
            }
        }
    }

    fn charge(&mut self, n: u64, cx: &mut ScanCx<'_>) -> Result<(), LimitHit> {
        self.written += n;
        let ratio = u64::from(cx.config.limits.max_ratio.max(1));
        if self.written > RATIO_FLOOR && self.written > self.read.saturating_mul(ratio) {
            return Err(LimitHit {
                kind: LimitKind::Ratio,
                detail: "expansion ratio above limit".into(),
            });
        }
        if *cx.expand_budget < n {
            *cx.expand_budget = 0;
            return Err(LimitHit {
                kind: LimitKind::ExpandedSize,
                detail: "expanded bytes above limit".into(),
            });
        }
        *cx.expand_budget -= n;
        Ok(())
    }
}

pub(crate) fn malformed(detail: impl Into<Cow<'static, str>>) -> LimitHit {
    LimitHit {
        kind: LimitKind::Malformed,
        detail: detail.into(),
    }
}

// === codecs ===

/// Raw deflate (ZIP method 8, the body of a gzip member).
pub(crate) struct Deflate(pub(crate) flate2::Decompress);

impl Deflate {
    pub(crate) fn new() -> Self {
        Self(flate2::Decompress::new(false))
    }
}

impl Codec for Deflate {
    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, Cow<'static, str>> {
        let (in0, out0) = (self.0.total_in(), self.0.total_out());
        let status = self
            .0
            .decompress(input, output, flate2::FlushDecompress::None)
            .map_err(|_| Cow::Borrowed("corrupt deflate data"))?;
        Ok(Step {
            read: (self.0.total_in() - in0) as usize,
            written: (self.0.total_out() - out0) as usize,
            end: status == flate2::Status::StreamEnd,
        })
    }
}

pub(crate) struct Bzip2(pub(crate) bzip2::Decompress);

impl Codec for Bzip2 {
    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, Cow<'static, str>> {
        let (in0, out0) = (self.0.total_in(), self.0.total_out());
        let status = self
            .0
            .decompress(input, output)
            .map_err(|_| Cow::Borrowed("corrupt bzip2 data"))?;
        Ok(Step {
            read: (self.0.total_in() - in0) as usize,
            written: (self.0.total_out() - out0) as usize,
            end: status == bzip2::Status::StreamEnd,
        })
    }
}

/// xz containers and raw LZMA/LZMA2 (the 7z header), through liblzma.
pub(crate) struct Lzma(pub(crate) liblzma::stream::Stream);

impl Codec for Lzma {
    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, Cow<'static, str>> {
        let (in0, out0) = (self.0.total_in(), self.0.total_out());
        let status = self
            .0
            .process(input, output, liblzma::stream::Action::Run)
            .map_err(|e| match e {
                liblzma::stream::Error::MemLimit => Cow::Borrowed("xz dictionary above memory cap"),
                _ => Cow::Borrowed("corrupt lzma data"),
            })?;
        Ok(Step {
            read: (self.0.total_in() - in0) as usize,
            written: (self.0.total_out() - out0) as usize,
            end: status == liblzma::stream::Status::StreamEnd,
        })
    }
}

pub(crate) struct Zstd(pub(crate) zstd::stream::raw::Decoder<'static>);

impl Codec for Zstd {
    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, Cow<'static, str>> {
        use zstd::stream::raw::Operation;
        let status = self
            .0
            .run_on_buffers(input, output)
            .map_err(|_| Cow::Borrowed("corrupt zstd data"))?;
        Ok(Step {
            read: status.bytes_read,
            written: status.bytes_written,
            // A frame ended and its output is flushed; another frame may follow.
            end: status.remaining == 0 && status.bytes_written < output.len(),
        })
    }
}
