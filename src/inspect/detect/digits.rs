//! Finding where a number may start, fast. Most text has few digits; dense text (base64, hex,
//! tables) has a digit every few bytes, but the shapes a reportable number must begin with are
//! rare in it: a run of three digits (one in about 250 positions of base64) or an IBAN's check
//! digits after a two-letter country code that starts a word.

/// Bytes the test at a position looks at before it (an IBAN's country code and the byte before
/// that) and after it (the rest of a run of three digits).
const BEFORE: usize = 3;
const AFTER: usize = 2;
/// Positions are tested a window of 64 bytes at a time; a window serves the positions whose
/// bytes all lie inside it.
const WINDOW: usize = 64;
const STEP: usize = WINDOW - BEFORE - AFTER;
/// Window bits of the positions it serves: `BEFORE ..= WINDOW - AFTER - 1`.
const SERVED: u64 = (u64::MAX << BEFORE) & (u64::MAX >> AFTER);

/// The first `q` in `from..to` where a BSN, card number or IBAN may start: three digits start
/// there (every BSN and card layout begins with a group of three or more), or two digits follow
/// two letters that follow no letter or digit (an IBAN's check digits, the only place an IBAN
/// match can start its digits). The bytes this looks at may lie outside `from..to`, inside `hay`.
pub(crate) fn find_candidate(hay: &[u8], from: usize, to: usize) -> Option<usize> {
    let to = to.min(hay.len());
    let mut q = from;
    while q < to && q < BEFORE {
        if is_candidate(hay, q) {
            return Some(q);
        }
        q += 1;
    }
    while q < to {
        let s = q - BEFORE;
        let Some(window) = hay
            .get(s..s + WINDOW)
            .and_then(|w| <&[u8; WINDOW]>::try_from(w).ok())
        else {
            break;
        };
        let (digits, letters) = classes(window);
        let triples = digits & digits >> 1 & digits >> 2;
        let ibans = (!(digits | letters) & letters >> 1 & letters >> 2 & digits >> 3 & digits >> 4)
            << BEFORE;
        let below_to = match to - s {
            n if n >= WINDOW => u64::MAX,
            n => (1 << n) - 1,
        };
        let hits = (triples | ibans) & SERVED & below_to;
        if hits != 0 {
            return Some(s + hits.trailing_zeros() as usize);
        }
        q += STEP;
    }
    (q..to).find(|&q| is_candidate(hay, q))
}

/// [`find_candidate`]'s test at one position, byte by byte; bytes outside `hay` are neither
/// digits nor letters.
fn is_candidate(hay: &[u8], q: usize) -> bool {
    let at = |i: Option<usize>| i.and_then(|i| hay.get(i)).copied().unwrap_or(0);
    let digit = |i| at(i).is_ascii_digit();
    let letter = |i| at(i).is_ascii_alphabetic();
    let pair = digit(Some(q)) && digit(q.checked_add(1));
    let triple = pair && digit(q.checked_add(2));
    let iban = pair
        && letter(q.checked_sub(1))
        && letter(q.checked_sub(2))
        && !at(q.checked_sub(3)).is_ascii_alphanumeric();
    triple || iban
}

/// Bit `k` of the first mask is set when `w[k]` is an ASCII digit, of the second when it is an
/// ASCII letter.
#[cfg(target_arch = "x86_64")]
#[allow(
    unsafe_code,
    reason = "calling a target-feature function; the feature is the target's baseline"
)]
fn classes(w: &[u8; WINDOW]) -> (u64, u64) {
    // SAFETY: SSE2 is part of every x86-64 CPU (the target's baseline), so the target feature
    // `sse2::classes` asks for is always there.
    unsafe { sse2::classes(w) }
}

#[cfg(not(target_arch = "x86_64"))]
fn classes(w: &[u8; WINDOW]) -> (u64, u64) {
    let mut digits = 0u64;
    let mut letters = 0u64;
    for (k, &b) in w.iter().enumerate() {
        digits |= u64::from(b.is_ascii_digit()) << k;
        letters |= u64::from(b.is_ascii_alphabetic()) << k;
    }
    (digits, letters)
}

