//! Finding digits fast: most text has few, and every number detector starts at one.

/// The first ASCII digit in `hay[from..to]`, eight bytes at a time (SWAR): after `^ 0x30` a
/// digit is a byte below 10, and `(t - 0x0A..) & !t & 0x80..` flags such bytes. Borrows can
/// only add flags above a real one, so the lowest flag is exact.
pub(crate) fn find_digit(hay: &[u8], from: usize, to: usize) -> Option<usize> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const TENS: u64 = 0x0A0A_0A0A_0A0A_0A0A;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let s = hay.get(from..to)?;
    let mut words = s.chunks_exact(8);
    let mut off = from;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let t = u64::from_le_bytes(w) ^ ZEROS;
        let flags = t.wrapping_sub(TENS) & !t & HIGH;
        if flags != 0 {
            return Some(off + (flags.trailing_zeros() / 8) as usize);
        }
        off += 8;
    }
    words
        .remainder()
        .iter()
        .position(u8::is_ascii_digit)
        .map(|k| off + k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_digit_exactly() {
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![b'x'; len];
                hay[at] = b'7';
                if at + 1 < len {
                    hay[at + 1] = b'0';
                }
                assert_eq!(find_digit(&hay, 0, len), Some(at), "len {len} at {at}");
                assert_eq!(
                    find_digit(&hay, at + 1, len),
                    (at + 1 < len).then_some(at + 1)
                );
            }
            assert_eq!(find_digit(&vec![b'a'; len], 0, len), None);
        }
        // Bytes next to the digit range and non-ASCII bytes are not digits.
        let near: Vec<u8> = (0u8..=255).filter(|b| !b.is_ascii_digit()).collect();
        assert_eq!(find_digit(&near, 0, near.len()), None);
        assert_eq!(find_digit(b"\xff\xb0/:9", 0, 5), Some(4));
        assert_eq!(find_digit(b"12", 1, 5), None, "range past the end");
    }
}
