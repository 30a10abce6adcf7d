//! Finding where a number may start, fast. Most text has few digits; dense text (base64, hex,
//! tables) has a digit every few bytes, but the shapes a reportable number must begin with are
//! rare in it: a run of three digits with at least eight digits in the thirteen bytes from its
//! start (one in many thousand positions of base64; dates and amounts have too few), or an
//! IBAN's check digits after a two-letter country code that starts a word.

use crate::inspect::detect::number::MIN_DIGITS;
use crate::inspect::detect::simd::{WINDOW, digits, letters};
#[cfg(target_arch = "x86_64")]
use crate::inspect::detect::simd::{avx2, has_avx2};

/// Bytes a window holds for each position it serves: before it (an IBAN's country code and the
/// byte before that) and after it (the rest of a run of three). The rest of [`REACH`] is read
/// from the window where it lies inside, else from the haystack.
const BEFORE: usize = 3;
const AFTER: usize = 2;
/// A token (digit groups joined by single separators) with [`MIN_DIGITS`] or more digits from a
/// run of three on has that many in the `REACH` bytes from that run: after its three digits,
/// the next `2 * (MIN_DIGITS - 3)` bytes of the token hold at least `MIN_DIGITS - 3` more,
/// since no two separators touch, and a shorter token lies in those bytes whole. So a run of
/// three with fewer there starts nothing
/// [`quick_extent`](crate::inspect::detect::number::quick_extent) would let through. (Thirteen
/// bytes for eight digits.)
const REACH: usize = 3 + 2 * (MIN_DIGITS - 3);
/// Positions are tested a window at a time; a window serves the positions whose bytes all lie
/// inside it.
const STEP: usize = WINDOW - BEFORE - AFTER;
/// Window bits of the positions it serves: `BEFORE ..= WINDOW - AFTER - 1`.
const SERVED: u64 = (u64::MAX << BEFORE) & (u64::MAX >> AFTER);
const REACH_BITS: u64 = (1 << REACH) - 1;

/// The first `q` in `from..to` where a BSN, card number or IBAN may start: three digits start
/// there and at least eight of the [`REACH`] bytes from `q` are digits (every BSN and card
/// layout begins with a group of three or more), or two digits follow two letters that follow
/// no letter or digit (an IBAN's check digits, the only place an IBAN match can start its
/// digits). The bytes this looks at may lie outside `from..to`, inside `hay`.
#[inline]
pub(crate) fn find_candidate(hay: &[u8], from: usize, to: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() && std::arch::is_x86_feature_detected!("popcnt") {
        #[allow(
            unsafe_code,
            reason = "calling a function compiled for AVX2 and POPCNT, after checking the CPU has them"
        )]
        // SAFETY: `has_avx2` and the POPCNT check asked the CPU, so the instructions the
        // function is compiled with are there.
        return unsafe { find_candidate_avx2(hay, from, to) };
    }
    search(hay, from, to, digits, letters)
}

/// [`find_candidate`] with the window masks in AVX2, inlined: the closures inherit this
/// function's target features, so `search` and the masks compile into one loop. POPCNT (every
/// AVX2 CPU has it) counts the digits in reach in one instruction instead of a dozen.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn find_candidate_avx2(hay: &[u8], from: usize, to: usize) -> Option<usize> {
    search(hay, from, to, |w| avx2::digits(w), |w| avx2::letters(w))
}