/// Sixteen bytes per compare: the compiler does not turn a byte loop into vector compares and
/// mask moves by itself, and this test runs on every byte of text the proxy inspects.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x,
        _mm_set1_epi8,
    };

    use super::WINDOW;

    /// Shifts a byte range down to `-128..`, where one signed compare tests it: `b` is in
    /// `lo..lo + n` exactly when `b + (0x80 - lo)` (wrapping) is below `-128 + n`.
    #[target_feature(enable = "sse2")]
    fn in_range(v: __m128i, lo: u8, n: u8) -> u32 {
        let shifted = _mm_add_epi8(v, _mm_set1_epi8(0x80u8.wrapping_sub(lo).cast_signed()));
        let below = _mm_set1_epi8((0x80u8 + n).cast_signed());
        _mm_movemask_epi8(_mm_cmplt_epi8(shifted, below)).cast_unsigned()
    }

    #[target_feature(enable = "sse2")]
    pub(super) fn classes(w: &[u8; WINDOW]) -> (u64, u64) {
        let mut digits = 0u64;
        let mut letters = 0u64;
        for (k, chunk) in w.chunks_exact(16).enumerate() {
            let half = |at: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk.get(at..at + 8).unwrap_or(&[0; 8]));
                i64::from_le_bytes(b)
            };
            let v = _mm_set_epi64x(half(8), half(0));
            let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
            digits |= u64::from(in_range(v, b'0', 10)) << (16 * k);
            letters |= u64::from(in_range(lower, b'a', 26)) << (16 * k);
        }
        (digits, letters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(hay: &[u8], from: usize, to: usize) -> Option<usize> {
        (from..to.min(hay.len())).find(|&q| {
            let d = |i: usize| hay.get(i).is_some_and(u8::is_ascii_digit);
            let l = |i: Option<usize>| {
                i.and_then(|i| hay.get(i))
                    .is_some_and(u8::is_ascii_alphabetic)
            };
            let free = q < 3 || !hay[q - 3].is_ascii_alphanumeric();
            (d(q) && d(q + 1) && d(q + 2))
                || (d(q) && d(q + 1) && l(q.checked_sub(1)) && l(q.checked_sub(2)) && free)
        })
    }

    #[test]
    fn classes_flag_exactly_digits_and_letters() {
        let mut w = [0u8; WINDOW];
        for b in 0u8..=255 {
            for (k, x) in w.iter_mut().enumerate() {
                *x = if (k + usize::from(b)) % 3 == 1 {
                    b
                } else {
                    b'-'
                };
            }
            let (digits, letters) = classes(&w);
            for (k, &byte) in w.iter().enumerate() {
                assert_eq!(
                    digits >> k & 1 == 1,
                    byte.is_ascii_digit(),
                    "{byte:#x} at {k}"
                );
                assert_eq!(
                    letters >> k & 1 == 1,
                    byte.is_ascii_alphabetic(),
                    "{byte:#x} at {k}"
                );
            }
        }
    }

    #[test]
    fn finds_each_shape_where_a_byte_loop_does() {
        // A run of three digits, an IBAN start, a pair glued to a word (no candidate) and a
        // pair after one letter, at every offset of haystacks around the window size, and
        // every sub-range that starts near them.
        let shapes: [&[u8]; 5] = [b"123", b" NL91", b"xNL91", b"-a12", b"_nl91x"];
        for shape in shapes {
            for len in [5usize, 8, 63, 64, 65, 66, 70, 127, 130] {
                for at in 0..len.saturating_sub(shape.len() - 1) {
                    let mut hay = vec![b'x'; len];
                    hay[at..at + shape.len()].copy_from_slice(shape);
                    for from in [0, 1, 2, 3, 4, at.saturating_sub(1), at, at + 1, at + 3] {
                        for to in [at, at + 2, at + 4, at + 5, len, len + 3] {
                            assert_eq!(
                                find_candidate(&hay, from, to),
                                naive(&hay, from, to),
                                "{:?} {from}..{to}",
                                String::from_utf8_lossy(&hay)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_a_byte_loop_on_dense_text() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/: -.";
        let hay: Vec<u8> = (0..8192)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % alphabet.len() as u64) as usize]
            })
            .collect();
        for start in [0, 1, 5] {
            let mut from = start;
            let mut found = 0;
            while let Some(q) = find_candidate(&hay, from, hay.len()) {
                assert_eq!(Some(q), naive(&hay, from, hay.len()));
                found += 1;
                from = q + 1;
            }
            assert_eq!(naive(&hay, from, hay.len()), None);
            assert!(found > 20, "the text has candidates to find ({found})");
        }
    }
}
