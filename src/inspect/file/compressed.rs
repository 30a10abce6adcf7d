//! gzip, bzip2, xz and zstd files: compression, not encryption. The content is decompressed
//! under the body's caps and scanned as a file one level deeper, so a `.csv.gz` of citizen
//! numbers or a `.tar.gz` of documents is inspected like the files inside it.
//!
//! Memory per stream is bounded: zstd windows above 2^24 and xz dictionaries above the buffer
//! cap are refused (a limit hit) rather than allocated.

use crate::inspect::file::expand::{Bzip2, Codec, Deflate, Expander, Fed, Lzma, Zstd, malformed};
use crate::inspect::file::{FileScanner, FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, FileType, LimitHit, LimitKind, Verdict};
use crate::inspect::sink::TextOrigin;

/// Largest zstd window accepted (log2): 16 MiB, the default buffer cap.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
/// Longest gzip header kept while it is parsed (FEXTRA + file name + comment).
const MAX_GZIP_HEADER: usize = 64 << 10;

pub(crate) struct CompressedScanner {
    file_type: FileType,
    state: State,
    codec: Expander<Box<dyn Codec>>,
    header: Vec<u8>,
    inner: Option<FileScanner>,
    hits: Vec<LimitHit>,
    /// A stream decoded to its end at least once.
    complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// gzip only: member header.
    GzipHeader,
    Body,
    /// gzip only: CRC32 + ISIZE after a member.
    GzipTrailer(u8),
    Stopped,
}

impl Codec for Box<dyn Codec> {
    fn step(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<crate::inspect::file::expand::Step, std::borrow::Cow<'static, str>> {
        (**self).step(input, output)
    }
}

// === impl CompressedScanner ===

impl CompressedScanner {
    pub(crate) fn new(file_type: FileType, depth: u8, cx: &mut ScanCx<'_>) -> Self {
        let mut hits = Vec::new();
        let codec = match new_codec(file_type, cx) {
            Ok(c) => c,
            Err(hit) => {
                hits.push(hit);
                Box::new(Deflate::new()) as Box<dyn Codec>
            }
        };
        let inner = if depth >= cx.config.limits.max_depth {
            hits.push(LimitHit {
                kind: LimitKind::Depth,
                detail: "compressed file nested deeper than allowed".into(),
            });
            None
        } else {
            Some(FileScanner::new(cx.config, depth + 1))
        };
        let state = if !hits.is_empty() && inner.is_some() {
            State::Stopped
        } else if file_type == FileType::Gzip {
            State::GzipHeader
        } else {
            State::Body
        };
        Self {
            file_type,
            state,
            codec: Expander::new(codec),
            header: Vec::new(),
            inner,
            hits,
            complete: false,
        }
    }

    fn gzip_header(&mut self, rest: &mut &[u8], cx: &mut ScanCx<'_>) {
        if self.complete && self.header.is_empty() && rest.iter().all(|&b| b == 0) {
            // Zero padding after the last member (tape-style block padding).
            *rest = &[];
            return;
        }
        let take = rest.len().min(MAX_GZIP_HEADER - self.header.len());
        self.header
            .extend_from_slice(rest.get(..take).unwrap_or_default());
        match parse_gzip_header(&self.header) {
            Header::More if self.header.len() >= MAX_GZIP_HEADER => {
                self.stop(malformed("gzip header too long"));
                *rest = &[];
            }
            Header::More => *rest = &[],
            Header::Bad => {
                self.stop(malformed("not a gzip member"));
                *rest = &[];
            }
            Header::Done { len, name } => {
                if let Some(name) = name {
                    cx.sink.text(name, TextOrigin::FileName);
                    cx.sink.end_text();
                }
                // Bytes of this chunk past the header: give back what was not header.
                let extra = self.header.len() - len;
                *rest = rest.get(take - extra..).unwrap_or_default();
                self.header.clear();
                self.state = State::Body;
            }
        }
    }

    fn body(&mut self, rest: &mut &[u8], cx: &mut ScanCx<'_>) {
        let inner = &mut self.inner;
        let fed = self.codec.feed(rest, cx, &mut |out, cx| {
            if let Some(inner) = inner.as_mut() {
                inner.feed(out, cx);
            }
        });
        match fed {
            Fed::More => *rest = &[],
            Fed::End(n) => {
                *rest = rest.get(n..).unwrap_or_default();
                self.complete = true;
                self.next_stream(cx);
            }
            Fed::Stop(hit) => {
                *rest = &[];
                self.stop(hit);
            }
        }
    }

