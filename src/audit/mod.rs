//! The audit trail: one JSON line per decision, so that every block, every inspected upload,
//! every refused client can be explained later, without the log itself becoming a leak.
//!
//! - `event`: the record (ECS field names, metadata only; no field can hold content).
//! - `chain`: the per-file hash chain that makes edits and deletions visible; `verify`.
//! - `fingerprint`: keyed HMACs of detected values, so `find` can answer "did this BSN leave?".
//! - `sink`: file (rotation, retention), stdout and syslog destinations.
//! - `writer`: `AuditSink`, the bounded queue and the thread that owns the sinks.
//! - `cli`: `sluis audit verify` and `sluis audit find`.
//!
//! Imports only `config` helpers and the inspection report types; nothing from the proxy.

pub mod chain;
pub mod cli;
pub mod config;
pub mod event;
pub mod key;
mod sink;
mod writer;

pub use crate::inspect::fingerprint::{self, fingerprint};
pub use config::{
    AuditConfig, AuditScope, FileSinkConfig, SinkConfig, SyslogAddress, SyslogSinkConfig,
};
pub use event::{
    AuditEvent, Destination, EventAction, FileEntry, HttpFields, HttpRequest, HttpResponse,
    Outcome, PolicyAction, PolicyFields, PolicyMode, RuleFields, UrlFields, UserFields,
};
pub use key::{SecretError, load_or_create_key, read_secret_file};
pub use writer::{AuditError, AuditObserver, AuditSink, NoObserver};
