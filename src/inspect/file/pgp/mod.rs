//! OpenPGP messages and keys, binary and ASCII-armored (RFC 4880 / RFC 9580).
//!
//! The first packet tells what a message is: an encrypted message starts with a session-key
//! packet (public-key PKESK or passphrase SKESK) or an encrypted-data packet; a signed or plain
//! message starts with a compressed, one-pass-signature or literal packet; key material starts
//! with a key packet. `-----BEGIN PGP MESSAGE-----` is used for signed-only messages too, so the
//! armor is decoded to that first packet rather than trusted.
//!
//! Readable content goes to the sink so the detectors see it: the literal data of signed-only and
//! plain messages, cleartext-signed text, and exported secret keys (the private-key detector
//! looks for the armor line). Only messages decided by a session-key or encrypted-data packet
//! settle early.

use crate::inspect::file::armor::{self, Base64Stream};
use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, EncryptionKind, FileType};
use crate::inspect::sink::TextOrigin;

/// Binary bytes the decision needs: an optional marker packet, then the first packet's header
/// and the few body bytes that are checked.
const BINARY_HEAD: usize = 48;
/// Armored text buffered before deciding: the BEGIN line, armor headers and a line of base64.
const ARMOR_HEAD: usize = 2048;

/// Scans an OpenPGP file (binary when `armored` is false).
pub(super) struct PgpScanner {
    armored: bool,
    head: Vec<u8>,
    state: State,
}

enum State {
    Deciding,
    /// Decided from the header; later bytes cannot change anything.
    Done(Encryption),
    /// Readable text (cleartext signature, secret key): every byte goes to the sink.
    Text(Encryption),
    /// A signed or plain message: its literal data goes to the sink. `armor` decodes the
    /// armored form first.
    Message(Encryption, Box<Reader>),
}

/// Decodes a readable message as it streams.
struct Reader {
    message: message::MessageText,
    armor: Option<(Base64Stream, Vec<u8>)>,
}

/// What a packet's tag says about the message it starts.
enum Step {
    NeedMore,
    /// The verdict, and the tag of the first packet (0 when there is none).
    Decided(Encryption, u8),
}

// === impl PgpScanner ===

impl PgpScanner {
    pub(super) fn new(armored: bool) -> Self {
        Self {
            armored,
            head: Vec::new(),
            state: State::Deciding,
        }
    }

    fn cap(&self) -> usize {
        if self.armored {
            ARMOR_HEAD
        } else {
            BINARY_HEAD
        }
    }

    fn decide(&self, complete: bool) -> Option<State> {
        if !self.armored {
            return match first_packet(&self.head, complete) {
                Step::Decided(e, tag) if readable(tag) => {
                    Some(State::Message(e, Box::new(Reader::new(false))))
                }
                Step::Decided(e, _) => Some(State::Done(e)),
                Step::NeedMore => None,
            };
        }
        decide_armored(&self.head, complete)
    }

    /// Starts reading from the buffered head once the state is decided.
    fn begin(&mut self, later: &[u8], cx: &mut ScanCx<'_>) {
        match &mut self.state {
            State::Text(_) => {
                cx.sink.text(&self.head, TextOrigin::Body);
                cx.sink.text(later, TextOrigin::Body);
            }
            State::Message(_, reader) => {
                let head = if self.armored {
                    armor::pem_body(&self.head).unwrap_or_default()
                } else {
                    &self.head
                };
                reader.feed(head, cx);
                reader.feed(later, cx);
            }
            State::Deciding | State::Done(_) => {}
        }
    }
}

// === impl Reader ===

impl Reader {
    fn new(armored: bool) -> Self {
        Self {
            message: message::MessageText::new(),
            armor: armored.then(|| (Base64Stream::default(), Vec::new())),
        }
    }

