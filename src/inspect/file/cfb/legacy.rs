//! Legacy binary Office encryption: Word's FIB flags, Excel's FILEPASS record, PowerPoint's
//! `Current User` token, and Excel's default password.
//!
//! A workbook "protected" against changes (structure protection, or write protection in some
//! versions) is saved encrypted with the fixed password `VelvetSweatshop`, which every reader
//! tries silently: such a file is readable by anyone. The check derives the key from that
//! password and verifies it against the FILEPASS verifier (MS-OFFCRYPTO 2.3.6 for RC4, 2.3.5 for
//! RC4 CryptoAPI, and the XOR method-1 verifier).

use md5::{Digest, Md5};
use rc4::{KeyInit, Rc4, StreamCipher};
use sha1::Sha1;

use crate::inspect::report::{Encryption, EncryptionKind};

const DEFAULT_PASSWORD: &str = "VelvetSweatshop";
pub(super) const DEFAULT_PASSWORD_REASON: &str =
    "default password VelvetSweatshop (readable by anyone)";
/// CLSID of Windows Installer packages, as stored (little-endian fields).
const MSI_CLSID: [u8; 16] = [
    0x84, 0x10, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];
const FILEPASS: u16 = 0x002F;

/// The flags of a Word FibBase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fib {
    flags: u16,
}

/// An Excel FILEPASS record's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FilePass<'a> {
    data: &'a [u8],
}

// === impl Fib ===

impl Fib {
    /// A FibBase at the start of a sector: wIdent 0xA5EC and a Word 6–2016 nFib.
    pub(super) fn read(unit: &[u8]) -> Option<Fib> {
        let [0xEC, 0xA5, n_lo, n_hi, ..] = *unit else {
            return None;
        };
        let n_fib = u16::from_le_bytes([n_lo, n_hi]);
        if !(0x0065..=0x0200).contains(&n_fib) {
            return None;
        }
        let flags = unit.get(0x0A..0x0C)?;
        Some(Fib {
            flags: u16::from_le_bytes([*flags.first()?, *flags.get(1)?]),
        })
    }
}

pub(super) fn doc_verdict(fib: Option<Fib>, encrypted_summary: bool) -> Encryption {
    const ENCRYPTED: u16 = 0x0100;
    const OBFUSCATED: u16 = 0x8000;
    match fib {
        Some(Fib { flags }) if flags & ENCRYPTED != 0 && flags & OBFUSCATED != 0 => {
            Encryption::encrypted(
                EncryptionKind::LegacyOfficeXor,
                "Word document XOR-obfuscated",
            )
        }
        Some(Fib { flags }) if flags & ENCRYPTED != 0 => Encryption::encrypted(
            EncryptionKind::LegacyOfficeRc4,
            "Word document encrypted (RC4)",
        ),
        Some(_) if encrypted_summary => {
            Encryption::unknown("encrypted summary but FIB not encrypted")
        }
        Some(_) => Encryption::not_encrypted("Word document without encryption flag"),
        None => Encryption::unknown("Word FIB not located"),
    }
}

/// The headerToken of a CurrentUserAtom at the start of a (mini) sector.
pub(super) fn current_user_token(unit: &[u8]) -> Option<u32> {
    let [
        0,
        0,
        0xF6,
        0x0F,
        l0,
        l1,
        l2,
        l3,
        s0,
        s1,
        s2,
        s3,
        t0,
        t1,
        t2,
        t3,
        ..,
    ] = *unit
    else {
        return None;
    };
    let rec_len = u32::from_le_bytes([l0, l1, l2, l3]);
    let size = u32::from_le_bytes([s0, s1, s2, s3]);
    ((0x14..=0x1000).contains(&rec_len) && size == 0x14)
        .then(|| u32::from_le_bytes([t0, t1, t2, t3]))
}

pub(super) fn ppt_verdict(token: Option<u32>, encrypted_summary: bool) -> Encryption {
    const ENCRYPTED: u32 = 0xF3D1_C4DF;
    const PLAIN: u32 = 0xE391_C05F;
    match token {
        Some(ENCRYPTED) => Encryption::encrypted(
            EncryptionKind::LegacyOfficeRc4,
            "PowerPoint presentation encrypted",
        ),
        _ if encrypted_summary => Encryption::encrypted(
            EncryptionKind::LegacyOfficeRc4,
            "PowerPoint presentation encrypted (encrypted summary)",
        ),
        Some(PLAIN) => Encryption::not_encrypted("PowerPoint presentation without encryption"),
        _ => Encryption::unknown("PowerPoint current-user record not located"),
    }
}

pub(super) fn is_msi_clsid(clsid: &[u8]) -> bool {
    clsid == MSI_CLSID
}

// === impl FilePass ===

