use std::io::Write;

use crate::inspect::engine::EngineConfig;
use crate::inspect::file::testutil::{damage, fixture, scan, scan_all};
use crate::inspect::report::{FileType, LimitKind, Verdict};
use crate::inspect::sink::TextOrigin::{Body, FileName, HeaderFooter};

fn config() -> EngineConfig {
    EngineConfig::default()
}

#[test]
fn compressed_files_are_not_encrypted() {
    for (name, t) in [
        ("klanten.csv.gz", FileType::Gzip),
        ("klanten.csv.bz2", FileType::Bzip2),
        ("klanten.csv.xz", FileType::Xz),
        ("klanten.csv.zst", FileType::Zstd),
    ] {
        let (facts, _) = scan_all(&fixture(name), &config());
        assert_eq!(facts.file_type, t, "{name}");
        assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted, "{name}");
        assert!(facts.limits.is_empty(), "{name}: {:?}", facts.limits);
    }
}

/// A docx compressed with each codec: its text must come out of the nested scan.
#[test]
fn content_is_scanned_through_each_codec() {
    let docx = fixture("docx-footer-bsn.docx");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&docx).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&docx).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&docx).unwrap();
    let zst = zstd::encode_all(&docx[..], 3).unwrap();
    for packed in [
        gz.finish().unwrap(),
        bz.finish().unwrap(),
        xz.finish().unwrap(),
        zst,
    ] {
        let (facts, sink) = scan_all(&packed, &config());
        assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted);
        assert!(sink.has(Body, "BSN 111222333"), "{:?}", facts.file_type);
        assert!(sink.has(HeaderFooter, "Vertrouwelijk"));
    }
}

#[test]
fn gzip_file_name_and_multiple_members() {
    let mut gz = flate2::GzBuilder::new()
        .filename("geheim-rapport.docx")
        .write(Vec::new(), flate2::Compression::fast());
    gz.write_all(&fixture("docx-footer-bsn.docx")[..1000])
        .unwrap();
    let mut bytes = gz.finish().unwrap();
    bytes.extend_from_slice(&fixture("klanten.csv.gz"));
    let (facts, sink) = scan_all(&bytes, &config());
    assert!(sink.has(FileName, "geheim-rapport.docx"));
    assert!(
        facts
            .limits
            .iter()
            .all(|h| h.kind != LimitKind::Malformed || h.detail != "not a gzip member")
    );
}

#[test]
fn tar_and_tar_gz_members() {
    for name in ["bundel.tar", "bundel.tar.gz"] {
        let (facts, sink) = scan_all(&fixture(name), &config());
        let names: Vec<&str> = facts.members.iter().map(|m| m.name.as_str()).collect();
        // Directories carry no content and are not listed.
        assert_eq!(
            names,
            ["klanten.csv", "notulen.txt", "map/los.txt"],
            "{name}"
        );
        assert_eq!(facts.encryption.verdict, Verdict::NotEncrypted, "{name}");
        let types: Vec<FileType> = facts.members.iter().map(|m| m.file_type).collect();
        assert_eq!(
            types,
            [FileType::Csv, FileType::Text, FileType::Text],
            "{name}"
        );
        assert!(sink.has(FileName, "map/los.txt"));
        assert!(facts.limits.is_empty(), "{name}: {:?}", facts.limits);
    }
    let (facts, _) = scan_all(&fixture("bundel.tar.gz"), &config());
    assert_eq!(facts.file_type, FileType::Gzip);
    // Sniffed by `ustar` at offset 257.
    let (facts, _) = scan_all(&fixture("bundel.tar"), &config());
    assert_eq!(facts.file_type, FileType::Tar);
}

#[test]
fn bomb_in_gzip_is_stopped() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 4 << 20]).unwrap();
    let bytes = gz.finish().unwrap();
    let (facts, _) = scan(&bytes, 4096, &config());
    assert!(
        facts.limits.iter().any(|h| h.kind == LimitKind::Ratio),
        "{:?}",
        facts.limits
    );
}

#[test]
fn damaged_compressed_files_do_not_panic() {
    for name in [
        "klanten.csv.gz",
        "klanten.csv.bz2",
        "klanten.csv.xz",
        "klanten.csv.zst",
        "bundel.tar",
    ] {
        for facts in damage(&fixture(name), &config()) {
            assert_ne!(facts.encryption.verdict, Verdict::Encrypted, "{name}");
        }
        let bytes = fixture(name);
        // Cut inside the data (the tar's second half is zero padding).
        let cut = (bytes.len() / 2).min(700);
        let (facts, _) = scan(&bytes[..cut], 7, &config());
        assert!(!facts.limits.is_empty(), "{name} cut at {cut}: {facts:?}");
    }
}
