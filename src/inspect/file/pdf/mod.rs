//! PDF: the encryption verdict, and text and labels from unencrypted files, in one pass.
//!
//! A PDF is read front to back with a tokenizer that builds each object's value, skips stream
//! data (decoding only what carries text) and keeps little: the dictionaries that look like an
//! encryption dictionary (capped), and the last trailer. The trailer names the encryption
//! dictionary and sits at the end, so the verdict waits for the end of the file; with
//! incremental updates the last trailer governs. The encryption dictionary itself may not live
//! in an object stream, so it is always seen as a plain object.

mod content;
mod crypt;
mod decode;
mod lex;
mod meta;
mod obj;
mod stream;

use content::ContentText;
use decode::{Chain, Decoder, Stop};
use lex::Lexer;
use obj::{Event, Obj, Parser};
use stream::EndFinder;

use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, FileType, LimitHit, LimitKind};

/// Encryption-dictionary candidates kept (one per object number; an update may rewrite it).
const MAX_CANDIDATES: usize = 8;
/// XMP packet bytes kept for parsing; packets are a few KiB.
const XMP_CAP: usize = 1 << 20;

/// Scans one PDF file.
pub(super) struct PdfScanner {
    lexer: Lexer,
    parser: Parser,
    mode: Mode,
    end: EndFinder,
    route: Route,
    decoder: Decoder,
    content: ContentText,
    objstm: (Lexer, Parser),
    xmp: Vec<u8>,
    /// The last trailer (or cross-reference stream dictionary) seen.
    trailer: Option<Obj>,
    /// A trailer before the last one named an encryption dictionary.
    earlier_encrypt: bool,
    candidates: Vec<(u32, Obj)>,
    limits: Vec<LimitHit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tokens,
    /// After the `stream` keyword: the end-of-line that precedes the data (`cr` = a CR was
    /// seen, an LF may follow).
    StreamStart {
        cr: bool,
    },
    StreamData,
}

/// Where the data of the current stream goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Skip,
    Content,
    ObjStm,
    Xmp,
}

// === impl PdfScanner ===

impl PdfScanner {
    pub(super) fn new() -> Self {
        Self {
            lexer: Lexer::default(),
            parser: Parser::default(),
            mode: Mode::Tokens,
            end: EndFinder::default(),
            route: Route::Skip,
            decoder: Decoder::new(),
            content: ContentText::default(),
            objstm: (Lexer::default(), Parser::default()),
            xmp: Vec::new(),
            trailer: None,
            earlier_encrypt: false,
            candidates: Vec::new(),
            limits: Vec::new(),
        }
    }

    fn on_event(&mut self, event: Event, cx: &mut ScanCx<'_>) {
        match event {
            Event::Object {
                value,
                stream: true,
                ..
            } => self.start_stream(value),
            Event::Object { num, value, .. } => {
                if is_encryption_dict(&value) {
                    self.candidates.retain(|(n, _)| *n != num);
                    if self.candidates.len() < MAX_CANDIDATES {
                        self.candidates.push((num, value));
                    }
                } else {
                    let clear = self.candidates.is_empty();
                    meta::info_dict(&value, clear, &cx.config.labels, cx.sink);
                }
            }
            Event::Trailer(value) => self.on_trailer(value),
            Event::Bare(value) => {
                let clear = self.candidates.is_empty();
                meta::info_dict(&value, clear, &cx.config.labels, cx.sink);
            }
        }
    }

    fn on_trailer(&mut self, trailer: Obj) {
        if let Some(previous) = self.trailer.replace(trailer) {
            self.earlier_encrypt |= previous.get(b"Encrypt").is_some();
        }
    }

    fn start_stream(&mut self, dict: Obj) {
        self.mode = Mode::StreamStart { cr: false };
        self.route = route_for(&dict);
        let chain = Chain::of(&dict);
        if dict.get(b"Type").is_some_and(|t| t.is_name(b"XRef")) {
            self.on_trailer(dict);
        }
        match (self.route, chain) {
            (Route::Skip, _) => {}
            (_, None) => self.route = Route::Skip,
            (route, Some(chain)) => {
                self.decoder.start(chain);
                match route {
                    Route::Content => self.content.start(),
                    Route::ObjStm => {
                        self.objstm.0.reset();
                        self.objstm.1.reset();
                    }
                    _ => self.xmp.clear(),
                }
            }
        }
    }

    /// Stream data up to `endstream`; returns the bytes consumed.
    fn stream_data(&mut self, data: &[u8], cx: &mut ScanCx<'_>) -> usize {
        let Self {
            end,
            route,
            decoder,
            content,
            objstm,
            xmp,
            limits,
            candidates,
            ..
        } = self;
        let max_ratio = cx.config.limits.max_ratio;
        let consumed = end.scan(data, &mut |payload| {
            if *route == Route::Skip || payload.is_empty() {
                return;
            }
            let result = decoder.feed(
                payload,
                cx.expand_budget,
                max_ratio,
                &mut |out| match route {
                    Route::Content => content.feed(out, cx.sink),
                    Route::Xmp => {
                        let room = XMP_CAP.saturating_sub(xmp.len());
                        xmp.extend_from_slice(out.get(..room.min(out.len())).unwrap_or_default());
                    }
                    Route::ObjStm => {
                        let (lexer, parser) = &mut *objstm;
                        let mut pos = 0;
                        while let Some(tok) = lexer.next(out, &mut pos) {
                            if let Some(Event::Bare(value)) = parser.token(tok) {
                                let clear = candidates.is_empty();
                                meta::info_dict(&value, clear, &cx.config.labels, cx.sink);
                            }
                        }
                    }
                    Route::Skip => {}
                },
            );
            if let Err(stop) = result {
                record_stop(limits, stop);
                *route = Route::Skip;
            }
        });
        match consumed {
            Some(n) => {
                self.end_stream(cx);
                n
            }
            None => data.len(),
        }
    }

