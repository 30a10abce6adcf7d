//! IBAN: country code, two check digits, a BBAN of the country's length; mod 97 == 1.
//!
//! Written compact (`NL91ABNA0417164300`) or in groups of four (`NL91 ABNA 0417 1643 00`). The
//! scan finds a candidate where a digit run starts right after two letters; this module
//! validates it.

/// IBAN lengths per country: SEPA and the other registry countries.
#[rustfmt::skip]
const LENGTHS: &[([u8; 2], usize)] = &[
    (*b"AD", 24), (*b"AE", 23), (*b"AL", 28), (*b"AT", 20), (*b"AZ", 28), (*b"BA", 20),
    (*b"BE", 16), (*b"BG", 22), (*b"BH", 22), (*b"BR", 29), (*b"BY", 28), (*b"CH", 21),
    (*b"CR", 22), (*b"CY", 28), (*b"CZ", 24), (*b"DE", 22), (*b"DK", 18), (*b"DO", 28),
    (*b"EE", 20), (*b"EG", 29), (*b"ES", 24), (*b"FI", 18), (*b"FO", 18), (*b"FR", 27),
    (*b"GB", 22), (*b"GE", 22), (*b"GI", 23), (*b"GL", 18), (*b"GR", 27), (*b"GT", 28),
    (*b"HR", 21), (*b"HU", 28), (*b"IE", 22), (*b"IL", 23), (*b"IQ", 23), (*b"IS", 26),
    (*b"IT", 27), (*b"JO", 30), (*b"KW", 30), (*b"KZ", 20), (*b"LB", 28), (*b"LC", 32),
    (*b"LI", 21), (*b"LT", 20), (*b"LU", 20), (*b"LV", 21), (*b"MC", 27), (*b"MD", 24),
    (*b"ME", 22), (*b"MK", 19), (*b"MR", 27), (*b"MT", 31), (*b"MU", 30), (*b"NL", 18),
    (*b"NO", 15), (*b"PK", 24), (*b"PL", 28), (*b"PS", 29), (*b"PT", 25), (*b"QA", 29),
    (*b"RO", 24), (*b"RS", 22), (*b"SA", 24), (*b"SC", 31), (*b"SE", 24), (*b"SI", 19),
    (*b"SK", 24), (*b"SM", 27), (*b"ST", 25), (*b"SV", 28), (*b"TL", 23), (*b"TN", 24),
    (*b"TR", 26), (*b"UA", 29), (*b"VA", 22), (*b"VG", 24), (*b"XK", 20),
];

/// A validated IBAN: where it ends in the haystack and its compact uppercase form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IbanMatch {
    pub(crate) end: usize,
    pub(crate) value: [u8; 34],
    pub(crate) len: usize,
}

/// [`LENGTHS`] by country code (`A`..`Z` twice), 0 for none: base64 text offers a candidate at
/// most `+` and `/`, so the lookup is one load rather than a search.
const BY_CODE: [u8; 26 * 26] = {
    let mut table = [0u8; 26 * 26];
    let mut i = 0;
    while i < LENGTHS.len() {
        let ([a, b], n) = LENGTHS[i];
        table[(a - b'A') as usize * 26 + (b - b'A') as usize] = n as u8;
        i += 1;
    }
    table
};

pub(crate) fn country_length(cc: [u8; 2]) -> Option<usize> {
    let [a, b] = cc;
    if !a.is_ascii_uppercase() || !b.is_ascii_uppercase() {
        return None;
    }
    let n = *BY_CODE.get(usize::from(a - b'A') * 26 + usize::from(b - b'A'))?;
    (n > 0).then_some(usize::from(n))
}

