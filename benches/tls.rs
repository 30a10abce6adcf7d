//! What interception costs per connection: minting a leaf (cold), finding it in the cache (warm),
//! and the TLS handshake the client then does with it, full and resumed.
//!
//! Each group pairs the cost with its baseline: a mint against the bare key generation it
//! contains, a cache hit against the quick_cache lookup underneath, a resumed handshake against a
//! full one. CAs: a generated ECDSA P-256 CA and the openssl-made RSA-2048 and ECDSA P-384 fixture
//! CAs (`tests/fixtures/tls/`); leaves are always ECDSA P-256.
//!
//! Run: `cargo bench --bench tls`. Figures: AMD EPYC, 2 vCPUs shared with other builds (load
//! average 6-12), rustc 1.95, ring 0.17, 2026-11-22; each range spans the medians of three runs
//! (two for the cache rows). Handshakes count the CPU of both sides.
//!
//! | bench                                   | time          |
//! |-----------------------------------------|---------------|
//! | mint/keygen_p256 (baseline)             | 38-57 us      |
//! | mint/cold_p256_ca                       | 72-142 us     |
//! | mint/cold_p384_ca                       | 0.52-0.93 ms  |
//! | mint/cold_rsa2048_ca                    | 1.15-1.42 ms  |
//! | cache/quick_cache_get (baseline)        | 35-49 ns      |
//! | cache/hit                               | 135-162 ns    |
//! | cache/hit_via_connect_fallback          | 0.28-0.54 us  |
//! | handshake/full_tls13_p256_ca            | 0.51-0.53 ms  |
//! | handshake/full_tls13_rsa2048_ca         | 0.50-0.62 ms  |
//! | handshake/resumed_tls13                 | 0.33-0.45 ms  |
//! | handshake/full_tls12_p256_ca            | 0.35-0.56 ms  |
//!
//! A cache hit is ~0.03 % of a handshake; a cold P-256 mint is 15-30 % of one, which is why it
//! runs inline while RSA and P-384 mints go to the blocking pool.

// Bench set-up code: a failure here is a broken bench, reported by the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{hint::black_box, path::Path, sync::Arc};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use pki_types::ServerName;
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection,
    client::Resumption,
};
use sluis::tls::{Ca, CaOptions, LeafMinter, LeafOptions, ServerTarget};

fn fixture_ca(name: &str) -> Arc<Ca> {
    use std::os::unix::fs::OpenOptionsExt;
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    for file in ["ca.pem", "ca.key"] {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.path().join(file))
            .unwrap();
        std::io::copy(&mut std::fs::File::open(src.join(file)).unwrap(), &mut out).unwrap();
    }
    Arc::new(Ca::load(&dir.path().join("ca.pem"), &dir.path().join("ca.key")).unwrap())
}

fn minter(ca: Arc<Ca>) -> LeafMinter {
    LeafMinter::new(ca, LeafOptions::default()).unwrap()
}

fn bench_mint(c: &mut Criterion) {
    let mut group = c.benchmark_group("mint");
    group.bench_function("keygen_p256", |b| {
        b.iter(|| rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap())
    });
    let target = ServerTarget::parse("www.example.com").unwrap();
    for (label, ca) in [
        (
            "cold_p256_ca",
            Arc::new(Ca::generate(&CaOptions::default()).unwrap()),
        ),
        ("cold_p384_ca", fixture_ca("p384")),
        ("cold_rsa2048_ca", fixture_ca("rsa2048")),
    ] {
        let minter = minter(ca);
        group.bench_function(label, |b| {
            b.iter(|| minter.mint(black_box(&target)).unwrap())
        });
    }
    group.finish();
}

fn bench_cache(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache");
    let baseline: quick_cache::sync::Cache<String, Arc<u64>> =
        quick_cache::sync::Cache::new(10_000);
    baseline.insert("www.example.com".to_owned(), Arc::new(1));
    group.bench_function("quick_cache_get", |b| {
        b.iter(|| baseline.get(black_box("www.example.com")).unwrap())
    });

    let minter = minter(Arc::new(Ca::generate(&CaOptions::default()).unwrap()));
    let target = ServerTarget::parse("www.example.com").unwrap();
    minter
        .server_config(&target)
        .now_or_never()
        .unwrap()
        .unwrap();
    group.bench_function("hit", |b| {
        b.iter(|| {
            minter
                .server_config(black_box(&target))
                .now_or_never()
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("hit_via_connect_fallback", |b| {
        b.iter(|| {
            minter
                .server_config_for_connect(black_box(Some("www.example.com")), "www.example.com")
                .now_or_never()
                .unwrap()
                .unwrap()
        })
    });
    group.finish();
}

fn bench_handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    let target = ServerTarget::parse("www.example.com").unwrap();
    let name = ServerName::try_from("www.example.com").unwrap();
    let tls13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let tls12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

    let p256 = Arc::new(Ca::generate(&CaOptions::default()).unwrap());
    let rsa = fixture_ca("rsa2048");
    for (label, ca, versions, resume) in [
        ("full_tls13_p256_ca", p256.clone(), tls13, false),
        ("full_tls13_rsa2048_ca", rsa, tls13, false),
        ("resumed_tls13", p256.clone(), tls13, true),
        ("full_tls12_p256_ca", p256, tls12, false),
    ] {
        let server = minter(ca.clone()).mint(&target).unwrap();
        let client = client_config(&ca, versions, resume);
        // Prime the client's session store for the resumed case.
        connect(&client, &server, &name);
        group.bench_function(label, |b| b.iter(|| connect(&client, &server, &name)));
    }
    group.finish();
}

fn client_config(
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
    resume: bool,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

/// One complete handshake in memory, including the session tickets that follow it.
fn connect(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>, name: &ServerName<'static>) {
    let mut c = ClientConnection::new(client.clone(), name.clone()).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let to_server = shuttle(&mut buf, |b| c.write_tls(b), |r| s.read_tls(r));
        s.process_new_packets().unwrap();
        let to_client = shuttle(&mut buf, |b| s.write_tls(b), |r| c.read_tls(r));
        c.process_new_packets().unwrap();
        if !to_server && !to_client {
            break;
        }
    }
    assert!(!c.is_handshaking() && !s.is_handshaking());
}

/// Moves every pending TLS byte from one side to the other; false when there was none.
fn shuttle(
    buf: &mut Vec<u8>,
    mut write: impl FnMut(&mut Vec<u8>) -> std::io::Result<usize>,
    mut read: impl FnMut(&mut &[u8]) -> std::io::Result<usize>,
) -> bool {
    buf.clear();
    while write(buf).unwrap() > 0 {}
    let mut rest = &buf[..];
    while !rest.is_empty() {
        read(&mut rest).unwrap();
    }
    !buf.is_empty()
}

criterion_group!(benches, bench_mint, bench_cache, bench_handshake);
criterion_main!(benches);
