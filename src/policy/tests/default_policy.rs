//! The shipped `policies/` directory encodes KSP.md "What this means for the proxy".

use super::*;
use crate::policy::{Action, InspectFailure, Mode, cli};

fn ksp() -> Policy {
    Policy::load(&shipped()).unwrap_or_else(|e| panic!("shipped policy must load:\n{e}"))
}

#[test]
fn shipped_policy_passes_check() {
    let mut out = Vec::new();
    let code = cli::check(&shipped(), &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("mode        enforce, default action allow"),
        "{text}"
    );
    let s = ksp().summary();
    assert_eq!(s.categories, 5);
    assert!(s.hosts > 100, "{s:?}");
    assert!(s.upload_hosts >= 20, "{s:?}");
    assert_eq!(s.tls_intercept, None, "intercept all");
    assert!(s.tls_bypass > 50);
}

#[test]
fn every_rule_cites_the_ksp_and_has_both_reasons() {
    let p = ksp();
    for r in &p.rules {
        assert!(
            ["1.2/1.4", "1.4", "privacy-4", "3"].contains(&r.info.ksp.as_str()),
            "{}",
            r.info.id
        );
        assert!(
            r.info.reason_nl.len() > 20 && r.info.reason_en.len() > 20,
            "{}",
            r.info.id
        );
        assert!(r.info.id.starts_with("ksp-"), "{}", r.info.id);
    }
}

#[test]
fn a_body_to_public_cloud_is_blocked_on_the_head() {
    let p = ksp();
    for (host, path) in [
        ("www.dropbox.com", "/upload"),
        ("www.dropbox.com", "/ajax_login"),
        ("api.dropboxapi.com", "/2/files/list_folder"),
        ("content.dropboxapi.com", "/2/files/upload"),
        ("wetransfer.com", "/api/v4/transfers/link"),
        ("drive.google.com", "/upload"),
        ("docs.google.com", "/document/d/x/save"),
        ("www.icloud.com", "/"),
        ("p42-content.icloud-content.com", "/"),
        ("onedrive.live.com", "/"),
        ("upload.box.com", "/api/2.0/files/content"),
        ("g.api.mega.co.nz", "/cs"),
        ("eapi.pcloud.com", "/uploadfile"),
        ("web.telegram.org", "/"),
        ("files.slack.com", "/upload/v1/abc"),
        ("transfer.sh", "/report.pdf"),
        ("pastebin.com", "/api/api_post.php"),
        ("mail.google.com", "/mail/u/0/"),
        ("outlook.live.com", "/owa/"),
    ] {
        let d = decided(&p, &req("POST", host, path, true));
        assert!(
            d.blocks(),
            "{host}{path}: {:?} by {}",
            d.action,
            d.rule_id()
        );
        assert!(
            d.rule_id().starts_with("ksp-1.4-"),
            "{host}: {}",
            d.rule_id()
        );
    }
}

#[test]
fn google_drive_and_gmail_api_uploads_are_blocked_by_path() {
    let p = ksp();
    for path in [
        "/upload/drive/v3/files",
        "/drive/v3/files",
        "/upload/gmail/v1/users/me/messages/send",
    ] {
        let d = decided(&p, &req("POST", "www.googleapis.com", path, true));
        assert_eq!(d.rule_id(), "ksp-1.4-google-api-upload", "{path}");
    }
    // Writing the path differently does not get past the rule.
    for path in [
        "//upload/drive/v3/files",
        "/%75pload/drive/v3/files",
        "/x/../drive/v3/files",
    ] {
        let d = decided(&p, &req("POST", "www.googleapis.com", path, true));
        assert_eq!(d.rule_id(), "ksp-1.4-google-api-upload", "{path}");
    }
    // The same host serves other Google APIs: those are not blocked on the head.
    assert!(inspects(
        &p,
        &req("POST", "www.googleapis.com", "/youtube/v3/videos", true)
    ));
}

