//! Byte classes of 64 bytes at a time, as bit masks (bit `k` for byte `k`). The detectors test
//! every byte of inspected text; the compiler does not turn a byte loop into vector compares
//! and mask moves by itself, so x86-64 uses SSE2, which every x86-64 CPU has, and AVX2 where
//! the CPU has it: two 32-byte compares per class instead of four 16-byte ones. AVX2 is not
//! the x86-64 baseline, so its functions run only after [`has_avx2`] said yes, and code that
//! wants them inlined runs inside a function compiled for AVX2 (see `digits::find_candidate`).
//! Other targets use the byte loop. The SSE2 wrappers are `#[inline]`: they are called once per
//! window from other modules, and without the hint they stayed calls.

use memchr::memchr3;

/// Bytes per mask.
pub(super) const WINDOW: usize = 64;

/// Bytes that end a line or a markup-delimited run of text (a marking's segment).
pub(super) const DELIMITERS: [u8; 3] = [b'\n', b'<', b'>'];

/// Bit `k` is set when `w[k]` is an ASCII digit.
#[cfg(target_arch = "x86_64")]
#[allow(
    unsafe_code,
    reason = "calling a target-feature function; the feature is the target's baseline"
)]
#[inline]
pub(super) fn digits(w: &[u8; WINDOW]) -> u64 {
    // SAFETY: SSE2 is part of every x86-64 CPU (the target's baseline), so the target feature
    // `sse2::digits` asks for is always there.
    unsafe { sse2::digits(w) }
}

/// Bit `k` is set when `w[k]` is an ASCII letter.
#[cfg(target_arch = "x86_64")]
#[allow(
    unsafe_code,
    reason = "calling a target-feature function; the feature is the target's baseline"
)]
#[inline]
pub(super) fn letters(w: &[u8; WINDOW]) -> u64 {
    // SAFETY: as for `digits`, SSE2 is the x86-64 baseline.
    unsafe { sse2::letters(w) }
}

/// Bit `k` is set when `w[k]` is one of [`DELIMITERS`].
#[cfg(target_arch = "x86_64")]
#[allow(
    unsafe_code,
    reason = "calling a target-feature function; the feature is the target's baseline"
)]
#[inline]
pub(super) fn delimiters(w: &[u8; WINDOW]) -> u64 {
    // SAFETY: as for `digits`, SSE2 is the x86-64 baseline.
    unsafe { sse2::delimiters(w) }
}

/// Whether this CPU has AVX2. std detects it once and caches the answer, so this is a load and
/// a test.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn digits(w: &[u8; WINDOW]) -> u64 {
    mask_of(w, u8::is_ascii_digit)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn letters(w: &[u8; WINDOW]) -> u64 {
    mask_of(w, u8::is_ascii_alphabetic)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn delimiters(w: &[u8; WINDOW]) -> u64 {
    mask_of(w, |b| DELIMITERS.contains(b))
}

/// The mask of the bytes that pass `test`, byte by byte: the fallback, and the reference the
/// vector code is tested against.
pub(super) fn mask_of(bytes: &[u8], test: impl Fn(&u8) -> bool) -> u64 {
    bytes
        .iter()
        .take(WINDOW)
        .enumerate()
        .fold(0, |m, (k, b)| m | u64::from(test(b)) << k)
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    use super::{DELIMITERS, WINDOW};

    /// Sixteen bytes of the window, for one compare: a plain unaligned load.
    #[inline]
    fn lane(w: &[u8; WINDOW], k: usize) -> __m128i {
        let mut b = [0u8; 16];
        b.copy_from_slice(w.get(16 * k..16 * k + 16).unwrap_or(&[0; 16]));
        bytemuck::cast(b)
    }

    /// Shifts a byte range down to `-128..`, where one signed compare tests it: `b` is in
    /// `lo..lo + n` exactly when `b + (0x80 - lo)` (wrapping) is below `-128 + n`.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn in_range(v: __m128i, lo: u8, n: u8) -> u32 {
        let shifted = _mm_add_epi8(v, _mm_set1_epi8(0x80u8.wrapping_sub(lo).cast_signed()));
        let below = _mm_set1_epi8((0x80u8 + n).cast_signed());
        _mm_movemask_epi8(_mm_cmplt_epi8(shifted, below)).cast_unsigned()
    }

    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn digits(w: &[u8; WINDOW]) -> u64 {
        let mut mask = 0u64;
        for k in 0..WINDOW / 16 {
            mask |= u64::from(in_range(lane(w, k), b'0', 10)) << (16 * k);
        }
        mask
    }

    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn letters(w: &[u8; WINDOW]) -> u64 {
        let mut mask = 0u64;
        for k in 0..WINDOW / 16 {
            let lower = _mm_or_si128(lane(w, k), _mm_set1_epi8(0x20));
            mask |= u64::from(in_range(lower, b'a', 26)) << (16 * k);
        }
        mask
    }

    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn delimiters(w: &[u8; WINDOW]) -> u64 {
        let [a, b, c] = DELIMITERS.map(|d| _mm_set1_epi8(d.cast_signed()));
        let mut mask = 0u64;
        for k in 0..WINDOW / 16 {
            let v = lane(w, k);
            let hit = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, a), _mm_cmpeq_epi8(v, b)),
                _mm_cmpeq_epi8(v, c),
            );
            mask |= u64::from(_mm_movemask_epi8(hit).cast_unsigned()) << (16 * k);
        }
        mask
    }
}