    fn end_stream(&mut self, cx: &mut ScanCx<'_>) {
        match self.route {
            Route::Content => self.content.end(cx.sink),
            Route::Xmp => meta::xmp(&self.xmp, &cx.config.labels, cx.sink),
            Route::ObjStm | Route::Skip => {}
        }
        self.route = Route::Skip;
        self.mode = Mode::Tokens;
    }

    fn verdict(&self) -> Encryption {
        let Some(trailer) = &self.trailer else {
            return Encryption::unknown("no trailer (truncated PDF?)");
        };
        let id0 = trailer
            .get(b"ID")
            .and_then(|id| id.array().first())
            .and_then(Obj::bytes)
            .unwrap_or_default();
        match trailer.get(b"Encrypt") {
            None if self.earlier_encrypt => {
                Encryption::unknown("encryption dropped by an incremental update")
            }
            None => Encryption::not_encrypted("no encryption dictionary"),
            Some(dict @ Obj::Dict(_)) => crypt::assess(dict, id0),
            Some(Obj::Ref(num, _)) => match self.candidates.iter().find(|(n, _)| n == num) {
                Some((_, dict)) => crypt::assess(dict, id0),
                None => Encryption::unknown("encryption dictionary not found"),
            },
            Some(_) => Encryption::unknown("malformed /Encrypt entry"),
        }
    }
}

impl FormatScanner for PdfScanner {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        let mut pos = 0;
        while pos < chunk.len() {
            match self.mode {
                Mode::Tokens => {
                    let Some(tok) = self.lexer.next(chunk, &mut pos) else {
                        break;
                    };
                    if let Some(event) = self.parser.token(tok) {
                        self.on_event(event, cx);
                    }
                }
                Mode::StreamStart { cr } => match chunk.get(pos) {
                    Some(b'\r') if !cr => {
                        pos += 1;
                        self.mode = Mode::StreamStart { cr: true };
                    }
                    Some(b'\n') => {
                        pos += 1;
                        self.mode = Mode::StreamData;
                    }
                    _ => self.mode = Mode::StreamData,
                },
                Mode::StreamData => {
                    pos += self.stream_data(chunk.get(pos..).unwrap_or_default(), cx);
                }
            }
        }
    }

    fn finish(mut self: Box<Self>, cx: &mut ScanCx<'_>) -> FormatFacts {
        if self.mode == Mode::Tokens {
            if let Some(tok) = self.lexer.flush()
                && let Some(event) = self.parser.token(tok)
            {
                self.on_event(event, cx);
            }
        } else {
            self.end_stream(cx);
        }
        let encryption = self.verdict();
        let mut limits = std::mem::take(&mut self.limits);
        if self.trailer.is_none() {
            limits.push(LimitHit {
                kind: LimitKind::Malformed,
                detail: "PDF has no trailer".into(),
            });
        }
        FormatFacts {
            file_type: FileType::Pdf,
            encryption,
            members: Vec::new(),
            limits,
        }
    }
}

/// A dictionary that names a security handler and carries its parameters.
fn is_encryption_dict(value: &Obj) -> bool {
    let handler = value.get(b"Filter").and_then(Obj::name);
    matches!(handler, Some(b"Standard" | b"Adobe.PubSec"))
        || (handler.is_some()
            && (value.get(b"Recipients").is_some()
                || (value.get(b"O").is_some() && value.get(b"U").is_some())))
}

/// Which streams carry text: page content and form XObjects (no `/Type` or `/Subtype` other
/// than a form), object streams (they may hold the Info dictionary) and the XMP packet.
fn route_for(dict: &Obj) -> Route {
    let kind = dict.get(b"Type").and_then(Obj::name);
    let subtype = dict.get(b"Subtype").and_then(Obj::name);
    const NOT_CONTENT: [&[u8]; 7] = [
        b"Length1",
        b"Length2",
        b"Length3",
        b"N",
        b"FunctionType",
        b"ShadingType",
        b"Params",
    ];
    match (kind, subtype) {
        (Some(b"ObjStm"), _) => Route::ObjStm,
        (Some(b"Metadata"), _) | (_, Some(b"XML")) => Route::Xmp,
        (None | Some(b"XObject"), Some(b"Form")) => Route::Content,
        (None | Some(b"Pattern"), None) if NOT_CONTENT.iter().all(|k| dict.get(k).is_none()) => {
            Route::Content
        }
        _ => Route::Skip,
    }
}

fn record_stop(limits: &mut Vec<LimitHit>, stop: Stop) {
    let hit = match stop {
        Stop::Budget => LimitHit {
            kind: LimitKind::ExpandedSize,
            detail: "PDF stream decoding stopped: expansion budget spent".into(),
        },
        Stop::Ratio => LimitHit {
            kind: LimitKind::Ratio,
            detail: "PDF stream expands beyond the ratio limit".into(),
        },
        Stop::Corrupt => return,
    };
    if !limits.contains(&hit) {
        limits.push(hit);
    }
}

#[cfg(test)]
mod tests;
