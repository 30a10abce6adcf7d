//! Just enough BER to read a ContentInfo header: tag-length headers and OIDs.

/// The content type OID of a ContentInfo.
pub(super) fn der_oid_after(der: &[u8]) -> Result<Option<&[u8]>, ()> {
    let Some(outer) = tlv(der, 0)? else {
        return Ok(None);
    };
    if outer.tag != 0x30 {
        return Err(());
    }
    read_oid(der, outer.start)
}

pub(super) fn read_oid(der: &[u8], at: usize) -> Result<Option<&[u8]>, ()> {
    let Some(oid) = tlv(der, at)? else {
        return Ok(None);
    };
    if oid.tag != 0x06 {
        return Err(());
    }
    Ok(der.get(oid.start..oid.start + oid.len.ok_or(())?))
}

/// The encapsulated content type of a signedData: ContentInfo → [0] → SignedData → version,
/// digestAlgorithms → EncapsulatedContentInfo → OID.
pub(super) fn signed_content_type(der: &[u8]) -> Result<Option<&[u8]>, ()> {
    let Some(outer) = tlv(der, 0)? else {
        return Ok(None);
    };
    let Some(oid) = tlv(der, outer.start)? else {
        return Ok(None);
    };
    let explicit = oid.start + oid.len.ok_or(())?;
    let Some(wrapper) = tlv(der, explicit)? else {
        return Ok(None);
    };
    let Some(signed) = tlv(der, wrapper.start)? else {
        return Ok(None);
    };
    let Some(version) = tlv(der, signed.start)? else {
        return Ok(None);
    };
    let digests_at = version.start + version.len.ok_or(())?;
    let Some(digests) = tlv(der, digests_at)? else {
        return Ok(None);
    };
    let encap_at = digests.start + digests.len.ok_or(())?;
    let Some(encap) = tlv(der, encap_at)? else {
        return Ok(None);
    };
    read_oid(der, encap.start)
}

/// A BER tag-length header: tag byte, where the content starts, its length (`None` =
/// indefinite).
pub(super) struct Tlv {
    pub(super) tag: u8,
    pub(super) start: usize,
    pub(super) len: Option<usize>,
}

/// Reads the tag-length header at `at`. `Ok(None)` = need more bytes.
pub(super) fn tlv(der: &[u8], at: usize) -> Result<Option<Tlv>, ()> {
    let (Some(&tag), Some(&first)) = (der.get(at), der.get(at + 1)) else {
        return Ok(None);
    };
    if tag & 0x1F == 0x1F {
        return Err(()); // multi-byte tags never occur in ContentInfo headers
    }
    let start = at + 2;
    match first {
        0x00..=0x7F => Ok(Some(Tlv {
            tag,
            start,
            len: Some(usize::from(first)),
        })),
        0x80 => Ok(Some(Tlv {
            tag,
            start,
            len: None,
        })),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7F);
            let Some(bytes) = der.get(start..start + n) else {
                return Ok(None);
            };
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            Ok(Some(Tlv {
                tag,
                start: start + n,
                len: Some(len),
            }))
        }
        _ => Err(()),
    }
}
