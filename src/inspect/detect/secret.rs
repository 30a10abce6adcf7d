//! Secrets with a recognisable shape: PEM private keys, cloud access keys, API tokens.
//!
//! Each rule has a literal anchor; only where an anchor is found is the shape around it checked.
//! Anchors of four bytes or more are found together by an Aho-Corasick automaton, whose SIMD
//! prefilter compares four-byte fingerprints in eight buckets while there are at most 32 of
//! them; a few are searched from their second byte or later (see [`ANCHORS`]). The two
//! three-byte anchors have searches of their own: with them in the automaton its fingerprints
//! shrink to three bytes in sixteen buckets, which took a fifth longer on base64 text. Evidence
//! shows the anchor, never the secret part.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use memchr::memchr;
use memchr::memmem;

use crate::inspect::detect::findings::Mask;
use crate::inspect::report::DetectorKind;

/// Longest text a rule looks at after its anchor's start.
pub(crate) const MAX_SECRET: usize = 160;

#[derive(Debug, Clone, Copy)]
enum Rule {
    Pem,
    Aws,
    Google,
    Azure,
    GitHub,
    GitHubPat,
    GitLab,
    Slack,
    SlackHook,
    Stripe,
    OpenAi,
    Anthropic,
    Npm,
    SendGrid,
}

/// The automaton's anchors, in the order that breaks ties between anchors at one position,
/// each with the number of its first bytes the automaton leaves out.
///
/// The prefilter files anchors into buckets by the nibbles of their first four bytes, so an
/// anchor that begins with four lowercase letters (`gith`, `glpa`, `xoxb`) makes its bucket
/// match everyday words (`with`) and sends the search into verification every few dozen bytes
/// of prose. Such anchors are searched from their `_` or `-`, which prose seldom has, and the
/// rule checks the bytes left out. On English prose that doubled the automaton's speed.
const ANCHORS: &[(&str, usize, Rule)] = &[
    ("-----BEGIN ", 0, Rule::Pem),
    ("AKIA", 0, Rule::Aws),
    ("ASIA", 0, Rule::Aws),
    ("ABIA", 0, Rule::Aws),
    ("ACCA", 0, Rule::Aws),
    ("AIza", 0, Rule::Google),
    ("ghp_", 0, Rule::GitHub),
    ("gho_", 0, Rule::GitHub),
    ("ghu_", 0, Rule::GitHub),
    ("ghs_", 0, Rule::GitHub),
    ("ghr_", 0, Rule::GitHub),
    ("github_pat_", 6, Rule::GitHubPat),
    ("glpat-", 2, Rule::GitLab),
    ("xoxb-", 1, Rule::Slack),
    ("xoxp-", 1, Rule::Slack),
    ("xoxa-", 1, Rule::Slack),
    ("xoxr-", 1, Rule::Slack),
    ("xoxs-", 1, Rule::Slack),
    (".slack.com/services/", 0, Rule::SlackHook),
    ("sk_live_", 0, Rule::Stripe),
    ("rk_live_", 0, Rule::Stripe),
    ("T3BlbkFJ", 0, Rule::OpenAi),
    ("sk-ant-api03-", 0, Rule::Anthropic),
    ("npm_", 0, Rule::Npm),
];

/// Entra ID client secrets carry a digit and `Q~`; the search looks for the `~`, which is rare
/// in text of every kind, and the anchor starts at the digit.
const AZURE_MARK: u8 = b'~';
/// Stands for any digit and `Q~`: the rule reads the digit from the text, not from here.
const AZURE_ANCHOR: &str = "0Q~";
const SENDGRID_ANCHOR: &str = "SG.";

/// Where an anchor was found and which rule it stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    /// Where the searched part of the anchor starts: the position the scan orders and resumes by.
    pub(crate) at: usize,
    /// Bytes of `text` before `at`, not yet checked.
    lead: usize,
    rule: Rule,
    text: &'static str,
}

