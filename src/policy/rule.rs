//! A compiled rule and how its conditions match.
//!
//! Conditions come in three groups, by when they can be known:
//! - destination and client (`destination`, `category`, `host`, `upload_endpoint`, `client`,
//!   `user`): known at `CONNECT`;
//! - request head (`method`, `path`, `body`): known before any body byte;
//! - content (`file`, `text`, `label`, `detectors`, `hit_limit`): known after inspection.
//!
//! A rule matches when every condition it has matches. Each check returns the first condition
//! that fails (a [`Miss`]) so that `sluis explain` can say why a rule did not match.

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use ipnet::IpNet;

use crate::inspect::{
    DetectorKind, EncryptionKind, FileReport, FileType, LabelFinding, Level, Report, TextReport,
    Verdict,
};
use crate::policy::decision::{Action, Mode, RuleInfo};
use crate::policy::eval::PathMatches;
use crate::policy::host::{HostMatch, SetId};
use crate::policy::raw::DestKind;

/// One rule, ready to match.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) info: Arc<RuleInfo>,
    pub(crate) action: Action,
    /// The effective mode: the rule's own, else the policy's.
    pub(crate) mode: Mode,
    /// Where the rule is written, for `explain`.
    pub(crate) file: Arc<str>,
    pub(crate) line: usize,
    pub(crate) dest: DestConds,
    pub(crate) head: HeadConds,
    pub(crate) content: Option<ContentConds>,
}

/// Conditions on destination and client. Empty lists mean "no condition".
#[derive(Debug, Default)]
pub(crate) struct DestConds {
    pub(crate) destination: Option<DestKind>,
    /// Any of these categories (set ids and names).
    pub(crate) categories: Vec<(SetId, Arc<str>)>,
    /// The rule's own host list.
    pub(crate) host: Option<SetId>,
    pub(crate) upload_endpoint: Option<bool>,
    pub(crate) clients: Vec<IpNet>,
    /// Lowercase user names.
    pub(crate) users: Vec<String>,
}

/// Conditions on the request head.
#[derive(Debug, Default)]
pub(crate) struct HeadConds {
    pub(crate) methods: Vec<String>,
    /// Indices of this rule's patterns in the policy's `RegexSet`.
    pub(crate) paths: Range<usize>,
    pub(crate) body: Option<bool>,
}

/// Conditions on the inspection report.
///
/// `label` and `detectors` look at the whole body (the highest label over files and text,
/// detector counts summed over files and text); `file` needs one file that meets all of its
/// conditions; `text` looks at the body's text outside files only.
#[derive(Debug, Default)]
pub(crate) struct ContentConds {
    pub(crate) file: Option<FileConds>,
    pub(crate) text: Option<TextConds>,
    pub(crate) label: Option<Level>,
    pub(crate) detectors: Vec<(DetectorKind, u32)>,
    pub(crate) hit_limit: Option<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct FileConds {
    pub(crate) types: Vec<FileType>,
    pub(crate) not_types: Vec<FileType>,
    pub(crate) encrypted: Vec<Verdict>,
    pub(crate) kinds: Vec<EncryptionKind>,
    pub(crate) min_size: Option<u64>,
    pub(crate) max_size: Option<u64>,
    pub(crate) label: Option<Level>,
    pub(crate) detectors: Vec<(DetectorKind, u32)>,
    pub(crate) form: Option<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct TextConds {
    pub(crate) label: Option<Level>,
    pub(crate) detectors: Vec<(DetectorKind, u32)>,
}

/// What the destination/client conditions look at.
pub(crate) struct DestView<'a> {
    pub(crate) hosts: &'a HostMatch,
    pub(crate) internal: bool,
    /// The host is listed as an upload endpoint of some category.
    pub(crate) upload_endpoint: bool,
    pub(crate) client: IpAddr,
    pub(crate) user: Option<&'a str>,
}

/// What the head conditions look at.
pub(crate) struct HeadView<'a> {
    pub(crate) method: &'a str,
    pub(crate) has_body: bool,
    pub(crate) paths: &'a PathMatches<'a>,
}

/// The first condition of a rule that does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    Destination,
    Category,
    Host,
    UploadEndpoint,
    Client,
    User,
    Method,
    Path,
    Body,
    HitLimit,
    Label,
    Detector(DetectorKind),
    Text(TextMiss),
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextMiss {
    Label,
    Detector(DetectorKind),
}

/// Why one file does not meet a rule's `file` conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileMiss {
    Type,
    NotType,
    Encrypted,
    Kind,
    MinSize,
    MaxSize,
    Label,
    Detector(DetectorKind),
    Form,
}

// === impl Rule ===

impl Rule {
    /// The rule looks only at destination and client, so a `CONNECT` can be decided by it.
    pub(crate) fn connect_decidable(&self) -> bool {
        self.head.methods.is_empty()
            && self.head.paths.is_empty()
            && self.head.body.is_none()
            && self.content.is_none()
    }