    fn feed(&mut self, data: &[u8], cx: &mut ScanCx<'_>) {
        match &mut self.armor {
            Some((decoder, decoded)) => {
                decoder.decode(data, decoded);
                self.message.feed(decoded, cx);
            }
            None => self.message.feed(data, cx),
        }
    }
}

/// Messages whose first packet leaves the content readable.
fn readable(tag: u8) -> bool {
    matches!(tag, 4 | 8 | 11)
}

impl FormatScanner for PgpScanner {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        match self.state {
            State::Done(_) => {}
            State::Text(_) => cx.sink.text(chunk, TextOrigin::Body),
            State::Message(_, ref mut reader) => reader.feed(chunk, cx),
            State::Deciding => {
                let take = self.cap().saturating_sub(self.head.len()).min(chunk.len());
                let (now, later) = chunk.split_at(take);
                self.head.extend_from_slice(now);
                if let Some(state) = self.decide(self.head.len() >= self.cap()) {
                    self.state = state;
                    self.begin(later, cx);
                }
            }
        }
    }

    fn settled(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    fn finish(mut self: Box<Self>, cx: &mut ScanCx<'_>) -> FormatFacts {
        if matches!(self.state, State::Deciding) {
            self.state = self
                .decide(true)
                .unwrap_or_else(|| State::Done(Encryption::unknown("OpenPGP data truncated")));
            self.begin(&[], cx);
        }
        let mut limits = Vec::new();
        let encryption = match self.state {
            State::Done(e) => e,
            State::Text(e) => {
                cx.sink.end_text();
                e
            }
            State::Message(e, reader) => {
                cx.sink.end_text();
                limits = reader.message.limits;
                e
            }
            State::Deciding => Encryption::unknown("OpenPGP data truncated"),
        };
        FormatFacts {
            file_type: if self.armored {
                FileType::OpenpgpArmored
            } else {
                FileType::Openpgp
            },
            encryption,
            members: Vec::new(),
            limits,
        }
    }
}

/// Decides an armored file from its BEGIN line (and, for messages, the first decoded packet).
fn decide_armored(head: &[u8], complete: bool) -> Option<State> {
    let Some(line_end) = memchr::memchr(b'\n', head) else {
        return complete.then(|| State::Done(Encryption::unknown("OpenPGP armor truncated")));
    };
    let line = head.get(..line_end).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let label = line
        .strip_prefix(b"-----BEGIN PGP ")
        .and_then(|l| l.strip_suffix(b"-----"))
        .unwrap_or_default();
    match label {
        b"MESSAGE" => {}
        b"SIGNED MESSAGE" => {
            return Some(State::Text(Encryption::not_encrypted(
                "cleartext-signed message, not encrypted",
            )));
        }
        b"PRIVATE KEY BLOCK" | b"SECRET KEY BLOCK" => {
            return Some(State::Text(Encryption::not_encrypted("OpenPGP secret key")));
        }
        b"PUBLIC KEY BLOCK" => {
            return Some(State::Done(Encryption::not_encrypted("OpenPGP public key")));
        }
        b"SIGNATURE" => {
            return Some(State::Done(Encryption::not_encrypted(
                "detached signature, not encrypted",
            )));
        }
        _ => {
            return Some(State::Done(Encryption::unknown(
                "unrecognised OpenPGP armor",
            )));
        }
    }
    let Some(body) = armor::pem_body(head) else {
        return complete.then(|| State::Done(Encryption::unknown("OpenPGP armor truncated")));
    };
    let mut packets = [0u8; BINARY_HEAD];
    let n = armor::decode_prefix(body, &mut packets);
    // More base64 may still arrive unless the decoded buffer is full or the input is complete.
    let complete = complete || n == packets.len();
    match first_packet(packets.get(..n).unwrap_or_default(), complete) {
        Step::Decided(e, tag) if readable(tag) => {
            Some(State::Message(e, Box::new(Reader::new(true))))
        }
        Step::Decided(e, _) => Some(State::Done(e)),
        Step::NeedMore => None,
    }
}

