//! The detectors through the streaming scanner: context rules, boundaries, chunking.

use proptest::prelude::*;

use super::*;
use crate::inspect::report::{Detection, DetectorKind, LabelFinding};

fn detectors(key: Option<&[u8]>) -> Detectors {
    let config = EngineConfig {
        fingerprint_key: key.map(<[u8]>::to_vec),
        ..EngineConfig::default()
    };
    Detectors::new(&config).unwrap()
}

/// Scans `text` pushed in the given piece sizes (cycled), as one Body stream.
fn scan_split(
    det: &Detectors,
    text: &[u8],
    sizes: &[usize],
) -> (Option<LabelFinding>, Vec<Detection>) {
    let mut s = TextScanner::new();
    let mut rest = text;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let (a, b) = rest.split_at(n);
        s.push(det, a, TextOrigin::Body);
        rest = b;
        i += 1;
    }
    let (findings, _, _) = s.finish(det);
    findings.into_parts()
}

fn scan(text: &str) -> (Option<LabelFinding>, Vec<Detection>) {
    scan_split(&detectors(None), text.as_bytes(), &[])
}

fn count(d: &[Detection], kind: DetectorKind) -> u32 {
    d.iter().find(|x| x.kind == kind).map_or(0, |x| x.count)
}

#[test]
fn bsn_counts_only_with_context() {
    let (_, d) = scan("Klantnummer 123456782 is verwerkt.");
    assert_eq!(count(&d, DetectorKind::Bsn), 0);
    let (_, d) = scan("BSN: 123456782");
    assert_eq!(count(&d, DetectorKind::Bsn), 1);
    let (_, d) = scan("123.45.67.82 is het burgerservicenummer van de klant");
    assert_eq!(count(&d, DetectorKind::Bsn), 1, "keyword after the number");
    let (_, d) = scan("Sofinummer 1234.56.782");
    assert_eq!(count(&d, DetectorKind::Bsn), 1);
    let (_, d) = scan("bsn 123456789");
    assert_eq!(count(&d, DetectorKind::Bsn), 0, "fails the eleven-test");
    let (_, d) = scan("filosofie 123456782");
    assert_eq!(
        count(&d, DetectorKind::Bsn),
        0,
        "'sofi' inside a word is no keyword"
    );
}

#[test]
fn bsn_context_has_a_reach() {
    let far = format!("BSN\n{}\n123456782", "lorem ipsum ".repeat(40));
    assert_eq!(count(&scan(&far).1, DetectorKind::Bsn), 0);
    let near = format!("BSN\n{}\n123456782", "lorem ipsum ".repeat(20));
    assert_eq!(count(&scan(&near).1, DetectorKind::Bsn), 1);
}

#[test]
fn bsn_context_carries_down_a_column() {
    let mut csv = String::from("naam;bsn\n");
    for _ in 0..200 {
        csv.push_str("Jansen;111222333\n");
    }
    let (_, d) = scan(&csv);
    assert_eq!(count(&d, DetectorKind::Bsn), 200);
}

#[test]
fn iban_and_cards_need_no_context() {
    let (_, d) = scan("Graag overmaken naar NL91 ABNA 0417 1643 00 o.v.v. factuur.");
    assert_eq!(count(&d, DetectorKind::Iban), 1);
    assert_eq!(d[0].evidence, ["*****4300"]);
    let (_, d) = scan("IBAN NL91ABNA0417164301 (typo)");
    assert_eq!(count(&d, DetectorKind::Iban), 0);
    let (_, d) = scan("kaart 4111 1111 1111 1111 en 5555555555554444");
    assert_eq!(count(&d, DetectorKind::PaymentCard), 2);
    let (_, d) = scan("order 4111111111111112");
    assert_eq!(count(&d, DetectorKind::PaymentCard), 0);
}

#[test]
fn iban_digits_are_not_counted_again() {
    // The BBAN of this German IBAN is 18 digits that could pass Luhn; only the IBAN counts.
    let (_, d) = scan("bsn DE89 3704 0044 0532 0130 00");
    assert_eq!(count(&d, DetectorKind::Iban), 1);
    assert_eq!(d.len(), 1, "{d:?}");
}

