//! age files (`age-encryption.org/v1`), binary or ASCII-armored.
//!
//! An age file is a text header (version line, one stanza per recipient, MAC) and then the
//! payload, always encrypted. The version line plus one well-formed recipient stanza is the proof;
//! the rest of the file cannot change the verdict, so the scanner settles there.

use crate::inspect::file::armor;
use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, EncryptionKind, FileType};

const VERSION_LINE: &[u8] = b"age-encryption.org/v1\n";
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// Bytes of the (decoded) header the decision needs: the version line and the first stanza's
/// type. Recipient types are short; the cap only bounds a malformed header.
const HEADER_CAP: usize = 96;
/// Armored input: the BEGIN line and enough base64 for `HEADER_CAP` decoded bytes.
const ARMOR_CAP: usize = 256;

/// Scans an age file.
pub(super) struct AgeScanner {
    head: Vec<u8>,
    verdict: Option<Encryption>,
}

// === impl AgeScanner ===

impl AgeScanner {
    pub(super) fn new() -> Self {
        Self {
            head: Vec::with_capacity(ARMOR_CAP),
            verdict: None,
        }
    }

    fn cap(&self) -> usize {
        if self.head.starts_with(ARMOR_BEGIN) {
            ARMOR_CAP
        } else {
            HEADER_CAP
        }
    }

    fn decide(&self, complete: bool) -> Option<Encryption> {
        let mut decoded = [0u8; HEADER_CAP];
        let header: &[u8] = if self.head.starts_with(ARMOR_BEGIN) {
            let body = armor::after_line(&self.head).unwrap_or_default();
            let n = armor::decode_prefix(body, &mut decoded);
            decoded.get(..n).unwrap_or_default()
        } else {
            &self.head
        };
        match read_header(header) {
            Header::Stanza(kind) => Some(Encryption::encrypted(EncryptionKind::Age, kind)),
            Header::Invalid => Some(Encryption::unknown("not a valid age header")),
            Header::NeedMore if complete => Some(Encryption::unknown("age header truncated")),
            Header::NeedMore => None,
        }
    }
}

impl FormatScanner for AgeScanner {
    fn feed(&mut self, chunk: &[u8], _cx: &mut ScanCx<'_>) {
        if self.verdict.is_some() {
            return;
        }
        let take = self.cap().saturating_sub(self.head.len()).min(chunk.len());
        self.head
            .extend_from_slice(chunk.get(..take).unwrap_or_default());
        self.verdict = self.decide(self.head.len() >= self.cap());
    }

    fn settled(&self) -> bool {
        self.verdict.is_some()
    }

    fn finish(self: Box<Self>, _cx: &mut ScanCx<'_>) -> FormatFacts {
        let encryption = match self.verdict {
            Some(v) => v,
            None => self
                .decide(true)
                .unwrap_or_else(|| Encryption::unknown("age header truncated")),
        };
        FormatFacts {
            file_type: FileType::Age,
            encryption,
            members: Vec::new(),
            limits: Vec::new(),
        }
    }
}

enum Header {
    /// Version line and a recipient stanza: the reason names the recipient type.
    Stanza(&'static str),
    Invalid,
    NeedMore,
}

/// Checks the version line and the first stanza line (`-> TYPE args...`).
fn read_header(header: &[u8]) -> Header {
    let common = header.len().min(VERSION_LINE.len());
    if header.get(..common) != VERSION_LINE.get(..common) {
        return Header::Invalid;
    }
    let Some(rest) = header.get(VERSION_LINE.len()..) else {
        return Header::NeedMore;
    };
    let common = rest.len().min(3);
    if rest.get(..common) != b"-> ".get(..common) {
        return Header::Invalid;
    }
    let Some(stanza) = rest.get(3..) else {
        return Header::NeedMore;
    };
    let Some(end) = stanza.iter().position(|&b| b == b' ' || b == b'\n') else {
        return if stanza.len() >= HEADER_CAP / 2 {
            Header::Invalid
        } else {
            Header::NeedMore
        };
    };
    let kind = stanza.get(..end).unwrap_or_default();
    if kind.is_empty() || !kind.iter().all(|b| b.is_ascii_graphic()) {
        return Header::Invalid;
    }
    Header::Stanza(match kind {
        b"X25519" => "age: X25519 recipient",
        b"scrypt" => "age: passphrase (scrypt)",
        b"ssh-ed25519" | b"ssh-rsa" => "age: SSH key recipient",
        b"mlkem768x25519" => "age: post-quantum hybrid recipient",
        _ => "age: plugin or other recipient",
    })
}
