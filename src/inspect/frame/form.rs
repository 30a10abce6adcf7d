//! `application/x-www-form-urlencoded` bodies as text: URL-decoded, one key or value per line,
//! so a field holding only "Vertrouwelijk" reads like a marking and a key "bsn" is context.

use crate::inspect::frame::Out;
use crate::inspect::frame::mime::hex_pair;

const FLUSH_AT: usize = 8 << 10;

#[derive(Debug, Default)]
pub(crate) struct UrlForm {
    /// A `%` escape cut by a chunk border: the bytes seen of it.
    escape: Vec<u8>,
    text: Vec<u8>,
}

// === impl UrlForm ===

impl UrlForm {
    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Out<'_>) {
        for &b in data {
            if self.text.len() >= FLUSH_AT {
                out.text(&self.text);
                self.text.clear();
            }
            if !self.escape.is_empty() {
                self.escape.push(b);
                if self.escape.len() == 3 {
                    match hex_pair(self.escape.get(1..3).unwrap_or(&[])) {
                        Some(v) => self.text.push(v),
                        None => self.text.extend_from_slice(&self.escape),
                    }
                    self.escape.clear();
                }
                continue;
            }
            match b {
                b'%' => self.escape.push(b),
                b'+' => self.text.push(b' '),
                b'&' | b'=' => self.text.push(b'\n'),
                _ => self.text.push(b),
            }
        }
        if self.text.len() >= FLUSH_AT {
            out.text(&self.text);
            self.text.clear();
        }
    }

    pub(crate) fn finish(mut self, out: &mut Out<'_>) {
        self.text.extend_from_slice(&self.escape);
        out.text(&self.text);
        out.end_text();
    }
}
