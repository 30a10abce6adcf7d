use std::path::{Path, PathBuf};

use super::*;
use crate::policy::cli;

fn files(names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| fixture("files").join(n)).collect()
}

fn explain_in(dir: &Path, method: &str, url: &str, files: &[PathBuf]) -> (i32, String) {
    let mut out = Vec::new();
    let code = cli::explain(dir, method, url, files, CLIENT, &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

fn explain(method: &str, url: &str, files: &[PathBuf]) -> (i32, String) {
    explain_in(&shipped(), method, url, files)
}

/// The line for rule `id` in the rules section.
fn rule_line<'a>(text: &'a str, id: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(&format!("{id} ")))
        .unwrap_or_else(|| panic!("no line for {id} in:\n{text}"))
}

#[test]
fn an_upload_to_dropbox() {
    let (code, text) = explain("POST", "https://www.dropbox.com/upload", &[]);
    assert_eq!(code, 1, "blocked");
    assert!(
        text.contains(
            "request   POST https://www.dropbox.com:443/upload  client 192.0.2.10  body: yes"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "host      www.dropbox.com: external, category cloud-storage (entry dropbox.com)"
        ),
        "{text}"
    );
    assert!(text.contains("connect   intercept\n"), "{text}");
    assert!(
        text.contains("stage     decided on the request head"),
        "{text}"
    );
    assert!(
        rule_line(&text, "ksp-internal")
            .ends_with("no: destination is external, rule wants internal")
    );
    assert!(
        rule_line(&text, "ksp-1.4-whatsapp-web")
            .ends_with("no: www.dropbox.com is not in the rule's host list")
    );
    assert!(
        rule_line(&text, "ksp-1.4-cloud-upload").contains("MATCH (ksp.toml:"),
        "{text}"
    );
    assert!(text.contains("(12 rules below not evaluated)"), "{text}");
    assert!(
        text.contains("decision  BLOCK (enforce) by ksp-1.4-cloud-upload  [KSP 1.4]"),
        "{text}"
    );
    assert!(text.contains("  nl: Bedrijfsinformatie mag niet"), "{text}");
    assert!(
        text.contains("  en: Company information must not"),
        "{text}"
    );
    assert!(
        text.contains("contact   Servicedesk Informatiebeveiliging, security@kpn.com"),
        "{text}"
    );
}

#[test]
fn browsing_dropbox_is_logged() {
    let (code, text) = explain("GET", "https://www.dropbox.com/home", &[]);
    assert_eq!(code, 0);
    assert!(
        rule_line(&text, "ksp-1.4-cloud-upload").ends_with("no: request has no body"),
        "{text}"
    );
    assert!(
        rule_line(&text, "ksp-1.4-webmail-upload")
            .ends_with("no: www.dropbox.com is not in category webmail (it is in cloud-storage)"),
        "{text}"
    );
    assert!(
        text.contains("decision  log (enforce) by ksp-1.4-cloud-browse  [KSP 1.4]"),
        "{text}"
    );
    assert!(
        !text.contains("contact"),
        "no contact line unless blocked:\n{text}"
    );
}

#[test]
fn whatsapp_web_is_refused_at_connect() {
    let (code, text) = explain("GET", "https://web.whatsapp.com/", &[]);
    assert_eq!(code, 1);
    assert!(
        text.contains("connect   block (rule ksp-1.4-whatsapp-web)"),
        "{text}"
    );
    assert!(
        text.contains("decision  block (enforce) at CONNECT"),
        "{text}"
    );
}

#[test]
fn a_body_without_files_names_each_content_rule() {
    let (code, text) = explain("POST", "upload.example.org/form", &[]);
    assert_eq!(code, 0, "no findings: allowed");
    assert!(
        text.contains("needs the body inspected (held until the verdict); no --file given"),
        "{text}"
    );
    assert!(
        rule_line(&text, "ksp-privacy-4-bsn").ends_with("no: no BSN found (needs ≥ 1)"),
        "{text}"
    );
    assert!(
        rule_line(&text, "ksp-1.2-classified-form").ends_with(
            "no: form/text fields: no classification label found (needs confidential or higher)"
        ),
        "{text}"
    );
    assert!(
        rule_line(&text, "ksp-1.4-unencrypted-file").ends_with("no: no file in the body"),
        "{text}"
    );
    assert!(
        rule_line(&text, "ksp-1.4-unproven-put").ends_with("no: method POST is not PUT, PATCH"),
        "{text}"
    );
    assert!(
        text.contains("no rule matched: default action allow"),
        "{text}"
    );
    assert!(
        text.contains("decision  allow (enforce) by default_action"),
        "{text}"
    );
}

