//! tar archives (ustar, GNU and pax): members are scanned as files one level deeper, names go
//! to the sink. tar has no encryption: an archive is encrypted only when every member with
//! content is itself an encrypted file.

use crate::inspect::file::bytes::slice;
use crate::inspect::file::expand::malformed;
use crate::inspect::file::{FileScanner, FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{
    Encryption, EncryptionKind, FileType, LimitHit, LimitKind, MemberReport, Verdict,
};
use crate::inspect::sink::TextOrigin;

const BLOCK: usize = 512;
/// Long names (GNU `L`, pax `path=`) are kept up to this size.
const MAX_LONG_NAME: usize = 64 << 10;
const MAX_MEMBER_REPORTS: usize = 1000;

pub(crate) struct TarScanner {
    depth: u8,
    block: Vec<u8>,
    state: State,
    /// Name from a preceding GNU long-name or pax header.
    long_name: Option<Vec<u8>>,
    meta: Vec<u8>,
    current: Option<Member>,
    members: Vec<MemberReport>,
    count: u32,
    clear: u32,
    encrypted: Option<EncryptionKind>,
    zero_blocks: u8,
    hits: Vec<LimitHit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    /// Member data, then padding to the block size.
    Data {
        left: u64,
        pad: u64,
    },
    /// Data of a GNU long-name or pax header.
    Meta {
        left: u64,
        pad: u64,
        pax: bool,
    },
    End,
    Stopped,
}

struct Member {
    name: Vec<u8>,
    size: u64,
    scanner: Option<FileScanner>,
}

// === impl TarScanner ===

impl TarScanner {
    pub(crate) fn new(depth: u8) -> Self {
        Self {
            depth,
            block: Vec::with_capacity(BLOCK),
            state: State::Header,
            long_name: None,
            meta: Vec::new(),
            current: None,
            members: Vec::new(),
            count: 0,
            clear: 0,
            encrypted: None,
            zero_blocks: 0,
            hits: Vec::new(),
        }
    }

    fn header(&mut self, cx: &mut ScanCx<'_>) {
        let b = std::mem::take(&mut self.block);
        if b.iter().all(|&x| x == 0) {
            self.zero_blocks += 1;
            if self.zero_blocks >= 2 {
                self.state = State::End;
            }
            return;
        }
        self.zero_blocks = 0;
        if !checksum_ok(&b) {
            self.stop(malformed("tar header checksum mismatch"));
            return;
        }
        let size = parse_size(slice(&b, 124, 12));
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        let kind = b.get(156).copied().unwrap_or(0);
        match kind {
            b'L' | b'x' => {
                self.meta.clear();
                self.state = State::Meta {
                    left: size,
                    pad,
                    pax: kind == b'x',
                };
                return;
            }
            b'g' | b'1' | b'2' | b'3' | b'4' | b'5' | b'6' => {
                self.long_name = None;
                self.state = State::Data { left: size, pad };
                return;
            }
            _ => {}
        }
        let name = self.long_name.take().unwrap_or_else(|| ustar_name(&b));
        self.start_member(name, size, cx);
        self.state = State::Data { left: size, pad };
        if size == 0 {
            self.end_member(cx);
        }
    }

    fn start_member(&mut self, name: Vec<u8>, size: u64, cx: &mut ScanCx<'_>) {
        cx.sink.text(&name, TextOrigin::FileName);
        cx.sink.end_text();
        self.count += 1;
        if self.count > cx.config.limits.max_members {
            self.stop(LimitHit {
                kind: LimitKind::Members,
                detail: "more tar members than allowed".into(),
            });
            return;
        }
        let scanner = if self.depth >= cx.config.limits.max_depth {
            self.hit(LimitHit {
                kind: LimitKind::Depth,
                detail: "archive nested deeper than allowed".into(),
            });
            None
        } else {
            Some(FileScanner::new(cx.config, self.depth + 1))
        };
        self.current = Some(Member {
            name,
            size,
            scanner,
        });
    }

    fn end_member(&mut self, cx: &mut ScanCx<'_>) {
        let Some(m) = self.current.take() else { return };
        let facts = m.scanner.map(|s| s.finish(cx));
        cx.sink.end_text();
        let (file_type, encryption) = match facts {
            Some(f) => {
                for hit in f.limits {
                    self.hit(hit);
                }
                (f.file_type, f.encryption)
            }
            None => (
                FileType::Unknown,
                Encryption::unknown("content not inspected"),
            ),
        };
        if m.size > 0 {
            match (encryption.verdict, encryption.kind) {
                (Verdict::Encrypted, Some(kind)) => {
                    self.encrypted.get_or_insert(kind);
                }
                _ => self.clear += 1,
            }
        }
        if self.members.len() < MAX_MEMBER_REPORTS {
            self.members.push(MemberReport {
                name: String::from_utf8_lossy(&m.name).into_owned(),
                file_type,
                size: m.size,
                encryption,
            });
        }
    }

    fn end_meta(&mut self, pax: bool) {
        let meta = std::mem::take(&mut self.meta);
        self.long_name = if pax {
            pax_path(&meta).map(<[u8]>::to_vec)
        } else {
            Some(meta.split(|&b| b == 0).next().unwrap_or_default().to_vec())
        };
    }

    fn hit(&mut self, hit: LimitHit) {
        if self.hits.len() < 32 && !self.hits.contains(&hit) {
            self.hits.push(hit);
        }
    }

    fn stop(&mut self, hit: LimitHit) {
        self.hit(hit);
        self.state = State::Stopped;
    }
}

impl FormatScanner for TarScanner {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match self.state {
                State::Header => {
                    let take = (BLOCK - self.block.len()).min(rest.len());
                    self.block
                        .extend_from_slice(rest.get(..take).unwrap_or_default());
                    rest = rest.get(take..).unwrap_or_default();
                    if self.block.len() == BLOCK {
                        self.header(cx);
                    }
                }
                State::Data { left, pad } | State::Meta { left, pad, .. } if left == 0 => {
                    let take = rest.len().min(usize::try_from(pad).unwrap_or(usize::MAX));
                    rest = rest.get(take..).unwrap_or_default();
                    let pad = pad - take as u64;
                    if pad == 0 {
                        self.state = State::Header;
                    } else if let State::Data { .. } = self.state {
                        self.state = State::Data { left: 0, pad };
                    } else if let State::Meta { pax, .. } = self.state {
                        self.state = State::Meta { left: 0, pad, pax };
                    }
                }
                State::Data { left, pad } => {
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let piece = rest.get(..take).unwrap_or_default();
                    rest = rest.get(take..).unwrap_or_default();
                    if let Some(s) = self.current.as_mut().and_then(|m| m.scanner.as_mut()) {
                        s.feed(piece, cx);
                    }
                    let left = left - take as u64;
                    self.state = State::Data { left, pad };
                    if left == 0 {
                        self.end_member(cx);
                    }
                }
                State::Meta { left, pad, pax } => {
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let room = MAX_LONG_NAME.saturating_sub(self.meta.len()).min(take);
                    self.meta
                        .extend_from_slice(rest.get(..room).unwrap_or_default());
                    rest = rest.get(take..).unwrap_or_default();
                    let left = left - take as u64;
                    self.state = State::Meta { left, pad, pax };
                    if left == 0 {
                        self.end_meta(pax);
                    }
                }
                State::End | State::Stopped => rest = &[],
            }
        }
    }

    fn finish(mut self: Box<Self>, cx: &mut ScanCx<'_>) -> FormatFacts {
        // A tar that stops at a block boundary after its members, without the two zero
        // blocks, is accepted by every reader.
        let clean_stop = self.state == State::Header && self.block.is_empty() && self.count > 0;
        let truncated = !(matches!(self.state, State::End | State::Stopped) || clean_stop);
        if self.current.is_some() {
            self.end_member(cx);
        }
        if truncated {
            self.hit(malformed("tar archive truncated"));
        }
        let stopped = self.state == State::Stopped;
        let encryption = if self.clear > 0 {
            Encryption::not_encrypted("tar has no encryption; members are not encrypted")
        } else if truncated || stopped {
            Encryption::unknown("archive incomplete or unreadable")
        } else if let Some(kind) = self.encrypted {
            Encryption::encrypted(kind, "all members are encrypted files")
        } else {
            Encryption::not_encrypted("archive has no member with content")
        };
        FormatFacts {
            file_type: FileType::Tar,
            encryption,
            members: self.members,
            limits: self.hits,
        }
    }
}

