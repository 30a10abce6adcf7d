//! A real browser (headless Chromium) behind the proxy: the block page is what an employee
//! sees, inside the intercepted TLS connection, not a certificate error.

use std::process::Command;

use crate::support::Lab;

/// Runs headless Chromium through the proxy, trusting the proxy's CA through an NSS database in
/// a private HOME (as a managed workstation would), and returns the DOM after `url` loaded.
async fn chromium_dom(lab: &Lab, url: &str) -> String {
    let home = tempfile::tempdir().unwrap();
    let nssdb = home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    run(Command::new("certutil").args(["-d", &db, "-N", "--empty-password"]));
    run(Command::new("certutil")
        .args(["-d", &db, "-A", "-t", "C,,", "-n", "sluis"])
        .arg("-i")
        .arg(&lab.sluis_ca));
    let proxy = format!("--proxy-server=http://{}", lab.proxy.addr);
    let profile = format!("--user-data-dir={}", home.path().join("profile").display());
    let url = url.to_owned();
    let home_dir = home.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("chromium")
            .env("HOME", &home_dir)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=5000",
                &profile,
                &proxy,
                "--dump-dom",
                &url,
            ])
            .output()
            .expect("chromium is installed (scripts/test installs it)")
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .expect("certutil is installed (scripts/test installs libnss3-tools)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_shows_the_block_page_for_whatsapp_web() {
    let lab = Lab::builder(&["web.whatsapp.com"]).start().await;
    let dom = chromium_dom(&lab, "https://web.whatsapp.com/").await;
    assert!(dom.contains("Deze verzending is geblokkeerd"), "{dom}");
    assert!(dom.contains("WhatsApp Web is not allowed"), "{dom}");
    assert!(dom.contains("ksp-1.4-whatsapp-web"), "{dom}");
    assert_eq!(lab.origin.requests_started(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_form_upload_to_dropbox_shows_the_block_page_with_its_incident() {
    let lab = Lab::builder(&["www.dropbox.com"]).start().await;
    // A page that uploads a form as soon as it loads, as a user pressing "upload" would.
    let page = "data:text/html,<form id=f method=post enctype=multipart/form-data \
                action=https://www.dropbox.com/upload><input type=hidden name=note value=plan>\
                </form><script>f.submit()</script>";
    let dom = chromium_dom(&lab, page).await;
    assert!(dom.contains("This transfer was blocked"), "{dom}");
    assert!(dom.contains("ksp-1.4-cloud-upload"), "{dom}");
    let incident = dom
        .split("<code id=\"incident\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("incident id on the page");
    assert_eq!(lab.origin.requests_started(), 0);
    crate::support::eventually(
        "the event for the incident",
        std::time::Duration::from_secs(10),
        || {
            lab.audit_events()
                .iter()
                .any(|e| e["event"]["id"] == incident && e["rule"]["id"] == "ksp-1.4-cloud-upload")
        },
    )
    .await;
}
