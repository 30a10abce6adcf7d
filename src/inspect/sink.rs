//! The seam between format scanners and detectors.
//!
//! Format scanners (ZIP, PDF, OOXML, ...) know where text lives; detectors know what to look for.
//! Scanners push text and metadata labels into a `ContentSink`, and never see what the
//! detectors make of it.

use crate::inspect::report::{LabelSource, Level};

/// Where a piece of text came from. Markings weigh differently by origin: "Vertrouwelijk" alone
/// in a page footer is a classification; the same word in a sentence of body text is prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextOrigin {
    /// Running text: a plain-text file, a document body, a spreadsheet cell, a PDF page.
    Body,
    /// A header, footer or watermark of a document.
    HeaderFooter,
    /// Document metadata (title, subject, keywords, custom properties).
    Metadata,
    /// A file or archive member name.
    FileName,
}

/// Receives what a scanner extracts from a file.
///
/// Contract for scanners:
/// - `text` may be called any number of times; consecutive calls with the same origin continue
///   the same stream, so a match may span calls (the sink carries state across them).
/// - Call `end_text` where one text stream ends and an unrelated one begins (a paragraph of one
///   part vs the next part, one archive member vs the next), so no match joins the two.
/// - Text is UTF-8 (lossy is fine); scanners convert UTF-16 and XML entities first.
/// - `label` reports a classification read from metadata; the sink keeps the highest.
pub trait ContentSink {
    fn text(&mut self, text: &[u8], origin: TextOrigin);
    fn end_text(&mut self);
    fn label(&mut self, level: Level, source: LabelSource);
}

/// A sink that drops everything: for scanners run only for their verdict.
#[derive(Debug, Default)]
pub struct NullSink;

impl ContentSink for NullSink {
    fn text(&mut self, _text: &[u8], _origin: TextOrigin) {}
    fn end_text(&mut self) {}
    fn label(&mut self, _level: Level, _source: LabelSource) {}
}
