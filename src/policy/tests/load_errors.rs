use std::path::Path;

use super::{Dir, fixture, rule};
use crate::policy::{Issue, Policy, PolicyError, cli};

fn errors(dir: &Path) -> PolicyError {
    match Policy::load(dir) {
        Ok(p) => panic!(
            "{} should not load (version {})",
            dir.display(),
            p.version()
        ),
        Err(e) => e,
    }
}

/// The only issue of a broken fixture.
fn only_issue(name: &str) -> Issue {
    let e = errors(&fixture(name));
    assert_eq!(e.issues().len(), 1, "{e}");
    e.issues()[0].clone()
}

fn assert_issue(issue: &Issue, file: &str, line: usize, key: &str, message_part: &str) {
    assert_eq!(
        issue.file.file_name().and_then(|n| n.to_str()),
        Some(file),
        "{issue}"
    );
    assert_eq!(issue.line, Some(line), "{issue}");
    assert_eq!(issue.key, key, "{issue}");
    assert!(issue.message.contains(message_part), "{issue}");
}

#[test]
fn the_good_fixture_loads() {
    let p = Policy::load(&fixture("good")).unwrap();
    assert_eq!(p.summary().rules, 2);
    assert_eq!(p.version().len(), 12);
    assert!(p.version().bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn a_typo_in_a_key_names_file_line_and_key() {
    let i = only_issue("typo-key");
    assert_issue(
        &i,
        "rules.toml",
        14,
        "rules[1].actoin",
        "unknown field `actoin`",
    );
    // Display is file:line: key: message.
    let shown = i.to_string();
    assert!(shown.ends_with("rules.toml:14: rules[1].actoin: unknown field `actoin`, expected one of `id`, `action`, `mode`, `reason_nl`, `reason_en`, `ksp`, `destination`, `category`, `host`, `upload_endpoint`, `client`, `user`, `method`, `path`, `body`, `file`, `text`, `label`, `detectors`, `hit_limit`"), "{shown}");
}

#[test]
fn a_bad_regex_names_the_pattern() {
    let i = only_issue("bad-regex");
    assert_issue(&i, "rules.toml", 15, "rules[1].path[1]", "invalid regex");
}

#[test]
fn an_unknown_category_lists_the_defined_ones() {
    let i = only_issue("unknown-category");
    assert_issue(
        &i,
        "rules.toml",
        12,
        "rules[1].category",
        "unknown category \"webmail\" (defined: cloud-storage)",
    );
}

#[test]
fn a_bad_cidr_names_the_entry() {
    let i = only_issue("bad-cidr");
    assert_issue(
        &i,
        "rules.toml",
        12,
        "rules[1].client[1]",
        "\"10.0.0.0/33\" is not an IP address or network",
    );
}

#[test]
fn an_unknown_file_type_lists_the_names() {
    let i = only_issue("unknown-file-type");
    assert_issue(
        &i,
        "rules.toml",
        13,
        "rules[1].file.type[1]",
        "unknown name \"pdff\", expected one of: text, csv",
    );
}

#[test]
fn a_duplicate_rule_id_points_at_the_first() {
    let i = only_issue("duplicate-id");
    assert_issue(
        &i,
        "rules.toml",
        10,
        "rules[1].id",
        "duplicate rule id \"cloud-upload\" (first defined at rules.toml:1)",
    );
}

#[test]
fn a_bad_host_in_another_file_names_that_file() {
    let i = only_issue("bad-host");
    assert_issue(
        &i,
        "00-base.toml",
        14,
        "categories.cloud-storage.hosts[2]",
        "wildcard",
    );
}

#[test]
fn an_empty_rule_list_is_an_error() {
    let i = only_issue("no-rules");
    assert_eq!((i.line, i.key.as_str()), (None, "rules"));
    assert!(i.message.contains("no rules"));
}

#[test]
fn every_problem_is_reported() {
    let e = errors(&fixture("many"));
    let keys: Vec<&str> = e.issues().iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        ["rules[1].ksp", "rules[1].category", "rules[1].body"],
        "{e}"
    );
    assert!(e.issues().iter().all(|i| i.line.is_some()));
    assert_eq!(e.to_string().lines().count(), 3);
}

#[test]
fn enum_names_of_the_report_are_checked() {
    for (extra, key, part) in [
        (
            "label = \"top-secret\"",
            "rules[0].label",
            "expected one of: public, internal, confidential, secret",
        ),
        (
            "detectors = { bsnn = 1 }",
            "rules[0].detectors.bsnn",
            "unknown name \"bsnn\"",
        ),
        (
            "detectors = { bsn = 0 }",
            "rules[0].detectors.bsn",
            "a minimum count must be between 1",
        ),
        (
            "file = { encryption_kind = [\"rot13\"] }",
            "rules[0].file.encryption_kind[0]",
            "zip-aes",
        ),
        (
            "file = { encrypted = \"maybe\" }",
            "rules[0].file.encrypted",
            "expected \"yes\", \"no\" or \"unknown\"",
        ),
        (
            "file = { min_size = \"10 parsecs\" }",
            "rules[0].file.min_size",
            "unknown size unit",
        ),
        (
            "destination = \"outside\"",
            "rules[0].destination",
            "unknown variant `outside`",
        ),
        (
            "method = \"GET /\"",
            "rules[0].method",
            "not an HTTP method",
        ),
    ] {
        let d = Dir::with_rules(&rule("r", "block", extra));
        let e = errors(d.path());
        let i = &e.issues()[0];
        assert_eq!(i.key, key, "{extra}: {e}");
        assert!(i.message.contains(part), "{extra}: {e}");
        assert!(i.line.is_some(), "{extra}: {e}");
    }
    let e = errors(Dir::with_rules(&rule("r", "deny", "")).path());
    assert_eq!(e.issues()[0].key, "rules[0].action");
    assert!(
        e.to_string()
            .contains("unknown variant `deny`, expected one of `allow`, `log`, `block`"),
        "{e}"
    );
}

#[test]
fn contradictions_are_rejected() {
    for (extra, part) in [
        (
            "body = false\nlabel = \"secret\"",
            "content conditions need a body",
        ),
        ("file = {}", "no conditions"),
        ("text = {}", "no conditions"),
        (
            "file = { min_size = 10, max_size = 5 }",
            "min_size is above max_size",
        ),
        (
            "file = { type = \"pdf\", not_type = [\"pdf\"] }",
            "both required and excluded",
        ),
        ("category = []", "empty list"),
    ] {
        let d = Dir::with_rules(&rule("r", "block", extra));
        let e = errors(d.path());
        assert!(e.to_string().contains(part), "{extra}: {e}");
    }
}

#[test]
fn sections_may_be_defined_once() {
    let d = Dir::with_rules(&rule("r", "block", ""));
    d.write(
        "zz-more.toml",
        "[policy]\ncontact = { name = \"x\", url = \"https://x.example\" }\n",
    );
    let e = errors(d.path());
    let i = &e.issues()[0];
    assert_eq!((i.key.as_str(), i.line), ("policy", Some(1)));
    assert!(
        i.message.contains("already defined at 00-base.toml:2"),
        "{e}"
    );

    let d = Dir::with_rules(&rule("r", "block", ""));
    d.write(
        "zz-more.toml",
        "[categories.cloud]\nhosts = [\"x.example\"]\n",
    );
    let e = errors(d.path());
    assert!(
        e.to_string()
            .contains("category is already defined at 00-base.toml:"),
        "{e}"
    );
}

#[test]
fn missing_policy_section_and_empty_directory() {
    let d = Dir::new();
    d.write("rules.toml", &rule("r", "block", ""));
    let e = errors(d.path());
    assert_eq!(e.issues()[0].key, "policy");
    let empty = Dir::new();
    let e = errors(empty.path());
    assert!(e.to_string().contains("no *.toml policy files"), "{e}");
}

#[test]
fn a_syntax_error_has_a_line() {
    let d = Dir::with_rules("[[rules]]\nid = \"x\"\naction = \"block\nksp = \"1\"\n");
    let e = errors(d.path());
    let i = &e.issues()[0];
    assert_eq!(
        i.file.file_name().and_then(|n| n.to_str()),
        Some("rules.toml")
    );
    assert_eq!(i.line, Some(3), "{e}");
}

#[test]
fn hidden_and_other_files_are_ignored() {
    let d = Dir::with_rules(&rule("r", "block", ""));
    d.write(".rules.toml.swp", "garbage");
    d.write("#rules.toml#", "garbage");
    d.write("notes.txt", "garbage");
    let p = d.load();
    assert_eq!(p.summary().files, ["00-base.toml", "rules.toml"]);
}

#[test]
fn check_exits_2_and_prints_every_issue() {
    let mut out = Vec::new();
    assert_eq!(cli::check(&fixture("many"), &mut out), 2);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("rules.toml:10: rules[1].ksp: must not be empty"),
        "{text}"
    );
    assert!(
        text.contains("rules.toml:12: rules[1].category: unknown category \"nope\""),
        "{text}"
    );
    assert!(text.contains("policy invalid: 3 problems"), "{text}");

    let mut out = Vec::new();
    assert_eq!(cli::check(&fixture("typo-key"), &mut out), 2);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("typo-key/rules.toml:14: rules[1].actoin: unknown field"),
        "{text}"
    );
}

#[test]
fn check_on_a_good_policy_prints_a_summary() {
    let mut out = Vec::new();
    assert_eq!(cli::check(&fixture("good"), &mut out), 0);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("policy OK: "), "{text}");
    assert!(
        text.contains("rules       2 (1 block, 0 monitor, 0 with content conditions)"),
        "{text}"
    );
    assert!(
        text.contains("categories  1 (2 hosts, 0 upload endpoints)"),
        "{text}"
    );
    assert!(text.contains("internal    1 entries"), "{text}");
}
