//! Digit tokens and the checksums that make a number a BSN or a payment card.
//!
//! A token is a run of digit groups joined by single separators (space, dot, hyphen), found at a
//! digit that does not continue an earlier group. Dots and hyphens bind groups into one number;
//! spaces may also separate numbers, so a match may start or end at a space. A match must not
//! touch a letter or digit on either side ("not part of a longer run"). Card checksums and
//! issuer prefixes live in `card`.

use crate::inspect::detect::card::card_valid;

/// Longest token looked at; anything longer is one long number, not a BSN or card.
pub(crate) const MAX_TOKEN: usize = 64;
/// The fewest digits a BSN (an old eight-digit sofinummer) or a card number has.
pub(crate) const MIN_DIGITS: usize = 8;
const MAX_GROUPS: usize = 12;

/// A parsed token: where its groups are and how they are separated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    /// Index one past the token's last digit.
    pub(crate) end: usize,
    groups: [Group; MAX_GROUPS],
    n: usize,
    /// The token touches a word character before its first or after its last digit.
    glued_before: bool,
    glued_after: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Group {
    start: usize,
    len: u8,
    /// Separator before this group (0 for the first).
    sep: u8,
}

/// A number found in a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NumberMatch {
    pub(crate) kind: NumberKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// The digits, left-padded to 9 for an 8-digit BSN.
    pub(crate) digits: [u8; 19],
    pub(crate) len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberKind {
    Bsn,
    Card,
}

pub(crate) fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// Letters, digits and underscore: what a number must not be glued to.
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'.' | b'-')
}

/// Whether a digit at `i` starts a token (does not continue a group before it).
pub(crate) fn starts_token(hay: &[u8], i: usize) -> bool {
    let prev = i.checked_sub(1).and_then(|p| hay.get(p)).copied();
    match prev {
        Some(b) if is_digit(b) => false,
        Some(b) if is_sep(b) => !i
            .checked_sub(2)
            .and_then(|p| hay.get(p))
            .is_some_and(|&b| is_digit(b)),
        _ => true,
    }
}

/// Where the token holding the digit at `at` starts (what [`starts_token`] accepts), looking
/// back no further than `floor`.
pub(crate) fn token_start(hay: &[u8], at: usize, floor: usize) -> usize {
    let mut i = at;
    while i > floor {
        let prev = hay.get(i - 1).copied().unwrap_or(0);
        let glued = is_digit(prev)
            || (is_sep(prev)
                && i.checked_sub(2)
                    .and_then(|p| hay.get(p))
                    .is_some_and(|&b| is_digit(b)));
        if !glued {
            break;
        }
        i -= 1;
    }
    i
}

/// Parses the token starting at `start` (a digit). `None` if it is longer than [`MAX_TOKEN`]
/// or has too many groups: then it is no BSN or card.
pub(crate) fn parse_token(hay: &[u8], start: usize) -> Option<Token> {
    let mut tok = Token {
        end: start,
        groups: [Group::default(); MAX_GROUPS],
        n: 0,
        glued_before: start
            .checked_sub(1)
            .and_then(|p| hay.get(p))
            .is_some_and(|&b| is_word(b)),
        glued_after: false,
    };
    let mut i = start;
    let mut sep = 0u8;
    loop {
        let g_start = i;
        while hay.get(i).is_some_and(|&b| is_digit(b)) {
            i += 1;
        }
        if i - start > MAX_TOKEN || tok.n == MAX_GROUPS {
            return None;
        }
        let slot = tok.groups.get_mut(tok.n)?;
        *slot = Group {
            start: g_start,
            len: u8::try_from(i - g_start).ok()?,
            sep,
        };
        tok.n += 1;
        match (hay.get(i), hay.get(i + 1)) {
            (Some(&s), Some(&d)) if is_sep(s) && is_digit(d) => {
                sep = s;
                i += 1;
            }
            _ => break,
        }
    }
    tok.end = i;
    tok.glued_after = hay.get(i).is_some_and(|&b| is_word(b));
    Some(tok)
}

// === impl Token ===

impl Token {
    /// Finds BSN and card numbers in the token, left to right, longest first. `bsn_context`
    /// says whether a BSN at a span is counted (context rules live with the caller).
    pub(crate) fn matches(
        &self,
        hay: &[u8],
        mut bsn_context: impl FnMut(usize, usize) -> bool,
        mut found: impl FnMut(NumberMatch),
    ) {
        let groups = self.groups.get(..self.n).unwrap_or(&[]);
        if groups.iter().map(|g| usize::from(g.len)).sum::<usize>() < MIN_DIGITS {
            return;
        }
        let mut i = 0;
        while i < groups.len() {
            let next = self.match_at(hay, groups, i, &mut bsn_context);
            match next {
                Some((m, j)) => {
                    found(m);
                    i = j + 1;
                }
                None => i += 1,
            }
        }
    }

