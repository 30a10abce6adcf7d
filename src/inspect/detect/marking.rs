//! Visible classification markings ("Vertrouwelijk", "Internal use only", ...).
//!
//! A marking is a label, not prose: in body text the phrase must stand alone on its line or
//! paragraph (after case folding and whitespace collapse, optionally after "Classificatie:" or
//! "KPN "), so "wij behandelen uw gegevens vertrouwelijk" is no label. Headers, footers and file
//! names are short and exist to carry such labels, so there the phrase may appear anywhere as
//! whole words ("KPN Vertrouwelijk - pagina 3", "Jaarplan_VERTROUWELIJK.docx").

use memchr::memmem;

use crate::inspect::engine::{EngineError, Marking};
use crate::inspect::report::Level;

/// Longest raw line or paragraph that is considered as a marking.
pub(crate) const MAX_SEGMENT: usize = 96;
const MAX_PHRASE: usize = 64;
const PREFIX_ROOM: usize = 24;

/// Words that may precede a marking on its line.
const PREFIXES: &[&[u8]] = &[b"classificatie", b"classification", b"kpn"];

/// The compiled marking table.
#[derive(Debug, Clone)]
pub(crate) struct Markings {
    /// Normalised phrase (lowercase, single spaces) and its level.
    standalone: Vec<(Vec<u8>, Level)>,
    /// The same phrases in word form (`voor intern gebruik`), padded with spaces.
    words: Vec<(Vec<u8>, Level)>,
    /// Last letters of the phrases: most lines end in another letter, a digit or a stop, and
    /// are rejected on that alone.
    last_bytes: [bool; 256],
    /// First letters of the phrases and of the prefixes.
    first_bytes: [bool; 256],
    /// Longest stretch from first to last letter a marking line can have.
    max_core: usize,
}

// === impl Markings ===

impl Markings {
    pub(crate) fn new(markings: &[Marking]) -> Result<Self, EngineError> {
        let mut standalone = Vec::with_capacity(markings.len());
        let mut words = Vec::with_capacity(markings.len());
        let mut last_bytes = [false; 256];
        let mut first_bytes = [false; 256];
        let mut max_core = 0;
        for prefix in PREFIXES {
            if let Some(&b) = prefix.first() {
                first_bytes[usize::from(b)] = true;
            }
        }
        for m in markings {
            let mut buf = [0u8; MAX_SEGMENT];
            let norm = normalize(m.phrase.as_bytes(), &mut buf)
                .filter(|n| !n.is_empty() && n.len() <= MAX_PHRASE)
                .ok_or_else(|| EngineError::Marking {
                    phrase: m.phrase.clone(),
                    reason: format!("must have letters or digits and at most {MAX_PHRASE} bytes"),
                })?;
            if let (Some(&first), Some(&last)) = (norm.first(), norm.last()) {
                first_bytes[usize::from(first)] = true;
                last_bytes[usize::from(last)] = true;
            }
            max_core = max_core.max(norm.len());
            standalone.push((norm.to_vec(), m.level));
            let mut w = vec![b' '];
            w.extend(word_form(m.phrase.as_bytes()));
            w.push(b' ');
            words.push((w, m.level));
        }
        Ok(Self {
            standalone,
            words,
            last_bytes,
            first_bytes,
            // Room for "Classificatie: KPN " and some doubled spaces.
            max_core: max_core + PREFIX_ROOM,
        })
    }

    /// Cheap rejection before normalising: a segment whose letters span too much, or whose
    /// first or last letter starts or ends no phrase, is no marking. Most lines go no further.
    pub(crate) fn may_match(&self, segment: &[u8]) -> bool {
        if segment.len() > MAX_SEGMENT {
            return false;
        }
        let core = |b: &u8| b.is_ascii_alphanumeric() || !b.is_ascii();
        let known = |table: &[bool; 256], i: usize| {
            segment.get(i).is_some_and(|&b| {
                !b.is_ascii() || table.get(usize::from(b.to_ascii_lowercase())) == Some(&true)
            })
        };
        // The first letter alone turns most lines away, before the search from the end.
        let Some(first) = segment.iter().position(core) else {
            return false;
        };
        if !known(&self.first_bytes, first) {
            return false;
        }
        let Some(last) = segment.iter().rposition(core) else {
            return false;
        };
        last - first < self.max_core && known(&self.last_bytes, last)
    }

    /// The level of a line or paragraph that is nothing but a marking.
    pub(crate) fn standalone(&self, segment: &[u8]) -> Option<Level> {
        if segment.len() > MAX_SEGMENT {
            return None;
        }
        let mut buf = [0u8; MAX_SEGMENT];
        let mut norm = normalize(segment, &mut buf)?;
        for prefix in PREFIXES {
            if let Some(rest) = strip_word(norm, prefix) {
                norm = rest;
            }
        }
        self.standalone
            .iter()
            .filter(|(p, _)| p.as_slice() == norm)
            .map(|(_, l)| *l)
            .max()
    }

    /// The highest level whose phrase appears as whole words anywhere in a short text.
    pub(crate) fn anywhere(&self, text: &[u8]) -> Option<Level> {
        let mut hay = Vec::with_capacity(text.len() + 2);
        hay.push(b' ');
        hay.extend(word_form(text));
        hay.push(b' ');
        self.words
            .iter()
            .filter(|(w, _)| memmem::find(&hay, w).is_some())
            .map(|(_, l)| *l)
            .max()
    }
}