    /// After a stream ends, another may follow (multi-member gzip, concatenated bzip2, zstd
    /// frames); xz handles concatenation itself.
    fn next_stream(&mut self, cx: &mut ScanCx<'_>) {
        self.codec.restart();
        self.state = match self.file_type {
            FileType::Gzip => State::GzipTrailer(8),
            FileType::Bzip2 | FileType::Xz => {
                if let Ok(c) = new_codec(self.file_type, cx) {
                    *self.codec.codec_mut() = c;
                }
                State::Body
            }
            _ => State::Body,
        };
    }

    fn stop(&mut self, hit: LimitHit) {
        self.hits.push(hit);
        self.state = State::Stopped;
    }
}

fn new_codec(file_type: FileType, cx: &ScanCx<'_>) -> Result<Box<dyn Codec>, LimitHit> {
    let unsupported = |what: &'static str| LimitHit {
        kind: LimitKind::UnsupportedEncoding,
        detail: what.into(),
    };
    Ok(match file_type {
        FileType::Gzip => Box::new(Deflate::new()),
        FileType::Bzip2 => Box::new(Bzip2(bzip2::Decompress::new(false))),
        FileType::Xz => {
            let memlimit = cx.config.limits.max_buffer_bytes as u64 + (1 << 20);
            let stream = liblzma::stream::Stream::new_stream_decoder(memlimit, 0)
                .map_err(|_| unsupported("xz decoder unavailable"))?;
            Box::new(Lzma(stream))
        }
        FileType::Zstd => {
            let mut d = zstd::stream::raw::Decoder::new()
                .map_err(|_| unsupported("zstd decoder unavailable"))?;
            d.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(
                ZSTD_WINDOW_LOG_MAX,
            ))
            .map_err(|_| unsupported("zstd decoder unavailable"))?;
            Box::new(Zstd(d))
        }
        _ => return Err(unsupported("not a compression format")),
    })
}

impl FormatScanner for CompressedScanner {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match self.state {
                State::GzipHeader => self.gzip_header(&mut rest, cx),
                State::Body => self.body(&mut rest, cx),
                State::GzipTrailer(left) => {
                    let take = rest.len().min(usize::from(left));
                    rest = rest.get(take..).unwrap_or_default();
                    let left = left - take as u8;
                    self.state = if left > 0 {
                        State::GzipTrailer(left)
                    } else {
                        // Another member may follow; zero padding may too.
                        *self.codec.codec_mut() = Box::new(Deflate::new());
                        self.codec.restart();
                        State::GzipHeader
                    };
                }
                State::Stopped => rest = &[],
            }
        }
    }

    fn settled(&self) -> bool {
        false
    }

    fn finish(self: Box<Self>, cx: &mut ScanCx<'_>) -> FormatFacts {
        let mut hits = self.hits;
        let truncated = match self.state {
            State::Body => {
                !self.complete || self.file_type == FileType::Gzip || self.codec.written() > 0
            }
            State::GzipHeader => !self.complete || !self.header.is_empty(),
            State::GzipTrailer(_) => true,
            State::Stopped => false,
        };
        if truncated {
            hits.push(malformed("compressed stream truncated"));
        }
        let inner = self.inner.map(|s| s.finish(cx));
        let mut facts = FormatFacts {
            file_type: self.file_type,
            encryption: Encryption::not_encrypted("compression is not encryption"),
            members: Vec::new(),
            limits: hits,
        };
        if let Some(inner) = inner {
            if inner.encryption.verdict == Verdict::Encrypted {
                // An encrypted file, compressed: still unreadable without its key.
                facts.encryption = inner.encryption;
            }
            facts.members = inner.members;
            facts.limits.extend(inner.limits);
        }
        facts
    }
}

enum Header<'a> {
    More,
    Bad,
    Done { len: usize, name: Option<&'a [u8]> },
}

/// RFC 1952 member header: magic, CM=8, flags, mtime, XFL, OS, then optional fields.
fn parse_gzip_header(b: &[u8]) -> Header<'_> {
    if b.len() < 10 {
        return if b.iter().zip(b"\x1f\x8b\x08").all(|(x, y)| x == y) {
            Header::More
        } else {
            Header::Bad
        };
    }
    if !b.starts_with(b"\x1f\x8b\x08") {
        return Header::Bad;
    }
    let flags = b.get(3).copied().unwrap_or(0);
    let mut at = 10;
    if flags & 0x04 != 0 {
        let Some(len) = b.get(at..at + 2) else {
            return Header::More;
        };
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    let mut name = None;
    for (bit, is_name) in [(0x08, true), (0x10, false)] {
        if flags & bit != 0 {
            let Some(end) = b.get(at..).and_then(|r| memchr::memchr(0, r)) else {
                return Header::More;
            };
            if is_name {
                name = b.get(at..at + end);
            }
            at += end + 1;
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    if b.len() < at {
        return Header::More;
    }
    Header::Done { len: at, name }
}

#[cfg(test)]
#[path = "compressed_tests.rs"]
mod tests;
