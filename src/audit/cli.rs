//! `sluis audit verify` and `sluis audit find`, as functions returning the exit status, so the
//! command line stays a thin shell and tests call them directly.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::audit::chain::{self, StreamReport};
use crate::audit::fingerprint;
use crate::audit::key::read_secret_file;

/// Exit status: the chain is intact / the value was found.
pub const OK: i32 = 0;
/// Exit status: the chain is broken / the value was not found.
pub const NOT_OK: i32 = 1;
/// Exit status: a file could not be read or the arguments are wrong.
pub const ERROR: i32 = 2;

/// Checks the hash chain of each file and, between consecutive files, that each continues the
/// one before it (pass rotated files oldest first, the active file last).
pub fn verify(paths: &[PathBuf], out: &mut dyn Write) -> i32 {
    let mut status = OK;
    let mut previous: Option<(String, StreamReport)> = None;
    for path in paths {
        let report = match File::open(path).and_then(|f| chain::verify_stream(BufReader::new(f))) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "{}: cannot read: {e}", path.display());
                return ERROR;
            }
        };
        let name = display_name(path);
        match &report.first_break {
            Some(b) => {
                status = NOT_OK;
                let _ = writeln!(
                    out,
                    "{}: line {}: {}: {}",
                    path.display(),
                    b.line,
                    b.kind.as_str(),
                    b.detail
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "{}: {} lines, chain intact",
                    path.display(),
                    report.lines
                );
            }
        }
        if let Some(msg) = link_problem(previous.as_ref(), &report) {
            status = NOT_OK;
            let _ = writeln!(out, "{}: line 1: {msg}", path.display());
        } else if previous.is_none()
            && let Some(prev) = report.start.as_ref().and_then(|s| s.prev_stream.as_ref())
        {
            let _ = writeln!(
                out,
                "{}: continues {prev} (give that file first to check the link)",
                path.display()
            );
        }
        previous = Some((name, report));
    }
    status
}

/// Whether `report`'s first line continues the file before it.
fn link_problem(
    previous: Option<&(String, StreamReport)>,
    report: &StreamReport,
) -> Option<String> {
    let (prev_name, prev) = previous?;
    let start = report.start.as_ref()?;
    let named = start.prev_stream.as_deref();
    if named != Some(prev_name.as_str()) {
        return Some(format!(
            "does not continue {prev_name} but {} (a file between them is missing?)",
            named.unwrap_or("nothing")
        ));
    }
    if report.first_prev != prev.last_hash {
        return Some(format!(
            "the last line of {prev_name} is not the one this file was chained to (truncated or edited)"
        ));
    }
    None
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Looks for events whose fingerprints match `value` (of `kind`, or of any findable kind),
/// using the fingerprint key in `key_file`. Prints one line per match.
pub fn find(
    value: &str,
    kind: Option<&str>,
    key_file: &Path,
    files: &[PathBuf],
    out: &mut dyn Write,
) -> i32 {
    let key = match read_secret_file(key_file) {
        Ok(k) => k,
        Err(e) => {
            let _ = writeln!(out, "cannot read the fingerprint key: {e}");
            return ERROR;
        }
    };
    let kinds: Vec<&str> = match kind {
        None => fingerprint::FINDABLE_KINDS.to_vec(),
        Some(k) => match fingerprint::kind_from_user(k) {
            Some(k) => vec![k],
            None => {
                let _ = writeln!(out, "unknown kind {k:?}; use bsn, iban or card");
                return ERROR;
            }
        },
    };
    let wanted: HashMap<String, &str> = kinds
        .iter()
        .map(|k| (fingerprint::fingerprint(k, value, &key), *k))
        .collect();
    let mut found = 0usize;
    for path in files {
        match scan_file(path, &wanted, out) {
            Ok(n) => found += n,
            Err(e) => {
                let _ = writeln!(out, "{}: cannot read: {e}", path.display());
                return ERROR;
            }
        }
    }
    let _ = writeln!(out, "{found} matching event(s)");
    if found > 0 { OK } else { NOT_OK }
}

fn scan_file(
    path: &Path,
    wanted: &HashMap<String, &str>,
    out: &mut dyn Write,
) -> std::io::Result<usize> {
    let mut r = BufReader::new(File::open(path)?);
    let mut line = Vec::new();
    let mut found = 0;
    while chain::read_line(&mut r, &mut line)? {
        let Ok(event) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        let hits = matches_in(&event, wanted);
        if hits.is_empty() {
            continue;
        }
        found += 1;
        let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
        let url = &event["url"];
        let _ = writeln!(
            out,
            "{}\tid={}\taction={}\tdestination={}://{}:{}{}\trule={}\tfound={}",
            s(&event["@timestamp"]),
            s(&event["event"]["id"]),
            s(&event["sluis"]["action"]),
            s(&url["scheme"]),
            s(&url["domain"]),
            url["port"].as_u64().unwrap_or(0),
            url["path"].as_str().unwrap_or(""),
            s(&event["rule"]["id"]),
            hits.join(","),
        );
    }
    Ok(found)
}

/// Where in the event a wanted fingerprint occurs: `kind@file:NAME`, `kind@file#N`, `kind@text`.
fn matches_in(event: &Value, wanted: &HashMap<String, &str>) -> Vec<String> {
    let mut hits = Vec::new();
    let mut check = |prints: &Value, place: String| {
        let Some(map) = prints.as_object() else {
            return;
        };
        for list in map.values() {
            for fp in list.as_array().into_iter().flatten() {
                if let Some(kind) = fp.as_str().and_then(|f| wanted.get(f)) {
                    hits.push(format!("{kind}@{place}"));
                }
            }
        }
    };
    let files = event["sluis"]["files"].as_array();
    for (i, file) in files.into_iter().flatten().enumerate() {
        let place = match file["name"].as_str() {
            Some(n) => format!("file:{n}"),
            None => format!("file#{}", i + 1),
        };
        check(&file["fingerprints"], place);
    }
    check(&event["sluis"]["text"]["fingerprints"], "text".into());
    hits
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
