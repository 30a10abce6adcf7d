//! Throughput of the archive and office scanners, beside a plain copy of the same bytes.
//!
//! Each input is fed in 16 KiB chunks through a depth-0 `FileScanner` with a sink that drops
//! text (the detectors are measured elsewhere). Inputs are the committed fixtures (a docx, an
//! xlsx, an odt and a streamed zip: small, so per-file set-up shows) and three large files made
//! at start by the real tools (`zip`, `7zz`, which `scripts/test` installs): a 16 MiB docx, a
//! zip holding 16 MiB of text, and a 7z of 16 MiB encrypted with AES (headers in the clear, so
//! the verdict is at the end, behind the packed stream). Figures: `benches/README.md`.

// A bench may stop at the first thing that goes wrong, with a message saying what.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::process::Command;

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

/// Office-like prose, `size` bytes, one paragraph per line.
fn prose(size: usize) -> String {
    const WORDS: &[&str] = &[
        "de", "offerte", "klant", "levering", "het", "contract", "voor", "april", "een", "factuur",
        "met", "project", "van", "planning", "en", "overleg",
    ];
    let mut out = String::with_capacity(size + 64);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    while out.len() < size {
        for _ in 0..14 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
            out.push(' ');
        }
        out.push('\n');
    }
    out
}

fn run(tool: &str, args: &[&str], dir: &Path) {
    let status = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("{tool} is needed (scripts/test installs it): {e}"));
    assert!(status.success(), "{tool} {args:?} failed");
}

/// The large inputs, made by the real tools in a temporary directory.
fn large_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let text = prose(LARGE);
    std::fs::write(d.join("notulen.txt"), &text).expect("write");
    run("zip", &["-q", "text.zip", "notulen.txt"], d);

    let body: String = text
        .lines()
        .map(|l| format!("<w:p><w:r><w:t>{l}</w:t></w:r></w:p>"))
        .collect();
    std::fs::create_dir_all(d.join("doc/word")).expect("mkdir");
    std::fs::create_dir_all(d.join("doc/_rels")).expect("mkdir");
    std::fs::write(d.join("doc/[Content_Types].xml"), CONTENT_TYPES).expect("write");
    std::fs::write(d.join("doc/_rels/.rels"), RELS).expect("write");
    std::fs::write(
        d.join("doc/word/document.xml"),
        format!("{DOCUMENT_HEAD}{body}</w:body></w:document>"),
    )
    .expect("write");
    run("zip", &["-q", "-r", "../large.docx", "."], &d.join("doc"));

    let mut random = vec![0u8; LARGE];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(d.join("data.bin"), &random).expect("write");
    run(
        "7zz",
        &[
            "a", "-bd", "-bso0", "-pgeheim", "-mx0", "aes.7z", "data.bin",
        ],
        d,
    );

    let read = |name: &str| std::fs::read(d.join(name)).expect("read");
    vec![
        ("large-16MiB.docx", read("large.docx")),
        ("large-16MiB-text.zip", read("text.zip")),
        ("large-16MiB-aes.7z", read("aes.7z")),
    ]
}

const LARGE: usize = 16 << 20;

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

const DOCUMENT_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#;

fn archives(c: &mut Criterion) {
    let config = EngineConfig::default();
    let small = [
        "docx-footer-bsn.docx",
        "xlsx-shared.xlsx",
        "odt-clear.odt",
        "zip-stream-deflate.zip",
    ]
    .map(|name| (name, fixture(name)));
    for (name, bytes) in small.into_iter().chain(large_inputs()) {
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