#[test]
fn a_plain_pdf_upload_is_blocked_with_the_file_shown() {
    let (code, text) = explain(
        "POST",
        "https://upload.example.org/files",
        &files(&["report.pdf"]),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("files\n  report.pdf  pdf, 315 bytes, encrypted: no"),
        "{text}"
    );
    assert!(
        rule_line(&text, "ksp-3-program-file")
            .contains("report.pdf: type pdf, rule wants exe, elf"),
        "{text}"
    );
    assert!(
        rule_line(&text, "ksp-1.4-unencrypted-file").contains("MATCH"),
        "{text}"
    );
    assert!(
        text.contains("decision  BLOCK (enforce) by ksp-1.4-unencrypted-file  [KSP 1.4]"),
        "{text}"
    );
    assert!(
        text.contains("en: Files for external parties must be encrypted."),
        "{text}"
    );
}

#[test]
fn unrecognised_bytes_are_not_proof_of_encryption() {
    let (code, text) = explain(
        "POST",
        "https://upload.example.org/files",
        &files(&["photo.png", "noise.bin"]),
    );
    assert_eq!(code, 1);
    // The PNG is the first file that is plainly unencrypted.
    assert!(
        text.contains("decision  BLOCK (enforce) by ksp-1.4-unencrypted-file"),
        "{text}"
    );
    let (code, text) = explain(
        "POST",
        "https://upload.example.org/files",
        &files(&["noise.bin"]),
    );
    assert_eq!(code, 1);
    assert!(
        rule_line(&text, "ksp-1.4-unencrypted-file")
            .contains("noise.bin: encrypted: unknown, rule wants no"),
        "{text}"
    );
    assert!(text.contains("by ksp-1.4-unproven-file"), "{text}");
    assert!(
        text.contains("could not be shown to be encrypted"),
        "{text}"
    );
}

#[test]
fn the_same_upload_to_an_internal_host_is_allowed() {
    let (code, text) = explain(
        "POST",
        "https://share.kpn.com/upload",
        &files(&["report.pdf"]),
    );
    assert_eq!(code, 0);
    assert!(text.contains("host      share.kpn.com: internal"), "{text}");
    assert!(
        text.contains("connect   tunnel (rule ksp-internal)"),
        "{text}"
    );
    assert!(
        text.contains("decision  allow (enforce) by ksp-internal"),
        "{text}"
    );
}

#[test]
fn the_explanation_agrees_with_the_decision() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("GET", "https://www.example.org/", &[]),
        (
            "POST",
            "https://www.googleapis.com/upload/drive/v3/files",
            &[],
        ),
        (
            "POST",
            "https://www.googleapis.com/youtube/v3/videos",
            &["report.pdf"],
        ),
        ("PUT", "https://bucket.example.org/x", &["noise.bin"]),
        ("POST", "https://mail.google.com/mail/u/0/", &[]),
        ("GET", "http://wetransfer.com/", &[]),
    ];
    for (method, url, names) in cases {
        let (_, text) = explain(method, url, &files(names));
        let decided_by = text
            .lines()
            .find_map(|l| l.strip_prefix("decision  "))
            .and_then(|l| l.split(" by ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no decision line:\n{text}"));
        let matched = text
            .lines()
            .find(|l| l.contains("  MATCH ("))
            .and_then(|l| l.split_whitespace().next());
        match matched {
            Some(id) => assert_eq!(id, decided_by, "{method} {url}:\n{text}"),
            None => assert_eq!(decided_by, "default_action", "{method} {url}:\n{text}"),
        }
    }
}

#[test]
fn errors_exit_2() {
    let (code, text) = explain("GET", "ftp://example.org/", &[]);
    assert_eq!(code, 2);
    assert!(text.contains("only http and https"), "{text}");
    let (code, text) = explain("POST", "https://example.org/", &files(&["missing.pdf"]));
    assert_eq!(code, 2);
    assert!(text.contains("missing.pdf"), "{text}");
    let (code, text) = explain_in(&fixture("typo-key"), "GET", "https://example.org/", &[]);
    assert_eq!(code, 2);
    assert!(text.contains("rules.toml:14: rules[1].actoin"), "{text}");
}