/// Validates an IBAN starting at `start` (its country code). The byte before `start`, if any,
/// must not be a letter or digit; so must the byte after the IBAN.
pub(crate) fn parse_at(hay: &[u8], start: usize) -> Option<IbanMatch> {
    if start
        .checked_sub(1)
        .and_then(|p| hay.get(p))
        .is_some_and(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let cc = [
        hay.get(start)?.to_ascii_uppercase(),
        hay.get(start + 1)?.to_ascii_uppercase(),
    ];
    let want = country_length(cc)?;
    // In dense text (base64, hex) a candidate is mostly a run of letters and digits longer
    // than the country's IBAN; that alone rejects it, before the byte-by-byte parse below.
    let run = hay
        .get(start..)
        .unwrap_or(&[])
        .iter()
        .take(want + 1)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if run > want {
        return None;
    }
    let mut value = [0u8; 34];
    let mut len = 0;
    let mut i = start;
    while len < want {
        let b = *hay.get(i)?;
        if b == b' '
            && len % 4 == 0
            && len > 0
            && hay.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            i += 1;
            continue;
        }
        if !b.is_ascii_alphanumeric() {
            return None;
        }
        *value.get_mut(len)? = b.to_ascii_uppercase();
        len += 1;
        i += 1;
    }
    if hay.get(i).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (check, bban) = (value.get(2..4)?, value.get(4..len)?);
    if !check.iter().all(u8::is_ascii_digit) || !mod97_is_one(bban, cc, check) {
        return None;
    }
    Some(IbanMatch { end: i, value, len })
}

/// ISO 13616: move country and check digits to the end, letters become 10..35, mod 97 == 1.
fn mod97_is_one(bban: &[u8], cc: [u8; 2], check: &[u8]) -> bool {
    let mut rem: u32 = 0;
    let mut push = |b: u8| {
        if b.is_ascii_digit() {
            rem = (rem * 10 + u32::from(b - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(b - b'A') + 10) % 97;
        }
    };
    bban.iter()
        .chain(cc.iter())
        .chain(check)
        .for_each(|&b| push(b));
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Option<String> {
        parse_at(text.as_bytes(), 0).map(|m| String::from_utf8(m.value[..m.len].to_vec()).unwrap())
    }

    #[test]
    fn valid_ibans_in_both_layouts() {
        for (text, want) in [
            ("NL91ABNA0417164300", "NL91ABNA0417164300"),
            ("NL91 ABNA 0417 1643 00", "NL91ABNA0417164300"),
            ("NL91ABNA 0417 1643 00", "NL91ABNA0417164300"),
            ("nl91abna0417164300", "NL91ABNA0417164300"),
            ("BE68539007547034", "BE68539007547034"),
            ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
            ("FR1420041010050500013M02606", "FR1420041010050500013M02606"),
            ("GB29NWBK60161331926819", "GB29NWBK60161331926819"),
            ("ES9121000418450200051332", "ES9121000418450200051332"),
            ("IT60X0542811101000000123456", "IT60X0542811101000000123456"),
            ("LU280019400644750000", "LU280019400644750000"),
        ] {
            assert_eq!(value(text).as_deref(), Some(want), "{text}");
        }
    }

    #[test]
    fn the_lookup_table_holds_every_country_and_nothing_else() {
        for (cc, n) in LENGTHS {
            assert_eq!(country_length(*cc), Some(*n), "{cc:?}");
        }
        let known = (b'A'..=b'Z')
            .flat_map(|a| (b'A'..=b'Z').map(move |b| [a, b]))
            .filter(|cc| country_length(*cc).is_some())
            .count();
        assert_eq!(known, LENGTHS.len());
        assert_eq!(country_length(*b"nl"), None, "codes come upper-cased");
        assert_eq!(country_length(*b"N1"), None);
        assert_eq!(country_length(*b"AD"), Some(24));
        assert_eq!(country_length(*b"NL"), Some(18));
        assert_eq!(country_length(*b"XK"), Some(20));
        assert_eq!(country_length(*b"US"), None);
    }

    #[test]
    fn invalid_ibans() {
        assert_eq!(value("NL91ABNA0417164301"), None, "checksum");
        assert_eq!(value("NL91ABNA041716430"), None, "too short");
        assert_eq!(value("NL91ABNA04171643001"), None, "too long");
        assert_eq!(value("XX91ABNA0417164300"), None, "unknown country");
        assert_eq!(value("NL91  ABNA 0417 1643 00"), None, "double space");
        assert_eq!(parse_at(b"ANL91ABNA0417164300", 1), None, "glued");
    }
}
