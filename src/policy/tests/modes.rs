use super::*;
use crate::policy::{Action, Mode};

fn base_with_mode(mode: &str) -> String {
    super::BASE.replace("[policy]\n", &format!("[policy]\nmode = \"{mode}\"\n"))
}

fn load(mode: &str, rules: &str) -> Policy {
    let d = Dir::with_rules(rules);
    d.write("00-base.toml", &base_with_mode(mode));
    d.load()
}

#[test]
fn enforce_blocks_and_monitor_only_logs_a_would_block() {
    let rules = rule("cloud", "block", "category = [\"cloud\"]");
    let d = decided(&load("enforce", &rules), &get("dropbox.com"));
    assert!(d.blocks());
    assert!(!d.would_block());
    let d = decided(&load("monitor", &rules), &get("dropbox.com"));
    assert_eq!((d.action, d.mode), (Action::Block, Mode::Monitor));
    assert!(!d.blocks());
    assert!(d.would_block());
    assert!(d.is_finding());
}

#[test]
fn a_rule_mode_overrides_the_global_mode() {
    let rules = [
        rule(
            "trial",
            "block",
            "category = [\"cloud\"]\nmode = \"monitor\"",
        ),
        rule(
            "strict",
            "block",
            "category = [\"mail\"]\nmode = \"enforce\"",
        ),
        rule("inherit", "block", "host = [\"example.org\"]"),
    ]
    .concat();
    let enforce = load("enforce", &rules);
    assert!(decided(&enforce, &get("dl.dropbox.com")).would_block());
    assert!(decided(&enforce, &get("mail.example")).blocks());
    assert!(decided(&enforce, &get("example.org")).blocks());
    let monitor = load("monitor", &rules);
    assert!(decided(&monitor, &get("dl.dropbox.com")).would_block());
    assert!(
        decided(&monitor, &get("mail.example")).blocks(),
        "explicit enforce stays enforce"
    );
    assert!(decided(&monitor, &get("example.org")).would_block());
}

#[test]
fn monitor_mode_never_holds_a_body() {
    let rules = rule("bsn", "block", "detectors = { bsn = 1 }");
    assert!(inspects(&load("enforce", &rules), &post("example.org")));
    let monitor = load("monitor", &rules);
    assert!(!inspects(&monitor, &post("example.org")));
    let r = text_report(vec![detection(DetectorKind::Bsn, 1)], None);
    let d = monitor.evaluate_body(&post("example.org"), &r);
    assert!(d.would_block());
    // on_error follows the global mode as well.
    let d = monitor.on_error(&post("example.org"), crate::policy::InspectFailure::Timeout);
    assert_eq!((d.action, d.mode), (Action::Block, Mode::Monitor));
}

#[test]
fn monitor_blocks_do_not_refuse_connect() {
    let rules = rule("cloud", "block", "category = [\"cloud\"]");
    assert_eq!(
        load("enforce", &rules)
            .check_connect(&connect("dropbox.com"))
            .as_str(),
        "block"
    );
    let c = load("monitor", &rules).check_connect(&connect("dropbox.com"));
    // No [tls] section: not intercepted, so tunnelled, with the would-block on record.
    assert_eq!(c.as_str(), "tunnel");
    assert!(c.decision().would_block());
}