/// The masks with AVX2. These are safe to call only from code compiled for AVX2, which in turn
/// runs only after [`has_avx2`] said yes.
#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi8, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };

    use super::{DELIMITERS, WINDOW};

    /// Thirty-two bytes of the window, for one compare: a plain unaligned load, as in
    /// `sse2::lane`. (Assembled from four 8-byte pieces, the compiler joined them with
    /// shuffles where the function was not inlined.)
    #[target_feature(enable = "avx2")]
    #[inline]
    fn half(w: &[u8; WINDOW], k: usize) -> __m256i {
        let mut b = [0u8; 32];
        b.copy_from_slice(w.get(32 * k..32 * k + 32).unwrap_or(&[0; 32]));
        bytemuck::cast(b)
    }

    /// As `sse2::in_range`: `b` is in `lo..lo + n` exactly when `b + (0x80 - lo)` (wrapping)
    /// is below `-128 + n`, as signed bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn in_range(v: __m256i, lo: u8, n: u8) -> u32 {
        let shifted = _mm256_add_epi8(v, _mm256_set1_epi8(0x80u8.wrapping_sub(lo).cast_signed()));
        let below = _mm256_set1_epi8((0x80u8 + n).cast_signed());
        _mm256_movemask_epi8(_mm256_cmpgt_epi8(below, shifted)).cast_unsigned()
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(in crate::inspect::detect) fn digits(w: &[u8; WINDOW]) -> u64 {
        let lo = in_range(half(w, 0), b'0', 10);
        let hi = in_range(half(w, 1), b'0', 10);
        u64::from(lo) | u64::from(hi) << 32
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(in crate::inspect::detect) fn letters(w: &[u8; WINDOW]) -> u64 {
        let lower = |k| _mm256_or_si256(half(w, k), _mm256_set1_epi8(0x20));
        let lo = in_range(lower(0), b'a', 26);
        let hi = in_range(lower(1), b'a', 26);
        u64::from(lo) | u64::from(hi) << 32
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(in crate::inspect::detect) fn delimiters(w: &[u8; WINDOW]) -> u64 {
        let [a, b, c] = DELIMITERS.map(|d| _mm256_set1_epi8(d.cast_signed()));
        let hits = |k| {
            let v = half(w, k);
            let hit = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(v, a), _mm256_cmpeq_epi8(v, b)),
                _mm256_cmpeq_epi8(v, c),
            );
            _mm256_movemask_epi8(hit).cast_unsigned()
        };
        u64::from(hits(0)) | u64::from(hits(1)) << 32
    }
}

/// Where the first of [`DELIMITERS`] in `bytes` is, by memchr3: for one search over a stretch,
/// where there are no window masks to reuse.
pub(super) fn first_delimiter(bytes: &[u8]) -> Option<usize> {
    let [a, b, c] = DELIMITERS;
    memchr3(a, b, c, bytes)
}

/// Calls `f` with the position of each of [`DELIMITERS`] in `hay[from..to]`, in order.
pub(super) fn each_delimiter(hay: &[u8], from: usize, to: usize, f: impl FnMut(usize)) {
    each_delimiter_with(hay, from, to, true, f);
}

/// With `avx2`, the masks use AVX2 if the CPU has it (tests turn it off to check SSE2).
fn each_delimiter_with(hay: &[u8], from: usize, to: usize, avx2: bool, mut f: impl FnMut(usize)) {
    #[cfg(target_arch = "x86_64")]
    if avx2 && has_avx2() {
        #[allow(
            unsafe_code,
            reason = "calling a function compiled for AVX2, after checking the CPU has it"
        )]
        // SAFETY: `has_avx2` asked the CPU, so the instructions the function is compiled with
        // are there.
        return unsafe { each_delimiter_avx2(hay, from, to, &mut f) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx2;
    walk_delimiters(hay, from, to, delimiters, &mut f);
}

/// [`each_delimiter`] with the AVX2 mask and `f` inlined into one loop: a line of office text
/// is about one window, so a call per window and per line cost as much as the mask.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn each_delimiter_avx2(hay: &[u8], from: usize, to: usize, f: &mut impl FnMut(usize)) {
    walk_delimiters(hay, from, to, |w| avx2::delimiters(w), f);
}

