//! Real rustls handshakes between a client that trusts only our CA and a minted leaf.

use std::{io, sync::Arc};

use rustls::HandshakeKind;

use super::support::{
    client_trusting, client_with_versions, fixture_path, generated_ca, handshake, load_fixture_ca,
    parse_cert,
};
use crate::tls::{Alpn, LeafMinter, LeafOptions, ServerTarget, is_client_cert_rejection};

const H2: &[u8] = b"h2";
const H1: &[u8] = b"http/1.1";

fn minter_for(ca: Arc<crate::tls::Ca>) -> LeafMinter {
    LeafMinter::new(ca, LeafOptions::default()).unwrap()
}

#[tokio::test]
async fn client_trusting_the_ca_accepts_the_leaf_and_gets_h2() {
    let ca = generated_ca();
    let minter = minter_for(ca.clone());
    let server = minter
        .server_config(&ServerTarget::parse("www.example.test").unwrap())
        .await
        .unwrap();

    let client = client_trusting(&[ca.cert_der().clone()], &[H2, H1]);
    let outcome = handshake(server.clone(), client, "www.example.test").await;
    outcome.server.unwrap();
    let view = outcome.client.unwrap();
    assert_eq!(view.alpn.as_deref(), Some(H2));
    assert_eq!(view.kind, Some(HandshakeKind::Full));
    let leaf = parse_cert(&view.peer_chain[0]);
    assert_eq!(
        leaf.issuer().as_raw(),
        parse_cert(ca.cert_der()).subject().as_raw()
    );

    // A client that offers only HTTP/1.1 gets HTTP/1.1.
    let client = client_trusting(&[ca.cert_der().clone()], &[H1]);
    let view = handshake(server, client, "www.example.test")
        .await
        .client
        .unwrap();
    assert_eq!(view.alpn.as_deref(), Some(H1));
}

#[tokio::test]
async fn the_http1_only_config_of_a_leaf_gets_http1_from_a_client_offering_both() {
    let ca = generated_ca();
    let minter = minter_for(ca.clone());
    let target = ServerTarget::parse("old.example.test").unwrap();
    let configs = minter.server_configs(&target).await.unwrap();
    for (alpn, want) in [(Alpn::H2AndH1, H2), (Alpn::H1Only, H1)] {
        let client = client_trusting(&[ca.cert_der().clone()], &[H2, H1]);
        let outcome = handshake(configs.offering(alpn).clone(), client, "old.example.test").await;
        let view = outcome.client.unwrap();
        assert_eq!(view.alpn.as_deref(), Some(want), "{alpn:?}");
    }
    // Both come from the one cached leaf.
    assert_eq!(minter.stats().mints, 1);
}