/// A validated secret.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecretMatch<'h> {
    pub(crate) kind: DetectorKind,
    /// Where the secret ends; the scan resumes there.
    pub(crate) end: usize,
    /// What the fingerprint is made of.
    pub(crate) value: &'h [u8],
    pub(crate) mask: Mask<'static>,
}

/// The compiled anchors.
#[derive(Debug, Clone)]
pub(crate) struct Secrets {
    ac: AhoCorasick,
    sendgrid: memmem::Finder<'static>,
}

/// The anchors of one stretch of text, leftmost first, from positions that only move forward.
pub(crate) struct AnchorSearch<'a> {
    secrets: &'a Secrets,
    hay: &'a [u8],
    until: usize,
    /// Each search's last answer: still the leftmost of its kind while it is at or after the
    /// position asked for (`Some(None)`: none up to `until`).
    automaton: Option<Option<Anchor>>,
    azure: Option<Option<Anchor>>,
    sendgrid: Option<Option<Anchor>>,
}

// === impl Secrets ===

impl Secrets {
    pub(crate) fn new() -> Result<Self, aho_corasick::BuildError> {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(ANCHORS.iter().map(|&(a, lead, _)| searched(a, lead)))?;
        let sendgrid = memmem::Finder::new(SENDGRID_ANCHOR.as_bytes()).into_owned();
        Ok(Self { ac, sendgrid })
    }

    /// A search for anchors that lie wholly before `until`.
    pub(crate) fn search<'a>(&'a self, hay: &'a [u8], until: usize) -> AnchorSearch<'a> {
        AnchorSearch {
            secrets: self,
            hay,
            until: until.min(hay.len()),
            automaton: None,
            azure: None,
            sendgrid: None,
        }
    }

    /// Checks the shape around an anchor.
    pub(crate) fn validate<'h>(&self, hay: &'h [u8], found: Anchor) -> Option<SecretMatch<'h>> {
        let Anchor {
            at,
            lead,
            rule,
            text: anchor,
        } = found;
        let at = at.checked_sub(lead)?;
        if hay.get(at..at + lead)? != anchor.as_bytes().get(..lead)? {
            return None;
        }
        let after = at + anchor.len();
        match rule {
            Rule::Pem => pem(hay, after),
            Rule::Aws => fixed(hay, at, after, 16, is_base32_upper)
                .map(|end| secret(hay, at, end, DetectorKind::CloudKey, anchor)),
            Rule::Google => fixed(hay, at, after, 35, is_url_safe)
                .map(|end| secret(hay, at, end, DetectorKind::CloudKey, "AIza")),
            Rule::Azure => azure(hay, at),
            Rule::GitHub => fixed(hay, at, after, 36, u8::is_ascii_alphanumeric)
                .map(|end| secret(hay, at, end, DetectorKind::ApiToken, anchor)),
            Rule::GitHubPat => fixed(hay, at, after, 82, is_word)
                .map(|end| secret(hay, at, end, DetectorKind::ApiToken, "github_pat_")),
            Rule::GitLab => fixed(hay, at, after, 20, is_url_safe)
                .map(|end| secret(hay, at, end, DetectorKind::ApiToken, "glpat-")),
            Rule::Slack => at_least(hay, at, after, 20, is_slack)
                .map(|end| secret(hay, at, end, DetectorKind::ApiToken, anchor)),
            Rule::SlackHook => slack_hook(hay, at, after),
            Rule::Stripe => at_least(hay, at, after, 24, u8::is_ascii_alphanumeric)
                .map(|end| secret(hay, at, end, DetectorKind::ApiToken, anchor)),
            Rule::OpenAi => openai(hay, at),
            Rule::Anthropic => at_least(hay, at, after, 80, is_url_safe)
                .map(|end| secret(hay, at, end, DetectorKind::ApiToken, "sk-ant-api03-")),
            Rule::Npm => fixed(hay, at, after, 36, u8::is_ascii_alphanumeric)
                .map(|end| secret(hay, at, end, DetectorKind::ApiToken, "npm_")),
            Rule::SendGrid => sendgrid(hay, at, after),
        }
    }
}

