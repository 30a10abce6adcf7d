//! Cost of the document and crypto-container scanners per byte, beside a memory copy.
//!
//! An encrypted file decided by its header (age, `Salted__`, OpenPGP, CMS) settles after a few
//! hundred bytes; every later byte must cost nothing more than the copy the proxy makes anyway.
//! PDF and CFB cannot settle early (the verdict sits at the end), so their per-byte cost is the
//! stream-skipping (`memmem` for `endstream`) and the 64-byte-slot checks.
//!
//! Inputs are 16 MiB, fed in 64 KiB chunks, built in memory from the committed fixtures plus
//! pseudo-random filler (ciphertext or compressed image data).
//!
//! Measured with `cargo bench --bench documents -- --warm-up-time 1 --measurement-time 3`
//! (AMD EPYC, 2 cores shared with other builds, 2026-11-22), criterion's median:
//!
//! | case                                | time per 16 MiB | throughput | time vs memcpy |
//! |-------------------------------------|-----------------|------------|----------------|
//! | memcpy baseline (64 KiB chunks)     | 777 µs          | 20 GiB/s   | 1.0            |
//! | age, settled after its header       | 1.3 µs          | (free)     | 0.002          |
//! | openssl `Salted__`, settled         | 1.7 µs          | (free)     | 0.002          |
//! | OpenPGP `gpg -c`, settled           | 1.8 µs          | (free)     | 0.002          |
//! | CMS envelopedData (DER), settled    | 2.2 µs          | (free)     | 0.003          |
//! | PDF, one 16 MiB image stream        | 1.04 ms         | 15 GiB/s   | 1.3            |
//! | CFB, encrypted OOXML container      | 1.82 ms         | 8.6 GiB/s  | 2.3            |
//!
//! A settled scanner costs a function call per chunk (~5 ns), so header-decided files add
//! nothing to the copy the proxy makes anyway. PDF stream data costs one `memmem` pass; CFB
//! costs a few comparisons per 64-byte unit.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluis::inspect::EngineConfig;
use sluis::inspect::file::{FileScanner, ScanCx};
use sluis::inspect::sink::NullSink;

const SIZE: usize = 16 << 20;
const CHUNK: usize = 64 << 10;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/documents/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn filler(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A header-decided file: its real start, then ciphertext-like filler.
fn lengthened(name: &str) -> Vec<u8> {
    let mut bytes = fixture(name);
    bytes.extend_from_slice(&filler(SIZE - bytes.len()));
    bytes
}

/// A PDF whose bulk is one image stream.
fn big_pdf() -> Vec<u8> {
    let data = filler(SIZE - 400);
    let mut pdf = format!(
        "%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n\
         2 0 obj << /Type /XObject /Subtype /Image /Length {} >> stream\n",
        data.len()
    )
    .into_bytes();
    pdf.extend_from_slice(&data);
    pdf.extend_from_slice(b"\nendstream endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
    pdf
}

/// An encrypted-OOXML container: the fixture's sectors, then more ciphertext sectors.
fn big_cfb() -> Vec<u8> {
    lengthened("docx-agile.docx")
}

fn scan(config: &EngineConfig, input: &[u8]) -> bool {
    let mut sink = NullSink;
    let mut budget = config.limits.max_expanded_bytes;
    let mut cx = ScanCx {
        config,
        sink: &mut sink,
        expand_budget: &mut budget,
    };
    let mut scanner = FileScanner::new(config, 0);
    for chunk in input.chunks(CHUNK) {
        scanner.feed(chunk, &mut cx);
    }
    let settled = scanner.settled();
    black_box(scanner.finish(&mut cx));
    settled
}

fn documents(c: &mut Criterion) {
    let config = EngineConfig::default();
    let mut group = c.benchmark_group("documents_16mib");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(20);

    let baseline = filler(SIZE);
    let mut copy = vec![0u8; CHUNK];
    group.bench_function("memcpy_baseline", |b| {
        b.iter(|| {
            for chunk in baseline.chunks(CHUNK) {
                copy[..chunk.len()].copy_from_slice(black_box(chunk));
                black_box(&copy);
            }
        })
    });
    for (name, input) in [
        ("age_settled", lengthened("age-x25519.age")),
        ("openssl_salted_settled", lengthened("openssl-salted.bin")),
        ("pgp_symmetric_settled", lengthened("pgp-symmetric.gpg")),
        ("cms_enveloped_settled", lengthened("cms-enveloped.der")),
    ] {
        assert!(scan(&config, &input), "{name} did not settle");
        group.bench_function(name, |b| b.iter(|| scan(&config, black_box(&input))));
    }
    let pdf = big_pdf();
    group.bench_function("pdf_image_stream", |b| {
        b.iter(|| scan(&config, black_box(&pdf)))
    });
    let cfb = big_cfb();
    group.bench_function("cfb_encrypted_ooxml", |b| {
        b.iter(|| scan(&config, black_box(&cfb)))
    });
    group.finish();
}

criterion_group!(benches, documents);
criterion_main!(benches);
