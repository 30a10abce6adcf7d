//! `sluis scan [--json] PATH...`: inspect files with the engine the proxy uses.
//!
//! Each path (`-` is standard input) is streamed through one [`Session`](crate::inspect::Session) in 64 KiB chunks, as
//! if it were uploaded as a raw body named after the path's last component, and one report is
//! printed per file. Nothing is read whole into memory.
//!
//! # JSON output (`--json`)
//!
//! One object per line, per path, in the order given. The fields are stable; new fields may
//! be added, none will be renamed or change meaning:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `path` | string | the path as given (`-` for standard input) |
//! | `type` | string | file type from the bytes (`pdf`, `docx`, `csv`, `unknown`, ...) |
//! | `type_mismatch` | bool | the file name's extension contradicts the bytes |
//! | `size` | number | bytes read |
//! | `sha256` | string | SHA-256 of the bytes, lowercase hex |
//! | `encrypted` | bool or null | `true` encrypted, `false` readable by anyone, `null` unknown |
//! | `encryption` | string or null | the scheme (`zip-aes`, `openpgp-symmetric`, ...) |
//! | `encryption_reason` | string | why the verdict is what it is |
//! | `label` | string or null | highest classification: `public`, `internal`, `confidential`, `secret` |
//! | `label_source` | string or null | `metadata`, `header_footer`, `body` or `file_name` |
//! | `detections` | object | detector → count (`bsn`, `iban`, `payment_card`, `private_key`, `cloud_key`, `api_token`); detectors that found nothing are left out |
//! | `evidence` | object | detector → masked examples (`*****6782`, `AKIA************`) |
//! | `members` | array | archive members: `{name, type, size, encrypted, encryption}` |
//! | `limits` | array | limits hit and malformations: `{kind, detail}` |
//!
//! A path that cannot be read gives `{"path": ..., "error": ...}` instead, and the scan goes
//! on with the next path. Matched values are never printed, only masked evidence.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::inspect::{
    BodyMeta, Encryption, Engine, FileReport, FileType, LabelSource, Level, LimitHit, Report,
    Verdict,
};

/// Bytes read and fed per step.
const CHUNK: usize = 64 << 10;

/// One line of `--json` output.
#[derive(Debug, Serialize)]
struct Record<'a> {
    path: &'a str,
    #[serde(rename = "type")]
    file_type: FileType,
    type_mismatch: bool,
    size: u64,
    sha256: &'a str,
    encrypted: Option<bool>,
    encryption: Option<&'static str>,
    encryption_reason: &'a str,
    label: Option<Level>,
    label_source: Option<LabelSource>,
    detections: BTreeMap<&'static str, u32>,
    evidence: BTreeMap<&'static str, &'a [String]>,
    members: Vec<Member<'a>>,
    limits: Vec<&'a LimitHit>,
}

#[derive(Debug, Serialize)]
struct Member<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    file_type: FileType,
    size: u64,
    encrypted: Option<bool>,
    encryption: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Failure<'a> {
    path: &'a str,
    error: String,
}

/// Scans each path and writes one report per path to `out`. Errors reading a path are
/// reported in the output; only errors writing `out` end the scan.
pub fn run(
    paths: &[PathBuf],
    json: bool,
    engine: Arc<Engine>,
    out: &mut dyn Write,
) -> io::Result<()> {
    for path in paths {
        let shown = path.to_string_lossy();
        match scan_path(&engine, path) {
            Ok(report) => {
                let file = report
                    .files
                    .first()
                    .cloned()
                    .unwrap_or_else(|| empty_file(&report));
                let mut limits: Vec<&LimitHit> = report.limits.iter().collect();
                limits.extend(&file.limits);
                if json {
                    serde_json::to_writer(&mut *out, &record(&shown, &file, limits))?;
                    writeln!(out)?;
                } else {
                    human(out, &shown, &file, &limits)?;
                }
            }
            Err(e) if json => {
                serde_json::to_writer(
                    &mut *out,
                    &Failure {
                        path: &shown,
                        error: e.to_string(),
                    },
                )?;
                writeln!(out)?;
            }
            Err(e) => writeln!(out, "{shown}\n  error        {e}\n")?,
        }
    }
    out.flush()
}

/// Streams one file (or standard input) through a session.
fn scan_path(engine: &Arc<Engine>, path: &Path) -> io::Result<Report> {
    let stdin = path.as_os_str() == "-";
    let name = (!stdin)
        .then(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .flatten();
    let mut session = engine.session(BodyMeta {
        file_name: name,
        ..BodyMeta::default()
    });
    let mut reader: Box<dyn Read> = if stdin {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path)?)
    };
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => session.feed(buf.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(session.finish())
}

fn empty_file(report: &Report) -> FileReport {
    FileReport {
        name: None,
        field: None,
        declared_type: None,
        file_type: FileType::Unknown,
        type_mismatch: false,
        size: report.decoded_bytes,
        sha256: String::new(),
        encryption: Encryption::unknown("no file in the input"),
        label: None,
        detections: Vec::new(),
        members: Vec::new(),
        limits: Vec::new(),
    }
}

fn encrypted(verdict: Verdict) -> Option<bool> {
    match verdict {
        Verdict::Encrypted => Some(true),
        Verdict::NotEncrypted => Some(false),
        Verdict::Unknown => None,
    }
}

