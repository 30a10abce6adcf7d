//! Text of WordprocessingML, DrawingML (slides) and SpreadsheetML parts.
//!
//! Word splits a word over several `<w:t>` runs (spell check, revisions): runs are passed on
//! back to back so the sink joins them; a paragraph end is a newline, tabs and breaks are
//! spaces. Tracked deletions (`w:delText`) are text too: they are still in the file. The
//! fallback copy of a text box (`mc:Fallback`) is skipped so it is not counted twice. A VML
//! watermark's text is an attribute (`<v:textpath string="…">`) and goes out as header/footer
//! text. In slides, footer/header placeholders and shapes named `MSIPCMContentMarking` (the
//! visual marking a sensitivity label adds) are header/footer text too.
//!
//! Spreadsheets: shared and inline strings are text; a numeric cell of exactly 8 digits is
//! emitted left-padded to 9 (a BSN typed into Excel as a number loses its leading zero), other
//! numbers as written. Page headers/footers (`<oddHeader>&C…`) are header/footer text with the
//! `&L/&C/&R`, font, size and field codes stripped.

use crate::inspect::file::ScanCx;
use crate::inspect::file::xml::{Tag, XmlHandler};
use crate::inspect::sink::TextOrigin;

/// Longest numeric cell value kept for the padding rule.
const MAX_NUMBER: usize = 32;
/// Excel caps a header/footer string at 255 characters; keep a little more.
const MAX_HEADER_FOOTER: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    Word,
    Drawing,
    SharedStrings,
    Sheet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Number,
    Text,
    Other,
}

pub(super) struct TextPart {
    flavor: Flavor,
    origin: TextOrigin,
    /// Depth inside text-bearing elements.
    capture: u32,
    /// Depth inside skipped subtrees.
    skip: u32,
    in_run: u32,
    /// Origin override for the current slide shape.
    shape: Option<TextOrigin>,
    cell: Cell,
    number: Option<Vec<u8>>,
    header_footer: Option<Vec<u8>>,
}

// === impl TextPart ===

impl TextPart {
    pub(super) fn new(flavor: Flavor, origin: TextOrigin) -> Self {
        Self {
            flavor,
            origin,
            capture: 0,
            skip: 0,
            in_run: 0,
            shape: None,
            cell: Cell::Other,
            number: None,
            header_footer: None,
        }
    }

    fn origin(&self) -> TextOrigin {
        self.shape.unwrap_or(self.origin)
    }

    fn emit(&self, text: &[u8], cx: &mut ScanCx<'_>) {
        if self.skip == 0 {
            cx.sink.text(text, self.origin());
        }
    }

    pub(super) fn finish(&mut self, cx: &mut ScanCx<'_>) {
        cx.sink.end_text();
    }

    fn start_word(&mut self, name: &[u8], tag: &Tag<'_>, cx: &mut ScanCx<'_>) {
        match name {
            b"t" | b"delText" => self.capture += 1,
            b"r" => self.in_run += 1,
            b"tab" | b"br" | b"cr" if self.in_run > 0 => self.emit(b" ", cx),
            b"textpath" => {
                if let Some(s) = tag.attr(b"string") {
                    cx.sink.end_text();
                    cx.sink.text(&s, TextOrigin::HeaderFooter);
                    cx.sink.end_text();
                }
            }
            _ => {}
        }
    }

    fn start_drawing(&mut self, name: &[u8], tag: &Tag<'_>, cx: &mut ScanCx<'_>) {
        match name {
            b"t" => self.capture += 1,
            b"br" => self.emit(b" ", cx),
            b"sp" => self.shape = None,
            b"cNvPr"
                if tag
                    .attr(b"name")
                    .is_some_and(|n| n.starts_with(b"MSIPCMContentMarking")) =>
            {
                self.shape = Some(TextOrigin::HeaderFooter);
            }
            b"ph"
                if tag
                    .attr(b"type")
                    .is_some_and(|t| matches!(t.as_ref(), b"ftr" | b"hdr")) =>
            {
                self.shape = Some(TextOrigin::HeaderFooter);
            }
            _ => {}
        }
    }

    fn start_sheet(&mut self, name: &[u8], tag: &Tag<'_>) {
        match name {
            b"c" => {
                self.cell = match tag.attr(b"t").as_deref() {
                    None | Some(b"n") => Cell::Number,
                    Some(b"str" | b"inlineStr") => Cell::Text,
                    _ => Cell::Other,
                };
            }
            b"v" => match self.cell {
                Cell::Number => self.number = Some(Vec::new()),
                Cell::Text => self.capture += 1,
                Cell::Other => {}
            },
            b"t" => self.capture += 1,
            b"oddHeader" | b"oddFooter" | b"evenHeader" | b"evenFooter" | b"firstHeader"
            | b"firstFooter" => self.header_footer = Some(Vec::new()),
            _ => {}
        }
    }

