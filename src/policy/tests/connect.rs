use super::*;
use crate::policy::Action;

const TLS: &str = r#"
[tls]
intercept = ["dropbox.com", "example.org", "corp.example"]
bypass = ["bank.example", "=safe.example.org"]
"#;

fn with_tls(rules: &str, tls: &str) -> Policy {
    let d = Dir::with_rules(rules);
    d.write("tls.toml", tls);
    d.load()
}

#[test]
fn destination_only_block_refuses_connect() {
    let p = policy(&rule("no-cloud", "block", "category = [\"cloud\"]"));
    let c = p.check_connect(&connect("www.dropbox.com"));
    assert_eq!(connect_kind(&c), "block");
    assert_eq!(c.decision().rule_id(), "no-cloud");
}

#[test]
fn a_rule_that_needs_the_request_keeps_the_tunnel_open() {
    // Uploads are blocked, but a GET may be allowed: CONNECT must not be refused.
    let p = with_tls(
        &rule("no-upload", "block", "category = [\"cloud\"]\nbody = true"),
        TLS,
    );
    assert_eq!(
        connect_kind(&p.check_connect(&connect("www.dropbox.com"))),
        "intercept"
    );
    // The same when a path, method or content rule comes first.
    let rules = [
        rule(
            "allow-get",
            "allow",
            "category = [\"cloud\"]\nmethod = [\"GET\"]",
        ),
        rule("no-cloud", "block", "category = [\"cloud\"]"),
    ]
    .concat();
    let p = with_tls(&rules, TLS);
    assert_eq!(
        connect_kind(&p.check_connect(&connect("dropbox.com"))),
        "intercept"
    );
}

#[test]
fn an_earlier_destination_rule_shadows_a_later_block() {
    let rules = [
        rule("allow-partner", "allow", "host = [\"share.dropbox.com\"]"),
        rule("no-cloud", "block", "category = [\"cloud\"]"),
    ]
    .concat();
    let p = with_tls(&rules, TLS);
    let c = p.check_connect(&connect("share.dropbox.com"));
    assert_eq!(connect_kind(&c), "intercept");
    assert_eq!(c.decision().rule_id(), "allow-partner");
    assert_eq!(
        connect_kind(&p.check_connect(&connect("www.dropbox.com"))),
        "block"
    );
}

#[test]
fn client_conditions_count_at_connect() {
    let p = policy(&rule(
        "lab-only",
        "block",
        "client = [\"192.0.2.0/24\"]\nhost = [\"example.org\"]",
    ));
    assert_eq!(
        connect_kind(&p.check_connect(&connect("example.org"))),
        "block"
    );
    let mut other = connect("example.org");
    other.client = "198.51.100.1".parse().unwrap();
    assert_ne!(connect_kind(&p.check_connect(&other)), "block");
}

#[test]
fn tls_lists_choose_tunnel_or_intercept() {
    let p = with_tls(&rule("log", "log", "category = [\"mail\"]"), TLS);
    assert_eq!(
        connect_kind(&p.check_connect(&connect("www.dropbox.com"))),
        "intercept"
    );
    assert_eq!(
        connect_kind(&p.check_connect(&connect("api.example.org"))),
        "intercept"
    );
    assert_eq!(
        connect_kind(&p.check_connect(&connect("unlisted.example.net"))),
        "tunnel"
    );
    // Bypass wins over intercept.
    assert_eq!(
        connect_kind(&p.check_connect(&connect("safe.example.org"))),
        "tunnel"
    );
    assert_eq!(
        connect_kind(&p.check_connect(&connect("www.bank.example"))),
        "tunnel"
    );
    // Internal hosts tunnel unless intercept_internal.
    assert_eq!(
        connect_kind(&p.check_connect(&connect("corp.example"))),
        "tunnel"
    );
    let p = with_tls(
        &rule("log", "log", ""),
        &format!("{TLS}intercept_internal = true\n"),
    );
    assert_eq!(
        connect_kind(&p.check_connect(&connect("corp.example"))),
        "intercept"
    );
}

#[test]
fn intercept_star_means_every_host_and_no_tls_section_means_tunnel() {
    let star = "[tls]\nintercept = [\"*\"]\nbypass = [\"bank.example\"]\n";
    let p = with_tls(&rule("log", "log", "category = [\"mail\"]"), star);
    assert_eq!(
        connect_kind(&p.check_connect(&connect("anything.example.net"))),
        "intercept"
    );
    assert_eq!(
        connect_kind(&p.check_connect(&connect("bank.example"))),
        "tunnel"
    );
    let p = policy(&rule("log", "log", "category = [\"mail\"]"));
    assert_eq!(
        connect_kind(&p.check_connect(&connect("anything.example.net"))),
        "tunnel"
    );
}

#[test]
fn a_destination_log_rule_is_carried_on_the_tunnel_decision() {
    let p = with_tls(&rule("log-mail", "log", "category = [\"mail\"]"), TLS);
    let c = p.check_connect(&connect("mail.example"));
    assert_eq!(connect_kind(&c), "tunnel");
    assert_eq!(
        (c.decision().rule_id(), c.decision().action),
        ("log-mail", Action::Log)
    );
    assert_eq!(c.decision().destination.category.as_deref(), Some("mail"));
}
