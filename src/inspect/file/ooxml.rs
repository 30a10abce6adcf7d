//! OOXML packages (docx, xlsx, pptx): which ZIP is one, the text of its parts, and its
//! sensitivity labels.
//!
//! The ZIP scanner routes each part here by name as it streams past. The type is decided from
//! `[Content_Types].xml` (its main-part override) or, failing that, from the main part's name
//! together with a content-types part, never from entry order: producers reorder entries and a
//! docx whose first entries are `docProps/*` is still a docx. Labels come from
//! `docProps/custom.xml` (`MSIP_Label_<GUID>_Enabled/_Name`) and `docMetadata/LabelInfo.xml`,
//! mapped to levels through the policy's label table. Password-protected OOXML is not a ZIP
//! at all (it is a CFB container), so an OOXML package is never encrypted.

mod labels;
mod text;

use self::labels::{CustomProps, LabelInfo};
use self::text::{Flavor, TextPart};
use crate::inspect::file::ScanCx;
use crate::inspect::file::xml::{Tag, XmlHandler, XmlTokenizer};
use crate::inspect::report::FileType;
use crate::inspect::sink::TextOrigin;

/// What the package's parts showed about its type.
#[derive(Debug, Default)]
pub(crate) struct OoxmlPackage {
    /// From the main-part override in `[Content_Types].xml`.
    declared: Option<FileType>,
    content_types_seen: bool,
    /// From a main part's name.
    main_part: Option<FileType>,
}

/// One XML part being extracted.
pub(crate) struct Part {
    tok: XmlTokenizer,
    handler: Handler,
}

enum Handler {
    ContentTypes(ContentTypes),
    Core(Core),
    Custom(CustomProps),
    LabelInfo(LabelInfo),
    Text(TextPart),
}

// === impl OoxmlPackage ===

impl OoxmlPackage {
    pub(crate) fn note_name(&mut self, name: &[u8]) {
        let t = match name {
            b"word/document.xml" => FileType::Docx,
            b"xl/workbook.xml" => FileType::Xlsx,
            b"ppt/presentation.xml" => FileType::Pptx,
            b"[Content_Types].xml" => {
                self.content_types_seen = true;
                return;
            }
            _ => return,
        };
        self.main_part.get_or_insert(t);
    }

    pub(crate) fn file_type(&self) -> Option<FileType> {
        self.declared
            .or(self.main_part.filter(|_| self.content_types_seen))
    }

    pub(crate) fn finish(&mut self, _cx: &mut ScanCx<'_>) {}
}

// === impl Part ===

impl Part {
    /// The extractor for a part name, if the part carries text, labels or the type.
    pub(crate) fn for_name(name: &[u8]) -> Option<Part> {
        use TextOrigin::Body;
        let handler = match name {
            b"[Content_Types].xml" => Handler::ContentTypes(ContentTypes::default()),
            b"docProps/core.xml" => Handler::Core(Core::default()),
            b"docProps/custom.xml" => Handler::Custom(CustomProps::default()),
            b"docMetadata/LabelInfo.xml" => Handler::LabelInfo(LabelInfo::default()),
            b"word/document.xml"
            | b"word/footnotes.xml"
            | b"word/endnotes.xml"
            | b"word/comments.xml" => Handler::Text(TextPart::new(Flavor::Word, Body)),
            b"xl/sharedStrings.xml" => Handler::Text(TextPart::new(Flavor::SharedStrings, Body)),
            _ => {
                let (flavor, origin) = text_part(name)?;
                Handler::Text(TextPart::new(flavor, origin))
            }
        };
        Some(Part {
            tok: XmlTokenizer::new(),
            handler,
        })
    }

    pub(crate) fn feed(&mut self, data: &[u8], cx: &mut ScanCx<'_>) {
        let h: &mut dyn XmlHandler = match &mut self.handler {
            Handler::ContentTypes(h) => h,
            Handler::Core(h) => h,
            Handler::Custom(h) => h,
            Handler::LabelInfo(h) => h,
            Handler::Text(h) => h,
        };
        self.tok.feed(data, h, cx);
    }

