//! What the engine found in one body: the only thing that leaves the engine.
//!
//! A `Report` is metadata, verdicts, counts and digests. It has no field that can hold body bytes
//! or a matched value: evidence is masked (`*****6782`) and fingerprints are keyed HMACs, so the
//! report can be logged, serialised into the audit trail and shown by `sluis scan` as it is.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use strum::{EnumIter, EnumString, IntoStaticStr};

/// The result of inspecting one request body (or one file given to `sluis scan`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Every file found: multipart parts with a filename, a raw PUT/POST body, base64 blobs
    /// decoded out of JSON. Archive members are summarised inside their archive's report.
    pub files: Vec<FileReport>,
    /// Findings in the parts of the body that are not files: form fields, URL-encoded forms,
    /// JSON strings.
    pub text: TextReport,
    /// Bytes of the body as received (after transfer framing, before content decoding).
    pub body_bytes: u64,
    /// Bytes after content decoding (equal to `body_bytes` without a Content-Encoding).
    pub decoded_bytes: u64,
    /// Limits hit and malformations met at body level (framing, decoding).
    pub limits: Vec<LimitHit>,
}

/// One file in the body.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file name as the client sent it (multipart `filename`, URL path segment, API header).
    pub name: Option<String>,
    /// The multipart field name, when the file came from a form.
    pub field: Option<String>,
    /// The media type the client declared (part or request Content-Type), if any.
    pub declared_type: Option<String>,
    /// The type decided from the bytes.
    pub file_type: FileType,
    /// The declared type or the name's extension contradicts the bytes.
    pub type_mismatch: bool,
    /// Size in bytes of the file as sent (after content decoding).
    pub size: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    pub encryption: Encryption,
    /// The highest classification found, and where.
    pub label: Option<LabelFinding>,
    /// Counts per detector over the file's text (archive members included).
    pub detections: Vec<Detection>,
    /// Archive members (capped; `limits` says when the list is incomplete).
    pub members: Vec<MemberReport>,
    /// Limits hit and malformations met inside this file.
    pub limits: Vec<LimitHit>,
}

/// A member of an archive, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct MemberReport {
    /// Member path as stored in the archive (names stay readable in most encrypted archives).
    pub name: String,
    pub file_type: FileType,
    pub size: u64,
    pub encryption: Encryption,
}

/// Findings outside files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TextReport {
    /// Bytes of text scanned.
    pub bytes: u64,
    pub label: Option<LabelFinding>,
    pub detections: Vec<Detection>,
}

/// Whether a file is unreadable without a key, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Encryption {
    pub verdict: Verdict,
    /// The scheme, when known (`zip-aes`, `pdf-standard-aes256`, `openpgp-symmetric`, ...).
    pub kind: Option<EncryptionKind>,
    /// Why the verdict is what it is, in a few words (no content).
    pub reason: Cow<'static, str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Verdict {
    /// A key or password is needed to read the content.
    Encrypted,
    /// Anyone can read the content (compression and permissions-only protection included).
    NotEncrypted,
    /// The engine cannot tell (unknown type, truncated, limit hit). Never a guess of `Encrypted`.
    Unknown,
}

/// Encryption schemes the engine recognises. `as_str` values are stable: policies and audit
/// consumers match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "kebab-case")]
pub enum EncryptionKind {
    ZipCrypto,
    ZipAes,
    ZipStrong,
    SevenZipAes,
    Rar4,
    Rar5,
    PdfRc4,
    PdfAes128,
    PdfAes256,
    PdfPublicKey,
    OoxmlAgile,
    OoxmlStandard,
    OoxmlIrm,
    LegacyOfficeRc4,
    LegacyOfficeXor,
    OdfEncrypted,
    OpenpgpSymmetric,
    OpenpgpPublicKey,
    CmsEnveloped,
    Age,
    OpensslSalted,
}

/// File types decided from bytes. `as_str` values are stable (policy `file_type` conditions,
/// metric labels, audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "kebab-case")]
pub enum FileType {
    // Text
    Text,
    Csv,
    Json,
    Xml,
    Html,
    // Archives and compression
    Zip,
    #[strum(serialize = "7z")]
    SevenZip,
    Rar,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    Tar,
    // Documents
    Pdf,
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
    Odp,
    Epub,
    Doc,
    Xls,
    Ppt,
    /// An OLE/CFB container holding an encrypted OOXML package.
    OoxmlEncrypted,
    /// Any other OLE/CFB container (msg, msi, ...).
    Cfb,
    Rtf,
    // Crypto containers
    Openpgp,
    OpenpgpArmored,
    Cms,
    Age,
    OpensslSalted,
    // Media
    Jpeg,
    Png,
    Gif,
    Webp,
    Mp4,
    Mp3,
    // Programs
    Exe,
    Elf,
    MachO,
    JavaClass,
    Jar,
    Apk,
    Msi,
    Script,
    /// Nothing recognised.
    Unknown,
}