// === impl AnchorSearch ===

impl AnchorSearch<'_> {
    /// The leftmost anchor whose searched part starts at or after `from`. `from` must not go back
    /// between calls.
    pub(crate) fn next(&mut self, from: usize) -> Option<Anchor> {
        let stale = |cached: &Option<Option<Anchor>>| match cached {
            None => true,
            Some(found) => found.is_some_and(|a| a.at < from),
        };
        if stale(&self.automaton) {
            self.automaton = Some(self.find_automaton(from));
        }
        if stale(&self.azure) {
            self.azure = Some(self.find_azure(from));
        }
        if stale(&self.sendgrid) {
            self.sendgrid = Some(self.find_sendgrid(from));
        }
        [self.automaton, self.azure, self.sendgrid]
            .into_iter()
            .flatten()
            .flatten()
            .min_by_key(|a| a.at)
    }

    fn find_automaton(&self, from: usize) -> Option<Anchor> {
        if from >= self.until {
            return None;
        }
        let input = aho_corasick::Input::new(self.hay).span(from..self.until);
        let m = self.secrets.ac.find(input)?;
        let &(text, lead, rule) = ANCHORS.get(m.pattern().as_usize())?;
        Some(Anchor {
            at: m.start(),
            lead,
            rule,
            text,
        })
    }

    fn find_azure(&self, from: usize) -> Option<Anchor> {
        let mut t = from + 2;
        while t < self.until {
            t += memchr(AZURE_MARK, self.hay.get(t..self.until)?)?;
            if matches!(self.hay.get(t - 2..t), Some(&[d, b'Q']) if d.is_ascii_digit()) {
                return Some(Anchor {
                    at: t - 2,
                    lead: 0,
                    rule: Rule::Azure,
                    text: AZURE_ANCHOR,
                });
            }
            t += 1;
        }
        None
    }

    fn find_sendgrid(&self, from: usize) -> Option<Anchor> {
        let k = self
            .secrets
            .sendgrid
            .find(self.hay.get(from..self.until)?)?;
        Some(Anchor {
            at: from + k,
            lead: 0,
            rule: Rule::SendGrid,
            text: SENDGRID_ANCHOR,
        })
    }
}

/// The part of an anchor the automaton looks for.
fn searched(anchor: &str, lead: usize) -> &[u8] {
    anchor.as_bytes().get(lead..).unwrap_or_default()
}

fn secret<'h>(
    hay: &'h [u8],
    start: usize,
    end: usize,
    kind: DetectorKind,
    shown: &'static str,
) -> SecretMatch<'h> {
    SecretMatch {
        kind,
        end,
        value: hay.get(start..end).unwrap_or(&[]),
        mask: Mask::Prefix(shown),
    }
}

fn is_word(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || *b == b'_'
}

fn is_url_safe(b: &u8) -> bool {
    is_word(b) || *b == b'-'
}

fn is_base32_upper(b: &u8) -> bool {
    b.is_ascii_uppercase() || (b'2'..=b'7').contains(b)
}

fn is_slack(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || *b == b'-'
}

fn is_azure(b: &u8) -> bool {
    is_word(b) || matches!(b, b'~' | b'.')
}

