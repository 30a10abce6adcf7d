//! Keyed fingerprints of detected values: HMAC-SHA256 under a secret key over a normalised form
//! of the value, so the audit log can answer "did this BSN leave?" without holding any BSN.
//!
//! One definition for both sides: the inspection engine computes the fingerprints it puts in its
//! report with [`Fingerprinter`], and `sluis audit find` recomputes them from a value an
//! investigator types with [`fingerprint`]; both go through [`normalise`], so they agree.
//!
//! The HMAC input is `kind NUL normalised-value`: the same digits seen as a BSN and as a card
//! number give different fingerprints, so a match also says what was matched.
//!
//! Why a key: valid BSNs are about 9·10⁷ values, so a plain hash is reversed by trying them all.
//! Without the key that search is impossible; whoever holds key and log together can still do it,
//! which is why the key lives apart from the logs (see `docs/audit.md`).

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The detector names whose values have a canonical form; other kinds are only trimmed.
pub const BSN: &str = "bsn";
pub const IBAN: &str = "iban";
pub const PAYMENT_CARD: &str = "payment_card";

/// Kinds `sluis audit find` tries when none is given.
pub const FINDABLE_KINDS: [&str; 3] = [BSN, IBAN, PAYMENT_CARD];

/// The keyed MAC, keyed once (per engine) and cloned per value.
#[derive(Clone)]
pub struct Fingerprinter {
    mac: HmacSha256,
}

impl Fingerprinter {
    /// `None` only if the key cannot key an HMAC (HMAC takes any length, so in practice never).
    pub fn new(key: &[u8]) -> Option<Self> {
        <HmacSha256 as KeyInit>::new_from_slice(key)
            .ok()
            .map(|mac| Self { mac })
    }

    /// HMAC-SHA256(key, kind NUL normalise(kind, value)).
    pub fn digest(&self, kind: &str, value: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(normalise(kind, value).as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprinter(..)")
    }
}

/// HMAC-SHA256(key, kind NUL normalise(kind, value)), lowercase hex. `kind` is the detector's
/// stable name (`bsn`, `iban`, `payment_card`, `private_key`, ...).
pub fn fingerprint(kind: &str, value: &str, key: &[u8]) -> String {
    Fingerprinter::new(key)
        .map(|f| hex::encode(f.digest(kind, value)))
        .unwrap_or_default()
}

/// The canonical form of a value, so that every way of writing it gives one fingerprint:
/// BSN → its 9 digits (an 8-digit sofinummer gets its leading zero back); IBAN → letters and
/// digits only, uppercase; payment card → digits only; anything else → trimmed.
pub fn normalise(kind: &str, value: &str) -> String {
    match kind {
        BSN => {
            let digits = digits_only(value);
            if digits.len() == 8 {
                format!("0{digits}")
            } else {
                digits
            }
        }
        IBAN => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        PAYMENT_CARD => digits_only(value),
        _ => value.trim().to_owned(),
    }
}

/// Maps what a person types for `--kind` to the detector name.
pub fn kind_from_user(text: &str) -> Option<&'static str> {
    match text.to_ascii_lowercase().as_str() {
        "bsn" => Some(BSN),
        "iban" => Some(IBAN),
        "card" | "payment_card" | "payment-card" => Some(PAYMENT_CARD),
        _ => None,
    }
}

fn digits_only(value: &str) -> String {
    value.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_makes_spellings_equal() {
        assert_eq!(normalise(BSN, "123.456.782"), "123456782");
        assert_eq!(normalise(BSN, " 1234 56 782 "), "123456782");
        assert_eq!(normalise(BSN, "12345672"), "012345672");
        assert_eq!(
            normalise(IBAN, "nl91 abna 0417 1643 00"),
            "NL91ABNA0417164300"
        );
        assert_eq!(
            normalise(PAYMENT_CARD, "4111-1111 1111-1111"),
            "4111111111111111"
        );
        assert_eq!(normalise("api_token", "  ghp_x \n"), "ghp_x");
    }

    #[test]
    fn fingerprint_is_keyed_and_kind_separated() {
        let key = b"0123456789abcdef0123456789abcdef";
        let a = fingerprint(BSN, "123456782", key);
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint(BSN, "123 456 782", key));
        assert_ne!(a, fingerprint(BSN, "111222333", key));
        assert_ne!(a, fingerprint(BSN, "123456782", b"another key"));
        assert_ne!(a, fingerprint(PAYMENT_CARD, "123456782", key));
    }

    #[test]
    fn known_answer() {
        // Recomputed independently with Python:
        // hmac.new(b"k", b"bsn\x00123456782", hashlib.sha256).hexdigest()
        assert_eq!(
            fingerprint(BSN, "123.456.782", b"k"),
            "bf4f8a8c494f2f005034c530e8e8e981a88e60629f51b4d154208e5dde73d886"
        );
    }

    #[test]
    fn kinds_from_user() {
        assert_eq!(kind_from_user("Card"), Some(PAYMENT_CARD));
        assert_eq!(kind_from_user("bsn"), Some(BSN));
        assert_eq!(kind_from_user("phone"), None);
    }
}
