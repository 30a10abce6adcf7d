//! gzip members (RFC 1952) for Content-Encoding: header, raw deflate, CRC-32 and size
//! trailer; several members may follow one another. The checksum is verified, so a corrupted
//! body is reported as malformed rather than silently scanned as garbage.

use flate2::Decompress;

use crate::inspect::frame::codec::{Step, inflate};

/// Longest gzip header (file name, comment, extra field) that is buffered.
const MAX_GZIP_HEADER: usize = 64 << 10;

/// gzip: header, raw deflate, 8-byte trailer; members may follow one another.
pub(super) struct Gzip {
    state: GzState,
    header: Vec<u8>,
    crc: flate2::Crc,
    trailer: Vec<u8>,
}

enum GzState {
    Header,
    Body(Decompress),
    Trailer,
}

// === impl Gzip ===

impl Gzip {
    pub(super) fn new() -> Self {
        Self {
            state: GzState::Header,
            header: Vec::new(),
            crc: flate2::Crc::new(),
            trailer: Vec::new(),
        }
    }

    pub(super) fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Step, &'static str> {
        match &mut self.state {
            GzState::Header => {
                let take = input
                    .len()
                    .min(MAX_GZIP_HEADER.saturating_sub(self.header.len()));
                let before = self.header.len();
                self.header
                    .extend_from_slice(input.get(..take).unwrap_or(&[]));
                match gzip_header_len(&self.header)? {
                    Some(len) => {
                        let consumed = len - before;
                        self.header.clear();
                        self.state = GzState::Body(Decompress::new(false));
                        Ok(Step {
                            consumed,
                            produced: 0,
                            finished: false,
                        })
                    }
                    None if self.header.len() >= MAX_GZIP_HEADER => Err("header too long"),
                    None => Ok(Step {
                        consumed: take,
                        produced: 0,
                        finished: false,
                    }),
                }
            }
            GzState::Body(d) => {
                let step = inflate(d, input, out)?;
                self.crc.update(out.get(..step.produced).unwrap_or(&[]));
                if step.finished {
                    self.state = GzState::Trailer;
                }
                Ok(Step {
                    finished: false,
                    ..step
                })
            }
            GzState::Trailer => {
                let take = (8 - self.trailer.len()).min(input.len());
                self.trailer
                    .extend_from_slice(input.get(..take).unwrap_or(&[]));
                let finished = self.trailer.len() == 8;
                if finished {
                    let mut want = self.crc.sum().to_le_bytes().to_vec();
                    want.extend_from_slice(&self.crc.amount().to_le_bytes());
                    if self.trailer != want {
                        return Err("checksum mismatch");
                    }
                    // The stream may end here, or another member may follow.
                    self.trailer.clear();
                    self.crc.reset();
                    self.state = GzState::Header;
                }
                Ok(Step {
                    consumed: take,
                    produced: 0,
                    finished,
                })
            }
        }
    }
}

/// The length of a complete gzip member header, `None` if more bytes are needed.
fn gzip_header_len(h: &[u8]) -> Result<Option<usize>, &'static str> {
    if h.len() >= 2 && (h.first() != Some(&0x1F) || h.get(1) != Some(&0x8B)) {
        return Err("not gzip");
    }
    let Some(&flags) = h.get(3) else {
        return Ok(None);
    };
    if h.len() < 10 {
        return Ok(None);
    }
    let mut i = 10;
    if flags & 0x04 != 0 {
        let Some(&[a, b]) = h.get(i..i + 2) else {
            return Ok(None);
        };
        i += 2 + usize::from(u16::from_le_bytes([a, b]));
    }
    for bit in [0x08, 0x10] {
        if flags & bit != 0 {
            match h.get(i..).and_then(|r| memchr::memchr(0, r)) {
                Some(k) => i += k + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        i += 2;
    }
    Ok((h.len() >= i).then_some(i))
}
