//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a proxy removes them
//! before forwarding, in both directions.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that are hop-by-hop whatever `Connection` says.
const ALWAYS: [HeaderName; 7] = [
    header::CONNECTION,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Hop-by-hop headers of older clients, which `http` has no constants for.
const LEGACY: [&str; 2] = ["proxy-connection", "keep-alive"];

/// Whether `name` is removed whatever the message's `Connection` header lists.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    ALWAYS.contains(name) || LEGACY.contains(&name.as_str())
}

/// Removes hop-by-hop headers. With `keep_upgrade`, an `Upgrade` header and the `Connection:
/// upgrade` token survive, because the upgrade is what the client asked the end server for.
pub(crate) fn strip(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages have none (a listed name needs a Connection header, which is one of them):
    // one look at each name settles that, where removing each candidate hashes its name and
    // probes the map, a twentieth of a small GET's cost in the proxy.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    // Names listed in Connection first, before Connection itself is removed.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == header::UPGRADE))
        .collect();
    for name in listed {
        headers.remove(name);
    }
    let upgrade = if keep_upgrade {
        headers.remove(header::UPGRADE)
    } else {
        None
    };
    for name in ALWAYS {
        headers.remove(name);
    }
    for name in LEGACY {
        headers.remove(name);
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::UPGRADE, upgrade);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// True when the message asks to switch protocols (`Connection: upgrade` + `Upgrade`).
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && has_token(headers, header::CONNECTION, "upgrade")
}

/// True when a comma-separated list header lists `token` (compared without case).
pub(crate) fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Replaces every header value with a copy in an allocation of its own, for headers that go on
/// to an HTTP/2 connection.
///
/// hyper parses header values as slices of the connection's read buffer, which it grows to a
/// few hundred KiB for a large body, and h2 keeps the values it indexes in the next
/// connection's HPACK table for that connection's life. Passed on as they are, they would pin
/// the buffer of the connection they came from: one 1 MB download left each idle HTTP/2 client
/// connection holding the upstream's read buffer, 365 KiB instead of 59.
pub(crate) fn own_values(headers: &mut HeaderMap) {
    for value in headers.values_mut() {
        // A value hyper parsed is valid, so the copy is too.
        if let Ok(mut owned) = HeaderValue::from_bytes(value.as_bytes()) {
            owned.set_sensitive(value.is_sensitive());
            *value = owned;
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn removes_fixed_and_listed_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("upgrade", "websocket"),
            ("transfer-encoding", "chunked"),
            ("accept", "*/*"),
        ]);
        strip(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn each_hop_by_hop_header_alone_is_removed() {
        let names = ALWAYS.iter().map(HeaderName::as_str).chain(LEGACY);
        for name in names {
            let mut h = map(&[("accept", "*/*"), (name, "x")]);
            strip(&mut h, false);
            assert_eq!(h.len(), 1, "{name}: {h:?}");
            assert!(h.contains_key("accept"), "{name}");
        }
        let mut h = map(&[("accept", "*/*"), ("x-keep-alive", "1"), ("host", "a")]);
        let before = h.clone();
        strip(&mut h, false);
        assert_eq!(h, before, "end-to-end headers stay");
    }

    #[test]
    fn keeps_upgrade_when_asked() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "x"),
        ]);
        assert!(wants_upgrade(&h));
        strip(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
        assert!(h.contains_key("sec-websocket-key"));
    }

    #[test]
    fn upgrade_needs_both_headers() {
        assert!(!wants_upgrade(&map(&[("upgrade", "websocket")])));
        assert!(!wants_upgrade(&map(&[("connection", "upgrade")])));
    }

    #[test]
    fn header_values_are_copied_out_of_the_buffer_they_were_parsed_from() {
        // As hyper parses them: slices of one large read buffer.
        let buffer = Bytes::from(format!(
            "{}text/html{}secret",
            " ".repeat(1000),
            " ".repeat(50)
        ));
        let mut headers = HeaderMap::new();
        let slice = |at: usize, len: usize| {
            HeaderValue::from_maybe_shared(buffer.slice(at..at + len)).unwrap()
        };
        headers.insert("content-type", slice(1000, 9));
        let mut secret = slice(1059, 6);
        secret.set_sensitive(true);
        headers.insert("set-cookie", secret);
        own_values(&mut headers);

        let inside = |v: &HeaderValue| {
            let at = v.as_bytes().as_ptr() as usize;
            (buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len()).contains(&at)
        };
        assert_eq!(headers["content-type"], "text/html");
        assert_eq!(headers["set-cookie"], "secret");
        assert!(headers["set-cookie"].is_sensitive());
        assert!(!headers["content-type"].is_sensitive());
        assert!(headers.values().all(|v| !inside(v)));
    }
}
