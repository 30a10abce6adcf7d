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

use crate::policy::Policy;
use crate::policy::compile_inspect;
use crate::policy::compile_rule::compile_rule;
use crate::policy::decision::Mode;
use crate::policy::decision::{Contact, InspectFailure, RuleInfo};
use crate::policy::error::{Issue, PolicyError, span_line};
use crate::policy::host::{HostIndex, HostPattern, SetId};
use crate::policy::load::{self, Source};
use crate::policy::raw::{
    InterceptPattern, RawCategory, RawFile, RawInspect, RawInternal, RawRule, RawSettings, RawTls,
};
use crate::policy::rule::Rule;
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
pub(crate) type Once<'a, T> = Option<(&'a Source, Spanned<T>)>;

/// Loads and compiles the policy in `dir`; `fingerprint_key` goes to the inspection engine.
pub(crate) fn compile(dir: &Path, fingerprint_key: Option<&[u8]>) -> Result<Policy, PolicyError> {
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
    let policy = build(&mut p, &sources, parsed, fingerprint_key);
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

/// The sections of all files, each single section taken from the one file that has it.
struct Merged<'a> {
    settings: Once<'a, RawSettings>,
    internal: Once<'a, RawInternal>,
    tls: Once<'a, RawTls>,
    inspect: Once<'a, RawInspect>,
    categories: BTreeMap<String, (&'a Source, Spanned<RawCategory>)>,
    /// Rules in file order, with their index in their file.
    rules: Vec<(&'a Source, usize, Spanned<RawRule>)>,
}

/// Every host list, compiled into one index.
struct HostSets {
    index: HostIndex,
    categories: Vec<Category>,
    by_name: HashMap<String, (SetId, Arc<str>)>,
    internal: Vec<HostPattern>,
    tls: Tls,
}

fn build<'a>(
    p: &mut Problems<'_>,
    sources: &'a [Source],
    parsed: Vec<(&'a Source, RawFile)>,
    fingerprint_key: Option<&[u8]>,
) -> Option<Policy> {
    let merged = merge(p, parsed);
    let mut hosts = host_sets(&merged);
    let Some((settings_src, settings)) = merged.settings else {
        let msg = "missing [policy] section (mode, default_action, contact)";
        p.push(Issue::new(p.dir, None, "policy", msg));
        return None;
    };
    let settings_span = settings.span();
    let settings = settings.into_inner();
    let (rules, paths) = compile_rules(p, merged.rules, settings.mode, &mut hosts);
    let path_set = path_set(p, &paths);
    let engine = compile_inspect::compile_engine(p, merged.inspect, fingerprint_key)?;
    let contact = compile_contact(p, settings_src, settings_span, &settings);
    Some(Policy {
        version: load::version(sources, &[]),
        dir: p.dir.to_path_buf(),
        files: sources.iter().map(|s| s.name.to_string()).collect(),
        on_error: compile_on_error(&settings),
        name: settings.name.unwrap_or_default(),
        mode: settings.mode,
        default_action: settings.default_action,
        contact,
        hosts: hosts.index,
        categories: hosts.categories,
        internal_hosts: hosts.internal,
        tls: hosts.tls,
        rules,
        paths: path_set,
        path_sources: paths,
        engine: Arc::new(engine),
    })
}

fn merge<'a>(p: &mut Problems<'_>, parsed: Vec<(&'a Source, RawFile)>) -> Merged<'a> {
    let mut m = Merged {
        settings: None,
        internal: None,
        tls: None,
        inspect: None,
        categories: BTreeMap::new(),
        rules: Vec::new(),
    };
    for (src, raw) in parsed {
        p.once(&mut m.settings, src, raw.policy, "policy");
        p.once(&mut m.internal, src, raw.internal, "internal");
        p.once(&mut m.tls, src, raw.tls, "tls");
        p.once(&mut m.inspect, src, raw.inspect, "inspect");
        for (name, cat) in raw.categories {
            p.category(&mut m.categories, src, name, cat);
        }
        m.rules
            .extend(raw.rules.into_iter().enumerate().map(|(i, r)| (src, i, r)));
    }
    if m.rules.is_empty() {
        let msg = "no rules: a policy needs at least one [[rules]] entry";
        p.push(Issue::new(p.dir, None, "rules", msg));
    }
    m
}

/// Numbers the host lists (fixed sets, then categories in name order) and fills the index.
fn host_sets(m: &Merged<'_>) -> HostSets {
    let mut index = HostIndex::default();
    for _ in 0..FIRST_CATEGORY {
        index.new_set();
    }
    let mut by_name = HashMap::new();
    let mut categories = Vec::new();
    for (name, (_, cat)) in &m.categories {
        let set = index.new_set();
        let cat = cat.get_ref();
        for h in &cat.hosts.0 {
            index.insert(set, h);
        }
        for h in &cat.upload_hosts.0 {
            index.insert(set, h);
            index.insert(UPLOAD, h);
        }
        let name: Arc<str> = Arc::from(name.as_str());
        by_name.insert(name.to_string(), (set, name.clone()));
        categories.push(Category {
            name,
            description: cat.description.clone().unwrap_or_default(),
            hosts: cat.hosts.0.len() + cat.upload_hosts.0.len(),
            upload_hosts: cat.upload_hosts.0.len(),
        });
    }
    let mut internal = Vec::new();
    if let Some((_, raw)) = &m.internal {
        for h in &raw.get_ref().hosts.0 {
            index.insert(INTERNAL, h);
        }
        internal = raw.get_ref().hosts.0.clone();
    }
    let tls = compile_tls(&mut index, m.tls.as_ref().map(|(_, t)| t.get_ref()));
    HostSets {
        index,
        categories,
        by_name,
        internal,
        tls,
    }
}

/// Compiles the rules in order, rejecting duplicate ids; returns them with all path patterns.
fn compile_rules(
    p: &mut Problems<'_>,
    raw: Vec<(&Source, usize, Spanned<RawRule>)>,
    mode: Mode,
    hosts: &mut HostSets,
) -> (Vec<Rule>, Vec<String>) {
    let mut seen: HashMap<String, (Arc<str>, usize)> = HashMap::new();
    let mut paths = Vec::new();
    let mut rules = Vec::new();
    for (src, index, r) in raw {
        let Some(rule) = compile_rule(
            p,
            src,
            index,
            r,
            mode,
            &hosts.by_name,
            &mut hosts.index,
            &mut paths,
        ) else {
            continue;
        };
        if let Some((file, line)) = seen.get(&rule.info.id) {
            let msg = format!(
                "duplicate rule id {:?} (first defined at {file}:{line})",
                rule.info.id
            );
            p.push(Issue::new(
                &src.path,
                Some(rule.line),
                format!("rules[{index}].id"),
                msg,
            ));
        } else {
            seen.insert(rule.info.id.clone(), (rule.file.clone(), rule.line));
        }
        rules.push(rule);
    }
    (rules, paths)
}

/// One `RegexSet` over every rule's path patterns, so a request's path is matched once.
fn path_set(p: &mut Problems<'_>, paths: &[String]) -> Option<RegexSet> {
    if paths.is_empty() {
        return None;
    }
    match RegexSet::new(paths) {
        Ok(set) => Some(set),
        Err(e) => {
            let msg = format!("path patterns together: {e}");
            p.push(Issue::new(p.dir, None, "rules.path", msg));
            None
        }
    }
}

fn compile_tls(hosts: &mut HostIndex, raw: Option<&RawTls>) -> Tls {
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
