//! PDF objects built from tokens: `n g obj ... endobj`, `trailer << ... >>`, stream dictionaries.
//!
//! The scanner needs whole values only for a few objects (the encryption dictionary, trailers,
//! stream dictionaries, the Info dictionary), but cannot know which until they end, so each
//! top-level value is built and handed over, then dropped. Values are capped in nodes and bytes.

use super::lex::Tok;

/// Nodes (names, numbers, strings, containers) kept per top-level value; past it, items are
/// dropped. Real dictionaries that matter here have tens of entries.
const MAX_NODES: usize = 20_000;
/// String and name bytes kept per top-level value.
const MAX_BYTES: usize = 1 << 20;
/// Container nesting kept; deeper containers are dropped (their depth is still tracked).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Name(Vec<u8>),
    Str(Vec<u8>),
    Ref(u32, u16),
    Array(Vec<Obj>),
    Dict(Vec<(Vec<u8>, Obj)>),
    /// An operator or unknown word inside a value (malformed input).
    Other,
}

/// A completed top-level value and what it belongs to.
#[derive(Debug)]
pub(super) enum Event {
    /// `n g obj VALUE endobj`, or `n g obj DICT stream` when `stream` is true (the stream data
    /// follows in the input).
    Object {
        num: u32,
        value: Obj,
        stream: bool,
    },
    Trailer(Obj),
    /// A value outside any object (object-stream contents, or damage).
    Bare(Obj),
}

