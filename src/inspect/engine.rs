//! Engine (compiled once per policy load) and Session (one per body).
//!
//! A session runs the layers in order for each chunk: Content-Encoding (`frame::codec`),
//! framing into files and text (`frame`), each file's format scanner (`file`) and the
//! detectors (`detect`). It never fails: limits and malformations become `LimitHit`s.

use std::collections::HashMap;
use std::sync::Arc;

use crate::inspect::detect::{Detectors, TextScanner};
use crate::inspect::frame::{Budgets, Decoding, FileSlot, Framer, Out, Unsupported};
use crate::inspect::limits::Limits;
use crate::inspect::report::{FileReport, Level, LimitHit, LimitKind, Report, TextReport};

/// What the policy tells the engine: limits, markings, label tables, fingerprint key.
///
/// `Default` has the default limits, [`EngineConfig::default_markings`], no label table and no
/// fingerprint key.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub limits: Limits,
    /// Visible markings and the level each one means ("Vertrouwelijk" → confidential).
    pub markings: Vec<Marking>,
    /// Sensitivity-label identifiers and names → level.
    pub labels: LabelTable,
    /// Key for the HMAC fingerprints of detected values; `None` = no fingerprints.
    pub fingerprint_key: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marking {
    pub phrase: String,
    pub level: Level,
}

/// Maps sensitivity labels to KSP levels. `docMetadata/LabelInfo.xml` carries only a GUID, so
/// the tenant's label GUIDs must be listed; `MSIP_Label_<guid>_Name` also carries a name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelTable {
    /// Lowercase GUID without braces → level.
    pub guids: HashMap<String, Level>,
    /// Lowercase label name → level.
    pub names: HashMap<String, Level>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("marking {phrase:?}: {reason}")]
    Marking { phrase: String, reason: String },
    #[error("building a matcher: {0}")]
    Automaton(String),
    #[error("fingerprint key is not usable as an HMAC key")]
    FingerprintKey,
}

/// The compiled engine. Cheap to share (`Arc`), immutable.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    detectors: Detectors,
}

/// How the body is framed, from the request head.
#[derive(Debug, Clone, Default)]
pub struct BodyMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    /// A file name known from outside the body (URL path, `Dropbox-API-Arg`, `sluis scan PATH`).
    pub file_name: Option<String>,
}

/// Inspection state for one body. `Send + 'static`: the proxy may move it between tasks.
pub struct Session {
    engine: Arc<Engine>,
    decoding: Decoding,
    framer: Framer,
    files: Vec<FileReport>,
    text: TextScanner,
    limits: Vec<LimitHit>,
    expand_budget: u64,
    text_budget: u64,
    body_bytes: u64,
}

// === impl EngineConfig ===

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            markings: Self::default_markings(),
            labels: LabelTable::default(),
            fingerprint_key: None,
        }
    }
}

impl EngineConfig {
    /// The KSP markings (code of conduct 1.2) in Dutch and English. "KPN " and
    /// "Classificatie:"/"Classification:" may precede any of them on their line.
    pub fn default_markings() -> Vec<Marking> {
        const TABLE: &[(&str, Level)] = &[
            ("openbaar", Level::Public),
            ("public", Level::Public),
            ("intern", Level::Internal),
            ("voor intern gebruik", Level::Internal),
            ("internal", Level::Internal),
            ("internal use only", Level::Internal),
            ("vertrouwelijk", Level::Confidential),
            ("strikt vertrouwelijk", Level::Confidential),
            ("confidential", Level::Confidential),
            ("geheim", Level::Secret),
            ("secret", Level::Secret),
        ];
        TABLE
            .iter()
            .map(|(phrase, level)| Marking {
                phrase: (*phrase).to_owned(),
                level: *level,
            })
            .collect()
    }
}

// === impl Engine ===

impl Engine {
    /// Compiles the configuration: marking tables, keyword and secret automata, HMAC key.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let detectors = Detectors::new(&config)?;
        Ok(Self { config, detectors })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn detectors(&self) -> &Detectors {
        &self.detectors
    }

    /// Starts inspecting one body.
    pub fn session(self: &Arc<Self>, meta: BodyMeta) -> Session {
        let mut limits = Vec::new();
        let (decoding, framer) =
            match Decoding::new(meta.content_encoding.as_deref(), &self.config.limits) {
                Ok(decoding) => (decoding, Framer::new(self, &meta, &mut limits)),
                Err(Unsupported::Coding(coding)) => {
                    limits.push(LimitHit {
                        kind: LimitKind::UnsupportedEncoding,
                        detail: format!("content-encoding {coding:.32}").into(),
                    });
                    let slot =
                        FileSlot::opaque(self, meta.file_name.clone(), meta.content_type.clone());
                    (Decoding::identity(), Framer::Raw(Box::new(slot)))
                }
            };
        Session {
            engine: Arc::clone(self),
            decoding,
            framer,
            files: Vec::new(),
            text: TextScanner::new(),
            limits,
            expand_budget: self.config.limits.max_expanded_bytes,
            text_budget: self.config.limits.max_text_bytes,
            body_bytes: 0,
        }
    }
}

// === impl Session ===