#[test]
fn whatsapp_web_is_blocked_entirely() {
    let p = ksp();
    for host in [
        "web.whatsapp.com",
        "mmg.whatsapp.net",
        "media-ams4-1.cdn.whatsapp.net",
    ] {
        let c = p.check_connect(&connect(host));
        assert_eq!(c.as_str(), "block", "{host}");
        assert_eq!(c.decision().rule_id(), "ksp-1.4-whatsapp-web");
        for facts in [get(host), post(host), req("GET", host, "/ws", false)] {
            assert!(decided(&p, &facts).blocks(), "{host} {}", facts.method);
        }
    }
}

#[test]
fn browsing_public_cloud_is_logged() {
    let p = ksp();
    for host in [
        "www.dropbox.com",
        "wetransfer.com",
        "drive.google.com",
        "www.whatsapp.com",
        "pastebin.com",
    ] {
        let d = decided(&p, &get(host));
        assert_eq!(
            (d.rule_id(), d.action, d.mode),
            ("ksp-1.4-cloud-browse", Action::Log, Mode::Enforce),
            "{host}"
        );
        assert!(!d.blocks());
    }
    assert_eq!(
        p.classify("www.dropbox.com").category.as_deref(),
        Some("cloud-storage")
    );
    assert_eq!(
        p.classify("wetransfer.com").category.as_deref(),
        Some("file-transfer")
    );
    assert_eq!(
        p.classify("mail.google.com").category.as_deref(),
        Some("webmail")
    );
    assert_eq!(p.classify("notdropbox.com").category, None);
    // Google search is not a cloud service.
    assert_eq!(decided(&p, &get("www.google.com")).rule_id(), "-");
}

#[test]
fn connect_intercepts_cloud_and_tunnels_bypass_and_internal() {
    let p = ksp();
    assert_eq!(
        p.check_connect(&connect("www.dropbox.com")).as_str(),
        "intercept"
    );
    assert_eq!(
        p.check_connect(&connect("www.example.org")).as_str(),
        "intercept"
    );
    assert_eq!(p.check_connect(&connect("mijn.ing.nl")).as_str(), "tunnel");
    assert_eq!(
        p.check_connect(&connect("1-courier.push.apple.com"))
            .as_str(),
        "tunnel"
    );
    let c = p.check_connect(&connect("intranet.kpn.com"));
    assert_eq!(
        (c.as_str(), c.decision().rule_id()),
        ("tunnel", "ksp-internal")
    );
}

#[test]
fn internal_uploads_are_allowed_without_inspection() {
    let p = ksp();
    let d = decided(&p, &post("sharepoint.kpn.local"));
    assert_eq!((d.rule_id(), d.action), ("ksp-internal", Action::Allow));
    assert_eq!(decided(&p, &post("10.1.2.3")).action, Action::Allow);
}

#[test]
fn ordinary_browsing_to_external_hosts_goes_through() {
    let p = ksp();
    assert_eq!(decided(&p, &get("www.example.org")).action, Action::Allow);
    // A JSON XHR or a form post: text, no files, nothing found.
    let xhr = post("api.example.org");
    assert!(inspects(&p, &xhr), "external bodies are inspected and held");
    let d = p.evaluate_body(&xhr, &text_report(vec![], None));
    assert_eq!((d.rule_id(), d.action), ("-", Action::Allow));
    // Raw API bodies of text types are not files.
    for t in [
        FileType::Json,
        FileType::Text,
        FileType::Xml,
        FileType::Html,
    ] {
        let d = p.evaluate_body(
            &xhr,
            &report(vec![raw(file("collect", t, Verdict::NotEncrypted))]),
        );
        assert_eq!(d.action, Action::Allow, "{t}");
    }
    // A raw POST of unrecognised bytes (protobuf, gRPC-web): a logged would-block only.
    let d = p.evaluate_body(
        &xhr,
        &report(vec![raw(file("rpc", FileType::Unknown, Verdict::Unknown))]),
    );
    assert_eq!(d.rule_id(), "ksp-1.4-unproven-post");
    assert!(d.would_block() && !d.blocks());
}

