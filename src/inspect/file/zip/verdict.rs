//! What the members add up to: the archive's encryption verdict and its member list.
//!
//! The rule: `Encrypted` only when every member with content is encrypted (by ZIP encryption,
//! or because it is itself an encrypted file such as a .gpg) and the archive was read to its
//! end with the central directory agreeing. One clear member makes it `NotEncrypted`; a
//! truncated or tampered archive without a clear member is `Unknown`.

use std::borrow::Cow;

use super::header::{FLAG_ENCRYPTED, FLAG_STRONG, Header, Protection};
use crate::inspect::file::FormatFacts;
use crate::inspect::file::expand::malformed;
use crate::inspect::report::{
    Encryption, EncryptionKind, FileType, LimitHit, LimitKind, MemberReport, Verdict,
};

/// Member reports kept per archive; the verdict still covers every member.
pub(super) const MAX_MEMBER_REPORTS: usize = 1000;

/// One member, as its local header, its data and its central entry showed it.
#[derive(Debug)]
pub(super) struct Entry {
    offset: u64,
    /// Kept for the first [`MAX_MEMBER_REPORTS`] members only.
    name: Option<Vec<u8>>,
    flags: u16,
    method: u16,
    prot: Protection,
    dir: bool,
    local_usize: Option<u64>,
    pub(super) zip64: bool,
    /// Compressed bytes the data took.
    pub(super) consumed: u64,
    /// Bytes expanded (or passed on as stored).
    pub(super) produced: u64,
    /// Uncompressed size from the central directory.
    cd_usize: Option<u64>,
    /// What a nested scan made of the content.
    pub(super) facts: Option<(FileType, Encryption)>,
}

/// The archive-level facts gathered while streaming.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) hits: Vec<LimitHit>,
    pub(super) eocd: bool,
    pub(super) truncated: bool,
    pub(super) stopped: bool,
    pub(super) members_exceeded: bool,
    /// Local headers masked (flag bit 13): the central directory is encrypted.
    pub(super) masked: bool,
    pub(super) cd_encrypted: bool,
    pub(super) trailing: u64,
    cd_entries: usize,
    mismatch: bool,
}

// === impl Entry ===

impl Entry {
    pub(super) fn from_local(h: &Header, offset: u64, index: usize) -> Self {
        Self {
            offset,
            name: (index < MAX_MEMBER_REPORTS).then(|| h.name.clone()),
            flags: h.flags,
            method: h.method,
            prot: h.protection(),
            dir: h.is_dir(),
            local_usize: (!h.size_unknown()).then_some(h.usize),
            zip64: h.zip64,
            consumed: 0,
            produced: 0,
            cd_usize: None,
            facts: None,
        }
    }

    fn size(&self) -> u64 {
        self.cd_usize.or(self.local_usize).unwrap_or(self.produced)
    }

    fn has_content(&self) -> bool {
        if self.dir {
            return false;
        }
        match self.cd_usize.or(self.local_usize) {
            Some(n) => n > 0,
            None => self.produced > 0 || self.consumed > self.prot.overhead(),
        }
    }

    /// An encrypted file inside a clear member (a .gpg, an encrypted 7z, a password ODF).
    fn inner_kind(&self) -> Option<EncryptionKind> {
        match &self.facts {
            Some((_, e)) if e.verdict == Verdict::Encrypted => e.kind,
            _ => None,
        }
    }

    fn report(&self) -> Option<MemberReport> {
        let name = String::from_utf8_lossy(self.name.as_deref()?).into_owned();
        let (file_type, encryption) = match (self.prot, &self.facts) {
            (Protection::None, Some((t, e))) => (*t, e.clone()),
            (Protection::None, None) if self.dir => (
                FileType::Unknown,
                Encryption::not_encrypted("directory entry"),
            ),
            (Protection::None, None) => (
                FileType::Unknown,
                Encryption::unknown("content not inspected"),
            ),
            (p, _) => (
                FileType::Unknown,
                Encryption::encrypted(kind_of(p), p.describe()),
            ),
        };
        Some(MemberReport {
            name,
            file_type,
            size: self.size(),
            encryption,
        })
    }
}

// === impl Outcome ===

impl Outcome {
    /// Checks a central-directory entry against the local header at its offset.
    pub(super) fn confirm(&mut self, entries: &mut [Entry], cd: &Header) {
        self.cd_entries += 1;
        let Ok(i) = entries.binary_search_by_key(&cd.offset, |e| e.offset) else {
            self.disagree("central directory names a member not seen in the stream");
            return;
        };
        let Some(e) = entries.get_mut(i) else { return };
        e.cd_usize = Some(cd.usize);
        let flag_bits = FLAG_ENCRYPTED | FLAG_STRONG;
        let same = e.flags & flag_bits == cd.flags & flag_bits
            && e.method == cd.method
            && e.prot == cd.protection().min_detail(e.prot)
            && e.consumed == cd.csize
            && e.name.as_ref().is_none_or(|n| *n == cd.name);
        if !same {
            self.disagree("local header and central directory disagree");
        }
    }

