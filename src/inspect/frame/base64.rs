//! Streaming base64 decoding (standard and URL-safe alphabets), for files sent as base64 in
//! JSON strings, `data:` URLs and `Content-Transfer-Encoding: base64` parts.

/// Decodes 4 characters to 3 bytes as they arrive; whitespace is skipped.
#[derive(Debug, Default)]
pub(crate) struct Base64 {
    acc: u32,
    n: u8,
    padded: bool,
}

/// The input is not base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotBase64;

pub(crate) fn is_b64_char(b: u8) -> bool {
    value(b).is_some() || b == b'='
}

fn value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

// === impl Base64 ===

impl Base64 {
    /// Decodes `input`, appending bytes to `out`.
    pub(crate) fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), NotBase64> {
        for &b in input {
            if b.is_ascii_whitespace() {
                continue;
            }
            if b == b'=' {
                self.padded = true;
                continue;
            }
            let v = value(b).ok_or(NotBase64)?;
            if self.padded {
                return Err(NotBase64);
            }
            self.acc = (self.acc << 6) | v;
            self.n += 1;
            if self.n == 4 {
                let [_, a, b, c] = self.acc.to_be_bytes();
                out.extend_from_slice(&[a, b, c]);
                self.acc = 0;
                self.n = 0;
            }
        }
        Ok(())
    }

    /// Flushes a final partial group (2 or 3 characters, padded or not).
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), NotBase64> {
        let [_, a, b, _] = (self.acc << (6 * (4 - u32::from(self.n)))).to_be_bytes();
        let r = match self.n {
            0 => Ok(()),
            2 => {
                out.push(a);
                Ok(())
            }
            3 => {
                out.extend_from_slice(&[a, b]);
                Ok(())
            }
            _ => Err(NotBase64),
        };
        *self = Self::default();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &[u8], split: usize) -> Result<Vec<u8>, NotBase64> {
        let mut d = Base64::default();
        let mut out = Vec::new();
        for part in s.chunks(split.max(1)) {
            d.push(part, &mut out)?;
        }
        d.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn decodes_in_any_split() {
        for split in [1, 2, 3, 5, 100] {
            assert_eq!(decode(b"aGVsbG8gd29ybGQ=", split).unwrap(), b"hello world");
            assert_eq!(decode(b"aGVs\nbG8=", split).unwrap(), b"hello");
            assert_eq!(decode(b"-_-_", split).unwrap(), [0xFB, 0xFF, 0xBF]);
        }
        assert_eq!(decode(b"aGk", 10).unwrap(), b"hi");
        assert!(decode(b"aGk*", 10).is_err());
        assert!(decode(b"a", 10).is_err());
        assert!(decode(b"aG==aG", 10).is_err());
    }
}
