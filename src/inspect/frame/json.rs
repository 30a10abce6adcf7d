//! JSON bodies as text, with long base64 strings decoded as files.
//!
//! Keys, string values (unescaped) and numbers go to the detectors one per line, so a key
//! `"bsn"` is context for the number next to it and a value `"Vertrouwelijk"` stands alone like
//! a marking. A string of at least 1 KiB of base64 characters (or a `data:…;base64,` URL) is
//! how web uploaders send files: it is decoded on the fly into a file, named from a sibling
//! `"name"`/`"filename"` key when there is one.

use memchr::memchr2;

use crate::inspect::frame::Out;
use crate::inspect::frame::base64::{Base64, is_b64_char};
use crate::inspect::frame::file::FileSlot;
use crate::inspect::report::{LimitHit, LimitKind};

/// Base64 characters a string needs before it is taken for a file.
pub(crate) const MIN_BLOB: usize = 1024;
const MAX_DATA_PREFIX: usize = 256;
const MAX_DEPTH: usize = 1024;
const MAX_NAME: usize = 255;
const FLUSH_AT: usize = 8 << 10;
const NAME_KEYS: &[&[u8]] = &[b"name", b"filename", b"file_name", b"title"];

#[derive(Default)]
pub(crate) struct JsonText {
    objects: Vec<bool>,
    depth: usize,
    expect_key: bool,
    in_string: bool,
    is_key: bool,
    in_number: bool,
    esc: Esc,
    high_surrogate: Option<u32>,
    key: Vec<u8>,
    capture: Option<Vec<u8>>,
    string: Str,
    text: Vec<u8>,
    pending_name: Option<(usize, String)>,
    last_blob: Option<(usize, usize)>,
    malformed: bool,
    /// Reused for decoding blobs.
    decoded: Vec<u8>,
}

#[derive(Default, Clone, Copy)]
enum Esc {
    #[default]
    None,
    Backslash,
    Unicode(u8, u32),
}

#[derive(Default)]
enum Str {
    /// Not yet known to be text or a file: the decoded bytes so far (all base64 characters,
    /// after an optional `data:` prefix of `prefix` bytes).
    Undecided {
        buf: Vec<u8>,
        prefix: Option<usize>,
        checked: usize,
    },
    #[default]
    Text,
    Blob(Box<FileSlot>, Base64),
    /// The rest of a broken blob.
    Skip,
}

// === impl JsonText ===

