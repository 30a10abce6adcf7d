//! Splitting a body into files and text: Content-Encoding, multipart, forms, JSON.
//!
//! The request head decides the framing once: a multipart body is split into parts (files and
//! text fields), a URL-encoded form or JSON body is text (with base64 blobs in JSON taken out
//! as files), and anything else is one file. Everything streams; nothing holds a whole body.

mod base64;
mod codec;
mod file;
mod form;
mod gzip;
mod json;
mod mime;
mod mismatch;
mod multipart;
mod text;

pub(crate) use codec::{Decoding, Unsupported};
pub(crate) use file::{Budgets, FileSlot};

use crate::inspect::detect::{DetectSink, TextScanner};
use crate::inspect::engine::{BodyMeta, Engine};
use crate::inspect::report::{FileReport, LimitHit, LimitKind};
use crate::inspect::sink::{ContentSink, TextOrigin};

use mime::MediaType;
use multipart::Multipart;
use text::TextBody;

/// How a body is cut up, decided from its head.
pub(crate) enum Framer {
    /// The body is one file.
    Raw(Box<FileSlot>),
    Multipart(Box<Multipart>),
    Text(TextBody),
    Finished,
}

/// Where framing delivers: the engine, the body's budgets, and the report being built.
pub(crate) struct Out<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) budgets: Budgets<'a>,
    pub(crate) files: &'a mut Vec<FileReport>,
    pub(crate) text: &'a mut TextScanner,
    pub(crate) limits: &'a mut Vec<LimitHit>,
}

// === impl Framer ===

impl Framer {
    /// Picks the framing from the request head. A multipart type without a boundary is
    /// reported and the body scanned as one file.
    pub(crate) fn new(engine: &Engine, meta: &BodyMeta, limits: &mut Vec<LimitHit>) -> Self {
        let media = meta.content_type.as_deref().map(MediaType::parse);
        let raw = || {
            let slot = FileSlot::new(
                engine,
                meta.file_name.clone(),
                None,
                meta.content_type.clone(),
            );
            Self::Raw(Box::new(slot))
        };
        let Some(media) = media else { return raw() };
        if media.essence.starts_with("multipart/") {
            return match media
                .param("boundary")
                .filter(|b| !b.is_empty() && b.len() <= 200)
            {
                Some(boundary) => Self::Multipart(Box::new(Multipart::new(
                    boundary,
                    engine.config().limits.max_members,
                ))),
                None => {
                    limits.push(LimitHit {
                        kind: LimitKind::Malformed,
                        detail: "multipart without a boundary".into(),
                    });
                    raw()
                }
            };
        }
        if media.is_json() || media.is_form() {
            return Self::Text(TextBody::for_media(Some(&media)));
        }
        raw()
    }

    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Out<'_>) {
        match self {
            Self::Raw(slot) => slot.feed(data, out.engine, &mut out.budgets),
            Self::Multipart(m) => m.feed(data, out),
            Self::Text(t) => t.feed(data, out),
            Self::Finished => {}
        }
    }

    /// True once no later byte can change a verdict or add a finding.
    pub(crate) fn settled(&self) -> bool {
        match self {
            Self::Raw(slot) => slot.settled(),
            Self::Multipart(m) => m.settled(),
            Self::Text(_) => false,
            Self::Finished => true,
        }
    }

    /// Once settled, the reports of files the framer still holds (the body's file when the
    /// body is one file), as `finish` will give them; `None` while not settled.
    pub(crate) fn settled_files(&self, engine: &Engine) -> Option<Vec<FileReport>> {
        match self {
            Self::Raw(slot) => slot.settled_report(engine).map(|r| vec![r]),
            Self::Multipart(m) => m.settled().then(Vec::new),
            Self::Text(_) => None,
            Self::Finished => Some(Vec::new()),
        }
    }

    pub(crate) fn finish(&mut self, out: &mut Out<'_>) {
        match std::mem::replace(self, Self::Finished) {
            Self::Raw(slot) => out.finish_file(*slot),
            Self::Multipart(m) => m.finish(out),
            Self::Text(t) => t.finish(out),
            Self::Finished => {}
        }
    }
}

// === impl Out ===

impl Out<'_> {
    /// Body-level text (form fields, JSON strings) for the detectors.
    pub(crate) fn text(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut sink = DetectSink {
            detectors: self.engine.detectors(),
            scanner: self.text,
            budget: self.budgets.text,
        };
        sink.text(data, TextOrigin::Body);
    }

    pub(crate) fn end_text(&mut self) {
        self.text.end(self.engine.detectors());
    }

    pub(crate) fn limit(&mut self, hit: LimitHit) {
        if !self.limits.contains(&hit) {
            self.limits.push(hit);
        }
    }

    pub(crate) fn finish_file(&mut self, slot: FileSlot) {
        let report = slot.finish(self.engine, &mut self.budgets);
        self.files.push(report);
    }
}

#[cfg(test)]
mod tests;
