//! The policy files as written: serde mirrors of the TOML, one struct per table.
//!
//! Every struct denies unknown fields, so a typo is an error with its line. Values that can be
//! wrong on their own (host patterns, networks, regexes, enum names, sizes) are parsed inside
//! deserialization (`values`), so their errors carry the value's own span; what needs the whole
//! policy to check (category references, duplicate ids) keeps a `Spanned` for `compile`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::inspect::{DetectorKind, EncryptionKind, FileType, Level, Limits};
use crate::policy::decision::{Action, Mode};
use crate::policy::host::HostPattern;

pub(crate) use crate::policy::values::{
    Encrypted, InterceptPattern, LabelGuid, List, Method, MinCount, Name, Net, PathRegex, Size,
};

/// One policy file. Any file may hold any section; see `Policy::load` for how files combine.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) policy: Option<Spanned<RawSettings>>,
    pub(crate) internal: Option<Spanned<RawInternal>>,
    pub(crate) tls: Option<Spanned<RawTls>>,
    pub(crate) inspect: Option<Spanned<RawInspect>>,
    #[serde(default)]
    pub(crate) categories: BTreeMap<String, Spanned<RawCategory>>,
    #[serde(default)]
    pub(crate) rules: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) mode: Mode,
    #[serde(default = "allow")]
    pub(crate) default_action: Action,
    pub(crate) contact: RawContact,
    #[serde(default)]
    pub(crate) on_error: RawOnError,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContact {
    pub(crate) name: String,
    pub(crate) email: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) phone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOnError {
    #[serde(default = "block")]
    pub(crate) external: Action,
    #[serde(default = "allow")]
    pub(crate) internal: Action,
    pub(crate) reason_nl: Option<String>,
    pub(crate) reason_en: Option<String>,
    pub(crate) ksp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInternal {
    #[serde(default)]
    pub(crate) hosts: List<HostPattern>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    #[serde(default)]
    pub(crate) intercept: List<InterceptPattern>,
    #[serde(default)]
    pub(crate) bypass: List<HostPattern>,
    #[serde(default)]
    pub(crate) intercept_internal: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInspect {
    #[serde(default)]
    pub(crate) limits: Limits,
    #[serde(default)]
    pub(crate) markings: RawMarkings,
    #[serde(default)]
    pub(crate) labels: RawLabels,
}

/// Visible markings per level: `confidential = ["Vertrouwelijk", ...]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMarkings {
    #[serde(default)]
    pub(crate) public: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) internal: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) confidential: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) secret: Vec<Spanned<String>>,
}

/// Sensitivity labels: tenant GUID → level, and label name → level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLabels {
    #[serde(default)]
    pub(crate) guids: BTreeMap<LabelGuid, Name<Level>>,
    #[serde(default)]
    pub(crate) names: BTreeMap<String, Name<Level>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCategory {
    pub(crate) description: Option<String>,
    pub(crate) hosts: List<HostPattern>,
    /// Hosts that receive the uploads; members of the category as well.
    #[serde(default)]
    pub(crate) upload_hosts: List<HostPattern>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) id: Spanned<String>,
    pub(crate) action: Action,
    pub(crate) mode: Option<Mode>,
    pub(crate) reason_nl: String,
    pub(crate) reason_en: String,
    pub(crate) ksp: String,
    // Destination and client: known at CONNECT.
    pub(crate) destination: Option<DestKind>,
    pub(crate) category: Option<Spanned<List<String>>>,
    pub(crate) host: Option<List<HostPattern>>,
    pub(crate) upload_endpoint: Option<bool>,
    pub(crate) client: Option<List<Net>>,
    pub(crate) user: Option<List<String>>,
    // Request head.
    pub(crate) method: Option<List<Method>>,
    pub(crate) path: Option<List<PathRegex>>,
    pub(crate) body: Option<bool>,
    // Content, from the inspection report.
    pub(crate) file: Option<RawFileCond>,
    pub(crate) text: Option<RawTextCond>,
    pub(crate) label: Option<Name<Level>>,
    pub(crate) detectors: Option<BTreeMap<Name<DetectorKind>, MinCount>>,
    pub(crate) hit_limit: Option<bool>,
}

/// Conditions that one file of the body must meet, all together.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileCond {
    #[serde(rename = "type")]
    pub(crate) types: Option<List<Name<FileType>>>,
    pub(crate) not_type: Option<List<Name<FileType>>>,
    pub(crate) encrypted: Option<List<Encrypted>>,
    pub(crate) encryption_kind: Option<List<Name<EncryptionKind>>>,
    pub(crate) min_size: Option<Size>,
    pub(crate) max_size: Option<Size>,
    pub(crate) label: Option<Name<Level>>,
    pub(crate) detectors: Option<BTreeMap<Name<DetectorKind>, MinCount>>,
    pub(crate) form: Option<bool>,
}

/// Conditions on the body's text outside files (form fields, JSON, ...).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTextCond {
    pub(crate) label: Option<Name<Level>>,
    pub(crate) detectors: Option<BTreeMap<Name<DetectorKind>, MinCount>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DestKind {
    Internal,
    External,
}

fn allow() -> Action {
    Action::Allow
}

fn block() -> Action {
    Action::Block
}

impl Default for RawOnError {
    fn default() -> Self {
        Self {
            external: Action::Block,
            internal: Action::Allow,
            reason_nl: None,
            reason_en: None,
            ksp: None,
        }
    }
}
