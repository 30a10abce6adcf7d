//! File type from magic bytes, never from names or declared media types.

use crate::inspect::report::FileType;

/// Bytes of a file's start that the sniffer may look at.
pub const SNIFF_WINDOW: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// Decided.
    Type(FileType),
    /// Not decidable from this prefix yet.
    NeedMore,
}

/// Decides a type from `prefix`. With `complete`, the prefix is all there is (or all the
/// sniffer will get) and the answer is final.
pub fn sniff(prefix: &[u8], complete: bool) -> Sniff {
    const MAGIC: &[(&[u8], FileType)] = &[
        (b"PK\x03\x04", FileType::Zip),
        (b"PK\x05\x06", FileType::Zip),
        (b"7z\xBC\xAF\x27\x1C", FileType::SevenZip),
        (b"Rar!\x1A\x07", FileType::Rar),
        (b"%PDF-", FileType::Pdf),
        (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", FileType::Cfb),
        (b"\x1F\x8B", FileType::Gzip),
        (b"BZh", FileType::Bzip2),
        (b"\xFD7zXZ\x00", FileType::Xz),
        (b"\x28\xB5\x2F\xFD", FileType::Zstd),
        (b"age-encryption.org/v1\n", FileType::Age),
        (b"-----BEGIN AGE ENCRYPTED FILE-----", FileType::Age),
        (b"-----BEGIN PGP ", FileType::OpenpgpArmored),
        (b"Salted__", FileType::OpensslSalted),
        (b"U2FsdGVkX1", FileType::OpensslSalted),
        (b"-----BEGIN PKCS7-----", FileType::Cms),
        (b"-----BEGIN CMS-----", FileType::Cms),
        (b"\xFF\xD8\xFF", FileType::Jpeg),
        (b"\x89PNG\r\n\x1A\n", FileType::Png),
        (b"GIF87a", FileType::Gif),
        (b"GIF89a", FileType::Gif),
        (b"{\\rtf", FileType::Rtf),
        (b"\x7FELF", FileType::Elf),
        (b"\xCA\xFE\xBA\xBE", FileType::JavaClass),
        (b"\xFE\xED\xFA\xCE", FileType::MachO),
        (b"\xFE\xED\xFA\xCF", FileType::MachO),
        (b"\xCE\xFA\xED\xFE", FileType::MachO),
        (b"\xCF\xFA\xED\xFE", FileType::MachO),
        (b"ID3", FileType::Mp3),
        (b"#!", FileType::Script),
    ];
    for (magic, file_type) in MAGIC {
        if prefix.starts_with(magic) {
            return Sniff::Type(*file_type);
        }
        if !complete && magic.starts_with(prefix) {
            return Sniff::NeedMore;
        }
    }
    // tar has no magic at the start: ustar puts it at 257, so it needs most of a block.
    if prefix.get(257..262) == Some(b"ustar") {
        return Sniff::Type(FileType::Tar);
    }
    if prefix.len() >= 12 && &prefix[4..8] == b"ftyp" {
        return Sniff::Type(FileType::Mp4);
    }
    if prefix.len() >= 12 && prefix.starts_with(b"RIFF") && &prefix[8..12] == b"WEBP" {
        return Sniff::Type(FileType::Webp);
    }
    if prefix.starts_with(b"MZ") {
        return Sniff::Type(FileType::Exe);
    }
    if !complete && prefix.len() < 512 {
        return Sniff::NeedMore;
    }
    // Crypto containers without magic: checked on a full window, each by its own structure,
    // before the text rule (an S/MIME entity is text too).
    if super::pgp::sniff_binary(prefix) {
        return Sniff::Type(FileType::Openpgp);
    }
    if super::cms::sniff_der(prefix) || super::cms::sniff_mime(prefix) {
        return Sniff::Type(FileType::Cms);
    }
    if let Some(text) = super::text::sniff_text(prefix) {
        return Sniff::Type(text);
    }
    Sniff::Type(FileType::Unknown)
}