fn is_base64(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// The anchor must not continue a word.
fn starts_clean(hay: &[u8], at: usize) -> bool {
    !at.checked_sub(1)
        .and_then(|p| hay.get(p))
        .is_some_and(is_word)
}

fn run_len(hay: &[u8], from: usize, class: fn(&u8) -> bool, cap: usize) -> usize {
    hay.get(from..)
        .unwrap_or(&[])
        .iter()
        .take(cap)
        .take_while(|b| class(b))
        .count()
}

/// Exactly `n` class characters after the anchor, then a non-class byte.
fn fixed(hay: &[u8], at: usize, after: usize, n: usize, class: fn(&u8) -> bool) -> Option<usize> {
    let end = after + n;
    let clean_end = !hay.get(end).is_some_and(|b| is_word(b) || class(b));
    (starts_clean(hay, at) && run_len(hay, after, class, n) == n && clean_end).then_some(end)
}

/// At least `n` class characters after the anchor (bounded by [`MAX_SECRET`]).
fn at_least(
    hay: &[u8],
    at: usize,
    after: usize,
    n: usize,
    class: fn(&u8) -> bool,
) -> Option<usize> {
    let len = run_len(hay, after, class, MAX_SECRET);
    (starts_clean(hay, at) && len >= n).then_some(after + len)
}

/// `-----BEGIN <LABEL> PRIVATE KEY-----` followed by base64 key material. The value is the
/// first 64 characters of the key, so the fingerprint tells keys apart.
fn pem(hay: &[u8], after: usize) -> Option<SecretMatch<'_>> {
    let label_len = run_len(hay, after, |b| b.is_ascii_uppercase() || *b == b' ', 40);
    let label = hay.get(after..after + label_len)?;
    let close = after + label_len;
    if !label.ends_with(b"PRIVATE KEY") && !label.ends_with(b"PRIVATE KEY BLOCK") {
        return None;
    }
    if hay.get(close..close + 5)? != b"-----" {
        return None;
    }
    let mut i = close + 5;
    // Skip the blank line and RFC 1421 headers (`Proc-Type: ...`) of legacy encrypted keys.
    for _ in 0..4 {
        i += run_len(hay, i, |b| b.is_ascii_whitespace(), 8);
        let line = run_len(hay, i, |b| *b != b'\n', 120);
        let has_colon = hay.get(i..i + line).is_some_and(|l| l.contains(&b':'));
        if !has_colon {
            break;
        }
        i += line;
    }
    let body = run_len(hay, i, is_base64, 64);
    if body < 40 {
        return None;
    }
    Some(SecretMatch {
        kind: DetectorKind::PrivateKey,
        end: i + body,
        value: hay.get(i..i + body)?,
        mask: Mask::Prefix("-----BEGIN PRIVATE KEY-----"),
    })
}

/// Entra ID client secrets: three characters, a digit, `Q~`, then 31–34 characters. The
/// anchor starts at the digit.
fn azure(hay: &[u8], digit: usize) -> Option<SecretMatch<'_>> {
    let start = digit.checked_sub(3)?;
    let at = digit + 1;
    if !hay.get(start..digit)?.iter().all(is_azure) {
        return None;
    }
    if start
        .checked_sub(1)
        .and_then(|p| hay.get(p))
        .is_some_and(is_azure)
    {
        return None;
    }
    let tail = run_len(hay, at + 2, |b| is_azure(b) || *b == b'-', 35);
    (31..=34)
        .contains(&tail)
        .then(|| secret(hay, start, at + 2 + tail, DetectorKind::CloudKey, "azure:"))
}

/// `hooks.slack.com/services/T…/B…/…`; the anchor starts at `.slack.com`.
fn slack_hook(hay: &[u8], at: usize, after: usize) -> Option<SecretMatch<'_>> {
    let at = at
        .checked_sub(5)
        .filter(|&h| hay.get(h..h + 5) == Some(b"hooks"))?;
    let len = run_len(hay, after, |b| b.is_ascii_alphanumeric() || *b == b'/', 100);
    let path = hay.get(after..after + len)?;
    let parts = path.split(|&b| b == b'/').filter(|p| !p.is_empty()).count();
    (parts >= 3 && path.first() == Some(&b'T') && len >= 30).then(|| {
        secret(
            hay,
            at,
            after + len,
            DetectorKind::ApiToken,
            "hooks.slack.com/services/",
        )
    })
}

