//! Detectors over extracted text: classification markings, BSN, IBAN, payment cards, secrets.
//!
//! [`Detectors`] is compiled once per engine; a [`TextScanner`] holds the state of one owner's
//! text (a file, or the body's form fields and JSON strings) and [`DetectSink`] lets format
//! scanners push into it through [`ContentSink`]. The scan is one pass per chunk with cheap
//! triggers (a digit that starts a number, an Aho-Corasick anchor, a short line); validators run
//! only on those candidates. Matches spanning `text` calls are found because the scanner keeps
//! the bytes a match or its context may need from the previous call.
//!
//! A valid eleven-test number counts as a BSN only with context: a keyword ([`BSN_KEYWORDS`])
//! within about 300 characters before or after it, or a BSN counted within 300 characters
//! before it, so a column of BSNs under one "BSN" header counts in full.

mod card;
mod digits;
mod findings;
mod iban;
mod marking;
mod number;
mod secret;
mod simd;
mod stream;

pub use findings::{Findings, Fingerprinter, MAX_EVIDENCE, MAX_FINGERPRINTS, Mask, masked};
pub use stream::TextScanner;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::inspect::engine::{EngineConfig, EngineError};
use crate::inspect::report::{LabelSource, Level};
use crate::inspect::sink::{ContentSink, TextOrigin};

/// Words that make a valid eleven-test number a BSN when they appear within ~300 characters.
pub const BSN_KEYWORDS: &[&str] = &[
    "bsn",
    "bsn-nummer",
    "bsnnummer",
    "burgerservicenummer",
    "burger service nummer",
    "burgerservice nummer",
    "citizen service number",
    "citizen service no",
    "sofinummer",
    "sofi-nummer",
    "sofi nummer",
    "sofi",
    "sociaal-fiscaal nummer",
    "sociaal fiscaal nummer",
    "persoonsnummer",
    "persoonlijk nummer",
    "persoonsgebonden nummer",
    "persoonlijke numerieke code",
    "uniek identificatienummer",
    "uniek identiteitsnummer",
    "social security number",
    "social security no",
    "social-fiscal number",
    "tax identification number",
];

/// Everything the detectors need, compiled once from the engine configuration.
#[derive(Debug)]
pub struct Detectors {
    markings: marking::Markings,
    secrets: secret::Secrets,
    keywords: AhoCorasick,
    longest_keyword: usize,
    fingerprinter: Option<Fingerprinter>,
}

/// A [`ContentSink`] that feeds one owner's [`TextScanner`], within the body's text budget.
pub struct DetectSink<'a> {
    pub detectors: &'a Detectors,
    pub scanner: &'a mut TextScanner,
    /// Bytes of text the body may still put through the detectors.
    pub budget: &'a mut u64,
}

// === impl Detectors ===

impl Detectors {
    pub fn new(config: &EngineConfig) -> Result<Self, EngineError> {
        let automaton = |e: aho_corasick::BuildError| EngineError::Automaton(e.to_string());
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(BSN_KEYWORDS)
            .map_err(automaton)?;
        let fingerprinter = match &config.fingerprint_key {
            Some(key) => Some(Fingerprinter::new(key).ok_or(EngineError::FingerprintKey)?),
            None => None,
        };
        Ok(Self {
            markings: marking::Markings::new(&config.markings)?,
            secrets: secret::Secrets::new().map_err(automaton)?,
            keywords,
            longest_keyword: BSN_KEYWORDS.iter().map(|k| k.len()).max().unwrap_or(0),
            fingerprinter,
        })
    }

    /// Whether a BSN keyword stands within `reach` bytes of `start..end`.
    fn bsn_context(&self, hay: &[u8], start: usize, end: usize, reach: usize) -> bool {
        let lo = start.saturating_sub(reach + self.longest_keyword);
        let hi = (end + reach + self.longest_keyword).min(hay.len());
        let Some(window) = hay.get(lo..hi) else {
            return false;
        };
        self.keywords.find_iter(window).any(|m| {
            let before = m.start().checked_sub(1).and_then(|p| window.get(p));
            let after = window.get(m.end());
            !before.is_some_and(u8::is_ascii_alphanumeric)
                && !after.is_some_and(u8::is_ascii_alphabetic)
        })
    }
}

// === impl DetectSink ===

impl ContentSink for DetectSink<'_> {
    fn text(&mut self, text: &[u8], origin: TextOrigin) {
        let allowed = text
            .len()
            .min(usize::try_from(*self.budget).unwrap_or(usize::MAX));
        let (scan, _rest) = text.split_at(allowed);
        *self.budget -= scan.len() as u64;
        if scan.len() < text.len() {
            self.scanner.note_text_cap();
        }
        self.scanner.push(self.detectors, scan, origin);
    }

    fn end_text(&mut self) {
        self.scanner.end(self.detectors);
    }

    fn label(&mut self, level: Level, source: LabelSource) {
        self.scanner.label(level, source);
    }
}

#[cfg(test)]
mod tests;

/// `len` bytes drawn from `alphabet` by a xorshift generator: dense test text whose mix of
/// byte classes the caller picks, the same on every run.
#[cfg(test)]
fn random_text(mut seed: u64, alphabet: &[u8], len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            alphabet[(seed % alphabet.len() as u64) as usize]
        })
        .collect()
}