    fn disagree(&mut self, detail: &'static str) {
        self.mismatch = true;
        let hit = malformed(detail);
        if !self.hits.contains(&hit) {
            self.hits.push(hit);
        }
    }
}

impl Protection {
    /// The central entry carries the strong-encryption algorithm, the local header may not:
    /// compare at the detail the local header has.
    fn min_detail(self, local: Protection) -> Protection {
        match (self, local) {
            (Protection::Strong(_), Protection::Strong(l)) => Protection::Strong(l),
            (p, _) => p,
        }
    }
}

fn kind_of(p: Protection) -> EncryptionKind {
    match p {
        Protection::Aes(_) => EncryptionKind::ZipAes,
        Protection::Strong(_) => EncryptionKind::ZipStrong,
        _ => EncryptionKind::ZipCrypto,
    }
}

/// Weakest first: the archive is only as safe as its weakest member.
fn strength(p: Protection) -> (u8, u16) {
    match p {
        Protection::None => (0, 0),
        Protection::ZipCrypto => (1, 0),
        Protection::Strong(_) => (2, 0),
        Protection::Aes(bits) => (3, bits),
    }
}

/// Builds the archive's facts once the stream has ended.
pub(super) fn facts(
    entries: Vec<Entry>,
    mut out: Outcome,
    file_type: FileType,
    package: Option<Encryption>,
    max_members: u32,
) -> FormatFacts {
    if out.eocd && !out.cd_encrypted && out.cd_entries != entries.len() && !out.stopped {
        out.disagree("central directory and local headers list different members");
    }
    if out.truncated {
        out.hits.push(malformed("archive truncated"));
    }
    if out.trailing > 0 {
        out.hits
            .push(malformed("data after the end of the archive"));
    }
    let encryption = package.unwrap_or_else(|| decide(&entries, &out));
    let members = entries
        .iter()
        .take(MAX_MEMBER_REPORTS.min(max_members as usize))
        .filter_map(Entry::report)
        .collect();
    if entries.len() > MAX_MEMBER_REPORTS {
        out.hits.push(LimitHit {
            kind: LimitKind::Members,
            detail: "member list cut short".into(),
        });
    }
    FormatFacts {
        file_type,
        encryption,
        members,
        limits: out.hits,
    }
}

fn decide(entries: &[Entry], out: &Outcome) -> Encryption {
    if out.members_exceeded {
        return Encryption::unknown("more members than allowed");
    }
    if out.mismatch {
        return Encryption::unknown("local headers and central directory disagree");
    }
    let content: Vec<&Entry> = entries.iter().filter(|e| e.has_content()).collect();
    let clear = content
        .iter()
        .filter(|e| e.prot == Protection::None && e.inner_kind().is_none())
        .count();
    if clear > 0 {
        let reason = if clear == content.len() {
            Cow::Borrowed("no member is encrypted")
        } else {
            Cow::Owned(format!(
                "{clear} of {} members are not encrypted",
                content.len()
            ))
        };
        return Encryption::not_encrypted(reason);
    }
    if out.truncated || out.stopped || !out.eocd {
        return Encryption::unknown("archive incomplete or unreadable");
    }
    if content.is_empty() {
        return Encryption::not_encrypted("archive has no member with content");
    }
    if out.trailing > 0 {
        return Encryption::unknown("data after the end of the archive");
    }
    encrypted(&content, out)
}

fn encrypted(content: &[&Entry], out: &Outcome) -> Encryption {
    let mut zip_level: Vec<Protection> = content
        .iter()
        .map(|e| e.prot)
        .filter(|p| *p != Protection::None)
        .collect();
    zip_level.sort_by_key(|p| strength(*p));
    zip_level.dedup();
    let inner = content.iter().filter_map(|e| e.inner_kind()).count();
    let cd = if out.cd_encrypted {
        "; central directory encrypted"
    } else {
        ""
    };
    let Some(weakest) = zip_level.first().copied() else {
        let kind = content
            .iter()
            .find_map(|e| e.inner_kind())
            .unwrap_or(EncryptionKind::ZipCrypto);
        return Encryption::encrypted(
            kind,
            format!("all {} members are encrypted files", content.len()),
        );
    };
    let mut reason = if zip_level.len() == 1 {
        format!("all members {}-encrypted", weakest.describe())
    } else {
        let names: Vec<&str> = zip_level.iter().map(|p| p.describe()).collect();
        format!(
            "members mix {}; weakest is {}",
            names.join(" and "),
            weakest.describe()
        )
    };
    if inner > 0 {
        reason.push_str(&format!("; {inner} are encrypted files"));
    }
    reason.push_str(cd);
    Encryption::encrypted(kind_of(weakest), reason)
}
