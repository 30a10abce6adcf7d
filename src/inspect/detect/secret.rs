//! Secrets with a recognisable shape: PEM private keys, cloud access keys, API tokens.
//!
//! Each rule has a literal anchor that an Aho-Corasick automaton finds in one pass (with its SIMD
//! prefilter, since anchors are rare in ordinary text); only then is the shape around the anchor
//! checked. Evidence shows the anchor, never the secret part.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

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

const ANCHORS: &[(&str, Rule)] = &[
    ("-----BEGIN ", Rule::Pem),
    ("AKIA", Rule::Aws),
    ("ASIA", Rule::Aws),
    ("ABIA", Rule::Aws),
    ("ACCA", Rule::Aws),
    ("AIza", Rule::Google),
    ("0Q~", Rule::Azure),
    ("1Q~", Rule::Azure),
    ("2Q~", Rule::Azure),
    ("3Q~", Rule::Azure),
    ("4Q~", Rule::Azure),
    ("5Q~", Rule::Azure),
    ("6Q~", Rule::Azure),
    ("7Q~", Rule::Azure),
    ("8Q~", Rule::Azure),
    ("9Q~", Rule::Azure),
    ("ghp_", Rule::GitHub),
    ("gho_", Rule::GitHub),
    ("ghu_", Rule::GitHub),
    ("ghs_", Rule::GitHub),
    ("ghr_", Rule::GitHub),
    ("github_pat_", Rule::GitHubPat),
    ("glpat-", Rule::GitLab),
    ("xoxb-", Rule::Slack),
    ("xoxp-", Rule::Slack),
    ("xoxa-", Rule::Slack),
    ("xoxr-", Rule::Slack),
    ("xoxs-", Rule::Slack),
    (".slack.com/services/", Rule::SlackHook),
    ("sk_live_", Rule::Stripe),
    ("rk_live_", Rule::Stripe),
    ("T3BlbkFJ", Rule::OpenAi),
    ("sk-ant-api03-", Rule::Anthropic),
    ("npm_", Rule::Npm),
    ("SG.", Rule::SendGrid),
];

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
}

// === impl Secrets ===

impl Secrets {
    pub(crate) fn new() -> Result<Self, aho_corasick::BuildError> {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(ANCHORS.iter().map(|(a, _)| a))?;
        Ok(Self { ac })
    }

    /// The next anchor at or after `from`, ending before `until`: (start, rule index).
    pub(crate) fn next_anchor(
        &self,
        hay: &[u8],
        from: usize,
        until: usize,
    ) -> Option<(usize, usize)> {
        if from >= until {
            return None;
        }
        let input = aho_corasick::Input::new(hay).span(from..until);
        self.ac
            .find(input)
            .map(|m| (m.start(), m.pattern().as_usize()))
    }

    /// Checks the shape around an anchor found at `at`.
    pub(crate) fn validate<'h>(
        &self,
        hay: &'h [u8],
        at: usize,
        rule: usize,
    ) -> Option<SecretMatch<'h>> {
        let (anchor, rule) = ANCHORS.get(rule)?;
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
        let mut pos = 0;
        while let Some((at, rule)) = s.next_anchor(hay, pos, hay.len()) {
            match s.validate(hay, at, rule) {
                Some(m) => {
                    out.push((
                        m.kind,
                        crate::inspect::detect::findings::masked(m.value, m.mask),
                    ));
                    pos = m.end;
                }
                None => pos = at + 1,
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
}
