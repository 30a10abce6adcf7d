//! Configuration errors that say where: file, line and key.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration file could not be read or did not validate.
#[derive(Debug)]
pub struct ConfigError {
    /// The file, or `None` for the embedded default.
    pub file: Option<PathBuf>,
    /// 1-based line of the offending value, when known.
    pub line: Option<usize>,
    /// Dotted key path (`proxy.listen[0]`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn io(path: &Path, err: &std::io::Error) -> Self {
        Self {
            file: Some(path.to_owned()),
            line: None,
            key: None,
            message: format!("cannot read: {err}"),
        }
    }

    /// An error about a value whose location is known only by key.
    pub(crate) fn at_key(file: Option<&Path>, key: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.map(Path::to_owned),
            line: None,
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}", file.display())?,
            None => f.write_str("<built-in config>")?,
        }
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Parses TOML into `T`, mapping any error to its file, line and key path.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    file: Option<&Path>,
    text: &str,
) -> Result<T, ConfigError> {
    let located =
        |span: Option<std::ops::Range<usize>>, key: Option<String>, message: String| ConfigError {
            file: file.map(Path::to_owned),
            line: span.map(|s| line_of(text, s.start)),
            key,
            message,
        };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| located(e.span(), None, e.message().to_owned()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = (key != ".").then_some(key);
        let inner = e.into_inner();
        located(inner.span(), key, inner.message().to_owned())
    })
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[allow(dead_code)]
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        port: u16,
    }

    #[test]
    fn names_line_and_key() {
        let text = "[inner]\n\nport = 70000\n";
        let err = parse_toml::<Outer>(Some(Path::new("x.toml")), text).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.key.as_deref(), Some("inner.port"));
        assert!(
            err.to_string().starts_with("x.toml:3: inner.port: "),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let text = "[inner]\nport = 1\nprot = 2\n";
        let err = parse_toml::<Outer>(Some(Path::new("x.toml")), text).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("prot"), "{err}");
    }

    #[test]
    fn syntax_error_has_line() {
        let err = parse_toml::<Outer>(None, "[inner]\nport = = 1\n").unwrap_err();
        assert_eq!(err.line, Some(2));
    }
}