#[test]
fn numbers_behind_short_groups_of_their_token() {
    // The scan passes over a candidate whose token has fewer than eight digits from its first
    // run of three on; what comes before that run in the token must not change a verdict.
    let cases = [
        ("BSN 12 123456782", 1),
        ("BSN 1 2 3 123456782", 1),
        ("BSN 12-03-2025 123456782", 1),
        ("BSN 12-03-2025-123456782", 0),
        ("BSN 1-2-3-4-5-6-782", 0),
        ("BSN 12.345 en 123456782", 1),
        ("BSN 12 345 6782", 0),
    ];
    for (text, want) in cases {
        assert_eq!(count(&scan(text).1, DetectorKind::Bsn), want, "{text}");
    }
    let (_, d) = scan("kaart 12 4111 1111 1111 1111 en 07-12 5555555555554444");
    assert_eq!(count(&d, DetectorKind::PaymentCard), 2);
    let (_, d) = scan("rekening 12 NL91 ABNA 0417 1643 00 en 1-NL91ABNA0417164300");
    assert_eq!(count(&d, DetectorKind::Iban), 2);
}
#[test]
fn markings_in_body_text() {
    let (label, _) = scan("Jaarplan 2025\n\nKPN Vertrouwelijk\n\nInleiding ...");
    assert_eq!(
        label.map(|l| (l.level, l.source)),
        Some((Level::Confidential, LabelSource::Body))
    );
    let (label, _) = scan("Wij behandelen uw gegevens vertrouwelijk.\n");
    assert_eq!(label, None);
    let (label, _) = scan("<html><body><p>Geheim</p><p>tekst</p></body></html>");
    assert_eq!(label.map(|l| l.level), Some(Level::Secret));
    let (label, _) = scan("intern");
    assert_eq!(
        label.map(|l| l.level),
        Some(Level::Internal),
        "at end of stream"
    );
}

#[test]
fn markings_by_origin() {
    let det = detectors(None);
    let mut s = TextScanner::new();
    s.push(
        &det,
        b"Pagina 1 - KPN Vertrouwelijk",
        TextOrigin::HeaderFooter,
    );
    s.push(&det, b"wij behandelen uw gegevens geheim", TextOrigin::Body);
    let (f, _, _) = s.finish(&det);
    let label = f.into_parts().0.unwrap();
    assert_eq!(
        (label.level, label.source),
        (Level::Confidential, LabelSource::HeaderFooter)
    );

    let mut s = TextScanner::new();
    s.push(&det, b"plannen/Geheim-cijfers.xlsx", TextOrigin::FileName);
    let (f, _, _) = s.finish(&det);
    let label = f.into_parts().0.unwrap();
    assert_eq!(
        (label.level, label.source),
        (Level::Secret, LabelSource::FileName)
    );
}

#[test]
fn end_text_separates_streams() {
    let det = detectors(None);
    let mut s = TextScanner::new();
    s.push(&det, b"BSN: 1234", TextOrigin::Body);
    s.end(&det);
    s.push(&det, b"56782", TextOrigin::Body);
    let (f, _, _) = s.finish(&det);
    assert_eq!(f.count(DetectorKind::Bsn), 0);
    let mut s = TextScanner::new();
    s.push(&det, b"BSN: 1234", TextOrigin::Body);
    s.push(&det, b"56782", TextOrigin::Body);
    let (f, _, _) = s.finish(&det);
    assert_eq!(f.count(DetectorKind::Bsn), 1);
}

#[test]
fn secrets_and_masks() {
    let (_, d) = scan(
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\ntoken ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
    );
    assert_eq!(count(&d, DetectorKind::CloudKey), 1);
    assert_eq!(count(&d, DetectorKind::ApiToken), 1);
    let all: Vec<&String> = d.iter().flat_map(|x| &x.evidence).collect();
    assert_eq!(all, ["AKIA************", "ghp_************"]);
}

