//! One `[[rules]]` entry, from its raw form to a [`Rule`], with the checks that need the rest
//! of the policy (category names) or the whole rule (contradictions between conditions).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use toml::Spanned;

use crate::inspect::DetectorKind;
use crate::policy::compile::Problems;
use crate::policy::decision::{Mode, RuleInfo};
use crate::policy::error::{Issue, span_line};
use crate::policy::host::{HostIndex, SetId};
use crate::policy::load::Source;
use crate::policy::raw::{List, MinCount, Name, RawFileCond, RawRule, RawTextCond};
use crate::policy::rule::{ContentConds, DestConds, FileConds, HeadConds, Rule, TextConds};

/// Where the rule being compiled is, for its problems.
struct At<'a> {
    src: &'a Source,
    index: usize,
    line: Option<usize>,
}

/// Compiles rule number `index` of `src`. `None` when the rule has a problem (recorded in `p`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn compile_rule(
    p: &mut Problems<'_>,
    src: &Source,
    index: usize,
    raw: Spanned<RawRule>,
    global: Mode,
    categories: &HashMap<String, (SetId, Arc<str>)>,
    hosts: &mut HostIndex,
    paths: &mut Vec<String>,
) -> Option<Rule> {
    let at = At {
        src,
        index,
        line: span_line(&src.text, Some(raw.span())),
    };
    let raw = raw.into_inner();
    let before = p.issues.len();

    let id = raw.id.get_ref().trim().to_owned();
    let id_line = span_line(&src.text, Some(raw.id.span()));
    let id_ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    if !id_ok {
        let msg = "a rule id uses letters, digits and - _ . : /";
        p.push(Issue::new(&src.path, id_line, at.key("id"), msg));
    }
    for (key, value) in [
        ("reason_nl", &raw.reason_nl),
        ("reason_en", &raw.reason_en),
        ("ksp", &raw.ksp),
    ] {
        if value.trim().is_empty() {
            p.push(Issue::new(
                &src.path,
                at.line,
                at.key(key),
                "must not be empty",
            ));
        }
    }

    let dest = dest_conds(p, &at, &raw, categories, hosts);
    let head = head_conds(&raw, paths);
    let content = content_conds(p, &at, &raw);
    if raw.body == Some(false) && content.is_some() {
        let msg = "content conditions need a body, but the rule says body = false";
        p.push(Issue::new(&src.path, at.line, at.key("body"), msg));
    }
    if p.issues.len() > before {
        return None;
    }
    Some(Rule {
        info: Arc::new(RuleInfo {
            id,
            reason_nl: raw.reason_nl.trim().to_owned(),
            reason_en: raw.reason_en.trim().to_owned(),
            ksp: raw.ksp.trim().to_owned(),
        }),
        action: raw.action,
        mode: raw.mode.unwrap_or(global),
        file: src.name.clone(),
        line: at.line.unwrap_or(0),
        dest,
        head,
        content,
    })
}

fn dest_conds(
    p: &mut Problems<'_>,
    at: &At<'_>,
    raw: &RawRule,
    categories: &HashMap<String, (SetId, Arc<str>)>,
    hosts: &mut HostIndex,
) -> DestConds {
    let mut d = DestConds {
        destination: raw.destination,
        upload_endpoint: raw.upload_endpoint,
        ..DestConds::default()
    };
    if let Some(list) = &raw.category {
        let line = span_line(&at.src.text, Some(list.span()));
        for name in &list.get_ref().0 {
            match categories.get(name.as_str()) {
                Some((set, n)) => d.categories.push((*set, n.clone())),
                None => {
                    let mut known: Vec<&str> = categories.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    let msg = format!("unknown category {name:?} (defined: {})", known.join(", "));
                    p.push(Issue::new(&at.src.path, line, at.key("category"), msg));
                }
            }
        }
        if list.get_ref().0.is_empty() {
            p.push(Issue::new(
                &at.src.path,
                line,
                at.key("category"),
                "empty list",
            ));
        }
    }
    if let Some(list) = &raw.host {
        let set = hosts.new_set();
        for h in &list.0 {
            hosts.insert(set, h);
        }
        d.host = Some(set);
    }
    if let Some(list) = &raw.client {
        d.clients = list.0.iter().map(|n| n.0).collect();
    }
    if let Some(list) = &raw.user {
        d.users = list.0.iter().map(|u| u.trim().to_lowercase()).collect();
    }
    d
}

