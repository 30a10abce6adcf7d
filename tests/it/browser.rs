//! A real browser (headless Chromium) behind the proxy: the block page is what an employee
//! sees, inside the intercepted TLS connection, not a certificate error.

use std::process::Command;

use crate::support::Lab;

/// A private HOME whose NSS database trusts the proxy's CA, as a managed workstation would.
fn trusting_home(lab: &Lab) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let nssdb = home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    run(Command::new("certutil").args(["-d", &db, "-N", "--empty-password"]));
    run(Command::new("certutil")
        .args(["-d", &db, "-A", "-t", "C,,", "-n", "sluis"])
        .arg("-i")
        .arg(&lab.sluis_ca));
    home
}

/// Headless Chromium's flags for going through the proxy, with a profile under `home`.
fn chromium_args(lab: &Lab, home: &std::path::Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("--proxy-server=http://{}", lab.proxy.addr));
    args.push(format!(
        "--user-data-dir={}",
        home.join("profile").display()
    ));
    args
}

/// Runs headless Chromium through the proxy, trusting the proxy's CA, and returns the DOM after
/// `url` loaded.
async fn chromium_dom(lab: &Lab, url: &str) -> String {
    let home = trusting_home(lab);
    let mut args = chromium_args(lab, home.path());
    args.extend(["--virtual-time-budget=5000", "--dump-dom", url].map(str::to_owned));
    let home_dir = home.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("chromium")
            .env("HOME", &home_dir)
            .args(&args)
            .output()
            .expect("chromium is installed (scripts/test installs it)")
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `script` in a blank page of headless Chromium behind the proxy, over the DevTools
/// protocol, and returns the string its promise resolves to: for what happens after a page has
/// loaded, which `--dump-dom` does not wait for.
async fn chromium_eval(lab: &Lab, script: &str) -> String {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let home = trusting_home(lab);
    let mut args = chromium_args(lab, home.path());
    args.extend(["--remote-debugging-port=0", "about:blank"].map(str::to_owned));
    let _browser = tokio::process::Command::new("chromium")
        .env("HOME", home.path())
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium is installed (scripts/test installs it)");
    // Chromium writes the port it took into the profile.
    let port_file = home.path().join("profile/DevToolsActivePort");
    let mut port = None;
    for _ in 0..200 {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.parse::<u16>().ok()))
        {
            port = Some(p);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let port = port.expect("chromium's DevTools port");
    let list = crate::support::curl(&["-s", &format!("http://127.0.0.1:{port}/json/list")]).await;
    let targets: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let page = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .expect("a page target");
    let url = page["webSocketDebuggerUrl"].as_str().unwrap();
    let (mut devtools, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let call = serde_json::json!({
        "id": 1,
        "method": "Runtime.evaluate",
        "params": {"expression": script, "awaitPromise": true, "returnByValue": true},
    });
    devtools
        .send(Message::text(call.to_string()))
        .await
        .unwrap();
    let deadline = std::time::Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout(deadline, devtools.next())
            .await
            .expect("an answer from chromium")
            .unwrap()
            .unwrap();
        let Ok(text) = msg.to_text() else { continue };
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        if v["id"] == 1 {
            return v["result"]["result"]["value"]
                .as_str()
                .unwrap_or_else(|| panic!("{v}"))
                .to_owned();
        }
    }
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
    let event = lab
        .wait_for_event("the event for the incident", |e| {
            e["event"]["id"] == incident
        })
        .await;
    assert_eq!(event["rule"]["id"], "ksp-1.4-cloud-upload");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_websocket_that_sends_a_bsn_is_closed_with_the_incident() {
    let lab = Lab::builder(&["chat.test"]).start().await;
    // A chat: says hello, and after the echo sends a customer's BSN.
    let script = "new Promise((done) => {\
                    const ws = new WebSocket('wss://chat.test/ws');\
                    let echo = '';\
                    ws.onopen = () => ws.send('hallo');\
                    ws.onmessage = (e) => { echo = e.data; ws.send('Het BSN van de klant is 111222333'); };\
                    ws.onclose = (e) => done(`${echo}|${e.code}|${e.reason}`);\
                  })";
    let seen = chromium_eval(&lab, script).await;
    let prefix = "hallo|1008|blocked by sluis: ksp-privacy-4-bsn, incident ";
    let incident = seen
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{seen}"));
    assert_eq!(lab.origin.websocket_messages(), vec![b"hallo".to_vec()]);
    let event = lab
        .wait_for_event("the event for the incident", |e| {
            e["event"]["id"] == incident
        })
        .await;
    assert_eq!(event["event"]["action"], "message");
}
