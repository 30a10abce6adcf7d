//! The content of a signedData: signed, not encrypted, so it is text for the detectors.
//!
//! The content is the OCTET STRING inside EncapsulatedContentInfo; DER writers give one
//! primitive string, streaming writers (`openssl cms -stream`, mail clients) a constructed
//! string of chunks ended by an end-of-contents marker. Either is followed as it streams.

use super::{PKCS7, Tlv, read_oid, tlv};
use crate::inspect::sink::{ContentSink, TextOrigin};

/// Where the content starts in the DER stream and how it is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ContentStart {
    offset: usize,
    framing: Framing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Primitive(u64),
    Chunks,
}

/// Streams the signed content of a DER/BER signedData to the sink.
#[derive(Debug)]
pub(super) struct SignedText {
    /// DER bytes seen so far.
    position: u64,
    start: ContentStart,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Before,
    Bytes { left: u64, chunked: bool },
    ChunkHeader { header: [u8; 6], len: usize },
    Done,
}

/// Whether the head shows the content of a signedData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    At(ContentStart),
    /// Detached signature, or content that is not `data`.
    Absent,
    /// The head ends before the content header.
    NeedMore,
}

/// Finds the content of a signedData whose content type is `data`.
pub(super) fn content_start(der: &[u8]) -> Found {
    match walk(der) {
        Ok(start) => Found::At(start),
        Err(found) => found,
    }
}

fn walk(der: &[u8]) -> Result<ContentStart, Found> {
    let at = |pos: Option<usize>| -> Result<Tlv, Found> {
        match tlv(der, pos.ok_or(Found::Absent)?) {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(Found::NeedMore),
            Err(()) => Err(Found::Absent),
        }
    };
    let end = |t: &Tlv| t.len.map(|len| t.start + len);
    let outer = at(Some(0))?;
    let oid = at(Some(outer.start))?;
    let wrapper = at(end(&oid))?;
    let signed = at(Some(wrapper.start))?;
    let version = at(Some(signed.start))?;
    let digests = at(end(&version))?;
    let encap = at(end(&digests))?;
    let content_type = match read_oid(der, encap.start) {
        Ok(Some(oid)) => oid,
        Ok(None) => return Err(Found::NeedMore),
        Err(()) => return Err(Found::Absent),
    };
    if content_type.strip_prefix(PKCS7) != Some(&[1]) {
        return Err(Found::Absent);
    }
    let type_tlv = at(Some(encap.start))?;
    if der.len() <= end(&type_tlv).unwrap_or(usize::MAX) {
        // Nothing after the content type yet: the content may still come (or be absent).
        return Err(Found::NeedMore);
    }
    let explicit = at(end(&type_tlv))?;
    if explicit.tag != 0xA0 {
        return Err(Found::Absent);
    }
    let content = at(Some(explicit.start))?;
    let framing = match (content.tag, content.len) {
        (0x04, Some(len)) => Framing::Primitive(len as u64),
        (0x24, _) => Framing::Chunks,
        _ => return Err(Found::Absent),
    };
    Ok(ContentStart {
        offset: content.start,
        framing,
    })
}

// === impl SignedText ===

impl SignedText {
    pub(super) fn new(start: ContentStart) -> Self {
        Self {
            position: 0,
            start,
            state: State::Before,
        }
    }

    pub(super) fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Takes the next DER bytes (from the start of the ContentInfo on).
    pub(super) fn feed(&mut self, mut data: &[u8], sink: &mut dyn ContentSink) {
        while !data.is_empty() {
            match self.state {
                State::Done => return,
                State::Before => {
                    let to_start = (self.start.offset as u64).saturating_sub(self.position);
                    let skip = usize::try_from(to_start)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    data = data.get(skip..).unwrap_or_default();
                    self.position += skip as u64;
                    if self.position >= self.start.offset as u64 {
                        self.state = match self.start.framing {
                            Framing::Primitive(left) => State::Bytes {
                                left,
                                chunked: false,
                            },
                            Framing::Chunks => State::ChunkHeader {
                                header: [0; 6],
                                len: 0,
                            },
                        };
                    }
                }
                State::Bytes { left, chunked } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    let (text, rest) = data.split_at(take);
                    sink.text(text, TextOrigin::Body);
                    data = rest;
                    let left = left - take as u64;
                    self.state = match (left, chunked) {
                        (0, true) => State::ChunkHeader {
                            header: [0; 6],
                            len: 0,
                        },
                        (0, false) => State::Done,
                        _ => State::Bytes { left, chunked },
                    };
                }
                State::ChunkHeader { mut header, len } => {
                    let Some((&b, rest)) = data.split_first() else {
                        return;
                    };
                    data = rest;
                    if let Some(slot) = header.get_mut(len) {
                        *slot = b;
                    }
                    self.state = chunk_header(header, len + 1);
                }
            }
        }
    }
}

/// The state after `len` header bytes of the next chunk: a primitive OCTET STRING chunk, the
/// end-of-contents marker, or anything else (the end).
fn chunk_header(header: [u8; 6], len: usize) -> State {
    let partial = State::ChunkHeader { header, len };
    match tlv(header.get(..len).unwrap_or_default(), 0) {
        Ok(None) => partial,
        Ok(Some(Tlv {
            tag: 0x04,
            len: Some(n),
            ..
        })) => State::Bytes {
            left: n as u64,
            chunked: true,
        },
        _ => State::Done,
    }
}
