//! Recognising binary OpenPGP, which has no magic number.
//!
//! One set high bit and a tag would match 1 in 20 random files, so each accepted start also has
//! to show a plausible version and algorithm bytes in its body: about 1 in a million random
//! prefixes pass a single check. Compressed packets (what `gpg -s` writes) are inflated a little
//! and must hold a signature or literal packet. Starts that cannot be checked that way (the
//! obsolete SED packet, version-1 SEIPD, a bare literal packet) are not sniffed: such files stay
//! `unknown`, never mistaken for something else.

use flate2::{Decompress, FlushDecompress, Status};

use super::packet_header;

/// Public-key algorithm ids (RSA, Elgamal, DSA, ECDH, ECDSA, EdDSA, X25519/X448, Ed25519/Ed448).
const PK_ALGOS: &[u8] = &[1, 2, 3, 16, 17, 18, 19, 22, 25, 26, 27, 28];
/// Hash algorithm ids (MD5, SHA-1, RIPEMD-160, SHA-2, SHA-3).
const HASH_ALGOS: &[u8] = &[1, 2, 3, 8, 9, 10, 11, 12, 14];

/// True when `prefix` starts like a binary OpenPGP message, key or signature.
pub(in crate::inspect::file) fn sniff_binary(prefix: &[u8]) -> bool {
    let Ok(Some(header)) = packet_header(prefix) else {
        return false;
    };
    let Some(body) = prefix.get(header.header_len..) else {
        return false;
    };
    let len_ok = |min: usize| header.body_len.is_none_or(|len| len >= min);
    match header.tag {
        1 => len_ok(10) && pkesk(body),
        3 => len_ok(4) && skesk(body),
        18 => len_ok(4) && body.first() == Some(&2) && aead_params(body.get(1..)),
        20 => len_ok(4) && body.first() == Some(&1) && aead_params(body.get(1..)),
        8 => len_ok(2) && compressed(body),
        4 => len_ok(13) && one_pass(body),
        2 => len_ok(10) && signature(body),
        5 | 6 | 7 | 14 => len_ok(10) && key(body),
        10 => {
            header.body_len == Some(3) && body.starts_with(b"PGP") && {
                body.get(3..).is_some_and(sniff_binary)
            }
        }
        _ => false,
    }
}

fn sym_algo(b: u8) -> bool {
    (1..=13).contains(&b)
}

fn pkesk(body: &[u8]) -> bool {
    match (body.first(), body.get(9)) {
        // v3: version, key id, algorithm, then the encrypted session key as MPIs (RSA,
        // Elgamal, ECDH) or a fixed-size point (X25519, X448).
        (Some(3), Some(1 | 2 | 16 | 18)) => body.get(10..).is_some_and(mpi),
        (Some(3), Some(25 | 26)) => true,
        (Some(6), _) => matches!(body.get(1), Some(0 | 21 | 33)),
        _ => false,
    }
}

/// A multiprecision integer: a bit count, then a first byte whose top set bit agrees with it.
fn mpi(data: &[u8]) -> bool {
    let [hi, lo, first, ..] = *data else {
        return false;
    };
    let bits = u16::from_be_bytes([hi, lo]);
    (160..=16384).contains(&bits) && first >> ((bits - 1) % 8) == 1
}

fn skesk(body: &[u8]) -> bool {
    match body {
        [4, sym, 4, ..] => sym_algo(*sym),
        [4, sym, 0 | 1 | 3, hash, ..] => sym_algo(*sym) && HASH_ALGOS.contains(hash),
        [5 | 6, _count, sym, aead, ..] => sym_algo(*sym) && (1..=3).contains(aead),
        _ => false,
    }
}

/// Symmetric algorithm, AEAD mode and chunk-size octets of SEIPDv2 and AEAD packets.
fn aead_params(body: Option<&[u8]>) -> bool {
    matches!(body, Some([sym, aead, chunk, ..])
        if sym_algo(*sym) && (1..=3).contains(aead) && *chunk <= 16)
}

fn one_pass(body: &[u8]) -> bool {
    match body {
        [3, 0 | 1, hash, pk, ..] => HASH_ALGOS.contains(hash) && PK_ALGOS.contains(pk),
        [6, 0 | 1, hash, pk, ..] => HASH_ALGOS.contains(hash) && PK_ALGOS.contains(pk),
        _ => false,
    }
}

fn signature(body: &[u8]) -> bool {
    const SIG_TYPES: &[u8] = &[
        0x00, 0x01, 0x02, 0x10, 0x11, 0x12, 0x13, 0x18, 0x19, 0x1F, 0x20, 0x28, 0x30, 0x40, 0x50,
    ];
    match body {
        [4 | 6, kind, pk, hash, ..] => {
            SIG_TYPES.contains(kind) && PK_ALGOS.contains(pk) && HASH_ALGOS.contains(hash)
        }
        _ => false,
    }
}

