//! One file of the body on its way through: size, hash, format scanner and detectors.

use sha2::{Digest, Sha256};

use crate::inspect::detect::{DetectSink, TextScanner};
use crate::inspect::engine::Engine;
use crate::inspect::file::{FileScanner, FormatFacts, ScanCx};
use crate::inspect::frame::mismatch::type_mismatch;
use crate::inspect::report::{Encryption, FileReport, FileType, LimitHit};
use crate::inspect::sink::TextOrigin;

/// Budgets shared by everything in one body.
pub(crate) struct Budgets<'a> {
    /// Bytes decompression may still produce (Content-Encoding and archive members).
    pub(crate) expand: &'a mut u64,
    /// Bytes of text the detectors may still scan.
    pub(crate) text: &'a mut u64,
}

/// A file being received.
pub(crate) struct FileSlot {
    name: Option<String>,
    field: Option<String>,
    declared_type: Option<String>,
    hasher: Sha256,
    size: u64,
    /// `None` for a file that cannot be looked into (unsupported Content-Encoding).
    scanner: Option<FileScanner>,
    text: TextScanner,
    limits: Vec<LimitHit>,
}

// === impl FileSlot ===

impl FileSlot {
    pub(crate) fn new(
        engine: &Engine,
        name: Option<String>,
        field: Option<String>,
        declared_type: Option<String>,
    ) -> Self {
        Self {
            name,
            field,
            declared_type,
            hasher: Sha256::new(),
            size: 0,
            scanner: Some(FileScanner::new(engine.config(), 0)),
            text: TextScanner::new(),
            limits: Vec::new(),
        }
    }

    /// A file whose bytes are hashed but not interpreted: its verdict is `unknown`.
    pub(crate) fn opaque(
        engine: &Engine,
        name: Option<String>,
        declared_type: Option<String>,
    ) -> Self {
        Self {
            scanner: None,
            ..Self::new(engine, name, None, declared_type)
        }
    }

    pub(crate) fn add_limit(&mut self, hit: LimitHit) {
        if !self.limits.contains(&hit) {
            self.limits.push(hit);
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8], engine: &Engine, budgets: &mut Budgets<'_>) {
        self.size += data.len() as u64;
        self.hasher.update(data);
        let Some(scanner) = self.scanner.as_mut().filter(|s| !s.settled()) else {
            return;
        };
        let mut sink = DetectSink {
            detectors: engine.detectors(),
            scanner: &mut self.text,
            budget: budgets.text,
        };
        let mut cx = ScanCx {
            config: engine.config(),
            sink: &mut sink,
            expand_budget: budgets.expand,
        };
        scanner.feed(data, &mut cx);
    }

    /// True once no later byte can change this file's verdict or findings.
    pub(crate) fn settled(&self) -> bool {
        self.scanner.as_ref().is_none_or(FileScanner::settled)
    }

    /// The report `finish` will give, once the file has settled (`None` before): everything
    /// but `size`, which counts the bytes so far, and `sha256`, which is left empty.
    pub(crate) fn settled_report(&self, engine: &Engine) -> Option<FileReport> {
        let facts = match &self.scanner {
            Some(scanner) => Some(scanner.settled_facts()?.clone()),
            None => None,
        };
        Some(self.report(engine, facts, self.text.clone(), String::new()))
    }

    pub(crate) fn finish(mut self, engine: &Engine, budgets: &mut Budgets<'_>) -> FileReport {
        let facts = self.scanner.take().map(|scanner| {
            let mut sink = DetectSink {
                detectors: engine.detectors(),
                scanner: &mut self.text,
                budget: budgets.text,
            };
            let mut cx = ScanCx {
                config: engine.config(),
                sink: &mut sink,
                expand_budget: budgets.expand,
            };
            scanner.finish(&mut cx)
        });
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let text = std::mem::take(&mut self.text);
        self.report(engine, facts, text, sha256)
    }

    /// Assembles the report from the scanner's facts and the file's text findings.
    fn report(
        &self,
        engine: &Engine,
        facts: Option<FormatFacts>,
        mut text: TextScanner,
        sha256: String,
    ) -> FileReport {
        let det = engine.detectors();
        if let Some(name) = &self.name {
            text.end(det);
            text.push(det, name.as_bytes(), TextOrigin::FileName);
        }
        let (findings, _, cap) = text.finish(det);
        let (label, detections) = findings.into_parts();
        let (file_type, encryption, members, mut limits) = match facts {
            Some(f) => (f.file_type, f.encryption, f.members, f.limits),
            None => (
                FileType::Unknown,
                Encryption::unknown("content encoding not supported"),
                Vec::new(),
                Vec::new(),
            ),
        };
        limits.extend(self.limits.iter().cloned());
        limits.extend(cap);
        FileReport {
            type_mismatch: type_mismatch(
                file_type,
                self.declared_type.as_deref(),
                self.name.as_deref(),
            ),
            name: self.name.clone(),
            field: self.field.clone(),
            declared_type: self.declared_type.clone(),
            file_type,
            size: self.size,
            sha256,
            encryption,
            label,
            detections,
            members,
            limits,
        }
    }
}
