//! Real clients: reqwest configured with the proxy, and the curl binary.

use std::net::SocketAddr;
use std::process::{Command, Output};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A TLS client configuration (ring) that trusts exactly the CA certificates in `roots` (PEM).
pub fn tls_client_config(roots: &[&str]) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            store.add(cert.unwrap()).unwrap();
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth()
}

/// A reqwest client that uses `proxy` for every scheme and trusts `roots` (PEM) for HTTPS.
pub fn reqwest_via(proxy: &str, roots: &[&str]) -> reqwest::Client {
    // reqwest looks for a process-wide provider even with a preconfigured config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = tls_client_config(roots);
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy).unwrap())
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

/// Runs curl with `args` (plus `-sS`), off the async runtime's threads.
pub async fn curl(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .arg("-sS")
            .args(&args)
            .output()
            .expect("curl is installed (.ci/run installs it)")
    })
    .await
    .unwrap()
}

/// A reqwest client without a proxy (for the admin endpoints).
/// The status curl gets for `url` through `proxy`, trusting `ca`; the body is discarded.
pub async fn curl_status(proxy: &str, ca: &str, url: &str) -> String {
    let out = curl(&[
        "-x",
        proxy,
        "--cacert",
        ca,
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        url,
    ])
    .await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn direct() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A raw client connection to the proxy that has carried one GET for `origin` (answered 200)
/// and is kept alive: for tests of what the proxy does with connections between requests.
pub async fn kept_alive_after_get(proxy: SocketAddr, origin: SocketAddr) -> TcpStream {
    after_get(proxy, origin, 200).await
}

/// A raw client connection to the proxy that has carried one GET for `target`, answered with
/// `status` in one read.
pub async fn after_get(proxy: SocketAddr, target: SocketAddr, status: u16) -> TcpStream {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let req = format!("GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status}")),
        "{answer:?}"
    );
    s
}

/// Sends `CONNECT target` through `proxy`; returns the stream and the proxy's response head.
pub async fn connect_via(proxy: &super::TestProxy, target: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    (s, head)
}

/// Reads a response head byte by byte, so that nothing after it is taken from the stream.
pub async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.unwrap();
        assert!(
            n == 1,
            "connection closed inside the response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// TLS to `host:443` through `proxy`'s CONNECT, trusting only the CA certificate in `ca`.
pub async fn tls_via_proxy(
    proxy: &super::TestProxy,
    host: &str,
    ca: &std::path::Path,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let (s, head) = connect_via(proxy, &format!("{host}:443")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let ca = std::fs::read_to_string(ca).unwrap();
    let config = tls_client_config(&[&ca]);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, s)
        .await
        .unwrap()
}