/// Key packets: version, creation time, algorithm, then the public key material.
fn key(body: &[u8]) -> bool {
    match (body.first(), body.get(5)) {
        (Some(4), Some(1 | 2 | 3 | 16 | 17)) => body.get(6..).is_some_and(mpi),
        // ECC keys start with the curve OID (length, then 1.3.x or 1.2.x).
        (Some(4), Some(18 | 19 | 22)) => {
            matches!(body.get(6..8), Some([5 | 8 | 9 | 10, 0x2A | 0x2B]))
        }
        // v5/v6 give the key material length in four octets: it is far below 2^16.
        (Some(5 | 6), Some(a)) if PK_ALGOS.contains(a) => matches!(body.get(6..8), Some([0, 0])),
        _ => false,
    }
}

/// A compressed packet must decompress to the start of a signed or literal message.
fn compressed(body: &[u8]) -> bool {
    let Some((&algo, data)) = body.split_first() else {
        return false;
    };
    let mut inner = [0u8; 8];
    let n = match algo {
        1 => inflate_prefix(data, false, &mut inner),
        2 => inflate_prefix(data, true, &mut inner),
        3 => return data.starts_with(b"BZh"),
        _ => return false,
    };
    let Some(inner) = inner.get(..n) else {
        return false;
    };
    let Ok(Some(header)) = packet_header(inner) else {
        return false;
    };
    let inner_body = inner.get(header.header_len..).unwrap_or_default();
    match header.tag {
        4 => one_pass(inner_body),
        2 => signature(inner_body),
        11 => matches!(
            inner_body.first(),
            Some(b'b' | b't' | b'u' | b'l' | b'1' | b'm')
        ),
        _ => false,
    }
}

/// Inflates the start of `data` into `out`; returns the bytes produced (0 on any error).
fn inflate_prefix(data: &[u8], zlib: bool, out: &mut [u8]) -> usize {
    let mut inflater = Decompress::new(zlib);
    match inflater.decompress(data, out, FlushDecompress::None) {
        Ok(Status::Ok | Status::StreamEnd | Status::BufError) => {
            usize::try_from(inflater.total_out()).unwrap_or(0)
        }
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed-seed generator: the test must give the same answer on every run.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn random_bytes_are_not_openpgp() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut buf = [0u8; 64];
        let mut hits = 0;
        for _ in 0..400_000 {
            for chunk in buf.chunks_mut(8) {
                chunk.copy_from_slice(&xorshift(&mut state).to_le_bytes());
            }
            if sniff_binary(&buf) {
                hits += 1;
            }
        }
        assert_eq!(hits, 0, "random prefixes sniffed as OpenPGP");
    }

    #[test]
    fn random_bytes_after_a_valid_first_octet_are_rejected() {
        // The worst case: the first octet is a real tag, only the body is random.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut buf = [0u8; 64];
        let mut hits = 0;
        for first in [
            0x84u8, 0x85, 0x8C, 0xC1, 0xC3, 0xD2, 0xD4, 0x90, 0xA3, 0xC8, 0x99, 0x95,
        ] {
            for _ in 0..20_000 {
                for chunk in buf.chunks_mut(8) {
                    chunk.copy_from_slice(&xorshift(&mut state).to_le_bytes());
                }
                buf[0] = first;
                hits += usize::from(sniff_binary(&buf));
            }
        }
        // Each check passes roughly 1 in 1,000 to 10,000 random bodies; 240,000 tries.
        assert!(hits < 240, "{hits} random bodies accepted");
    }

    #[test]
    fn real_starts_are_recognised() {
        // gpg -c: SKESK v4, AES-256, iterated+salted S2K, SHA-256.
        assert!(sniff_binary(&[
            0x8C, 0x0D, 0x04, 0x09, 0x03, 0x08, 1, 2, 3, 4, 5, 6, 7, 8
        ]));
        // gpg -e: PKESK v3 (key id, then RSA and a 2048-bit MPI).
        let pkesk = [
            0x85, 0x01, 0x0C, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 0x01, 0x08, 0x00, 0x9F,
        ];
        assert!(sniff_binary(&pkesk));
        let mut bad_mpi = pkesk;
        bad_mpi[15] = 0x1F;
        assert!(!sniff_binary(&bad_mpi));
        assert!(!sniff_binary(b"\x8C\x0D\x07\x09\x03\x08"));
    }
}
