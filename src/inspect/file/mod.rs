//! One file: sniff its type from its first bytes, then hand the stream to that format's scanner.
//!
//! Every format scanner implements [`FormatScanner`]; archives create nested [`FileScanner`]s for
//! their members (one level deeper), so a docx inside a zip inside a 7z is scanned the same way
//! as a docx uploaded on its own.

mod age;
mod armor;
mod bytes;
mod cfb;
mod cms;
mod compressed;
#[cfg(test)]
mod crypto_tests;
mod expand;
mod odf;
mod ooxml;
mod pdf;
mod pgp;
mod rar;
mod salted;
mod sevenz;
mod sniff;
mod tar;
#[cfg(test)]
mod testutil;
mod text;
mod unknown;
mod xml;
mod zip;

pub use sniff::{SNIFF_WINDOW, Sniff, sniff};

use crate::inspect::engine::EngineConfig;
use crate::inspect::report::{Encryption, FileType, LimitHit, LimitKind, MemberReport};
use crate::inspect::sink::ContentSink;

/// What a format scanner hands back when its file ends.
#[derive(Debug, Clone)]
pub struct FormatFacts {
    /// The type, refined by the scanner where it can (a zip that is really a docx).
    pub file_type: FileType,
    pub encryption: Encryption,
    pub members: Vec<MemberReport>,
    pub limits: Vec<LimitHit>,
}

/// Shared by every scanner of one body: configuration, where extracted content goes, and the
/// decompression budget that all nested scanners draw from.
pub struct ScanCx<'a> {
    pub config: &'a EngineConfig,
    pub sink: &'a mut dyn ContentSink,
    /// Bytes that decompression (archive members, gzip, ...) may still produce for this body.
    pub expand_budget: &'a mut u64,
}

/// A streaming scanner for one format.
///
/// Contract: `feed` gets the file's bytes in order, in chunks of any size (possibly empty);
/// it must never panic or allocate without bound (keep at most `limits.max_buffer_bytes`
/// buffered, record a `LimitHit` beyond it). `settled` returns true only when no later byte can
/// change the verdict or add findings; from then on the scanner gets no more bytes and
/// `finish` is called at once, so what it returns must not depend on the rest of the file.
/// Otherwise `finish` is called once, at the end of the file (also for a truncated file).
pub trait FormatScanner: Send {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>);

    fn settled(&self) -> bool {
        false
    }

    fn finish(self: Box<Self>, cx: &mut ScanCx<'_>) -> FormatFacts;
}

/// Scans one file (or archive member) of any type.
///
/// Once its format scanner settles, the scanner is finished on the spot and its facts kept:
/// later bytes are ignored without a call, [`FileScanner::settled_facts`] can show the facts
/// before the file ends, and `finish` returns the same facts.
pub struct FileScanner {
    depth: u8,
    state: State,
}

enum State {
    Sniffing(Vec<u8>),
    Scanning(Box<dyn FormatScanner>),
    Settled(FormatFacts),
    /// Only while a state is being replaced.
    Taken,
}

// === impl FileScanner ===

impl FileScanner {
    /// `depth` is 0 for a file in the body, n+1 for a member of an archive at depth n.
    pub fn new(_config: &EngineConfig, depth: u8) -> Self {
        Self {
            depth,
            state: State::Sniffing(Vec::new()),
        }
    }

    pub fn depth(&self) -> u8 {
        self.depth
    }

    pub fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        match &mut self.state {
            State::Scanning(scanner) => scanner.feed(chunk, cx),
            State::Sniffing(prefix) => {
                let take = SNIFF_WINDOW.saturating_sub(prefix.len()).min(chunk.len());
                prefix.extend_from_slice(chunk.get(..take).unwrap_or_default());
                let file_type = match sniff(prefix, false) {
                    Sniff::Type(file_type) => file_type,
                    Sniff::NeedMore if prefix.len() >= SNIFF_WINDOW => match sniff(prefix, true) {
                        Sniff::Type(t) => t,
                        Sniff::NeedMore => FileType::Unknown,
                    },
                    Sniff::NeedMore => return,
                };
                let prefix = std::mem::take(prefix);
                self.start(file_type, &prefix, cx);
                if let State::Scanning(scanner) = &mut self.state {
                    scanner.feed(chunk.get(take..).unwrap_or_default(), cx);
                }
            }
            State::Settled(_) | State::Taken => return,
        }
        self.settle_if_done(cx);
    }

    /// True once no later byte can change this file's facts or add findings.
    pub fn settled(&self) -> bool {
        matches!(self.state, State::Settled(_))
    }

    /// The facts, once settled: exactly what `finish` will return.
    pub fn settled_facts(&self) -> Option<&FormatFacts> {
        match &self.state {
            State::Settled(facts) => Some(facts),
            _ => None,
        }
    }

    pub fn finish(mut self, cx: &mut ScanCx<'_>) -> FormatFacts {
        if let State::Sniffing(prefix) = &mut self.state {
            let prefix = std::mem::take(prefix);
            let file_type = match sniff(&prefix, true) {
                Sniff::Type(t) => t,
                Sniff::NeedMore => FileType::Unknown,
            };
            self.start(file_type, &prefix, cx);
        }
        match self.state {
            State::Scanning(scanner) => scanner.finish(cx),
            State::Settled(facts) => facts,
            State::Sniffing(_) | State::Taken => unreachable_facts(),
        }
    }

    fn start(&mut self, file_type: FileType, prefix: &[u8], cx: &mut ScanCx<'_>) {
        let mut scanner = scanner_for(file_type, self.depth, cx);
        scanner.feed(prefix, cx);
        self.state = State::Scanning(scanner);
    }

    /// Finishes a scanner that has settled: it ignores later bytes, so finishing it now gives
    /// what finishing it at the end would, and frees its buffers early.
    fn settle_if_done(&mut self, cx: &mut ScanCx<'_>) {
        if !matches!(&self.state, State::Scanning(s) if s.settled()) {
            return;
        }
        if let State::Scanning(scanner) = std::mem::replace(&mut self.state, State::Taken) {
            self.state = State::Settled(scanner.finish(cx));
        }
    }
}

