use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use sluis::admin::{Admin, AdminOptions, AdminSource, PolicyView, Readiness};
use sluis::metrics::Metrics;

use crate::support::{Origin, TestProxy, reqwest_via};

/// A client that talks to the admin listener directly (no proxy).
fn direct() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

/// Runs a real tool; the test fails (never skips) when it is missing.
fn tool(program: &str, args: &[&str], stdin_file: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(f) = stdin_file {
        cmd.stdin(std::fs::File::open(f).unwrap());
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("{program} is needed (scripts/test installs it): {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_scrape_passes_promtool_and_counts_requests() {
    let origin = Origin::http().await;
    let proxy = TestProxy::start().await;
    let client = reqwest_via(&proxy.url(), &[]);
    for _ in 0..3 {
        let res = client
            .get(format!("http://{}/x?q=1", origin.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = client.get("http://127.0.0.1:1/").send().await.unwrap();
    assert_eq!(res.status(), 502);

    let wanted = [
        r#"sluis_requests_total{action="allow",category="none",method="GET",mode="enforce",rule="allow-all"} 4"#,
        r#"sluis_upstream_errors_total{kind="connect"} 1"#,
        "sluis_request_duration_seconds_count 4",
        r#"sluis_audit_events_written_total{sink="file"}"#,
        "sluis_open_connections",
        "sluis_build_info{",
        "sluis_held_memory_bytes 0",
        "sluis_spill_files_kept_bytes 0",
        r#"sluis_spilled_bytes_total{through="page_cache"} 0"#,
        r#"sluis_spilled_bytes_total{through="disk"} 0"#,
        "process_resident_memory_bytes",
    ];
    // An exchange is counted once its response has gone out, and its audit event is written
    // after that: scrape until both have happened.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let res = direct()
            .get(format!("{}/metrics", proxy.admin_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = res.text().await.unwrap();
        let missing = wanted.iter().find(|w| !text.contains(*w));
        match missing {
            None => break text,
            Some(want) if std::time::Instant::now() > deadline => {
                panic!("missing {want}:\n{text}")
            }
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    };
    let file = proxy.workdir.path().join("scrape.txt");
    std::fs::write(&file, &text).unwrap();
    let out = tool("promtool", &["check", "metrics"], Some(&file));
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_policy() {
    let proxy = TestProxy::start().await;
    let http = direct();
    let res = http
        .get(format!("{}/healthz", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{}/readyz", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let v: serde_json::Value = res.json().await.unwrap();
    let checks = v["checks"].as_object().unwrap();
    assert_eq!(checks["audit"], true, "the audit file is writable: {v}");
    for name in ["policy", "ca"] {
        assert!(checks.contains_key(name), "{v}");
    }
    let all = checks.values().all(|c| c == true);
    assert_eq!(v["ready"], all);
    assert_eq!(status == 200, all, "503 exactly when a check fails: {v}");
    let res = http
        .get(format!("{}/policy", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status() == 200, checks["policy"] == true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bearer_token_protects_the_admin_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "t0ken-xyz\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let proxy = TestProxy::builder()
        .set(
            "admin",
            "token_file",
            &format!("{:?}", token.to_str().unwrap()),
        )
        .workdir(dir)
        .spawn()
        .await;
    let http = direct();
    let url = |p: &str| format!("{}{p}", proxy.admin_url());
    assert_eq!(
        http.get(url("/healthz")).send().await.unwrap().status(),
        200
    );
    for path in ["/metrics", "/readyz", "/policy"] {
        let res = http.get(url(path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let res = http
            .get(url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    let res = http
        .get(url("/metrics"))
        .bearer_auth("t0ken-xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_readable_token_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "t0ken").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.path().join("sluis.toml");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = {:?}\n[policy]\ndir = {:?}\n",
            token.to_str().unwrap(),
            crate::support::proxy::repo_path("policies").to_str().unwrap()
        ),
    )
    .unwrap();
    let out =
        crate::support::proxy::run_cli(&["run", "--config", config.to_str().unwrap()], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin.token_file") && err.contains("chmod 600"),
        "{err}"
    );
}

/// Evaluates `url` with pactester against the PAC text.
fn pac_eval(pac: &str, url: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.pac");
    std::fs::write(&file, pac).unwrap();
    let out = tool(
        "pactester",
        &["-p", file.to_str().unwrap(), "-u", url],
        None,
    );
    assert!(
        out.status.success(),
        "pactester: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pac_file_sends_internal_direct_and_the_rest_through_the_proxy() {
    let proxy = TestProxy::builder()
        .set("admin", "pac_proxy", "\"proxy.corp.example:3128\"")
        .set("admin", "pac_direct", "[\"corp.example\"]")
        .spawn()
        .await;
    let res = direct()
        .get(format!("{}/proxy.pac", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/x-ns-proxy-autoconfig"
    );
    let pac = res.text().await.unwrap();
    let via = "PROXY proxy.corp.example:3128";
    for (url, want) in [
        ("http://intranet.corp.example/wiki", "DIRECT"),
        ("https://corp.example/", "DIRECT"),
        ("http://intranet/", "DIRECT"),
        ("http://10.20.30.40/", "DIRECT"),
        ("http://192.168.1.10:8080/x", "DIRECT"),
        ("http://172.20.0.1/", "DIRECT"),
        ("http://127.0.0.1:9000/", "DIRECT"),
        ("https://www.dropbox.com/upload", via),
        ("http://notcorp.example/", via),
        ("http://corp.example.evil.net/", via),
        ("http://8.8.8.8/", via),
        ("http://172.32.0.1/", via),
    ] {
        assert_eq!(pac_eval(&pac, url), want, "{url}");
    }
}

struct Fixed(PolicyView);

impl AdminSource for Fixed {
    fn policy(&self) -> Option<PolicyView> {
        Some(self.0.clone())
    }
}

#[tokio::test]
async fn the_pac_file_follows_the_policy() {
    use http_body_util::BodyExt;
    let view = PolicyView {
        version: "v9".into(),
        summary: serde_json::json!({}),
        internal_domains: vec!["kpn.local".into(), "*.intra.example".into()],
        internal_networks: vec!["100.64.0.0/10".parse().unwrap()],
    };
    let admin = Admin::new(
        AdminOptions {
            pac_proxy: "10.0.0.1:8080".into(),
            pac_public: true,
            ..AdminOptions::default()
        },
        Arc::new(Metrics::new().unwrap()),
        Arc::new(Readiness::new(&[])),
        Arc::new(Fixed(view)),
    );
    let req = http::Request::get("/proxy.pac").body(()).unwrap();
    let body = admin
        .handle(req)
        .await
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let pac = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(pac_eval(&pac, "http://portal.kpn.local/"), "DIRECT");
    assert_eq!(pac_eval(&pac, "http://a.b.intra.example/"), "DIRECT");
    assert_eq!(pac_eval(&pac, "http://100.100.1.1/"), "DIRECT");
    assert_eq!(
        pac_eval(&pac, "http://wetransfer.com/"),
        "PROXY 10.0.0.1:8080"
    );
}

/// Every metric family a fully exercised `Metrics` exports.
fn exported_families() -> std::collections::HashSet<String> {
    use sluis::audit::{AuditObserver, PolicyAction, PolicyMode};
    let m = Metrics::new().unwrap();
    m.request(
        Some(PolicyAction::Block),
        Some(PolicyMode::Enforce),
        Some("r"),
        "c",
        &http::Method::GET,
    );
    m.websocket_message("block", "enforce", Some("r"));
    m.bytes(sluis::metrics::Direction::Upload, 1);
    let _open = m.connection_opened();
    m.request_duration(std::time::Duration::from_millis(1));
    m.inspection(
        std::time::Duration::from_millis(1),
        &sluis::inspect::Report::default(),
    );
    m.file_inspected(
        sluis::inspect::FileType::Pdf,
        sluis::inspect::Verdict::Unknown,
    );
    m.detection(sluis::inspect::DetectorKind::Bsn, 1);
    m.tls_handshake("ok");
    m.tls_protocol("h2");
    m.watch_leaf_cache(|| (1, 1)).unwrap();
    m.watch_spool(|| 0, || 0, || [0, 0]).unwrap();
    m.upstream_error("connect");
    m.policy_reload(true);
    m.policy_info("v");
    m.written("file");
    m.failed("file");
    m.dropped();
    String::from_utf8(m.encode())
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// Checks PromQL expressions with `promtool check rules`, as recording rules.
fn promql_valid(exprs: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    let mut yaml = String::from("groups:\n  - name: check\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        yaml.push_str(&format!(
            "      - record: check:expr{i}\n        expr: {}\n",
            serde_json::to_string(e).unwrap()
        ));
    }
    std::fs::write(&file, yaml).unwrap();
    let out = tool(
        "promtool",
        &["check", "rules", file.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_dashboard_queries_real_metrics_with_valid_promql() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/sluis.json"
    ))
    .unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vars = dash["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["name"] == "datasource"
        && v["type"] == "datasource"
        && v["query"] == "prometheus"));
    let families = exported_families();
    let documented =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let metric_name = regex::Regex::new(r"sluis_[a-z_]+").unwrap();
    let mut exprs = Vec::new();
    let mut titles = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        titles.push(panel["title"].as_str().unwrap().to_owned());
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for name in metric_name.find_iter(expr).map(|m| m.as_str()) {
                let family = name.strip_suffix("_bucket").unwrap_or(name);
                assert!(
                    families.contains(family),
                    "{} uses unknown metric {name}",
                    panel["title"]
                );
                assert!(
                    documented.contains(&format!("`{family}`")),
                    "{family} is not in docs/metrics.md"
                );
            }
            exprs.push(
                expr.replace("$__rate_interval", "5m")
                    .replace("$__range", "1h")
                    .replace("$instance", ".*"),
            );
        }
    }
    promql_valid(&exprs);
    for want in [
        "Blocks by rule",
        "Blocks by category",
        "Throughput",
        "Request latency",
        "Inspected files by verdict",
        "Upstream errors by kind",
        "Policy reloads",
    ] {
        assert!(titles.iter().any(|t| t == want), "missing panel {want}");
    }
    // Every documented metric is exported.
    for m in metric_name.find_iter(&documented).map(|m| m.as_str()) {
        let m = m.trim_end_matches('_');
        if m.starts_with("sluis_")
            && !m.ends_with("_bucket")
            && documented.contains(&format!("| `{m}` |"))
        {
            assert!(
                families.contains(m),
                "docs/metrics.md lists {m}, which is not exported"
            );
        }
    }
}

#[test]
fn the_documented_alerts_are_valid_rules() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let section = doc.split("## Example alerts").nth(1).unwrap();
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.yml");
    std::fs::write(&file, yaml).unwrap();
    let out = tool(
        "promtool",
        &["check", "rules", file.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