/// Classification levels of the KSP (code of conduct 1.2), lowest to highest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, IntoStaticStr, EnumString, EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum Level {
    Public,
    Internal,
    Confidential,
    Secret,
}

/// A classification found, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelFinding {
    pub level: Level,
    pub source: LabelSource,
}

/// Where a classification was found. Ordered by how much it is worth as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum LabelSource {
    /// Sensitivity-label metadata (`MSIP_Label_*`, `docMetadata/LabelInfo.xml`, PDF XMP/Info).
    Metadata,
    /// A visible marking in a header, footer or watermark.
    HeaderFooter,
    /// A visible marking standing alone in the body text.
    Body,
    /// The file name as uploaded.
    FileName,
}

/// A detector's findings in one file or in the body's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    pub kind: DetectorKind,
    pub count: u32,
    /// Masked examples, e.g. `*****6782`; at most a few.
    pub evidence: Vec<String>,
    /// Keyed HMAC-SHA256 (hex) of each distinct normalised value, when a fingerprint key is
    /// configured; capped. Lets an investigator holding a value ask whether it left, without
    /// the log holding the value.
    pub fingerprints: Vec<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, IntoStaticStr, EnumString, EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum DetectorKind {
    /// Dutch citizen service number: eleven-test plus a context word nearby.
    Bsn,
    Iban,
    PaymentCard,
    /// PEM private keys.
    PrivateKey,
    /// Cloud provider access keys (AWS, Google, Azure).
    CloudKey,
    /// API tokens with a recognisable format (GitHub, GitLab, Slack, Stripe, OpenAI, ...).
    ApiToken,
}

/// A limit that was reached or a malformation that stopped parsing. The policy's `on_error`
/// decides what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitHit {
    pub kind: LimitKind,
    /// A few words of context (no content).
    pub detail: Cow<'static, str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum LimitKind {
    /// Archive nesting deeper than allowed.
    Depth,
    /// More archive members than allowed.
    Members,
    /// More expanded bytes than allowed (decompression bomb).
    ExpandedSize,
    /// Expansion ratio above the limit.
    Ratio,
    /// A buffer the engine needs (header, tail) exceeded its cap.
    Buffer,
    /// The input is not what its framing or format says (broken multipart, corrupt archive).
    Malformed,
    /// A Content-Encoding the engine does not know.
    UnsupportedEncoding,
}

// === impl Report ===

impl Report {
    /// The highest label anywhere in the body.
    pub fn highest_label(&self) -> Option<&LabelFinding> {
        self.files
            .iter()
            .filter_map(|f| f.label.as_ref())
            .chain(self.text.label.as_ref())
            .max_by_key(|l| l.level)
    }

    /// Total count of a detector over files and text.
    pub fn detector_count(&self, kind: DetectorKind) -> u64 {
        self.files
            .iter()
            .flat_map(|f| f.detections.iter())
            .chain(self.text.detections.iter())
            .filter(|d| d.kind == kind)
            .map(|d| u64::from(d.count))
            .sum()
    }

    /// Whether any limit or malformation was met, in the body or in any file.
    pub fn hit_limit(&self) -> bool {
        !self.limits.is_empty() || self.files.iter().any(|f| !f.limits.is_empty())
    }
}

// === impl Encryption ===

impl Encryption {
    pub fn encrypted(kind: EncryptionKind, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            verdict: Verdict::Encrypted,
            kind: Some(kind),
            reason: reason.into(),
        }
    }

    pub fn not_encrypted(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            verdict: Verdict::NotEncrypted,
            kind: None,
            reason: reason.into(),
        }
    }

    pub fn unknown(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            verdict: Verdict::Unknown,
            kind: None,
            reason: reason.into(),
        }
    }
}

// === names ===

/// One spelling per variant, from strum: `as_str` for metrics, audit and policies, `FromStr` for
/// parsing policies, and serde writes the same string.
macro_rules! stable_names {
    ($($ty:ty),* $(,)?) => {$(
        impl $ty {
            /// The stable name used in policies, metrics and the audit log.
            pub fn as_str(&self) -> &'static str {
                self.into()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )*};
}

stable_names!(
    Verdict,
    EncryptionKind,
    FileType,
    Level,
    LabelSource,
    DetectorKind,
    LimitKind
);

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn names_round_trip() {
        for t in FileType::iter() {
            assert_eq!(FileType::from_str(t.as_str()).unwrap(), t);
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        assert_eq!(FileType::SevenZip.as_str(), "7z");
        assert_eq!(EncryptionKind::ZipAes.as_str(), "zip-aes");
        assert_eq!(Level::Confidential.as_str(), "confidential");
        assert!(Level::Secret > Level::Confidential);
    }
}
