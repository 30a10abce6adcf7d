//! Text from page content streams: the string operands of the text-showing operators.
//!
//! Best effort by design: strings are taken as single-byte text (WinAnsi and the standard
//! encodings put letters where Latin-1 has them), so simple-font PDFs read well, while fonts
//! with custom encodings or CID fonts (which need a CMap) give noise that matches nothing.

use super::lex::{Lexer, Tok, is_delimiter, is_space};
use crate::inspect::sink::{ContentSink, TextOrigin};

/// Text kept per line before it is handed to the sink anyway.
const LINE_CAP: usize = 4096;
/// String operand bytes kept between two operators.
const OPERAND_CAP: usize = 16 << 10;
/// A TJ adjustment at least this large (thousandths of an em, negative = move right) is a gap
/// between words.
const WORD_GAP: f64 = -180.0;

#[derive(Default)]
pub(super) struct ContentText {
    lexer: Lexer,
    text: TextState,
    /// Inside inline image data (`ID ... EI`): the last three bytes seen.
    image: Option<[u8; 3]>,
}

#[derive(Default)]
struct TextState {
    operands: Vec<u8>,
    /// The last two numeric operands (for `Td`).
    nums: [f64; 2],
    in_array: bool,
    line: Vec<u8>,
}

// === impl ContentText ===

impl ContentText {
    /// Starts a new content stream.
    pub(super) fn start(&mut self) {
        self.lexer.reset();
        self.text.operands.clear();
        self.text.in_array = false;
        self.image = None;
    }

    pub(super) fn feed(&mut self, data: &[u8], sink: &mut dyn ContentSink) {
        let mut pos = 0;
        while pos < data.len() {
            if let Some(window) = &mut self.image {
                pos += skip_image(window, data.get(pos..).unwrap_or_default());
                if pos < data.len() {
                    self.image = None;
                }
                continue;
            }
            let Some(tok) = self.lexer.next(data, &mut pos) else {
                break;
            };
            if self.text.token(tok, sink) {
                self.image = Some([0; 3]);
            }
        }
    }

    /// Ends the current content stream.
    pub(super) fn end(&mut self, sink: &mut dyn ContentSink) {
        if let Some(tok) = self.lexer.flush() {
            self.text.token(tok, sink);
        }
        self.text.newline(sink);
        sink.end_text();
        self.start();
    }
}

/// Advances through inline image data; returns the bytes consumed. Stops (without consuming it)
/// at the byte after `<space>EI` when that byte ends the operator.
fn skip_image(window: &mut [u8; 3], data: &[u8]) -> usize {
    for (i, &b) in data.iter().enumerate() {
        if is_space(window[0])
            && window[1] == b'E'
            && window[2] == b'I'
            && (is_space(b) || is_delimiter(b))
        {
            return i;
        }
        *window = [window[1], window[2], b];
    }
    data.len()
}

// === impl TextState ===

impl TextState {
    /// Takes one token; true when inline image data follows.
    fn token(&mut self, tok: Tok<'_>, sink: &mut dyn ContentSink) -> bool {
        match tok {
            Tok::Str(s) => {
                let room = OPERAND_CAP.saturating_sub(self.operands.len());
                self.operands
                    .extend_from_slice(s.get(..room.min(s.len())).unwrap_or_default());
            }
            Tok::Int(n) => self.number(n as f64),
            Tok::Real(r) => self.number(r),
            Tok::ArrOpen => self.in_array = true,
            Tok::ArrClose => self.in_array = false,
            Tok::Kw(op) => return self.operator(op, sink),
            Tok::Name(_) | Tok::DictOpen | Tok::DictClose => {}
        }
        false
    }

    fn number(&mut self, n: f64) {
        if self.in_array && n <= WORD_GAP {
            self.operands.push(b' ');
        }
        self.nums = [self.nums[1], n];
    }

    fn operator(&mut self, op: &[u8], sink: &mut dyn ContentSink) -> bool {
        match op {
            b"Tj" | b"TJ" => self.show(sink),
            b"'" | b"\"" => {
                self.newline(sink);
                self.show(sink);
            }
            b"Td" | b"TD" if self.nums[1] == 0.0 => self.space(),
            b"Td" | b"TD" | b"T*" | b"Tm" | b"BT" | b"ET" => self.newline(sink),
            b"ID" => {
                self.operands.clear();
                return true;
            }
            _ => {}
        }
        self.operands.clear();
        false
    }

    fn show(&mut self, sink: &mut dyn ContentSink) {
        for &b in &self.operands {
            push_latin1(&mut self.line, b);
        }
        self.operands.clear();
        if self.line.len() >= LINE_CAP {
            sink.text(&self.line, TextOrigin::Body);
            self.line.clear();
        }
    }

    fn space(&mut self) {
        if self.line.last().is_some_and(|&b| b != b' ') {
            self.line.push(b' ');
        }
    }

    fn newline(&mut self, sink: &mut dyn ContentSink) {
        if self.line.is_empty() {
            return;
        }
        self.line.push(b'\n');
        sink.text(&self.line, TextOrigin::Body);
        self.line.clear();
    }
}

/// Appends a single-byte character as UTF-8.
pub(super) fn push_latin1(out: &mut Vec<u8>, b: u8) {
    if b < 0x80 {
        out.push(b);
    } else {
        let mut utf8 = [0u8; 2];
        out.extend_from_slice(char::from(b).encode_utf8(&mut utf8).as_bytes());
    }
}
