use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::proxy::{repo_path, toml_string};
use crate::support::{
    Lab, Origin, TestCa, TestProxy, curl, curl_status, pseudo_random, sha256_hex,
};

/// A lab whose proxy intercepts every tunnel but `bypass.test` and allows every request.
async fn lab(names: &[&str], origin_alpn: &[&[u8]]) -> Lab {
    Lab::builder(names)
        .alpn(origin_alpn)
        .policy(&repo_path("tests/fixtures/policy/intercept-all"))
        .start()
        .await
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn get_and_large_upload_over_http1_and_http2() {
    let lab = lab(&["secure.test"], &[b"h2", b"http/1.1"]).await;
    let data = pseudo_random(50 << 20, 21);
    let file = lab.proxy.workdir.path().join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    let ca = lab.sluis_ca.to_str().unwrap();
    for (flag, alpn) in [("--http1.1", "http/1.1"), ("--http2", "h2")] {
        let out = curl(&[
            "-v",
            flag,
            "-x",
            &lab.proxy.url(),
            "--cacert",
            ca,
            "https://secure.test/hello",
        ])
        .await;
        let err = stderr(&out);
        assert!(out.status.success(), "{flag}: {err}");
        assert!(
            err.contains("CN=sluis interception CA"),
            "{flag}: not our leaf:\n{err}"
        );
        assert!(err.contains("subject: CN=secure.test"), "{flag}:\n{err}");
        assert!(
            err.contains(&format!("ALPN: server accepted {alpn}")),
            "{flag}:\n{err}"
        );

        let out = curl(&[
            flag,
            "-x",
            &lab.proxy.url(),
            "--cacert",
            ca,
            "--data-binary",
            &format!("@{}", file.display()),
            "-H",
            "Content-Type: application/octet-stream",
            "https://secure.test/upload",
        ])
        .await;
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        let got = lab.origin.received().pop().unwrap();
        assert_eq!(got.uri.path(), "/upload");
        assert_eq!(got.body_len, data.len() as u64, "{flag}");
        assert_eq!(got.body_sha256, sha256_hex(&data), "{flag}");
        // The upstream side negotiates on its own: this origin offers h2, so it gets h2.
        assert_eq!(got.version, http::Version::HTTP_2, "{flag}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn large_downloads_arrive_intact_over_http1_and_http2() {
    let lab = lab(&["secure.test"], &[b"h2", b"http/1.1"]).await;
    let size = 40 << 20;
    let want = sha256_hex(&pseudo_random(size, crate::support::origin::DOWNLOAD_SEED));
    let file = lab.proxy.workdir.path().join("download.bin");
    for flag in ["--http1.1", "--http2"] {
        let out = curl(&[
            flag,
            "-x",
            &lab.proxy.url(),
            "--cacert",
            lab.sluis_ca.to_str().unwrap(),
            "-o",
            file.to_str().unwrap(),
            &format!("https://secure.test/bytes/{size}"),
        ])
        .await;
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        let got = std::fs::read(&file).unwrap();
        assert_eq!(got.len(), size, "{flag}");
        assert_eq!(sha256_hex(&got), want, "{flag}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_offering_both_protocols_gets_what_the_origin_speaks() {
    for (origin_alpn, accepted, version) in [
        (&[&b"http/1.1"[..]][..], "http/1.1", http::Version::HTTP_11),
        (
            &[&b"h2"[..], &b"http/1.1"[..]][..],
            "h2",
            http::Version::HTTP_2,
        ),
    ] {
        // One serving thread: each has its own upstream pool, and the two rounds' client
        // connections must meet the same one.
        let lab = Lab::builder(&["origin.test"])
            .alpn(origin_alpn)
            .policy(&repo_path("tests/fixtures/policy/intercept-all"))
            .tweak(|b| {
                b.set("proxy", "workers", "1");
            })
            .start()
            .await;
        for round in 0..2 {
            let out = curl(&[
                "-v",
                "--http2",
                "-x",
                &lab.proxy.url(),
                "--cacert",
                lab.sluis_ca.to_str().unwrap(),
                "https://origin.test/x",
            ])
            .await;
            let err = stderr(&out);
            assert!(out.status.success(), "{err}");
            assert!(
                err.contains(&format!("ALPN: server accepted {accepted}")),
                "round {round}: {err}"
            );
            assert_eq!(lab.origin.received().pop().unwrap().version, version);
        }
        // The origin was dialed during the first handshake to learn what it speaks, and that
        // connection carried the first request; the second came from the pool.
        assert_eq!(lab.origin.connections(), 1, "{accepted}");
        let metrics = lab.proxy.metrics().await;
        let counted = format!("sluis_tls_client_protocols_total{{protocol=\"{accepted}\"}} 2");
        assert!(metrics.contains(&counted), "{counted}\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_offering_only_http2_reaches_an_http1_only_origin() {
    let lab = lab(&["old.test"], &[b"http/1.1"]).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read_to_string(&lab.sluis_ca).unwrap();
    let mut tls = crate::support::client::tls_client_config(&[&ca]);
    // As gRPC clients do: h2 alone.
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(lab.proxy.url()).unwrap())
        .tls_backend_preconfigured(tls)
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let res = client
        .post("https://old.test/upload")
        .body(vec![7u8; 300_000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    let got = lab.origin.received().pop().unwrap();
    assert_eq!(got.version, http::Version::HTTP_11);
    assert_eq!(got.body_len, 300_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leaf_names_the_host_and_is_signed_by_our_ca() {
    let lab = lab(&["secure.test"], &[b"http/1.1"]).await;
    let chain = leaf_chain_via_connect(&lab.proxy, "secure.test:443", Some("secure.test")).await;
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| format!("{n}"))
        .collect();
    assert_eq!(names, ["DNSName(secure.test)"]);
    let ca_pem = std::fs::read(&lab.sluis_ca).unwrap();
    let (_, ca_pem) = x509_parser::pem::parse_x509_pem(&ca_pem).unwrap();
    let ca = ca_pem.parse_x509().unwrap();
    assert_eq!(leaf.issuer(), ca.subject());
    assert!(!leaf.is_ca());
    // Short-lived.
    let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert!(lifetime <= 8 * 86_400, "leaf valid {lifetime} s");

    // No SNI and an IP address in the CONNECT: an IP SAN.
    let chain = leaf_chain_via_connect(&lab.proxy, &lab.origin.addr.to_string(), None).await;
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        [x509_parser::extensions::GeneralName::IPAddress(&[
            127, 0, 0, 1
        ])]
    );
}

/// Makes a CONNECT, then a TLS handshake that accepts any certificate, and returns the chain.
async fn leaf_chain_via_connect(
    proxy: &TestProxy,
    authority: &str,
    sni: Option<&str>,
) -> Vec<Vec<u8>> {
    let tls = tls_via_connect(proxy, authority, sni, &[]).await;
    tls.get_ref()
        .1
        .peer_certificates()
        .unwrap()
        .iter()
        .map(|c| c.to_vec())
        .collect()
}

/// Makes a CONNECT, then a TLS handshake offering `alpn` that accepts any certificate.
async fn tls_via_connect(
    proxy: &TestProxy,
    authority: &str,
    sni: Option<&str>,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let (s, head) = crate::support::client::connect_via(proxy, authority).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AcceptAll))
        .with_no_client_auth();
    config.enable_sni = sni.is_some();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name =
        rustls::pki_types::ServerName::try_from(sni.unwrap_or("127.0.0.1").to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, s)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http2_client_may_send_4_mib_per_stream_and_8_mib_per_connection_ahead() {
    let lab = lab(&["secure.test"], &[b"http/1.1"]).await;
    let mut tls =
        tls_via_connect(&lab.proxy, "secure.test:443", Some("secure.test"), &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // The client preface and an empty SETTINGS frame.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let (mut stream_window, mut connection_window) = (None, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stream_window.is_none() || connection_window.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no window announced: stream {stream_window:?}, connection {connection_window:?}"
        );
        let mut head = [0u8; 9];
        tokio::time::timeout_at(deadline, tls.read_exact(&mut head))
            .await
            .expect("the proxy sent no more frames")
            .unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        tls.read_exact(&mut payload).await.unwrap();
        match kind {
            // SETTINGS, not an ACK: SETTINGS_INITIAL_WINDOW_SIZE is identifier 4.
            0x4 if flags & 1 == 0 => {
                for setting in payload.chunks_exact(6) {
                    if setting[..2] == [0, 4] {
                        stream_window = Some(u32::from_be_bytes(setting[2..].try_into().unwrap()));
                    }
                }
                stream_window.get_or_insert(65_535);
            }
            // WINDOW_UPDATE for the connection, which starts at 65,535 bytes.
            0x8 if stream == 0 => {
                let increment = u32::from_be_bytes(payload[..4].try_into().unwrap()) & 0x7fff_ffff;
                connection_window = Some(65_535 + increment);
            }
            _ => {}
        }
    }
    assert_eq!(stream_window, Some(4 << 20));
    assert_eq!(connection_window, Some(8 << 20));
}

/// Test-only verifier: accepts any server certificate so the test can look at it.
#[derive(Debug)]
struct AcceptAll;

impl rustls::client::danger::ServerCertVerifier for AcceptAll {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `sluis_tls_leaf_cache_lookups_total{result=...}` from a scrape.
async fn leaf_lookups(proxy: &TestProxy, result: &str) -> u64 {
    let series = format!("sluis_tls_leaf_cache_lookups_total{{result=\"{result}\"}}");
    crate::support::metric(&proxy.metrics().await, &series).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn leaves_are_cached_and_minted_once_under_a_rush() {
    let lab = lab(&["rush.test", "again.test"], &[b"http/1.1"]).await;
    let ca = std::fs::read_to_string(&lab.sluis_ca).unwrap();
    // 24 clients open their first connection to a new name at the same moment.
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let client = crate::support::reqwest_via(&lab.proxy.url(), &[&ca]);
        tasks.push(tokio::spawn(async move {
            client
                .get("https://rush.test/")
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(
        leaf_lookups(&lab.proxy, "miss").await,
        1,
        "minted more than once"
    );
    assert_eq!(leaf_lookups(&lab.proxy, "hit").await, 23);
    // A second connection later: a cache hit, no new mint.
    let out = curl(&[
        "-x",
        &lab.proxy.url(),
        "--cacert",
        lab.sluis_ca.to_str().unwrap(),
        "https://rush.test/",
    ])
    .await;
    assert!(out.status.success());
    assert_eq!(leaf_lookups(&lab.proxy, "miss").await, 1);
    assert_eq!(leaf_lookups(&lab.proxy, "hit").await, 24);
}

#[tokio::test(flavor = "multi_thread")]
async fn bypassed_hosts_keep_the_origins_own_certificate() {
    let lab = lab(&["bypass.test"], &[b"http/1.1"]).await;
    // Trusting only the origin's CA works only if the proxy did not intercept.
    let out = curl(&[
        "-v",
        "-x",
        &lab.proxy.url(),
        "--cacert",
        lab.origin_ca.to_str().unwrap(),
        "https://bypass.test/b",
    ])
    .await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("issuer: CN=Origin Test CA"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_upstream_certificate_is_a_502_that_says_why() {
    // The origin's CA is not given to the proxy.
    let ca = TestCa::new("Unknown CA");
    let origin = Origin::https(&ca.server_cert(&["shady.test"]), &[b"http/1.1"]).await;
    let proxy = TestProxy::builder()
        .policy_dir(&repo_path("tests/fixtures/policy/intercept-all"))
        .resolve("shady.test", origin.addr)
        .spawn()
        .await;
    let sluis_ca = proxy.workdir.path().join("certs/ca.pem");
    let out = curl(&[
        "-x",
        &proxy.url(),
        "--cacert",
        sluis_ca.to_str().unwrap(),
        "-w",
        "%{http_code}",
        "https://shady.test/",
    ])
    .await;
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.ends_with("502"), "{body}");
    assert!(body.contains("could not be verified"), "{body}");
    assert!(body.contains("unknown authority"), "{body}");
    assert_eq!(origin.requests_started(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_key_readable_by_others_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    // A CA made by the proxy itself, then loosened.
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::proxy::run_cli(&["ca", "init", "--dir", "certs"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = dir.path().join("certs/ca.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.path().join("sluis.toml");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[policy]\ndir = {}\n",
            toml_string(repo_path("policies").to_str().unwrap())
        ),
    )
    .unwrap();
    let out = crate::support::proxy::run_cli(&["run", "--config", "sluis.toml"], dir.path());
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca.key") && err.contains("chmod 600"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_rejects_our_certificate_is_counted_and_named() {
    let lab = lab(&["pinned.test"], &[b"http/1.1"]).await;
    // curl trusting only the origin's CA refuses our leaf, as a pinning app would.
    let out = curl(&[
        "-x",
        &lab.proxy.url(),
        "--cacert",
        lab.origin_ca.to_str().unwrap(),
        "https://pinned.test/",
    ])
    .await;
    assert!(!out.status.success());
    lab.proxy
        .wait_for_log("pinning warning", |v| {
            v["host"] == "pinned.test"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("bypass list"))
        })
        .await;
    let text = lab.proxy.metrics().await;
    assert!(
        text.contains("sluis_tls_handshakes_total{result=\"client_rejected\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_inside_an_intercepted_tunnel() {
    let lab = lab(&["ws.test"], &[b"http/1.1"]).await;
    let tls = crate::support::client::tls_via_proxy(&lab.proxy, "ws.test", &lab.sluis_ca).await;
    let (mut ws, res) = tokio_tungstenite::client_async("wss://ws.test/ws", tls)
        .await
        .unwrap();
    assert_eq!(res.status(), 101);
    for i in 0..3 {
        ws.send(Message::text(format!("tls hello {i}")))
            .await
            .unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text(format!("tls hello {i}")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_start_creates_a_ca_and_says_how_to_trust_it() {
    let lab = lab(&["secure.test"], &[b"http/1.1"]).await;
    let text = lab.proxy.raw_logs().join("\n");
    assert!(text.contains("Created the interception CA"), "{text}");
    for client in ["Firefox", "Chromium", "update-ca-certificates", "curl"] {
        assert!(text.contains(client), "no trust line for {client}:\n{text}");
    }
    use std::os::unix::fs::PermissionsExt;
    let key = lab.proxy.workdir.path().join("certs/ca.key");
    assert_eq!(
        std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corporate_rsa_ca_can_sign_the_leaves() {
    use std::os::unix::fs::PermissionsExt;
    // An RSA-2048 CA made with openssl (tests/fixtures/tls/gen.sh), as a company PKI would issue.
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("corp-ca.pem");
    let key = dir.path().join("corp-ca.key");
    std::fs::copy(repo_path("tests/fixtures/tls/rsa2048/ca.pem"), &cert).unwrap();
    std::fs::copy(repo_path("tests/fixtures/tls/rsa2048/ca.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (cert_s, key_s) = (
        toml_string(cert.to_str().unwrap()),
        toml_string(key.to_str().unwrap()),
    );
    let lab = Lab::builder(&["corp.test"])
        .alpn(&[b"http/1.1"])
        .policy(&repo_path("tests/fixtures/policy/intercept-all"))
        .tweak(move |b| {
            b.set("tls", "ca_cert", &cert_s)
                .set("tls", "ca_key", &key_s);
        })
        .start()
        .await;
    let out = curl(&[
        "-v",
        "-x",
        &lab.proxy.url(),
        "--cacert",
        cert.to_str().unwrap(),
        "https://corp.test/",
    ])
    .await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !lab.proxy.workdir.path().join("certs/ca.pem").exists(),
        "a CA was created despite the configured one"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lab_only_option_skips_verification_for_its_hosts_only_and_warns() {
    let ca = TestCa::new("Lab CA");
    let origin = Origin::https(&ca.server_cert(&["lab.test", "other.test"]), &[b"http/1.1"]).await;
    let proxy = TestProxy::builder()
        .policy_dir(&repo_path("tests/fixtures/policy/intercept-all"))
        .resolve("lab.test", origin.addr)
        .resolve("other.test", origin.addr)
        .set(
            "upstream",
            "danger_accept_invalid_certs_for",
            "[\"lab.test\"]",
        )
        .spawn()
        .await;
    let sluis_ca = proxy.workdir.path().join("certs/ca.pem");
    let ca_arg = sluis_ca.to_str().unwrap();
    assert_eq!(
        curl_status(&proxy.url(), ca_arg, "https://lab.test/").await,
        "200"
    );
    proxy
        .wait_for_log("the per-use warning", |v| {
            v["level"] == "WARN" && v.to_string().contains("lab.test")
        })
        .await;
    // Any other host is still verified.
    assert_eq!(
        curl_status(&proxy.url(), ca_arg, "https://other.test/").await,
        "502"
    );
}
