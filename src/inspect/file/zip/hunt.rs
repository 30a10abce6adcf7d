//! Finding where a member ends when its header does not say: a stored or encrypted member
//! written with a data descriptor (flag bit 3), or a masked header (encrypted central
//! directory). The data cannot be decoded to find its end, so the scanner looks for the next
//! record signature and accepts it only when the data descriptor's compressed size matches the
//! bytes seen, which a stray `PK` in the data will not do. The central directory later confirms
//! the sizes.

use memchr::memmem;

use super::header::{SIG_ARCHIVE_EXTRA, SIG_CENTRAL, SIG_DESCRIPTOR, SIG_LOCAL};
use crate::inspect::file::bytes::{le, u32_at, u64_at};

/// Input is searched in slices of this size, so the hunt buffer stays bounded whatever the
/// chunk size.
pub(super) const HUNT_SLICE: usize = 64 << 10;
/// Bytes kept back because they may still belong to a descriptor + signature.
const LOOKBACK: usize = 28;

#[derive(Debug, Default)]
pub(super) struct Hunt {
    buf: Vec<u8>,
    /// Data bytes released before `buf[0]`.
    released: u64,
    /// A data descriptor is expected (flag bit 3) rather than a masked header.
    descriptor: bool,
    zip64: bool,
}

/// The member ended after `data_len` bytes; `replay` holds bytes already taken from the input
/// that belong to the records after its data descriptor.
#[derive(Debug)]
pub(super) struct End {
    pub(super) replay: Vec<u8>,
    pub(super) data_len: u64,
}

// === impl Hunt ===

impl Hunt {
    pub(super) fn start(&mut self, descriptor: bool, zip64: bool) {
        self.buf.clear();
        self.released = 0;
        self.descriptor = descriptor;
        self.zip64 = zip64;
    }

    /// Takes `input` (at most [`HUNT_SLICE`] bytes); data bytes known to belong to the member
    /// go to `out`.
    pub(super) fn push(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) -> Option<End> {
        self.buf.extend_from_slice(input);
        let mut wait_from = self.buf.len().saturating_sub(LOOKBACK);
        for i in memmem::find_iter(&self.buf, b"PK") {
            match self.check(i) {
                Check::No => {}
                Check::Wait => {
                    wait_from = wait_from.min(i.saturating_sub(LOOKBACK));
                    break;
                }
                Check::End { data_end, skip } => {
                    out(self.buf.get(..data_end).unwrap_or_default());
                    let replay = self.buf.get(data_end + skip..).unwrap_or_default().to_vec();
                    let data_len = self.released + data_end as u64;
                    self.buf.clear();
                    return Some(End { replay, data_len });
                }
            }
        }
        out(self.buf.get(..wait_from).unwrap_or_default());
        self.buf.drain(..wait_from);
        self.released += wait_from as u64;
        None
    }

    fn check(&self, i: usize) -> Check {
        let sig: [u8; 4] = le(&self.buf, i);
        if self.buf.len() < i + 4 {
            return Check::Wait;
        }
        let data_len = |end: usize| self.released + end as u64;
        if !self.descriptor {
            return if sig == SIG_LOCAL || sig == SIG_CENTRAL || sig == SIG_ARCHIVE_EXTRA {
                Check::End {
                    data_end: i,
                    skip: 0,
                }
            } else {
                Check::No
            };
        }
        let width = if self.zip64 { 8 } else { 4 };
        if sig == SIG_DESCRIPTOR {
            let len = 8 + 2 * width;
            if self.buf.len() < i + len {
                return Check::Wait;
            }
            if self.size_at(i + 8) == data_len(i) {
                return Check::End {
                    data_end: i,
                    skip: len,
                };
            }
        } else if sig == SIG_LOCAL || sig == SIG_CENTRAL {
            let len = 4 + 2 * width;
            if let Some(start) = i.checked_sub(len)
                && self.size_at(start + 4) == data_len(start)
            {
                return Check::End {
                    data_end: start,
                    skip: len,
                };
            }
        }
        Check::No
    }

    fn size_at(&self, at: usize) -> u64 {
        if self.zip64 {
            u64_at(&self.buf, at)
        } else {
            u64::from(u32_at(&self.buf, at))
        }
    }
}

enum Check {
    No,
    Wait,
    End { data_end: usize, skip: usize },
}
