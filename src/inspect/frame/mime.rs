//! Media types and header parameters (`multipart/form-data; boundary="x"`,
//! `form-data; name="f"; filename="a.txt"`), tolerant of what real clients send.

/// A parsed media type: lowercase essence plus parameters (lowercase names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MediaType {
    pub(crate) essence: String,
    pub(crate) params: Vec<(String, String)>,
}

// === impl MediaType ===

impl MediaType {
    pub(crate) fn parse(value: &str) -> Self {
        let (essence, rest) = value.split_once(';').unwrap_or((value, ""));
        Self {
            essence: essence.trim().to_ascii_lowercase(),
            params: params(rest),
        }
    }

    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Text a person or program wrote as a form value, not a file's bytes.
    pub(crate) fn is_textual(&self) -> bool {
        let e = self.essence.as_str();
        e.starts_with("text/")
            || self.is_json()
            || self.is_form()
            || e.ends_with("+xml")
            || e == "application/xml"
    }

    pub(crate) fn is_json(&self) -> bool {
        matches!(self.essence.as_str(), "application/json" | "text/json")
            || self.essence.ends_with("+json")
    }

    pub(crate) fn is_form(&self) -> bool {
        self.essence == "application/x-www-form-urlencoded"
    }
}

/// Parses `; a=b; c="d e"` parameter lists. Quoted strings may contain `;` and `\"`.
pub(crate) fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t', '\r', '\n']);
        if rest.is_empty() {
            break;
        }
        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let name = rest
            .get(..name_end)
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        rest = rest.get(name_end..).unwrap_or("");
        let value = match rest.strip_prefix('=') {
            Some(v) => {
                let v = v.trim_start();
                let (value, after) = if let Some(q) = v.strip_prefix('"') {
                    quoted(q)
                } else {
                    let end = v.find(';').unwrap_or(v.len());
                    (
                        v.get(..end).unwrap_or("").trim().to_owned(),
                        v.get(end..).unwrap_or(""),
                    )
                };
                rest = after;
                value
            }
            None => String::new(),
        };
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

/// Reads a quoted string body (after the opening quote); returns it and what follows.
fn quoted(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, s.get(i + 1..).unwrap_or("")),
            '\\' => {
                // Browsers do not escape backslashes in file names (`C:\dir\f.txt`); only a
                // backslash before a quote or backslash is an escape.
                let next = s.get(i + 1..).and_then(|r| r.chars().next());
                if let Some(n @ ('"' | '\\')) = next {
                    value.push(n);
                    chars.next();
                } else {
                    value.push('\\');
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
}

/// `%XX` decoding; `None` if the result is not UTF-8 or there was nothing to decode.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let Some(v) = b.get(i + 1..i + 3).and_then(hex_pair)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub(crate) fn hex_pair(h: &[u8]) -> Option<u8> {
    let d = |c: u8| char::from(c).to_digit(16);
    let (a, b) = (d(*h.first()?)?, d(*h.get(1)?)?);
    u8::try_from(a * 16 + b).ok()
}

/// RFC 5987 `charset'lang'value` (the `filename*` form).
pub(crate) fn ext_value(s: &str) -> Option<String> {
    let mut it = s.splitn(3, '\'');
    let charset = it.next()?.to_ascii_lowercase();
    let _lang = it.next()?;
    let value = it.next()?;
    let decoded = percent_decode(value).unwrap_or_else(|| value.to_owned());
    match charset.as_str() {
        "utf-8" | "" => Some(decoded),
        _ => Some(decoded.chars().filter(char::is_ascii).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_and_params() {
        let m = MediaType::parse("Multipart/Form-Data; boundary=\"--x;y\"; charset=utf-8");
        assert_eq!(m.essence, "multipart/form-data");
        assert_eq!(m.param("boundary"), Some("--x;y"));
        assert_eq!(m.param("charset"), Some("utf-8"));
        let d = params(r#"form-data; name="f"; filename="C:\dir\a \"b\".txt""#);
        assert!(d.contains(&("filename".into(), r#"C:\dir\a "b".txt"#.into())));
        assert!(MediaType::parse("application/vnd.api+json").is_json());
        assert!(!MediaType::parse("image/png").is_textual());
    }

    #[test]
    fn file_name_encodings() {
        assert_eq!(
            percent_decode("na%C3%AFve.txt").as_deref(),
            Some("naïve.txt")
        );
        assert_eq!(percent_decode("plain.txt"), None);
        assert_eq!(
            ext_value("UTF-8''%E2%82%AC%20rates.pdf").as_deref(),
            Some("€ rates.pdf")
        );
    }
}
