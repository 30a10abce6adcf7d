//! Leaf minting and the leaf cache.

use std::{collections::HashSet, net::IpAddr, sync::Arc};

use time::{Duration, OffsetDateTime};
use x509_parser::{extensions::GeneralName, extensions::ParsedExtension};

use super::support::{generated_ca, load_fixture_ca, parse_cert};
use crate::tls::{Ca, CaOptions, LeafMinter, LeafOptions, ServerTarget, TlsError, mint::mint_leaf};

fn minter(ca: Arc<Ca>) -> LeafMinter {
    LeafMinter::new(ca, LeafOptions::default()).unwrap()
}

fn dns(name: &str) -> ServerTarget {
    ServerTarget::parse(name).unwrap()
}

#[test]
fn leaf_carries_san_issuer_aki_eku_and_validity() {
    let ca = generated_ca();
    let now = OffsetDateTime::now_utc();
    let leaf = mint_leaf(&ca, &dns("WWW.Example.test."), Duration::days(7), now).unwrap();
    assert_eq!(leaf.chain.len(), 2, "leaf then CA");
    assert_eq!(leaf.chain[1], *ca.cert_der());
    let cert = parse_cert(&leaf.chain[0]);
    let ca_cert = parse_cert(ca.cert_der());

    assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
    assert_eq!(cert.subject().to_string(), "CN=www.example.test");
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    assert_eq!(
        san.general_names,
        vec![GeneralName::DNSName("www.example.test")]
    );

    let mut ca_ski = None;
    for ext in ca_cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(ski) = ext.parsed_extension() {
            ca_ski = Some(ski.0.to_vec());
        }
    }
    let (mut aki, mut leaf_ski) = (None, false);
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            ParsedExtension::SubjectKeyIdentifier(_) => leaf_ski = true,
            _ => {}
        }
    }
    assert_eq!(aki, ca_ski);
    assert!(aki.is_some() && leaf_ski);

    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth && !eku.any);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);

    let nb = cert.validity().not_before.to_datetime();
    let na = cert.validity().not_after.to_datetime();
    assert!((nb - (now - Duration::hours(1))).abs() < Duration::seconds(2));
    assert!((na - (now + Duration::days(7))).abs() < Duration::seconds(2));
}

#[test]
fn ip_targets_get_an_ip_san() {
    let ca = generated_ca();
    for host in ["192.0.2.7", "[2001:db8::1]", "2001:db8::1"] {
        let target = ServerTarget::parse(host).unwrap();
        let leaf = mint_leaf(&ca, &target, Duration::days(1), OffsetDateTime::now_utc()).unwrap();
        let cert = parse_cert(&leaf.chain[0]);
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        let ip: IpAddr = host.trim_matches(['[', ']']).parse().unwrap();
        let octets = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        assert_eq!(
            san.general_names,
            vec![GeneralName::IPAddress(&octets)],
            "{host}"
        );
    }
}

#[test]
fn serials_and_keys_are_unique_across_100_leaves() {
    let ca = generated_ca();
    let target = dns("same.example.test");
    let (mut serials, mut keys) = (HashSet::new(), HashSet::new());
    for _ in 0..100 {
        let leaf = mint_leaf(&ca, &target, Duration::days(1), OffsetDateTime::now_utc()).unwrap();
        let cert = parse_cert(&leaf.chain[0]);
        let serial = cert.raw_serial().to_vec();
        assert_eq!(serial.len(), 16);
        assert!(serial[0] & 0x80 == 0);
        serials.insert(serial);
        keys.insert(cert.public_key().raw.to_vec());
    }
    assert_eq!(serials.len(), 100);
    assert_eq!(keys.len(), 100);
}

#[test]
fn leaf_never_outlives_the_ca() {
    let ca = Ca::generate(&CaOptions {
        validity_days: 2,
        ..Default::default()
    })
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let leaf = mint_leaf(&ca, &dns("a.test"), Duration::days(7), now).unwrap();
    let na = parse_cert(&leaf.chain[0])
        .validity()
        .not_after
        .to_datetime();
    assert!(na <= ca.not_after());
    assert!(na > now + Duration::days(1));

    // An absurd validity is capped too, not an overflow.
    let leaf = mint_leaf(&ca, &dns("a.test"), Duration::MAX, now).unwrap();
    let na = parse_cert(&leaf.chain[0])
        .validity()
        .not_after
        .to_datetime();
    assert_eq!(na.unix_timestamp(), ca.not_after().unix_timestamp());

    // Minting "in the future", past the CA's end, fails instead of producing a broken leaf.
    let later = ca.not_after() + Duration::hours(1);
    assert!(matches!(
        mint_leaf(&ca, &dns("a.test"), Duration::days(7), later),
        Err(TlsError::CaValidity { .. })
    ));
}