/// After this many windows without a delimiter the text has no lines to speak of (base64 in
/// one piece, minified JSON), and memchr's wider loop crosses it faster than masks do. In
/// text with lines, a mask per window costs less than a memchr call per line.
const QUIET_WINDOWS: u8 = 2;

#[inline(always)]
fn walk_delimiters(
    hay: &[u8],
    from: usize,
    to: usize,
    mask: impl Fn(&[u8; WINDOW]) -> u64,
    f: &mut impl FnMut(usize),
) {
    let to = to.min(hay.len());
    let mut base = from;
    let mut quiet = 0;
    while base < to {
        let left = to - base;
        let mut bits = match hay
            .get(base..base + WINDOW)
            .and_then(|w| <&[u8; WINDOW]>::try_from(w).ok())
        {
            Some(window) if left >= WINDOW => mask(window),
            Some(window) => mask(window) & ((1 << left) - 1),
            None => mask_of(hay.get(base..to).unwrap_or(&[]), |b| DELIMITERS.contains(b)),
        };
        if bits == 0 {
            base += WINDOW;
            quiet += 1;
            if quiet >= QUIET_WINDOWS {
                let rest = hay.get(base..to).unwrap_or(&[]);
                base = first_delimiter(rest).map_or(to, |k| base + k);
            }
            continue;
        }
        quiet = 0;
        while bits != 0 {
            f(base + bits.trailing_zeros() as usize);
            bits &= bits - 1;
        }
        base += WINDOW;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_flag_exactly_digits_letters_and_delimiters() {
        let mut w = [0u8; WINDOW];
        for b in 0u8..=255 {
            for (k, x) in w.iter_mut().enumerate() {
                *x = if (k + usize::from(b)) % 3 == 1 {
                    b
                } else {
                    b'-'
                };
            }
            assert_eq!(digits(&w), mask_of(&w, u8::is_ascii_digit), "{b:#x}");
            assert_eq!(letters(&w), mask_of(&w, u8::is_ascii_alphabetic), "{b:#x}");
            assert_eq!(
                delimiters(&w),
                mask_of(&w, |x| DELIMITERS.contains(x)),
                "{b:#x}"
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_masks_flag_exactly_digits_letters_and_delimiters() {
        if !has_avx2() {
            eprintln!("this CPU has no AVX2: the AVX2 masks are never used here");
            return;
        }
        #[allow(
            unsafe_code,
            reason = "calling the AVX2 check after checking the CPU has it"
        )]
        // SAFETY: `has_avx2` said the CPU has AVX2.
        unsafe {
            check_avx2_masks();
        }
    }

    /// Every byte value at every position of the window, against the byte loop: each of the
    /// two 32-byte halves, and the seam between them, see every value.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn check_avx2_masks() {
        let mut w = [0u8; WINDOW];
        for b in 0u8..=255 {
            for shift in 0..3 {
                for (k, x) in w.iter_mut().enumerate() {
                    *x = if (k + shift) % 3 == 0 { b } else { b'-' };
                }
                let at = format!("{b:#x}, every third byte from {shift}");
                assert_eq!(avx2::digits(&w), mask_of(&w, u8::is_ascii_digit), "{at}");
                let letter = mask_of(&w, u8::is_ascii_alphabetic);
                assert_eq!(avx2::letters(&w), letter, "{at}");
                let delimiter = mask_of(&w, |x| DELIMITERS.contains(x));
                assert_eq!(avx2::delimiters(&w), delimiter, "{at}");
            }
        }
    }

    #[test]
    fn delimiter_positions_are_every_delimiter_in_range() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Dense delimiters, and long stretches without one (where the memchr skip is taken).
        for one_in in [3u64, 150] {
            for len in [0usize, 1, 63, 64, 65, 127, 128, 129, 300, 1000, 5000] {
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        let r = next();
                        if r % one_in == 0 {
                            DELIMITERS[(r >> 32) as usize % 3]
                        } else {
                            b'a'
                        }
                    })
                    .collect();
                for from in [0, 1, 31, 63, 64, 65, 100, 333] {
                    for to in [0, 1, 64, 65, 128, 200, 700, len, len + 5] {
                        let want: Vec<usize> = (from..to.min(len))
                            .filter(|&i| DELIMITERS.contains(&hay[i]))
                            .collect();
                        for avx2 in [false, true] {
                            let mut got = Vec::new();
                            each_delimiter_with(&hay, from, to, avx2, |d| got.push(d));
                            let at = format!("1 in {one_in}, len {len}, {from}..{to}");
                            assert_eq!(got, want, "{at}, AVX2 allowed: {avx2}");
                        }
                    }
                }
            }
        }
    }
}
