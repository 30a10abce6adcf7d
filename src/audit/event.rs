//! The audit event: one per decision, metadata only.
//!
//! Field names follow the Elastic Common Schema where ECS has a field (`@timestamp`,
//! `event.*`, `client.*`, `user.name`, `http.*`, `url.*`, `rule.*`) and sit under `sluis.*`
//! where it has none, so a SIEM ingests the lines as they are. `docs/audit.md` is the schema.
//!
//! Privacy by construction: no field takes body bytes, header values or matched values. The URL
//! is built only through [`UrlFields::new`], which drops the query string unless the admin turned
//! `audit.log_query` on; files come only from the inspection report, which has no content.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use crate::inspect::{FileReport, LabelFinding, Report, TextReport};

/// The ECS version the field names follow.
pub const ECS_VERSION: &str = "8.11.0";

/// One audit line.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    #[serde(rename = "@timestamp", serialize_with = "rfc3339")]
    pub timestamp: SystemTime,
    pub ecs: Ecs,
    pub event: EventFields,
    pub client: ClientFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleFields>,
    pub sluis: SluisFields,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ecs {
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventFields {
    /// The incident id, also shown on the block page.
    pub id: String,
    pub kind: &'static str,
    pub category: [&'static str; 1],
    #[serde(rename = "type")]
    pub type_: [&'static str; 1],
    pub action: EventAction,
    pub outcome: Outcome,
    /// Nanoseconds, as ECS wants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    pub dataset: &'static str,
}

/// What happened. `as_str` values are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// An HTTP request/response exchange (plain or inside an intercepted tunnel).
    Exchange,
    /// A CONNECT tunnel, from request to close.
    Connect,
    /// A WebSocket (or other) upgrade, from switch to close.
    Upgrade,
    /// One message a client sent over a WebSocket, inspected.
    Message,
    /// A client refused by the allow-list.
    AclDenied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientFields {
    pub ip: std::net::IpAddr,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserFields {
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpFields {
    pub request: HttpRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<HttpResponse>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpRequest {
    pub method: String,
    /// Body bytes received from the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpResponse {
    pub status_code: u16,
    /// Body bytes sent to the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// The request target, without the query string unless configured.
#[derive(Debug, Clone, Serialize)]
pub struct UrlFields {
    scheme: String,
    domain: String,
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleFields {
    pub id: String,
    /// The KSP section the rule enforces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SluisFields {
    pub destination: Destination,
    /// What the policy decided (`allow`, `log`, `block`); `None` before any decision (ACL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<PolicyAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<PolicyMode>,
    /// A monitor-mode rule would have blocked this.
    pub would_block: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyFields>,
    /// Why the proxy answered instead of the upstream (a fixed error kind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextEntry>,
    /// Limits hit and malformations met (kinds only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<&'static str>,
    /// Set by the writer, per sink; see `chain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<crate::audit::chain::ChainLink>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Destination {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub internal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    Allow,
    Log,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    Enforce,
    Monitor,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyFields {
    pub version: String,
}

/// One inspected file: type, size, digest and verdicts; never content.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SHA-256 of the name, when `audit.hash_file_names` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_sha256: Option<String>,
    #[serde(rename = "type")]
    pub file_type: &'static str,
    pub type_mismatch: bool,
    pub size: u64,
    pub hash: FileHash,
    /// `true`, `false`, or `null` when the engine cannot tell.
    pub encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub detections: BTreeMap<&'static str, u32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fingerprints: BTreeMap<&'static str, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileHash {
    pub sha256: String,
}

/// Findings outside files (form fields, JSON strings).
#[derive(Debug, Clone, Serialize)]
pub struct TextEntry {
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub detections: BTreeMap<&'static str, u32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fingerprints: BTreeMap<&'static str, Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub level: &'static str,
    pub source: &'static str,
}

// === impl AuditEvent ===

impl AuditEvent {
    /// A fresh incident id: 16 Crockford base32 characters (80 random bits), easy to read out
    /// over the phone (no I, L, O, U).
    pub fn new_id() -> String {
        const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let mut raw = [0u8; 10];
        rand::fill(&mut raw);
        let bits = raw.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b));
        (0..16)
            .rev()
            .map(|i| char::from(ALPHABET[((bits >> (i * 5)) & 31) as usize]))
            .collect()
    }

    /// An event for `action` by `client`, started at `started`, with a given incident id.
    pub fn new(id: String, action: EventAction, client: SocketAddr, started: SystemTime) -> Self {
        let (category, type_) = match action {
            EventAction::Exchange | EventAction::Upgrade | EventAction::Message => {
                ("web", "access")
            }
            EventAction::Connect => ("network", "connection"),
            EventAction::AclDenied => ("network", "denied"),
        };
        Self {
            timestamp: started,
            ecs: Ecs {
                version: ECS_VERSION,
            },
            event: EventFields {
                id,
                kind: "event",
                category: [category],
                type_: [type_],
                action,
                outcome: Outcome::Unknown,
                duration: None,
                dataset: "sluis.audit",
            },
            client: ClientFields {
                ip: client.ip().to_canonical(),
                port: client.port(),
            },
            user: None,
            http: None,
            url: None,
            rule: None,
            sluis: SluisFields::default(),
        }
    }

    pub fn set_duration(&mut self, d: Duration) {
        self.event.duration = Some(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds what inspection found: files, text findings and limits.
    pub fn set_report(&mut self, report: &Report, hash_file_names: bool) {
        self.sluis.files = report
            .files
            .iter()
            .map(|f| FileEntry::from_report(f, hash_file_names))
            .collect();
        self.sluis.text = TextEntry::from_report(&report.text);
        let file_limits = report.files.iter().flat_map(|f| f.limits.iter());
        let mut kinds: Vec<&'static str> = report
            .limits
            .iter()
            .chain(file_limits)
            .map(|l| l.kind.as_str())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        self.sluis.limits = kinds;
    }

    /// The incident id.
    pub fn id(&self) -> &str {
        &self.event.id
    }
}

impl EventAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventAction::Exchange => "exchange",
            EventAction::Connect => "connect",
            EventAction::Upgrade => "upgrade",
            EventAction::Message => "message",
            EventAction::AclDenied => "acl_denied",
        }
    }
}

impl PolicyAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyAction::Allow => "allow",
            PolicyAction::Log => "log",
            PolicyAction::Block => "block",
        }
    }
}

impl PolicyMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyMode::Enforce => "enforce",
            PolicyMode::Monitor => "monitor",
        }
    }
}

