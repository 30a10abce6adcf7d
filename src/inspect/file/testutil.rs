//! Test support for the format scanners: a sink that records what it is given, one driver that
//! runs a file through sniffing and its scanner at a chunk size (and checks that the chunking
//! does not matter), the fixtures, and damaged copies of them.

use std::collections::HashMap;
use std::path::Path;

use crate::inspect::engine::{EngineConfig, LabelTable};
use crate::inspect::file::{FileScanner, FormatFacts, ScanCx};
use crate::inspect::report::{LabelSource, Level};
use crate::inspect::sink::{ContentSink, TextOrigin};

/// Chunk sizes every fixture is fed at (`usize::MAX` = the whole file in one call).
pub(crate) const SPLITS: [usize; 4] = [1, 7, 4096, usize::MAX];

/// Fixture areas under `tests/fixtures`; a name is looked up in each (names are unique).
const AREAS: [&str; 3] = ["archives", "documents", "text"];

/// Everything a scanner pushed into its sink.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Recorder {
    /// Text streams: consecutive calls with one origin are joined; `end_text` closes one.
    pub(crate) streams: Vec<(TextOrigin, Vec<u8>)>,
    pub(crate) labels: Vec<(Level, LabelSource)>,
    open: bool,
}

impl ContentSink for Recorder {
    fn text(&mut self, text: &[u8], origin: TextOrigin) {
        match self.streams.last_mut() {
            Some((o, buf)) if self.open && *o == origin => buf.extend_from_slice(text),
            _ => self.streams.push((origin, text.to_vec())),
        }
        self.open = true;
    }

    fn end_text(&mut self) {
        self.open = false;
    }

    fn label(&mut self, level: Level, source: LabelSource) {
        self.labels.push((level, source));
    }
}

impl Recorder {
    /// All text of one origin, streams separated by `|`.
    pub(crate) fn text(&self, origin: TextOrigin) -> String {
        let parts: Vec<String> = self
            .streams
            .iter()
            .filter(|(o, s)| *o == origin && !s.is_empty())
            .map(|(_, s)| String::from_utf8_lossy(s).into_owned())
            .collect();
        parts.join("|")
    }

    pub(crate) fn has(&self, origin: TextOrigin, needle: &str) -> bool {
        self.text(origin).contains(needle)
    }
}

/// A configuration whose label table knows the document fixtures' labels: one by name, one
/// by GUID.
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

/// A fixture by file name, from whichever area holds it.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    AREAS
        .iter()
        .find_map(|area| std::fs::read(root.join(area).join(name)).ok())
        .unwrap_or_else(|| panic!("no fixture {name} under {}", root.display()))
}

/// What one run of a file through a `FileScanner` gave.
pub(crate) struct Run {
    pub(crate) facts: FormatFacts,
    pub(crate) sink: Recorder,
    /// Bytes fed when the scanner first said it was settled.
    pub(crate) settled_at: Option<usize>,
}

/// Sniffs and scans `bytes` fed in chunks of `split` bytes, at depth 0, with the expansion
/// budget the configuration allows.
pub(crate) fn run(bytes: &[u8], split: usize, config: &EngineConfig) -> Run {
    let mut sink = Recorder::default();
    let mut budget = config.limits.max_expanded_bytes;
    let mut cx = ScanCx {
        config,
        sink: &mut sink,
        expand_budget: &mut budget,
    };
    let mut scanner = FileScanner::new(config, 0);
    let mut fed = 0;
    let mut settled_at = None;
    for chunk in bytes.chunks(split.clamp(1, bytes.len().max(1))) {
        scanner.feed(chunk, &mut cx);
        fed += chunk.len();
        if settled_at.is_none() && scanner.settled() {
            settled_at = Some(fed);
        }
    }
    let facts = scanner.finish(&mut cx);
    Run {
        facts,
        sink,
        settled_at,
    }
}

/// [`run`], for the facts and what reached the sink.
pub(crate) fn scan(bytes: &[u8], split: usize, config: &EngineConfig) -> (FormatFacts, Recorder) {
    let r = run(bytes, split, config);
    (r.facts, r.sink)
}

/// Scans `bytes` at every split in [`SPLITS`], asserts the outcomes agree (facts, members,
/// labels and text), returns the whole-file one.
pub(crate) fn scan_all(bytes: &[u8], config: &EngineConfig) -> (FormatFacts, Recorder) {
    let (first, sink) = scan(bytes, usize::MAX, config);
    let members = |f: &FormatFacts| serde_json::to_string(&f.members).unwrap_or_default();
    for split in SPLITS {
        let (facts, other) = scan(bytes, split, config);
        assert_eq!(facts.file_type, first.file_type, "type at split {split}");
        assert_eq!(
            facts.encryption, first.encryption,
            "verdict at split {split}"
        );
        assert_eq!(facts.limits, first.limits, "limits at split {split}");
        assert_eq!(members(&facts), members(&first), "members at split {split}");
        assert_eq!(other.labels, sink.labels, "labels at split {split}");
        for origin in [
            TextOrigin::Body,
            TextOrigin::HeaderFooter,
            TextOrigin::Metadata,
            TextOrigin::FileName,
        ] {
            assert_eq!(
                other.text(origin),
                sink.text(origin),
                "{origin:?} text at split {split}"
            );
        }
    }
    (first, sink)
}

/// Damaged copies of `bytes`, scanned: cut at many lengths, and with bytes flipped. None may
/// panic; callers check that nothing whose structure could not be read is called `Encrypted`.
pub(crate) fn damage(bytes: &[u8], config: &EngineConfig) -> Vec<FormatFacts> {
    let mut out = Vec::new();
    let n = bytes.len();
    for cut in [
        1,
        4,
        10,
        31,
        n / 3,
        n / 2,
        n.saturating_sub(23),
        n.saturating_sub(1),
    ] {
        if let Some(prefix) = bytes.get(..cut) {
            out.push(scan(prefix, 7, config).0);
        }
    }
    for cut in (0..n).step_by((n / 64).max(1)) {
        out.push(scan(bytes.get(..cut).unwrap_or_default(), 4096, config).0);
    }
    let mut state = 0x853C_49E6_748F_EA9B_u64;
    for round in 0..24 {
        let mut copy = bytes.to_vec();
        for _ in 0..6 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if let Some(b) = copy.get_mut((state as usize) % n.max(1)) {
                *b ^= (state >> 32) as u8 | 1;
            }
        }
        let split = if round % 2 == 0 { 7 } else { 4096 };
        out.push(scan(&copy, split, config).0);
    }
    out
}

#[test]
fn fixture_names_are_unique_across_areas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seen = HashMap::new();
    for area in AREAS {
        for entry in std::fs::read_dir(root.join(area)).unwrap() {
            let name = entry.unwrap().file_name();
            if name == "generate.sh" {
                continue;
            }
            if let Some(other) = seen.insert(name.clone(), area) {
                panic!("{name:?} is in {other} and {area}");
            }
        }
    }
    assert!(seen.len() > 100);
}
