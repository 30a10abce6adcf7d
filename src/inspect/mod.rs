//! The inspection engine: bytes in, a [`Report`] out, and no I/O in between.
//!
//! The proxy, `sluis scan` and the benches all drive the same push-based state machine:
//!
//! ```text
//! let mut session = engine.session(&meta);
//! session.feed(chunk);      // any number of times, any chunk sizes
//! session.settled();        // true once no further byte can change the verdicts
//! session.settled_report(); // then: the verdicts as the end will give them
//! let report = session.finish();
//! ```
//!
//! The proxy can release a held body early from the settled report and keep feeding the rest
//! for the hash and size, which only `finish` gives.
//!
//! Layers, each streaming: `frame` (Content-Encoding, multipart, forms, JSON) splits a body into
//! files and text; `file` sniffs each file's type and runs its format scanner (encryption
//! verdict, text extraction, metadata labels); `detect` runs the detectors over the text. The
//! report is the same whatever the chunking.
//!
//! This module imports nothing from the rest of the crate: it could be its own crate.

pub mod detect;
pub mod file;
pub mod fingerprint;
pub mod frame;
pub mod limits;
pub mod report;
pub mod sink;

mod engine;
#[cfg(test)]
mod settle_tests;

pub use engine::{BodyMeta, Engine, EngineConfig, EngineError, LabelTable, Marking, Session};
pub use limits::Limits;
pub use report::{
    Detection, DetectorKind, Encryption, EncryptionKind, FileReport, FileType, LabelFinding,
    LabelSource, Level, LimitHit, LimitKind, MemberReport, Report, TextReport, Verdict,
};
