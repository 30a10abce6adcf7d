//! Streaming markup → events, for the XML parts of office packages (OOXML, ODF).
//!
//! Office text lives in XML parts that can be many megabytes; the format scanners need only a
//! few elements' text and a few attributes. This tokenizer is a byte state machine: it takes
//! chunks split anywhere (inside a tag, an entity or a multi-byte character), keeps at most one
//! tag (capped) and one entity buffered, decodes the predefined and numeric entities, and hands
//! start tags, end tags and text runs to an [`XmlHandler`]. Text is passed as slices of the
//! input: no copy in the common case. It does not validate: malformed markup yields fewer or
//! odd events, never a panic.

use std::borrow::Cow;

use memchr::{memchr, memchr2};

use crate::inspect::file::ScanCx;

/// Longest tag kept whole; the attributes of a longer tag are cut off (its name is kept).
const MAX_TAG: usize = 64 << 10;

/// Receives the events of one XML part. Names are local names (prefix stripped): OOXML and ODF
/// producers agree on namespaces, not on prefixes.
pub(crate) trait XmlHandler {
    fn start(&mut self, name: &[u8], tag: &Tag<'_>, cx: &mut ScanCx<'_>);
    fn end(&mut self, name: &[u8], cx: &mut ScanCx<'_>);
    /// Character data (entities decoded, CDATA included), in pieces of any size.
    fn text(&mut self, text: &[u8], cx: &mut ScanCx<'_>);
}

/// The raw inside of a start tag, for attribute lookup.
pub(crate) struct Tag<'a> {
    raw: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first markup: a BOM and whitespace may come first.
    Prolog,
    Text,
    Entity,
    /// Just after `<`.
    Open,
    Tag(Option<u8>),
    /// `<!` until the kind is known.
    Bang,
    Comment(u8),
    CData(u8),
    Pi(bool),
    Decl(u32),
    /// Not XML (e.g. an encrypted part): ignore the rest.
    NotXml,
}

pub(crate) struct XmlTokenizer {
    state: State,
    tag: Vec<u8>,
    tag_overflow: bool,
    entity: [u8; 12],
    entity_len: usize,
}

// === impl XmlTokenizer ===

impl XmlTokenizer {
    pub(crate) fn new() -> Self {
        Self {
            state: State::Prolog,
            tag: Vec::new(),
            tag_overflow: false,
            entity: [0; 12],
            entity_len: 0,
        }
    }

    /// True when the part did not start like XML (ciphertext, binary): nothing was emitted.
    #[cfg(test)]
    pub(crate) fn not_xml(&self) -> bool {
        self.state == State::NotXml
    }

    pub(crate) fn feed(&mut self, mut input: &[u8], h: &mut dyn XmlHandler, cx: &mut ScanCx<'_>) {
        while !input.is_empty() {
            let used = match self.state {
                State::Prolog => self.prolog(input),
                State::Text => self.text(input, h, cx),
                State::Entity => self.entity(input, h, cx),
                State::Open => self.open(input),
                State::Tag(quote) => self.tag(input, quote, h, cx),
                State::Bang => self.bang(input),
                State::Comment(dashes) => self.comment(input, dashes),
                State::CData(brackets) => self.cdata(input, brackets, h, cx),
                State::Pi(q) => self.pi(input, q),
                State::Decl(depth) => self.decl(input, depth),
                State::NotXml => input.len(),
            };
            // Every state consumes a byte or moves to a state that will.
            input = input.get(used..).unwrap_or_default();
        }
    }

    fn prolog(&mut self, input: &[u8]) -> usize {
        match input.first() {
            Some(b'<') => {
                self.state = State::Open;
                1
            }
            Some(0xEF | 0xBB | 0xBF | b' ' | b'\t' | b'\r' | b'\n') => 1,
            _ => {
                self.state = State::NotXml;
                input.len()
            }
        }
    }

    fn text(&mut self, input: &[u8], h: &mut dyn XmlHandler, cx: &mut ScanCx<'_>) -> usize {
        match memchr2(b'<', b'&', input) {
            None => {
                h.text(input, cx);
                input.len()
            }
            Some(i) => {
                if i > 0 {
                    h.text(input.get(..i).unwrap_or_default(), cx);
                }
                if input.get(i) == Some(&b'<') {
                    self.state = State::Open;
                } else {
                    self.state = State::Entity;
                    self.entity_len = 0;
                }
                i + 1
            }
        }
    }