    fn end_sheet(&mut self, name: &[u8], cx: &mut ScanCx<'_>) {
        match name {
            b"v" => {
                if let Some(number) = self.number.take() {
                    emit_number(&number, cx);
                } else if self.cell == Cell::Text {
                    self.capture = self.capture.saturating_sub(1);
                }
            }
            b"t" => self.capture = self.capture.saturating_sub(1),
            b"c" => {
                self.emit(b" ", cx);
                self.cell = Cell::Other;
            }
            b"row" => self.emit(b"\n", cx),
            _ => {
                if let Some(hf) = self.header_footer.take() {
                    cx.sink.end_text();
                    cx.sink.text(&strip_codes(&hf), TextOrigin::HeaderFooter);
                    cx.sink.end_text();
                }
            }
        }
    }
}

impl XmlHandler for TextPart {
    fn start(&mut self, name: &[u8], tag: &Tag<'_>, cx: &mut ScanCx<'_>) {
        if matches!(name, b"Fallback" | b"rPh" | b"instrText") {
            self.skip += 1;
            return;
        }
        match self.flavor {
            Flavor::Word => self.start_word(name, tag, cx),
            Flavor::Drawing => self.start_drawing(name, tag, cx),
            Flavor::SharedStrings => {
                if name == b"t" {
                    self.capture += 1;
                }
            }
            Flavor::Sheet => self.start_sheet(name, tag),
        }
    }

    fn end(&mut self, name: &[u8], cx: &mut ScanCx<'_>) {
        match name {
            b"Fallback" | b"rPh" | b"instrText" => {
                self.skip = self.skip.saturating_sub(1);
                return;
            }
            b"r" => self.in_run = self.in_run.saturating_sub(1),
            _ => {}
        }
        if self.flavor == Flavor::Sheet {
            return self.end_sheet(name, cx);
        }
        match name {
            b"t" | b"delText" => self.capture = self.capture.saturating_sub(1),
            b"p" | b"si" | b"comment" => self.emit(b"\n", cx),
            b"sp" => {
                cx.sink.end_text();
                self.shape = None;
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &[u8], cx: &mut ScanCx<'_>) {
        if let Some(hf) = &mut self.header_footer {
            let room = MAX_HEADER_FOOTER.saturating_sub(hf.len()).min(text.len());
            hf.extend_from_slice(text.get(..room).unwrap_or_default());
        } else if let Some(number) = &mut self.number {
            let room = MAX_NUMBER.saturating_sub(number.len()).min(text.len());
            number.extend_from_slice(text.get(..room).unwrap_or_default());
        } else if self.capture > 0 {
            self.emit(text, cx);
        }
    }
}

fn emit_number(number: &[u8], cx: &mut ScanCx<'_>) {
    let number = number.trim_ascii();
    if number.len() == 8 && number.iter().all(u8::is_ascii_digit) {
        cx.sink.text(b"0", TextOrigin::Body);
    }
    cx.sink.text(number, TextOrigin::Body);
}

/// Removes the codes of an Excel header/footer string: `&L &C &R` (sections, kept as line
/// breaks), `&"font"`, `&12` (size), `&K` + colour, fields (`&P`, `&D`, ...); `&&` is `&`.
fn strip_codes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        i += 1;
        if b != b'&' {
            out.push(b);
            continue;
        }
        match s.get(i) {
            Some(b'&') => {
                out.push(b'&');
                i += 1;
            }
            Some(b'L' | b'C' | b'R') => {
                if !out.is_empty() {
                    out.push(b'\n');
                }
                i += 1;
            }
            Some(b'"') => {
                i += 1;
                while s.get(i).is_some_and(|&c| c != b'"') {
                    i += 1;
                }
                i += 1;
            }
            Some(c) if c.is_ascii_digit() => {
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            Some(b'K') => i += 7,
            Some(_) => i += 1,
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strip_codes;

    #[test]
    fn header_codes_are_stripped() {
        assert_eq!(strip_codes(b"&CVertrouwelijk"), b"Vertrouwelijk");
        assert_eq!(
            strip_codes(b"&L&\"Arial,Bold\"&12Pagina &P&RKPN &&Co"),
            b"Pagina \nKPN &Co"
        );
        assert_eq!(strip_codes(b"&KFF0000Geheim"), b"Geheim");
    }
}