fn head_conds(raw: &RawRule, paths: &mut Vec<String>) -> HeadConds {
    let start = paths.len();
    if let Some(list) = &raw.path {
        paths.extend(list.0.iter().map(|r| r.0.clone()));
    }
    HeadConds {
        methods: raw
            .method
            .as_ref()
            .map(|l| l.0.iter().map(|m| m.0.clone()).collect())
            .unwrap_or_default(),
        paths: start..paths.len(),
        body: raw.body,
    }
}

fn content_conds(p: &mut Problems<'_>, at: &At<'_>, raw: &RawRule) -> Option<ContentConds> {
    let file = raw.file.as_ref().map(|f| file_conds(p, at, f));
    let text = raw.text.as_ref().map(|t| text_conds(p, at, t));
    let detectors = detectors(raw.detectors.as_ref());
    let label = raw.label.map(|l| l.0);
    let any = file.is_some()
        || text.is_some()
        || label.is_some()
        || !detectors.is_empty()
        || raw.hit_limit.is_some();
    any.then_some(ContentConds {
        file,
        text,
        label,
        detectors,
        hit_limit: raw.hit_limit,
    })
}

fn file_conds(p: &mut Problems<'_>, at: &At<'_>, raw: &RawFileCond) -> FileConds {
    let f = FileConds {
        types: names(&raw.types),
        not_types: names(&raw.not_type),
        encrypted: raw
            .encrypted
            .as_ref()
            .map(|l| l.0.iter().map(|e| e.0).collect())
            .unwrap_or_default(),
        kinds: names(&raw.encryption_kind),
        min_size: raw.min_size.map(|s| s.0),
        max_size: raw.max_size.map(|s| s.0),
        label: raw.label.map(|l| l.0),
        detectors: detectors(raw.detectors.as_ref()),
        form: raw.form,
    };
    let empty = f.types.is_empty()
        && f.not_types.is_empty()
        && f.encrypted.is_empty()
        && f.kinds.is_empty()
        && f.min_size.is_none()
        && f.max_size.is_none()
        && f.label.is_none()
        && f.detectors.is_empty()
        && f.form.is_none();
    if empty {
        let msg = "no conditions: say what the file must be (type, encrypted, ...)";
        p.push(Issue::new(&at.src.path, at.line, at.key("file"), msg));
    }
    if let (Some(min), Some(max)) = (f.min_size, f.max_size)
        && min > max
    {
        p.push(Issue::new(
            &at.src.path,
            at.line,
            at.key("file"),
            "min_size is above max_size",
        ));
    }
    if let Some(t) = f.types.iter().find(|t| f.not_types.contains(t)) {
        let msg = format!("type {:?} is both required and excluded", t.as_str());
        p.push(Issue::new(&at.src.path, at.line, at.key("file"), msg));
    }
    f
}

fn text_conds(p: &mut Problems<'_>, at: &At<'_>, raw: &RawTextCond) -> TextConds {
    let t = TextConds {
        label: raw.label.map(|l| l.0),
        detectors: detectors(raw.detectors.as_ref()),
    };
    if t.label.is_none() && t.detectors.is_empty() {
        p.push(Issue::new(
            &at.src.path,
            at.line,
            at.key("text"),
            "no conditions: give label or detectors",
        ));
    }
    t
}

fn names<T: Copy>(list: &Option<List<Name<T>>>) -> Vec<T> {
    list.as_ref()
        .map(|l| l.0.iter().map(|n| n.0).collect())
        .unwrap_or_default()
}

fn detectors(raw: Option<&BTreeMap<Name<DetectorKind>, MinCount>>) -> Vec<(DetectorKind, u32)> {
    raw.map(|m| m.iter().map(|(k, v)| (k.0, v.0)).collect())
        .unwrap_or_default()
}

// === impl At ===

impl At<'_> {
    fn key(&self, field: &str) -> String {
        format!("rules[{}].{field}", self.index)
    }
}
