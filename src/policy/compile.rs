//! From parsed files to a [`Policy`]: merge the files, resolve names, build the host index, the
//! path `RegexSet` and the inspection engine, and reject contradictions.
//!
//! Problems are collected rather than returned at the first one, so `sluis check` shows them
//! all; a policy with any problem is never built.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use regex::RegexSet;
use toml::Spanned;

use crate::inspect::{Engine, EngineConfig, EngineError, LabelTable, Level, Marking};
use crate::policy::Policy;
use crate::policy::compile_rule::compile_rule;
use crate::policy::decision::{Contact, InspectFailure, RuleInfo};
use crate::policy::error::{Issue, PolicyError, span_line};
use crate::policy::host::{HostIndex, SetId};
use crate::policy::load::{self, Source};
use crate::policy::raw::{InterceptPattern, RawCategory, RawFile, RawInspect, RawSettings};
use crate::policy::{Category, OnError, Tls};

/// Host sets every policy has, in this order; categories follow.
pub(crate) const INTERNAL: SetId = 0;
pub(crate) const INTERCEPT: SetId = 1;
pub(crate) const BYPASS: SetId = 2;
pub(crate) const UPLOAD: SetId = 3;
pub(crate) const FIRST_CATEGORY: SetId = 4;

/// Collects problems, each located in a source file.
pub(crate) struct Problems<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) issues: Vec<Issue>,
}

/// A section that may appear in only one file, with where it was found.
type Once<'a, T> = Option<(&'a Source, Spanned<T>)>;

/// Loads and compiles the policy in `dir`.
pub(crate) fn compile(dir: &Path) -> Result<Policy, PolicyError> {
    let sources = load::read_dir(dir)?;
    let mut parsed = Vec::new();
    let mut issues = Vec::new();
    for source in &sources {
        match load::parse(source) {
            Ok(raw) => parsed.push((source, raw)),
            Err(issue) => issues.push(issue),
        }
    }
    if let Some(e) = PolicyError::from_issues(issues) {
        return Err(e);
    }
    let mut p = Problems {
        dir,
        issues: Vec::new(),
    };
    let policy = build(&mut p, &sources, parsed);
    match (PolicyError::from_issues(p.issues), policy) {
        (None, Some(policy)) => Ok(policy),
        (Some(e), _) => Err(e),
        (None, None) => Err(PolicyError::one(Issue::new(
            dir,
            None,
            "",
            "policy could not be built",
        ))),
    }
}