    pub(crate) fn finish(self, pkg: &mut OoxmlPackage, cx: &mut ScanCx<'_>) {
        match self.handler {
            Handler::ContentTypes(h) => pkg.declared = h.main.or(pkg.declared),
            Handler::Custom(h) => h.finish(cx),
            Handler::LabelInfo(h) => h.finish(cx),
            Handler::Text(mut h) => h.finish(cx),
            Handler::Core(_) => {}
        }
        cx.sink.end_text();
    }
}

/// Numbered parts: headers, footers, sheets, slides, notes, comments.
fn text_part(name: &[u8]) -> Option<(Flavor, TextOrigin)> {
    use TextOrigin::{Body, HeaderFooter};
    let numbered = |prefix: &[u8]| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(b".xml"))
            .is_some_and(|mid| mid.iter().all(u8::is_ascii_digit))
    };
    if numbered(b"word/header") || numbered(b"word/footer") {
        Some((Flavor::Word, HeaderFooter))
    } else if numbered(b"xl/worksheets/sheet") {
        Some((Flavor::Sheet, Body))
    } else if numbered(b"xl/comments") {
        Some((Flavor::SharedStrings, Body))
    } else if numbered(b"ppt/slides/slide")
        || numbered(b"ppt/notesSlides/notesSlide")
        || numbered(b"ppt/slideMasters/slideMaster")
        || numbered(b"ppt/comments/comment")
    {
        Some((Flavor::Drawing, Body))
    } else {
        None
    }
}

/// Package parts that hold no user text (styles, themes, relationships, settings, media):
/// not worth a nested scan. Embedded objects are scanned as files.
pub(crate) fn is_boilerplate(name: &[u8]) -> bool {
    if name.windows(12).any(|w| w == b"/embeddings/") {
        return false;
    }
    let under = |p: &[u8]| name.starts_with(p);
    name.ends_with(b".rels")
        || under(b"word/")
        || under(b"xl/")
        || under(b"ppt/")
        || under(b"docProps/")
        || under(b"customXml/")
        || under(b"docMetadata/")
}

// === [Content_Types].xml ===

#[derive(Debug, Default)]
struct ContentTypes {
    main: Option<FileType>,
}

impl XmlHandler for ContentTypes {
    fn start(&mut self, name: &[u8], tag: &Tag<'_>, _cx: &mut ScanCx<'_>) {
        if name != b"Override" || self.main.is_some() {
            return;
        }
        let Some(ct) = tag.attr(b"ContentType") else {
            return;
        };
        if !ct.ends_with(b".main+xml") {
            return;
        }
        let has = |needle: &[u8]| ct.windows(needle.len()).any(|w| w == needle);
        self.main = if has(b"wordprocessingml") || has(b"ms-word") {
            Some(FileType::Docx)
        } else if has(b"spreadsheetml") || has(b"ms-excel") {
            Some(FileType::Xlsx)
        } else if has(b"presentationml") || has(b"ms-powerpoint") {
            Some(FileType::Pptx)
        } else {
            None
        };
    }

    fn end(&mut self, _name: &[u8], _cx: &mut ScanCx<'_>) {}
    fn text(&mut self, _text: &[u8], _cx: &mut ScanCx<'_>) {}
}

// === docProps/core.xml ===

/// Title, subject, keywords, description and category, as metadata text.
#[derive(Debug, Default)]
struct Core {
    inside: bool,
}

impl XmlHandler for Core {
    fn start(&mut self, name: &[u8], _tag: &Tag<'_>, _cx: &mut ScanCx<'_>) {
        self.inside = matches!(
            name,
            b"title" | b"subject" | b"keywords" | b"description" | b"category"
        );
    }

    fn end(&mut self, _name: &[u8], cx: &mut ScanCx<'_>) {
        if self.inside {
            cx.sink.end_text();
        }
        self.inside = false;
    }

    fn text(&mut self, text: &[u8], cx: &mut ScanCx<'_>) {
        if self.inside {
            cx.sink.text(text, TextOrigin::Metadata);
        }
    }
}

#[cfg(test)]
#[path = "ooxml_tests.rs"]
mod tests;
