//! The verdict for an encrypted PDF: which security handler, and does it open without a
//! password?
//!
//! A PDF with only an owner password (permissions: no printing, no copying) is encrypted on disk
//! but every reader opens it silently with the empty user password, so for the policy it is not
//! encrypted. The check is the one a reader makes: derive the key from the empty password and
//! compare with `/U` (ISO 32000-1 algorithms 2, 4 and 5 for revisions 2–4; ISO 32000-2
//! algorithm 2.A/2.B for revisions 5 and 6).

use aes::Aes128;
use aes::cipher::{BlockModeEncrypt, KeyInit, KeyIvInit, StreamCipher};
use md5::{Digest, Md5};
use rc4::Rc4;
use sha2::{Sha256, Sha384, Sha512};

use super::obj::Obj;
use crate::inspect::report::{Encryption, EncryptionKind};

/// Padding string of the standard security handler (algorithm 2, step a).
const PAD: [u8; 32] = [
    0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4E, 0x56, 0xFF, 0xFA, 0x01, 0x08,
    0x2E, 0x2E, 0x00, 0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A,
];

pub(super) const OWNER_ONLY: &str = "owner password only (permissions), opens without a password";
pub(super) const ATTACHMENTS_ONLY: &str =
    "only embedded files are encrypted (document opens without a password)";

/// Decides an encryption dictionary. `id0` is the first element of the trailer's `/ID`.
pub(super) fn assess(dict: &Obj, id0: &[u8]) -> Encryption {
    match dict.get(b"Filter").and_then(Obj::name) {
        Some(b"Adobe.PubSec") => {
            return Encryption::encrypted(
                EncryptionKind::PdfPublicKey,
                "public-key security handler (certificate recipients)",
            );
        }
        Some(b"Standard") => {}
        _ => return Encryption::unknown("unsupported PDF security handler"),
    }
    let Some(kind) = standard_kind(dict) else {
        return Encryption::unknown("unsupported PDF standard security revision");
    };
    let revision = dict.get(b"R").and_then(Obj::int).unwrap_or(0);
    let opens = match revision {
        2..=4 => empty_password_opens_rc4_md5(dict, id0, revision),
        5 | 6 => empty_password_opens_sha(dict, revision),
        _ => None,
    };
    match opens {
        Some(true) => Encryption::not_encrypted(OWNER_ONLY),
        _ if attachments_only(dict) => Encryption::not_encrypted(ATTACHMENTS_ONLY),
        Some(false) => Encryption::encrypted(kind, "user password required"),
        None => Encryption::unknown("PDF encryption dictionary incomplete"),
    }
}

/// The scheme, from `/V`, `/R` and the crypt filter's `/CFM`.
fn standard_kind(dict: &Obj) -> Option<EncryptionKind> {
    let v = dict.get(b"V").and_then(Obj::int).unwrap_or(0);
    match v {
        1 | 2 => Some(EncryptionKind::PdfRc4),
        4 => {
            let cfm = stream_filter(dict)
                .and_then(|f| f.get(b"CFM"))
                .and_then(Obj::name);
            Some(match cfm {
                Some(b"AESV2") => EncryptionKind::PdfAes128,
                Some(b"AESV3") => EncryptionKind::PdfAes256,
                _ => EncryptionKind::PdfRc4,
            })
        }
        5 => Some(EncryptionKind::PdfAes256),
        _ => None,
    }
}

/// The crypt filter dictionary that `/StmF` names.
fn stream_filter(dict: &Obj) -> Option<&Obj> {
    let name = dict.get(b"StmF").and_then(Obj::name)?;
    dict.get(b"CF")?.get(name)
}

/// `/EFF` set while strings and streams use the Identity filter: only attachments need a key.
fn attachments_only(dict: &Obj) -> bool {
    let identity = |key: &[u8]| {
        dict.get(key)
            .and_then(Obj::name)
            .is_none_or(|n| n == b"Identity")
    };
    dict.get(b"EFF").is_some() && identity(b"StmF") && identity(b"StrF")
}

