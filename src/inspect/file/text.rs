//! Text-like files (plain text, CSV, JSON, XML, HTML, scripts): sniffing and scanning.
//!
//! The bytes go to the detectors as body text: UTF-8 as they are (a UTF-8 BOM dropped), UTF-16
//! with a BOM converted to UTF-8 on the way. Anyone can read a text file, so the verdict is
//! `NotEncrypted`, and it takes the whole file to know what is in it (never settled early).

use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, FileType};
use crate::inspect::sink::TextOrigin;

/// Share of control bytes above which a prefix is not text.
const MAX_CONTROL_PER_MILLE: usize = 10;
const CSV_DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];
const CSV_LINES: usize = 20;

pub(crate) struct TextFile {
    file_type: FileType,
    mode: Mode,
    /// The first bytes, until the BOM is known; then an odd byte of UTF-16.
    pending: Vec<u8>,
    high_surrogate: Option<u16>,
    utf8: Vec<u8>,
    size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Start,
    Utf8,
    Utf16 { big_endian: bool },
}

// === impl TextFile ===

impl TextFile {
    pub(crate) fn new(file_type: FileType) -> Self {
        Self {
            file_type,
            mode: Mode::Start,
            pending: Vec::new(),
            high_surrogate: None,
            utf8: Vec::new(),
            size: 0,
        }
    }

    fn start(&mut self, cx: &mut ScanCx<'_>) {
        let head = std::mem::take(&mut self.pending);
        let (mode, skip) = match head.as_slice() {
            [0xEF, 0xBB, 0xBF, ..] => (Mode::Utf8, 3),
            [0xFF, 0xFE, ..] => (Mode::Utf16 { big_endian: false }, 2),
            [0xFE, 0xFF, ..] => (Mode::Utf16 { big_endian: true }, 2),
            _ => (Mode::Utf8, 0),
        };
        self.mode = mode;
        self.push(head.get(skip..).unwrap_or(&[]), cx);
    }

    fn push(&mut self, data: &[u8], cx: &mut ScanCx<'_>) {
        match self.mode {
            Mode::Start => {}
            Mode::Utf8 => cx.sink.text(data, TextOrigin::Body),
            Mode::Utf16 { big_endian } => {
                self.utf8.clear();
                let mut units = data;
                if let Some(&odd) = self.pending.first() {
                    let Some((&b, rest)) = data.split_first() else {
                        return;
                    };
                    self.pending.clear();
                    self.unit([odd, b], big_endian);
                    units = rest;
                }
                let mut pairs = units.chunks_exact(2);
                for pair in &mut pairs {
                    if let &[a, b] = pair {
                        self.unit([a, b], big_endian);
                    }
                }
                self.pending.extend_from_slice(pairs.remainder());
                let utf8 = std::mem::take(&mut self.utf8);
                cx.sink.text(&utf8, TextOrigin::Body);
                self.utf8 = utf8;
            }
        }
    }

    fn unit(&mut self, pair: [u8; 2], big_endian: bool) {
        let u = if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        };
        let c = match (self.high_surrogate.take(), u) {
            (None, 0xD800..=0xDBFF) => {
                self.high_surrogate = Some(u);
                return;
            }
            (Some(h), 0xDC00..=0xDFFF) => char::decode_utf16([h, u]).next().and_then(Result::ok),
            (_, u) => char::decode_utf16([u]).next().and_then(Result::ok),
        };
        let mut buf = [0u8; 4];
        let s = c
            .unwrap_or(char::REPLACEMENT_CHARACTER)
            .encode_utf8(&mut buf);
        self.utf8.extend_from_slice(s.as_bytes());
    }
}