#[test]
fn long_names_go_in_the_san_only() {
    let label = "a".repeat(60);
    let name = format!("{label}.example.test");
    let leaf = mint_leaf(
        &generated_ca(),
        &dns(&name),
        Duration::days(1),
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    let cert = parse_cert(&leaf.chain[0]);
    assert_eq!(cert.subject().iter_common_name().count(), 0);
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    assert_eq!(san.general_names, vec![GeneralName::DNSName(name.as_str())]);
}

#[test]
fn target_parsing() {
    assert_eq!(dns("Example.COM."), ServerTarget::Dns("example.com".into()));
    assert_eq!(dns("[::1]"), ServerTarget::Ip("::1".parse().unwrap()));
    assert!(dns("10.1.2.3").is_ip());
    for bad in [
        "",
        ".",
        "*.example.com",
        "exa mple.com",
        "a..b",
        "[not-ip]",
        &"a".repeat(254),
    ] {
        assert!(ServerTarget::parse(bad).is_err(), "{bad:?} accepted");
    }
    let pick = ServerTarget::from_sni_or_connect;
    assert_eq!(
        pick(Some("sni.test"), "connect.test").unwrap(),
        dns("sni.test")
    );
    assert_eq!(pick(None, "10.0.0.1").unwrap(), dns("10.0.0.1"));
    assert_eq!(
        pick(Some("bad name"), "connect.test").unwrap(),
        dns("connect.test")
    );
    assert!(pick(None, "bad name").is_err());
}

#[tokio::test]
async fn second_call_is_a_cache_hit() {
    let minter = minter(generated_ca());
    let first = minter.server_config(&dns("hit.test")).await.unwrap();
    let second = minter.server_config(&dns("HIT.test")).await.unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    let stats = minter.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.mints, stats.cached),
        (1, 1, 1, 1)
    );
    assert_eq!((minter.hits(), minter.misses()), (1, 1));

    let other = minter.server_config(&dns("other.test")).await.unwrap();
    assert!(!Arc::ptr_eq(&first, &other));
    assert_eq!(minter.stats().mints, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_first_calls_mint_once() {
    // P-256 mints inline; RSA mints on the blocking pool while the others wait.
    for ca in [generated_ca(), load_fixture_ca("rsa2048")] {
        let minter = Arc::new(minter(ca));
        let barrier = Arc::new(tokio::sync::Barrier::new(50));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (minter, barrier) = (minter.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    minter.server_config(&dns("burst.test")).await.unwrap()
                })
            })
            .collect();
        let mut configs = Vec::new();
        for task in tasks {
            configs.push(task.await.unwrap());
        }
        assert!(configs.iter().all(|c| Arc::ptr_eq(c, &configs[0])));
        let stats = minter.stats();
        assert_eq!(stats.mints, 1, "{stats:?}");
        assert_eq!((stats.misses, stats.hits), (1, 49), "{stats:?}");
    }
}

#[test]
fn minting_works_without_a_runtime() {
    use futures_util::FutureExt;
    // Outside tokio there is no blocking pool; even an RSA CA then mints inline.
    let minter = minter(load_fixture_ca("rsa2048"));
    let config = minter.server_config(&dns("no-runtime.test")).now_or_never();
    assert!(matches!(config, Some(Ok(_))));
    assert_eq!(minter.stats().mints, 1);
}

#[tokio::test]
async fn a_leaf_past_half_life_is_reminted() {
    let minter = minter(generated_ca());
    let target = dns("refresh.test");
    let first = minter.server_config(&target).await.unwrap();
    minter.age_for_test(&target);
    let second = minter.server_config(&target).await.unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    let third = minter.server_config(&target).await.unwrap();
    assert!(Arc::ptr_eq(&second, &third));
    let stats = minter.stats();
    assert_eq!(
        (stats.mints, stats.refreshes, stats.hits, stats.cached),
        (2, 1, 1, 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let options = LeafOptions {
        cache_size: 8,
        ..Default::default()
    };
    let minter = LeafMinter::new(generated_ca(), options).unwrap();
    for i in 0..64 {
        minter
            .server_config(&dns(&format!("h{i}.test")))
            .await
            .unwrap();
    }
    let stats = minter.stats();
    assert_eq!(stats.mints, 64);
    assert!(stats.cached <= 8, "{stats:?}");
}

#[tokio::test]
async fn failed_mints_are_counted_and_not_cached() {
    let minter = minter(generated_ca());
    // Bypasses parse(): a name rcgen cannot encode in a certificate.
    let bad = ServerTarget::Dns("caf\u{e9}.test".into());
    assert!(minter.server_config(&bad).await.is_err());
    assert!(minter.server_config(&bad).await.is_err());
    let stats = minter.stats();
    assert_eq!(
        (stats.mint_failures, stats.mints, stats.cached),
        (2, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn connect_fallback_picks_a_usable_name() {
    let minter = minter(generated_ca());
    let (target, _) = minter
        .server_config_for_connect(Some("sni.test"), "connect.test")
        .await
        .unwrap();
    assert_eq!(target, dns("sni.test"));
    let (target, _) = minter
        .server_config_for_connect(None, "192.0.2.1")
        .await
        .unwrap();
    assert_eq!(target, dns("192.0.2.1"));
    let (target, _) = minter
        .server_config_for_connect(Some("bad_sni!"), "connect.test")
        .await
        .unwrap();
    assert_eq!(target, dns("connect.test"));
    assert!(
        minter
            .server_config_for_connect(None, "not a host")
            .await
            .is_err()
    );
}