    fn entity(&mut self, input: &[u8], h: &mut dyn XmlHandler, cx: &mut ScanCx<'_>) -> usize {
        for (i, &b) in input.iter().enumerate() {
            if b == b';' {
                let mut buf = [0u8; 4];
                match decode_entity(
                    self.entity.get(..self.entity_len).unwrap_or_default(),
                    &mut buf,
                ) {
                    Some(s) => h.text(s, cx),
                    None => self.flush_entity(h, cx, b";"),
                }
                self.state = State::Text;
                return i + 1;
            }
            if self.entity_len == self.entity.len() || !(b.is_ascii_alphanumeric() || b == b'#') {
                // Not an entity: the `&` and what followed are text.
                self.flush_entity(h, cx, b"");
                self.state = State::Text;
                return i;
            }
            if let Some(slot) = self.entity.get_mut(self.entity_len) {
                *slot = b;
            }
            self.entity_len += 1;
        }
        input.len()
    }

    fn flush_entity(&mut self, h: &mut dyn XmlHandler, cx: &mut ScanCx<'_>, tail: &[u8]) {
        h.text(b"&", cx);
        h.text(self.entity.get(..self.entity_len).unwrap_or_default(), cx);
        if !tail.is_empty() {
            h.text(tail, cx);
        }
    }

    fn open(&mut self, input: &[u8]) -> usize {
        self.tag.clear();
        self.tag_overflow = false;
        self.state = match input.first() {
            Some(b'?') => State::Pi(false),
            Some(b'!') => {
                self.tag.push(b'!');
                State::Bang
            }
            _ => {
                // The byte belongs to the tag: leave it for `tag`.
                self.state = State::Tag(None);
                return 0;
            }
        };
        1
    }

    fn tag(
        &mut self,
        input: &[u8],
        mut quote: Option<u8>,
        h: &mut dyn XmlHandler,
        cx: &mut ScanCx<'_>,
    ) -> usize {
        for (i, &b) in input.iter().enumerate() {
            match (quote, b) {
                (None, b'>') => {
                    self.push_tag(input.get(..i).unwrap_or_default());
                    self.emit_tag(h, cx);
                    self.state = State::Text;
                    return i + 1;
                }
                (None, b'"' | b'\'') => quote = Some(b),
                (Some(q), _) if q == b => quote = None,
                _ => {}
            }
        }
        self.push_tag(input);
        self.state = State::Tag(quote);
        input.len()
    }

    fn push_tag(&mut self, bytes: &[u8]) {
        let room = MAX_TAG.saturating_sub(self.tag.len());
        if bytes.len() > room {
            self.tag_overflow = true;
        }
        self.tag
            .extend_from_slice(bytes.get(..bytes.len().min(room)).unwrap_or_default());
    }

    fn emit_tag(&mut self, h: &mut dyn XmlHandler, cx: &mut ScanCx<'_>) {
        let raw = self.tag.as_slice();
        if let Some(rest) = raw.strip_prefix(b"/") {
            h.end(local_name(tag_name(rest)), cx);
            return;
        }
        let empty = raw.last() == Some(&b'/') && !self.tag_overflow;
        let name = local_name(tag_name(raw));
        let body = if empty {
            raw.get(..raw.len() - 1).unwrap_or_default()
        } else {
            raw
        };
        h.start(name, &Tag { raw: body }, cx);
        if empty {
            h.end(name, cx);
        }
    }

    fn bang(&mut self, input: &[u8]) -> usize {
        let Some(&b) = input.first() else { return 0 };
        self.tag.push(b);
        let seen = self.tag.as_slice();
        self.state = if seen == b"!--" {
            State::Comment(0)
        } else if seen == b"![CDATA[" {
            State::CData(0)
        } else if b"!--".starts_with(seen) || b"![CDATA[".starts_with(seen) {
            State::Bang
        } else if b == b'>' {
            State::Text
        } else {
            State::Decl(u32::from(b == b'['))
        };
        1
    }

    fn comment(&mut self, input: &[u8], mut dashes: u8) -> usize {
        for (i, &b) in input.iter().enumerate() {
            match b {
                b'-' => dashes = dashes.saturating_add(1),
                b'>' if dashes >= 2 => {
                    self.state = State::Text;
                    return i + 1;
                }
                _ => dashes = 0,
            }
        }
        self.state = State::Comment(dashes);
        input.len()
    }

