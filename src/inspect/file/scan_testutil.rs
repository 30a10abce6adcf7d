//! Test support for format scanners: run a file through sniffing and its scanner at a given
//! chunk size, recording what reaches the sink.

use std::collections::HashMap;
use std::path::Path;

use crate::inspect::engine::{EngineConfig, LabelTable};
use crate::inspect::file::{FileScanner, FormatFacts, ScanCx};
use crate::inspect::report::{LabelSource, Level};
use crate::inspect::sink::{ContentSink, TextOrigin};

/// Chunk sizes every fixture is tested at (`usize::MAX` = the whole file at once).
pub(crate) const SPLITS: [usize; 4] = [1, 7, 4096, usize::MAX];

/// Everything a scanner pushed into its sink.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) body: String,
    pub(crate) metadata: String,
    pub(crate) other: String,
    pub(crate) labels: Vec<(Level, LabelSource)>,
    pub(crate) ends: usize,
}

impl ContentSink for Recorder {
    fn text(&mut self, text: &[u8], origin: TextOrigin) {
        let text = String::from_utf8_lossy(text);
        match origin {
            TextOrigin::Body => self.body.push_str(&text),
            TextOrigin::Metadata => self.metadata.push_str(&text),
            TextOrigin::HeaderFooter | TextOrigin::FileName => self.other.push_str(&text),
        }
    }

    fn end_text(&mut self) {
        self.ends += 1;
    }

    fn label(&mut self, level: Level, source: LabelSource) {
        self.labels.push((level, source));
    }
}

/// A configuration whose label table knows the fixtures' labels: one by name, one by GUID.
pub(crate) fn config() -> EngineConfig {
    EngineConfig {
        labels: LabelTable {
            names: HashMap::from([("confidential".to_string(), Level::Confidential)]),
            guids: HashMap::from([(
                "0d9c8b7a-6e5f-4a3b-8c2d-1e0f9a8b7c6d".to_string(),
                Level::Secret,
            )]),
        },
        ..EngineConfig::default()
    }
}

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/documents")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sniffs and scans `bytes` fed in chunks of `split` bytes.
pub(crate) fn scan(bytes: &[u8], split: usize, config: &EngineConfig) -> (FormatFacts, Recorder) {
    let mut sink = Recorder::default();
    let mut budget = config.limits.max_expanded_bytes;
    let mut cx = ScanCx {
        config,
        sink: &mut sink,
        expand_budget: &mut budget,
    };
    let mut scanner = FileScanner::new(config, 0);
    for chunk in bytes.chunks(split.clamp(1, bytes.len().max(1))) {
        scanner.feed(chunk, &mut cx);
    }
    let facts = scanner.finish(&mut cx);
    (facts, sink)
}

/// Every prefix length worth trying on a truncated file, and a few corruptions: none may
/// panic. Returns how many variants ran.
pub(crate) fn abuse(bytes: &[u8]) -> usize {
    let config = config();
    let mut runs = 0;
    let step = (bytes.len() / 97).max(1);
    for cut in (0..bytes.len()).step_by(step) {
        scan(bytes.get(..cut).unwrap_or_default(), 4096, &config);
        runs += 1;
    }
    let mut state = 0x853C_49E6_748F_EA9Bu64;
    for _ in 0..24 {
        let mut damaged = bytes.to_vec();
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if let Some(byte) = damaged.get_mut((state as usize) % bytes.len().max(1)) {
                *byte ^= (state >> 32) as u8 | 1;
            }
        }
        scan(&damaged, 7, &config);
        runs += 1;
    }
    runs
}
