//! Streamed `multipart/form-data` (RFC 7578), `multipart/related` and `multipart/mixed`.
//!
//! The body is split at `CRLF--boundary` without buffering it: bytes that cannot be the start
//! of a delimiter go straight to the current part, and only the last `boundary + 3` bytes of a
//! chunk (a possible partial delimiter) are held until the next one. A part with a file name,
//! or with a non-text media type, is a file; other parts are text.

use memchr::memmem::Finder;

use crate::inspect::frame::Out;
use crate::inspect::frame::base64::Base64;
use crate::inspect::frame::file::FileSlot;
use crate::inspect::frame::mime::{MediaType, ext_value, params, percent_decode};
use crate::inspect::frame::text::TextBody;
use crate::inspect::report::{LimitHit, LimitKind};

/// Part headers longer than this are malformed.
const MAX_HEADERS: usize = 16 << 10;
/// A preamble longer than this (real clients send none) means the boundary is wrong.
const MAX_PREAMBLE: usize = 64 << 10;

pub(crate) struct Multipart {
    finder: Finder<'static>,
    delim_len: usize,
    held: Vec<u8>,
    state: State,
    part: Part,
    parts: u32,
    max_parts: u32,
    /// Reused for decoding `Content-Transfer-Encoding: base64` parts.
    decoded: Vec<u8>,
}

#[derive(Debug)]
enum State {
    Preamble(usize),
    /// Just after a delimiter: `--` closes, else optional padding and a line break.
    AfterDelim(Vec<u8>),
    Headers(Vec<u8>),
    Body,
    /// After the closing delimiter, or after giving up on malformed framing.
    Done,
}

enum Part {
    None,
    File(Box<FileSlot>, Option<Base64>),
    /// `filename=""` with no bytes yet: what browsers send for an empty file input.
    EmptyFile(Option<String>, Option<String>),
    Text(TextBody),
}

/// What the part headers say.
#[derive(Debug, Default)]
struct PartHead {
    field: Option<String>,
    filename: Option<String>,
    media: Option<MediaType>,
    base64: bool,
}

// === impl Multipart ===

impl Multipart {
    pub(crate) fn new(boundary: &str, max_parts: u32) -> Self {
        let delim = format!("\r\n--{boundary}").into_bytes();
        Self {
            delim_len: delim.len(),
            finder: Finder::new(&delim).into_owned(),
            // A virtual line break, so a delimiter at the very start is found like any other.
            held: b"\r\n".to_vec(),
            state: State::Preamble(0),
            part: Part::None,
            parts: 0,
            max_parts,
            decoded: Vec::new(),
        }
    }

    /// True once the closing delimiter was seen: what follows is epilogue.
    pub(crate) fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    pub(crate) fn feed(&mut self, mut data: &[u8], out: &mut Out<'_>) {
        if self.done() {
            return;
        }
        if !self.held.is_empty() {
            let held_len = self.held.len();
            let take = data.len().min(self.delim_len);
            let mut held = std::mem::take(&mut self.held);
            held.extend_from_slice(data.get(..take).unwrap_or(&[]));
            let consumed = self.process(&held, out);
            if consumed >= held_len {
                data = data.get(consumed - held_len..).unwrap_or(&[]);
            } else {
                held.drain(..consumed);
                self.held = held;
                return;
            }
        }
        let consumed = self.process(data, out);
        if !self.done() {
            self.held
                .extend_from_slice(data.get(consumed..).unwrap_or(&[]));
        }
    }

    pub(crate) fn finish(mut self, out: &mut Out<'_>) {
        if !self.done() {
            if matches!(self.state, State::Body) {
                let held = std::mem::take(&mut self.held);
                self.emit(&held, out);
            }
            out.limit(malformed("multipart body ends before its closing boundary"));
        }
        self.end_part(out);
    }

    /// Consumes what it can of `buf`; the rest (a possible partial delimiter) is held.
    fn process(&mut self, buf: &[u8], out: &mut Out<'_>) -> usize {
        let mut i = 0;
        while i < buf.len() {
            let rest = buf.get(i..).unwrap_or(&[]);
            match &mut self.state {
                State::Done => return buf.len(),
                State::Preamble(_) | State::Body => match self.finder.find(rest) {
                    Some(k) => {
                        self.emit(rest.get(..k).unwrap_or(&[]), out);
                        self.end_part(out);
                        self.state = State::AfterDelim(Vec::new());
                        i += k + self.delim_len;
                    }
                    None => {
                        let safe = rest.len().saturating_sub(self.delim_len - 1);
                        self.emit(rest.get(..safe).unwrap_or(&[]), out);
                        if let State::Preamble(seen) = &mut self.state {
                            *seen += safe;
                            if *seen > MAX_PREAMBLE {
                                out.limit(malformed("multipart boundary not found"));
                                self.state = State::Done;
                            }
                        }
                        return i + safe;
                    }
                },
                State::AfterDelim(seen) => {
                    let b = rest.first().copied().unwrap_or(0);
                    i += 1;
                    seen.push(b);
                    match after_delimiter(seen) {
                        Some(Next::Close) => self.state = State::Done,
                        Some(Next::Headers) => self.state = State::Headers(Vec::new()),
                        Some(Next::Bad) => {
                            out.limit(malformed("garbage after a multipart boundary"));
                            self.state = State::Done;
                        }
                        None => {}
                    }
                }
                State::Headers(h) => {
                    let b = rest.first().copied().unwrap_or(0);
                    i += 1;
                    h.push(b);
                    if h.ends_with(b"\r\n\r\n")
                        || h.ends_with(b"\n\n")
                        || h == b"\r\n"
                        || h == b"\n"
                    {
                        let head = parse_head(h);
                        self.start_part(head, out);
                        self.state = State::Body;
                    } else if h.len() > MAX_HEADERS {
                        out.limit(malformed("multipart part headers too long"));
                        self.state = State::Done;
                    }
                }
            }
        }
        buf.len()
    }