/// `KPN ` or `Classificatie:` at the start, followed by a separator.
fn strip_word<'a>(norm: &'a [u8], word: &[u8]) -> Option<&'a [u8]> {
    let rest = norm.strip_prefix(word)?;
    let first = *rest.first()?;
    if first.is_ascii_alphanumeric() {
        return None;
    }
    let skip = rest
        .iter()
        .take_while(|b| !b.is_ascii_alphanumeric() && b.is_ascii())
        .count();
    rest.get(skip..)
}

/// Lowercase, whitespace (including no-break space) collapsed to single spaces, punctuation
/// trimmed from both ends (`*** CONFIDENTIAL ***`, `[Vertrouwelijk]`). `None` if too long.
fn normalize<'b>(text: &[u8], out: &'b mut [u8; MAX_SEGMENT]) -> Option<&'b [u8]> {
    let mut n = 0;
    let mut space = true;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        let ws = b.is_ascii_whitespace() || (b == 0xC2 && text.get(i + 1) == Some(&0xA0));
        if b == 0xC2 && ws {
            i += 1;
        }
        i += 1;
        if ws {
            if !space {
                *out.get_mut(n)? = b' ';
                n += 1;
                space = true;
            }
            continue;
        }
        *out.get_mut(n)? = b.to_ascii_lowercase();
        n += 1;
        space = false;
    }
    let s = out.get(..n)?;
    let keep = |b: &u8| b.is_ascii_alphanumeric() || !b.is_ascii();
    let start = s.iter().position(keep).unwrap_or(s.len());
    let end = s.iter().rposition(keep).map_or(start, |e| e + 1);
    s.get(start..end)
}

/// Lowercase words separated by single spaces: every ASCII non-alphanumeric is a separator.
fn word_form(text: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut prev_space = true;
    text.iter().filter_map(move |&b| {
        let c = if b.is_ascii_alphanumeric() || !b.is_ascii() {
            b.to_ascii_lowercase()
        } else {
            b' '
        };
        if c == b' ' && prev_space {
            return None;
        }
        prev_space = c == b' ';
        Some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::engine::EngineConfig;

    fn table() -> Markings {
        Markings::new(&EngineConfig::default_markings()).unwrap()
    }

    /// Lines that are nothing but a marking, and their levels.
    const MARKING_LINES: [(&str, Level); 10] = [
        ("Vertrouwelijk", Level::Confidential),
        ("  KPN   VERTROUWELIJK \r", Level::Confidential),
        ("Classificatie: Geheim", Level::Secret),
        ("Classification: KPN Internal Use Only", Level::Internal),
        ("*** CONFIDENTIAL ***", Level::Confidential),
        ("[Strikt vertrouwelijk]", Level::Confidential),
        ("Voor\u{a0}intern gebruik", Level::Internal),
        ("Openbaar", Level::Public),
        ("SECRET", Level::Secret),
        ("- geheim -", Level::Secret),
    ];

    #[test]
    fn standalone_markings() {
        let m = table();
        for (line, level) in MARKING_LINES {
            assert_eq!(m.standalone(line.as_bytes()), Some(level), "{line:?}");
        }
    }

    #[test]
    fn prose_is_not_a_marking() {
        let m = table();
        for line in [
            "wij behandelen uw gegevens vertrouwelijk",
            "Vertrouwelijk: zie bijlage voor de cijfers",
            "internal combustion",
            "the secret of good coffee",
            "KPN",
            "",
            &"vertrouwelijk ".repeat(10),
        ] {
            assert_eq!(m.standalone(line.as_bytes()), None, "{line:?}");
        }
    }

    #[test]
    fn the_quick_rejection_passes_every_marking_and_stops_prose() {
        // may_match is only a filter in front of standalone: it must let every marking line
        // through, and should stop ordinary lines, by their first or their last letter.
        let m = table();
        for (line, _) in MARKING_LINES {
            assert!(m.may_match(line.as_bytes()), "{line:?}");
        }
        for line in [
            "en gegevens is offerte van order",
            "Wij behandelen uw gegevens vertrouwelijk",
            "vertrouwelijk voor met de klant en de leverancier, zie het projectplan",
            "   ",
            "",
        ] {
            assert!(!m.may_match(line.as_bytes()), "{line:?}");
        }
    }

    #[test]
    fn anywhere_matches_whole_words() {
        let m = table();
        assert_eq!(
            m.anywhere(b"KPN Vertrouwelijk - pagina 3 van 12"),
            Some(Level::Confidential)
        );
        assert_eq!(
            m.anywhere(b"Jaarplan_VERTROUWELIJK.docx"),
            Some(Level::Confidential)
        );
        assert_eq!(m.anywhere(b"geheim-cijfers.xlsx"), Some(Level::Secret));
        assert_eq!(
            m.anywhere(b"notes_voor_intern_gebruik.txt"),
            Some(Level::Internal)
        );
        assert_eq!(m.anywhere(b"internationaal-rapport.pdf"), None);
        assert_eq!(m.anywhere(b"publicatie.pdf"), None);
        assert_eq!(m.anywhere(b"Geheim Vertrouwelijk"), Some(Level::Secret));
    }

    #[test]
    fn bad_phrases_are_rejected() {
        let bad = [Marking {
            phrase: " --- ".into(),
            level: Level::Secret,
        }];
        assert!(Markings::new(&bad).is_err());
    }
}