    pub(crate) fn blocks_enforce(&self) -> bool {
        self.action == Action::Block && self.mode == Mode::Enforce
    }
}

// === impl DestConds ===

impl DestConds {
    pub(crate) fn miss(&self, v: &DestView<'_>) -> Option<Miss> {
        if let Some(want) = self.destination
            && (want == DestKind::Internal) != v.internal
        {
            return Some(Miss::Destination);
        }
        if !self.categories.is_empty() && !self.categories.iter().any(|(s, _)| v.hosts.contains(*s))
        {
            return Some(Miss::Category);
        }
        if let Some(set) = self.host
            && !v.hosts.contains(set)
        {
            return Some(Miss::Host);
        }
        if let Some(want) = self.upload_endpoint
            && v.upload_endpoint != want
        {
            return Some(Miss::UploadEndpoint);
        }
        if !self.clients.is_empty() && !self.clients.iter().any(|n| n.contains(&v.client)) {
            return Some(Miss::Client);
        }
        if !self.users.is_empty() {
            let known = v
                .user
                .is_some_and(|u| self.users.iter().any(|x| x.eq_ignore_ascii_case(u)));
            if !known {
                return Some(Miss::User);
            }
        }
        None
    }
}

// === impl HeadConds ===

impl HeadConds {
    pub(crate) fn miss(&self, v: &HeadView<'_>) -> Option<Miss> {
        if !self.methods.is_empty()
            && !self
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(v.method))
        {
            return Some(Miss::Method);
        }
        if let Some(want) = self.body
            && want != v.has_body
        {
            return Some(Miss::Body);
        }
        if !self.paths.is_empty() && !self.paths.clone().any(|i| v.paths.matched(i)) {
            return Some(Miss::Path);
        }
        None
    }
}

// === impl ContentConds ===

impl ContentConds {
    pub(crate) fn miss(&self, report: &Report) -> Option<Miss> {
        if let Some(want) = self.hit_limit
            && report.hit_limit() != want
        {
            return Some(Miss::HitLimit);
        }
        if let Some(min) = self.label
            && !at_least(report.highest_label(), min)
        {
            return Some(Miss::Label);
        }
        for &(kind, min) in &self.detectors {
            if report.detector_count(kind) < u64::from(min) {
                return Some(Miss::Detector(kind));
            }
        }
        if let Some(text) = &self.text
            && let Some(m) = text.miss(&report.text)
        {
            return Some(Miss::Text(m));
        }
        if let Some(file) = &self.file
            && !report.files.iter().any(|f| file.miss(f).is_none())
        {
            return Some(Miss::File);
        }
        None
    }
}

// === impl TextConds ===

impl TextConds {
    pub(crate) fn miss(&self, text: &TextReport) -> Option<TextMiss> {
        if let Some(min) = self.label
            && !at_least(text.label.as_ref(), min)
        {
            return Some(TextMiss::Label);
        }
        for &(kind, min) in &self.detectors {
            if count(&text.detections, kind) < u64::from(min) {
                return Some(TextMiss::Detector(kind));
            }
        }
        None
    }
}

// === impl FileConds ===

impl FileConds {
    pub(crate) fn miss(&self, file: &FileReport) -> Option<FileMiss> {
        if !self.types.is_empty() && !self.types.contains(&file.file_type) {
            return Some(FileMiss::Type);
        }
        if self.not_types.contains(&file.file_type) {
            return Some(FileMiss::NotType);
        }
        if !self.encrypted.is_empty() && !self.encrypted.contains(&file.encryption.verdict) {
            return Some(FileMiss::Encrypted);
        }
        if !self.kinds.is_empty()
            && !file
                .encryption
                .kind
                .is_some_and(|k| self.kinds.contains(&k))
        {
            return Some(FileMiss::Kind);
        }
        if self.min_size.is_some_and(|min| file.size < min) {
            return Some(FileMiss::MinSize);
        }
        if self.max_size.is_some_and(|max| file.size > max) {
            return Some(FileMiss::MaxSize);
        }
        if let Some(min) = self.label
            && !at_least(file.label.as_ref(), min)
        {
            return Some(FileMiss::Label);
        }
        for &(kind, min) in &self.detectors {
            if count(&file.detections, kind) < u64::from(min) {
                return Some(FileMiss::Detector(kind));
            }
        }
        if let Some(want) = self.form
            && file.field.is_some() != want
        {
            return Some(FileMiss::Form);
        }
        None
    }
}

/// A label was found, at `min` or higher.
fn at_least(label: Option<&LabelFinding>, min: Level) -> bool {
    label.is_some_and(|l| l.level >= min)
}

/// Sum of a detector's counts in one list of detections.
pub(crate) fn count(detections: &[crate::inspect::Detection], kind: DetectorKind) -> u64 {
    detections
        .iter()
        .filter(|d| d.kind == kind)
        .map(|d| u64::from(d.count))
        .sum()
}
