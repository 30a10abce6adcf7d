//! `sluis explain`: the decision for one request, the rule that made it, and for every rule
//! above it the first condition that did not hold, in words an admin can act on.
//!
//! The walk here mirrors `eval` with the same condition checks; the decision printed is the one
//! the proxy API returns (`check_request`, then `evaluate_body` when the body matters), so the
//! explanation can never disagree with the proxy.

use std::io::{self, Write};

use crate::inspect::{DetectorKind, FileReport, Level, Report, Verdict};
use crate::policy::Policy;
use crate::policy::compile::FIRST_CATEGORY;
use crate::policy::decision::{
    ConnectDecision, ConnectFacts, Decision, RequestCheck, RequestFacts,
};
use crate::policy::eval::{Ctx, PathMatches};
use crate::policy::rule::{FileMiss, Miss, Rule, TextMiss};

/// Writes the explanation and returns the decision.
pub(crate) fn render(
    policy: &Policy,
    facts: &RequestFacts<'_>,
    report: Option<&Report>,
    out: &mut dyn Write,
) -> io::Result<Decision> {
    let ctx = policy.ctx(facts.host, facts.client, facts.user);
    let dest = policy.destination(&ctx);
    writeln!(
        out,
        "policy    {} ({}, {} files)",
        policy.version(),
        policy.dir().display(),
        policy.files.len()
    )?;
    writeln!(
        out,
        "request   {} {}://{}:{}{}  client {}  body: {}",
        facts.method,
        facts.scheme,
        facts.host,
        facts.port,
        facts.path,
        facts.client,
        if facts.has_body { "yes" } else { "no" }
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
    writeln!(out, "host      {}: {side}{category}{upload}", ctx.key)?;
    if facts.scheme == "https" {
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
        if let ConnectDecision::Block(d) = connect {
            writeln!(out, "decision  block ({}) at CONNECT", d.mode)?;
            return Ok(d);
        }
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

/// Why `rule` did not match, from its first failing condition.
fn why(
    policy: &Policy,
    rule: &Rule,
    miss: Miss,
    ctx: &Ctx<'_>,
    facts: &RequestFacts<'_>,
    report: Option<&Report>,
) -> String {
    let host = &ctx.key;
    match miss {
        Miss::Destination => {
            let (is, wants) = if ctx.internal {
                ("internal", "external")
            } else {
                ("external", "internal")
            };
            format!("destination is {is}, rule wants {wants}")
        }
        Miss::Category => {
            let wanted: Vec<&str> = rule.dest.categories.iter().map(|(_, n)| &**n).collect();
            let actual = policy
                .destination(ctx)
                .category
                .map(|c| format!(" (it is in {c})"))
                .unwrap_or_default();
            format!("{host} is not in category {}{actual}", wanted.join(", "))
        }
        Miss::Host => format!("{host} is not in the rule's host list"),
        Miss::UploadEndpoint if ctx.upload => {
            format!("{host} is an upload endpoint, rule wants one that is not")
        }
        Miss::UploadEndpoint => format!("{host} is not an upload endpoint"),
        Miss::Client => {
            let nets: Vec<String> = rule.dest.clients.iter().map(ToString::to_string).collect();
            format!("client {} is not in {}", ctx.client, nets.join(", "))
        }
        Miss::User => match ctx.user {
            Some(u) => format!("user {u} is not one of {}", rule.dest.users.join(", ")),
            None => "no authenticated proxy user".to_owned(),
        },
        Miss::Method => format!(
            "method {} is not {}",
            facts.method,
            rule.head.methods.join(", ")
        ),
        Miss::Body if facts.has_body => "request has a body, rule wants none".to_owned(),
        Miss::Body => "request has no body".to_owned(),
        Miss::Path => {
            let pats = policy
                .path_sources
                .get(rule.head.paths.clone())
                .unwrap_or_default();
            format!("path {} matches none of {}", facts.path, pats.join(", "))
        }
        Miss::HitLimit => match report.is_some_and(Report::hit_limit) {
            true => "inspection hit a limit, rule wants a complete report".to_owned(),
            false => "inspection hit no limit".to_owned(),
        },
        Miss::Label => {
            let min = rule
                .content
                .as_ref()
                .and_then(|c| c.label)
                .unwrap_or(Level::Public);
            let found = report.and_then(Report::highest_label).map(|l| l.level);
            label_miss("", found, min)
        }
        Miss::Detector(kind) => {
            let min = rule
                .content
                .as_ref()
                .and_then(|c| min_of(&c.detectors, kind))
                .unwrap_or(1);
            detector_miss("", report.map_or(0, |r| r.detector_count(kind)), kind, min)
        }
        Miss::Text(m) => text_miss(rule, m, report),
        Miss::File => file_misses(rule, report),
    }
}

fn text_miss(rule: &Rule, m: TextMiss, report: Option<&Report>) -> String {
    let text = rule.content.as_ref().and_then(|c| c.text.as_ref());
    let found = report.map(|r| &r.text);
    match m {
        TextMiss::Label => {
            let min = text.and_then(|t| t.label).unwrap_or(Level::Public);
            label_miss(
                "form/text fields: ",
                found.and_then(|t| t.label.as_ref()).map(|l| l.level),
                min,
            )
        }
        TextMiss::Detector(kind) => {
            let min = text.and_then(|t| min_of(&t.detectors, kind)).unwrap_or(1);
            let n = found.map_or(0, |t| crate::policy::rule::count(&t.detections, kind));
            detector_miss("form/text fields: ", n, kind, min)
        }
    }
}

fn file_misses(rule: &Rule, report: Option<&Report>) -> String {
    let Some(conds) = rule.content.as_ref().and_then(|c| c.file.as_ref()) else {
        return "no file".to_owned();
    };
    let files = report.map(|r| r.files.as_slice()).unwrap_or_default();
    if files.is_empty() {
        return "no file in the body".to_owned();
    }
    let each: Vec<String> = files
        .iter()
        .filter_map(|f| {
            conds
                .miss(f)
                .map(|m| format!("{}: {}", file_name(f), file_miss(conds, f, m)))
        })
        .collect();
    format!("no file matches ({})", each.join("; "))
}

fn file_miss(c: &crate::policy::rule::FileConds, f: &FileReport, m: FileMiss) -> String {
    let list = |v: &[crate::inspect::FileType]| {
        v.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
    };
    match m {
        FileMiss::Type => format!("type {}, rule wants {}", f.file_type, list(&c.types)),
        FileMiss::NotType => format!("type {} is excluded", f.file_type),
        FileMiss::Encrypted => {
            let want: Vec<&str> = c.encrypted.iter().map(|v| verdict_word(*v)).collect();
            format!(
                "encrypted: {}, rule wants {}",
                verdict_word(f.encryption.verdict),
                want.join(", ")
            )
        }
        FileMiss::Kind => {
            let want: Vec<&str> = c.kinds.iter().map(|k| k.as_str()).collect();
            let is = f.encryption.kind.map_or("none", |k| k.as_str());
            format!("encryption kind {is}, rule wants {}", want.join(", "))
        }
        FileMiss::MinSize => format!(
            "{} bytes, rule wants at least {}",
            f.size,
            c.min_size.unwrap_or(0)
        ),
        FileMiss::MaxSize => format!(
            "{} bytes, rule wants at most {}",
            f.size,
            c.max_size.unwrap_or(0)
        ),
        FileMiss::Label => label_miss(
            "",
            f.label.as_ref().map(|l| l.level),
            c.label.unwrap_or(Level::Public),
        ),
        FileMiss::Detector(kind) => {
            let n = crate::policy::rule::count(&f.detections, kind);
            detector_miss("", n, kind, min_of(&c.detectors, kind).unwrap_or(1))
        }
        FileMiss::Form if f.field.is_some() => {
            "sent as a form file, rule wants a raw body".to_owned()
        }
        FileMiss::Form => "not sent as a form file".to_owned(),
    }
}

fn label_miss(prefix: &str, found: Option<Level>, min: Level) -> String {
    match found {
        Some(l) => format!("{prefix}highest label {l} is below {min}"),
        None => format!("{prefix}no classification label found (needs {min} or higher)"),
    }
}

fn detector_miss(prefix: &str, found: u64, kind: DetectorKind, min: u32) -> String {
    let name = detector_name(kind);
    if found == 0 {
        format!("{prefix}no {name} found (needs ≥ {min})")
    } else {
        format!("{prefix}{name} found {found}× (needs ≥ {min})")
    }
}

fn min_of(list: &[(DetectorKind, u32)], kind: DetectorKind) -> Option<u32> {
    list.iter().find(|(k, _)| *k == kind).map(|(_, n)| *n)
}

pub(crate) fn detector_name(kind: DetectorKind) -> &'static str {
    match kind {
        DetectorKind::Bsn => "BSN",
        DetectorKind::Iban => "IBAN",
        DetectorKind::PaymentCard => "payment card number",
        DetectorKind::PrivateKey => "private key",
        DetectorKind::CloudKey => "cloud access key",
        DetectorKind::ApiToken => "API token",
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Encrypted => "yes",
        Verdict::NotEncrypted => "no",
        Verdict::Unknown => "unknown",
    }
}

fn file_name(f: &FileReport) -> &str {
    f.name.as_deref().unwrap_or("(unnamed)")
}
