//! Where a member's bytes go: a nested scanner, an office-part extractor, or nowhere; and what
//! kind of package the members add up to (OOXML, ODF, EPUB, JAR, APK or a plain ZIP).

use crate::inspect::file::odf::{self, OdfPackage};
use crate::inspect::file::ooxml::{self, OoxmlPackage};
use crate::inspect::file::{FileScanner, FormatFacts, ScanCx};
use crate::inspect::report::{Encryption, FileType, LimitHit, LimitKind};

/// The ODF `mimetype` member is a short media type; anything longer is not one.
const MAX_MIMETYPE: usize = 128;

pub(super) enum Consumer {
    Nested(Box<FileScanner>),
    Ooxml(Box<ooxml::Part>),
    Odf(Box<odf::Part>),
    Mimetype(Vec<u8>),
    Ignore,
}

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
                return (Consumer::Odf(Box::new(part)), None);
            }
            if odf::is_boilerplate(name) {
                return (Consumer::Ignore, None);
            }
        } else if let Some(part) = ooxml::Part::for_name(name) {
            return (Consumer::Ooxml(Box::new(part)), None);
        } else if ooxml::is_boilerplate(name) {
            return (Consumer::Ignore, None);
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
}

// === impl Consumer ===

impl Consumer {
    pub(super) fn wants_data(&self) -> bool {
        !matches!(self, Consumer::Ignore)
    }

    pub(super) fn feed(&mut self, data: &[u8], pkg: &mut Package, cx: &mut ScanCx<'_>) {
        match self {
            Consumer::Nested(scanner) => scanner.feed(data, cx),
            Consumer::Ooxml(part) => part.feed(data, cx),
            Consumer::Odf(part) => part.feed(data, &mut pkg.odf, cx),
            Consumer::Mimetype(buf) => {
                let room = MAX_MIMETYPE.saturating_sub(buf.len()).min(data.len());
                buf.extend_from_slice(data.get(..room).unwrap_or_default());
            }
            Consumer::Ignore => {}
        }
    }

    pub(super) fn finish(self, pkg: &mut Package, cx: &mut ScanCx<'_>) -> Option<FormatFacts> {
        match self {
            Consumer::Nested(scanner) => Some(scanner.finish(cx)),
            Consumer::Ooxml(part) => {
                part.finish(&mut pkg.ooxml, cx);
                None
            }
            Consumer::Odf(part) => {
                part.finish(&mut pkg.odf, cx);
                None
            }
            Consumer::Mimetype(buf) => {
                pkg.mimetype = odf::mimetype_type(&buf);
                None
            }
            Consumer::Ignore => None,
        }
    }
}
