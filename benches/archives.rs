//! Throughput of the archive and office scanners, beside a plain copy of the same bytes.
//!
//! Each input is fed in 16 KiB chunks through a depth-0 `FileScanner` with a sink that drops
//! text (the detectors are measured elsewhere). Inputs are the committed fixtures: a docx
//! (inflate + XML text), an xlsx, an odt, and a streamed zip (bit-3 deflate member).
//!
//! Figures: see the numbers recorded below when the bench was last run.
//! (2 cores shared, `cargo bench --bench archives -- --warm-up-time 1 --measurement-time 3`)
//! (not yet recorded: the first run did not finish within the build session)

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluis::inspect::EngineConfig;
use sluis::inspect::file::{FileScanner, ScanCx};
use sluis::inspect::sink::NullSink;

const CHUNK: usize = 16 << 10;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/archives/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn scan(bytes: &[u8], config: &EngineConfig) {
    let mut sink = NullSink;
    let mut budget = config.limits.max_expanded_bytes;
    let mut cx = ScanCx {
        config,
        sink: &mut sink,
        expand_budget: &mut budget,
    };
    let mut scanner = FileScanner::new(config, 0);
    for piece in bytes.chunks(CHUNK) {
        scanner.feed(piece, &mut cx);
    }
    black_box(scanner.finish(&mut cx));
}

fn archives(c: &mut Criterion) {
    let config = EngineConfig::default();
    for name in [
        "docx-footer-bsn.docx",
        "xlsx-shared.xlsx",
        "odt-clear.odt",
        "zip-stream-deflate.zip",
    ] {
        let bytes = fixture(name);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("copy", |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(bytes.len());
                for piece in bytes.chunks(CHUNK) {
                    out.extend_from_slice(piece);
                }
                black_box(out)
            })
        });
        group.bench_function("scan", |b| b.iter(|| scan(&bytes, &config)));
        group.finish();
    }
}

criterion_group!(benches, archives);
criterion_main!(benches);
