//! OpenDocument packages (odt, ods, odp) and EPUB: type, text, and ODF password protection.
//!
//! An ODF file is a ZIP whose first member, `mimetype`, names the document type. Its text is in
//! `content.xml`; page headers and footers live in `styles.xml`; title and keywords in
//! `meta.xml`. A password does not set any ZIP flag: the encrypted members are listed in
//! `META-INF/manifest.xml` with an `<encryption-data>` child, and the manifest usually comes
//! last, so the verdict waits for it. An encrypted member's bytes do not parse as XML, so the
//! extractor emits nothing for it.

use crate::inspect::file::ScanCx;
use crate::inspect::file::xml::{Tag, XmlHandler, XmlTokenizer};
use crate::inspect::report::{Encryption, EncryptionKind, FileType};
use crate::inspect::sink::TextOrigin;

/// Bytes of encrypted member names kept from the manifest, for the member list.
const MAX_ENCRYPTED_NAMES: usize = 64 << 10;

/// What the manifest says.
#[derive(Debug, Default)]
pub(crate) struct OdfPackage {
    manifest_seen: bool,
    content_encrypted: bool,
    encrypted_members: u32,
    /// Paths the manifest lists with encryption data (capped at [`MAX_ENCRYPTED_NAMES`]).
    encrypted_paths: Vec<Vec<u8>>,
}

pub(crate) struct Part {
    tok: XmlTokenizer,
    handler: Handler,
}

enum Handler {
    Text(OdfText),
    Manifest(Manifest),
}

/// Text of `content.xml`, `styles.xml` or `meta.xml`.
struct OdfText {
    which: Which,
    /// Depth inside paragraphs/headings (content, styles) or metadata fields (meta).
    capture: u32,
    /// Depth inside page header/footer definitions (styles.xml).
    header_footer: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Content,
    Styles,
    Meta,
}

#[derive(Default)]
struct Manifest {
    /// The `full-path` of the `file-entry` being read.
    path: Vec<u8>,
    content_encrypted: bool,
    encrypted_members: u32,
    encrypted_paths: Vec<Vec<u8>>,
    kept: usize,
}

/// The document type a `mimetype` member names.
pub(crate) fn mimetype_type(mime: &[u8]) -> Option<FileType> {
    Some(match mime.trim_ascii() {
        b"application/vnd.oasis.opendocument.text"
        | b"application/vnd.oasis.opendocument.text-template"
        | b"application/vnd.oasis.opendocument.text-master" => FileType::Odt,
        b"application/vnd.oasis.opendocument.spreadsheet"
        | b"application/vnd.oasis.opendocument.spreadsheet-template" => FileType::Ods,
        b"application/vnd.oasis.opendocument.presentation"
        | b"application/vnd.oasis.opendocument.presentation-template" => FileType::Odp,
        b"application/epub+zip" => FileType::Epub,
        _ => return None,
    })
}

/// ODF members with no user text (settings, thumbnails, UI configuration).
pub(crate) fn is_boilerplate(name: &[u8]) -> bool {
    name == b"settings.xml"
        || name == b"manifest.rdf"
        || name.starts_with(b"Configurations2/")
        || name.starts_with(b"Thumbnails/")
        || name.starts_with(b"META-INF/")
}

// === impl OdfPackage ===

impl OdfPackage {
    /// A member the manifest lists as encrypted by the document password.
    pub(crate) fn member_encryption(&self, path: &[u8]) -> Option<Encryption> {
        self.encrypted_paths.iter().any(|p| p == path).then(|| {
            Encryption::encrypted(
                EncryptionKind::OdfEncrypted,
                "encrypted by the document password (manifest)",
            )
        })
    }

    pub(crate) fn verdict(&self) -> Encryption {
        if self.content_encrypted {
            Encryption::encrypted(
                EncryptionKind::OdfEncrypted,
                "content.xml encrypted (ODF password)",
            )
        } else if self.encrypted_members > 0 {
            Encryption::not_encrypted("content.xml is clear; only some members are encrypted")
        } else if self.manifest_seen {
            Encryption::not_encrypted("manifest lists no encrypted member")
        } else {
            Encryption::not_encrypted("no manifest; ODF without encryption")
        }
    }
}

// === impl Part ===

