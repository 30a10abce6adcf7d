//! The `[inspect]` section: the engine configuration the policy owns (limits, markings, label
//! tables, fingerprint key), built into the `Engine` that every request of this policy uses.

use std::collections::HashMap;

use toml::Spanned;

use crate::inspect::{Engine, EngineConfig, EngineError, LabelTable, Level, Marking};
use crate::policy::compile::{Once, Problems};
use crate::policy::error::{Issue, span_line};
use crate::policy::load::Source;
use crate::policy::raw::RawInspect;

/// Builds the engine; also returns the fingerprint key so the policy version covers it.
pub(crate) fn compile_engine(
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
