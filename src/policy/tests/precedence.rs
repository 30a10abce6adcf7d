use std::net::IpAddr;

use super::*;
use crate::policy::{Action, InspectFailure, Mode};

#[test]
fn first_matching_rule_wins() {
    let rules = [
        rule(
            "allow-get",
            "allow",
            "category = [\"cloud\"]\nmethod = [\"GET\"]",
        ),
        rule("block-cloud", "block", "category = [\"cloud\"]"),
        rule("log-all", "log", ""),
    ]
    .concat();
    let p = policy(&rules);
    assert_eq!(decided(&p, &get("dl.dropbox.com")).rule_id(), "allow-get");
    let d = decided(&p, &req("DELETE", "dl.dropbox.com", "/x", false));
    assert_eq!((d.rule_id(), d.action), ("block-cloud", Action::Block));
    let d = decided(&p, &get("example.org"));
    assert_eq!((d.rule_id(), d.action), ("log-all", Action::Log));
}

#[test]
fn swapping_two_rules_swaps_the_outcome() {
    let a = rule("a-allow", "allow", "category = [\"cloud\"]");
    let b = rule("b-block", "block", "category = [\"cloud\"]");
    assert_eq!(
        decided(
            &policy(&[a.clone(), b.clone()].concat()),
            &get("dropbox.com")
        )
        .rule_id(),
        "a-allow"
    );
    assert_eq!(
        decided(&policy(&[b, a].concat()), &get("dropbox.com")).rule_id(),
        "b-block"
    );
}

#[test]
fn no_match_falls_to_default_action() {
    let p = policy(&rule("only-cloud", "block", "category = [\"cloud\"]"));
    let d = decided(&p, &post("example.org"));
    assert_eq!(
        (d.rule, d.action, d.mode),
        (None, Action::Allow, Mode::Enforce)
    );

    let d = Dir::with_rules(&rule("only-cloud", "block", "category = [\"cloud\"]"));
    d.write("zz-default.toml", "");
    d.write(
        "00-base.toml",
        &super::BASE.replace("[policy]\n", "[policy]\ndefault_action = \"block\"\n"),
    );
    let p = d.load();
    assert_eq!(decided(&p, &get("example.org")).action, Action::Block);
}

#[test]
fn conditions_are_anded() {
    let p = policy(&rule(
        "r",
        "block",
        "category = [\"cloud\"]\nmethod = [\"POST\", \"PUT\"]\npath = [\"^/upload\"]\nbody = true",
    ));
    let hit = req("POST", "www.dropbox.com", "/upload", true);
    assert_eq!(decided(&p, &hit).rule_id(), "r");
    for miss in [
        req("GET", "www.dropbox.com", "/upload", true),
        req("POST", "example.org", "/upload", true),
        req("POST", "www.dropbox.com", "/home", true),
        req("POST", "www.dropbox.com", "/upload", false),
    ] {
        assert_eq!(decided(&p, &miss).rule_id(), "-", "{miss:?}");
    }
    // Methods compare case-insensitively.
    assert_eq!(
        decided(&p, &req("post", "www.dropbox.com", "/upload", true)).rule_id(),
        "r"
    );
}

#[test]
fn client_and_user_conditions() {
    let p = policy(
        &[
            rule(
                "lab",
                "block",
                "client = [\"192.0.2.0/28\"]\nuser = [\"Alice\"]",
            ),
            rule(
                "net",
                "log",
                "client = [\"198.51.100.0/24\", \"2001:db8::/32\"]",
            ),
        ]
        .concat(),
    );
    let mut f = get("example.org");
    assert_eq!(
        decided(&p, &f).rule_id(),
        "-",
        "no user: the user condition fails"
    );
    f.user = Some("alice");
    assert_eq!(
        decided(&p, &f).rule_id(),
        "lab",
        "user names compare case-insensitively"
    );
    f.user = Some("bob");
    assert_eq!(decided(&p, &f).rule_id(), "-");
    f.client = "198.51.100.9".parse().unwrap();
    assert_eq!(decided(&p, &f).rule_id(), "net");
    // A client seen as IPv4-mapped IPv6 is the IPv4 client.
    f.client = "::ffff:198.51.100.9".parse::<IpAddr>().unwrap();
    assert_eq!(decided(&p, &f).rule_id(), "net");
    f.client = "2001:db8::1".parse().unwrap();
    assert_eq!(decided(&p, &f).rule_id(), "net");
}

#[test]
fn a_content_rule_above_a_matching_head_rule_asks_for_inspection() {
    let rules = [
        rule("bsn", "block", "detectors = { bsn = 1 }"),
        rule("cloud-log", "log", "category = [\"cloud\"]"),
    ]
    .concat();
    let p = policy(&rules);
    // With a body, the content rule might match: inspect, and hold (it blocks in enforce).
    assert!(inspects(&p, &post("dropbox.com")));
    // Then the body walk starts at the top again.
    let d = p.evaluate_body(
        &post("dropbox.com"),
        &text_report(vec![detection(DetectorKind::Bsn, 1)], None),
    );
    assert_eq!(d.rule_id(), "bsn");
    let d = p.evaluate_body(&post("dropbox.com"), &text_report(vec![], None));
    assert_eq!(d.rule_id(), "cloud-log");
    // Without a body no content condition can hold: the head decides at once.
    assert_eq!(decided(&p, &get("dropbox.com")).rule_id(), "cloud-log");
}

