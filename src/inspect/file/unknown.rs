//! Bytes of no recognised type. They stay `Unknown` (entropy never proves encryption: LZMA
//! output looks as random as ciphertext), but the reason carries the measured Shannon entropy
//! of the first 64 KiB, which helps a person reading the audit log.

use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, FileType};

const WINDOW: usize = 64 << 10;

pub(crate) struct UnknownFile {
    counts: Box<[u32; 256]>,
    seen: usize,
}

// === impl UnknownFile ===

impl UnknownFile {
    pub(crate) fn new() -> Self {
        Self {
            counts: Box::new([0; 256]),
            seen: 0,
        }
    }

    fn entropy(&self) -> f64 {
        let n = self.seen as f64;
        self.counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = f64::from(c) / n;
                -p * p.log2()
            })
            .sum()
    }
}

impl FormatScanner for UnknownFile {
    fn feed(&mut self, chunk: &[u8], _cx: &mut ScanCx<'_>) {
        let take = WINDOW.saturating_sub(self.seen).min(chunk.len());
        for &b in chunk.get(..take).unwrap_or(&[]) {
            if let Some(c) = self.counts.get_mut(usize::from(b)) {
                *c += 1;
            }
        }
        self.seen += take;
    }

    /// Nothing past the window can change an `Unknown` verdict, and no text is extracted.
    fn settled(&self) -> bool {
        self.seen >= WINDOW
    }

    fn finish(self: Box<Self>, _cx: &mut ScanCx<'_>) -> FormatFacts {
        let reason: std::borrow::Cow<'static, str> = if self.seen == 0 {
            "type not recognised".into()
        } else {
            format!(
                "type not recognised; entropy {:.2} bits/byte over the first {} bytes",
                self.entropy(),
                self.seen
            )
            .into()
        };
        FormatFacts {
            file_type: FileType::Unknown,
            encryption: Encryption::unknown(reason),
            members: Vec::new(),
            limits: Vec::new(),
        }
    }
}