impl Session {
    /// Feeds the next bytes of the body. Never fails: what goes wrong becomes a fact in the
    /// report.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.body_bytes += chunk.len() as u64;
        let Self {
            engine,
            decoding,
            framer,
            files,
            text,
            limits,
            text_budget,
            expand_budget,
            ..
        } = self;
        let mut sink = |piece: &[u8], expand: &mut u64| {
            let mut out = Out {
                engine,
                budgets: Budgets {
                    expand,
                    text: text_budget,
                },
                files,
                text,
                limits,
            };
            framer.feed(piece, &mut out);
        };
        decoding.push(chunk, expand_budget, &mut sink);
        if self.decoding.stopped() && !matches!(self.framer, Framer::Finished) {
            // Nothing more reaches the framer: end it now, so the report is whole from here.
            self.end_framer();
        }
    }

    /// True once no further byte can change any verdict in the report or add a finding (e.g.
    /// the whole body is one file that its header already shows to be encrypted, or a
    /// multipart body is past its closing boundary). The proxy may then stop holding. Later
    /// `feed` calls stay cheap: they only count, decode and hash.
    ///
    /// A multipart body is never settled before its closing boundary (a later part may be a
    /// clear file), nor a form or JSON body before its end. With a Content-Encoding, the body
    /// settles when the decoded content does.
    pub fn settled(&self) -> bool {
        self.decoding.stopped() || self.framer.settled()
    }

    /// The report as [`finish`](Self::finish) will give it, once [`settled`](Self::settled)
    /// (`None` before): the same files, verdicts, labels, detections and limits. Only the
    /// byte counts differ, since the rest of the body has not been seen: `body_bytes` and
    /// `decoded_bytes` are the bytes so far, and a file still arriving has the `size` so far
    /// and an empty `sha256` (a multipart part that already ended has its final ones). The
    /// report from `finish` has the real ones.
    ///
    /// The one thing the end can still add is a body-level limit from the Content-Encoding
    /// (a stream that is cut short, corrupt or over the expansion cap after this point): no
    /// verdict depends on it, but the final report records it.
    ///
    /// Copies the findings (a few KiB): meant to be called once, when `settled` turns true.
    pub fn settled_report(&self) -> Option<Report> {
        if !self.settled() {
            return None;
        }
        let det = self.engine.detectors();
        let mut files = self.files.clone();
        files.extend(self.framer.settled_files(&self.engine)?);
        let mut limits = self.limits.clone();
        limits.extend(self.decoding.limits().iter().cloned());
        let (findings, bytes, cap) = self.text.peek(det);
        limits.extend(cap);
        let (label, detections) = findings.into_parts();
        Some(Report {
            files,
            text: TextReport {
                bytes,
                label,
                detections,
            },
            body_bytes: self.body_bytes,
            decoded_bytes: self.decoding.decoded(),
            limits,
        })
    }

    /// Ends the body and returns what was found.
    pub fn finish(mut self) -> Report {
        self.end_framer();
        let decoded_bytes = self.decoding.decoded();
        self.limits.extend(self.decoding.finish());
        let (findings, bytes, cap) = self.text.finish(self.engine.detectors());
        self.limits.extend(cap);
        let (label, detections) = findings.into_parts();
        Report {
            files: self.files,
            text: TextReport {
                bytes,
                label,
                detections,
            },
            body_bytes: self.body_bytes,
            decoded_bytes,
            limits: self.limits,
        }
    }

    fn end_framer(&mut self) {
        let mut out = Out {
            engine: &self.engine,
            budgets: Budgets {
                expand: &mut self.expand_budget,
                text: &mut self.text_budget,
            },
            files: &mut self.files,
            text: &mut self.text,
            limits: &mut self.limits,
        };
        self.framer.finish(&mut out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::report::{DetectorKind, LabelSource};

    fn is_send_static<T: Send + 'static>() {}

    #[test]
    fn sessions_can_move_between_tasks() {
        is_send_static::<Session>();
        is_send_static::<Arc<Engine>>();
    }

    #[test]
    fn bad_configuration_is_an_error() {
        let config = EngineConfig {
            markings: vec![Marking {
                phrase: "!!!".into(),
                level: Level::Secret,
            }],
            ..EngineConfig::default()
        };
        assert!(matches!(
            Engine::new(config),
            Err(EngineError::Marking { .. })
        ));
    }

    #[test]
    fn markings_come_from_the_configuration() {
        let config = EngineConfig {
            markings: vec![Marking {
                phrase: "Bedrijfsgeheim".into(),
                level: Level::Secret,
            }],
            fingerprint_key: Some(b"key".to_vec()),
            ..EngineConfig::default()
        };
        let engine = Arc::new(Engine::new(config).unwrap());
        let mut s = engine.session(BodyMeta::default());
        s.feed(b"Notitie\nBEDRIJFSGEHEIM\nVertrouwelijk\nBSN 111222333\n");
        let r = s.finish();
        let label = r.files[0].label.as_ref().unwrap();
        assert_eq!(
            (label.level, label.source),
            (Level::Secret, LabelSource::Body)
        );
        assert_eq!(r.detector_count(DetectorKind::Bsn), 1);
        assert_eq!(r.files[0].detections[0].fingerprints.len(), 1);
        assert_eq!(r.decoded_bytes, r.body_bytes);
    }

    #[test]
    fn the_text_cap_is_reported() {
        let config = EngineConfig {
            limits: Limits {
                max_text_bytes: 16,
                ..Limits::default()
            },
            ..EngineConfig::default()
        };
        let engine = Arc::new(Engine::new(config).unwrap());
        let mut s = engine.session(BodyMeta::default());
        s.feed(b"a long enough text with BSN 111222333 in it\n");
        let r = s.finish();
        assert_eq!(r.detector_count(DetectorKind::Bsn), 0);
        assert_eq!(r.files[0].limits[0].kind, LimitKind::Buffer);
    }
}
