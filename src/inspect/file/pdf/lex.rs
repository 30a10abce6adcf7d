//! PDF tokens from a byte stream that arrives in pieces.
//!
//! One lexer serves the file body, object streams and page content streams: they share the
//! syntax (names with `#xx` escapes, nested literal strings, hex strings, comments). The lexer
//! keeps its state between calls, so a token may be split across chunks at any byte.

/// Longest token kept; longer strings are cut (and flagged), never buffered without bound.
const MAX_TOKEN: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Tok<'a> {
    Int(i64),
    Real(f64),
    /// A name without its slash, `#xx` escapes decoded.
    Name(&'a [u8]),
    /// A literal or hex string, escapes decoded.
    Str(&'a [u8]),
    /// A bare word: operators, `obj`, `R`, `true`, ...
    Kw(&'a [u8]),
    DictOpen,
    DictClose,
    ArrOpen,
    ArrClose,
}

#[derive(Debug, Default)]
pub(super) struct Lexer {
    state: State,
    buf: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy)]
enum State {
    #[default]
    Ground,
    Comment,
    Regular,
    Name(NameEsc),
    Literal {
        depth: u32,
        esc: Esc,
    },
    Hex(Option<u8>),
    /// After `<`: a dictionary or a hex string.
    Lt,
    /// After `>`: the end of a dictionary.
    Gt,
}

#[derive(Debug, Clone, Copy)]
enum NameEsc {
    None,
    Hash,
    Hex(u8),
}

#[derive(Debug, Clone, Copy)]
enum Esc {
    None,
    Backslash,
    Octal(u8, u8),
    /// A backslash-CR line continuation: swallow a following LF.
    Cr,
}

// === impl Lexer ===

impl Lexer {
    /// Consumes bytes of `data` from `*pos` until a token is complete (returned) or the data runs
    /// out (`None`, state kept for the next call).
    pub(super) fn next(&mut self, data: &[u8], pos: &mut usize) -> Option<Tok<'_>> {
        while let Some(&b) = data.get(*pos) {
            match self.state {
                State::Ground => {
                    *pos += 1;
                    if let Some(tok) = self.ground(b) {
                        return Some(tok);
                    }
                }
                State::Comment => {
                    *pos += 1;
                    if b == b'\n' || b == b'\r' {
                        self.state = State::Ground;
                    }
                }
                State::Regular | State::Name(_) => {
                    if is_delimiter(b) || is_space(b) {
                        return Some(self.finish_word());
                    }
                    *pos += 1;
                    self.word_byte(b);
                }
                State::Literal { depth, esc } => {
                    *pos += 1;
                    if self.literal(b, depth, esc) {
                        self.state = State::Ground;
                        return Some(Tok::Str(&self.buf));
                    }
                }
                State::Hex(pending) => {
                    *pos += 1;
                    if self.hex(b, pending) {
                        self.state = State::Ground;
                        return Some(Tok::Str(&self.buf));
                    }
                }
                State::Lt => {
                    if b == b'<' {
                        *pos += 1;
                        self.state = State::Ground;
                        return Some(Tok::DictOpen);
                    }
                    self.state = State::Hex(None);
                }
                State::Gt => {
                    self.state = State::Ground;
                    if b == b'>' {
                        *pos += 1;
                        return Some(Tok::DictClose);
                    }
                }
            }
        }
        None
    }

    /// Ends the input: a word still being read is complete.
    pub(super) fn flush(&mut self) -> Option<Tok<'_>> {
        match self.state {
            State::Regular | State::Name(_) => Some(self.finish_word()),
            _ => None,
        }
    }

    /// Forgets any partial token (a new, unrelated stream starts).
    pub(super) fn reset(&mut self) {
        self.state = State::Ground;
        self.buf.clear();
    }

    fn ground(&mut self, b: u8) -> Option<Tok<'static>> {
        self.buf.clear();
        match b {
            b'%' => self.state = State::Comment,
            b'(' => {
                self.state = State::Literal {
                    depth: 0,
                    esc: Esc::None,
                }
            }
            b'<' => self.state = State::Lt,
            b'>' => self.state = State::Gt,
            b'[' => return Some(Tok::ArrOpen),
            b']' => return Some(Tok::ArrClose),
            b'/' => self.state = State::Name(NameEsc::None),
            b')' | b'{' | b'}' => {}
            _ if is_space(b) => {}
            _ => {
                self.state = State::Regular;
                self.buf.push(b);
            }
        }
        None
    }

    fn push(&mut self, b: u8) {
        if self.buf.len() < MAX_TOKEN {
            self.buf.push(b);
        }
    }

    fn word_byte(&mut self, b: u8) {
        let State::Name(esc) = self.state else {
            self.push(b);
            return;
        };
        self.state = State::Name(match (esc, hex_value(b)) {
            (NameEsc::None, _) if b == b'#' => NameEsc::Hash,
            (NameEsc::Hash, Some(hi)) => NameEsc::Hex(hi),
            (NameEsc::Hex(hi), Some(lo)) => {
                self.push(hi << 4 | lo);
                NameEsc::None
            }
            (NameEsc::None, _) => {
                self.push(b);
                NameEsc::None
            }
            // A `#` not followed by two hex digits is kept as written.
            (NameEsc::Hash, None) => {
                self.push(b'#');
                self.push(b);
                NameEsc::None
            }
            (NameEsc::Hex(hi), None) => {
                self.push(b'#');
                self.push(HEX_DIGITS[usize::from(hi & 0xF)]);
                self.push(b);
                NameEsc::None
            }
        });
    }

    fn finish_word(&mut self) -> Tok<'_> {
        let was_name = matches!(self.state, State::Name(_));
        self.state = State::Ground;
        if was_name {
            return Tok::Name(&self.buf);
        }
        let text = std::str::from_utf8(&self.buf).unwrap_or("");
        if let Ok(n) = text.parse::<i64>() {
            return Tok::Int(n);
        }
        if text.bytes().any(|c| c.is_ascii_digit())
            && text
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'.' | b'-' | b'+'))
        {
            return Tok::Real(text.parse::<f64>().unwrap_or(0.0));
        }
        Tok::Kw(&self.buf)
    }

    /// One byte of a literal string; true when the string ends.
    fn literal(&mut self, b: u8, depth: u32, esc: Esc) -> bool {
        let mut depth = depth;
        let esc = match esc {
            Esc::Backslash => match b {
                b'0'..=b'7' => Esc::Octal(b - b'0', 1),
                b'\r' => Esc::Cr,
                b'\n' => Esc::None,
                _ => {
                    self.push(match b {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'f' => 0x0C,
                        other => other,
                    });
                    Esc::None
                }
            },
            Esc::Octal(v, n) if n < 3 && (b'0'..=b'7').contains(&b) => {
                Esc::Octal(v.wrapping_mul(8).wrapping_add(b - b'0'), n + 1)
            }
            Esc::Octal(v, _) => {
                self.push(v);
                return self.literal(b, depth, Esc::None);
            }
            Esc::Cr if b == b'\n' => Esc::None,
            Esc::None | Esc::Cr => match b {
                b'\\' => Esc::Backslash,
                b'(' => {
                    depth += 1;
                    self.push(b);
                    Esc::None
                }
                b')' if depth == 0 => return true,
                b')' => {
                    depth -= 1;
                    self.push(b);
                    Esc::None
                }
                _ => {
                    self.push(b);
                    Esc::None
                }
            },
        };
        self.state = State::Literal { depth, esc };
        false
    }

    /// One byte of a hex string; true when it ends.
    fn hex(&mut self, b: u8, pending: Option<u8>) -> bool {
        if b == b'>' {
            if let Some(hi) = pending {
                self.push(hi << 4);
            }
            return true;
        }
        let Some(v) = hex_value(b) else {
            return false; // whitespace (or junk) inside a hex string is skipped
        };
        self.state = State::Hex(match pending {
            None => Some(v),
            Some(hi) => {
                self.push(hi << 4 | v);
                None
            }
        });
        false
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0C' | b'\0')
}

