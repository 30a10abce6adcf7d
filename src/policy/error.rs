//! Policy errors that an admin can act on: each names the file, the line and the key.
//!
//! Every problem found while loading becomes an [`Issue`]; a [`PolicyError`] carries all the
//! issues found (at least one), so `sluis check` can show them together.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in the policy files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub file: PathBuf,
    /// 1-based; `None` for problems that belong to no line (an empty directory, no rules).
    pub line: Option<usize>,
    /// TOML key path, e.g. `rules[3].path[1]` or `categories.cloud-storage.hosts[12]`.
    pub key: String,
    pub message: String,
}

/// Why a policy could not be loaded. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    issues: Vec<Issue>,
}

/// The serde marker that `toml::Spanned` leaves in key paths.
const SPANNED_SEGMENT: &str = "$__serde_spanned_private_value";

// === impl Issue ===

impl Issue {
    pub(crate) fn new(
        file: &Path,
        line: Option<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

// === impl PolicyError ===

impl PolicyError {
    pub(crate) fn from_issues(issues: Vec<Issue>) -> Option<Self> {
        (!issues.is_empty()).then_some(Self { issues })
    }

    pub(crate) fn one(issue: Issue) -> Self {
        Self {
            issues: vec![issue],
        }
    }

    /// Every problem found, in file order.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

// === helpers ===

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let upto = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    memchr::memchr_iter(b'\n', upto).count() + 1
}

/// The line where `span` starts.
pub(crate) fn span_line(text: &str, span: Option<Range<usize>>) -> Option<usize> {
    span.map(|s| line_of(text, s.start))
}

/// A serde path as an admin would write the key: no `Spanned` markers, no leading dot.
pub(crate) fn key_path(path: &serde_path_to_error::Path) -> String {
    let cleaned = path.to_string().replace(&format!(".{SPANNED_SEGMENT}"), "");
    if cleaned == "." {
        String::new()
    } else {
        cleaned
    }
}