// === impl UrlFields ===

impl UrlFields {
    /// `path_and_query` as the request carried it; the query is kept only when `log_query`.
    pub fn new(
        scheme: &str,
        domain: &str,
        port: u16,
        path_and_query: &str,
        log_query: bool,
    ) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        // A fragment never reaches a proxy, but a broken client may send one.
        let path = path.split('#').next().unwrap_or_default();
        Self {
            scheme: scheme.to_owned(),
            domain: domain.to_owned(),
            port,
            path: (!path.is_empty()).then(|| path.to_owned()),
            query: query
                .filter(|q| log_query && !q.is_empty())
                .map(str::to_owned),
        }
    }
}

// === impl FileEntry ===

impl FileEntry {
    pub fn from_report(f: &FileReport, hash_name: bool) -> Self {
        use sha2::Digest;
        let (name, name_sha256) = match (&f.name, hash_name) {
            (Some(n), true) => (None, Some(hex::encode(sha2::Sha256::digest(n.as_bytes())))),
            (n, _) => (n.clone(), None),
        };
        let (detections, fingerprints) = detections(&f.detections);
        Self {
            name,
            name_sha256,
            file_type: f.file_type.as_str(),
            type_mismatch: f.type_mismatch,
            size: f.size,
            hash: FileHash {
                sha256: f.sha256.clone(),
            },
            encrypted: match f.encryption.verdict {
                crate::inspect::Verdict::Encrypted => Some(true),
                crate::inspect::Verdict::NotEncrypted => Some(false),
                crate::inspect::Verdict::Unknown => None,
            },
            encryption: f.encryption.kind.map(|k| k.as_str()),
            label: f.label.as_ref().map(Label::from),
            detections,
            fingerprints,
            members: (!f.members.is_empty()).then_some(f.members.len()),
        }
    }
}

impl TextEntry {
    fn from_report(t: &TextReport) -> Option<Self> {
        if t.bytes == 0 && t.label.is_none() && t.detections.is_empty() {
            return None;
        }
        let (detections, fingerprints) = detections(&t.detections);
        Some(Self {
            bytes: t.bytes,
            label: t.label.as_ref().map(Label::from),
            detections,
            fingerprints,
        })
    }
}

type Counts = BTreeMap<&'static str, u32>;
type Fingerprints = BTreeMap<&'static str, Vec<String>>;

/// Counts and fingerprints per detector; the masked evidence stays out of the log.
fn detections(list: &[crate::inspect::Detection]) -> (Counts, Fingerprints) {
    let mut counts = Counts::new();
    let mut prints = Fingerprints::new();
    for d in list {
        let name = d.kind.as_str();
        *counts.entry(name).or_default() += d.count;
        if !d.fingerprints.is_empty() {
            prints
                .entry(name)
                .or_default()
                .extend(d.fingerprints.iter().cloned());
        }
    }
    (counts, prints)
}

impl From<&LabelFinding> for Label {
    fn from(l: &LabelFinding) -> Self {
        Self {
            level: l.level.as_str(),
            source: l.source.as_str(),
        }
    }
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_micros(*t))
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