#[test]
fn a_head_rule_above_content_rules_decides_without_inspection() {
    let rules = [
        rule(
            "cloud-block",
            "block",
            "category = [\"cloud\"]\nbody = true",
        ),
        rule("bsn", "block", "detectors = { bsn = 1 }"),
    ]
    .concat();
    let p = policy(&rules);
    assert_eq!(decided(&p, &post("dropbox.com")).rule_id(), "cloud-block");
    assert!(inspects(&p, &post("example.org")));
}

#[test]
fn content_rules_whose_head_does_not_match_need_no_inspection() {
    let p = policy(&rule(
        "ext-bsn",
        "block",
        "destination = \"external\"\ndetectors = { bsn = 1 }",
    ));
    assert_eq!(decided(&p, &post("wiki.corp.example")).rule_id(), "-");
    assert!(inspects(&p, &post("example.org")));
}

#[test]
fn hold_only_when_an_enforce_block_is_possible() {
    let d = Dir::with_rules(&rule("bsn-log", "log", "detectors = { bsn = 1 }"));
    d.write(
        "00-base.toml",
        &super::BASE.replace(
            "[policy]\n",
            "[policy]\non_error = { external = \"allow\" }\n",
        ),
    );
    let p = d.load();
    assert!(
        !inspects(&p, &post("example.org")),
        "only a log rule and on_error allow: stream"
    );

    // The same with the default on_error (block external): a limit hit could block.
    let p = policy(&rule("bsn-log", "log", "detectors = { bsn = 1 }"));
    assert!(inspects(&p, &post("example.org")));
    // Internal destinations: on_error allows, so nothing can block.
    assert!(!inspects(&p, &post("corp.example")));
}

#[test]
fn on_error_blocks_external_and_allows_internal() {
    let p = policy(&rule("r", "allow", "category = [\"cloud\"]"));
    for what in InspectFailure::ALL {
        let d = p.on_error(&post("example.org"), what);
        assert!(d.blocks(), "{what:?}");
        assert_eq!(
            d.rule_id(),
            format!("on-error-{}", what.as_str().replace('_', "-"))
        );
        assert!(!p.on_error(&post("corp.example"), what).blocks());
    }
    let info = p
        .on_error(&post("example.org"), InspectFailure::Timeout)
        .rule
        .unwrap();
    assert!(info.reason_nl.contains("niet volledig"));
    assert_eq!(info.ksp, "1.4");
}

#[test]
fn a_limit_hit_goes_to_on_error_unless_a_rule_blocks_or_names_it() {
    let rules = [
        rule(
            "limit-ok",
            "allow",
            "host = [\"partner.example\"]\nhit_limit = true",
        ),
        rule("bsn", "block", "detectors = { bsn = 1 }"),
        rule("log-rest", "log", "destination = \"external\""),
    ]
    .concat();
    let p = policy(&rules);
    let clean = text_report(vec![], None);
    // Complete report, nothing found: the catch-all decides.
    assert_eq!(
        p.evaluate_body(&post("example.org"), &clean).rule_id(),
        "log-rest"
    );
    // Incomplete report: the BSN rule might have matched on the unread part.
    let d = p.evaluate_body(&post("example.org"), &with_limit(clean.clone()));
    assert_eq!(d.rule_id(), "on-error-limit");
    assert!(d.blocks());
    // A finding that blocks stands, limit or not.
    let bsn = with_limit(text_report(vec![detection(DetectorKind::Bsn, 2)], None));
    assert_eq!(p.evaluate_body(&post("example.org"), &bsn).rule_id(), "bsn");
    // A rule that names hit_limit has taken limits into account.
    assert_eq!(
        p.evaluate_body(&post("partner.example"), &with_limit(clean.clone()))
            .rule_id(),
        "limit-ok"
    );
    // Internal destination: on_error allows.
    let d = p.evaluate_body(&post("corp.example"), &with_limit(clean));
    assert_eq!((d.rule_id(), d.action), ("on-error-limit", Action::Allow));
}

#[test]
fn a_limit_hit_with_no_content_rule_above_changes_nothing() {
    let p = policy(
        &[
            rule("log-ext", "log", "destination = \"external\""),
            rule("bsn", "block", "detectors = { bsn = 1 }"),
        ]
        .concat(),
    );
    let d = p.evaluate_body(&post("example.org"), &with_limit(text_report(vec![], None)));
    assert_eq!(d.rule_id(), "log-ext");
}

#[test]
fn upload_endpoint_condition() {
    let p = policy(&rule("upload-hosts", "block", "upload_endpoint = true"));
    assert_eq!(
        decided(&p, &post("content.dropboxapi.com")).rule_id(),
        "upload-hosts"
    );
    assert_eq!(decided(&p, &post("dl.dropbox.com")).rule_id(), "-");
    let p = policy(&rule(
        "not-upload",
        "log",
        "upload_endpoint = false\ncategory = [\"cloud\"]",
    ));
    assert_eq!(decided(&p, &get("dl.dropbox.com")).rule_id(), "not-upload");
    assert_eq!(decided(&p, &get("content.dropboxapi.com")).rule_id(), "-");
}

#[test]
fn hit_limit_false_applies_to_complete_reports_only() {
    let p = policy(&rule("complete-only", "allow", "hit_limit = false"));
    assert_eq!(
        p.evaluate_body(&post("example.org"), &text_report(vec![], None))
            .rule_id(),
        "complete-only"
    );
    assert_eq!(
        p.evaluate_body(&post("example.org"), &with_limit(text_report(vec![], None)))
            .rule_id(),
        "-"
    );
}
