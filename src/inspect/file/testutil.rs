//! Test support for the format scanners: a sink that records what it is given, and a driver
//! that runs a file through a `FileScanner` at several chunk sizes and checks that the result
//! does not depend on chunking.

use crate::inspect::engine::EngineConfig;
use crate::inspect::file::{FileScanner, FormatFacts, ScanCx};
use crate::inspect::report::{LabelSource, Level};
use crate::inspect::sink::{ContentSink, TextOrigin};

/// Chunk sizes every fixture is fed at (0 = the whole file in one call).
pub(crate) const SPLITS: [usize; 4] = [1, 7, 4096, 0];

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

/// Runs `bytes` through a depth-0 `FileScanner` in chunks of `chunk` bytes.
pub(crate) fn scan_with(
    bytes: &[u8],
    chunk: usize,
    config: &EngineConfig,
) -> (FormatFacts, Recorder) {
    let mut sink = Recorder::default();
    let mut budget = config.limits.max_expanded_bytes;
    let mut cx = ScanCx {
        config,
        sink: &mut sink,
        expand_budget: &mut budget,
    };
    let mut scanner = FileScanner::new(config, 0);
    let size = if chunk == 0 {
        bytes.len().max(1)
    } else {
        chunk
    };
    for piece in bytes.chunks(size) {
        scanner.feed(piece, &mut cx);
    }
    let facts = scanner.finish(&mut cx);
    (facts, sink)
}

/// Runs `bytes` at every split in [`SPLITS`], asserts the outcomes agree, returns one.
pub(crate) fn scan_all(bytes: &[u8], config: &EngineConfig) -> (FormatFacts, Recorder) {
    let (first, sink) = scan_with(bytes, 0, config);
    for split in SPLITS {
        let (facts, other) = scan_with(bytes, split, config);
        assert_eq!(facts.file_type, first.file_type, "type at split {split}");
        assert_eq!(
            facts.encryption, first.encryption,
            "verdict at split {split}"
        );
        assert_eq!(facts.limits, first.limits, "limits at split {split}");
        let names = |f: &FormatFacts| f.members.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&facts), names(&first), "members at split {split}");
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

/// A fixture from `tests/fixtures/archives`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/archives/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Feeds damaged copies of `bytes` (cut at several points, bytes flipped) and checks that the
/// scanner neither panics nor claims `Encrypted` for a file whose structure it could not read.
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
            out.push(scan_with(prefix, 7, config).0);
        }
    }
    let mut state = 0x9E37_79B9_u32;
    for _ in 0..24 {
        let mut copy = bytes.to_vec();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let at = state as usize % n.max(1);
            if let Some(b) = copy.get_mut(at) {
                *b ^= (state >> 8) as u8 | 1;
            }
        }
        out.push(scan_with(&copy, 4096, config).0);
    }
    out
}
