//! Base64 and PEM-style armor, shared by the crypto-container scanners.
//!
//! PGP messages, PEM CMS, armored age files and `openssl enc -a` output are all base64 text; the
//! scanners decide from the first few decoded bytes, so they only ever decode a short prefix into
//! a fixed buffer.

/// Decodes base64 from `text` into `out`, skipping whitespace, until `out` is full, the text ends,
/// or a character outside the alphabet (`=`, `-`, ...) is met. Returns the bytes written.
pub(super) fn decode_prefix(text: &[u8], out: &mut [u8]) -> usize {
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut n = 0;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let Some(slot) = out.get_mut(n) else {
                return n;
            };
            *slot = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    n
}

/// A base64 decoder that keeps its state across chunks and stops at the end of the data
/// (`=` padding, the armor checksum line or the END line).
#[derive(Debug, Default)]
pub(super) struct Base64Stream {
    acc: u32,
    bits: u32,
    ended: bool,
}

impl Base64Stream {
    /// Appends the bytes decoded from `text` to `out` (cleared first).
    pub(super) fn decode(&mut self, text: &[u8], out: &mut Vec<u8>) {
        out.clear();
        for &c in text {
            if self.ended {
                return;
            }
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b' ' | b'\t' | b'\r' | b'\n' => continue,
                _ => {
                    self.ended = true;
                    return;
                }
            };
            self.acc = (self.acc << 6) | u32::from(v);
            self.bits += 6;
            if self.bits >= 8 {
                self.bits -= 8;
                out.push((self.acc >> self.bits) as u8);
                self.acc &= (1 << self.bits) - 1;
            }
        }
    }
}

/// The body of a PEM-style block: skips the `-----BEGIN ...-----` line (the caller checked it)
/// and any `Key: value` header lines, returning the text from the first base64 line on.
/// `None` while the header lines are not complete yet.
pub(super) fn pem_body(text: &[u8]) -> Option<&[u8]> {
    let mut rest = after_line(text)?;
    loop {
        let line_end = memchr::memchr(b'\n', rest)?;
        let line = rest.get(..line_end).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let next = rest.get(line_end + 1..).unwrap_or_default();
        if line.is_empty() {
            return Some(next);
        }
        if memchr::memchr(b':', line).is_none() {
            // No header block: the base64 starts on this line.
            return Some(rest);
        }
        rest = next;
    }
}

/// The text after the first line feed, if there is one.
pub(super) fn after_line(text: &[u8]) -> Option<&[u8]> {
    let i = memchr::memchr(b'\n', text)?;
    text.get(i + 1..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_through_whitespace_and_stops_at_padding() {
        let mut out = [0u8; 16];
        let n = decode_prefix(b"U2Fs\r\ndGVk\nX18=", &mut out);
        assert_eq!(&out[..n], b"Salted__");
        let mut small = [0u8; 3];
        assert_eq!(decode_prefix(b"U2FsdGVkX18=", &mut small), 3);
        assert_eq!(&small, b"Sal");
    }

    #[test]
    fn pem_body_skips_armor_headers() {
        let text = b"-----BEGIN PGP MESSAGE-----\nVersion: x\nComment: y\n\njA0E\n";
        assert_eq!(pem_body(text), Some(&b"jA0E\n"[..]));
        let bare = b"-----BEGIN PKCS7-----\nMIAG\n";
        assert_eq!(pem_body(bare), Some(&b"MIAG\n"[..]));
        assert_eq!(pem_body(b"-----BEGIN PGP MESSAGE-----\nVersion: x"), None);
    }
}