    fn cdata(
        &mut self,
        input: &[u8],
        mut brackets: u8,
        h: &mut dyn XmlHandler,
        cx: &mut ScanCx<'_>,
    ) -> usize {
        // `start` is where the text not yet handed on begins; `]`s are held back until it is
        // clear whether they close the section.
        let mut start = 0;
        for (i, &b) in input.iter().enumerate() {
            match b {
                b']' => {
                    if brackets == 0 {
                        h.text(input.get(start..i).unwrap_or_default(), cx);
                    }
                    brackets = brackets.saturating_add(1);
                    start = i + 1;
                }
                b'>' if brackets >= 2 => {
                    for _ in 2..brackets {
                        h.text(b"]", cx);
                    }
                    self.state = State::Text;
                    return i + 1;
                }
                _ if brackets > 0 => {
                    for _ in 0..brackets {
                        h.text(b"]", cx);
                    }
                    brackets = 0;
                    start = i;
                }
                _ => {}
            }
        }
        if brackets == 0 {
            h.text(input.get(start..).unwrap_or_default(), cx);
        }
        self.state = State::CData(brackets);
        input.len()
    }

    fn pi(&mut self, input: &[u8], mut q: bool) -> usize {
        for (i, &b) in input.iter().enumerate() {
            if q && b == b'>' {
                self.state = State::Text;
                return i + 1;
            }
            q = b == b'?';
        }
        self.state = State::Pi(q);
        input.len()
    }

    fn decl(&mut self, input: &[u8], mut depth: u32) -> usize {
        for (i, &b) in input.iter().enumerate() {
            match b {
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b'>' if depth == 0 => {
                    self.state = State::Text;
                    return i + 1;
                }
                _ => {}
            }
        }
        self.state = State::Decl(depth);
        input.len()
    }
}

impl Default for XmlTokenizer {
    fn default() -> Self {
        Self::new()
    }
}

// === impl Tag ===

impl Tag<'_> {
    /// The value of the attribute with this local name, entities decoded.
    pub(crate) fn attr(&self, want: &[u8]) -> Option<Cow<'_, [u8]>> {
        let mut rest = self.raw.get(tag_name(self.raw).len()..)?;
        loop {
            rest = trim_start(rest);
            let eq = memchr(b'=', rest)?;
            let name = trim_end(rest.get(..eq)?);
            rest = trim_start(rest.get(eq + 1..)?);
            let quote = *rest.first()?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let close = memchr(quote, rest.get(1..)?)?;
            let value = rest.get(1..=close)?;
            if local_name(name) == want {
                return Some(decode_text(value));
            }
            rest = rest.get(close + 2..)?;
        }
    }
}

// === helpers ===

fn tag_name(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'/')
        .unwrap_or(raw.len());
    raw.get(..end).unwrap_or_default()
}

fn local_name(name: &[u8]) -> &[u8] {
    match memchr::memrchr(b':', name) {
        Some(i) => name.get(i + 1..).unwrap_or_default(),
        None => name,
    }
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    s.get(n..).unwrap_or_default()
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    s.get(..s.len() - n).unwrap_or_default()
}

/// Decodes entities in an attribute value.
pub(crate) fn decode_text(value: &[u8]) -> Cow<'_, [u8]> {
    if memchr(b'&', value).is_none() {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = memchr(b'&', rest) {
        out.extend_from_slice(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 1..).unwrap_or_default();
        let semi = memchr(b';', after).filter(|&j| j <= 10);
        let mut buf = [0u8; 4];
        match semi.and_then(|j| decode_entity(after.get(..j)?, &mut buf).map(|s| (j, s))) {
            Some((j, s)) => {
                out.extend_from_slice(s);
                rest = after.get(j + 1..).unwrap_or_default();
            }
            None => {
                out.push(b'&');
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

/// `name` is what stood between `&` and `;`.
fn decode_entity<'b>(name: &[u8], buf: &'b mut [u8; 4]) -> Option<&'b [u8]> {
    let c = match name {
        b"amp" => '&',
        b"lt" => '<',
        b"gt" => '>',
        b"quot" => '"',
        b"apos" => '\'',
        _ => {
            let num = name.strip_prefix(b"#")?;
            let (digits, radix) = match num.strip_prefix(b"x").or_else(|| num.strip_prefix(b"X")) {
                Some(hex) => (hex, 16),
                None => (num, 10),
            };
            let s = std::str::from_utf8(digits).ok()?;
            char::from_u32(u32::from_str_radix(s, radix).ok()?)?
        }
    };
    Some(c.encode_utf8(buf).as_bytes())
}

#[cfg(test)]
#[path = "xml_tests.rs"]
mod tests;
