//! `/readyz`: named checks the composition root sets as parts come up (policy loaded, CA
//! ready), plus the audit sink's health, read live.

use std::sync::{Mutex, OnceLock};

use crate::audit::AuditSink;

/// Whether the proxy can do its job. Cheap to read; set by whoever owns each part.
#[derive(Default)]
pub struct Readiness {
    checks: Mutex<Vec<(&'static str, bool)>>,
    audit: OnceLock<AuditSink>,
}

impl Readiness {
    /// Checks that must pass, all not ready yet (e.g. `["policy", "ca"]`).
    pub fn new(required: &[&'static str]) -> Self {
        Self {
            checks: Mutex::new(required.iter().map(|n| (*n, false)).collect()),
            audit: OnceLock::new(),
        }
    }

    /// Sets a check, adding it if it was not required yet.
    pub fn set(&self, name: &'static str, ok: bool) {
        let Ok(mut checks) = self.checks.lock() else {
            return;
        };
        match checks.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = ok,
            None => checks.push((name, ok)),
        }
    }

    /// Adds the `audit` check: the sink's health, read at every request.
    pub fn watch_audit(&self, sink: AuditSink) {
        let _ = self.audit.set(sink);
    }

    /// Every check and its state, in the order they were added; `audit` last.
    pub fn checks(&self) -> Vec<(&'static str, bool)> {
        let mut out = self.checks.lock().map(|c| c.clone()).unwrap_or_default();
        if let Some(sink) = self.audit.get() {
            out.push(("audit", sink.healthy()));
        }
        out
    }
}
