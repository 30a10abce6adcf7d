//! What one request-head check costs, and whether it grows with the host lists.
//!
//! `check_request` for a GET to a five-label host that is listed in a category, and to one that
//! is not, with 10 or 10,000 hosts in the categories and 10 or 200 rules. The rules are built so
//! that every one is walked (none matches before the last two), every tenth has a path pattern,
//! so the numbers are the worst case for a given rule count.
//!
//! Run: `cargo bench --bench policy`. Medians on a 2-vCPU AMD EPYC VM shared with other builds,
//! 2026-11-22:
//!
//! | hosts  | rules | listed  | unlisted |
//! |--------|-------|---------|----------|
//! | 10     | 10    | 311 ns  | 287 ns   |
//! | 10,000 | 10    | 308 ns  | 273 ns   |
//! | 10     | 200   | 1.19 µs | 1.15 µs  |
//! | 10,000 | 200   | 1.06 µs | 0.80 µs  |
//!
//! Ratio 10,000 hosts / 10 hosts: 0.99 (10 rules, listed), 0.89 (200 rules, listed): no growth
//! with the host lists beyond noise. 200 rules / 10 rules: about 3.8×, i.e. 4–5 ns per rule
//! walked.

// A bench that cannot set itself up should stop loudly, like a test.
#![allow(clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sluis::policy::{Policy, RequestCheck, RequestFacts};

const CATEGORIES: usize = 5;

fn policy_dir(hosts: usize, rules: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from(
        "[policy]\ncontact = { name = \"bench\", email = \"bench@example.com\" }\n\
         [internal]\nhosts = [\"corp.example\"]\n",
    );
    for c in 0..CATEGORIES {
        let _ = writeln!(text, "[categories.cat{c}]\nhosts = [");
        for h in (c..hosts).step_by(CATEGORIES) {
            let _ = writeln!(text, "  \"host-{h}.example\",");
        }
        text.push_str("]\n");
    }
    // rules - 2 rules that the probes do not match, then a category rule and a catch-all.
    for r in 0..rules.saturating_sub(2) {
        let _ = writeln!(
            text,
            "[[rules]]\nid = \"r{r}\"\nhost = [\"rule-{r}.example\"]\naction = \"block\"\n\
             ksp = \"1.4\"\nreason_nl = \"nl\"\nreason_en = \"en\""
        );
        if r % 10 == 0 {
            let _ = writeln!(text, "path = [\"^/upload/{r}/\"]");
        }
    }
    let cats: Vec<String> = (0..CATEGORIES).map(|c| format!("\"cat{c}\"")).collect();
    let _ = writeln!(
        text,
        "[[rules]]\nid = \"cloud-log\"\ncategory = [{}]\naction = \"log\"\nksp = \"1.4\"\n\
         reason_nl = \"nl\"\nreason_en = \"en\"\n\
         [[rules]]\nid = \"rest\"\naction = \"allow\"\nksp = \"1.4\"\nreason_nl = \"nl\"\nreason_en = \"en\"",
        cats.join(", ")
    );
    std::fs::write(dir.path().join("policy.toml"), text).expect("write policy");
    dir
}

fn facts(host: &str) -> RequestFacts<'_> {
    RequestFacts {
        client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        user: None,
        method: "GET",
        scheme: "https",
        host,
        port: 443,
        path: "/index.html",
        has_body: false,
    }
}

fn check_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("check_request");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    for hosts in [10, 10_000] {
        for rules in [10, 200] {
            let dir = policy_dir(hosts, rules);
            let policy = Policy::load(dir.path()).expect("bench policy loads");
            let listed = format!("a.b.host-{}.example", hosts / 2);
            for (probe, host, want) in [
                ("listed", listed.as_str(), "cloud-log"),
                ("unlisted", "a.b.unlisted.example", "rest"),
            ] {
                // The probe decides by the rule it is meant to reach.
                match policy.check_request(&facts(host)) {
                    RequestCheck::Decided(d) => assert_eq!(d.rule_id(), want),
                    RequestCheck::Inspect { .. } => panic!("a GET needs no inspection"),
                }
                let id = BenchmarkId::new(format!("hosts_{hosts}/rules_{rules}"), probe);
                group.bench_with_input(id, host, |b, host| {
                    b.iter(|| policy.check_request(black_box(&facts(host))))
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, check_request);
criterion_main!(benches);
