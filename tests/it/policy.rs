use std::time::Duration;

use crate::support::proxy::{repo_path, run_cli};
use crate::support::{Lab, curl, curl_status, eventually};

const BROWSER_ACCEPT: &str =
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn fixture(rel: &str) -> String {
    repo_path(&format!("tests/fixtures/{rel}"))
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_to_dropbox_is_blocked_with_a_page_and_nothing_reaches_dropbox() {
    let lab = Lab::builder(&["www.dropbox.com"]).start().await;
    // Encrypted or not: the KSP forbids company data on public cloud at all (1.4).
    let file = fixture("archives/zip-aes256.zip");
    let out = curl(&[
        "-x",
        &lab.proxy.url(),
        "--cacert",
        lab.sluis_ca_str(),
        "-H",
        BROWSER_ACCEPT,
        "-D",
        "-",
        "-F",
        &format!("file=@{file}"),
        "https://www.dropbox.com/upload",
    ])
    .await;
    let page = String::from_utf8_lossy(&out.stdout).into_owned();
    // After the proxy's `200` to the CONNECT, the answer from inside the tunnel.
    assert!(page.contains("\r\nHTTP/2 403"), "{page}");
    assert!(page.contains("content-type: text/html"), "{page}");
    assert!(page.contains("Deze verzending is geblokkeerd"), "{page}");
    assert!(page.contains("This transfer was blocked"), "{page}");
    assert!(page.contains("ksp-1.4-cloud-upload"), "{page}");
    assert!(page.contains("Servicedesk Informatiebeveiliging"), "{page}");
    let incident = page
        .lines()
        .find_map(|l| l.strip_prefix("sluis-incident: "))
        .expect("incident header")
        .trim()
        .to_owned();
    assert!(
        page.contains(&format!("<code id=\"incident\">{incident}</code>")),
        "{page}"
    );

    // An API client gets the same facts as JSON.
    let out = curl(&[
        "-x",
        &lab.proxy.url(),
        "--cacert",
        lab.sluis_ca_str(),
        "-H",
        "Accept: application/json",
        "--data-binary",
        "{\"name\":\"notes\"}",
        "https://www.dropbox.com/2/files/upload",
    ])
    .await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["blocked"], true);
    assert_eq!(v["rule"], "ksp-1.4-cloud-upload");
    assert_eq!(v["ksp"], "1.4");

    // Not one request reached the origin, and the audit event carries the incident id.
    assert_eq!(lab.origin.requests_started(), 0);
    eventually(
        "the block in the audit log",
        Duration::from_secs(10),
        || {
            lab.audit_events()
                .iter()
                .any(|e| e["event"]["id"] == incident.as_str())
        },
    )
    .await;
    let events = lab.audit_events();
    let e = events
        .iter()
        .find(|e| e["event"]["id"] == incident.as_str())
        .unwrap();
    assert_eq!(e["rule"]["id"], "ksp-1.4-cloud-upload");
    assert_eq!(e["sluis"]["action"], "block");
    assert_eq!(e["sluis"]["destination"]["category"], "cloud-storage");
    assert_eq!(e["url"]["domain"], "www.dropbox.com");
    assert_eq!(e["http"]["response"]["status_code"], 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_refused_upload_is_refused_before_its_body_is_sent() {
    let lab = Lab::builder(&["www.dropbox.com"]).start().await;
    let file = lab.proxy.workdir.path().join("big.bin");
    std::fs::write(&file, crate::support::pseudo_random(8 << 20, 5)).unwrap();
    // curl asks `Expect: 100-continue` for a body this size; the head alone decides.
    let out = curl(&[
        "-v",
        "--http1.1",
        "-x",
        &lab.proxy.url(),
        "--cacert",
        lab.sluis_ca_str(),
        "-T",
        file.to_str().unwrap(),
        "-w",
        "%{http_code} %{size_upload}",
        "https://www.dropbox.com/upload/big.bin",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Expect: 100-continue"), "{stderr}");
    let (code, uploaded) = stdout
        .rsplit_once('}')
        .map(|(_, t)| t)
        .unwrap_or(&stdout)
        .trim()
        .split_once(' ')
        .unwrap();
    assert_eq!(code, "403", "{stdout}");
    assert!(
        uploaded.parse::<f64>().unwrap() < 1_000_000.0,
        "the body was sent anyway: {uploaded} bytes"
    );
    assert_eq!(lab.origin.requests_started(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn browsing_a_cloud_service_is_allowed_and_logged() {
    let lab = Lab::builder(&["www.dropbox.com"]).start().await;
    assert_eq!(
        curl_status(
            &lab.proxy.url(),
            lab.sluis_ca_str(),
            "https://www.dropbox.com/home"
        )
        .await,
        "200"
    );
    assert_eq!(lab.origin.received().len(), 1);
    eventually("the logged visit", Duration::from_secs(10), || {
        lab.audit_events()
            .iter()
            .any(|e| e["rule"]["id"] == "ksp-1.4-cloud-browse")
    })
    .await;
    let e = lab
        .audit_events()
        .into_iter()
        .find(|e| e["rule"]["id"] == "ksp-1.4-cloud-browse")
        .unwrap();
    assert_eq!(e["sluis"]["action"], "log");
    assert_eq!(e["http"]["response"]["status_code"], 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn whatsapp_web_shows_the_block_page_inside_the_tunnel() {
    let lab = Lab::builder(&["web.whatsapp.com"]).start().await;
    let out = curl(&[
        "-x",
        &lab.proxy.url(),
        "--cacert",
        lab.sluis_ca_str(),
        "-H",
        BROWSER_ACCEPT,
        "-w",
        "%{http_code}",
        "https://web.whatsapp.com/",
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("403"), "{text}");
    assert!(text.contains("ksp-1.4-whatsapp-web"), "{text}");
    assert_eq!(lab.origin.requests_started(), 0);
    // Nor was it dialed to learn its protocols: a tunnel that only gets the block page never
    // needs the origin.
    assert_eq!(lab.origin.connections(), 0);
}

#[test]
fn check_accepts_the_shipped_policy_and_names_file_line_and_key_of_errors() {
    let cwd = repo_path(".");
    let out = run_cli(&["check", "policies"], &cwd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("policy OK") && text.contains("rules       15"),
        "{text}"
    );

    let out = run_cli(&["check", "tests/fixtures/policy/bad-regex"], &cwd);
    assert_eq!(out.status.code(), Some(2));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains(".toml:") && text.contains("path"), "{text}");
    let out = run_cli(&["check", "tests/fixtures/policy/typo-key"], &cwd);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_says_which_rule_decides_and_why_the_ones_above_did_not() {
    let cwd = repo_path(".");
    let out = run_cli(
        &[
            "explain",
            "--method",
            "POST",
            "--url",
            "https://www.dropbox.com/upload",
        ],
        &cwd,
    );
    assert_eq!(out.status.code(), Some(1), "blocked requests exit 1");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("decision  BLOCK (enforce) by ksp-1.4-cloud-upload"),
        "{text}"
    );
    assert!(
        text.contains("ksp-1.4-whatsapp-web") && text.contains("no:"),
        "{text}"
    );

    let out = run_cli(
        &[
            "explain",
            "--method",
            "POST",
            "--url",
            "https://partner.example.com/in",
            "--file",
            "tests/fixtures/archives/zip-aes256.zip",
        ],
        &cwd,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("zip-aes256.zip") && text.contains("encrypted: yes"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_under_traffic_apply_good_policies_and_keep_the_last_good_one() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_path("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let lab = Lab::builder(&["partner.test", "blocked.test"])
        .policy(dir.path())
        .start()
        .await;
    let client = crate::support::reqwest_via(&lab.proxy.url(), &[]);
    let status = |host: &'static str| {
        let client = client.clone();
        async move {
            client
                .get(format!("http://{host}/"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("blocked.test").await, 200);

    // Steady traffic through every reload: not one request may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let traffic = {
        let (client, stop, sent, failed) =
            (client.clone(), stop.clone(), sent.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ok = client
                    .get("http://partner.test/steady")
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                sent.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    // A good change, picked up by the file watcher.
    let local = dir.path().join("00-local.toml");
    std::fs::write(
        &local,
        "[[rules]]\nid = \"local-block-test\"\nhost = \"blocked.test\"\naction = \"block\"\nksp = \"1.4\"\n\
         reason_nl = \"Geblokkeerd voor de test.\"\nreason_en = \"Blocked for the test.\"\n",
    )
    .unwrap();
    let mut blocked = false;
    for _ in 0..100 {
        if status("blocked.test").await == 403 {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(blocked, "the new rule never applied");
    lab.proxy
        .wait_for_log("applied reload", |v| v["message"] == "policy reloaded")
        .await;

    // A broken change is rejected and the last good policy stays.
    std::fs::write(&local, "[[rules]]\nid = \"local-block-test\"\nhost = \"blocked.test\"\npath = \"([\"\naction = \"block\"\n").unwrap();
    lab.proxy
        .wait_for_log("rejected reload", |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("reload rejected"))
        })
        .await;
    assert_eq!(status("blocked.test").await, 403);

    // Fixed by hand and reloaded with SIGHUP.
    std::fs::remove_file(&local).unwrap();
    lab.proxy.signal("HUP");
    let mut unblocked = false;
    for _ in 0..100 {
        if status("blocked.test").await == 200 {
            unblocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(unblocked, "the rule was not removed");
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    assert!(
        sent.load(Ordering::Relaxed) > 10,
        "too little traffic to prove anything"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during reloads"
    );

    let metrics = lab.proxy.metrics().await;
    assert!(
        metrics.contains("sluis_policy_reloads_total{result=\"error\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluis_policy_reloads_total{result=\"ok\"}"),
        "{metrics}"
    );
}
