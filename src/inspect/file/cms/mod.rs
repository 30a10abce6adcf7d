//! CMS / PKCS #7 and S/MIME: DER, PEM, or a MIME entity with a base64 body.
//!
//! A CMS file is a `ContentInfo`: a SEQUENCE whose first element is the content type OID. That
//! OID is the proof: envelopedData, authEnvelopedData and encryptedData need a key; signedData
//! is readable by anyone (unless what it signs is itself enveloped, which is checked too), and
//! its content goes to the sink.

mod der;
mod signed;

use der::{Tlv, der_oid_after, read_oid, signed_content_type, tlv};

use signed::SignedText;

use crate::inspect::file::armor::{self, Base64Stream};
use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, EncryptionKind, FileType, Verdict};

/// pkcs7 arc 1.2.840.113549.1.7, the prefix of most content types.
const PKCS7: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07];
const OID_AUTH_ENVELOPED: &[u8] = &[
    0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x17,
];
const OID_COMPRESSED: &[u8] = &[
    0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x09,
];

/// DER bytes the decision may need: the ContentInfo header, and for signedData its version,
/// digest algorithms and the encapsulated content type.
const DER_HEAD: usize = 512;
/// PEM text: the BEGIN line and base64 for `DER_HEAD` bytes.
const PEM_HEAD: usize = 1024;
/// A MIME entity: its header block (bounded) and the first lines of the body.
const MIME_HEAD: usize = 8192;

/// Scans a CMS file in any of its three forms.
pub(super) struct CmsScanner {
    head: Vec<u8>,
    verdict: Option<Encryption>,
    /// The content of a signedData, streamed to the sink.
    signed: Option<Box<SignedStream>>,
}

struct SignedStream {
    text: SignedText,
    /// PEM and MIME forms: the base64 decoder and its output buffer.
    base64: Option<(Base64Stream, Vec<u8>)>,
}

#[derive(Clone, Copy)]
enum Form {
    Der,
    Pem,
    Mime,
}

// === impl CmsScanner ===

impl CmsScanner {
    pub(super) fn new() -> Self {
        Self {
            head: Vec::new(),
            verdict: None,
            signed: None,
        }
    }

    fn form(&self) -> Form {
        match self.head.first() {
            Some(0x30) => Form::Der,
            Some(b'-') => Form::Pem,
            _ => Form::Mime,
        }
    }

    fn cap(&self) -> usize {
        match self.form() {
            Form::Der => DER_HEAD,
            Form::Pem => PEM_HEAD,
            Form::Mime => MIME_HEAD,
        }
    }

    /// The verdict once the head shows it, and where signed content starts.
    fn decide(&self, complete: bool) -> Option<(Encryption, Option<signed::ContentStart>)> {
        let mut der = [0u8; DER_HEAD];
        let (bytes, complete) = match self.body() {
            Body::Der(bytes) => (bytes, complete),
            Body::Base64(text) => {
                let n = armor::decode_prefix(text, &mut der);
                (der.get(..n).unwrap_or_default(), complete || n == DER_HEAD)
            }
            Body::Incomplete => {
                return complete.then(|| (Encryption::unknown("S/MIME header incomplete"), None));
            }
            Body::NotSmime => {
                return Some((Encryption::unknown("MIME entity is not S/MIME"), None));
            }
        };
        let verdict = decide_der(bytes, complete)?;
        if verdict.verdict != Verdict::NotEncrypted {
            return Some((verdict, None));
        }
        match signed::content_start(bytes) {
            signed::Found::At(start) => Some((verdict, Some(start))),
            signed::Found::NeedMore if !complete => None,
            signed::Found::NeedMore | signed::Found::Absent => Some((verdict, None)),
        }
    }

    /// Where the DER bytes are in the head, by form.
    fn body(&self) -> Body<'_> {
        match self.form() {
            Form::Der => Body::Der(&self.head),
            Form::Pem => Body::Base64(armor::pem_body(&self.head).unwrap_or_default()),
            Form::Mime => match mime_body(&self.head) {
                None => Body::Incomplete,
                Some(MimeBody::Base64(text)) => Body::Base64(text),
                Some(MimeBody::Binary(bytes)) => Body::Der(bytes),
                Some(MimeBody::NotSmime) => Body::NotSmime,
            },
        }
    }

    fn decided(
        &mut self,
        verdict: Encryption,
        content: Option<signed::ContentStart>,
        later: &[u8],
        cx: &mut ScanCx<'_>,
    ) {
        self.verdict = Some(verdict);
        let Some(start) = content else {
            return;
        };
        let base64 = match self.body() {
            Body::Base64(_) => Some((Base64Stream::default(), Vec::new())),
            _ => None,
        };
        let mut stream = Box::new(SignedStream {
            text: SignedText::new(start),
            base64,
        });
        match self.body() {
            Body::Der(bytes) | Body::Base64(bytes) => stream.feed(bytes, cx),
            Body::Incomplete | Body::NotSmime => {}
        }
        stream.feed(later, cx);
        self.signed = Some(stream);
    }
}