pub(super) fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(tok: Tok<'_>) -> String {
        match tok {
            Tok::Int(n) => format!("i{n}"),
            Tok::Real(r) => format!("r{r}"),
            Tok::Name(n) => format!("/{}", String::from_utf8_lossy(n)),
            Tok::Str(s) => format!("({})", String::from_utf8_lossy(s)),
            Tok::Kw(k) => String::from_utf8_lossy(k).into_owned(),
            Tok::DictOpen => "<<".into(),
            Tok::DictClose => ">>".into(),
            Tok::ArrOpen => "[".into(),
            Tok::ArrClose => "]".into(),
        }
    }

    fn tokens(input: &[u8], split: usize) -> Vec<String> {
        let mut lexer = Lexer::default();
        let mut out = Vec::new();
        for chunk in input.chunks(split.max(1)) {
            let mut pos = 0;
            while let Some(tok) = lexer.next(chunk, &mut pos) {
                out.push(owned(tok));
            }
        }
        if let Some(tok) = lexer.flush() {
            out.push(owned(tok));
        }
        out
    }

    #[test]
    fn tokenizes_at_every_split() {
        let input = b"%PDF-1.7\n1 0 obj<</Fil#74er/Standard/O<41 42 4>/U(a\\(b\\)\\101\\\n(c))\
            /P -4 /V 5.0/A[1 0 R]>>endobj";
        let want = [
            "i1",
            "i0",
            "obj",
            "<<",
            "/Filter",
            "/Standard",
            "/O",
            "(AB@)",
            "/U",
            "(a(b)A(c))",
            "/P",
            "i-4",
            "/V",
            "r5",
            "/A",
            "[",
            "i1",
            "i0",
            "R",
            "]",
            ">>",
            "endobj",
        ];
        for split in [1, 2, 3, 7, 4096] {
            assert_eq!(tokens(input, split), want, "split {split}");
        }
    }
}