#[test]
fn anchors_searched_from_their_middle_survive_every_split() {
    let pat = format!("github_pat_{}", "a1_".repeat(27) + "z");
    for token in [
        pat.as_str(),
        "glpat-abcdefghij0123456789",
        "xoxb-1234567890-abcdefghijkl",
    ] {
        // Pushed at once, and around the seam of two large pushes.
        for filler in [10, 2000] {
            let text = format!("{} {token} end", "lorem ".repeat(filler / 6));
            let at = text.find(token).unwrap();
            for cut in at.saturating_sub(8)..at + 12 {
                let (_, d) = scan_split(&detectors(None), text.as_bytes(), &[cut, text.len()]);
                assert_eq!(count(&d, DetectorKind::ApiToken), 1, "{token} cut at {cut}");
            }
        }
    }
}

#[test]
fn fingerprints_only_with_a_key() {
    let text = b"BSN 111222333, bsn 111 222 333, bsn 123456782";
    let (_, d) = scan_split(&detectors(None), text, &[]);
    assert!(d[0].fingerprints.is_empty());
    let (_, d) = scan_split(&detectors(Some(b"secret-key")), text, &[]);
    assert_eq!(d[0].count, 3);
    assert_eq!(d[0].fingerprints.len(), 2, "two distinct values");
    let (_, again) = scan_split(&detectors(Some(b"secret-key")), b"BSN 111222333", &[]);
    assert_eq!(
        again[0].fingerprints[0], d[0].fingerprints[0],
        "normalised: separators ignored"
    );
}

#[test]
fn text_budget_is_a_limit() {
    let det = detectors(None);
    let mut s = TextScanner::new();
    let mut budget = 10u64;
    let mut sink = DetectSink {
        detectors: &det,
        scanner: &mut s,
        budget: &mut budget,
    };
    sink.text(b"BSN 123456782 and more", TextOrigin::Body);
    let (f, bytes, limit) = s.finish(&det);
    assert_eq!(bytes, 10);
    assert_eq!(f.count(DetectorKind::Bsn), 0);
    assert_eq!(
        limit.map(|l| l.kind),
        Some(crate::inspect::report::LimitKind::Buffer)
    );
}

// --- property tests ---

fn bsn_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..10, 8).prop_filter_map("no valid check digit", |d| {
        let sum: i32 = d
            .iter()
            .zip([9, 8, 7, 6, 5, 4, 3, 2])
            .map(|(&x, w)| i32::from(x) * w)
            .sum();
        let check = sum.rem_euclid(11);
        (check < 10 && d.iter().any(|&x| x != 0)).then(|| {
            d.iter()
                .chain([&u8::try_from(check).unwrap()])
                .map(|x| char::from(b'0' + x))
                .collect()
        })
    })
}