    fn start_part(&mut self, head: PartHead, out: &mut Out<'_>) {
        self.parts += 1;
        if self.parts > self.max_parts {
            if self.parts == self.max_parts + 1 {
                out.limit(LimitHit {
                    kind: LimitKind::Members,
                    detail: "too many multipart parts".into(),
                });
            }
            self.part = Part::None;
            return;
        }
        let media = head.media.clone();
        let declared = media.as_ref().map(|m| m.essence.clone());
        let is_file = head.filename.is_some() || media.as_ref().is_some_and(|m| !m.is_textual());
        self.part = if !is_file {
            Part::Text(TextBody::for_media(media.as_ref()))
        } else if head.filename.as_deref() == Some("") {
            Part::EmptyFile(head.field, declared)
        } else {
            let slot = FileSlot::new(out.engine, head.filename, head.field, declared);
            Part::File(Box::new(slot), head.base64.then(Base64::default))
        };
    }

    fn emit(&mut self, data: &[u8], out: &mut Out<'_>) {
        if data.is_empty() || !matches!(self.state, State::Body) {
            return;
        }
        if let Part::EmptyFile(field, declared) = &mut self.part {
            let slot = FileSlot::new(out.engine, None, field.take(), declared.take());
            self.part = Part::File(Box::new(slot), None);
        }
        match &mut self.part {
            Part::File(slot, None) => slot.feed(data, out.engine, &mut out.budgets),
            Part::File(slot, Some(b64)) => {
                self.decoded.clear();
                if b64.push(data, &mut self.decoded).is_err() {
                    slot.add_limit(malformed("part is not valid base64"));
                }
                slot.feed(&self.decoded, out.engine, &mut out.budgets);
            }
            Part::Text(t) => t.feed(data, out),
            Part::None | Part::EmptyFile(..) => {}
        }
    }

    fn end_part(&mut self, out: &mut Out<'_>) {
        match std::mem::replace(&mut self.part, Part::None) {
            Part::File(mut slot, b64) => {
                if let Some(mut b64) = b64 {
                    let mut tail = Vec::new();
                    if b64.finish(&mut tail).is_err() {
                        slot.add_limit(malformed("part is not valid base64"));
                    }
                    slot.feed(&tail, out.engine, &mut out.budgets);
                }
                out.finish_file(*slot);
            }
            Part::Text(t) => t.finish(out),
            Part::None | Part::EmptyFile(..) => {}
        }
    }

    pub(crate) fn settled(&self) -> bool {
        self.done()
    }
}

enum Next {
    Close,
    Headers,
    Bad,
}

/// After a delimiter: `--` closes the body; otherwise padding (spaces, tabs) then a line
/// break. `None` while undecided.
fn after_delimiter(seen: &[u8]) -> Option<Next> {
    if seen.starts_with(b"--") {
        return Some(Next::Close);
    }
    let pad = |s: &[u8]| s.iter().all(|b| matches!(b, b' ' | b'\t'));
    let (&last, init) = seen.split_last()?;
    match last {
        b'-' if init.is_empty() => None,
        b'\n' if pad(init.strip_suffix(b"\r").unwrap_or(init)) => Some(Next::Headers),
        b'\r' | b' ' | b'\t' if pad(init) && seen.len() <= 64 => None,
        _ => Some(Next::Bad),
    }
}

fn malformed(detail: &'static str) -> LimitHit {
    LimitHit {
        kind: LimitKind::Malformed,
        detail: detail.into(),
    }
}

/// Reads the part headers; folded lines are joined, names are case-insensitive.
fn parse_head(raw: &[u8]) -> PartHead {
    let text = String::from_utf8_lossy(raw);
    let mut head = PartHead::default();
    let mut lines: Vec<String> = Vec::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        match (line.starts_with([' ', '\t']), lines.last_mut()) {
            (true, Some(prev)) => prev.push_str(line),
            _ if !line.is_empty() => lines.push(line.to_owned()),
            _ => {}
        }
    }
    for line in &lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => {
                let ps = params(value.split_once(';').map_or("", |(_, r)| r));
                let get = |k: &str| ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                head.field = get("name");
                head.filename = get("filename*")
                    .and_then(|v| ext_value(&v))
                    .or_else(|| get("filename").map(|f| percent_decode(&f).unwrap_or(f)));
            }
            "content-type" => head.media = Some(MediaType::parse(value)),
            "content-transfer-encoding" => {
                head.base64 = value.trim().eq_ignore_ascii_case("base64")
            }
            _ => {}
        }
    }
    head
}