/// The search, with the digit and letter masks of a window passed in.
#[inline(always)]
fn search(
    hay: &[u8],
    from: usize,
    to: usize,
    digits: impl Fn(&[u8; WINDOW]) -> u64,
    letters: impl Fn(&[u8; WINDOW]) -> u64,
) -> Option<usize> {
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
        let below_to = match to - s {
            n if n >= WINDOW => u64::MAX,
            n => (1 << n) - 1,
        };
        // Both shapes start with digits, and most windows of prose have none: then the letters
        // need not be classified at all. (Testing for a pair of digits instead would skip more
        // windows of base64, but at random, and the mispredicted branch cost a fifth there.)
        let digit = digits(window);
        if digit != 0 {
            let pairs = digit & digit >> 1 & SERVED & below_to;
            let letter = letters(window);
            let mut triples = pairs & digit >> 2;
            // Runs of three are one every hundred bytes of office text (dates, amounts) but
            // seldom reach; dropping them here spares the caller a parse of each.
            while triples != 0 {
                let p = triples.trailing_zeros() as usize;
                let reach = match WINDOW - p {
                    n if n >= REACH => (digit >> p & REACH_BITS).count_ones() as usize,
                    _ => digits_in_reach(hay, s + p),
                };
                if reach >= MIN_DIGITS {
                    break;
                }
                triples &= triples - 1;
            }
            let ibans = pairs & (!(digit | letter) & letter >> 1 & letter >> 2) << BEFORE;
            let hits = triples | ibans;
            if hits != 0 {
                return Some(s + hits.trailing_zeros() as usize);
            }
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
    let triple = pair && digit(q.checked_add(2)) && digits_in_reach(hay, q) >= MIN_DIGITS;
    let iban = pair
        && letter(q.checked_sub(1))
        && letter(q.checked_sub(2))
        && !at(q.checked_sub(3)).is_ascii_alphanumeric();
    triple || iban
}

/// Digits among the [`REACH`] bytes from `q`.
fn digits_in_reach(hay: &[u8], q: usize) -> usize {
    let bytes = hay.get(q..).unwrap_or(&[]).iter().take(REACH);
    bytes.fold(0, |n, b| n + usize::from(b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::detect::random_text;

    fn naive(hay: &[u8], from: usize, to: usize) -> Option<usize> {
        (from..to.min(hay.len())).find(|&q| {
            let d = |i: usize| hay.get(i).is_some_and(u8::is_ascii_digit);
            let l = |i: Option<usize>| {
                i.and_then(|i| hay.get(i))
                    .is_some_and(u8::is_ascii_alphabetic)
            };
            let free = q < 3 || !hay[q - 3].is_ascii_alphanumeric();
            let reach = (q..q + 13).filter(|&i| d(i)).count();
            (d(q) && d(q + 1) && d(q + 2) && reach >= 8)
                || (d(q) && d(q + 1) && l(q.checked_sub(1)) && l(q.checked_sub(2)) && free)
        })
    }

    type Search = fn(&[u8], usize, usize) -> Option<usize>;

    /// The SSE2 search, and the one [`find_candidate`] picks for this CPU (AVX2 where it has
    /// it).
    fn searches() -> [(&'static str, Search); 2] {
        [
            ("sse2", |hay, from, to| {
                search(hay, from, to, digits, letters)
            }),
            ("dispatched", find_candidate),
        ]
    }

    #[test]
    fn finds_each_shape_where_a_byte_loop_does() {
        // Runs of three with eight digits in reach and without, an IBAN start, a pair glued to
        // a word (no candidate) and a pair after one letter, at every offset of haystacks
        // around the window size, and every sub-range that starts near them.
        let shapes: [&[u8]; 10] = [
            b"123456789",
            b"123 45 678",
            b"1234.5.6.7.8",
            b"12-03-2025",
            b"1234567",
            b"123.4.5.6.7",
            b" NL91",
            b"xNL91",
            b"-a12",
            b"_nl91x",
        ];
        for shape in shapes {
            for len in [5usize, 8, 13, 20, 63, 64, 65, 66, 70, 76, 77, 127, 130] {
                for at in 0..len.saturating_sub(shape.len() - 1) {
                    let mut hay = vec![b'x'; len];
                    hay[at..at + shape.len()].copy_from_slice(shape);
                    for from in [0, 1, 2, 3, 4, at.saturating_sub(1), at, at + 1, at + 3] {
                        for to in [at, at + 2, at + 4, at + 5, len, len + 3] {
                            for (name, find) in searches() {
                                assert_eq!(
                                    find(&hay, from, to),
                                    naive(&hay, from, to),
                                    "{name}: {:?} {from}..{to}",
                                    String::from_utf8_lossy(&hay)
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_a_byte_loop_on_dense_text() {
        // Half digits, so that runs with eight digits in reach are common.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\
            0123456789012345678901234567890123456789012345678901+/: -.";
        let hay = random_text(0x9E37_79B9_7F4A_7C15, alphabet, 8192);
        for ((name, find), start) in searches()
            .into_iter()
            .flat_map(|s| [(s, 0), (s, 1), (s, 5)])
        {
            let mut from = start;
            let mut found = 0;
            while let Some(q) = find(&hay, from, hay.len()) {
                assert_eq!(Some(q), naive(&hay, from, hay.len()), "{name}");
                found += 1;
                from = q + 1;
            }
            assert_eq!(naive(&hay, from, hay.len()), None, "{name}");
            assert!(found > 20, "the text has candidates to find ({found})");
        }
    }
}