impl JsonText {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Out<'_>) {
        let mut i = 0;
        while let Some(&b) = data.get(i) {
            if self.text.len() >= FLUSH_AT {
                out.text(&self.text);
                self.text.clear();
            }
            if self.in_string && matches!(self.esc, Esc::None) {
                let rest = data.get(i..).unwrap_or(&[]);
                let run = memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                self.string_bytes(rest.get(..run).unwrap_or(&[]), out);
                i += run;
                let Some(&q) = data.get(i) else { break };
                i += 1;
                if q == b'"' {
                    self.end_string(out);
                } else {
                    self.esc = Esc::Backslash;
                }
                continue;
            }
            i += 1;
            if self.in_string {
                self.escape_byte(b, out);
            } else {
                self.structure(b, out);
            }
        }
        if self.text.len() >= FLUSH_AT {
            out.text(&self.text);
            self.text.clear();
        }
    }

    pub(crate) fn finish(mut self, out: &mut Out<'_>) {
        if self.in_string || self.depth > 0 {
            self.note_malformed(out, "JSON ends early");
        }
        if self.in_string {
            self.end_string(out);
        }
        out.text(&self.text);
        out.end_text();
    }

    fn note_malformed(&mut self, out: &mut Out<'_>, detail: &'static str) {
        if !self.malformed {
            self.malformed = true;
            out.limit(LimitHit {
                kind: LimitKind::Malformed,
                detail: detail.into(),
            });
        }
    }

    fn in_object(&self) -> bool {
        self.depth > 0 && self.objects.get(self.depth - 1).copied().unwrap_or(false)
    }

    fn structure(&mut self, b: u8, out: &mut Out<'_>) {
        let numeric = b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
        if self.in_number && !numeric {
            self.in_number = false;
            self.text.push(b'\n');
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.is_key = self.expect_key && self.in_object();
                let wants_name = NAME_KEYS.contains(&self.key.as_slice());
                self.capture = (self.is_key || wants_name).then(Vec::new);
                self.string = if self.is_key {
                    Str::Text
                } else {
                    Str::Undecided {
                        buf: Vec::new(),
                        prefix: None,
                        checked: 0,
                    }
                };
            }
            b'{' | b'[' => {
                if self.depth < MAX_DEPTH {
                    self.objects.truncate(self.depth);
                    self.objects.push(b == b'{');
                } else {
                    self.note_malformed(out, "JSON nested too deeply");
                }
                self.depth += 1;
                self.expect_key = b == b'{';
            }
            b'}' | b']' => {
                if self.depth == 0 {
                    self.note_malformed(out, "unbalanced JSON");
                    return;
                }
                if self
                    .pending_name
                    .as_ref()
                    .is_some_and(|(d, _)| *d >= self.depth)
                {
                    self.pending_name = None;
                }
                self.depth -= 1;
                self.expect_key = false;
            }
            b',' => self.expect_key = self.in_object(),
            b':' => self.expect_key = false,
            _ if numeric => {
                self.in_number = true;
                self.text.push(b);
            }
            _ => {}
        }
    }

    fn escape_byte(&mut self, b: u8, out: &mut Out<'_>) {
        match self.esc {
            Esc::None => {}
            Esc::Backslash => {
                self.esc = Esc::None;
                let c = match b {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' | b'f' => b' ',
                    b'u' => {
                        self.esc = Esc::Unicode(0, 0);
                        return;
                    }
                    other => other,
                };
                self.string_bytes(&[c], out);
            }
            Esc::Unicode(n, v) => {
                let Some(d) = char::from(b).to_digit(16) else {
                    self.esc = Esc::None;
                    return;
                };
                let v = v * 16 + d;
                if n < 3 {
                    self.esc = Esc::Unicode(n + 1, v);
                    return;
                }
                self.esc = Esc::None;
                self.code_unit(v, out);
            }
        }
    }

    fn code_unit(&mut self, v: u32, out: &mut Out<'_>) {
        let c = match (self.high_surrogate.take(), v) {
            (None, 0xD800..=0xDBFF) => {
                self.high_surrogate = Some(v);
                return;
            }
            (Some(h), 0xDC00..=0xDFFF) => {
                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (v - 0xDC00))
            }
            (_, v) => char::from_u32(v),
        };
        let mut buf = [0u8; 4];
        let s = c
            .unwrap_or(char::REPLACEMENT_CHARACTER)
            .encode_utf8(&mut buf);
        self.string_bytes(s.as_bytes(), out);
    }

    /// Decoded bytes of the current string.
    fn string_bytes(&mut self, bytes: &[u8], out: &mut Out<'_>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(c) = self.capture.as_mut() {
            let room = MAX_NAME.saturating_sub(c.len()).min(bytes.len());
            c.extend_from_slice(bytes.get(..room).unwrap_or(&[]));
        }
        match &mut self.string {
            Str::Text => self.text.extend_from_slice(bytes),
            Str::Skip => {}
            Str::Blob(slot, b64) => {
                self.decoded.clear();
                let ok = b64.push(bytes, &mut self.decoded).is_ok();
                slot.feed(&self.decoded, out.engine, &mut out.budgets);
                if !ok {
                    self.broken_blob(out);
                }
            }
            Str::Undecided {
                buf,
                prefix,
                checked,
            } => {
                buf.extend_from_slice(bytes);
                if let Some(next) = classify(buf, prefix, checked) {
                    self.decide(next, out);
                }
            }
        }
    }

    fn decide(&mut self, text: bool, out: &mut Out<'_>) {
        let Str::Undecided { buf, prefix, .. } = std::mem::take(&mut self.string) else {
            return;
        };
        if text {
            self.text.extend_from_slice(&buf);
            self.string = Str::Text;
            return;
        }
        if out.files.len() >= out.engine.config().limits.max_members as usize {
            out.limit(LimitHit {
                kind: LimitKind::Members,
                detail: "too many base64 files in JSON".into(),
            });
            self.string = Str::Skip;
            return;
        }
        let start = prefix.unwrap_or(0);
        let media = prefix.and_then(|_| data_url_media(&buf));
        let name = self
            .pending_name
            .as_ref()
            .filter(|(d, _)| *d == self.depth)
            .map(|(_, n)| n.clone());
        let field = (!self.key.is_empty()).then(|| String::from_utf8_lossy(&self.key).into_owned());
        let mut slot = Box::new(FileSlot::new(out.engine, name, field, media));
        let mut b64 = Base64::default();
        let mut decoded = Vec::with_capacity(buf.len());
        let ok = b64
            .push(buf.get(start..).unwrap_or(&[]), &mut decoded)
            .is_ok();
        slot.feed(&decoded, out.engine, &mut out.budgets);
        self.string = Str::Blob(slot, b64);
        if !ok {
            self.broken_blob(out);
        }
    }

    fn end_string(&mut self, out: &mut Out<'_>) {
        self.in_string = false;
        self.esc = Esc::None;
        if let Str::Undecided { .. } = self.string {
            self.decide(true, out);
        }
        match self.string {
            Str::Blob(..) => self.close_blob(out),
            Str::Skip => {}
            _ => self.text.push(b'\n'),
        }
        self.string = Str::Text;
        let captured = self.capture.take();
        if self.is_key {
            self.key = captured.unwrap_or_default();
            self.key.make_ascii_lowercase();
            self.expect_key = false;
        } else if let Some(name) = captured {
            let name = String::from_utf8_lossy(&name).into_owned();
            if let Some((depth, idx)) = self.last_blob
                && depth == self.depth
                && let Some(file) = out.files.get_mut(idx)
            {
                file.name.get_or_insert_with(|| name.clone());
            }
            self.pending_name = Some((self.depth, name));
        }
    }

    /// A blob that stops being base64: the file ends there, the rest of the string is skipped.
    fn broken_blob(&mut self, out: &mut Out<'_>) {
        if let Str::Blob(slot, _) = &mut self.string {
            slot.add_limit(LimitHit {
                kind: LimitKind::Malformed,
                detail: "base64 string is broken".into(),
            });
        }
        self.close_blob(out);
        self.string = Str::Skip;
    }

    fn close_blob(&mut self, out: &mut Out<'_>) {
        if let Str::Blob(mut slot, mut b64) = std::mem::take(&mut self.string) {
            let mut tail = Vec::new();
            if b64.finish(&mut tail).is_err() {
                slot.add_limit(LimitHit {
                    kind: LimitKind::Malformed,
                    detail: "base64 string is broken".into(),
                });
            }
            slot.feed(&tail, out.engine, &mut out.budgets);
            out.finish_file(*slot);
            self.last_blob = Some((self.depth, out.files.len().saturating_sub(1)));
        }
    }
}