fn checksum_ok(b: &[u8]) -> bool {
    let stored = parse_size(slice(b, 148, 8));
    let sum: u64 = b
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(x)
            }
        })
        .sum();
    stored == sum
}

/// Octal, NUL/space terminated; or base-256 when the high bit of the first byte is set.
fn parse_size(field: &[u8]) -> u64 {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        return field.iter().skip(1).fold(0u64, |n, &b| {
            n.saturating_mul(256).saturating_add(u64::from(b))
        });
    }
    field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| (b'0'..=b'7').contains(&b))
        .fold(0u64, |n, &b| {
            n.saturating_mul(8).saturating_add(u64::from(b - b'0'))
        })
}

fn ustar_name(b: &[u8]) -> Vec<u8> {
    let field = |at, len| {
        let f = slice(b, at, len);
        f.split(|&x| x == 0).next().unwrap_or_default()
    };
    let name = field(0, 100);
    let prefix = field(345, 155);
    if slice(b, 257, 5) == b"ustar" && !prefix.is_empty() {
        [prefix, b"/", name].concat()
    } else {
        name.to_vec()
    }
}

/// The `path` record of a pax extended header (`"NN path=value\n"` records).
fn pax_path(meta: &[u8]) -> Option<&[u8]> {
    let mut rest = meta;
    while !rest.is_empty() {
        let sp = memchr::memchr(b' ', rest)?;
        let len: usize = std::str::from_utf8(rest.get(..sp)?).ok()?.parse().ok()?;
        let record = rest.get(sp + 1..len)?;
        if let Some(value) = record.strip_prefix(b"path=") {
            return Some(value.strip_suffix(b"\n").unwrap_or(value));
        }
        rest = rest.get(len..)?;
    }
    None
}
