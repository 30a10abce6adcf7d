//! Finding `endstream` in stream data that arrives in chunks.
//!
//! The scanner does not trust `/Length` (it may be an indirect reference, or wrong): it looks for
//! the keyword. A keyword split across chunks is carried over in a few bytes, and the bytes
//! before it are handed on as payload exactly once.

use memchr::memmem;

const NEEDLE: &[u8] = b"endstream";
const CARRY: usize = NEEDLE.len() - 1;

/// Remembers a possible start of `endstream` at the end of the previous chunk.
#[derive(Debug, Default)]
pub(super) struct EndFinder {
    carry: [u8; CARRY],
    len: usize,
}

// === impl EndFinder ===

impl EndFinder {
    /// Hands the stream bytes of `data` to `payload`. Returns the bytes consumed, keyword
    /// included, when the stream ended inside `data`; `None` when all of `data` was taken.
    pub(super) fn scan(&mut self, data: &[u8], payload: &mut dyn FnMut(&[u8])) -> Option<usize> {
        if self.len > 0 {
            let carried = self.len;
            let head = data.len().min(NEEDLE.len());
            let mut joined = [0u8; CARRY + NEEDLE.len()];
            let joined_len = carried + head;
            joined[..carried].copy_from_slice(&self.carry[..carried]);
            joined[carried..joined_len].copy_from_slice(data.get(..head).unwrap_or_default());
            let joined = &joined[..joined_len];
            self.len = 0;
            if let Some(at) = memmem::find(joined, NEEDLE) {
                payload(joined.get(..at).unwrap_or_default());
                return Some(at + NEEDLE.len() - carried);
            }
            if data.len() < NEEDLE.len() {
                // Everything is in `joined`: keep its tail if it may still begin the keyword.
                let keep = partial_suffix(joined);
                payload(joined.get(..joined.len() - keep).unwrap_or_default());
                self.hold(joined.get(joined.len() - keep..).unwrap_or_default());
                return None;
            }
            payload(joined.get(..carried).unwrap_or_default());
        }
        if let Some(at) = memmem::find(data, NEEDLE) {
            payload(data.get(..at).unwrap_or_default());
            return Some(at + NEEDLE.len());
        }
        let keep = partial_suffix(data);
        payload(data.get(..data.len() - keep).unwrap_or_default());
        self.hold(data.get(data.len() - keep..).unwrap_or_default());
        None
    }

    fn hold(&mut self, tail: &[u8]) {
        let n = tail.len().min(CARRY);
        self.carry[..n].copy_from_slice(tail.get(..n).unwrap_or_default());
        self.len = n;
    }
}

/// Length of the longest suffix of `data` that is a proper prefix of the keyword.
fn partial_suffix(data: &[u8]) -> usize {
    (1..=CARRY.min(data.len()))
        .rev()
        .find(|&n| {
            data.get(data.len() - n..)
                .is_some_and(|tail| NEEDLE.starts_with(tail))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `split` bytes; returns (payload, bytes consumed in total).
    fn run(input: &[u8], split: usize) -> (Vec<u8>, Option<usize>) {
        let mut finder = EndFinder::default();
        let mut payload = Vec::new();
        let mut offset = 0;
        for chunk in input.chunks(split) {
            if let Some(n) = finder.scan(chunk, &mut |p| payload.extend_from_slice(p)) {
                return (payload, Some(offset + n));
            }
            offset += chunk.len();
        }
        (payload, None)
    }

    #[test]
    fn finds_the_keyword_at_every_split() {
        let input = b"abc endstreaendstrem eendstream endobj";
        let at = input.windows(9).position(|w| w == NEEDLE).unwrap_or(0);
        for split in 1..=input.len() {
            let (payload, consumed) = run(input, split);
            assert_eq!(payload, &input[..at], "split {split}");
            assert_eq!(consumed, Some(at + NEEDLE.len()), "split {split}");
        }
    }

    #[test]
    fn without_the_keyword_everything_but_a_possible_start_is_payload() {
        for split in 1..12 {
            let (payload, consumed) = run(b"0123456789endstr", split);
            assert_eq!(consumed, None);
            assert_eq!(payload, b"0123456789");
        }
    }
}