/// Decides an undecided string: `Some(true)` text, `Some(false)` a base64 file, `None` not yet.
/// The answer depends only on the string's bytes, never on where chunks were cut: a string is
/// a file if its first [`MIN_BLOB`] characters (after a `data:` prefix found within the first
/// [`MAX_DATA_PREFIX`] bytes) are base64. Only bytes past `checked` are looked at again.
fn classify(buf: &[u8], prefix: &mut Option<usize>, checked: &mut usize) -> Option<bool> {
    if prefix.is_none() {
        if buf.starts_with(b"data:") {
            let window = buf.get(..buf.len().min(MAX_DATA_PREFIX)).unwrap_or(&[]);
            match memchr::memmem::find(window, b";base64,") {
                Some(k) => *prefix = Some(k + 8),
                None if buf.len() < MAX_DATA_PREFIX => return None,
                None => return Some(true),
            }
        } else if buf.len() < 5 && b"data:".starts_with(buf) {
            return None;
        }
    }
    let start = prefix.unwrap_or(0);
    let from = (*checked).max(start);
    let fresh = buf.get(from..).unwrap_or(&[]);
    let ok = |b: &u8| is_b64_char(*b) || *b == b'\n' || *b == b'\r';
    if let Some(bad) = fresh.iter().position(|b| !ok(b)) {
        return Some(from + bad - start < MIN_BLOB);
    }
    *checked = buf.len();
    (buf.len() - start >= MIN_BLOB).then_some(false)
}

fn data_url_media(buf: &[u8]) -> Option<String> {
    let rest = buf.get(5..)?;
    let end = rest.iter().position(|&b| b == b';' || b == b',')?;
    let media = String::from_utf8_lossy(rest.get(..end)?)
        .trim()
        .to_ascii_lowercase();
    (!media.is_empty()).then_some(media)
}
