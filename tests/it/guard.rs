use crate::support::{Origin, TestProxy, curl, reqwest_via};

#[tokio::test(flavor = "multi_thread")]
async fn clients_off_the_allow_list_get_403_and_are_logged() {
    let origin = Origin::http().await;
    let proxy = TestProxy::builder()
        .set("proxy", "clients", "[\"10.0.0.0/8\"]")
        .spawn()
        .await;
    let res = reqwest_via(&proxy.url(), &[])
        .get(format!("http://{}/", origin.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["sluis-error"], "client_denied");
    assert!(origin.received().is_empty());
    proxy
        .wait_for_log("the ACL denial", |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("allow-list"))
                && v["client"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("127.0.0.1:"))
        })
        .await;
    // CONNECT is refused the same way.
    let out = curl(&[
        "-x",
        &proxy.url(),
        "-k",
        &format!("https://{}/", origin.addr),
    ])
    .await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{:?}",
        out
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn private_and_loopback_destinations_are_refused_by_default() {
    let origin = Origin::http().await;
    // No allow_private exception: the default.
    let proxy = TestProxy::builder()
        .set("upstream", "allow_private", "[]")
        .spawn()
        .await;
    let client = reqwest_via(&proxy.url(), &[]);
    for url in [
        format!("http://{}/", origin.addr),
        "http://localhost:1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.1.2.3/".to_owned(),
        "http://[::1]:80/".to_owned(),
    ] {
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 403, "{url}");
        assert_eq!(res.headers()["sluis-error"], "forbidden");
    }
    let out = curl(&[
        "-x",
        &proxy.url(),
        "-k",
        &format!("https://{}/", origin.addr),
    ])
    .await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{:?}",
        out
    );
    assert!(origin.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_never_connects_to_itself() {
    // Loopback is allowed (test default), but the proxy's own listeners stay refused.
    let proxy = TestProxy::start().await;
    let client = reqwest_via(&proxy.url(), &[]);
    for url in [
        format!("http://{}/", proxy.addr),
        format!("http://{}/healthz", proxy.admin),
    ] {
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 403, "{url}");
        assert!(res.text().await.unwrap().contains("own listener"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn static_resolve_points_a_real_name_at_a_local_origin() {
    let origin = Origin::http().await;
    let proxy = TestProxy::builder()
        .resolve("www.dropbox.com", "127.0.0.1:1".parse().unwrap())
        .resolve(&format!("www.dropbox.com:{}", 80), origin.addr)
        .spawn()
        .await;
    let res = reqwest_via(&proxy.url(), &[])
        .get("http://www.dropbox.com/home")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = origin.received().pop().unwrap();
    assert_eq!(got.uri.path(), "/home");
    assert_eq!(got.headers["host"], "www.dropbox.com");
}
