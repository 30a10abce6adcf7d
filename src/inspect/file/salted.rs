//! `openssl enc` output: `Salted__` and an 8-byte salt, then ciphertext.
//!
//! The format has no other structure, so the header is the whole proof. `openssl enc -a` writes
//! the same bytes in base64, which always starts `U2FsdGVkX1`.

use crate::inspect::file::armor;
use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, EncryptionKind, FileType};

/// `Salted__` plus the salt.
const HEADER_LEN: usize = 16;
/// Base64 characters that carry the header (16 bytes → 22 characters), with room for a line
/// break.
const B64_HEAD: usize = 32;

/// Scans an `openssl enc` file, binary or base64.
pub(super) struct SaltedScanner {
    head: Vec<u8>,
    verdict: Option<Encryption>,
}

// === impl SaltedScanner ===

impl SaltedScanner {
    pub(super) fn new() -> Self {
        Self {
            head: Vec::with_capacity(B64_HEAD),
            verdict: None,
        }
    }

    fn decide(&self, complete: bool) -> Option<Encryption> {
        let mut header = [0u8; HEADER_LEN];
        let (have, form) = if self.head.starts_with(b"Salted__") {
            let n = self.head.len().min(HEADER_LEN);
            header[..n].copy_from_slice(&self.head[..n]);
            (n, "openssl enc header with salt")
        } else {
            let n = armor::decode_prefix(&self.head, &mut header);
            (n, "openssl enc header with salt (base64)")
        };
        if have == HEADER_LEN && header.starts_with(b"Salted__") {
            return Some(Encryption::encrypted(EncryptionKind::OpensslSalted, form));
        }
        let magic_so_far = header.get(..have.min(8)).unwrap_or_default();
        if complete || !b"Salted__".starts_with(magic_so_far) {
            return Some(Encryption::unknown("openssl enc header incomplete"));
        }
        None
    }
}

impl FormatScanner for SaltedScanner {
    fn feed(&mut self, chunk: &[u8], _cx: &mut ScanCx<'_>) {
        if self.verdict.is_some() {
            return;
        }
        let take = B64_HEAD.saturating_sub(self.head.len()).min(chunk.len());
        self.head
            .extend_from_slice(chunk.get(..take).unwrap_or_default());
        self.verdict = self.decide(self.head.len() >= B64_HEAD);
    }

    fn settled(&self) -> bool {
        self.verdict.is_some()
    }

    fn finish(self: Box<Self>, _cx: &mut ScanCx<'_>) -> FormatFacts {
        let encryption = match self.verdict {
            Some(v) => v,
            None => self
                .decide(true)
                .unwrap_or_else(|| Encryption::unknown("openssl enc header incomplete")),
        };
        FormatFacts {
            file_type: FileType::OpensslSalted,
            encryption,
            members: Vec::new(),
            limits: Vec::new(),
        }
    }
}