    fn match_at(
        &self,
        hay: &[u8],
        groups: &[Group],
        i: usize,
        bsn_context: &mut impl FnMut(usize, usize) -> bool,
    ) -> Option<(NumberMatch, usize)> {
        let first = groups.get(i)?;
        let start_ok = if i == 0 {
            !self.glued_before
        } else {
            first.sep == b' '
        };
        if !start_ok {
            return None;
        }
        let last_j = (i + 5).min(groups.len() - 1);
        for j in (i..=last_j).rev() {
            let end_ok = match groups.get(j + 1) {
                None => !self.glued_after,
                Some(g) => g.sep == b' ',
            };
            let span = groups.get(i..=j)?;
            if !end_ok || !shape_possible(span) || !uniform(span) {
                continue;
            }
            let Some(digits) = collect(hay, span) else {
                continue;
            };
            let end = span.last().map_or(0, |g| g.start + usize::from(g.len));
            let start = first.start;
            if let Some(m) = classify(span, &digits, start, end)
                && (m.kind == NumberKind::Card || bsn_context(start, end))
            {
                return Some((m, j));
            }
        }
        None
    }
}

/// Lengths of the groups in a span, on the stack.
fn lens_of(span: &[Group]) -> ([usize; 6], usize) {
    let mut lens = [0usize; 6];
    for (slot, g) in lens.iter_mut().zip(span) {
        *slot = usize::from(g.len);
    }
    (lens, span.len().min(6))
}

fn shape_possible(span: &[Group]) -> bool {
    let (lens, n) = lens_of(span);
    let lens = lens.get(..n).unwrap_or(&[]);
    card_shape(lens) || bsn_shape(lens)
}

/// The end of the token starting at `start` and how many of its digits a match could use,
/// without recording its groups. Every BSN or card layout starts with a group of at least
/// three digits, so digits before the first such group do not count: a date (`12-03-2025`) or
/// an amount has too few left and stops here, as most digit runs do.
pub(crate) fn quick_extent(hay: &[u8], start: usize) -> (usize, usize) {
    // A token's bytes are `start..lim`; a group is crossed in a tight loop, since a byte in a
    // run of digits needs no other test.
    let lim = (start + MAX_TOKEN + 1).min(hay.len());
    let bytes = hay.get(..lim).unwrap_or(hay);
    let mut i = start;
    let (mut total, mut before_long) = (0usize, None);
    loop {
        let group_start = i;
        while bytes.get(i).is_some_and(|&b| is_digit(b)) {
            i += 1;
        }
        let group = i - group_start;
        if group >= 3 && before_long.is_none() {
            before_long = Some(total);
        }
        total += group;
        match bytes.get(i) {
            Some(&s) if is_sep(s) && hay.get(i + 1).is_some_and(|&d| is_digit(d)) => i += 1,
            _ => return (i, before_long.map_or(0, |b| total - b)),
        }
    }
}

/// All separators inside a match are the same character.
fn uniform(span: &[Group]) -> bool {
    let mut seps = span.iter().skip(1).map(|g| g.sep);
    match seps.next() {
        None => true,
        Some(s) => seps.all(|t| t == s),
    }
}

fn collect(hay: &[u8], span: &[Group]) -> Option<([u8; 19], usize)> {
    let mut out = [0u8; 19];
    let mut n = 0;
    for g in span {
        let digits = hay.get(g.start..g.start + usize::from(g.len))?;
        out.get_mut(n..n + digits.len())?.copy_from_slice(digits);
        n += digits.len();
    }
    Some((out, n))
}

fn classify(
    span: &[Group],
    (digits, n): &([u8; 19], usize),
    start: usize,
    end: usize,
) -> Option<NumberMatch> {
    let (lens_buf, groups) = lens_of(span);
    let lens = lens_buf.get(..groups)?;
    let value = digits.get(..*n)?;
    if card_shape(lens) && card_valid(value) {
        return Some(NumberMatch {
            kind: NumberKind::Card,
            start,
            end,
            digits: *digits,
            len: *n,
        });
    }
    if bsn_shape(lens) {
        let mut padded = [b'0'; 19];
        padded.get_mut(9 - n..9)?.copy_from_slice(value);
        if bsn_valid(padded.get(..9)?) {
            return Some(NumberMatch {
                kind: NumberKind::Bsn,
                start,
                end,
                digits: padded,
                len: 9,
            });
        }
    }
    None
}

/// Ways a BSN is written: 9 digits plain or as 3-3-3, 3-2-2-2, 4-2-3 (the sofinummer habit);
/// an old 8-digit number plain.
fn bsn_shape(lens: &[usize]) -> bool {
    matches!(lens, [9] | [8] | [3, 3, 3] | [3, 2, 2, 2] | [4, 2, 3])
}