fn record<'a>(path: &'a str, file: &'a FileReport, limits: Vec<&'a LimitHit>) -> Record<'a> {
    Record {
        path,
        file_type: file.file_type,
        type_mismatch: file.type_mismatch,
        size: file.size,
        sha256: &file.sha256,
        encrypted: encrypted(file.encryption.verdict),
        encryption: file.encryption.kind.map(|k| k.as_str()),
        encryption_reason: &file.encryption.reason,
        label: file.label.as_ref().map(|l| l.level),
        label_source: file.label.as_ref().map(|l| l.source),
        detections: file
            .detections
            .iter()
            .map(|d| (d.kind.as_str(), d.count))
            .collect(),
        evidence: file
            .detections
            .iter()
            .map(|d| (d.kind.as_str(), d.evidence.as_slice()))
            .collect(),
        members: file
            .members
            .iter()
            .map(|m| Member {
                name: &m.name,
                file_type: m.file_type,
                size: m.size,
                encrypted: encrypted(m.encryption.verdict),
                encryption: m.encryption.kind.map(|k| k.as_str()),
            })
            .collect(),
        limits,
    }
}

/// A readable block per file.
fn human(
    out: &mut dyn Write,
    path: &str,
    file: &FileReport,
    limits: &[&LimitHit],
) -> io::Result<()> {
    writeln!(out, "{path}")?;
    let mismatch = if file.type_mismatch {
        " (the file name says otherwise)"
    } else {
        ""
    };
    writeln!(out, "  type         {}{mismatch}", file.file_type)?;
    writeln!(out, "  size         {} bytes", file.size)?;
    writeln!(out, "  sha256       {}", file.sha256)?;
    let verdict = match file.encryption.verdict {
        Verdict::Encrypted => "encrypted",
        Verdict::NotEncrypted => "not encrypted",
        Verdict::Unknown => "unknown",
    };
    let kind = file
        .encryption
        .kind
        .map(|k| format!(" [{k}]"))
        .unwrap_or_default();
    writeln!(
        out,
        "  encryption   {verdict}{kind}: {}",
        file.encryption.reason
    )?;
    match &file.label {
        Some(l) => writeln!(out, "  label        {} (from {})", l.level, l.source)?,
        None => writeln!(out, "  label        none")?,
    }
    if file.detections.is_empty() {
        writeln!(out, "  detections   none")?;
    }
    for d in &file.detections {
        writeln!(
            out,
            "  detections   {} {} ({})",
            d.kind,
            d.count,
            d.evidence.join(", ")
        )?;
    }
    if !file.members.is_empty() {
        writeln!(out, "  members      {}", file.members.len())?;
    }
    for m in &file.members {
        writeln!(
            out,
            "    {} ({}, {} bytes, {})",
            m.name, m.file_type, m.size, m.encryption.verdict
        )?;
    }
    for l in limits {
        writeln!(out, "  limit        {}: {}", l.kind, l.detail)?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::EngineConfig;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/text")
            .join(name)
    }

    fn archive(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/archives")
            .join(name)
    }

    fn scan(paths: &[PathBuf], json: bool) -> String {
        let engine = Arc::new(Engine::new(EngineConfig::default()).unwrap());
        let mut out = Vec::new();
        run(paths, json, engine, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_lines_have_the_documented_fields() {
        let paths = [
            fixture("bsn.csv"),
            fixture("labelled.txt"),
            fixture("missing.txt"),
        ];
        let out = scan(&paths, true);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        let csv = &lines[0];
        for field in [
            "path",
            "type",
            "type_mismatch",
            "size",
            "sha256",
            "encrypted",
            "encryption",
            "encryption_reason",
            "label",
            "label_source",
            "detections",
            "evidence",
            "members",
            "limits",
        ] {
            assert!(csv.get(field).is_some(), "missing {field}");
        }
        assert_eq!(csv["type"], "csv");
        assert_eq!(csv["size"], 3215);
        assert_eq!(csv["encrypted"], false);
        assert_eq!(csv["encryption"], serde_json::Value::Null);
        assert_eq!(csv["detections"]["bsn"], 100);
        assert_eq!(csv["evidence"]["bsn"][0].as_str().unwrap().len(), 9);
        assert_eq!(lines[1]["label"], "confidential");
        assert_eq!(lines[1]["label_source"], "body");
        assert!(lines[2]["error"].is_string());
        assert!(!out.contains("111222333"), "no raw values");
    }

    #[test]
    fn human_output_is_one_block_per_file() {
        let out = scan(&[fixture("secrets.env"), fixture("prose.txt")], false);
        assert!(out.contains("secrets.env\n  type         text\n"), "{out}");
        assert!(
            out.contains("  detections   cloud_key 1 (AKIA************)"),
            "{out}"
        );
        assert!(out.contains("  encryption   not encrypted: plain text"));
        assert!(out.contains("prose.txt\n"));
        assert!(!out.contains("AKIAIOSFODNN7EXAMPLE"));
    }

    #[test]
    fn archive_members_show_type_size_and_verdict() {
        let out = scan(&[archive("docx-msip.docx")], false);
        assert!(out.contains("  type         docx\n"), "{out}");
        assert!(out.contains("  members      20\n"), "{out}");
        for line in [
            "    word/document.xml (xml, 1910 bytes, not_encrypted)\n",
            "    docProps/thumbnail.jpeg (jpeg, 8324 bytes, not_encrypted)\n",
        ] {
            assert!(out.contains(line), "{line}{out}");
        }
        assert!(!out.contains("unknown"), "{out}");

        let out = scan(&[archive("zip-mixed.zip")], true);
        let record: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let members = record["members"].as_array().unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0]["encrypted"], true);
        assert_eq!(members[0]["encryption"], "zip-crypto");
        assert_eq!(members[1]["type"], "text");
        assert_eq!(members[1]["encrypted"], false);
        assert_eq!(members[1]["encryption"], serde_json::Value::Null);
    }
}