/// OpenAI keys carry `T3BlbkFJ` ("OpenAI" in base64) inside a token that starts with `sk-`.
fn openai(hay: &[u8], at: usize) -> Option<SecretMatch<'_>> {
    let back = hay
        .get(..at)?
        .iter()
        .rev()
        .take(MAX_SECRET)
        .take_while(|b| is_url_safe(b))
        .count();
    let start = at - back;
    if !hay.get(start..)?.starts_with(b"sk-") {
        return None;
    }
    let fwd = run_len(hay, at, is_url_safe, MAX_SECRET);
    (back + fwd >= 40).then(|| secret(hay, start, at + fwd, DetectorKind::ApiToken, "sk-"))
}

/// `SG.` + 22 + `.` + 43.
fn sendgrid(hay: &[u8], at: usize, after: usize) -> Option<SecretMatch<'_>> {
    let first = run_len(hay, after, is_url_safe, 23);
    if !starts_clean(hay, at) || first != 22 || hay.get(after + 22) != Some(&b'.') {
        return None;
    }
    let second = run_len(hay, after + 23, is_url_safe, 44);
    (second == 43).then(|| secret(hay, at, after + 66, DetectorKind::ApiToken, "SG."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Vec<(DetectorKind, String)> {
        let s = Secrets::new().unwrap();
        let hay = text.as_bytes();
        let mut out = Vec::new();
        let mut search = s.search(hay, hay.len());
        let mut pos = 0;
        while let Some(found) = search.next(pos) {
            match s.validate(hay, found) {
                Some(m) => {
                    out.push((
                        m.kind,
                        crate::inspect::detect::findings::masked(m.value, m.mask),
                    ));
                    pos = m.end;
                }
                None => pos = found.at + 1,
            }
        }
        out
    }

    fn one(text: &str) -> Option<DetectorKind> {
        let found = scan(text);
        assert!(found.len() <= 1, "{found:?}");
        found.first().map(|f| f.0)
    }

    #[test]
    fn cloud_keys() {
        assert_eq!(
            one("key=AKIAIOSFODNN7EXAMPLE\n"),
            Some(DetectorKind::CloudKey)
        );
        assert_eq!(one("key=AKIAIOSFODNN7EXAMPL\n"), None, "15 chars");
        assert_eq!(one("key=AKIAIOSFODNN7EXAMPLE1\n"), None, "17 chars");
        assert_eq!(one("xAKIAIOSFODNN7EXAMPLE"), None, "glued");
        assert_eq!(
            one("AIzaSyD-1234567890abcdefghijklmnopqrstu"),
            Some(DetectorKind::CloudKey)
        );
        assert_eq!(
            one("secret: abc8Q~abcdefghijklmnopqrstuvwxyz0123456 "),
            Some(DetectorKind::CloudKey)
        );
        assert_eq!(one("a Q~ b"), None);
    }

    #[test]
    fn api_tokens() {
        let t = |s: &str| one(s) == Some(DetectorKind::ApiToken);
        assert!(t(&format!("ghp_{}", "a1".repeat(18))));
        assert!(!t(&format!("ghp_{}", "a1".repeat(17))));
        assert!(t(&format!("github_pat_{}", "A_1".repeat(27) + "x")));
        assert!(t("glpat-abcdefghij0123456789"));
        assert!(t("xoxb-1234567890-1234567890-abcdefghijkl"));
        assert!(!t("xoxb-12"));
        assert!(t(
            "https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX"
        ));
        assert!(t(&format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc")));
        assert!(t(&format!(
            "sk-proj-{}T3BlbkFJ{}",
            "a".repeat(20),
            "b".repeat(20)
        )));
        assert!(!t(&format!(
            "xx-{}T3BlbkFJ{}",
            "a".repeat(20),
            "b".repeat(20)
        )));
        assert!(t(&format!("sk-ant-api03-{}AA", "x".repeat(93))));
        assert!(t(&format!("npm_{}", "a".repeat(36))));
        assert!(t(&format!("SG.{}.{}", "a".repeat(22), "b".repeat(43))));
        assert!(!t("SG. Singapore"));
    }

    #[test]
    fn anchors_searched_from_their_middle_need_their_first_bytes() {
        let t = |s: &str| one(s) == Some(DetectorKind::ApiToken);
        let pat = "A_1".repeat(27) + "x";
        assert!(t(&format!("github_pat_{pat}")), "at the very start");
        assert!(t(&format!("token: github_pat_{pat} ")));
        assert!(!t(&format!("token: gitlab_pat_{pat} ")));
        assert!(
            !t(&format!("_pat_{pat}")),
            "nothing before the searched part"
        );
        assert!(t("(glpat-abcdefghij0123456789)"));
        assert!(!t("alpat-abcdefghij0123456789"));
        assert!(!t("pat-abcdefghij0123456789"));
        assert!(t("xoxp-1234567890-1234567890-abcdefghijkl"));
        assert!(!t("yoxp-1234567890-1234567890-abcdefghijkl"));
        assert!(!t("oxp-1234567890-1234567890-abcdefghijkl"));
        // The evidence still shows the whole anchor.
        let found = scan("xoxs-1234567890-1234567890-abcdefghijkl");
        assert_eq!(found[0].1.get(..5), Some("xoxs-"), "{found:?}");
    }

    #[test]
    fn pem_private_keys_only() {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
        let key = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n");
        assert_eq!(one(&key), Some(DetectorKind::PrivateKey));
        let legacy = format!(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0011\n\n{body}"
        );
        assert_eq!(one(&legacy), Some(DetectorKind::PrivateKey));
        assert_eq!(one(&format!("-----BEGIN CERTIFICATE-----\n{body}")), None);
        assert_eq!(
            one("-----BEGIN PRIVATE KEY-----\n...docs"),
            None,
            "no key body"
        );
    }

    #[test]
    fn evidence_shows_only_the_prefix() {
        let found = scan("AKIAIOSFODNN7EXAMPLE ");
        assert_eq!(found[0].1, "AKIA************");
    }

    /// Every anchor the search must find, as one list: the automaton's and the two searched
    /// on their own (Azure with each digit).
    fn all_anchors() -> Vec<&'static [u8]> {
        let digits: [&'static [u8]; 10] = [
            b"0Q~", b"1Q~", b"2Q~", b"3Q~", b"4Q~", b"5Q~", b"6Q~", b"7Q~", b"8Q~", b"9Q~",
        ];
        ANCHORS
            .iter()
            .map(|&(a, lead, _)| searched(a, lead))
            .chain(digits)
            .chain([SENDGRID_ANCHOR.as_bytes()])
            .collect()
    }

    /// The leftmost anchor starting at or after `from` and ending by `until`, byte by byte.
    fn naive(hay: &[u8], from: usize, until: usize) -> Option<usize> {
        let anchors = all_anchors();
        (from..until).find(|&q| {
            anchors
                .iter()
                .any(|a| q + a.len() <= until && hay.get(q..q + a.len()) == Some(a))
        })
    }

    /// Text dense in anchor pieces and whole anchors, so near misses and overlaps are common.
    fn anchor_soup() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let pieces: Vec<&'static [u8]> = all_anchors()
            .into_iter()
            .chain([
                &b"A"[..],
                b"Q",
                b"~",
                b"Q~",
                b"7",
                b"S",
                b"G",
                b".",
                b"-",
                b"_",
                b"g",
                b"h",
                b"x",
                b"o",
                b"k",
                b" ",
                b"\n",
            ])
            .collect();
        proptest::collection::vec(proptest::sample::select(pieces), 0..80)
            .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #[test]
        fn search_finds_what_a_byte_by_byte_search_finds(
            hay in anchor_soup(),
            cut in 0usize..=400,
            steps in proptest::collection::vec(0usize..6, 1..40),
        ) {
            let s = Secrets::new().unwrap();
            let until = cut.min(hay.len());
            let mut search = s.search(&hay, until);
            let mut from = 0;
            for step in steps {
                let found = search.next(from).map(|a| a.at);
                proptest::prop_assert_eq!(found, naive(&hay, from, until), "from {}", from);
                from = found.map_or(from + step, |at| at + step.max(1));
            }
        }
    }
}
