//! The readable content of a signed-only or plain OpenPGP message.
//!
//! `gpg -s` and `gpg --store` keep the data in clear: a literal data packet, usually inside a
//! compressed packet. The message is walked packet by packet as it streams; compressed data is
//! inflated under the body's budget and literal data goes to the sink, so a signed file is
//! checked like any other readable file. Packet bodies may be split into partial lengths at
//! either level.

use flate2::{Decompress, FlushDecompress, Status};

use crate::inspect::file::ScanCx;
use crate::inspect::report::{LimitHit, LimitKind};
use crate::inspect::sink::TextOrigin;

const OUT_BUF: usize = 16 << 10;
const TAG_COMPRESSED: u8 = 8;
const TAG_LITERAL: u8 = 11;

/// Reads packet framing: header, then the body in one or more (partial) pieces.
#[derive(Debug, Default)]
struct Framer {
    state: Frame,
    header: [u8; 6],
    header_len: usize,
}

#[derive(Debug, Default, Clone, Copy)]
enum Frame {
    #[default]
    Header,
    /// Body bytes left in this piece; `partial` = another length follows it; `None` = the body
    /// runs to the end of the input.
    Body {
        tag: u8,
        left: Option<u64>,
        partial: bool,
    },
    /// Reading the length of the next partial piece of a body.
    NextLength { tag: u8 },
    /// Malformed: ignore the rest.
    Stop,
}

/// What the framer reports.
enum Piece<'a> {
    Start(u8),
    Body(u8, &'a [u8]),
}

/// Streams a message's literal data to the sink.
pub(super) struct MessageText {
    outer: Framer,
    inner: Framer,
    inflating: Inflating,
    literal: Literal,
    pub(super) limits: Vec<LimitHit>,
}

/// The compressed packet being inflated.
struct Inflating {
    inflate: Option<Decompress>,
    /// The algorithm octet was read (or the packet is not compressed).
    algo_read: bool,
    out: Box<[u8; OUT_BUF]>,
    consumed: u64,
    produced: u64,
}

/// Progress through a literal packet's own header (format, name, date) before its data.
#[derive(Debug, Default, Clone, Copy)]
enum Literal {
    #[default]
    Format,
    NameLen,
    Skip(usize),
    Data,
}

// === impl Framer ===

