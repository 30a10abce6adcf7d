//! OLE compound files (CFB): password-protected and IRM-protected OOXML, legacy .doc/.xls/.ppt.
//!
//! A full CFB parse needs random access (FAT chains, a directory anywhere in the file). This
//! scanner reads the file once with constant memory instead, relying on alignment:
//! - directory entries are 128-byte records at 128-byte-aligned offsets (sectors start at
//!   multiples of 512), so every aligned slot is checked for the stream names that matter;
//! - mini-stream sectors are 64 bytes, so small streams (`EncryptionInfo`, `Current User`)
//!   start at 64-byte-aligned offsets, where their headers are recognised;
//! - large streams (`WordDocument`, `Workbook`) start on a sector boundary, where the Word FIB
//!   and the Excel BOF record are recognised.
//!
//! Content signatures count only together with the directory name of their stream, so a
//! look-alike in unrelated data cannot decide alone. The verdict waits for the end of the file
//! (the directory may be last). Text of legacy formats is not extracted.

mod legacy;
mod names;

use legacy::{Fib, FilePass};
use names::{Name, Names};

use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, EncryptionKind, FileType};

const HEADER_LEN: usize = 512;
const UNIT: usize = 64;
/// Bytes after an Excel BOF that are kept to find FILEPASS: the record follows BOF within the
/// stream's first sector.
const BOF_CAPTURE: usize = 512;
const BIFF8_BOF: &[u8] = &[0x09, 0x08, 0x10, 0x00, 0x00, 0x06, 0x05, 0x00];

/// Scans one compound file.
pub(super) struct CfbScanner {
    header: Vec<u8>,
    sector: usize,
    /// File offset of the next byte fed.
    offset: u64,
    unit: [u8; UNIT],
    unit_len: usize,
    /// The first half of a possible directory entry (saved only when it looks like a name).
    pending_name: Option<[u8; UNIT]>,
    names: Names,
    encryption_info: Option<EncryptionInfoVersion>,
    fib: Option<Fib>,
    bof: Option<Vec<u8>>,
    current_user_token: Option<u32>,
    msi: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EncryptionInfoVersion {
    Agile,
    Standard,
    Extensible,
}

// === impl CfbScanner ===

impl CfbScanner {
    pub(super) fn new() -> Self {
        Self {
            header: Vec::with_capacity(HEADER_LEN),
            sector: 0,
            offset: 0,
            unit: [0; UNIT],
            unit_len: 0,
            pending_name: None,
            names: Names::default(),
            encryption_info: None,
            fib: None,
            bof: None,
            current_user_token: None,
            msi: false,
        }
    }

    fn read_header(&mut self) {
        // Sector shift at 0x1E: 9 (512 bytes, version 3) or 12 (4096 bytes, version 4).
        self.sector = match self.header.get(0x1E..0x20) {
            Some([9, 0]) => 512,
            Some([12, 0]) => 4096,
            _ => 0,
        };
    }

    /// One 64-byte unit at `self.offset`.
    fn unit(&mut self, unit: &[u8; UNIT]) {
        let offset = self.offset;
        self.offset += UNIT as u64;
        if let Some(capture) = &mut self.bof
            && capture.len() < BOF_CAPTURE
        {
            capture.extend_from_slice(unit);
        }
        if let Some(first) = self.pending_name.take() {
            self.directory_entry(&first, unit);
        }
        if offset.is_multiple_of(128) && names::may_be_name(unit) {
            self.pending_name = Some(*unit);
        }
        self.stream_start(unit, offset);
    }

    fn directory_entry(&mut self, first: &[u8; UNIT], second: &[u8; UNIT]) {
        let Some(name) = self.names.entry(first, second) else {
            return;
        };
        if name == Name::Root && legacy::is_msi_clsid(second.get(0x10..0x20).unwrap_or_default()) {
            self.msi = true;
        }
    }

    /// Signatures of the streams whose first bytes matter.
    fn stream_start(&mut self, unit: &[u8; UNIT], offset: u64) {
        if self.encryption_info.is_none() {
            self.encryption_info = encryption_info_version(unit);
        }
        if self.current_user_token.is_none() {
            self.current_user_token = legacy::current_user_token(unit);
        }
        let sector_start = self.sector > 0 && offset.is_multiple_of(self.sector as u64);
        if sector_start && self.fib.is_none() {
            self.fib = Fib::read(unit);
        }
        if self.bof.is_none() && unit.starts_with(BIFF8_BOF) {
            let mut capture = Vec::with_capacity(BOF_CAPTURE);
            capture.extend_from_slice(unit);
            self.bof = Some(capture);
        }
    }