#[derive(Debug, Default)]
pub(super) struct Parser {
    /// The last two top-level tokens, when they were integers (for `n g obj`).
    ints: [Option<i64>; 2],
    target: Target,
    /// Completed value of the current object, waiting for `endobj` or `stream`.
    value: Option<Obj>,
    frames: Vec<Frame>,
    /// Containers opened past `MAX_DEPTH`, or after the node cap, not kept.
    dropped_depth: usize,
    nodes: usize,
    bytes: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Target {
    #[default]
    None,
    Object(u32, u16),
    Trailer,
}

#[derive(Debug)]
struct Frame {
    dict: bool,
    items: Vec<Obj>,
}

// === impl Obj ===

impl Obj {
    pub(super) fn get(&self, key: &[u8]) -> Option<&Obj> {
        match self {
            Obj::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(super) fn entries(&self) -> &[(Vec<u8>, Obj)] {
        match self {
            Obj::Dict(entries) => entries,
            _ => &[],
        }
    }

    pub(super) fn name(&self) -> Option<&[u8]> {
        match self {
            Obj::Name(n) => Some(n),
            _ => None,
        }
    }

    pub(super) fn int(&self) -> Option<i64> {
        match self {
            Obj::Int(n) => Some(*n),
            Obj::Real(r) if r.fract() == 0.0 && r.abs() < 1e15 => Some(*r as i64),
            _ => None,
        }
    }

    pub(super) fn bytes(&self) -> Option<&[u8]> {
        match self {
            Obj::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn array(&self) -> &[Obj] {
        match self {
            Obj::Array(items) => items,
            _ => &[],
        }
    }

    pub(super) fn is_name(&self, name: &[u8]) -> bool {
        self.name() == Some(name)
    }
}

// === impl Parser ===

impl Parser {
    /// Takes one token; returns a value when one completes.
    pub(super) fn token(&mut self, tok: Tok<'_>) -> Option<Event> {
        if !self.frames.is_empty() || self.dropped_depth > 0 {
            return self.inner(tok);
        }
        match tok {
            Tok::Int(n) => {
                self.ints = [self.ints[1], Some(n)];
                self.set_value(Obj::Int(n));
                None
            }
            Tok::DictOpen | Tok::ArrOpen => {
                self.open(tok == Tok::DictOpen);
                None
            }
            Tok::Kw(kw) => self.keyword(kw),
            Tok::Name(n) => {
                let value = Obj::Name(n.to_vec());
                self.set_value(value);
                None
            }
            Tok::Str(s) => {
                let value = Obj::Str(s.to_vec());
                self.set_value(value);
                None
            }
            Tok::Real(r) => {
                self.ints = [None, None];
                self.set_value(Obj::Real(r));
                None
            }
            Tok::DictClose | Tok::ArrClose => None,
        }
    }

    /// Forgets a half-built value (the input it came from ended).
    pub(super) fn reset(&mut self) {
        *self = Self::default();
    }

    fn keyword(&mut self, kw: &[u8]) -> Option<Event> {
        let ints = std::mem::take(&mut self.ints);
        match kw {
            b"obj" => {
                if let [Some(num), Some(generation)] = ints {
                    self.target = Target::Object(
                        u32::try_from(num).unwrap_or(u32::MAX),
                        u16::try_from(generation).unwrap_or(u16::MAX),
                    );
                    self.value = None;
                }
                None
            }
            b"endobj" | b"stream" => {
                let Target::Object(num, _) = std::mem::take(&mut self.target) else {
                    return None;
                };
                let value = self.value.take()?;
                Some(Event::Object {
                    num,
                    value,
                    stream: kw == b"stream",
                })
            }
            b"trailer" => {
                self.target = Target::Trailer;
                None
            }
            _ => None,
        }
    }

    /// A direct value of the current object (`5 0 obj 42 endobj`): kept only if it is the first.
    fn set_value(&mut self, value: Obj) {
        if matches!(self.target, Target::Object(..)) && self.value.is_none() {
            self.value = Some(value);
        }
    }

    fn open(&mut self, dict: bool) {
        if self.frames.len() >= MAX_DEPTH || self.nodes >= MAX_NODES {
            self.dropped_depth += 1;
            return;
        }
        self.nodes += 1;
        self.frames.push(Frame {
            dict,
            items: Vec::new(),
        });
    }

    fn inner(&mut self, tok: Tok<'_>) -> Option<Event> {
        let item = match tok {
            Tok::DictOpen | Tok::ArrOpen => {
                self.open(tok == Tok::DictOpen);
                return None;
            }
            Tok::DictClose | Tok::ArrClose => return self.close(),
            Tok::Int(n) => Obj::Int(n),
            Tok::Real(r) => Obj::Real(r),
            Tok::Name(n) => Obj::Name(self.keep(n)),
            Tok::Str(s) => Obj::Str(self.keep(s)),
            Tok::Kw(b"R") => return self.make_ref(),
            Tok::Kw(b"true") => Obj::Bool(true),
            Tok::Kw(b"false") => Obj::Bool(false),
            Tok::Kw(b"null") => Obj::Null,
            Tok::Kw(_) => Obj::Other,
        };
        self.add(item);
        None
    }

    fn keep(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.bytes + bytes.len() > MAX_BYTES {
            return Vec::new();
        }
        self.bytes += bytes.len();
        bytes.to_vec()
    }

    fn add(&mut self, item: Obj) {
        if self.dropped_depth > 0 || self.nodes >= MAX_NODES {
            return;
        }
        if let Some(frame) = self.frames.last_mut() {
            self.nodes += 1;
            frame.items.push(item);
        }
    }

    /// `n g R` inside a container: the two integers before `R` become a reference.
    fn make_ref(&mut self) -> Option<Event> {
        let frame = self.frames.last_mut()?;
        if let [.., Obj::Int(num), Obj::Int(generation)] = frame.items.as_slice() {
            let r = Obj::Ref(
                u32::try_from(*num).unwrap_or(u32::MAX),
                u16::try_from(*generation).unwrap_or(u16::MAX),
            );
            frame.items.truncate(frame.items.len() - 2);
            frame.items.push(r);
        }
        None
    }

    fn close(&mut self) -> Option<Event> {
        if self.dropped_depth > 0 {
            self.dropped_depth -= 1;
            return None;
        }
        let frame = self.frames.pop()?;
        let value = if frame.dict {
            let mut entries = Vec::with_capacity(frame.items.len() / 2);
            let mut items = frame.items.into_iter();
            while let (Some(key), Some(value)) = (items.next(), items.next()) {
                if let Obj::Name(key) = key {
                    entries.push((key, value));
                }
            }
            Obj::Dict(entries)
        } else {
            Obj::Array(frame.items)
        };
        if !self.frames.is_empty() {
            if let Some(parent) = self.frames.last_mut() {
                parent.items.push(value);
            }
            return None;
        }
        self.nodes = 0;
        self.bytes = 0;
        match self.target {
            Target::Trailer => {
                self.target = Target::None;
                Some(Event::Trailer(value))
            }
            Target::Object(..) => {
                self.set_value(value);
                None
            }
            Target::None => Some(Event::Bare(value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::Lexer;
    use super::*;

    fn events(input: &[u8]) -> Vec<Event> {
        let mut lexer = Lexer::default();
        let mut parser = Parser::default();
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(tok) = lexer.next(input, &mut pos) {
            out.extend(parser.token(tok));
        }
        out
    }

    #[test]
    fn builds_objects_trailers_and_refs() {
        let got = events(
            b"7 0 obj << /Filter /Standard /CF << /StdCF << /CFM /AESV2 >> >> /O <00ff> >> endobj\n\
              8 0 obj << /Length 3 >> stream\n\
              trailer << /Encrypt 7 0 R /ID [<01><02>] >>",
        );
        let [
            Event::Object {
                num: 7,
                value,
                stream: false,
                ..
            },
            Event::Object {
                num: 8,
                stream: true,
                ..
            },
            Event::Trailer(trailer),
        ] = got.as_slice()
        else {
            panic!("unexpected events: {got:?}");
        };
        assert!(value.get(b"Filter").is_some_and(|f| f.is_name(b"Standard")));
        let cfm = value
            .get(b"CF")
            .and_then(|cf| cf.get(b"StdCF"))
            .and_then(|f| f.get(b"CFM"));
        assert!(cfm.is_some_and(|c| c.is_name(b"AESV2")));
        assert_eq!(value.get(b"O").and_then(Obj::bytes), Some(&[0u8, 0xFF][..]));
        assert_eq!(trailer.get(b"Encrypt"), Some(&Obj::Ref(7, 0)));
        assert_eq!(trailer.get(b"ID").map(|id| id.array().len()), Some(2));
    }
}