fn unreachable_facts() -> FormatFacts {
    FormatFacts {
        file_type: FileType::Unknown,
        encryption: Encryption::unknown("scanner was never started"),
        members: Vec::new(),
        limits: vec![LimitHit {
            kind: LimitKind::Malformed,
            detail: "internal state".into(),
        }],
    }
}

/// Picks the scanner for a sniffed type.
fn scanner_for(file_type: FileType, depth: u8, cx: &mut ScanCx<'_>) -> Box<dyn FormatScanner> {
    match file_type {
        FileType::Zip => Box::new(zip::ZipScanner::new(depth)),
        FileType::Gzip | FileType::Bzip2 | FileType::Xz | FileType::Zstd => {
            Box::new(compressed::CompressedScanner::new(file_type, depth, cx))
        }
        FileType::Tar => Box::new(tar::TarScanner::new(depth)),
        FileType::SevenZip => Box::new(sevenz::SevenZipScanner::new()),
        FileType::Rar => Box::new(rar::RarScanner::new(depth)),
        FileType::Openpgp => Box::new(pgp::PgpScanner::new(false)),
        FileType::OpenpgpArmored => Box::new(pgp::PgpScanner::new(true)),
        FileType::Pdf => Box::new(pdf::PdfScanner::new()),
        FileType::Cfb
        | FileType::OoxmlEncrypted
        | FileType::Doc
        | FileType::Xls
        | FileType::Ppt
        | FileType::Msi => Box::new(cfb::CfbScanner::new()),
        FileType::Cms => Box::new(cms::CmsScanner::new()),
        FileType::Age => Box::new(age::AgeScanner::new()),
        FileType::OpensslSalted => Box::new(salted::SaltedScanner::new()),
        FileType::Text
        | FileType::Csv
        | FileType::Json
        | FileType::Xml
        | FileType::Html
        | FileType::Script => Box::new(text::TextFile::new(file_type)),
        FileType::Unknown => Box::new(unknown::UnknownFile::new()),
        _ => Box::new(Opaque { file_type }),
    }
}

/// The verdict of a type that decides it on its own: text is readable by anyone, and media
/// and programs have no encryption of their own. `None` for containers and documents, whose
/// scanner must look inside.
pub(crate) fn verdict_of_type(file_type: FileType) -> Option<Encryption> {
    use FileType::*;
    match file_type {
        Text | Csv | Json | Xml | Html | Script => Some(Encryption::not_encrypted("plain text")),
        Rtf | Jpeg | Png | Gif | Webp | Mp4 | Mp3 | Exe | Elf | MachO | JavaClass => Some(
            Encryption::not_encrypted("format has no encryption of its own"),
        ),
        _ => None,
    }
}

/// Types whose verdict is their type alone: media and programs are readable by anyone;
/// anything else that reaches here is not understood beyond its type.
struct Opaque {
    file_type: FileType,
}

impl FormatScanner for Opaque {
    fn feed(&mut self, _chunk: &[u8], _cx: &mut ScanCx<'_>) {}

    /// The type alone decides the verdict, so no later byte matters.
    fn settled(&self) -> bool {
        true
    }

    fn finish(self: Box<Self>, _cx: &mut ScanCx<'_>) -> FormatFacts {
        let encryption = verdict_of_type(self.file_type)
            .unwrap_or_else(|| Encryption::unknown("type not recognised"));
        FormatFacts {
            file_type: self.file_type,
            encryption,
            members: Vec::new(),
            limits: Vec::new(),
        }
    }
}
