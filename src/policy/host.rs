//! Host patterns, and one index that matches a host against every host list at once.
//!
//! Every host list in the policy (internal hosts, each category, each rule's `host`, the TLS
//! lists) is a *set* with a number. All their patterns go into one hash map keyed by domain
//! name; a lookup walks the host's labels from the full name to the top-level domain
//! (`a.b.example.com`, `b.example.com`, `example.com`, `com`) and collects the sets whose
//! patterns match. The cost is one hash lookup per label, whatever the number of patterns.
//! IP literals are looked up in a hash set of addresses plus a (short) list of networks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Numbers a host list inside a [`HostIndex`].
pub(crate) type SetId = u32;

/// One entry of a host list.
///
/// | written            | matches                                       |
/// |--------------------|-----------------------------------------------|
/// | `example.com`      | `example.com` and every name under it         |
/// | `.example.com`     | names under `example.com`, not itself         |
/// | `*.example.com`    | the same as `.example.com`                    |
/// | `=www.example.com` | exactly `www.example.com`                     |
/// | `192.0.2.7`, `::1` | that address (IPv4-mapped IPv6 included)      |
/// | `10.0.0.0/8`       | any address in the network                    |
///
/// Matching is case-insensitive and ignores a trailing dot. `example.com` never matches
/// `notexample.com`: suffixes are compared on whole labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    Domain(Box<str>),
    Subdomains(Box<str>),
    Exact(Box<str>),
    Ip(IpAddr),
    Net(IpNet),
}

/// A request's host, normalised once per lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostKey<'a> {
    Name(Cow<'a, str>),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Exact,
    Domain,
    Subdomains,
}

/// foldhash rather than the standard SipHash: each request looks up every suffix of its host
/// name, which with SipHash took half of the policy's decision. The keys come from the policy
/// alone, so what a client sends cannot crowd the table with colliding names.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// All host lists of a policy, compiled.
#[derive(Debug, Default)]
pub(crate) struct HostIndex {
    names: Map<Box<str>, Vec<(SetId, Scope)>>,
    ips: Map<IpAddr, Vec<SetId>>,
    nets: Vec<(IpNet, SetId)>,
    sets: SetId,
}

/// The sets a host belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostMatch {
    bits: Vec<u64>,
    /// The first set of the `primary` range met while walking from the most specific name.
    primary: Option<SetId>,
}

// === impl HostPattern ===

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty host pattern".into());
        }
        if t.contains('/') {
            return t
                .parse::<IpNet>()
                .map(|n| Self::Net(n.trunc()))
                .map_err(|_| format!("{t:?} is not a valid network (CIDR, e.g. 10.0.0.0/8)"));
        }
        let unbracketed = t.strip_prefix('[').and_then(|x| x.strip_suffix(']'));
        if let Ok(ip) = unbracketed.unwrap_or(t).parse::<IpAddr>() {
            return Ok(Self::Ip(ip.to_canonical()));
        }
        if let Some(rest) = t.strip_prefix('=') {
            return Ok(Self::Exact(normalize_name(rest)?.into()));
        }
        if let Some(rest) = t.strip_prefix("*.").or_else(|| t.strip_prefix('.')) {
            return Ok(Self::Subdomains(normalize_name(rest)?.into()));
        }
        Ok(Self::Domain(normalize_name(t)?.into()))
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(n) => write!(f, "{n}"),
            Self::Subdomains(n) => write!(f, ".{n}"),
            Self::Exact(n) => write!(f, "={n}"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Net(net) => write!(f, "{net}"),
        }
    }
}

/// Lowercases and checks a domain name written in a policy file.
fn normalize_name(raw: &str) -> Result<String, String> {
    let name = raw.strip_suffix('.').unwrap_or(raw);
    if !name.is_ascii() {
        return Err(format!(
            "{raw:?}: write internationalised names in their ASCII form (xn--...)"
        ));
    }
    if name.contains('*') {
        return Err(format!(
            "{raw:?}: a wildcard is only allowed as a leading \"*.\""
        ));
    }
    if name.is_empty() || name.len() > 253 {
        return Err(format!("{raw:?} is not a host name"));
    }
    let name = name.to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name.split('.').all(label_ok) {
        return Err(format!("{raw:?} is not a host name"));
    }
    // No top-level domain is numeric: this is a mistyped address, which would never match.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{raw:?} is neither a host name nor an IP address"));
    }
    Ok(name)
}

// === impl HostKey ===

