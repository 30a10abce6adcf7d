//! Answering the proxy: `classify`, `check_connect`, `check_request`, `evaluate_body`,
//! `on_error`. Every answer walks the compiled rules in order; nothing here allocates per rule.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;

use regex::SetMatches;

use crate::inspect::Report;
use crate::policy::Policy;
use crate::policy::compile::{BYPASS, FIRST_CATEGORY, INTERCEPT, INTERNAL, UPLOAD};
use crate::policy::decision::{
    Action, ConnectDecision, ConnectFacts, Decision, Destination, InspectFailure, Mode,
    RequestCheck, RequestFacts,
};
use crate::policy::host::{HostKey, HostMatch};
use crate::policy::rule::{DestView, HeadView, Rule};

/// What the policy knows about one destination and client, looked up once per question.
pub(crate) struct Ctx<'a> {
    pub(crate) key: HostKey<'a>,
    pub(crate) hosts: HostMatch,
    pub(crate) internal: bool,
    pub(crate) upload: bool,
    pub(crate) client: IpAddr,
    pub(crate) user: Option<&'a str>,
}

/// Path patterns, matched at most once per request and only if a rule asks, against the
/// normalised path (`path::normalize`).
pub(crate) struct PathMatches<'a> {
    policy: &'a Policy,
    path: Cow<'a, str>,
    matches: OnceCell<Option<SetMatches>>,
}

// === impl Policy ===

impl Policy {
    /// Whether `host` is internal, and its most specific category.
    pub fn classify(&self, host: &str) -> Destination {
        let ctx = self.ctx(host, IpAddr::from([0, 0, 0, 0]), None);
        self.destination(&ctx)
    }

    /// Decides a `CONNECT`: block, tunnel or intercept.
    pub fn check_connect(&self, facts: &ConnectFacts<'_>) -> ConnectDecision {
        let ctx = self.ctx(facts.host, facts.client, facts.user);
        let view = ctx.dest_view();
        let mut decided = None;
        // The first rule whose destination part matches is the first that could decide some
        // request to this host. Only if it looks at nothing else does it decide the tunnel.
        for rule in &self.rules {
            if rule.dest.miss(&view).is_some() {
                continue;
            }
            if rule.connect_decidable() {
                let d = self.rule_decision(rule, &ctx);
                if d.blocks() {
                    return ConnectDecision::Block(d);
                }
                decided = Some(d);
            }
            break;
        }
        let d = decided.unwrap_or_else(|| Decision {
            rule: None,
            action: Action::Allow,
            mode: self.mode,
            destination: self.destination(&ctx),
        });
        if self.intercepts(&ctx) {
            ConnectDecision::Intercept(d)
        } else {
            ConnectDecision::Tunnel(d)
        }
    }

    /// Decides on the request head, or asks for the body to be inspected.
    pub fn check_request(&self, facts: &RequestFacts<'_>) -> RequestCheck {
        let ctx = self.ctx(facts.host, facts.client, facts.user);
        let paths = PathMatches::new(self, facts.path);
        let dest = ctx.dest_view();
        let head = paths.head_view(facts);
        let mut inspect = false;
        let mut hold = false;
        for rule in &self.rules {
            // Content conditions never hold for a request without a body.
            if rule.content.is_some() && !facts.has_body {
                continue;
            }
            if rule.dest.miss(&dest).is_some() || rule.head.miss(&head).is_some() {
                continue;
            }
            if rule.content.is_some() {
                inspect = true;
                hold |= rule.blocks_enforce();
                continue;
            }
            if inspect {
                hold |= rule.blocks_enforce();
                return self.inspect(hold, &ctx);
            }
            return RequestCheck::Decided(self.rule_decision(rule, &ctx));
        }
        if inspect {
            hold |= self.default_action == Action::Block && self.mode == Mode::Enforce;
            return self.inspect(hold, &ctx);
        }
        RequestCheck::Decided(self.default_decision(&ctx))
    }

    /// Decides with the inspection report, walking the rules from the top.
    pub fn evaluate_body(&self, facts: &RequestFacts<'_>, report: &Report) -> Decision {
        let ctx = self.ctx(facts.host, facts.client, facts.user);
        let paths = PathMatches::new(self, facts.path);
        let dest = ctx.dest_view();
        let head = paths.head_view(facts);
        let limited = report.hit_limit();
        // A content rule above the match that missed on a report with a limit hit might have
        // matched on the full content: the outcome is then not proven.
        let mut uncertain = false;
        for rule in &self.rules {
            if rule.dest.miss(&dest).is_some() || rule.head.miss(&head).is_some() {
                continue;
            }
            if let Some(content) = &rule.content
                && content.miss(report).is_some()
            {
                uncertain |= content.hit_limit.is_none();
                continue;
            }
            if limited && uncertain && rule.action != Action::Block {
                return self.on_error_at(&ctx, InspectFailure::Limit);
            }
            return self.rule_decision(rule, &ctx);
        }
        if limited && uncertain {
            return self.on_error_at(&ctx, InspectFailure::Limit);
        }
        self.default_decision(&ctx)
    }