#[tokio::test]
async fn another_name_is_refused_and_counted_as_a_client_rejection() {
    let ca = generated_ca();
    let minter = minter_for(ca.clone());
    let server = minter
        .server_config(&ServerTarget::parse("www.example.test").unwrap())
        .await
        .unwrap();
    let client = client_trusting(&[ca.cert_der().clone()], &[H2, H1]);

    let outcome = handshake(server, client, "other.example.test").await;
    let client_err = outcome.client.unwrap_err();
    let rustls_err = crate::tls::find_rustls_error(&client_err).unwrap();
    assert!(
        matches!(
            rustls_err,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{rustls_err:?}"
    );
    let server_err = outcome.server.unwrap_err();
    assert_eq!(
        is_client_cert_rejection(&server_err),
        Some("bad_certificate")
    );
}

#[tokio::test]
async fn a_client_without_our_ca_is_a_pinning_style_rejection() {
    let minter = minter_for(generated_ca());
    let server = minter
        .server_config(&ServerTarget::parse("pinned.test").unwrap())
        .await
        .unwrap();
    let stranger = generated_ca();
    let client = client_trusting(&[stranger.cert_der().clone()], &[H2]);

    let outcome = handshake(server, client, "pinned.test").await;
    assert!(outcome.client.is_err());
    let server_err = outcome.server.unwrap_err();
    assert_eq!(is_client_cert_rejection(&server_err), Some("unknown_ca"));

    // Other failures are not rejections of our certificate.
    assert_eq!(
        is_client_cert_rejection(&io::Error::from(io::ErrorKind::UnexpectedEof)),
        None
    );
    let other = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
    assert_eq!(is_client_cert_rejection(&other), None);
    let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
    assert_eq!(
        is_client_cert_rejection(&io::Error::new(io::ErrorKind::InvalidData, alert)),
        None
    );
}

#[tokio::test]
async fn ip_targets_verify_as_ip_addresses() {
    let ca = generated_ca();
    let minter = minter_for(ca.clone());
    let (target, server) = minter
        .server_config_for_connect(None, "192.0.2.7")
        .await
        .unwrap();
    assert!(target.is_ip());
    let client = client_trusting(&[ca.cert_der().clone()], &[H1]);
    let server = server.offering(Alpn::H2AndH1).clone();
    handshake(server, client, "192.0.2.7").await.client.unwrap();
}

#[tokio::test]
async fn sessions_resume_across_connections_tls13_and_tls12() {
    let ca = generated_ca();
    let minter = minter_for(ca.clone());
    let target = ServerTarget::parse("resume.test").unwrap();
    let server = minter.server_config(&target).await.unwrap();

    let client = client_trusting(&[ca.cert_der().clone()], &[H2]);
    let first = handshake(server.clone(), client.clone(), "resume.test")
        .await
        .client
        .unwrap();
    assert_eq!(first.kind, Some(HandshakeKind::Full));
    let second = handshake(server.clone(), client, "resume.test")
        .await
        .client
        .unwrap();
    assert_eq!(second.kind, Some(HandshakeKind::Resumed));

    let tls12 = client_with_versions(&[ca.cert_der().clone()], &[H2], &[&rustls::version::TLS12]);
    let first = handshake(server.clone(), tls12.clone(), "resume.test")
        .await
        .client
        .unwrap();
    assert_eq!(first.kind, Some(HandshakeKind::Full));
    let second = handshake(server, tls12, "resume.test")
        .await
        .client
        .unwrap();
    assert_eq!(second.kind, Some(HandshakeKind::Resumed));
}

#[tokio::test]
async fn corporate_cas_from_openssl_sign_working_leaves() {
    for name in ["rsa2048", "p384", "p256-pkcs8"] {
        let ca = load_fixture_ca(name);
        let minter = minter_for(ca.clone());
        let server = minter
            .server_config(&ServerTarget::parse("corp.test").unwrap())
            .await
            .unwrap();
        let client = client_trusting(&[ca.cert_der().clone()], &[H2, H1]);
        let outcome = handshake(server, client, "corp.test").await;
        let view = outcome.client.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(view.alpn.as_deref(), Some(H2), "{name}");
    }
}

#[tokio::test]
async fn an_issuing_ca_is_served_with_its_chain_to_the_root() {
    let ca = load_fixture_ca("intermediate");
    let root_pem = std::fs::read(fixture_path("intermediate").join("root.pem")).unwrap();
    let root = crate::tls::pem::parse_certs(&fixture_path("root.pem"), &root_pem).unwrap();
    let minter = minter_for(ca);
    let server = minter
        .server_config(&ServerTarget::parse("chain.test").unwrap())
        .await
        .unwrap();

    // The client trusts only the root; the issuing CA comes from the served chain.
    let client = client_trusting(&root, &[H1]);
    let view = handshake(server, client, "chain.test")
        .await
        .client
        .unwrap();
    assert_eq!(view.peer_chain.len(), 3);
}

#[tokio::test]
async fn server_configs_offer_h2_then_h1_and_no_early_data() {
    let minter = minter_for(generated_ca());
    let config = minter
        .server_config(&ServerTarget::parse("props.test").unwrap())
        .await
        .unwrap();
    assert_eq!(config.alpn_protocols, vec![H2.to_vec(), H1.to_vec()]);
    assert_eq!(config.max_early_data_size, 0);
    assert!(config.ticketer.enabled());
}

#[tokio::test]
async fn a_name_constrained_ca_signs_inside_its_constraints() {
    let ca = load_fixture_ca("constrained");
    let minter = minter_for(ca.clone());
    let client = client_trusting(&[ca.cert_der().clone()], &[H1]);
    let inside = minter
        .server_config(&ServerTarget::parse("intranet.corp.example").unwrap())
        .await
        .unwrap();
    handshake(inside, client.clone(), "intranet.corp.example")
        .await
        .client
        .unwrap();

    // Outside them the client refuses, as it should: such a CA cannot intercept the internet.
    let outside = minter
        .server_config(&ServerTarget::parse("www.example.com").unwrap())
        .await
        .unwrap();
    let outcome = handshake(outside, client, "www.example.com").await;
    assert!(outcome.client.is_err());
    assert!(is_client_cert_rejection(&outcome.server.unwrap_err()).is_some());
}
