//! `sluis check` and `sluis explain`, as functions the binary calls (and tests call directly).
//!
//! Exit codes: `check` returns 0 for a valid policy and 2 for an invalid one. `explain` returns
//! 0 when the request would go through (allowed, logged, or would-block in monitor mode), 1 when
//! it would be blocked, and 2 when the policy, the URL or a file cannot be read.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use url::Url;

use crate::inspect::{BodyMeta, Report};
use crate::policy::decision::RequestFacts;
use crate::policy::{Policy, explain as render};

/// Chunk size for feeding files to the engine, as the proxy would feed a body.
const CHUNK: usize = 64 * 1024;

/// Validates the policy in `dir` and prints a summary, or every problem found.
pub fn check(dir: &Path, out: &mut dyn Write) -> i32 {
    match Policy::load(dir) {
        Ok(policy) => match write_summary(&policy, out) {
            Ok(()) => 0,
            Err(_) => 2,
        },
        Err(e) => {
            let _ = writeln!(out, "{e}");
            let n = e.issues().len();
            let _ = writeln!(
                out,
                "policy invalid: {n} problem{}",
                if n == 1 { "" } else { "s" }
            );
            2
        }
    }
}

fn write_summary(policy: &Policy, out: &mut dyn Write) -> io::Result<()> {
    let s = policy.summary();
    writeln!(
        out,
        "policy OK: {} (version {})",
        policy.dir().display(),
        s.version
    )?;
    writeln!(out, "  files       {}", s.files.join(", "))?;
    writeln!(
        out,
        "  mode        {}, default action {}",
        s.mode, s.default_action
    )?;
    writeln!(
        out,
        "  rules       {} ({} block, {} monitor, {} with content conditions)",
        s.rules, s.block_rules, s.monitor_rules, s.content_rules
    )?;
    writeln!(
        out,
        "  categories  {} ({} hosts, {} upload endpoints)",
        s.categories, s.hosts, s.upload_hosts
    )?;
    for c in &s.per_category {
        writeln!(
            out,
            "    {:<16} {:>4} hosts, {:>3} upload endpoints",
            c.name, c.hosts, c.upload_hosts
        )?;
    }
    writeln!(
        out,
        "  internal    {} entries (domains and networks)",
        s.internal_domains
    )?;
    let intercept = s
        .tls_intercept
        .map_or("all hosts".to_owned(), |n| format!("{n} entries"));
    writeln!(
        out,
        "  tls         intercept {intercept}, bypass {} entries",
        s.tls_bypass
    )?;
    writeln!(out, "  contact     {}", policy.contact().line())?;
    Ok(())
}

/// Explains the decision for `method url`, optionally as an upload of `files` (a multipart form
/// with one file part per path, each inspected by the policy's engine).
pub fn explain(
    dir: &Path,
    method: &str,
    url: &str,
    files: &[PathBuf],
    client: IpAddr,
    out: &mut dyn Write,
) -> io::Result<i32> {
    let policy = match Policy::load(dir) {
        Ok(p) => p,
        Err(e) => {
            writeln!(out, "{e}")?;
            return Ok(2);
        }
    };
    let target = match Target::parse(url) {
        Ok(t) => t,
        Err(msg) => {
            writeln!(out, "error: {msg}")?;
            return Ok(2);
        }
    };
    let report = if files.is_empty() {
        None
    } else {
        match inspect_files(&policy, files) {
            Ok(r) => Some(r),
            Err(msg) => {
                writeln!(out, "error: {msg}")?;
                return Ok(2);
            }
        }
    };
    let method = method.to_ascii_uppercase();
    let facts = RequestFacts {
        client,
        user: None,
        method: &method,
        scheme: &target.scheme,
        host: &target.host,
        port: target.port,
        path: &target.path,
        has_body: report.is_some() || matches!(method.as_str(), "POST" | "PUT" | "PATCH"),
    };
    let decision = render::render(&policy, &facts, report.as_ref(), out)?;
    Ok(if decision.blocks() { 1 } else { 0 })
}

/// Inspects each file as one part of a multipart upload and merges the reports.
fn inspect_files(policy: &Policy, files: &[PathBuf]) -> Result<Report, String> {
    let mut merged = Report::default();
    let mut buf = vec![0u8; CHUNK];
    for path in files {
        let mut file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut session = policy.engine().session(BodyMeta {
            file_name: name,
            ..BodyMeta::default()
        });
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            session.feed(chunk);
        }
        let report = session.finish();
        merged.body_bytes += report.body_bytes;
        merged.decoded_bytes += report.decoded_bytes;
        merged.limits.extend(report.limits);
        merged.files.extend(report.files.into_iter().map(|mut f| {
            f.field.get_or_insert_with(|| "file".to_owned());
            f
        }));
        let text = report.text;
        merged.text.bytes += text.bytes;
        merged.text.detections.extend(text.detections);
        if text.label.as_ref().map(|l| l.level) > merged.text.label.as_ref().map(|l| l.level) {
            merged.text.label = text.label;
        }
    }
    Ok(merged)
}

/// The parts of a URL the policy looks at.
struct Target {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn parse(raw: &str) -> Result<Target, String> {
        let url = match Url::parse(raw) {
            Ok(u) => u,
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                Url::parse(&format!("https://{raw}")).map_err(|e| format!("{raw:?}: {e}"))?
            }
            Err(e) => return Err(format!("{raw:?}: {e}")),
        };
        let scheme = url.scheme().to_owned();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "{raw:?}: only http and https URLs go through the proxy"
            ));
        }
        let host = url.host_str().ok_or_else(|| format!("{raw:?}: no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        Ok(Target {
            port: url.port_or_known_default().unwrap_or(443),
            path: url.path().to_owned(),
            scheme,
            host,
        })
    }
}
