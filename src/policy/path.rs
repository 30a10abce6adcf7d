//! The request path as path rules see it.
//!
//! A path rule such as `^/upload/drive/` must not be sidestepped by writing the same path
//! differently: `//upload/drive/`, `/./upload/drive/`, `/x/../upload/drive/` or
//! `/%75pload/drive/` reach the same resource on most servers. Before matching, the path is
//! normalised: percent-encoded unreserved characters are decoded, `.` and `..` segments
//! resolved and repeated slashes collapsed. Encoded slashes (`%2F`) and other reserved
//! characters stay encoded, as servers do not treat them as separators. Paths that need none of
//! this (nearly all) are matched as they are, without allocating.

use std::borrow::Cow;

/// The normalised form of `path`.
pub(crate) fn normalize(path: &str) -> Cow<'_, str> {
    let suspicious = path.contains('%') || path.contains("//") || path.contains("/.");
    if !suspicious {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut out: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut result = String::with_capacity(decoded.len());
    for s in &out {
        result.push('/');
        result.push_str(s);
    }
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    if result.is_empty() || (trailing && !result.ends_with('/')) {
        result.push('/');
    }
    Cow::Owned(result)
}

/// Decodes `%XX` where XX is an unreserved character (RFC 3986: ALPHA DIGIT - . _ ~).
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(v) = bytes.get(i + 1..i + 3).and_then(hex_pair)
            && (v.is_ascii_alphanumeric() || b"-._~".contains(&v))
        {
            out.push(char::from(v));
            i += 3;
            continue;
        }
        // Copy the whole (possibly multi-byte) character starting at i.
        let ch = path
            .get(i..)
            .and_then(|s| s.chars().next())
            .unwrap_or('\u{FFFD}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    let digit = |c: u8| char::from(c).to_digit(16);
    match pair {
        [h, l] => Some(u8::try_from(digit(*h)? * 16 + digit(*l)?).ok()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn ordinary_paths_are_borrowed_unchanged() {
        for p in ["/", "/upload/drive/v3/files", "/a-b_c~d.e/f"] {
            assert!(matches!(normalize(p), std::borrow::Cow::Borrowed(x) if x == p));
        }
    }

    #[test]
    fn rewritings_of_the_same_path_normalise_to_it() {
        for p in [
            "//upload/drive/v3/files",
            "/./upload/drive/v3/files",
            "/x/../upload/drive/v3/files",
            "/%75pload/drive/v3/files",
            "/%75%70load//drive/./v3/files",
            "/../../upload/drive/v3/files",
        ] {
            assert_eq!(normalize(p), "/upload/drive/v3/files", "{p}");
        }
    }

    #[test]
    fn reserved_characters_and_trailing_slashes_are_kept() {
        assert_eq!(normalize("/a%2Fb/"), "/a%2Fb/");
        assert_eq!(normalize("/a/./"), "/a/");
        assert_eq!(normalize("/a/.."), "/");
        assert_eq!(normalize("/%zz/%4"), "/%zz/%4");
        assert_eq!(normalize("/caf%C3%A9//x"), "/caf%C3%A9/x");
        assert_eq!(normalize("/ü//x"), "/ü/x");
    }
}