    fn verdict(&self) -> (FileType, Encryption) {
        let names = &self.names;
        if names.has(Name::EncryptionInfo) && names.has(Name::EncryptedPackage) {
            let (kind, reason) = match self.encryption_info {
                Some(EncryptionInfoVersion::Standard) => (
                    EncryptionKind::OoxmlStandard,
                    "password-protected OOXML (standard encryption)",
                ),
                Some(EncryptionInfoVersion::Extensible) => (
                    EncryptionKind::OoxmlStandard,
                    "password-protected OOXML (extensible encryption)",
                ),
                Some(EncryptionInfoVersion::Agile) => (
                    EncryptionKind::OoxmlAgile,
                    "password-protected OOXML (agile encryption)",
                ),
                None => (
                    EncryptionKind::OoxmlAgile,
                    "password-protected OOXML (version not located)",
                ),
            };
            return (
                FileType::OoxmlEncrypted,
                Encryption::encrypted(kind, reason),
            );
        }
        if names.has(Name::EncryptedPackage) && names.has_drm() {
            return (
                FileType::OoxmlEncrypted,
                Encryption::encrypted(
                    EncryptionKind::OoxmlIrm,
                    "rights-management (IRM) protected package",
                ),
            );
        }
        let file_type = self.legacy_type();
        if names.has(Name::DrmContent) {
            let e = Encryption::encrypted(
                EncryptionKind::OoxmlIrm,
                "rights-management (IRM) protected document",
            );
            return (file_type, e);
        }
        let encryption = match file_type {
            FileType::Doc => legacy::doc_verdict(self.fib, names.has(Name::EncryptedSummary)),
            FileType::Xls => self.xls_verdict(),
            FileType::Ppt => {
                legacy::ppt_verdict(self.current_user_token, names.has(Name::EncryptedSummary))
            }
            _ if names.has(Name::EncryptionInfo) || names.has(Name::EncryptedPackage) => {
                Encryption::unknown("incomplete encrypted OOXML container")
            }
            _ if names.has(Name::EncryptedSummary) => {
                Encryption::unknown("encrypted summary without a known document stream")
            }
            _ if names.entries() == 0 => Encryption::unknown("no directory entries found"),
            _ => Encryption::not_encrypted("compound file without encryption markers"),
        };
        (file_type, encryption)
    }

    fn legacy_type(&self) -> FileType {
        if self.names.has(Name::WordDocument) {
            FileType::Doc
        } else if self.names.has(Name::Workbook) {
            FileType::Xls
        } else if self.names.has(Name::PowerPointDocument) {
            FileType::Ppt
        } else if self.msi {
            FileType::Msi
        } else {
            FileType::Cfb
        }
    }

    fn xls_verdict(&self) -> Encryption {
        let Some(bof) = &self.bof else {
            return Encryption::unknown("workbook stream start not located");
        };
        match FilePass::find(bof) {
            None => Encryption::not_encrypted("workbook without FILEPASS record"),
            Some(file_pass) => file_pass.verdict(),
        }
    }
}

impl FormatScanner for CfbScanner {
    fn feed(&mut self, chunk: &[u8], _cx: &mut ScanCx<'_>) {
        let mut data = chunk;
        if self.header.len() < HEADER_LEN {
            let take = (HEADER_LEN - self.header.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.header.extend_from_slice(head);
            data = rest;
            if self.header.len() < HEADER_LEN {
                return;
            }
            self.read_header();
            self.offset = HEADER_LEN as u64;
        }
        if self.sector == 0 {
            return;
        }
        while !data.is_empty() {
            if self.unit_len == 0 && data.len() >= UNIT {
                let whole = data.len() / UNIT * UNIT;
                let (units, rest) = data.split_at(whole);
                for unit in units.chunks_exact(UNIT) {
                    if let Ok(unit) = <&[u8; UNIT]>::try_from(unit) {
                        self.unit(unit);
                    }
                }
                data = rest;
                continue;
            }
            let take = (UNIT - self.unit_len).min(data.len());
            let (part, rest) = data.split_at(take);
            self.unit[self.unit_len..self.unit_len + take].copy_from_slice(part);
            self.unit_len += take;
            data = rest;
            if self.unit_len == UNIT {
                self.unit_len = 0;
                let unit = self.unit;
                self.unit(&unit);
            }
        }
    }

    fn finish(self: Box<Self>, _cx: &mut ScanCx<'_>) -> FormatFacts {
        let (file_type, encryption) = if self.sector == 0 {
            (
                FileType::Cfb,
                Encryption::unknown("not a valid compound file header"),
            )
        } else {
            self.verdict()
        };
        FormatFacts {
            file_type,
            encryption,
            members: Vec::new(),
            limits: Vec::new(),
        }
    }
}

/// The `EncryptionInfo` stream header (MS-OFFCRYPTO 2.3.4): version major.minor and flags.
fn encryption_info_version(unit: &[u8]) -> Option<EncryptionInfoVersion> {
    let [major, 0, minor, 0, flags, f1, f2, f3, ..] = *unit else {
        return None;
    };
    match (major, minor, flags, [f1, f2, f3]) {
        (4, 4, 0x40, [0, 0, 0]) => Some(EncryptionInfoVersion::Agile),
        // Standard: fCryptoAPI set, fAES as the cipher says, nothing else.
        (2..=4, 2, 0x04 | 0x24, [0, 0, 0]) => Some(EncryptionInfoVersion::Standard),
        (3 | 4, 3, 0x04 | 0x14 | 0x24 | 0x34, [0, 0, 0]) => Some(EncryptionInfoVersion::Extensible),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
