//! `sluis explain`: the decision for one request, the rule that made it, and for every rule
//! above it the first condition that did not hold, in words an admin can act on.
//!
//! The walk here mirrors `eval` with the same condition checks; the decision printed is the one
//! the proxy API returns (`check_request`, then `evaluate_body` when the body matters), so the
//! explanation can never disagree with the proxy.

use std::io::{self, Write};

use crate::inspect::Report;
use crate::policy::Policy;
use crate::policy::compile::FIRST_CATEGORY;
use crate::policy::decision::{
    ConnectDecision, ConnectFacts, Decision, RequestCheck, RequestFacts,
};
use crate::policy::eval::{Ctx, PathMatches};
use crate::policy::rule::Miss;
use crate::policy::why::{detector_name, file_name, verdict_word, why};

/// Writes the explanation and returns the decision.
pub(crate) fn render(
    policy: &Policy,
    facts: &RequestFacts<'_>,
    report: Option<&Report>,
    out: &mut dyn Write,
) -> io::Result<Decision> {
    let ctx = policy.ctx(facts.host, facts.client, facts.user);
    write_request(out, policy, facts, &ctx)?;
    if facts.scheme == "https"
        && let ConnectDecision::Block(d) = write_connect(out, policy, facts)?
    {
        writeln!(out, "decision  block ({}) at CONNECT", d.mode)?;
        return Ok(d);
    }
    if let Some(report) = report {
        write_files(out, report)?;
    }

    let empty = Report::default();
    let (decision, stage) = match policy.check_request(facts) {
        RequestCheck::Decided(d) => (d, "decided on the request head".to_owned()),
        RequestCheck::Inspect { hold } => {
            let r = report.unwrap_or(&empty);
            let how = if hold {
                "held until the verdict"
            } else {
                "streamed, verdict logged"
            };
            let note = if report.is_none() {
                "; no --file given: evaluated as a body without files or findings"
            } else {
                ""
            };
            (
                policy.evaluate_body(facts, r),
                format!("needs the body inspected ({how}){note}"),
            )
        }
    };
    writeln!(out, "stage     {stage}")?;
    writeln!(out, "rules")?;
    let body_report = facts.has_body.then(|| report.unwrap_or(&empty));
    write_rules(out, policy, &ctx, facts, body_report, &decision)?;
    if decision
        .rule
        .as_ref()
        .is_some_and(|r| r.id == "on-error-limit")
    {
        writeln!(
            out,
            "  inspection hit a limit: a content rule above could have matched on what was not read, so on_error decides"
        )?;
    }
    write_decision(out, policy, &decision)?;
    Ok(decision)
}

fn write_request(
    out: &mut dyn Write,
    policy: &Policy,
    facts: &RequestFacts<'_>,
    ctx: &Ctx<'_>,
) -> io::Result<()> {
    let dest = policy.destination(ctx);
    let (version, dir, files) = (policy.version(), policy.dir().display(), policy.files.len());
    writeln!(out, "policy    {version} ({dir}, {files} files)")?;
    let body = if facts.has_body { "yes" } else { "no" };
    writeln!(
        out,
        "request   {} {}://{}:{}{}  client {}  body: {body}",
        facts.method, facts.scheme, facts.host, facts.port, facts.path, facts.client
    )?;
    let side = if dest.internal {
        "internal"
    } else {
        "external"
    };
    let category = match dest.category.as_deref() {
        Some(c) => {
            let entry = policy
                .categories
                .iter()
                .position(|x| &*x.name == c)
                .and_then(|i| u32::try_from(i).ok())
                .and_then(|i| policy.hosts.matched_by(&ctx.key, FIRST_CATEGORY + i))
                .map(|p| format!(" (entry {p})"))
                .unwrap_or_default();
            format!(", category {c}{entry}")
        }
        None => String::new(),
    };
    let upload = if ctx.upload { ", upload endpoint" } else { "" };
    writeln!(out, "host      {}: {side}{category}{upload}", ctx.key)
}

fn write_connect(
    out: &mut dyn Write,
    policy: &Policy,
    facts: &RequestFacts<'_>,
) -> io::Result<ConnectDecision> {
    let connect = policy.check_connect(&ConnectFacts {
        client: facts.client,
        user: facts.user,
        host: facts.host,
        port: facts.port,
    });
    let by = connect
        .decision()
        .rule
        .as_ref()
        .map(|r| format!(" (rule {})", r.id))
        .unwrap_or_default();
    writeln!(out, "connect   {}{by}", connect.as_str())?;
    Ok(connect)
}

fn write_files(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(out, "files")?;
    for f in &report.files {
        let label = f.label.as_ref().map_or("none", |l| l.level.as_str());
        let det = if f.detections.is_empty() {
            "none".to_owned()
        } else {
            f.detections
                .iter()
                .map(|d| format!("{} {}", detector_name(d.kind), d.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let kind = f
            .encryption
            .kind
            .map(|k| format!(" {k}"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {}  {}, {} bytes, encrypted: {}{kind} ({}), label: {label}, detectors: {det}",
            file_name(f),
            f.file_type,
            f.size,
            verdict_word(f.encryption.verdict),
            f.encryption.reason
        )?;
    }
    if report.hit_limit() {
        writeln!(
            out,
            "  inspection hit a limit: the report may be incomplete"
        )?;
    }
    Ok(())
}

fn write_rules(
    out: &mut dyn Write,
    policy: &Policy,
    ctx: &Ctx<'_>,
    facts: &RequestFacts<'_>,
    report: Option<&Report>,
    decision: &Decision,
) -> io::Result<()> {
    let paths = PathMatches::new(policy, facts.path);
    let width = policy
        .rules
        .iter()
        .map(|r| r.info.id.len())
        .max()
        .unwrap_or(0);
    for (i, rule) in policy.rules.iter().enumerate() {
        let miss = rule
            .dest
            .miss(&ctx.dest_view())
            .or_else(|| rule.head.miss(&paths.head_view(facts)))
            .or_else(|| match (&rule.content, report) {
                (None, _) => None,
                (Some(_), None) => Some(Miss::Body),
                (Some(c), Some(r)) => c.miss(r),
            });
        let id = &rule.info.id;
        match miss {
            Some(m) => writeln!(
                out,
                "  {id:width$}  no: {}",
                why(policy, rule, m, ctx, facts, report)
            )?,
            None => {
                writeln!(out, "  {id:width$}  MATCH ({}:{})", rule.file, rule.line)?;
                let rest = policy.rules.len() - i - 1;
                if rest > 0 {
                    writeln!(out, "  ({rest} rules below not evaluated)")?;
                }
                return Ok(());
            }
        }
    }
    if decision.rule.is_none() {
        writeln!(out, "  no rule matched: default action {}", decision.action)?;
    }
    Ok(())
}

fn write_decision(out: &mut dyn Write, policy: &Policy, d: &Decision) -> io::Result<()> {
    let outcome = if d.blocks() {
        "BLOCK".to_owned()
    } else if d.would_block() {
        "allow (monitor: would block)".to_owned()
    } else {
        d.action.to_string()
    };
    match &d.rule {
        Some(r) => {
            writeln!(
                out,
                "decision  {outcome} ({}) by {}  [KSP {}]",
                d.mode, r.id, r.ksp
            )?;
            writeln!(out, "  nl: {}", r.reason_nl)?;
            writeln!(out, "  en: {}", r.reason_en)?;
        }
        None => writeln!(out, "decision  {outcome} ({}) by default_action", d.mode)?,
    }
    if d.action == crate::policy::Action::Block {
        writeln!(out, "contact   {}", policy.contact().line())?;
    }
    Ok(())
}
