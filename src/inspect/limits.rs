//! Bounds on the work and memory one body may cost. Hitting one is a reported fact
//! (`LimitHit`), never a panic or an outage; the policy's `on_error` decides what it means.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Archive nesting depth (a zip in a zip in a zip is depth 3).
    pub max_depth: u8,
    /// Members per archive that are inspected; beyond it the archive is `unknown`.
    pub max_members: u32,
    /// Total bytes produced by decompression (Content-Encoding and archive members) per body.
    pub max_expanded_bytes: u64,
    /// Expanded/compressed ratio above which a stream is treated as a decompression bomb.
    pub max_ratio: u32,
    /// Cap for a buffer a format needs in one piece (a 7z header, a PDF trailer, an XML part).
    pub max_buffer_bytes: usize,
    /// Text extracted per body that goes through the detectors; the rest is hashed only.
    pub max_text_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 4,
            max_members: 10_000,
            max_expanded_bytes: 1 << 30,
            max_ratio: 200,
            max_buffer_bytes: 16 << 20,
            max_text_bytes: 4 << 30,
        }
    }
}
