//! RAR archives, versions 4 and 5, streamed block by block.
//!
//! RAR4: the main header's flag 0x0080 means every later header is encrypted; a file header's
//! flag 0x0004 means that file's data is. RAR5: an archive encryption header (type 4) first
//! means encrypted headers; a file's extra record 0x01 means its data is encrypted. Encrypted
//! headers decide the archive at once (settled). Otherwise every file counts: one clear file
//! with content makes the archive not encrypted. Names go to the sink; stored (uncompressed)
//! clear files are scanned as nested files. Header CRCs are checked, so random bytes are not
//! taken for flags.

use crate::inspect::file::bytes::{u16_at, u32_at};
use crate::inspect::file::expand::malformed;
use crate::inspect::file::{FileScanner, FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{
    Encryption, EncryptionKind, FileType, LimitHit, LimitKind, MemberReport,
};
use crate::inspect::sink::TextOrigin;

/// RAR5 caps a header at 2 MiB.
const MAX_HEADER: usize = 2 << 20;
const MAX_MEMBER_REPORTS: usize = 1000;

pub(crate) struct RarScanner {
    depth: u8,
    version: u8,
    state: State,
    buf: Vec<u8>,
    current: Option<Member>,
    members: Vec<MemberReport>,
    count: u32,
    clear: u32,
    encrypted: u32,
    headers_encrypted: bool,
    hits: Vec<LimitHit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Sig,
    Header,
    Data(u64),
    End,
    Stopped,
}

struct Member {
    scanner: Option<FileScanner>,
}

/// What a header says.
struct Block {
    data: u64,
    file: Option<FileInfo>,
    end: bool,
}

struct FileInfo {
    name: Vec<u8>,
    size: u64,
    dir: bool,
    encrypted: bool,
    stored: bool,
}

// === impl RarScanner ===

impl RarScanner {
    pub(crate) fn new(depth: u8) -> Self {
        Self {
            depth,
            version: 0,
            state: State::Sig,
            buf: Vec::new(),
            current: None,
            members: Vec::new(),
            count: 0,
            clear: 0,
            encrypted: 0,
            headers_encrypted: false,
            hits: Vec::new(),
        }
    }

    fn kind(&self) -> EncryptionKind {
        if self.version == 5 {
            EncryptionKind::Rar5
        } else {
            EncryptionKind::Rar4
        }
    }

    /// Bytes the header being gathered needs in all; 0 = not known yet.
    fn header_len(&self) -> Result<usize, LimitHit> {
        let b = &self.buf;
        if self.version == 4 {
            if b.len() < 7 {
                return Ok(0);
            }
            let size = usize::from(u16_at(b, 5));
            if size < 7 {
                return Err(malformed("rar block too short"));
            }
            return Ok(size);
        }
        match vint(b.get(4..).unwrap_or_default()) {
            Some((size, n)) => {
                let total = usize::try_from(size)
                    .unwrap_or(usize::MAX)
                    .saturating_add(4 + n);
                if total > MAX_HEADER {
                    Err(malformed("rar header too large"))
                } else {
                    Ok(total)
                }
            }
            None if b.len() >= 4 + 3 => Err(malformed("rar header size unreadable")),
            None => Ok(0),
        }
    }

    fn header(&mut self, rest: &mut &[u8], cx: &mut ScanCx<'_>) {
        loop {
            let need = match self.header_len() {
                // Size not readable yet: RAR4 needs its 7 fixed bytes, RAR5 its vint.
                Ok(0) => (self.buf.len() + 1).max(if self.version == 4 { 7 } else { 5 }),
                Ok(n) if self.buf.len() >= n => break,
                Ok(n) => n,
                Err(hit) => return self.stop(hit),
            };
            let take = need.saturating_sub(self.buf.len()).min(rest.len());
            self.buf
                .extend_from_slice(rest.get(..take).unwrap_or_default());
            *rest = rest.get(take..).unwrap_or_default();
            if self.buf.len() < need {
                return;
            }
        }
        let parsed = if self.version == 4 {
            self.block4()
        } else {
            self.block5()
        };
        self.buf.clear();
        match parsed {
            Ok(block) => self.apply(block, cx),
            Err(hit) => self.stop(hit),
        }
    }

    fn block4(&mut self) -> Result<Block, LimitHit> {
        let b = self.buf.as_slice();
        let mut crc = flate2::Crc::new();
        crc.update(b.get(2..).unwrap_or_default());
        if crc.sum() & 0xFFFF != u32::from(u16_at(b, 0)) {
            return Err(malformed("rar header checksum mismatch"));
        }
        let (kind, flags) = (b.get(2).copied().unwrap_or(0), u16_at(b, 3));
        let data = if flags & 0x8000 != 0 {
            u64::from(u32_at(b, 7))
        } else {
            0
        };
        let mut block = Block {
            data,
            file: None,
            end: kind == 0x7B,
        };
        match kind {
            0x73 if flags & 0x0080 != 0 => self.headers_encrypted = true,
            0x74 => {
                let large = flags & 0x0100 != 0;
                let name_at = if large { 40 } else { 32 };
                let name_len = usize::from(u16_at(b, 26));
                let name = crate::inspect::file::bytes::slice(b, name_at, name_len);
                let name = name.split(|&c| c == 0).next().unwrap_or_default().to_vec();
                let mut size = u64::from(u32_at(b, 11));
                if large {
                    block.data |= u64::from(u32_at(b, 32)) << 32;
                    size |= u64::from(u32_at(b, 36)) << 32;
                }
                block.file = Some(FileInfo {
                    name,
                    size,
                    dir: flags & 0x00E0 == 0x00E0,
                    encrypted: flags & 0x0004 != 0,
                    stored: b.get(25) == Some(&0x30),
                });
            }
            _ => {}
        }
        Ok(block)
    }

    fn block5(&mut self) -> Result<Block, LimitHit> {
        let b = self.buf.as_slice();
        let mut crc = flate2::Crc::new();
        crc.update(b.get(4..).unwrap_or_default());
        if crc.sum() != u32_at(b, 0) {
            return Err(malformed("rar header checksum mismatch"));
        }
        let bad = || malformed("corrupt rar header");
        let (size, n) = vint(b.get(4..).unwrap_or_default()).ok_or_else(bad)?;
        let body = b.get(4 + n..).ok_or_else(bad)?;
        let mut r = Reader { b: body, at: 0 };
        let kind = r.vint().ok_or_else(bad)?;
        let flags = r.vint().ok_or_else(bad)?;
        let extra = if flags & 0x01 != 0 {
            r.vint().ok_or_else(bad)?
        } else {
            0
        };
        let data = if flags & 0x02 != 0 {
            r.vint().ok_or_else(bad)?
        } else {
            0
        };
        let mut block = Block {
            data,
            file: None,
            end: kind == 5,
        };
        match kind {
            4 => self.headers_encrypted = true,
            2 => {
                let file_flags = r.vint().ok_or_else(bad)?;
                let unpacked = r.vint().ok_or_else(bad)?;
                r.vint().ok_or_else(bad)?;
                r.skip(if file_flags & 0x02 != 0 { 4 } else { 0 });
                r.skip(if file_flags & 0x04 != 0 { 4 } else { 0 });
                let comp = r.vint().ok_or_else(bad)?;
                r.vint().ok_or_else(bad)?;
                let name_len = usize::try_from(r.vint().ok_or_else(bad)?).map_err(|_| bad())?;
                let name = r.bytes(name_len).ok_or_else(bad)?.to_vec();
                let extra_len = usize::try_from(extra).map_err(|_| bad())?;
                let size = usize::try_from(size).map_err(|_| bad())?;
                let area = body.get(size.checked_sub(extra_len).ok_or_else(bad)?..size);
                block.file = Some(FileInfo {
                    name,
                    size: unpacked,
                    dir: file_flags & 0x01 != 0,
                    encrypted: has_crypt_record(area.ok_or_else(bad)?),
                    stored: (comp >> 7) & 7 == 0,
                });
            }
            _ => {}
        }
        Ok(block)
    }

    fn apply(&mut self, block: Block, cx: &mut ScanCx<'_>) {
        if self.headers_encrypted {
            self.state = State::End;
            return;
        }
        if block.end {
            self.state = State::End;
            return;
        }
        let mut scanner = None;
        if let Some(f) = block.file {
            cx.sink.text(&f.name, TextOrigin::FileName);
            cx.sink.end_text();
            self.count += 1;
            if self.count > cx.config.limits.max_members {
                return self.stop(LimitHit {
                    kind: LimitKind::Members,
                    detail: "more rar members than allowed".into(),
                });
            }
            let content = f.size > 0 && !f.dir;
            match (content, f.encrypted) {
                (true, true) => self.encrypted += 1,
                (true, false) => self.clear += 1,
                _ => {}
            }
            if f.stored && !f.encrypted && content && self.depth < cx.config.limits.max_depth {
                scanner = Some(FileScanner::new(cx.config, self.depth + 1));
            }
            if self.members.len() < MAX_MEMBER_REPORTS {
                self.members.push(MemberReport {
                    name: String::from_utf8_lossy(&f.name).into_owned(),
                    file_type: FileType::Unknown,
                    size: f.size,
                    encryption: if f.encrypted {
                        Encryption::encrypted(self.kind(), "rar file encrypted")
                    } else {
                        Encryption::not_encrypted("rar file not encrypted")
                    },
                });
            }
        }
        self.current = Some(Member { scanner });
        self.state = State::Data(block.data);
        if block.data == 0 {
            self.end_member(cx);
        }
    }

    fn end_member(&mut self, cx: &mut ScanCx<'_>) {
        self.state = State::Header;
        let Some(Member {
            scanner: Some(scanner),
        }) = self.current.take()
        else {
            return;
        };
        let facts = scanner.finish(cx);
        cx.sink.end_text();
        if let Some(m) = self.members.last_mut() {
            m.file_type = facts.file_type;
            m.encryption = facts.encryption;
        }
        self.hits.extend(facts.limits.into_iter().take(8));
    }

    fn stop(&mut self, hit: LimitHit) {
        self.hits.push(hit);
        self.state = State::Stopped;
    }
}

impl FormatScanner for RarScanner {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match self.state {
                State::Sig => {
                    let take = (8 - self.buf.len()).min(rest.len());
                    self.buf
                        .extend_from_slice(rest.get(..take).unwrap_or_default());
                    rest = rest.get(take..).unwrap_or_default();
                    if self.buf.len() == 8 {
                        self.signature(&mut rest);
                    }
                }
                State::Header => self.header(&mut rest, cx),
                State::Data(left) => {
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let piece = rest.get(..take).unwrap_or_default();
                    rest = rest.get(take..).unwrap_or_default();
                    if let Some(s) = self.current.as_mut().and_then(|m| m.scanner.as_mut()) {
                        s.feed(piece, cx);
                    }
                    let left = left - take as u64;
                    self.state = State::Data(left);
                    if left == 0 {
                        self.end_member(cx);
                    }
                }
                State::End | State::Stopped => rest = &[],
            }
        }
    }

    fn settled(&self) -> bool {
        self.headers_encrypted || self.state == State::Stopped
    }

    fn finish(mut self: Box<Self>, cx: &mut ScanCx<'_>) -> FormatFacts {
        if self.current.is_some() {
            self.end_member(cx);
        }
        let complete = self.state == State::End;
        if !complete && self.state != State::Stopped {
            self.hits.push(malformed("rar archive truncated"));
        }
        let encryption = if self.headers_encrypted {
            Encryption::encrypted(self.kind(), "headers and data encrypted")
        } else if self.clear > 0 {
            Encryption::not_encrypted(format!(
                "{} of {} files are not encrypted",
                self.clear,
                self.clear + self.encrypted
            ))
        } else if !complete {
            Encryption::unknown("archive incomplete or unreadable")
        } else if self.encrypted > 0 {
            Encryption::encrypted(self.kind(), "all files encrypted; names readable")
        } else {
            Encryption::not_encrypted("archive has no file with content")
        };
        FormatFacts {
            file_type: FileType::Rar,
            encryption,
            members: self.members,
            limits: self.hits,
        }
    }
}