    /// Decides when inspection failed, timed out or went over a limit: the `[policy.on_error]`
    /// action for internal or external destinations.
    pub fn on_error(&self, facts: &RequestFacts<'_>, what: InspectFailure) -> Decision {
        let ctx = self.ctx(facts.host, facts.client, facts.user);
        self.on_error_at(&ctx, what)
    }

    pub(crate) fn ctx<'a>(&self, host: &'a str, client: IpAddr, user: Option<&'a str>) -> Ctx<'a> {
        let key = HostKey::new(host);
        let end =
            FIRST_CATEGORY.saturating_add(u32::try_from(self.categories.len()).unwrap_or(u32::MAX));
        let hosts = self.hosts.lookup(&key, FIRST_CATEGORY..end);
        Ctx {
            internal: hosts.contains(INTERNAL),
            upload: hosts.contains(UPLOAD),
            key,
            hosts,
            client: client.to_canonical(),
            user,
        }
    }

    pub(crate) fn destination(&self, ctx: &Ctx<'_>) -> Destination {
        let category = ctx
            .hosts
            .primary()
            .and_then(|set| set.checked_sub(FIRST_CATEGORY))
            .and_then(|i| self.categories.get(i as usize))
            .map(|c| c.name.clone());
        Destination {
            internal: ctx.internal,
            category,
        }
    }

    pub(crate) fn rule_decision(&self, rule: &Rule, ctx: &Ctx<'_>) -> Decision {
        Decision {
            rule: Some(rule.info.clone()),
            action: rule.action,
            mode: rule.mode,
            destination: self.destination(ctx),
        }
    }

    pub(crate) fn default_decision(&self, ctx: &Ctx<'_>) -> Decision {
        Decision {
            rule: None,
            action: self.default_action,
            mode: self.mode,
            destination: self.destination(ctx),
        }
    }

    pub(crate) fn on_error_at(&self, ctx: &Ctx<'_>, what: InspectFailure) -> Decision {
        let [limit, timeout, too_large, failed] = &self.on_error.infos;
        let info = match what {
            InspectFailure::Limit => limit,
            InspectFailure::Timeout => timeout,
            InspectFailure::TooLarge => too_large,
            InspectFailure::Failed => failed,
        };
        Decision {
            rule: Some(info.clone()),
            action: self.on_error_action(ctx.internal),
            mode: self.on_error.mode,
            destination: self.destination(ctx),
        }
    }

    fn on_error_action(&self, internal: bool) -> Action {
        if internal {
            self.on_error.internal
        } else {
            self.on_error.external
        }
    }

    fn inspect(&self, hold: bool, ctx: &Ctx<'_>) -> RequestCheck {
        let on_error_blocks = self.on_error_action(ctx.internal) == Action::Block
            && self.on_error.mode == Mode::Enforce;
        RequestCheck::Inspect {
            hold: hold || on_error_blocks,
        }
    }

    /// The `[tls]` lists: bypass wins, internal hosts tunnel unless `intercept_internal`.
    pub(crate) fn intercepts(&self, ctx: &Ctx<'_>) -> bool {
        if ctx.hosts.contains(BYPASS) || (ctx.internal && !self.tls.intercept_internal) {
            return false;
        }
        self.tls.intercept_all || ctx.hosts.contains(INTERCEPT)
    }
}

// === impl Ctx ===

impl Ctx<'_> {
    pub(crate) fn dest_view(&self) -> DestView<'_> {
        DestView {
            hosts: &self.hosts,
            internal: self.internal,
            upload_endpoint: self.upload,
            client: self.client,
            user: self.user,
        }
    }
}

// === impl PathMatches ===

impl<'a> PathMatches<'a> {
    pub(crate) fn new(policy: &'a Policy, path: &'a str) -> Self {
        Self {
            policy,
            path: crate::policy::path::normalize(path),
            matches: OnceCell::new(),
        }
    }

    pub(crate) fn matched(&self, i: usize) -> bool {
        let m = self.matches.get_or_init(|| {
            self.policy
                .paths
                .as_ref()
                .map(|set| set.matches(&self.path))
        });
        m.as_ref().is_some_and(|m| i < m.len() && m.matched(i))
    }

    pub(crate) fn head_view<'s>(&'s self, facts: &'s RequestFacts<'_>) -> HeadView<'s> {
        HeadView {
            method: facts.method,
            has_body: facts.has_body,
            paths: self,
        }
    }
}
