//! Request bodies, generated on the fly: a few MiB of plain prose made once at start, streamed
//! in 64 KiB slices as often as the body length needs. Nothing is read from disk and nothing
//! is copied per request (a slice of `Bytes` shares the buffer).
//!
//! The text is lowercase words from a fixed list, with no digits: realistic input for an
//! inspecting proxy (the text path runs) that no detector can mistake for a citizen service
//! number, an IBAN, a card number or a classification marking, so the policy lets it through
//! and the origin can check that every byte arrived.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Bytes per frame handed to the connection (what a client writes per call).
const CHUNK: usize = 64 << 10;

const WORDS: &[&str] = &[
    "the",
    "report",
    "shows",
    "that",
    "our",
    "team",
    "met",
    "every",
    "goal",
    "for",
    "this",
    "quarter",
    "and",
    "we",
    "plan",
    "to",
    "grow",
    "further",
    "with",
    "new",
    "customers",
    "in",
    "several",
    "regions",
    "while",
    "keeping",
    "costs",
    "low",
    "network",
    "capacity",
    "was",
    "expanded",
    "as",
    "agreed",
    "service",
    "levels",
    "stayed",
    "within",
    "target",
    "all",
    "projects",
    "are",
    "on",
    "schedule",
    "budget",
    "review",
    "meeting",
    "next",
    "week",
    "notes",
    "draft",
    "summary",
    "please",
    "read",
    "before",
    "monday",
    "thanks",
    "kind",
    "regards",
    "planning",
    "update",
    "overview",
];

/// The text every body is cut from.
#[derive(Clone)]
pub(crate) struct Payload {
    text: Bytes,
}

/// A body of exactly `remaining` bytes, cut from the payload text in `CHUNK` slices.
pub(crate) struct UploadBody {
    text: Bytes,
    pos: usize,
    remaining: u64,
}

// === impl Payload ===

impl Payload {
    /// `len` bytes of prose, the same for every run (xorshift with a fixed seed).
    pub(crate) fn new(len: usize) -> Self {
        let mut out = Vec::with_capacity(len + 16);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut line = 0usize;
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let word = WORDS
                .get((x % WORDS.len() as u64) as usize)
                .copied()
                .unwrap_or("the");
            out.extend_from_slice(word.as_bytes());
            line += word.len() + 1;
            if line > 72 {
                out.push(b'\n');
                line = 0;
            } else {
                out.push(b' ');
            }
        }
        out.truncate(len);
        Self {
            text: Bytes::from(out),
        }
    }

    /// The text itself, for the inspect bench to scan what this bench uploads.
    #[allow(
        dead_code,
        reason = "used by the inspect bench, which includes this file"
    )]
    pub(crate) fn text(&self) -> &[u8] {
        &self.text
    }

    /// A body of `len` bytes (0 = no body).
    pub(crate) fn body(&self, len: u64) -> UploadBody {
        UploadBody {
            text: self.text.clone(),
            pos: 0,
            remaining: len,
        }
    }
}

// === impl UploadBody ===

impl Body for UploadBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 || self.text.is_empty() {
            return Poll::Ready(None);
        }
        if self.pos >= self.text.len() {
            self.pos = 0;
        }
        let room = self.text.len() - self.pos;
        let n = CHUNK
            .min(room)
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let chunk = self.text.slice(self.pos..self.pos + n);
        self.pos += n;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