fn luhn_complete(prefix: &str, len: usize, fill: &[u8]) -> String {
    let mut digits: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    digits.extend(fill.iter().take(len - 1 - digits.len()));
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    digits.push(u8::try_from((10 - sum % 10) % 10).unwrap());
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

fn card_strategy() -> impl Strategy<Value = String> {
    let brands = prop_oneof![
        Just(("4", 16)),
        Just(("51", 16)),
        Just(("2221", 16)),
        Just(("2720", 16)),
        Just(("34", 15)),
        Just(("37", 15)),
        Just(("6011", 16)),
        Just(("65", 19)),
        Just(("3528", 16)),
        Just(("62", 17)),
        Just(("4", 13)),
    ];
    (brands, proptest::collection::vec(0u8..10, 19))
        .prop_map(|((p, len), fill)| luhn_complete(p, len, &fill))
}

fn iban_strategy() -> impl Strategy<Value = String> {
    let countries = prop_oneof![
        Just(("NL", 18)),
        Just(("BE", 16)),
        Just(("DE", 22)),
        Just(("FR", 27)),
        Just(("GB", 22)),
        Just(("ES", 24)),
        Just(("IT", 27)),
        Just(("LU", 20)),
        Just(("MT", 31)),
        Just(("NO", 15)),
    ];
    (countries, proptest::collection::vec(0u8..10, 30)).prop_map(|((cc, len), fill)| {
        let bban: String = fill
            .iter()
            .take(len - 4)
            .map(|d| char::from(b'0' + d))
            .collect();
        let rearranged = format!("{bban}{cc}00");
        let rem = rearranged.bytes().fold(0u32, |r, b| {
            if b.is_ascii_digit() {
                (r * 10 + u32::from(b - b'0')) % 97
            } else {
                (r * 100 + u32::from(b - b'A') + 10) % 97
            }
        });
        format!("{cc}{:02}{bban}", 98 - rem)
    })
}

/// Changes one digit (not the first two characters of an IBAN).
fn corrupt(value: &str, at: usize, delta: u8) -> String {
    let mut b = value.as_bytes().to_vec();
    let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
    let i = digits[at % digits.len()];
    b[i] = b'0' + (b[i] - b'0' + delta) % 10;
    String::from_utf8(b).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_bsns_are_found(bsn in bsn_strategy(), at in 0usize..9, delta in 1u8..10) {
        let (_, d) = scan(&format!("Het BSN is {bsn}."));
        prop_assert_eq!(count(&d, DetectorKind::Bsn), 1);
        let bad = corrupt(&bsn, at, delta);
        let (_, d) = scan(&format!("Het BSN is {bad}."));
        prop_assert_eq!(count(&d, DetectorKind::Bsn), 0);
    }

    #[test]
    fn generated_cards_are_found(card in card_strategy(), at in 0usize..19, delta in 1u8..10) {
        let (_, d) = scan(&format!("card {card} exp"));
        prop_assert_eq!(count(&d, DetectorKind::PaymentCard), 1, "{}", card);
        // Changing any single digit breaks Luhn (or the issuer prefix).
        let bad = corrupt(&card, at, delta);
        let (_, d) = scan(&format!("card {bad} exp"));
        prop_assert_eq!(count(&d, DetectorKind::PaymentCard), 0, "{}", bad);
    }

    #[test]
    fn generated_ibans_are_found(iban in iban_strategy(), at in 0usize..30, delta in 1u8..10) {
        let (_, d) = scan(&format!("rekening {iban} t.n.v."));
        prop_assert_eq!(count(&d, DetectorKind::Iban), 1, "{}", iban);
        let grouped: String = iban.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ");
        let (_, d) = scan(&format!("rekening {grouped} t.n.v."));
        prop_assert_eq!(count(&d, DetectorKind::Iban), 1, "{}", grouped);
        let bad = corrupt(&iban, at, delta);
        let (_, d) = scan(&format!("rekening {bad} t.n.v."));
        prop_assert_eq!(count(&d, DetectorKind::Iban), 0, "{}", bad);
    }

    #[test]
    fn findings_do_not_depend_on_chunking(
        seed in proptest::collection::vec((0usize..15, 0usize..400), 1..60),
        sizes in proptest::collection::vec(1usize..2000, 1..8),
    ) {
        let pieces = [
            "BSN: 111222333\n", "lorem ipsum dolor sit amet ", "KPN Vertrouwelijk\n",
            "NL91 ABNA 0417 1643 00 ", "4111 1111 1111 1111\n", "AKIAIOSFODNN7EXAMPLE ",
            "123456782 ", "\n", "Geheim", "ghp_abcdefghijklmnopqrstuvwxyz0123456789 ",
            "2025-01-01 12:30 ", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5wD6ugIoTLeCZoAoGCCqGSM49\n",
            // Anchors searched from their middle: the bytes before may sit in the previous piece.
            "github_pat_11ABCDEFG0abcdefghijklmn_opqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghi ",
            "glpat-abcdefghij0123456789 ", "xoxb-1234567890-1234567890-abcdefghijkl\n",
        ];
        let mut text = String::new();
        for (k, filler) in &seed {
            text.push_str(pieces[*k]);
            text.push_str(&"x ".repeat(*filler % 200));
        }
        let det = detectors(Some(b"k"));
        let whole = scan_split(&det, text.as_bytes(), &[]);
        let split = scan_split(&det, text.as_bytes(), &sizes);
        prop_assert_eq!(&whole, &split);
        let bytewise = scan_split(&det, text.as_bytes(), &[1, 7]);
        prop_assert_eq!(whole, bytewise);
    }
}