impl RarScanner {
    fn signature(&mut self, rest: &mut &[u8]) {
        let sig = std::mem::take(&mut self.buf);
        if sig.starts_with(b"Rar!\x1A\x07\x01\x00") {
            self.version = 5;
        } else if sig.starts_with(b"Rar!\x1A\x07\x00") {
            // RAR4's marker is 7 bytes: the 8th belongs to the first block.
            self.version = 4;
            self.buf.extend_from_slice(sig.get(7..).unwrap_or_default());
        } else {
            return self.stop(malformed("not a rar signature"));
        }
        self.state = State::Header;
        let _ = rest;
    }
}

/// RAR5 variable-length integer: 7 bits a byte, high bit = more.
fn vint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn vint(&mut self) -> Option<u64> {
        let (v, n) = vint(self.b.get(self.at..)?)?;
        self.at += n;
        Some(v)
    }

    fn skip(&mut self, n: usize) {
        self.at += n;
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(v)
    }
}

/// Whether a RAR5 extra area holds a file encryption record (type 0x01).
fn has_crypt_record(mut area: &[u8]) -> bool {
    while let Some((size, n)) = vint(area) {
        let Some(record) = area.get(n..n.saturating_add(usize::try_from(size).unwrap_or(0))) else {
            return false;
        };
        if vint(record).is_some_and(|(kind, _)| kind == 0x01) {
            return true;
        }
        area = area.get(n + record.len()..).unwrap_or_default();
        if size == 0 {
            return false;
        }
    }
    false
}

#[cfg(test)]
#[path = "rar_tests.rs"]
mod tests;