impl Part {
    pub(crate) fn for_name(name: &[u8]) -> Option<Part> {
        let handler = match name {
            b"content.xml" => Handler::Text(OdfText::new(Which::Content)),
            b"styles.xml" => Handler::Text(OdfText::new(Which::Styles)),
            b"meta.xml" => Handler::Text(OdfText::new(Which::Meta)),
            b"META-INF/manifest.xml" => Handler::Manifest(Manifest::default()),
            _ => return None,
        };
        Some(Part {
            tok: XmlTokenizer::new(),
            handler,
        })
    }

    pub(crate) fn feed(&mut self, data: &[u8], _pkg: &mut OdfPackage, cx: &mut ScanCx<'_>) {
        let h: &mut dyn XmlHandler = match &mut self.handler {
            Handler::Text(h) => h,
            Handler::Manifest(h) => h,
        };
        self.tok.feed(data, h, cx);
    }

    pub(crate) fn finish(self, pkg: &mut OdfPackage, cx: &mut ScanCx<'_>) {
        if let Handler::Manifest(m) = self.handler {
            pkg.manifest_seen = true;
            pkg.content_encrypted |= m.content_encrypted;
            pkg.encrypted_members += m.encrypted_members;
            pkg.encrypted_paths.extend(m.encrypted_paths);
        }
        cx.sink.end_text();
    }
}

// === impl OdfText ===

impl OdfText {
    fn new(which: Which) -> Self {
        Self {
            which,
            capture: 0,
            header_footer: 0,
        }
    }

    fn origin(&self) -> Option<TextOrigin> {
        match self.which {
            Which::Content => Some(TextOrigin::Body),
            Which::Meta => Some(TextOrigin::Metadata),
            Which::Styles => (self.header_footer > 0).then_some(TextOrigin::HeaderFooter),
        }
    }
}

fn is_header_footer(name: &[u8]) -> bool {
    matches!(
        name,
        b"header" | b"footer" | b"header-left" | b"footer-left" | b"header-first" | b"footer-first"
    )
}

fn is_meta_field(name: &[u8]) -> bool {
    matches!(name, b"title" | b"subject" | b"keyword" | b"description")
}

impl XmlHandler for OdfText {
    fn start(&mut self, name: &[u8], _tag: &Tag<'_>, cx: &mut ScanCx<'_>) {
        if self.which == Which::Meta {
            if is_meta_field(name) {
                self.capture += 1;
            }
            return;
        }
        if is_header_footer(name) {
            self.header_footer += 1;
        }
        match name {
            b"p" | b"h" => self.capture += 1,
            b"s" | b"tab" | b"line-break" if self.capture > 0 => {
                if let Some(origin) = self.origin() {
                    cx.sink.text(b" ", origin);
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &[u8], cx: &mut ScanCx<'_>) {
        if self.which == Which::Meta {
            if is_meta_field(name) {
                self.capture = self.capture.saturating_sub(1);
                cx.sink.end_text();
            }
            return;
        }
        if is_header_footer(name) {
            self.header_footer = self.header_footer.saturating_sub(1);
            cx.sink.end_text();
        }
        if matches!(name, b"p" | b"h") {
            self.capture = self.capture.saturating_sub(1);
            if let Some(origin) = self.origin() {
                cx.sink.text(b"\n", origin);
            }
        }
    }

    fn text(&mut self, text: &[u8], cx: &mut ScanCx<'_>) {
        if self.capture > 0
            && let Some(origin) = self.origin()
        {
            cx.sink.text(text, origin);
        }
    }
}

// === impl Manifest ===

impl XmlHandler for Manifest {
    fn start(&mut self, name: &[u8], tag: &Tag<'_>, _cx: &mut ScanCx<'_>) {
        match name {
            b"file-entry" => {
                self.path = tag
                    .attr(b"full-path")
                    .map(|p| p.into_owned())
                    .unwrap_or_default();
            }
            b"encryption-data" => {
                self.encrypted_members += 1;
                if self.path == b"content.xml" {
                    self.content_encrypted = true;
                }
                if self.kept + self.path.len() <= MAX_ENCRYPTED_NAMES {
                    self.kept += self.path.len();
                    self.encrypted_paths.push(self.path.clone());
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &[u8], _cx: &mut ScanCx<'_>) {
        if name == b"file-entry" {
            self.path.clear();
        }
    }

    fn text(&mut self, _text: &[u8], _cx: &mut ScanCx<'_>) {}
}
