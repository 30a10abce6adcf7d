use http_body_util::BodyExt;

use super::*;
use crate::audit::{AuditConfig, AuditSink, NoObserver};

struct Fixed(PolicyView);

impl AdminSource for Fixed {
    fn policy(&self) -> Option<PolicyView> {
        Some(self.0.clone())
    }
}

fn admin(token: Option<&str>, policy: Option<PolicyView>) -> Arc<Admin> {
    let source: Arc<dyn AdminSource> = match policy {
        Some(p) => Arc::new(Fixed(p)),
        None => Arc::new(NoPolicy),
    };
    Admin::new(
        AdminOptions {
            token: token.map(|t| t.as_bytes().to_vec()),
            pac_proxy: "proxy.corp.example:3128".into(),
            pac_direct: vec!["extra.example".into()],
            pac_public: true,
        },
        Arc::new(Metrics::new().unwrap()),
        Arc::new(Readiness::new(&["policy", "ca"])),
        source,
    )
}

async fn get(
    admin: &Admin,
    method: Method,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    let res = admin.handle(req.body(()).unwrap()).await;
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn token_protects_all_but_health_and_pac() {
    let a = admin(Some("s3cret"), None);
    assert_eq!(
        get(&a, Method::GET, "/healthz", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&a, Method::GET, "/proxy.pac", None).await.0,
        StatusCode::OK
    );
    for path in ["/metrics", "/readyz", "/policy", "/nope"] {
        let (status, headers, _) = get(&a, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert_eq!(
            get(&a, Method::GET, path, Some("Bearer wrong")).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get(&a, Method::GET, path, Some("Basic czNjcmV0")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        get(&a, Method::GET, "/metrics", Some("Bearer s3cret"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        get(&a, Method::GET, "/metrics", Some("bearer s3cret"))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn readiness_lists_what_is_missing() {
    let a = admin(None, None);
    let (status, _, body) = get(&a, Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"ready": false, "checks": {"policy": false, "ca": false}})
    );
    a.readiness.set("policy", true);
    a.readiness.set("ca", true);
    let sink = AuditSink::start(
        &AuditConfig {
            sinks: vec![crate::audit::SinkConfig::Stdout],
            ..AuditConfig::default()
        },
        Arc::new(NoObserver),
    )
    .unwrap();
    a.readiness.watch_audit(sink.clone());
    let (status, _, body) = get(&a, Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sink.close().await;
    let (status, _, body) = get(&a, Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("\"audit\":false"), "{body}");
}

#[tokio::test]
async fn policy_and_pac_follow_the_source() {
    let none = admin(None, None);
    assert_eq!(
        get(&none, Method::GET, "/policy", None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let view = PolicyView {
        version: "v42".into(),
        summary: serde_json::json!({"rules": 7}),
        internal_domains: vec!["corp.example".into()],
        internal_networks: vec!["100.64.0.0/10".parse().unwrap()],
    };
    let a = admin(None, Some(view));
    let (status, _, body) = get(&a, Method::GET, "/policy", None).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"version": "v42", "summary": {"rules": 7}})
    );
    let (status, headers, pac) = get(&a, Method::GET, "/proxy.pac", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/x-ns-proxy-autoconfig"
    );
    assert!(
        pac.contains("policy v42")
            && pac.contains("\"corp.example\"")
            && pac.contains("\"extra.example\""),
        "{pac}"
    );
    assert!(pac.contains("100.64.0.0"));
}

#[tokio::test]
async fn methods_and_head() {
    let a = admin(None, None);
    let (status, headers, _) = get(&a, Method::POST, "/metrics", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET, HEAD");
    let (status, headers, body) = get(&a, Method::HEAD, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert_eq!(
        get(&a, Method::GET, "/nope", None).await.0,
        StatusCode::NOT_FOUND
    );
}