/// Ways a card number is written: one run of 13–19 digits, groups of four with a shorter last
/// group, or the 4-6-5 / 4-6-4 layout of Amex and Diners.
fn card_shape(lens: &[usize]) -> bool {
    let total: usize = lens.iter().sum();
    if !(13..=19).contains(&total) {
        return false;
    }
    match lens {
        [_] | [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => {
            init.len() >= 3 && init.iter().all(|&l| l == 4) && (1..=4).contains(last)
        }
        [] => false,
    }
}

/// The eleven-test: Σ dᵢ·wᵢ with weights 9..2, −1 is divisible by 11; all zeros is no number.
pub(crate) fn bsn_valid(digits: &[u8]) -> bool {
    if digits.len() != 9 || digits.iter().all(|&d| d == b'0') {
        return false;
    }
    let sum: i32 = digits
        .iter()
        .zip([9, 8, 7, 6, 5, 4, 3, 2, -1])
        .map(|(&d, w)| i32::from(d.wrapping_sub(b'0')) * w)
        .sum();
    sum.rem_euclid(11) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::detect::random_text;

    fn found(text: &str, context: bool) -> Vec<(NumberKind, String)> {
        let hay = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < hay.len() {
            if is_digit(hay[i])
                && starts_token(hay, i)
                && let Some(tok) = parse_token(hay, i)
            {
                tok.matches(
                    hay,
                    |_, _| context,
                    |m| {
                        let digits = String::from_utf8(m.digits[..m.len].to_vec()).unwrap();
                        out.push((m.kind, digits))
                    },
                );
                i = tok.end;
                continue;
            }
            i += 1;
        }
        out
    }

    #[test]
    fn eleven_test() {
        assert!(bsn_valid(b"123456782"));
        assert!(bsn_valid(b"111222333"));
        assert!(bsn_valid(b"999999990"));
        assert!(!bsn_valid(b"123456789"));
        assert!(!bsn_valid(b"000000000"));
        assert!(!bsn_valid(b"12345678"));
    }

    #[test]
    fn bsn_layouts() {
        for t in [
            "123456782",
            "123 456 782",
            "123.45.67.82",
            "1234.56.782",
            "x 123-456-782.",
        ] {
            assert_eq!(
                found(t, true),
                [(NumberKind::Bsn, "123456782".into())],
                "{t}"
            );
        }
        // 8 digits are left-padded (an old sofinummer).
        assert_eq!(
            found("12345672", true),
            [(NumberKind::Bsn, "012345672".into())]
        );
        assert!(bsn_valid(b"012345672"));
        assert!(found("12345674", true).is_empty());
    }

    #[test]
    fn bsn_needs_context_and_boundaries() {
        assert!(found("123456782", false).is_empty());
        assert!(found("1123456782", true).is_empty(), "longer digit run");
        assert!(found("A123456782", true).is_empty(), "glued to a word");
        assert!(found("1234567820", true).is_empty());
        assert!(found("12.3456782", true).is_empty(), "dot binds groups");
        assert!(found("123 456.782", true).is_empty(), "mixed separators");
        assert_eq!(
            found("06 123456782", true).len(),
            1,
            "space separates numbers"
        );
    }

    #[test]
    fn card_layouts() {
        for t in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "card: 4111 1111 1111 1111, exp",
        ] {
            assert_eq!(
                found(t, false),
                [(NumberKind::Card, "4111111111111111".into())],
                "{t}"
            );
        }
        assert_eq!(found("3782 822463 10005", false)[0].1, "378282246310005");
        assert!(found("41111111111111110", false).is_empty());
        assert!(found("4111 1111 1111 1112", false).is_empty());
        assert!(found("4111-1111 1111-1111", false).is_empty());
    }

    /// The byte loop `quick_extent` was first written as: one byte at a time, a group ended by
    /// a separator that a digit follows.
    fn extent_by_bytes(hay: &[u8], start: usize) -> (usize, usize) {
        let mut i = start;
        let (mut total, mut group, mut before_long) = (0usize, 0usize, None);
        while i - start <= MAX_TOKEN {
            match hay.get(i) {
                Some(&b) if is_digit(b) => {
                    total += 1;
                    group += 1;
                    if group == 3 && before_long.is_none() {
                        before_long = Some(total - 3);
                    }
                }
                Some(&b) if is_sep(b) && hay.get(i + 1).is_some_and(|&d| is_digit(d)) => group = 0,
                _ => break,
            }
            i += 1;
        }
        (i, before_long.map_or(0, |b| total - b))
    }

    #[test]
    fn quick_extent_agrees_with_a_byte_loop() {
        // Digits, separators and a stopper, dense enough for long tokens, and tokens that run
        // into the end of the text or past MAX_TOKEN.
        let alphabet = b"0123456789012345678901234567890123456789 .-x,";
        for len in [1usize, 2, 3, 10, 64, 65, 66, 67, 200, 4000] {
            let hay = random_text(0x853C_49E6_748F_EA9B ^ len as u64, alphabet, len);
            for start in (0..len).filter(|&i| is_digit(hay[i])) {
                assert_eq!(
                    quick_extent(&hay, start),
                    extent_by_bytes(&hay, start),
                    "{:?} from {start}",
                    String::from_utf8_lossy(&hay)
                );
            }
        }
        let long = [b'7'; 100];
        assert_eq!(quick_extent(&long, 0), (MAX_TOKEN + 1, MAX_TOKEN + 1));
        assert_eq!(quick_extent(b"12-03-2025", 0), (10, 4));
        assert_eq!(quick_extent(b"123 456 789.", 0), (11, 9));
    }
}
