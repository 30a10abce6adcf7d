//! Payment card numbers: Luhn check digit and a known issuer prefix for the length.

/// Luhn checksum.
pub(crate) fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let v = u32::from(d.wrapping_sub(b'0'));
            if i % 2 == 1 {
                let dv = v * 2;
                if dv > 9 { dv - 9 } else { dv }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Luhn plus an issuer prefix that is known for this length.
pub(crate) fn card_valid(digits: &[u8]) -> bool {
    issuer_known(digits) && luhn_valid(digits) && !digits.iter().all(|&d| d == digits[0])
}

fn issuer_known(digits: &[u8]) -> bool {
    let n = digits.len();
    let prefix = |k: usize| -> u32 {
        digits
            .iter()
            .take(k)
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d.wrapping_sub(b'0')))
    };
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    let visa = p1 == 4 && matches!(n, 13 | 16 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16;
    let amex = matches!(p2, 34 | 37) && n == 15;
    let discover = (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && n >= 16;
    let jcb = (3528..=3589).contains(&p4) && n >= 16;
    let diners = (p2 == 36 || (300..=305).contains(&p3)) && n >= 14;
    let unionpay = p2 == 62 && n >= 16;
    let maestro =
        (p2 == 50 || (56..=58).contains(&p2) || p2 == 67 || matches!(p4, 6304 | 6759)) && n >= 13;
    visa || mastercard || amex || discover || jcb || diners || unionpay || maestro
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_issuers() {
        assert!(card_valid(b"4111111111111111"));
        assert!(card_valid(b"5555555555554444"));
        assert!(card_valid(b"2223003122003222"));
        assert!(card_valid(b"378282246310005"));
        assert!(card_valid(b"6011111111111117"));
        assert!(card_valid(b"3530111333300000"));
        assert!(card_valid(b"6200000000000005"));
        assert!(!card_valid(b"4111111111111112"), "Luhn fails");
        assert!(!card_valid(b"9111111111111119"), "unknown issuer");
        assert!(!card_valid(b"37828224631000"), "Amex must be 15 digits");
        assert!(!card_valid(b"0000000000000000"));
    }
}