impl Framer {
    fn feed(&mut self, mut data: &[u8], on: &mut dyn FnMut(Piece<'_>)) {
        while !data.is_empty() {
            match self.state {
                Frame::Stop => return,
                Frame::Header | Frame::NextLength { .. } => {
                    let Some((&b, rest)) = data.split_first() else {
                        return;
                    };
                    data = rest;
                    if let Some(slot) = self.header.get_mut(self.header_len) {
                        *slot = b;
                        self.header_len += 1;
                    }
                    self.header_done(on);
                }
                Frame::Body { tag, left, partial } => {
                    let take = left.map_or(data.len(), |l| {
                        data.len().min(usize::try_from(l).unwrap_or(usize::MAX))
                    });
                    let (body, rest) = data.split_at(take);
                    data = rest;
                    on(Piece::Body(tag, body));
                    let left = left.map(|l| l - take as u64);
                    self.state = match left {
                        Some(0) if partial => Frame::NextLength { tag },
                        Some(0) => Frame::Header,
                        _ => Frame::Body { tag, left, partial },
                    };
                    self.header_len = 0;
                }
            }
        }
    }

    /// Tries to complete a packet header (or a partial-length octet run).
    fn header_done(&mut self, on: &mut dyn FnMut(Piece<'_>)) {
        let h = self.header.get(..self.header_len).unwrap_or_default();
        let (tag, len_octets) = match self.state {
            Frame::NextLength { tag } => (tag, h),
            _ => {
                let Some(&b0) = h.first() else { return };
                if b0 & 0x80 == 0 {
                    self.state = Frame::Stop;
                    return;
                }
                if b0 & 0x40 == 0 {
                    let tag = (b0 >> 2) & 0x0F;
                    let n = match b0 & 3 {
                        0 => 1,
                        1 => 2,
                        2 => 4,
                        _ => {
                            on(Piece::Start(tag));
                            self.state = Frame::Body {
                                tag,
                                left: None,
                                partial: false,
                            };
                            return;
                        }
                    };
                    if h.len() < 1 + n {
                        return;
                    }
                    let len = h
                        .iter()
                        .skip(1)
                        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
                    on(Piece::Start(tag));
                    self.state = Frame::Body {
                        tag,
                        left: Some(len),
                        partial: false,
                    };
                    return;
                }
                let tag = b0 & 0x3F;
                let Some(rest) = h.get(1..) else { return };
                if rest.is_empty() {
                    return;
                }
                if let Some((left, partial)) = new_length(rest) {
                    on(Piece::Start(tag));
                    self.state = Frame::Body {
                        tag,
                        left: Some(left),
                        partial,
                    };
                }
                return;
            }
        };
        if let Some((left, partial)) = new_length(len_octets) {
            self.state = Frame::Body {
                tag,
                left: Some(left),
                partial,
            };
        }
    }
}

/// A new-format length: (body bytes, more pieces follow). `None` until enough octets are in.
fn new_length(octets: &[u8]) -> Option<(u64, bool)> {
    let &first = octets.first()?;
    match first {
        0..=191 => Some((u64::from(first), false)),
        192..=223 => {
            let &second = octets.get(1)?;
            Some((
                ((u64::from(first) - 192) << 8) + u64::from(second) + 192,
                false,
            ))
        }
        255 => {
            let b = octets.get(1..5)?;
            Some((
                b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
                false,
            ))
        }
        _ => Some((1u64 << (first & 0x1F), true)),
    }
}

// === impl MessageText ===

impl MessageText {
    pub(super) fn new() -> Self {
        Self {
            outer: Framer::default(),
            inner: Framer::default(),
            inflating: Inflating {
                inflate: None,
                algo_read: false,
                out: Box::new([0; OUT_BUF]),
                consumed: 0,
                produced: 0,
            },
            literal: Literal::default(),
            limits: Vec::new(),
        }
    }

    /// Takes the next bytes of the binary message.
    pub(super) fn feed(&mut self, data: &[u8], cx: &mut ScanCx<'_>) {
        let Self {
            outer,
            inner,
            inflating,
            literal,
            limits,
        } = self;
        outer.feed(data, &mut |piece| match piece {
            Piece::Start(tag) => {
                inflating.algo_read = tag != TAG_COMPRESSED;
                *literal = Literal::Format;
            }
            Piece::Body(TAG_LITERAL, body) => literal_data(literal, body, cx),
            Piece::Body(TAG_COMPRESSED, body) => {
                let result = inflating.body(body, cx, &mut |decoded, cx| {
                    inner.feed(decoded, &mut |inner_piece| match inner_piece {
                        Piece::Start(_) => *literal = Literal::Format,
                        Piece::Body(TAG_LITERAL, bytes) => literal_data(literal, bytes, cx),
                        Piece::Body(..) => {}
                    });
                });
                if let Err(hit) = result
                    && !limits.contains(&hit)
                {
                    limits.push(hit);
                }
            }
            Piece::Body(..) => {}
        });
    }
}

// === impl Inflating ===

impl Inflating {
    /// Inflates a piece of the compressed packet's body, handing the output to `decoded`.
    fn body(
        &mut self,
        mut body: &[u8],
        cx: &mut ScanCx<'_>,
        decoded: &mut dyn FnMut(&[u8], &mut ScanCx<'_>),
    ) -> Result<(), LimitHit> {
        if !self.algo_read {
            let Some((&algo, rest)) = body.split_first() else {
                return Ok(());
            };
            self.algo_read = true;
            body = rest;
            self.inflate = match algo {
                1 => Some(Decompress::new(false)),
                2 => Some(Decompress::new(true)),
                _ => None, // uncompressed or bzip2: not read
            };
        }
        let Some(inflater) = self.inflate.as_mut() else {
            return Ok(());
        };
        self.consumed += body.len() as u64;
        let max_ratio = u64::from(cx.config.limits.max_ratio);
        loop {
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            let Ok(status) = inflater.decompress(body, &mut self.out[..], FlushDecompress::None)
            else {
                self.inflate = None;
                return Ok(());
            };
            let used = usize::try_from(inflater.total_in() - before_in).unwrap_or(usize::MAX);
            let made = usize::try_from(inflater.total_out() - before_out).unwrap_or(0);
            body = body.get(used..).unwrap_or_default();
            let made_u64 = made as u64;
            let bomb =
                self.produced > 1 << 20 && self.produced > self.consumed.saturating_mul(max_ratio);
            if made_u64 > *cx.expand_budget || bomb {
                self.inflate = None;
                return Err(LimitHit {
                    kind: if bomb {
                        LimitKind::Ratio
                    } else {
                        LimitKind::ExpandedSize
                    },
                    detail: "OpenPGP compressed data beyond the expansion limits".into(),
                });
            }
            *cx.expand_budget -= made_u64;
            self.produced += made_u64;
            decoded(self.out.get(..made).unwrap_or_default(), cx);
            if status == Status::StreamEnd
                || (body.is_empty() && made < OUT_BUF)
                || (used == 0 && made == 0)
            {
                return Ok(());
            }
        }
    }
}

/// The bytes of a literal packet's body: its header is skipped, its data is text.
fn literal_data(state: &mut Literal, mut body: &[u8], cx: &mut ScanCx<'_>) {
    while !body.is_empty() {
        match *state {
            Literal::Format => {
                body = body.get(1..).unwrap_or_default();
                *state = Literal::NameLen;
            }
            Literal::NameLen => {
                let name_len = body.first().map_or(0, |&n| usize::from(n));
                body = body.get(1..).unwrap_or_default();
                *state = Literal::Skip(name_len + 4); // the name, then a 4-byte date
            }
            Literal::Skip(n) => {
                let take = n.min(body.len());
                body = body.get(take..).unwrap_or_default();
                *state = if n == take {
                    Literal::Data
                } else {
                    Literal::Skip(n - take)
                };
            }
            Literal::Data => {
                cx.sink.text(body, TextOrigin::Body);
                return;
            }
        }
    }
}