impl<'a> HostKey<'a> {
    /// Normalises a host from a request: a stray port, trailing dot, brackets, case,
    /// IPv4-mapped IPv6.
    pub(crate) fn new(host: &'a str) -> Self {
        let host = strip_port(host);
        let h = host.strip_suffix('.').unwrap_or(host);
        let h = h
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(h);
        let maybe_ip = h.contains(':') || h.bytes().last().is_some_and(|b| b.is_ascii_digit());
        if maybe_ip && let Ok(ip) = h.parse::<IpAddr>() {
            return Self::Ip(ip.to_canonical());
        }
        if h.bytes().any(|b| b.is_ascii_uppercase()) {
            Self::Name(Cow::Owned(h.to_ascii_lowercase()))
        } else {
            Self::Name(Cow::Borrowed(h))
        }
    }
}

impl fmt::Display for HostKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// `host:443` → `host`, `[::1]:443` → `[::1]`; a bare IPv6 address is left alone.
fn strip_port(host: &str) -> &str {
    if let Some((h, port)) = host.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && (!h.contains(':') || h.ends_with(']'))
    {
        return h;
    }
    host
}

// === impl HostIndex ===

impl HostIndex {
    /// A new, empty host list.
    pub(crate) fn new_set(&mut self) -> SetId {
        let id = self.sets;
        self.sets += 1;
        id
    }

    pub(crate) fn insert(&mut self, set: SetId, pattern: &HostPattern) {
        let (name, scope) = match pattern {
            HostPattern::Domain(n) => (n, Scope::Domain),
            HostPattern::Subdomains(n) => (n, Scope::Subdomains),
            HostPattern::Exact(n) => (n, Scope::Exact),
            HostPattern::Ip(ip) => {
                let sets = self.ips.entry(*ip).or_default();
                if !sets.contains(&set) {
                    sets.push(set);
                }
                return;
            }
            HostPattern::Net(net) => {
                self.nets.push((*net, set));
                return;
            }
        };
        let entries = self.names.entry(name.clone()).or_default();
        if !entries.contains(&(set, scope)) {
            entries.push((set, scope));
            entries.sort_by_key(|(s, _)| *s);
        }
    }

    /// The sets `host` belongs to. Among sets in `primary`, the one listed for the most
    /// specific name (the lowest set id on a tie) becomes `HostMatch::primary`.
    pub(crate) fn lookup(&self, host: &HostKey<'_>, primary: std::ops::Range<SetId>) -> HostMatch {
        let mut m = HostMatch::default();
        match host {
            HostKey::Ip(ip) => {
                for &set in self.ips.get(ip).into_iter().flatten() {
                    m.add(set, &primary);
                }
                for (net, set) in &self.nets {
                    if net.contains(ip) {
                        m.add(*set, &primary);
                    }
                }
            }
            HostKey::Name(name) => self.walk(name, |set, _| m.add(set, &primary)),
        }
        m
    }

    /// The pattern of `set` that matches `host`, written as in the policy (for `explain`).
    pub(crate) fn matched_by(&self, host: &HostKey<'_>, set: SetId) -> Option<String> {
        match host {
            HostKey::Ip(ip) => {
                if self.ips.get(ip).is_some_and(|s| s.contains(&set)) {
                    return Some(ip.to_string());
                }
                self.nets
                    .iter()
                    .find(|(net, s)| *s == set && net.contains(ip))
                    .map(|(net, _)| net.to_string())
            }
            HostKey::Name(name) => {
                let mut found = None;
                self.walk(name, |s, (key, scope)| {
                    if s == set && found.is_none() {
                        found = Some(match scope {
                            Scope::Domain => key.to_owned(),
                            Scope::Subdomains => format!(".{key}"),
                            Scope::Exact => format!("={key}"),
                        });
                    }
                });
                found
            }
        }
    }

    /// Calls `f` for every (set, matching pattern) of `name`, most specific name first.
    fn walk(&self, name: &str, mut f: impl FnMut(SetId, (&str, Scope))) {
        let mut rest = name;
        let mut whole = true;
        loop {
            if let Some(entries) = self.names.get(rest) {
                for &(set, scope) in entries {
                    let hit = match scope {
                        Scope::Exact => whole,
                        Scope::Domain => true,
                        Scope::Subdomains => !whole,
                    };
                    if hit {
                        f(set, (rest, scope));
                    }
                }
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => break,
            }
            whole = false;
        }
    }
}

// === impl HostMatch ===

impl HostMatch {
    fn add(&mut self, set: SetId, primary: &std::ops::Range<SetId>) {
        let (word, bit) = ((set / 64) as usize, set % 64);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        if let Some(w) = self.bits.get_mut(word) {
            *w |= 1 << bit;
        }
        if self.primary.is_none() && primary.contains(&set) {
            self.primary = Some(set);
        }
    }

    pub(crate) fn contains(&self, set: SetId) -> bool {
        let (word, bit) = ((set / 64) as usize, set % 64);
        self.bits.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    pub(crate) fn primary(&self) -> Option<SetId> {
        self.primary
    }
}