enum Body<'a> {
    Der(&'a [u8]),
    Base64(&'a [u8]),
    Incomplete,
    NotSmime,
}

// === impl SignedStream ===

impl SignedStream {
    fn feed(&mut self, data: &[u8], cx: &mut ScanCx<'_>) {
        match &mut self.base64 {
            Some((decoder, decoded)) => {
                decoder.decode(data, decoded);
                self.text.feed(decoded, cx.sink);
            }
            None => self.text.feed(data, cx.sink),
        }
    }
}

impl FormatScanner for CmsScanner {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        if self.verdict.is_some() {
            if let Some(signed) = &mut self.signed {
                signed.feed(chunk, cx);
            }
            return;
        }
        let take = self.cap().saturating_sub(self.head.len()).min(chunk.len());
        let (now, later) = chunk.split_at(take);
        self.head.extend_from_slice(now);
        if let Some((verdict, content)) = self.decide(self.head.len() >= self.cap()) {
            self.decided(verdict, content, later, cx);
        }
    }

    fn settled(&self) -> bool {
        self.verdict.is_some() && self.signed.as_ref().is_none_or(|s| s.text.done())
    }

    fn finish(mut self: Box<Self>, cx: &mut ScanCx<'_>) -> FormatFacts {
        if self.verdict.is_none() {
            let (verdict, content) = self
                .decide(true)
                .unwrap_or_else(|| (Encryption::unknown("CMS data truncated"), None));
            self.decided(verdict, content, &[], cx);
        }
        if self.signed.is_some() {
            cx.sink.end_text();
        }
        let encryption = self
            .verdict
            .take()
            .unwrap_or_else(|| Encryption::unknown("CMS data truncated"));
        FormatFacts {
            file_type: FileType::Cms,
            encryption,
            members: Vec::new(),
            limits: Vec::new(),
        }
    }
}

/// True when `prefix` starts with a DER/BER ContentInfo of a known CMS content type: a
/// SEQUENCE header directly followed by one of the OIDs, which random data almost never is.
pub(super) fn sniff_der(prefix: &[u8]) -> bool {
    let Ok(Some(outer)) = tlv(prefix, 0) else {
        return false;
    };
    if outer.tag != 0x30 {
        return false;
    }
    matches!(tlv(prefix, outer.start), Ok(Some(oid)) if oid.tag == 0x06
        && prefix.get(oid.start..oid.start + oid.len.unwrap_or(0)).is_some_and(known_type))
}

/// True when `prefix` is a MIME header block whose own Content-Type is S/MIME.
pub(super) fn sniff_mime(prefix: &[u8]) -> bool {
    let first_line = prefix.split(|&b| b == b'\n').next().unwrap_or_default();
    let looks_like_header = first_line
        .iter()
        .position(|&b| b == b':')
        .is_some_and(|i| i > 0 && first_line.iter().take(i).all(|b| b.is_ascii_graphic()));
    looks_like_header
        && matches!(
            mime_body(prefix),
            Some(MimeBody::Base64(_) | MimeBody::Binary(_))
        )
}

fn known_type(oid: &[u8]) -> bool {
    matches!(oid.strip_prefix(PKCS7), Some([1..=6]))
        || oid == OID_AUTH_ENVELOPED
        || oid == OID_COMPRESSED
}

/// Names the content type of a DER ContentInfo.
fn decide_der(der: &[u8], complete: bool) -> Option<Encryption> {
    let oid = match der_oid_after(der) {
        Ok(Some(oid)) => oid,
        Ok(None) => return complete.then(|| Encryption::unknown("CMS data truncated")),
        Err(()) => return Some(Encryption::unknown("not a CMS ContentInfo")),
    };
    let kind = EncryptionKind::CmsEnveloped;
    match oid.strip_prefix(PKCS7) {
        Some([3]) => Some(Encryption::encrypted(kind, "CMS envelopedData")),
        Some([6]) => Some(Encryption::encrypted(kind, "CMS encryptedData")),
        Some([2]) => match signed_content_type(der) {
            Ok(Some(inner)) if inner.strip_prefix(PKCS7) == Some(&[3]) => Some(
                Encryption::encrypted(kind, "CMS signedData around envelopedData"),
            ),
            Ok(None) if !complete => None,
            _ => Some(Encryption::not_encrypted("signed, not encrypted")),
        },
        Some([1]) => Some(Encryption::not_encrypted("CMS data, not encrypted")),
        Some([5]) => Some(Encryption::not_encrypted("CMS digestedData, not encrypted")),
        _ if oid == OID_AUTH_ENVELOPED => {
            Some(Encryption::encrypted(kind, "CMS authEnvelopedData"))
        }
        _ if oid == OID_COMPRESSED => Some(Encryption::not_encrypted(
            "CMS compressedData, not encrypted",
        )),
        _ => Some(Encryption::unknown("unknown CMS content type")),
    }
}

enum MimeBody<'a> {
    Base64(&'a [u8]),
    Binary(&'a [u8]),
    NotSmime,
}

/// Reads a MIME header block; `None` until the blank line that ends it has arrived.
fn mime_body(entity: &[u8]) -> Option<MimeBody<'_>> {
    let mut smime = false;
    let mut base64 = false;
    let mut rest = entity;
    loop {
        let end = memchr::memchr(b'\n', rest)?;
        let line = rest.get(..end).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        rest = rest.get(end + 1..).unwrap_or_default();
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix(b"content-type:") {
            let value = value.trim_ascii_start();
            smime = value.starts_with(b"application/pkcs7-mime")
                || value.starts_with(b"application/x-pkcs7-mime");
        } else if let Some(value) = lower.strip_prefix(b"content-transfer-encoding:") {
            base64 = value.trim_ascii() == b"base64";
        }
    }
    Some(match (smime, base64) {
        (false, _) => MimeBody::NotSmime,
        (true, true) => MimeBody::Base64(rest),
        (true, false) => MimeBody::Binary(rest),
    })
}
