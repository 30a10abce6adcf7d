//! Policy tests. Each file covers one claim of the module docs:
//!
//! - `hosts`: host pattern syntax and suffix matching.
//! - `precedence`: first match wins, the request and content stages, `on_error`.
//! - `content`: file, text, label and detector conditions (reports built by hand and by the
//!   engine).
//! - `modes`: enforce and monitor, globally and per rule.
//! - `connect`: block, tunnel and intercept.
//! - `load_errors`: broken files name the right file, line and key.
//! - `default_policy`: the shipped `policies/` encode the KSP.
//! - `docs`: the README's name lists and examples.
//! - `explain`: the text `sluis explain` prints.
//! - `store`: reload, snapshots under traffic, the file watcher.

mod connect;
mod content;
mod default_policy;
mod docs;
mod explain;
mod hosts;
mod load_errors;
mod modes;
mod precedence;
mod store;

use std::borrow::Cow;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::inspect::{
    Detection, DetectorKind, Encryption, EncryptionKind, FileReport, FileType, LabelFinding,
    LabelSource, Level, LimitHit, LimitKind, Report, Verdict,
};
use crate::policy::{ConnectDecision, ConnectFacts, Decision, Policy, RequestCheck, RequestFacts};

/// The proxy shares policies and the store across tasks and threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Policy>();
    send_sync::<crate::policy::PolicyStore>();
    send_sync::<Decision>();
};

/// The shipped default policy directory.
pub(super) fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// A fixture directory under `tests/fixtures/policy/`.
pub(super) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/policy")
        .join(name)
}

/// Settings and two categories that the rule-level tests build on.
pub(super) const BASE: &str = r#"
[policy]
contact = { name = "Security desk", email = "security@example.com" }

[internal]
hosts = ["corp.example", "10.0.0.0/8"]

[categories.cloud]
hosts = ["dropbox.com", "=exact.example"]
upload_hosts = ["content.dropboxapi.com"]

[categories.mail]
hosts = ["mail.example", "www.dropbox.com"]
"#;

/// A policy directory in a temporary directory.
pub(super) struct Dir {
    pub(super) tmp: TempDir,
}

impl Dir {
    pub(super) fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    /// A directory with `BASE` in `00-base.toml` and `rules` in `rules.toml`.
    pub(super) fn with_rules(rules: &str) -> Dir {
        let d = Dir::new();
        d.write("00-base.toml", BASE);
        d.write("rules.toml", rules);
        d
    }

    pub(super) fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub(super) fn write(&self, name: &str, text: &str) {
        fs::write(self.tmp.path().join(name), text).unwrap();
    }

    pub(super) fn load(&self) -> Policy {
        Policy::load(self.path()).unwrap_or_else(|e| panic!("policy should load:\n{e}"))
    }
}

/// Compiles `BASE` plus `rules`.
pub(super) fn policy(rules: &str) -> Policy {
    Dir::with_rules(rules).load()
}

/// A rule with an id, an action and extra TOML lines.
pub(super) fn rule(id: &str, action: &str, extra: &str) -> String {
    format!(
        "[[rules]]\nid = \"{id}\"\naction = \"{action}\"\nksp = \"1.4\"\nreason_nl = \"nl {id}\"\nreason_en = \"en {id}\"\n{extra}\n\n"
    )
}

pub(super) const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));

pub(super) fn req<'a>(
    method: &'a str,
    host: &'a str,
    path: &'a str,
    has_body: bool,
) -> RequestFacts<'a> {
    RequestFacts {
        client: CLIENT,
        user: None,
        method,
        scheme: "https",
        host,
        port: 443,
        path,
        has_body,
    }
}

pub(super) fn post<'a>(host: &'a str) -> RequestFacts<'a> {
    req("POST", host, "/", true)
}

pub(super) fn get<'a>(host: &'a str) -> RequestFacts<'a> {
    req("GET", host, "/", false)
}

pub(super) fn connect(host: &str) -> ConnectFacts<'_> {
    ConnectFacts {
        client: CLIENT,
        user: None,
        host,
        port: 443,
    }
}

/// The decision of a request that the head decides; fails the test if it needs inspection.
pub(super) fn decided(p: &Policy, facts: &RequestFacts<'_>) -> Decision {
    match p.check_request(facts) {
        RequestCheck::Decided(d) => d,
        RequestCheck::Inspect { hold } => {
            panic!("expected a head decision, got Inspect {{ hold: {hold} }}")
        }
    }
}

/// The `hold` flag of a request that needs inspection; fails the test otherwise.
pub(super) fn inspects(p: &Policy, facts: &RequestFacts<'_>) -> bool {
    match p.check_request(facts) {
        RequestCheck::Inspect { hold } => hold,
        RequestCheck::Decided(d) => {
            panic!("expected Inspect, got {:?} by {}", d.action, d.rule_id())
        }
    }
}

pub(super) fn connect_kind(d: &ConnectDecision) -> &'static str {
    d.as_str()
}

/// A file in a report, sent as a multipart form part.
pub(super) fn file(name: &str, file_type: FileType, verdict: Verdict) -> FileReport {
    let encryption = match verdict {
        Verdict::Encrypted => Encryption::encrypted(EncryptionKind::ZipAes, "test"),
        Verdict::NotEncrypted => Encryption::not_encrypted("test"),
        Verdict::Unknown => Encryption::unknown("test"),
    };
    FileReport {
        name: Some(name.to_owned()),
        field: Some("file".to_owned()),
        declared_type: None,
        file_type,
        type_mismatch: false,
        size: 1000,
        sha256: String::new(),
        encryption,
        label: None,
        detections: Vec::new(),
        members: Vec::new(),
        limits: Vec::new(),
    }
}

/// The same file sent as a raw body (no form field).
pub(super) fn raw(mut f: FileReport) -> FileReport {
    f.field = None;
    f
}

pub(super) fn labelled(mut f: FileReport, level: Level) -> FileReport {
    f.label = Some(LabelFinding {
        level,
        source: LabelSource::Metadata,
    });
    f
}

pub(super) fn detection(kind: DetectorKind, count: u32) -> Detection {
    Detection {
        kind,
        count,
        evidence: vec!["*****6782".into()],
        fingerprints: Vec::new(),
    }
}

pub(super) fn report(files: Vec<FileReport>) -> Report {
    Report {
        body_bytes: files.iter().map(|f| f.size).sum(),
        files,
        ..Report::default()
    }
}

/// A report of a text-only body (a form post or JSON) with these detections and label.
pub(super) fn text_report(detections: Vec<Detection>, label: Option<Level>) -> Report {
    let mut r = Report::default();
    r.text.bytes = 200;
    r.text.detections = detections;
    r.text.label = label.map(|level| LabelFinding {
        level,
        source: LabelSource::Body,
    });
    r
}

pub(super) fn with_limit(mut r: Report) -> Report {
    r.limits.push(LimitHit {
        kind: LimitKind::Members,
        detail: Cow::Borrowed("test"),
    });
    r
}