fn build<'a>(
    p: &mut Problems<'_>,
    sources: &'a [Source],
    parsed: Vec<(&'a Source, RawFile)>,
) -> Option<Policy> {
    let mut settings: Once<'a, RawSettings> = None;
    let mut internal = None;
    let mut tls = None;
    let mut inspect: Once<'a, RawInspect> = None;
    let mut categories: BTreeMap<String, (&'a Source, Spanned<RawCategory>)> = BTreeMap::new();
    let mut rules = Vec::new();
    for (src, raw) in parsed {
        p.once(&mut settings, src, raw.policy, "policy");
        p.once(&mut internal, src, raw.internal, "internal");
        p.once(&mut tls, src, raw.tls, "tls");
        p.once(&mut inspect, src, raw.inspect, "inspect");
        for (name, cat) in raw.categories {
            p.category(&mut categories, src, name, cat);
        }
        rules.extend(raw.rules.into_iter().enumerate().map(|(i, r)| (src, i, r)));
    }

    let mut hosts = HostIndex::default();
    for _ in 0..FIRST_CATEGORY {
        hosts.new_set();
    }
    let mut by_name = HashMap::new();
    let mut cats = Vec::new();
    for (name, (_, cat)) in &categories {
        let set = hosts.new_set();
        let cat = cat.get_ref();
        for h in &cat.hosts.0 {
            hosts.insert(set, h);
        }
        for h in &cat.upload_hosts.0 {
            hosts.insert(set, h);
            hosts.insert(UPLOAD, h);
        }
        let name: Arc<str> = Arc::from(name.as_str());
        by_name.insert(name.to_string(), (set, name.clone()));
        cats.push(Category {
            name,
            description: cat.description.clone().unwrap_or_default(),
            hosts: cat.hosts.0.len() + cat.upload_hosts.0.len(),
            upload_hosts: cat.upload_hosts.0.len(),
        });
    }

    let mut internal_count = 0;
    if let Some((_, raw)) = &internal {
        for h in &raw.get_ref().hosts.0 {
            hosts.insert(INTERNAL, h);
        }
        internal_count = raw.get_ref().hosts.0.len();
    }
    let tls = compile_tls(&mut hosts, tls.as_ref().map(|(_, t)| t.get_ref()));

    let Some((settings_src, settings)) = settings else {
        p.push(Issue::new(
            p.dir,
            None,
            "policy",
            "missing [policy] section (mode, default_action, contact)",
        ));
        return None;
    };
    let settings_span = settings.span();
    let settings = settings.into_inner();
    if rules.is_empty() {
        p.push(Issue::new(
            p.dir,
            None,
            "rules",
            "no rules: a policy needs at least one [[rules]] entry",
        ));
    }

    let mut seen_ids: HashMap<String, (Arc<str>, usize)> = HashMap::new();
    let mut paths = Vec::new();
    let mut compiled = Vec::new();
    for (src, index, raw) in rules {
        if let Some(rule) = compile_rule(
            p,
            src,
            index,
            raw,
            settings.mode,
            &by_name,
            &mut hosts,
            &mut paths,
        ) {
            if let Some((file, line)) = seen_ids.get(&rule.info.id) {
                p.push(Issue::new(
                    &src.path,
                    Some(rule.line),
                    format!("rules[{index}].id"),
                    format!(
                        "duplicate rule id {:?} (first defined at {file}:{line})",
                        rule.info.id
                    ),
                ));
            } else {
                seen_ids.insert(rule.info.id.clone(), (rule.file.clone(), rule.line));
            }
            compiled.push(rule);
        }
    }
    let path_set = match RegexSet::new(&paths) {
        Ok(set) if !paths.is_empty() => Some(set),
        Ok(_) => None,
        Err(e) => {
            p.push(Issue::new(
                p.dir,
                None,
                "rules.path",
                format!("path patterns together: {e}"),
            ));
            None
        }
    };

    let (engine, key_bytes) = compile_engine(p, inspect)?;
    let contact = compile_contact(p, settings_src, settings_span, &settings);
    let on_error = compile_on_error(&settings);
    let extra: Vec<&[u8]> = key_bytes.iter().map(Vec::as_slice).collect();
    Some(Policy {
        version: load::version(sources, &extra),
        dir: p.dir.to_path_buf(),
        files: sources.iter().map(|s| s.name.to_string()).collect(),
        name: settings.name.unwrap_or_default(),
        mode: settings.mode,
        default_action: settings.default_action,
        contact,
        on_error,
        hosts,
        categories: cats,
        internal_hosts: internal_count,
        tls,
        rules: compiled,
        paths: path_set,
        path_sources: paths,
        engine: Arc::new(engine),
    })
}

fn compile_tls(hosts: &mut HostIndex, raw: Option<&crate::policy::raw::RawTls>) -> Tls {
    let mut tls = Tls::default();
    let Some(raw) = raw else { return tls };
    for entry in &raw.intercept.0 {
        match entry {
            InterceptPattern::All => tls.intercept_all = true,
            InterceptPattern::Host(h) => {
                hosts.insert(INTERCEPT, h);
                tls.intercept += 1;
            }
        }
    }
    for h in &raw.bypass.0 {
        hosts.insert(BYPASS, h);
    }
    tls.bypass = raw.bypass.0.len();
    tls.intercept_internal = raw.intercept_internal;
    tls
}

fn compile_contact(
    p: &mut Problems<'_>,
    src: &Source,
    span: Range<usize>,
    s: &RawSettings,
) -> Contact {
    let c = &s.contact;
    let line = span_line(&src.text, Some(span));
    if c.name.trim().is_empty() {
        p.push(Issue::new(
            &src.path,
            line,
            "policy.contact.name",
            "must not be empty",
        ));
    }
    if c.email.is_none() && c.url.is_none() && c.phone.is_none() {
        p.push(Issue::new(
            &src.path,
            line,
            "policy.contact",
            "give at least one of email, url, phone",
        ));
    }
    Contact {
        name: c.name.trim().to_owned(),
        email: c.email.clone(),
        url: c.url.clone(),
        phone: c.phone.clone(),
    }
}

fn compile_on_error(s: &RawSettings) -> OnError {
    let raw = &s.on_error;
    let reason_nl = raw.reason_nl.clone().unwrap_or_else(|| {
        "De inhoud kon niet volledig worden gecontroleerd; daarom is het verzoek tegengehouden."
            .into()
    });
    let reason_en = raw.reason_en.clone().unwrap_or_else(|| {
        "The content could not be fully inspected, so the request was stopped.".into()
    });
    let ksp = raw.ksp.clone().unwrap_or_else(|| "1.4".into());
    let infos = InspectFailure::ALL.map(|f| {
        Arc::new(RuleInfo {
            id: format!("on-error-{}", f.as_str().replace('_', "-")),
            reason_nl: reason_nl.clone(),
            reason_en: reason_en.clone(),
            ksp: ksp.clone(),
        })
    });
    OnError {
        external: raw.external,
        internal: raw.internal,
        mode: s.mode,
        infos,
    }
}

fn compile_engine(
    p: &mut Problems<'_>,
    inspect: Once<'_, RawInspect>,
) -> Option<(Engine, Option<Vec<u8>>)> {
    let Some((src, raw)) = inspect else {
        return match Engine::new(EngineConfig::default()) {
            Ok(e) => Some((e, None)),
            Err(e) => {
                p.push(Issue::new(p.dir, None, "inspect", e.to_string()));
                None
            }
        };
    };
    let raw = raw.into_inner();
    let mut markings = Vec::new();
    let mut spans = HashMap::new();
    let levels = [
        (Level::Public, &raw.markings.public),
        (Level::Internal, &raw.markings.internal),
        (Level::Confidential, &raw.markings.confidential),
        (Level::Secret, &raw.markings.secret),
    ];
    for (level, phrases) in levels {
        for phrase in phrases {
            let text = phrase.get_ref().trim();
            let line = span_line(&src.text, Some(phrase.span()));
            if text.is_empty() {
                let key = format!("inspect.markings.{}", level.as_str());
                p.push(Issue::new(&src.path, line, key, "empty marking"));
                continue;
            }
            spans.insert(text.to_owned(), (level, line));
            markings.push(Marking {
                phrase: text.to_owned(),
                level,
            });
        }
    }
    let labels = LabelTable {
        guids: raw
            .labels
            .guids
            .iter()
            .map(|(g, l)| (g.0.clone(), l.0))
            .collect(),
        names: raw
            .labels
            .names
            .iter()
            .map(|(n, l)| (n.trim().to_lowercase(), l.0))
            .collect(),
    };
    let key = read_key(p, src, raw.fingerprint_key_file.as_ref());
    let config = EngineConfig {
        limits: raw.limits,
        markings,
        labels,
        fingerprint_key: key.clone(),
    };
    match Engine::new(config) {
        Ok(engine) => Some((engine, key)),
        Err(EngineError::Marking { phrase, reason }) => {
            let (level, line) = spans.get(&phrase).copied().unwrap_or((Level::Public, None));
            let key = format!("inspect.markings.{}", level.as_str());
            p.push(Issue::new(
                &src.path,
                line,
                key,
                format!("marking {phrase:?}: {reason}"),
            ));
            None
        }
    }
}

/// Reads the HMAC key for detector fingerprints (relative paths are relative to the policy).
fn read_key(p: &mut Problems<'_>, src: &Source, file: Option<&Spanned<String>>) -> Option<Vec<u8>> {
    let file = file?;
    let line = span_line(&src.text, Some(file.span()));
    let path = p.dir.join(file.get_ref());
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= 16 && bytes.len() <= 4096 => Some(bytes),
        Ok(bytes) => {
            let msg = format!(
                "{}: a key must be 16 to 4096 bytes, found {}",
                path.display(),
                bytes.len()
            );
            p.push(Issue::new(
                &src.path,
                line,
                "inspect.fingerprint_key_file",
                msg,
            ));
            None
        }
        Err(e) => {
            let msg = format!("{}: {e}", path.display());
            p.push(Issue::new(
                &src.path,
                line,
                "inspect.fingerprint_key_file",
                msg,
            ));
            None
        }
    }
}

