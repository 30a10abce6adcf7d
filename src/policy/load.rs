//! Reading a policy directory: which files, in which order, parsed into `Raw*`.
//!
//! A policy is every `*.toml` file directly in the directory (not in subdirectories, not names
//! starting with `.` or `#`, which editors use for swap and lock files), read in byte order of
//! their names. Rules are taken in that order, so `50-local.toml` can follow `ksp.toml`. Each
//! file is capped in size so that a stray large file cannot exhaust memory.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::policy::error::{Issue, PolicyError, key_path, span_line};
use crate::policy::raw::RawFile;

/// Largest policy file accepted.
pub(crate) const MAX_FILE_BYTES: u64 = 8 << 20;

/// One policy file, read.
#[derive(Debug)]
pub(crate) struct Source {
    /// File name within the directory, e.g. `ksp.toml`.
    pub(crate) name: Arc<str>,
    pub(crate) path: PathBuf,
    pub(crate) text: String,
}

/// The policy files of `dir`, sorted by name.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<Source>, PolicyError> {
    let entries = fs::read_dir(dir).map_err(|e| {
        PolicyError::one(Issue::new(
            dir,
            None,
            "",
            format!("cannot read policy directory: {e}"),
        ))
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            PolicyError::one(Issue::new(
                dir,
                None,
                "",
                format!("cannot list policy directory: {e}"),
            ))
        })?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let hidden = name.starts_with('.') || name.starts_with('#');
        if !hidden && name.ends_with(".toml") && path.is_file() {
            paths.push((Arc::<str>::from(name), path));
        }
    }
    if paths.is_empty() {
        return Err(PolicyError::one(Issue::new(
            dir,
            None,
            "",
            "no *.toml policy files",
        )));
    }
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sources = Vec::with_capacity(paths.len());
    let mut issues = Vec::new();
    for (name, path) in paths {
        match read_capped(&path) {
            Ok(text) => sources.push(Source { name, path, text }),
            Err(message) => issues.push(Issue::new(&path, None, "", message)),
        }
    }
    match PolicyError::from_issues(issues) {
        Some(e) => Err(e),
        None => Ok(sources),
    }
}

/// Reads a file of at most `MAX_FILE_BYTES` as UTF-8.
pub(crate) fn read_capped(path: &Path) -> Result<String, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not valid UTF-8".to_owned())
}

/// Parses one file. A syntax error or a wrong value stops the file at its first problem.
pub(crate) fn parse(source: &Source) -> Result<RawFile, Issue> {
    let de = toml::Deserializer::parse(&source.text).map_err(|e| {
        Issue::new(
            &source.path,
            span_line(&source.text, e.span()),
            "",
            e.message().trim(),
        )
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_path(e.path());
        let inner = e.inner();
        Issue::new(
            &source.path,
            span_line(&source.text, inner.span()),
            key,
            inner.message().trim(),
        )
    })
}

/// A short content hash over the file names and contents, plus `extra` inputs (a key file).
pub(crate) fn version(sources: &[Source], extra: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for s in sources {
        h.update((s.name.len() as u64).to_le_bytes());
        h.update(s.name.as_bytes());
        h.update((s.text.len() as u64).to_le_bytes());
        h.update(s.text.as_bytes());
    }
    for e in extra {
        h.update((e.len() as u64).to_le_bytes());
        h.update(e);
    }
    let digest = hex::encode(h.finalize());
    digest.get(..12).unwrap_or(&digest).to_owned()
}
