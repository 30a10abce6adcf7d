//! The questions the proxy asks and the answers it gets.
//!
//! These types are the contract between the policy and its callers (the proxy, the audit log,
//! the block page): plain data, no references into the compiled policy, cheap to clone.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What is known when a client sends `CONNECT host:port`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectFacts<'a> {
    pub client: IpAddr,
    /// The authenticated proxy user, when proxy authentication is in use.
    pub user: Option<&'a str>,
    pub host: &'a str,
    pub port: u16,
}

/// What is known about a request once its head has arrived.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub client: IpAddr,
    pub user: Option<&'a str>,
    pub method: &'a str,
    /// `"http"` or `"https"`.
    pub scheme: &'a str,
    /// Lowercase, no port, no brackets around IPv6 literals (the policy tolerates all three).
    pub host: &'a str,
    pub port: u16,
    /// The path without the query string.
    pub path: &'a str,
    /// The request carries a body (Content-Length > 0 or chunked).
    pub has_body: bool,
}

/// The answer to a `CONNECT`.
#[derive(Debug, Clone)]
pub enum ConnectDecision {
    /// Refuse the tunnel: a rule blocks every request to this destination.
    Block(Decision),
    /// Copy bytes both ways without looking (bypass list, or not on the intercept list).
    Tunnel(Decision),
    /// Terminate TLS and apply the policy to each request inside.
    Intercept(Decision),
}

/// The answer to a request head.
#[derive(Debug, Clone)]
pub enum RequestCheck {
    /// The head alone decides; the body (if any) need not be inspected.
    Decided(Decision),
    /// The outcome depends on the body: inspect it, then call `Policy::evaluate_body`.
    /// `hold`: some enforce-mode outcome could block, so nothing may reach the destination until
    /// the verdict. `false`: every possible block is monitor-only; stream the body and log.
    Inspect { hold: bool },
}

/// An outcome, with the rule that produced it (for the block page and the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The rule that decided; `None` when no rule matched (the policy's `default_action`) or
    /// for a TLS-list decision at `CONNECT`.
    pub rule: Option<Arc<RuleInfo>>,
    pub action: Action,
    pub mode: Mode,
    pub destination: Destination,
}

/// The part of a rule that a block page and an audit event show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    pub id: String,
    pub reason_nl: String,
    pub reason_en: String,
    /// The section of the code of conduct the rule enforces, e.g. `"1.4"` or `"privacy-4"`.
    pub ksp: String,
}

/// Where a request goes, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The host is one of the company's own (`[internal] hosts`).
    pub internal: bool,
    /// The most specific service category the host is listed in, if any.
    pub category: Option<Arc<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let it through.
    Allow,
    /// Let it through and mark the exchange for the audit log.
    Log,
    /// Refuse it (in enforce mode) or record that it would have been refused (in monitor mode).
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Blocks block.
    #[default]
    Enforce,
    /// Blocks are logged as would-block and the exchange goes through.
    Monitor,
}

/// Why inspection could not give a complete answer; `Policy::on_error` decides what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InspectFailure {
    /// The report records a limit or malformation (`Report::hit_limit`).
    Limit,
    /// Inspection did not finish in time.
    Timeout,
    /// The body was larger than the proxy may hold.
    TooLarge,
    /// Inspection failed for another reason.
    Failed,
}

/// Who to ask about a block, as shown on the block page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub name: String,
    pub email: Option<String>,
    pub url: Option<String>,
    pub phone: Option<String>,
}

/// Counts describing a compiled policy, for `sluis check` and the admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySummary {
    pub version: String,
    pub files: Vec<String>,
    pub mode: Mode,
    pub default_action: Action,
    pub rules: usize,
    /// Rules whose effective mode is monitor.
    pub monitor_rules: usize,
    pub block_rules: usize,
    /// Rules with content conditions (decided after inspection).
    pub content_rules: usize,
    pub categories: usize,
    pub per_category: Vec<CategorySummary>,
    /// Host entries over all categories (upload endpoints included).
    pub hosts: usize,
    pub upload_hosts: usize,
    pub internal_domains: usize,
    /// `None` = every host is intercepted (`intercept = ["*"]`).
    pub tls_intercept: Option<usize>,
    pub tls_bypass: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategorySummary {
    pub name: String,
    pub hosts: usize,
    pub upload_hosts: usize,
}

// === impl ConnectDecision ===

impl ConnectDecision {
    pub fn decision(&self) -> &Decision {
        match self {
            Self::Block(d) | Self::Tunnel(d) | Self::Intercept(d) => d,
        }
    }

    /// Stable name for metrics and audit.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Block(_) => "block",
            Self::Tunnel(_) => "tunnel",
            Self::Intercept(_) => "intercept",
        }
    }
}

// === impl Decision ===

impl Decision {
    /// The exchange must be refused.
    pub fn blocks(&self) -> bool {
        self.action == Action::Block && self.mode == Mode::Enforce
    }

    /// A monitor-mode block: let it through, log that it would have been refused.
    pub fn would_block(&self) -> bool {
        self.action == Action::Block && self.mode == Mode::Monitor
    }

    /// The exchange belongs in the audit log as a finding (logged, blocked or would-block).
    pub fn is_finding(&self) -> bool {
        self.action != Action::Allow
    }

    /// The rule id, or `"-"` when no rule decided.
    pub fn rule_id(&self) -> &str {
        self.rule.as_ref().map_or("-", |r| r.id.as_str())
    }
}

// === impl Action, Mode, InspectFailure ===

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Log => "log",
            Self::Block => "block",
        }
    }
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Monitor => "monitor",
        }
    }
}

impl InspectFailure {
    pub const ALL: [InspectFailure; 4] = [Self::Limit, Self::Timeout, Self::TooLarge, Self::Failed];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::Timeout => "timeout",
            Self::TooLarge => "too_large",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Destination ===

impl Destination {
    /// `internal`, `external`, or `external (cloud-storage)`.
    pub fn describe(&self) -> String {
        let side = if self.internal {
            "internal"
        } else {
            "external"
        };
        match &self.category {
            Some(c) => format!("{side} ({c})"),
            None => side.to_owned(),
        }
    }
}

// === impl Contact ===

impl Contact {
    /// One line for a block page: the name and every way to reach them.
    pub fn line(&self) -> String {
        let mut parts = vec![self.name.as_str()];
        parts.extend(self.email.as_deref());
        parts.extend(self.phone.as_deref());
        parts.extend(self.url.as_deref());
        parts.join(", ")
    }
}