impl<'a> FilePass<'a> {
    /// Walks the records after BOF (at the start of `stream`) to a FILEPASS record, which comes
    /// before any content record.
    pub(super) fn find(stream: &'a [u8]) -> Option<FilePass<'a>> {
        let mut at = 0usize;
        for _ in 0..16 {
            let header = stream.get(at..at + 4)?;
            let kind = u16::from_le_bytes([*header.first()?, *header.get(1)?]);
            let len = usize::from(u16::from_le_bytes([*header.get(2)?, *header.get(3)?]));
            if kind == FILEPASS {
                // Truncated capture: keep what there is, the verifier check needs it all.
                let end = (at + 4 + len).min(stream.len());
                return Some(FilePass {
                    data: stream.get(at + 4..end)?,
                });
            }
            at += 4 + len;
        }
        None
    }

    pub(super) fn verdict(&self) -> Encryption {
        let readable = match self.data {
            [0, 0, key @ ..] => xor_opens(key),
            [1, 0, 1, 0, 1, 0, rest @ ..] => rc4_binary_opens(rest),
            [1, 0, 2..=4, 0, 2, 0, rest @ ..] => rc4_cryptoapi_opens(rest),
            _ => None,
        };
        let kind = if self.data.first() == Some(&0) {
            EncryptionKind::LegacyOfficeXor
        } else {
            EncryptionKind::LegacyOfficeRc4
        };
        match readable {
            Some(true) => Encryption::not_encrypted(DEFAULT_PASSWORD_REASON),
            Some(false) => Encryption::encrypted(kind, "workbook encrypted with a password"),
            None => Encryption::encrypted(kind, "workbook encrypted (FILEPASS record)"),
        }
    }
}

/// XOR obfuscation: the verifier is the method-1 hash of the password.
fn xor_opens(data: &[u8]) -> Option<bool> {
    let [_k0, _k1, v0, v1, ..] = *data else {
        return None;
    };
    let mut verifier: u16 = 0;
    let bytes = DEFAULT_PASSWORD.as_bytes();
    for &b in bytes
        .iter()
        .rev()
        .chain(std::iter::once(&(bytes.len() as u8)))
    {
        let carry = u16::from(verifier & 0x4000 != 0);
        verifier = (((verifier << 1) & 0x7FFF) | carry) ^ u16::from(b);
    }
    Some(verifier ^ 0xCE4B == u16::from_le_bytes([v0, v1]))
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// RC4 (MS-OFFCRYPTO 2.3.6): salt, encrypted verifier and its encrypted MD5.
fn rc4_binary_opens(data: &[u8]) -> Option<bool> {
    let salt = data.get(..16)?;
    let mut check = [0u8; 32];
    check.copy_from_slice(data.get(16..48)?);
    let h0 = Md5::digest(utf16le(DEFAULT_PASSWORD));
    let mut md5 = Md5::new();
    for _ in 0..16 {
        md5.update(h0.get(..5)?);
        md5.update(salt);
    }
    let h1 = md5.finalize();
    let key = Md5::new()
        .chain_update(h1.get(..5)?)
        .chain_update(0u32.to_le_bytes())
        .finalize();
    Rc4::new_from_slice(&key).ok()?.apply_keystream(&mut check);
    let (verifier, hash) = check.split_at(16);
    Some(Md5::digest(verifier).as_slice() == hash)
}

/// RC4 CryptoAPI (MS-OFFCRYPTO 2.3.5): EncryptionHeader, then an EncryptionVerifier with SHA-1.
fn rc4_cryptoapi_opens(data: &[u8]) -> Option<bool> {
    let u32_at = |at: usize| -> Option<u32> {
        let b = data.get(at..at + 4)?;
        Some(u32::from_le_bytes([
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ]))
    };
    // Flags (4), header size (4), header (KeySize at +16 of it), then the verifier.
    let header_size = usize::try_from(u32_at(4)?).ok()?;
    let key_bits = match u32_at(8 + 16)? {
        0 => 40,
        bits => bits,
    };
    let verifier_at = 8 + header_size;
    let salt_size = usize::try_from(u32_at(verifier_at)?).ok()?;
    let salt = data.get(verifier_at + 4..verifier_at + 4 + salt_size)?;
    let encrypted_at = verifier_at + 4 + salt_size;
    let mut check = [0u8; 36];
    check[..16].copy_from_slice(data.get(encrypted_at..encrypted_at + 16)?);
    check[16..].copy_from_slice(data.get(encrypted_at + 20..encrypted_at + 40)?);
    let h0 = Sha1::new()
        .chain_update(salt)
        .chain_update(utf16le(DEFAULT_PASSWORD))
        .finalize();
    let hfinal = Sha1::new()
        .chain_update(h0)
        .chain_update(0u32.to_le_bytes())
        .finalize();
    let mut key = [0u8; 16];
    if key_bits == 40 {
        // 40-bit keys are padded with zeros to 128 bits.
        key[..5].copy_from_slice(hfinal.get(..5)?);
    } else {
        let n = usize::try_from(key_bits / 8)
            .ok()
            .filter(|n| (5..=16).contains(n))?;
        key[..n].copy_from_slice(hfinal.get(..n)?);
    }
    let key_len = if key_bits == 40 {
        16
    } else {
        usize::try_from(key_bits / 8).ok()?
    };
    Rc4::new_from_slice(key.get(..key_len)?)
        .ok()?
        .apply_keystream(&mut check);
    let (verifier, hash) = check.split_at(16);
    Some(Sha1::digest(verifier).as_slice() == hash)
}
