//! Why a rule did not match, in words: the first failing condition of a rule, rendered with the
//! request's and the report's facts (never content: names, types, counts, labels).

use crate::inspect::{DetectorKind, FileReport, Level, Report, Verdict};
use crate::policy::Policy;
use crate::policy::decision::RequestFacts;
use crate::policy::eval::Ctx;
use crate::policy::rule::{FileMiss, Miss, Rule, TextMiss};

/// Why `rule` did not match, from its first failing condition.
pub(crate) fn why(
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

pub(crate) fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Encrypted => "yes",
        Verdict::NotEncrypted => "no",
        Verdict::Unknown => "unknown",
    }
}

pub(crate) fn file_name(f: &FileReport) -> &str {
    f.name.as_deref().unwrap_or("(unnamed)")
}
