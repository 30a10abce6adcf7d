use std::net::IpAddr;

use super::{get, policy, rule};
use crate::policy::host::{HostIndex, HostKey, HostPattern};

fn index(patterns: &[&str]) -> HostIndex {
    let mut idx = HostIndex::default();
    let set = idx.new_set();
    for p in patterns {
        idx.insert(set, &p.parse::<HostPattern>().unwrap());
    }
    idx
}

fn hits(idx: &HostIndex, host: &str) -> bool {
    idx.lookup(&HostKey::new(host), 0..0).contains(0)
}

#[test]
fn domain_entry_matches_itself_and_subdomains_on_whole_labels() {
    let idx = index(&["dropbox.com"]);
    assert!(hits(&idx, "dropbox.com"));
    assert!(hits(&idx, "www.dropbox.com"));
    assert!(hits(&idx, "a.b.dropbox.com"));
    assert!(!hits(&idx, "notdropbox.com"));
    assert!(!hits(&idx, "dropbox.com.evil.example"));
    assert!(!hits(&idx, "com"));
}

#[test]
fn matching_ignores_case_and_trailing_dot() {
    let idx = index(&["DropBox.COM."]);
    assert!(hits(&idx, "WWW.Dropbox.com"));
    assert!(hits(&idx, "www.dropbox.com."));
}

#[test]
fn subdomain_and_exact_patterns() {
    let sub = index(&[".example.com"]);
    assert!(hits(&sub, "www.example.com"));
    assert!(!hits(&sub, "example.com"));
    let star = index(&["*.example.com"]);
    assert!(hits(&star, "a.example.com"));
    assert!(!hits(&star, "example.com"));
    let exact = index(&["=www.example.com"]);
    assert!(hits(&exact, "www.example.com"));
    assert!(!hits(&exact, "a.www.example.com"));
    assert!(!hits(&exact, "example.com"));
}

#[test]
fn ip_literals_and_networks() {
    let idx = index(&["192.0.2.7", "10.0.0.0/8", "2001:db8::/32", "[::1]"]);
    assert!(hits(&idx, "192.0.2.7"));
    assert!(!hits(&idx, "192.0.2.8"));
    assert!(hits(&idx, "10.200.3.4"));
    assert!(hits(&idx, "[2001:db8::5]"));
    assert!(hits(&idx, "::1"));
    // An IPv4-mapped IPv6 literal is the IPv4 address.
    assert!(hits(&idx, "::ffff:10.1.1.1"));
    // Addresses never match by label: "7" is not a suffix of "192.0.2.7".
    assert!(!hits(&index(&["2.7.example"]), "192.0.2.7"));
}

#[test]
fn bad_patterns_are_rejected_with_a_reason() {
    for (bad, why) in [
        ("", "empty"),
        ("foo.*.com", "wildcard"),
        ("exa mple.com", "not a host name"),
        ("bücher.de", "xn--"),
        ("10.0.0.0/33", "not a valid network"),
        ("10.0.0", "neither a host name nor an IP address"),
        ("a..b", "not a host name"),
    ] {
        let err = bad.parse::<HostPattern>().unwrap_err();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}

#[test]
fn lookup_reports_the_pattern_that_matched() {
    let idx = index(&["dropbox.com", "=exact.example", ".sub.example"]);
    let key = HostKey::new("www.dropbox.com");
    assert_eq!(idx.matched_by(&key, 0).as_deref(), Some("dropbox.com"));
    assert_eq!(
        idx.matched_by(&HostKey::new("exact.example"), 0).as_deref(),
        Some("=exact.example")
    );
    assert_eq!(
        idx.matched_by(&HostKey::new("a.sub.example"), 0).as_deref(),
        Some(".sub.example")
    );
    assert_eq!(idx.matched_by(&HostKey::new("other.example"), 0), None);
}

#[test]
fn classify_internal_external_and_most_specific_category() {
    let p = policy(&rule("r", "allow", ""));
    let d = p.classify("www.dropbox.com");
    // www.dropbox.com is in `mail` by its exact name and in `cloud` by dropbox.com: the more
    // specific entry wins.
    assert_eq!(d.category.as_deref(), Some("mail"));
    assert!(!d.internal);
    assert_eq!(
        p.classify("dl.dropbox.com").category.as_deref(),
        Some("cloud")
    );
    assert_eq!(
        p.classify("content.dropboxapi.com").category.as_deref(),
        Some("cloud")
    );
    assert_eq!(p.classify("notdropbox.com").category, None);
    assert!(p.classify("intranet.corp.example").internal);
    assert!(p.classify("corp.example").internal);
    assert!(!p.classify("corp.example.org").internal);
    assert!(p.classify("10.1.2.3").internal);
    assert!(!p.classify("11.1.2.3").internal);
    assert_eq!(
        p.classify("exact.example").category.as_deref(),
        Some("cloud")
    );
    assert_eq!(p.classify("www.exact.example").category, None);
}

#[test]
fn category_conditions_match_any_listed_category() {
    let rules = rule("to-cloud", "block", "category = [\"cloud\"]");
    let p = policy(&rules);
    // www.dropbox.com's primary category is mail, but it is in cloud too.
    let d = super::decided(&p, &get("www.dropbox.com"));
    assert_eq!(d.rule_id(), "to-cloud");
    let d = super::decided(&p, &get("notdropbox.com"));
    assert_eq!(d.rule_id(), "-");
}

#[test]
fn request_hosts_are_normalised() {
    assert_eq!(
        HostKey::new("WWW.Example.COM."),
        HostKey::new("www.example.com")
    );
    // The facts promise no port; a stray one must not make a listed host unlisted.
    assert_eq!(
        HostKey::new("www.Example.com:443"),
        HostKey::new("www.example.com")
    );
    assert_eq!(
        HostKey::new("[2001:db8::1]:8443"),
        HostKey::new("2001:db8::1")
    );
    assert_eq!(
        HostKey::new("2001:db8::1"),
        HostKey::Ip("2001:db8::1".parse().unwrap())
    );
    assert_eq!(
        HostKey::new("[::ffff:192.0.2.1]"),
        HostKey::Ip(IpAddr::from([192, 0, 2, 1]))
    );
}
