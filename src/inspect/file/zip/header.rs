//! ZIP records as they appear on the wire: local headers, central-directory entries and their
//! extra fields (ZIP64 sizes, WinZip AES, PKWARE strong encryption).

use crate::inspect::file::bytes::{slice, u16_at, u32_at, u64_at};

pub(super) const SIG_LOCAL: [u8; 4] = *b"PK\x03\x04";
pub(super) const SIG_CENTRAL: [u8; 4] = *b"PK\x01\x02";
pub(super) const SIG_EOCD: [u8; 4] = *b"PK\x05\x06";
pub(super) const SIG_ZIP64_EOCD: [u8; 4] = *b"PK\x06\x06";
pub(super) const SIG_ZIP64_LOCATOR: [u8; 4] = *b"PK\x06\x07";
pub(super) const SIG_DESCRIPTOR: [u8; 4] = *b"PK\x07\x08";
/// Archive extra data record: precedes an encrypted central directory.
pub(super) const SIG_ARCHIVE_EXTRA: [u8; 4] = *b"PK\x06\x08";

pub(super) const LOCAL_FIXED: usize = 30;
pub(super) const CENTRAL_FIXED: usize = 46;
pub(super) const EOCD_FIXED: usize = 22;

pub(super) const FLAG_ENCRYPTED: u16 = 0x0001;
pub(super) const FLAG_DESCRIPTOR: u16 = 0x0008;
pub(super) const FLAG_STRONG: u16 = 0x0040;
pub(super) const FLAG_MASKED: u16 = 0x2000;

pub(super) const METHOD_STORED: u16 = 0;
pub(super) const METHOD_DEFLATE: u16 = 8;
pub(super) const METHOD_AES: u16 = 99;

/// How a member is protected, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Protection {
    None,
    /// Traditional PKWARE encryption: broken, but a password is still needed.
    ZipCrypto,
    /// PKWARE strong encryption (flag bit 6); algorithm from extra field 0x0017 when present.
    Strong(u16),
    /// WinZip AES, with key bits (0 when the strength byte is missing).
    Aes(u16),
}

/// The fields of a local or central header that the scanner uses.
#[derive(Debug, Clone)]
pub(super) struct Header {
    pub(super) flags: u16,
    pub(super) method: u16,
    pub(super) csize: u64,
    pub(super) usize: u64,
    /// Local-header offset (central entries only).
    pub(super) offset: u64,
    pub(super) name: Vec<u8>,
    /// A ZIP64 extra field was present (data descriptors then carry 8-byte sizes).
    pub(super) zip64: bool,
    pub(super) aes_bits: Option<u16>,
    pub(super) strong_alg: Option<u16>,
}

/// Lengths of the variable part of a local header, from its fixed part.
pub(super) fn local_var_len(fixed: &[u8]) -> usize {
    usize::from(u16_at(fixed, 26)) + usize::from(u16_at(fixed, 28))
}

/// Lengths of the variable part of a central entry, from its fixed part.
pub(super) fn central_var_len(fixed: &[u8]) -> usize {
    usize::from(u16_at(fixed, 28)) + usize::from(u16_at(fixed, 30)) + usize::from(u16_at(fixed, 32))
}

/// Parses a whole local header (fixed part, name, extra).
pub(super) fn parse_local(b: &[u8]) -> Header {
    let name_len = usize::from(u16_at(b, 26));
    let extra_len = usize::from(u16_at(b, 28));
    let name = slice(b, LOCAL_FIXED, name_len).to_vec();
    let extra = slice(b, LOCAL_FIXED + name_len, extra_len);
    let mut h = Header {
        flags: u16_at(b, 6),
        method: u16_at(b, 8),
        csize: u64::from(u32_at(b, 18)),
        usize: u64::from(u32_at(b, 22)),
        offset: 0,
        name,
        zip64: false,
        aes_bits: None,
        strong_alg: None,
    };
    apply_extra(&mut h, extra, false);
    h
}

