//! Engine (compiled once per policy load) and Session (one per body).

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::inspect::file::{FileScanner, ScanCx};
use crate::inspect::limits::Limits;
use crate::inspect::report::{FileReport, Level, Report};
use crate::inspect::sink::NullSink;

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
}

/// How the body is framed, from the request head.
#[derive(Debug, Clone, Default)]
pub struct BodyMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    /// A file name known from outside the body (URL path, `Dropbox-API-Arg`, `sluis scan PATH`).
    pub file_name: Option<String>,
}

/// Inspection state for one body.
pub struct Session {
    engine: Arc<Engine>,
    meta: BodyMeta,
    hasher: Sha256,
    size: u64,
    scanner: FileScanner,
    expand_budget: u64,
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
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        Ok(Self { config })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Starts inspecting one body.
    pub fn session(self: &Arc<Self>, meta: BodyMeta) -> Session {
        Session {
            scanner: FileScanner::new(&self.config, 0),
            engine: self.clone(),
            meta,
            hasher: Sha256::new(),
            size: 0,
            expand_budget: self.config.limits.max_expanded_bytes,
        }
    }
}

// === impl Session ===

impl Session {
    /// Feeds the next bytes of the body. Never fails: what goes wrong becomes a fact in the
    /// report.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        self.hasher.update(chunk);
        let mut cx = ScanCx {
            config: &self.engine.config,
            sink: &mut NullSink,
            expand_budget: &mut self.expand_budget,
        };
        self.scanner.feed(chunk, &mut cx);
    }

    /// True once no further byte can change any verdict in the report (e.g. the whole body is
    /// one file that its header already shows to be encrypted). The proxy may then stop holding.
    pub fn settled(&self) -> bool {
        self.scanner.settled()
    }

    /// Ends the body and returns what was found.
    pub fn finish(mut self) -> Report {
        let mut cx = ScanCx {
            config: &self.engine.config,
            sink: &mut NullSink,
            expand_budget: &mut self.expand_budget,
        };
        let facts = self.scanner.finish(&mut cx);
        let file = FileReport {
            name: self.meta.file_name.clone(),
            field: None,
            declared_type: self.meta.content_type.clone(),
            file_type: facts.file_type,
            type_mismatch: false,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
            encryption: facts.encryption,
            label: None,
            detections: Vec::new(),
            members: facts.members,
            limits: facts.limits,
        };
        Report {
            files: vec![file],
            body_bytes: self.size,
            decoded_bytes: self.size,
            ..Report::default()
        }
    }
}
