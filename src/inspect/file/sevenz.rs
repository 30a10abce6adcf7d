//! 7z archives: the verdict comes from the header at the end of the file.
//!
//! The 32-byte signature header says where the real header is (`NextHeaderOffset/Size`). The
//! scanner skips the packed streams, keeping only their last bytes (a compressed header is
//! usually packed there), then buffers the header alone, capped by `max_buffer_bytes`. A header
//! that is itself encrypted (`-mhe=on`: the EncodedHeader's folder has an AES coder) means
//! names and data are encrypted. Otherwise the header is LZMA-decoded (capped) and every
//! folder's coders are checked: all data folders AES → encrypted; any folder without → not.
//! Member names go to the sink. Member content is not scanned (solid LZMA streams).

mod header;

use self::header::{Archive, Parsed};
use crate::inspect::file::bytes::u64_at;
use crate::inspect::file::expand::malformed;
use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{Encryption, EncryptionKind, FileType, LimitHit, LimitKind};
use crate::inspect::sink::TextOrigin;

const SIGNATURE: [u8; 6] = *b"7z\xBC\xAF\x27\x1C";
/// Packed bytes kept before the header, for a compressed header packed there.
const PACKED_TAIL: u64 = 1 << 20;

pub(crate) struct SevenZipScanner {
    state: State,
    start: Vec<u8>,
    /// Last packed bytes before the header.
    tail: Vec<u8>,
    header: Vec<u8>,
    next_offset: u64,
    next_size: u64,
    verdict: Option<Encryption>,
    hits: Vec<LimitHit>,
    members: Vec<crate::inspect::report::MemberReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Packed(u64),
    Header,
    Done,
}

// === impl SevenZipScanner ===

impl SevenZipScanner {
    pub(crate) fn new() -> Self {
        Self {
            state: State::Start,
            start: Vec::with_capacity(32),
            tail: Vec::new(),
            header: Vec::new(),
            next_offset: 0,
            next_size: 0,
            verdict: None,
            hits: Vec::new(),
            members: Vec::new(),
        }
    }

    fn start(&mut self, cx: &mut ScanCx<'_>) {
        if self.start.get(..6) != Some(&SIGNATURE[..]) {
            return self.fail(malformed("not a 7z signature header"));
        }
        self.next_offset = u64_at(&self.start, 12);
        self.next_size = u64_at(&self.start, 20);
        if self.next_size == 0 {
            self.verdict = Some(Encryption::not_encrypted("empty 7z archive"));
            self.state = State::Done;
        } else if self.next_size > cx.config.limits.max_buffer_bytes as u64 {
            self.fail(LimitHit {
                kind: LimitKind::Buffer,
                detail: "7z header larger than buffer cap".into(),
            });
        } else {
            self.state = State::Packed(self.next_offset);
        }
    }

    fn decide(&mut self, cx: &mut ScanCx<'_>) {
        let tail_start = 32 + self.next_offset - self.tail.len() as u64;
        let parsed = header::parse(&self.header, &self.tail, tail_start, cx);
        match parsed {
            Ok(Parsed::EncryptedHeader) => {
                self.verdict = Some(Encryption::encrypted(
                    EncryptionKind::SevenZipAes,
                    "headers and data encrypted",
                ));
            }
            Ok(Parsed::Archive(archive)) => self.judge(archive, cx),
            Err(hit) => self.fail(hit),
        }
        self.state = State::Done;
        self.tail = Vec::new();
        self.header = Vec::new();
    }

    fn judge(&mut self, archive: Archive, cx: &mut ScanCx<'_>) {
        for file in &archive.files {
            cx.sink.text(&file.name, TextOrigin::FileName);
            cx.sink.end_text();
        }
        let max = cx.config.limits.max_members as usize;
        if archive.files.len() > max {
            self.hits.push(LimitHit {
                kind: LimitKind::Members,
                detail: "more 7z members than allowed".into(),
            });
            self.verdict = Some(Encryption::unknown("more members than allowed"));
            return;
        }
        self.members = archive.member_reports();
        let used: Vec<bool> = archive.folders_in_use();
        let total = used.iter().filter(|u| **u).count();
        let clear = archive
            .folders
            .iter()
            .zip(&used)
            .filter(|(f, u)| **u && !f.aes)
            .count();
        self.verdict = Some(if total == 0 {
            Encryption::not_encrypted("archive has no member with content")
        } else if clear > 0 {
            Encryption::not_encrypted(format!("{clear} of {total} folders are not encrypted"))
        } else {
            Encryption::encrypted(
                EncryptionKind::SevenZipAes,
                "all data encrypted; names readable",
            )
        });
    }

    fn fail(&mut self, hit: LimitHit) {
        self.hits.push(hit);
        self.state = State::Done;
    }
}

impl FormatScanner for SevenZipScanner {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match self.state {
                State::Start => {
                    let take = (32 - self.start.len()).min(rest.len());
                    self.start
                        .extend_from_slice(rest.get(..take).unwrap_or_default());
                    rest = rest.get(take..).unwrap_or_default();
                    if self.start.len() == 32 {
                        self.start(cx);
                    }
                }
                State::Packed(left) => {
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let piece = rest.get(..take).unwrap_or_default();
                    rest = rest.get(take..).unwrap_or_default();
                    let keep_from = left.saturating_sub(PACKED_TAIL.min(self.next_offset));
                    // Bytes of `piece` that fall in the kept tail.
                    let skip = usize::try_from(keep_from.min(take as u64)).unwrap_or(take);
                    self.tail
                        .extend_from_slice(piece.get(skip..).unwrap_or_default());
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::Header
                    } else {
                        State::Packed(left)
                    };
                }
                State::Header => {
                    let need = usize::try_from(self.next_size).unwrap_or(usize::MAX);
                    let take = need.saturating_sub(self.header.len()).min(rest.len());
                    self.header
                        .extend_from_slice(rest.get(..take).unwrap_or_default());
                    rest = rest.get(take..).unwrap_or_default();
                    if self.header.len() >= need {
                        self.decide(cx);
                    }
                }
                State::Done => rest = &[],
            }
        }
    }

    fn settled(&self) -> bool {
        self.state == State::Done
    }

    fn finish(mut self: Box<Self>, _cx: &mut ScanCx<'_>) -> FormatFacts {
        if self.state != State::Done {
            self.hits.push(malformed("7z archive truncated"));
        }
        let encryption = self
            .verdict
            .take()
            .unwrap_or_else(|| Encryption::unknown("7z header not read"));
        FormatFacts {
            file_type: FileType::SevenZip,
            encryption,
            members: self.members,
            limits: self.hits,
        }
    }
}

#[cfg(test)]
#[path = "sevenz_tests.rs"]
mod tests;