impl FormatScanner for TextFile {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        self.size += chunk.len() as u64;
        if self.mode == Mode::Start {
            self.pending.extend_from_slice(chunk);
            if self.pending.len() >= 3 {
                self.start(cx);
            }
            return;
        }
        self.push(chunk, cx);
    }

    fn finish(mut self: Box<Self>, cx: &mut ScanCx<'_>) -> FormatFacts {
        if self.mode == Mode::Start {
            self.start(cx);
        }
        cx.sink.end_text();
        let reason = if self.size == 0 {
            "empty file"
        } else {
            "plain text"
        };
        FormatFacts {
            file_type: self.file_type,
            encryption: Encryption::not_encrypted(reason),
            members: Vec::new(),
            limits: Vec::new(),
        }
    }
}

/// Text and its kind from a prefix, or `None` if the bytes are not text. An empty file is
/// text. UTF-16 is recognised by its BOM only.
pub(crate) fn sniff_text(prefix: &[u8]) -> Option<FileType> {
    if prefix.starts_with(&[0xFF, 0xFE]) || prefix.starts_with(&[0xFE, 0xFF]) {
        return Some(FileType::Text);
    }
    let body = prefix.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(prefix);
    match std::str::from_utf8(body) {
        Ok(_) => {}
        // A prefix may end inside a character.
        Err(e) if e.error_len().is_none() => {}
        Err(_) => return None,
    }
    let control = body
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B)) || b == 0x7F)
        .count();
    if body.contains(&0) || control * 1000 > body.len() * MAX_CONTROL_PER_MILLE {
        return None;
    }
    Some(refine(body))
}

fn refine(text: &[u8]) -> FileType {
    let t = text.trim_ascii_start();
    let lower: Vec<u8> = t.iter().take(512).map(u8::to_ascii_lowercase).collect();
    let has = |needle: &[u8]| memchr::memmem::find(&lower, needle).is_some();
    match t.first() {
        Some(b'{') | Some(b'[') if looks_like_json(t) => FileType::Json,
        Some(b'<')
            if lower.starts_with(b"<!doctype html")
                || has(b"<html")
                || has(b"<body")
                || has(b"<head") =>
        {
            FileType::Html
        }
        Some(b'<')
            if t.get(1)
                .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'?' | b'!')) =>
        {
            FileType::Xml
        }
        _ if looks_like_csv(text) => FileType::Csv,
        _ => FileType::Text,
    }
}

fn looks_like_json(t: &[u8]) -> bool {
    let next = t
        .get(1..)
        .unwrap_or(&[])
        .trim_ascii_start()
        .first()
        .copied();
    match t.first() {
        Some(b'{') => matches!(next, Some(b'"') | Some(b'}') | None),
        Some(b'[') => next.is_none_or(|b| b"{[\"-]tfn".contains(&b) || b.is_ascii_digit()),
        _ => false,
    }
}

/// Complete lines with the same number (≥ 1) of one delimiter outside quotes.
fn looks_like_csv(text: &[u8]) -> bool {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if !text.ends_with(b"\n") {
        lines.pop();
    }
    let lines: Vec<&[u8]> = lines
        .into_iter()
        .filter(|l| !l.trim_ascii().is_empty())
        .take(CSV_LINES)
        .collect();
    if lines.len() < 2 {
        return false;
    }
    CSV_DELIMITERS.iter().any(|&d| {
        let counts: Vec<usize> = lines.iter().map(|l| count_outside_quotes(l, d)).collect();
        let first = counts.first().copied().unwrap_or(0);
        first >= 1 && counts.iter().all(|&c| c == first) && (first >= 2 || lines.len() >= 3)
    })
}