/// Parses a whole central-directory entry.
pub(super) fn parse_central(b: &[u8]) -> Header {
    let name_len = usize::from(u16_at(b, 28));
    let extra_len = usize::from(u16_at(b, 30));
    let mut h = Header {
        flags: u16_at(b, 8),
        method: u16_at(b, 10),
        csize: u64::from(u32_at(b, 20)),
        usize: u64::from(u32_at(b, 24)),
        offset: u64::from(u32_at(b, 42)),
        name: slice(b, CENTRAL_FIXED, name_len).to_vec(),
        zip64: false,
        aes_bits: None,
        strong_alg: None,
    };
    apply_extra(&mut h, slice(b, CENTRAL_FIXED + name_len, extra_len), true);
    h
}

fn apply_extra(h: &mut Header, mut extra: &[u8], central: bool) {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0);
        let len = usize::from(u16_at(extra, 2));
        let data = slice(extra, 4, len);
        match id {
            0x0001 => {
                h.zip64 = true;
                let mut fields = data;
                let mut take = |v: &mut u64| {
                    if *v == 0xFFFF_FFFF && fields.len() >= 8 {
                        *v = u64_at(fields, 0);
                        fields = fields.get(8..).unwrap_or_default();
                    }
                };
                take(&mut h.usize);
                take(&mut h.csize);
                if central {
                    take(&mut h.offset);
                }
            }
            0x9901 if data.len() >= 7 => {
                h.aes_bits = Some(match data.get(4) {
                    Some(1) => 128,
                    Some(2) => 192,
                    Some(3) => 256,
                    _ => 0,
                });
            }
            0x0017 if data.len() >= 4 => h.strong_alg = Some(u16_at(data, 2)),
            _ => {}
        }
        extra = extra.get(4 + len..).unwrap_or_default();
    }
}

// === impl Header ===

impl Header {
    pub(super) fn protection(&self) -> Protection {
        if self.flags & FLAG_ENCRYPTED == 0 {
            Protection::None
        } else if self.flags & FLAG_STRONG != 0 {
            Protection::Strong(self.strong_alg.unwrap_or(0))
        } else if self.method == METHOD_AES || self.aes_bits.is_some() {
            Protection::Aes(self.aes_bits.unwrap_or(0))
        } else {
            Protection::ZipCrypto
        }
    }

    pub(super) fn has_descriptor(&self) -> bool {
        self.flags & FLAG_DESCRIPTOR != 0
    }

    /// The compressed size is not in the header: it follows the data, or the header is masked.
    pub(super) fn size_unknown(&self) -> bool {
        (self.has_descriptor() && self.csize == 0) || self.flags & FLAG_MASKED != 0
    }

    pub(super) fn is_dir(&self) -> bool {
        self.name.last() == Some(&b'/')
    }
}

// === impl Protection ===

impl Protection {
    /// Bytes an encrypted member spends on headers and trailers before any content.
    pub(super) fn overhead(self) -> u64 {
        match self {
            Protection::None => 0,
            Protection::ZipCrypto => 12,
            // salt (8/12/16) + verifier 2 + HMAC 10
            Protection::Aes(bits) => u64::from(bits / 16) + 12,
            Protection::Strong(_) => 0,
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Protection::None => "none",
            Protection::ZipCrypto => "ZipCrypto",
            Protection::Strong(0x660E) => "PKWARE strong AES-128",
            Protection::Strong(0x660F) => "PKWARE strong AES-192",
            Protection::Strong(0x6610) => "PKWARE strong AES-256",
            Protection::Strong(_) => "PKWARE strong encryption",
            Protection::Aes(128) => "AES-128",
            Protection::Aes(192) => "AES-192",
            Protection::Aes(256) => "AES-256",
            Protection::Aes(_) => "AES",
        }
    }
}