/// Revisions 2–4: algorithm 2 (key from the empty password), then 4 or 5 (compare with /U).
fn empty_password_opens_rc4_md5(dict: &Obj, id0: &[u8], revision: i64) -> Option<bool> {
    let owner = dict.get(b"O").and_then(Obj::bytes)?.get(..32)?;
    let user = dict.get(b"U").and_then(Obj::bytes)?;
    let permissions = dict.get(b"P").and_then(Obj::int)?;
    let key_len = if revision == 2 {
        5
    } else {
        let bits = dict.get(b"Length").and_then(Obj::int).unwrap_or(40);
        usize::try_from(bits / 8)
            .ok()
            .filter(|n| (5..=16).contains(n))?
    };
    let mut md5 = Md5::new();
    md5.update(PAD);
    md5.update(owner);
    // /P is a signed 32-bit value; its low four bytes, little-endian.
    md5.update((permissions as u32).to_le_bytes());
    md5.update(id0);
    let encrypt_metadata = !matches!(dict.get(b"EncryptMetadata"), Some(Obj::Bool(false)));
    if revision >= 4 && !encrypt_metadata {
        md5.update([0xFF; 4]);
    }
    let mut key: [u8; 16] = md5.finalize().into();
    if revision >= 3 {
        for _ in 0..50 {
            key = Md5::digest(key.get(..key_len)?).into();
        }
    }
    let key = key.get(..key_len)?;
    if revision == 2 {
        let mut check = PAD;
        Rc4::new_from_slice(key).ok()?.apply_keystream(&mut check);
        return Some(user.get(..32) == Some(&check[..]));
    }
    let mut md5 = Md5::new();
    md5.update(PAD);
    md5.update(id0);
    let mut check: [u8; 16] = md5.finalize().into();
    for i in 0..20u8 {
        let round_key: Vec<u8> = key.iter().map(|b| b ^ i).collect();
        Rc4::new_from_slice(&round_key)
            .ok()?
            .apply_keystream(&mut check);
    }
    Some(user.get(..16) == Some(&check[..]))
}

/// Revisions 5 and 6: the hash of the empty password with U's validation salt equals U[0..32].
fn empty_password_opens_sha(dict: &Obj, revision: i64) -> Option<bool> {
    let user = dict.get(b"U").and_then(Obj::bytes)?;
    let expected = user.get(..32)?;
    let salt = user.get(32..40)?;
    let hash = if revision == 5 {
        Sha256::digest(salt).to_vec()
    } else {
        hash_2b(b"", salt, &[])
    };
    Some(hash.get(..32) == Some(expected))
}

/// ISO 32000-2 algorithm 2.B: SHA-256/384/512 iterated with AES-128-CBC rounds.
fn hash_2b(password: &[u8], salt: &[u8], udata: &[u8]) -> Vec<u8> {
    let mut k: Vec<u8> = Sha256::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(udata)
        .finalize()
        .to_vec();
    let mut round: u32 = 0;
    loop {
        let mut k1 = Vec::with_capacity(64 * (password.len() + k.len() + udata.len()));
        for _ in 0..64 {
            k1.extend_from_slice(password);
            k1.extend_from_slice(&k);
            k1.extend_from_slice(udata);
        }
        let (Some(key), Some(iv)) = (k.get(..16), k.get(16..32)) else {
            return k;
        };
        let Ok(mut cbc) = cbc::Encryptor::<Aes128>::new_from_slices(key, iv) else {
            return k;
        };
        for block in k1.chunks_exact_mut(16) {
            if let Ok(block) = <&mut aes::Block>::try_from(block) {
                cbc.encrypt_block(block);
            }
        }
        // The first 16 bytes as a 128-bit big-endian number, mod 3: 256 ≡ 1 (mod 3), so the
        // byte sum mod 3 is the same.
        let selector: u32 = k1.iter().take(16).map(|&b| u32::from(b)).sum::<u32>() % 3;
        k = match selector {
            0 => Sha256::digest(&k1).to_vec(),
            1 => Sha384::digest(&k1).to_vec(),
            _ => Sha512::digest(&k1).to_vec(),
        };
        round += 1;
        let last = u32::from(k1.last().copied().unwrap_or(0));
        if round >= 64 && last <= round - 32 {
            break;
        }
    }
    k.truncate(32);
    k
}
