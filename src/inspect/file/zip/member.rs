//! Where a member's bytes go: a nested scanner, an office-part extractor, or nowhere; and what
//! kind of package the members add up to (OOXML, ODF, EPUB, JAR, APK or a plain ZIP).
//!
//! Package parts are not scanned as files, but their first bytes are kept so the member list
//! still shows what each part is (`xml`, `png`, ...).

use crate::inspect::file::odf::{self, OdfPackage};
use crate::inspect::file::ooxml::{self, OoxmlPackage};
use crate::inspect::file::{FileScanner, FormatFacts, ScanCx, Sniff, sniff, verdict_of_type};
use crate::inspect::report::{Encryption, FileType, LimitHit, LimitKind};

/// The ODF `mimetype` member is a short media type; anything longer is not one.
const MAX_MIMETYPE: usize = 128;
/// First bytes of a package part kept for its type: enough for every magic number and to tell
/// markup from other text.
const HEAD: usize = 512;

pub(super) enum Consumer {
    Nested(Box<FileScanner>),
    Ooxml(Box<ooxml::Part>, Head),
    Odf(Box<odf::Part>, Head),
    Mimetype(Vec<u8>),
    /// A part with nothing to extract (styles, themes, thumbnails): only its first bytes are
    /// read, for its type.
    Sniff(Head),
    Ignore,
}

/// The first [`HEAD`] bytes of a member.
#[derive(Default)]
pub(super) struct Head(Vec<u8>);

#[derive(Default)]
pub(super) struct Package {
    routed: usize,
    /// From a first member named `mimetype` (ODF, EPUB).
    mimetype: Option<FileType>,
    ooxml: OoxmlPackage,
    odf: OdfPackage,
    jar_manifest: bool,
    android_manifest: bool,
}

// === impl Package ===

impl Package {
    /// Picks the consumer for a readable member. A Depth hit comes back when the member would
    /// be scanned deeper than allowed.
    pub(super) fn route(
        &mut self,
        name: &[u8],
        depth: u8,
        cx: &mut ScanCx<'_>,
    ) -> (Consumer, Option<LimitHit>) {
        let first = self.routed == 0;
        self.routed += 1;
        if first && name == b"mimetype" {
            return (Consumer::Mimetype(Vec::new()), None);
        }
        self.ooxml.note_name(name);
        match name {
            b"META-INF/MANIFEST.MF" => self.jar_manifest = true,
            b"AndroidManifest.xml" => self.android_manifest = true,
            _ => {}
        }
        if self.is_odf() {
            if let Some(part) = odf::Part::for_name(name) {
                return (Consumer::Odf(Box::new(part), Head::default()), None);
            }
            if odf::is_boilerplate(name) {
                return (Consumer::Sniff(Head::default()), None);
            }
        } else if let Some(part) = ooxml::Part::for_name(name) {
            return (Consumer::Ooxml(Box::new(part), Head::default()), None);
        } else if ooxml::is_boilerplate(name) {
            return (Consumer::Sniff(Head::default()), None);
        }
        if depth >= cx.config.limits.max_depth {
            let hit = LimitHit {
                kind: LimitKind::Depth,
                detail: "archive nested deeper than allowed".into(),
            };
            return (Consumer::Ignore, Some(hit));
        }
        let scanner = FileScanner::new(cx.config, depth + 1);
        (Consumer::Nested(Box::new(scanner)), None)
    }

    fn is_odf(&self) -> bool {
        matches!(
            self.mimetype,
            Some(FileType::Odt | FileType::Ods | FileType::Odp)
        )
    }

    pub(super) fn file_type(&self) -> FileType {
        if let Some(t) = self.mimetype {
            return t;
        }
        if let Some(t) = self.ooxml.file_type() {
            return t;
        }
        if self.android_manifest {
            FileType::Apk
        } else if self.jar_manifest {
            FileType::Jar
        } else {
            FileType::Zip
        }
    }

    /// A verdict the package format decides over the ZIP flags (ODF encryption).
    pub(super) fn finish(&mut self, cx: &mut ScanCx<'_>) -> Option<Encryption> {
        if self.is_odf() {
            return Some(self.odf.verdict());
        }
        self.ooxml.finish(cx);
        None
    }

    /// What the package says about one member's encryption, over its bytes: the ODF manifest
    /// names the members its password encrypts.
    pub(super) fn member_encryption(&self, name: &str) -> Option<Encryption> {
        self.is_odf()
            .then(|| self.odf.member_encryption(name.as_bytes()))
            .flatten()
    }
}

// === impl Consumer ===

impl Consumer {
    /// False once the consumer needs no more of the member's data (it is then not inflated).
    pub(super) fn wants_data(&self) -> bool {
        match self {
            Consumer::Sniff(head) => !head.full(),
            Consumer::Ignore => false,
            _ => true,
        }
    }

    /// Whether only the first bytes matter: the data is then inflated a little at a time.
    pub(super) fn head_only(&self) -> bool {
        matches!(self, Consumer::Sniff(_))
    }

    pub(super) fn feed(&mut self, data: &[u8], pkg: &mut Package, cx: &mut ScanCx<'_>) {
        match self {
            Consumer::Nested(scanner) => scanner.feed(data, cx),
            Consumer::Ooxml(part, head) => {
                head.push(data);
                part.feed(data, cx);
            }
            Consumer::Odf(part, head) => {
                head.push(data);
                part.feed(data, &mut pkg.odf, cx);
            }
            Consumer::Mimetype(buf) => {
                let room = MAX_MIMETYPE.saturating_sub(buf.len()).min(data.len());
                buf.extend_from_slice(data.get(..room).unwrap_or_default());
            }
            Consumer::Sniff(head) => head.push(data),
            Consumer::Ignore => {}
        }
    }

    /// The member's facts: a nested scan's, or a package part's type from its first bytes.
    /// `None` for a member whose content was not read.
    pub(super) fn finish(self, pkg: &mut Package, cx: &mut ScanCx<'_>) -> Option<FormatFacts> {
        match self {
            Consumer::Nested(scanner) => Some(scanner.finish(cx)),
            Consumer::Ooxml(part, head) => {
                part.finish(&mut pkg.ooxml, cx);
                Some(head.facts())
            }
            Consumer::Odf(part, head) => {
                part.finish(&mut pkg.odf, cx);
                Some(head.facts())
            }
            Consumer::Mimetype(buf) => {
                pkg.mimetype = odf::mimetype_type(&buf);
                Some(Head(buf).facts())
            }
            Consumer::Sniff(head) => Some(head.facts()),
            Consumer::Ignore => None,
        }
    }
}

// === impl Head ===

impl Head {
    fn push(&mut self, data: &[u8]) {
        let room = HEAD.saturating_sub(self.0.len()).min(data.len());
        self.0
            .extend_from_slice(data.get(..room).unwrap_or_default());
    }

    fn full(&self) -> bool {
        self.0.len() >= HEAD
    }

    /// The part's type from its first bytes, and the verdict that type gives on its own.
    fn facts(&self) -> FormatFacts {
        let file_type = match sniff(&self.0, true) {
            Sniff::Type(t) => t,
            Sniff::NeedMore => FileType::Unknown,
        };
        let encryption = verdict_of_type(file_type)
            .unwrap_or_else(|| Encryption::unknown("package part not inspected as a file"));
        FormatFacts {
            file_type,
            encryption,
            members: Vec::new(),
            limits: Vec::new(),
        }
    }
}
