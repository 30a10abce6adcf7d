//! Directory entries recognised in aligned 128-byte slots, by name.

/// Stream and storage names that decide a compound file's type and encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name {
    Root,
    EncryptionInfo,
    EncryptedPackage,
    /// `DRMEncryptedTransform` or `DRMEncryptedDataSpace` (IRM on an OOXML package).
    Drm,
    /// `\x09DRMContent` (IRM on a binary Office document).
    DrmContent,
    WordDocument,
    Workbook,
    PowerPointDocument,
    EncryptedSummary,
    CurrentUser,
}

const KNOWN: &[(&[u8], Name)] = &[
    (b"Root Entry", Name::Root),
    (b"EncryptionInfo", Name::EncryptionInfo),
    (b"EncryptedPackage", Name::EncryptedPackage),
    (b"DRMEncryptedTransform", Name::Drm),
    (b"DRMEncryptedDataSpace", Name::Drm),
    (b"\x09DRMContent", Name::DrmContent),
    (b"WordDocument", Name::WordDocument),
    (b"Workbook", Name::Workbook),
    (b"Book", Name::Workbook),
    (b"PowerPoint Document", Name::PowerPointDocument),
    (b"EncryptedSummary", Name::EncryptedSummary),
    (b"Current User", Name::CurrentUser),
];

/// The names seen so far (a bit per `Name`) and how many entries were recognised.
#[derive(Debug, Default)]
pub(super) struct Names {
    seen: u32,
    entries: u32,
}

// === impl Names ===

impl Names {
    /// Reads a 128-byte directory entry given as two halves; returns its name when it is one
    /// of the known ones.
    pub(super) fn entry(&mut self, first: &[u8; 64], second: &[u8; 64]) -> Option<Name> {
        let [len_lo, len_hi, kind, color, ..] = *second;
        let name_len = usize::from(u16::from_le_bytes([len_lo, len_hi]));
        let valid = (4..=64).contains(&name_len)
            && name_len.is_multiple_of(2)
            && matches!(kind, 1 | 2 | 5)
            && color <= 1
            && first.get(name_len - 2..name_len) == Some(&[0, 0]);
        if !valid {
            return None;
        }
        self.entries += 1;
        let mut ascii = [0u8; 32];
        let chars = name_len / 2 - 1;
        for (i, pair) in first.chunks_exact(2).take(chars).enumerate() {
            let [lo, 0] = *pair else {
                return None;
            };
            if let Some(slot) = ascii.get_mut(i) {
                *slot = lo;
            }
        }
        let name = ascii.get(..chars)?;
        let (_, found) = KNOWN.iter().find(|(known, _)| *known == name)?;
        if *found == Name::Root && kind != 5 {
            return None;
        }
        self.seen |= 1 << (*found as u32);
        Some(*found)
    }

    pub(super) fn has(&self, name: Name) -> bool {
        self.seen & (1 << (name as u32)) != 0
    }

    pub(super) fn has_drm(&self) -> bool {
        self.has(Name::Drm)
    }

    /// Directory entries recognised (of any name).
    pub(super) fn entries(&self) -> u32 {
        self.entries
    }
}

/// Cheap filter for the first half of a directory entry: a UTF-16LE name starts there.
pub(super) fn may_be_name(unit: &[u8; 64]) -> bool {
    unit[0] != 0 && unit[1] == 0 && unit[3] == 0
}