fn count_outside_quotes(line: &[u8], delim: u8) -> usize {
    let mut quoted = false;
    line.iter()
        .filter(|&&b| {
            if b == b'"' {
                quoted = !quoted;
            }
            b == delim && !quoted
        })
        .count()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::inspect::report::{DetectorKind, FileReport, LabelSource, Level, Verdict};
    use crate::inspect::{BodyMeta, Engine, EngineConfig};

    /// Scans a fixture as `sluis scan` would, at several chunkings that must agree.
    fn fixture(name: &str) -> FileReport {
        let path = format!("{}/tests/fixtures/text/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(path).unwrap();
        let engine = Arc::new(Engine::new(EngineConfig::default()).unwrap());
        let reports = [1, 7, 4096, bytes.len()].map(|split| {
            let mut s = engine.session(BodyMeta {
                file_name: Some(name.into()),
                ..BodyMeta::default()
            });
            for chunk in bytes.chunks(split.max(1)) {
                s.feed(chunk);
            }
            let mut r = s.finish();
            assert_eq!(r.files.len(), 1);
            r.files.remove(0)
        });
        let first = serde_json::to_string(&reports[0]).unwrap();
        for r in &reports[1..] {
            assert_eq!(first, serde_json::to_string(r).unwrap(), "{name}");
        }
        let [whole, ..] = reports;
        whole
    }

    fn count(f: &FileReport, kind: DetectorKind) -> u32 {
        f.detections
            .iter()
            .find(|d| d.kind == kind)
            .map_or(0, |d| d.count)
    }

    #[test]
    fn fixtures() {
        let csv = fixture("bsn.csv");
        assert_eq!(csv.file_type, FileType::Csv);
        assert_eq!(csv.encryption.verdict, Verdict::NotEncrypted);
        assert_eq!(count(&csv, DetectorKind::Bsn), 100);
        assert!(csv.label.is_none());

        let memo = fixture("labelled.txt");
        let label = memo.label.unwrap();
        assert_eq!(
            (label.level, label.source),
            (Level::Confidential, LabelSource::Body)
        );
        assert!(
            fixture("prose.txt").label.is_none(),
            "prose is not a marking"
        );

        let utf16 = fixture("utf16le.txt");
        assert_eq!(utf16.file_type, FileType::Text);
        assert_eq!(utf16.label.as_ref().map(|l| l.level), Some(Level::Secret));
        assert_eq!(count(&utf16, DetectorKind::Bsn), 1);

        let pay = fixture("payments.txt");
        assert_eq!(
            (
                count(&pay, DetectorKind::Iban),
                count(&pay, DetectorKind::PaymentCard)
            ),
            (2, 2)
        );
        assert_eq!(pay.detections[1].evidence, ["*****1111", "*****4444"]);

        let env = fixture("secrets.env");
        assert_eq!(
            (
                count(&env, DetectorKind::CloudKey),
                count(&env, DetectorKind::ApiToken)
            ),
            (1, 2)
        );
    }

    #[test]
    fn sniffs_text_kinds() {
        assert_eq!(sniff_text(b"hello\nworld\n"), Some(FileType::Text));
        assert_eq!(sniff_text(b""), Some(FileType::Text));
        assert_eq!(sniff_text(b"  {\"a\": 1}"), Some(FileType::Json));
        assert_eq!(sniff_text(b"[1, 2]"), Some(FileType::Json));
        assert_eq!(sniff_text(b"[Section]\nkey=value\n"), Some(FileType::Text));
        assert_eq!(
            sniff_text(b"<?xml version=\"1.0\"?><a/>"),
            Some(FileType::Xml)
        );
        assert_eq!(
            sniff_text(b"<!DOCTYPE html><html></html>"),
            Some(FileType::Html)
        );
        assert_eq!(
            sniff_text(b"naam;bsn;plaats\nJan;111222333;Delft\nPiet;123456782;Ede\n"),
            Some(FileType::Csv)
        );
        assert_eq!(
            sniff_text(b"a,\"b,c\",d\n1,\"2,3\",4\n"),
            Some(FileType::Csv)
        );
        assert_eq!(
            sniff_text(b"Hello, world.\nHow are you today\n"),
            Some(FileType::Text)
        );
        assert_eq!(
            sniff_text("caf\u{e9} ".as_bytes().get(..4).unwrap()),
            Some(FileType::Text),
            "cut in a char"
        );
        assert_eq!(sniff_text(b"\xFF\xFEh\x00i\x00"), Some(FileType::Text));
        assert_eq!(sniff_text(b"\x00\x01\x02binary"), None);
        assert_eq!(sniff_text(b"\xC3\x28 invalid"), None);
    }
}