#[test]
fn files_to_external_hosts_must_be_encrypted() {
    let p = ksp();
    let up = post("upload.example.org");
    let check = |files: Vec<FileReport>| p.evaluate_body(&up, &report(files));
    assert_eq!(
        check(vec![file("a.pdf", FileType::Pdf, Verdict::NotEncrypted)]).rule_id(),
        "ksp-1.4-unencrypted-file"
    );
    assert_eq!(
        check(vec![file("a.csv", FileType::Csv, Verdict::NotEncrypted)]).rule_id(),
        "ksp-1.4-unencrypted-file"
    );
    assert_eq!(
        check(vec![file("a.txt", FileType::Text, Verdict::NotEncrypted)]).rule_id(),
        "ksp-1.4-unencrypted-file"
    );
    assert_eq!(
        check(vec![raw(file(
            "a.docx",
            FileType::Docx,
            Verdict::NotEncrypted
        ))])
        .rule_id(),
        "ksp-1.4-unencrypted-upload"
    );
    assert!(!check(vec![file("a.zip", FileType::Zip, Verdict::Encrypted)]).blocks());
    // One unencrypted file among encrypted ones is enough.
    let mixed = check(vec![
        file("a.zip", FileType::Zip, Verdict::Encrypted),
        file("b.xlsx", FileType::Xlsx, Verdict::NotEncrypted),
    ]);
    assert!(mixed.blocks());
    // Unknown is not proof of encryption.
    let d = check(vec![file("blob.bin", FileType::Unknown, Verdict::Unknown)]);
    assert_eq!(d.rule_id(), "ksp-1.4-unproven-file");
    assert!(d.blocks());
    assert!(
        d.rule
            .unwrap()
            .reason_en
            .contains("could not be shown to be encrypted")
    );
    let put = req("PUT", "bucket.example.org", "/blob", true);
    let d = p.evaluate_body(
        &put,
        &report(vec![raw(file("blob", FileType::Unknown, Verdict::Unknown))]),
    );
    assert_eq!(d.rule_id(), "ksp-1.4-unproven-put");
}

#[test]
fn classified_bsn_and_program_rules() {
    let p = ksp();
    let up = post("upload.example.org");
    let secret_pdf = labelled(
        file("plan.pdf", FileType::Pdf, Verdict::NotEncrypted),
        Level::Secret,
    );
    assert_eq!(
        p.evaluate_body(&up, &report(vec![secret_pdf])).rule_id(),
        "ksp-1.2-classified-file"
    );
    // Encrypted and labelled: 1.4 is satisfied.
    let enc = labelled(
        file("plan.docx", FileType::OoxmlEncrypted, Verdict::Encrypted),
        Level::Confidential,
    );
    assert!(!p.evaluate_body(&up, &report(vec![enc])).blocks());
    let form = text_report(vec![], Some(Level::Confidential));
    assert_eq!(
        p.evaluate_body(&up, &form).rule_id(),
        "ksp-1.2-classified-form"
    );
    let bsn = text_report(vec![detection(DetectorKind::Bsn, 1)], None);
    let d = p.evaluate_body(&up, &bsn);
    assert_eq!(
        (d.rule_id(), d.rule.as_ref().map(|r| r.ksp.as_str())),
        ("ksp-privacy-4-bsn", Some("privacy-4"))
    );
    let exe = file("setup.exe", FileType::Exe, Verdict::NotEncrypted);
    let d = p.evaluate_body(&up, &report(vec![exe]));
    assert_eq!(
        (d.rule_id(), d.rule.as_ref().map(|r| r.ksp.as_str())),
        ("ksp-3-program-file", Some("3"))
    );
}

#[test]
fn incomplete_inspection_fails_closed_for_external_destinations() {
    let p = ksp();
    let up = post("upload.example.org");
    let d = p.evaluate_body(&up, &with_limit(text_report(vec![], None)));
    assert_eq!(d.rule_id(), "on-error-limit");
    assert!(d.blocks());
    assert!(p.on_error(&up, InspectFailure::Timeout).blocks());
    assert!(
        !p.on_error(&post("intranet.kpn.com"), InspectFailure::Timeout)
            .blocks()
    );
}