// === impl Problems ===

impl<'a> Problems<'a> {
    pub(crate) fn push(&mut self, issue: Issue) {
        self.issues.push(issue);
    }

    /// Records a section that may appear in one file only.
    fn once<'s, T>(
        &mut self,
        slot: &mut Once<'s, T>,
        src: &'s Source,
        value: Option<Spanned<T>>,
        key: &str,
    ) {
        let Some(value) = value else { return };
        if let Some((first, prev)) = slot {
            let first_line = span_line(&first.text, Some(prev.span())).unwrap_or(0);
            let msg = format!("[{key}] is already defined at {}:{first_line}", first.name);
            self.push(Issue::new(
                &src.path,
                span_line(&src.text, Some(value.span())),
                key,
                msg,
            ));
        } else {
            *slot = Some((src, value));
        }
    }

    fn category<'s>(
        &mut self,
        all: &mut BTreeMap<String, (&'s Source, Spanned<RawCategory>)>,
        src: &'s Source,
        name: String,
        cat: Spanned<RawCategory>,
    ) {
        let line = span_line(&src.text, Some(cat.span()));
        let key = format!("categories.{name}");
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            self.push(Issue::new(
                &src.path,
                line,
                key,
                "category names use a-z, 0-9, '-' and '_'",
            ));
        } else if cat.get_ref().hosts.0.is_empty() && cat.get_ref().upload_hosts.0.is_empty() {
            self.push(Issue::new(
                &src.path,
                line,
                key,
                "a category needs at least one host",
            ));
        } else if let Some((first, prev)) = all.get(&name) {
            let first_line = span_line(&first.text, Some(prev.span())).unwrap_or(0);
            let msg = format!("category is already defined at {}:{first_line}", first.name);
            self.push(Issue::new(&src.path, line, key, msg));
        } else {
            all.insert(name, (src, cat));
        }
    }
}
