//! `policies/README.md` is the admins' reference: its name lists must be complete and its
//! examples must load.

use std::fs;

use strum::IntoEnumIterator;

use super::{Dir, shipped};
use crate::inspect::{DetectorKind, EncryptionKind, FileType};
use crate::policy::Policy;

fn readme() -> String {
    fs::read_to_string(shipped().join("README.md")).unwrap()
}

/// The ```toml blocks of the README.
fn toml_blocks(text: &str) -> Vec<String> {
    text.split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_lists_every_name() {
    let text = readme();
    let words: std::collections::HashSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .collect();
    for t in FileType::iter() {
        assert!(words.contains(t.as_str()), "file type {t} missing");
    }
    for k in EncryptionKind::iter() {
        assert!(words.contains(k.as_str()), "encryption kind {k} missing");
    }
    for d in DetectorKind::iter() {
        assert!(words.contains(d.as_str()), "detector {d} missing");
    }
}

#[test]
fn the_readme_rule_examples_load_into_the_shipped_policy() {
    let blocks = toml_blocks(&readme());
    let rules: Vec<&String> = blocks
        .iter()
        .filter(|b| b.starts_with("[[rules]]"))
        .collect();
    assert!(rules.len() >= 5, "found {} rule examples", rules.len());
    for (i, block) in rules.iter().enumerate() {
        let d = Dir::new();
        for name in ["categories.toml", "inspect.toml", "ksp.toml", "tls.toml"] {
            fs::copy(shipped().join(name), d.path().join(name)).unwrap();
        }
        // The README shows one shipped rule; give every example an id of its own.
        let renamed = block
            .lines()
            .map(|l| {
                if l.starts_with("id = ") {
                    format!("id = \"readme-example-{i}\"")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        d.write("50-local.toml", &renamed);
        let p = Policy::load(d.path()).unwrap_or_else(|e| panic!("example {i}:\n{block}\n{e}"));
        assert_eq!(
            p.summary().rules,
            Policy::load(&shipped()).unwrap().summary().rules + 1
        );
    }
}

#[test]
fn the_readme_section_examples_load() {
    let blocks = toml_blocks(&readme());
    let mut tried = 0;
    for block in &blocks {
        let file = if block.starts_with("[tls]") {
            "tls.toml"
        } else if block.starts_with("[inspect") {
            "inspect.toml"
        } else if block.starts_with("[categories.") {
            "categories.toml"
        } else if block.starts_with("[policy]") {
            "00-policy.toml"
        } else {
            continue;
        };
        tried += 1;
        let d = Dir::new();
        for name in ["categories.toml", "inspect.toml", "ksp.toml", "tls.toml"] {
            fs::copy(shipped().join(name), d.path().join(name)).unwrap();
        }
        let ksp = fs::read_to_string(shipped().join("ksp.toml")).unwrap();
        if file == "00-policy.toml" {
            // Replace the shipped [policy] section (up to [internal]) with the example.
            let rest = ksp
                .split_once("\n[internal]")
                .map(|(_, r)| format!("[internal]{r}"))
                .unwrap();
            d.write("ksp.toml", &rest);
        }
        if file == "categories.toml" {
            // The example replaces the shipped categories: keep the others the rules need.
            let cats = fs::read_to_string(shipped().join("categories.toml")).unwrap();
            let without = cats
                .split("\n[categories.")
                .filter(|s| !s.starts_with("cloud-storage]"))
                .collect::<Vec<_>>()
                .join("\n[categories.");
            d.write("categories.toml", &format!("{without}\n{block}"));
        } else {
            d.write(file, block);
        }
        Policy::load(d.path()).unwrap_or_else(|e| panic!("{file} example:\n{block}\n{e}"));
    }
    assert_eq!(tried, 4);
}