/// A packet header: tag, header length, body length (`None` = indeterminate or partial).
struct PacketHeader {
    tag: u8,
    header_len: usize,
    body_len: Option<usize>,
}

/// Parses a packet header. `Err(())` = not a packet header; `Ok(None)` = need more bytes.
fn packet_header(buf: &[u8]) -> Result<Option<PacketHeader>, ()> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    if b0 & 0x80 == 0 {
        return Err(());
    }
    let be = |n: usize| -> Option<usize> {
        let bytes = buf.get(1..1 + n)?;
        Some(
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
        )
    };
    if b0 & 0x40 == 0 {
        let tag = (b0 >> 2) & 0x0F;
        let (header_len, body_len) = match b0 & 3 {
            0 => (2, be(1)),
            1 => (3, be(2)),
            2 => (5, be(4)),
            _ => {
                return Ok(Some(PacketHeader {
                    tag,
                    header_len: 1,
                    body_len: None,
                }));
            }
        };
        return Ok(body_len.map(|len| PacketHeader {
            tag,
            header_len,
            body_len: Some(len),
        }));
    }
    let tag = b0 & 0x3F;
    let Some(&b1) = buf.get(1) else {
        return Ok(None);
    };
    let (header_len, body_len) = match b1 {
        0..=191 => (2, Some(usize::from(b1))),
        192..=223 => match buf.get(2) {
            Some(&b2) => (
                3,
                Some(((usize::from(b1) - 192) << 8) + usize::from(b2) + 192),
            ),
            None => return Ok(None),
        },
        255 => match buf.get(2..6) {
            Some(b) => (
                6,
                Some(b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x))),
            ),
            None => return Ok(None),
        },
        _ => (2, None),
    };
    Ok(Some(PacketHeader {
        tag,
        header_len,
        body_len,
    }))
}

/// Classifies a message by its first packet, skipping a leading marker packet.
fn first_packet(buf: &[u8], complete: bool) -> Step {
    let header = match packet_header(buf) {
        Err(()) => return Step::Decided(Encryption::unknown("not an OpenPGP packet"), 0),
        Ok(None) if complete => {
            return Step::Decided(Encryption::unknown("OpenPGP data truncated"), 0);
        }
        Ok(None) => return Step::NeedMore,
        Ok(Some(h)) => h,
    };
    if header.tag == 10 {
        // Marker packet ("PGP"): obsolete padding before the real first packet.
        let next = header.header_len + header.body_len.unwrap_or(3);
        return match buf.get(next..) {
            Some(rest) if !rest.is_empty() => first_packet(rest, complete),
            _ if complete => Step::Decided(Encryption::unknown("OpenPGP data truncated"), 0),
            _ => Step::NeedMore,
        };
    }
    Step::Decided(classify_tag(header.tag), header.tag)
}

fn classify_tag(tag: u8) -> Encryption {
    use EncryptionKind::{OpenpgpPublicKey, OpenpgpSymmetric};
    match tag {
        1 => Encryption::encrypted(OpenpgpPublicKey, "public-key encrypted session key"),
        3 => Encryption::encrypted(OpenpgpSymmetric, "passphrase-encrypted session key"),
        9 | 18 | 20 => Encryption::encrypted(OpenpgpSymmetric, "encrypted data packet"),
        8 => Encryption::not_encrypted("compressed message (signed or plain), not encrypted"),
        4 => Encryption::not_encrypted("signed message, not encrypted"),
        11 => Encryption::not_encrypted("literal data, not encrypted"),
        2 => Encryption::not_encrypted("detached signature, not encrypted"),
        5 | 7 => Encryption::not_encrypted("OpenPGP secret key"),
        6 | 14 => Encryption::not_encrypted("OpenPGP public key"),
        _ => Encryption::unknown("unexpected first OpenPGP packet"),
    }
}

mod message;
mod sniff;

pub(super) use sniff::sniff_binary;
