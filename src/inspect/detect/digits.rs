//! Finding where numbers may start, fast: most text has few digits, and dense text (base64,
//! hex, tables) has digits every few bytes but two in a row far more rarely.

const ZEROS: u64 = 0x3030_3030_3030_3030;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
/// `0x80 - 10` per byte: adding it sets a byte's high bit exactly when the byte is 10 or more.
const FROM_TEN: u64 = 0x7676_7676_7676_7676;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The first `p` in `from..to` where two ASCII digits start (`hay[p]` and `hay[p + 1]`; the
/// second may lie at or after `to`). Every number a detector reports holds such a pair (an
/// IBAN's check digits; a BSN's or a card's groups of three and more), and in base64 text a
/// pair starts at one position in 40 where a digit starts at one in 6.
pub(crate) fn find_digit_pair(hay: &[u8], from: usize, to: usize) -> Option<usize> {
    let to = to.min(hay.len().saturating_sub(1));
    let mut p = from;
    // Eight bytes at a time, windows seven apart: each one sees the pairs that start in its
    // first seven bytes.
    while p < to {
        let Some(word) = hay.get(p..p + 8) else {
            break;
        };
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let pairs = digit_flags(u64::from_le_bytes(w));
        let pairs = pairs & (pairs >> 8);
        if pairs != 0 {
            let at = p + (pairs.trailing_zeros() / 8) as usize;
            return (at < to).then_some(at);
        }
        p += 7;
    }
    while p < to {
        if hay.get(p).is_some_and(u8::is_ascii_digit)
            && hay.get(p + 1).is_some_and(u8::is_ascii_digit)
        {
            return Some(p);
        }
        p += 1;
    }
    None
}

/// The high bit of every byte of `w` that is an ASCII digit, exactly: after `^ 0x30` a digit
/// is a byte below 10; the sum below cannot carry from one byte into the next.
fn digit_flags(w: u64) -> u64 {
    let t = w ^ ZEROS;
    !(((t & LOW7) + FROM_TEN) | t) & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(hay: &[u8], from: usize, to: usize) -> Option<usize> {
        (from..to.min(hay.len().saturating_sub(1)))
            .find(|&p| hay[p].is_ascii_digit() && hay[p + 1].is_ascii_digit())
    }

    #[test]
    fn flags_exactly_the_digits() {
        for b in 0u8..=255 {
            let w = u64::from_le_bytes([b, b'x', b, b'0', b':', b'/', b, 0xff]);
            let flags = digit_flags(w);
            for (k, byte) in w.to_le_bytes().iter().enumerate() {
                let flagged = flags >> (8 * k + 7) & 1 == 1;
                assert_eq!(flagged, byte.is_ascii_digit(), "byte {byte:#x} at {k}");
            }
        }
    }

    #[test]
    fn finds_the_first_pair_as_a_byte_loop_does() {
        // Every placement of a pair, a lone digit and a digit next to ':' (which a borrowing
        // SWAR test would take for a digit) in short haystacks, and every sub-range.
        for len in 0..24 {
            for at in 0..len {
                let mut hay = vec![b'x'; len];
                hay[at] = b'4';
                if at + 1 < len {
                    hay[at + 1] = b'2';
                }
                if at >= 3 {
                    hay[at - 3] = b'9';
                    hay[at - 2] = b':';
                }
                for from in 0..=len {
                    for to in from..=len + 2 {
                        assert_eq!(
                            find_digit_pair(&hay, from, to),
                            naive(&hay, from, to),
                            "{:?} {from}..{to}",
                            String::from_utf8_lossy(&hay)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_a_byte_loop_on_dense_text() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/: -.";
        let hay: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % alphabet.len() as u64) as usize]
            })
            .collect();
        let mut from = 0;
        let mut found = 0;
        while let Some(p) = find_digit_pair(&hay, from, hay.len()) {
            assert_eq!(Some(p), naive(&hay, from, hay.len()));
            found += 1;
            from = p + 1;
        }
        assert_eq!(naive(&hay, from, hay.len()), None);
        assert!(found > 20, "the text has pairs to find ({found})");
    }
}
