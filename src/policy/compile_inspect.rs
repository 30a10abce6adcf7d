//! The `[inspect]` section: the engine configuration the policy owns (limits, markings, label
//! tables), built into the `Engine` that every request of this policy uses. The fingerprint key
//! is not policy: it is a secret of the running proxy (`audit.fingerprint_key_file`), handed in.

use std::collections::HashMap;

use crate::inspect::{Engine, EngineConfig, EngineError, LabelTable, Level, Marking};
use crate::policy::compile::{Once, Problems};
use crate::policy::error::{Issue, span_line};
use crate::policy::raw::RawInspect;

/// Builds the engine, with `fingerprint_key` for detector fingerprints.
pub(crate) fn compile_engine(
    p: &mut Problems<'_>,
    inspect: Once<'_, RawInspect>,
    fingerprint_key: Option<&[u8]>,
) -> Option<Engine> {
    let fingerprint_key = fingerprint_key.map(<[u8]>::to_vec);
    let Some((src, raw)) = inspect else {
        let config = EngineConfig {
            fingerprint_key,
            ..EngineConfig::default()
        };
        return match Engine::new(config) {
            Ok(e) => Some(e),
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
    let config = EngineConfig {
        limits: raw.limits,
        markings,
        labels,
        fingerprint_key,
    };
    match Engine::new(config) {
        Ok(engine) => Some(engine),
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
        Err(e) => {
            p.push(Issue::new(&src.path, None, "inspect", e.to_string()));
            None
        }
    }
}
