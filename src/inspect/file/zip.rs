//! ZIP archives (and the OOXML, ODF, EPUB and JAR packages built on them), streamed.
//!
//! The proxy sees a ZIP front to back, so the scanner reads local headers as they arrive: each
//! member's encryption flags, its name (sent to the sink: names stay readable even in encrypted
//! archives) and its data, inflated and handed to a nested scanner one level deeper (or to the
//! OOXML/ODF text extractors for package parts). The central directory streams past at the
//! end and confirms every member's flags and sizes: a local header that disagrees with the
//! directory is reported, since readers trust the directory. The verdict waits for the end: a
//! later member may always be clear.

mod header;
mod hunt;
mod member;
mod verdict;

use self::header::{
    CENTRAL_FIXED, EOCD_FIXED, Header, LOCAL_FIXED, METHOD_DEFLATE, METHOD_STORED, Protection,
    SIG_ARCHIVE_EXTRA, SIG_CENTRAL, SIG_DESCRIPTOR, SIG_EOCD, SIG_LOCAL, SIG_ZIP64_EOCD,
    SIG_ZIP64_LOCATOR,
};
use self::hunt::{HUNT_SLICE, Hunt};
use self::member::{Consumer, Package};
use self::verdict::{Entry, Outcome};
use crate::inspect::file::bytes::{u16_at, u64_at};
use crate::inspect::file::expand::{Deflate, Expander, Fed, malformed};
use crate::inspect::file::{FormatFacts, FormatScanner, ScanCx};
use crate::inspect::report::{LimitHit, LimitKind};

/// At most this many limit hits are kept per archive (nested ones included).
const MAX_HITS: usize = 32;
/// Compressed bytes inflated at a time for a part read only for its type.
const HEAD_SLICE: usize = 256;

pub(crate) struct ZipScanner {
    depth: u8,
    state: St,
    /// Header bytes gathered across chunks (one record at a time).
    buf: Vec<u8>,
    entries: Vec<Entry>,
    current: Option<Current>,
    inflate: Expander<Deflate>,
    hunt: Hunt,
    /// Bytes taken by a hunt that belong to the records after the member.
    replay: Option<Vec<u8>>,
    pkg: Package,
    out: Outcome,
    /// Offset in the file of the next input byte, and of the record being gathered.
    pos: u64,
    record_start: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Sig,
    Local,
    Data(Data),
    Descriptor,
    Skip(u64),
    Central,
    Zip64Eocd,
    Eocd,
    /// After the end record: nothing should follow.
    Trailing,
    /// An encrypted central directory: nothing more can be read.
    Opaque,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    /// Compressed size known from the header.
    Counted { left: u64, inflate: bool },
    /// Deflate with the size after the data: the deflate stream marks its own end.
    Inflate,
    /// Neither: look for the next signature.
    Hunt,
}

/// The member whose data is streaming.
struct Current {
    entry: usize,
    header: Header,
    consumer: Consumer,
    /// The consumer stopped (limit or corrupt data); the rest of the data is skipped.
    stalled: bool,
}

// === impl ZipScanner ===

impl ZipScanner {
    pub(crate) fn new(depth: u8) -> Self {
        Self {
            depth,
            state: St::Sig,
            buf: Vec::new(),
            entries: Vec::new(),
            current: None,
            inflate: Expander::new(Deflate::new()),
            hunt: Hunt::default(),
            replay: None,
            pkg: Package::default(),
            out: Outcome::default(),
            pos: 0,
            record_start: 0,
        }
    }

    /// Consumes from `input` until it is used up or a hunt hands back bytes to replay; returns
    /// the bytes used.
    fn run(&mut self, input: &[u8], cx: &mut ScanCx<'_>) -> usize {
        let mut rest = input;
        while !rest.is_empty() && self.replay.is_none() {
            let before = rest.len();
            let state = self.state;
            match state {
                St::Sig => self.sig(&mut rest),
                St::Local => self.local(&mut rest, cx),
                St::Data(data) => self.data(data, &mut rest, cx),
                St::Descriptor => self.descriptor(&mut rest),
                St::Skip(n) => {
                    let take = rest.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    rest = rest.get(take..).unwrap_or_default();
                    let left = n - take as u64;
                    self.state = if left == 0 { St::Sig } else { St::Skip(left) };
                }
                St::Central => self.central(&mut rest),
                St::Zip64Eocd => self.zip64_eocd(&mut rest),
                St::Eocd => self.eocd(&mut rest),
                St::Trailing => {
                    self.out.trailing += rest.len() as u64;
                    rest = &[];
                }
                St::Opaque | St::Stopped => rest = &[],
            }
            self.pos += (before - rest.len()) as u64;
            if let Some(replay) = &self.replay {
                self.pos -= replay.len() as u64;
            }
            if rest.len() == before && self.state == state && self.replay.is_none() {
                // Defensive: a state that makes no progress must not spin.
                self.stop(malformed("zip parser made no progress"));
            }
        }
        input.len() - rest.len()
    }

    /// Gathers bytes into `buf` until it holds `need`; true when it does.
    fn gather(&mut self, rest: &mut &[u8], need: usize) -> bool {
        let take = need.saturating_sub(self.buf.len()).min(rest.len());
        self.buf
            .extend_from_slice(rest.get(..take).unwrap_or_default());
        *rest = rest.get(take..).unwrap_or_default();
        self.buf.len() >= need
    }

    fn sig(&mut self, rest: &mut &[u8]) {
        if self.buf.is_empty() {
            self.record_start = self.pos;
        }
        if !self.gather(rest, 4) {
            return;
        }
        let sig: [u8; 4] = crate::inspect::file::bytes::le(&self.buf, 0);
        self.state = match sig {
            SIG_LOCAL => St::Local,
            SIG_CENTRAL => St::Central,
            SIG_EOCD => St::Eocd,
            SIG_ZIP64_EOCD => St::Zip64Eocd,
            // Locator: 20 bytes in all.
            SIG_ZIP64_LOCATOR => {
                self.buf.clear();
                St::Skip(16)
            }
            SIG_ARCHIVE_EXTRA => St::Opaque,
            _ if self.out.masked => St::Opaque,
            _ => {
                self.stop(malformed("unexpected bytes between zip records"));
                return;
            }
        };
        if self.state == St::Opaque {
            self.out.cd_encrypted = true;
        }
    }

    fn local(&mut self, rest: &mut &[u8], cx: &mut ScanCx<'_>) {
        if !self.gather(rest, LOCAL_FIXED) {
            return;
        }
        let need = LOCAL_FIXED + header::local_var_len(&self.buf);
        if !self.gather(rest, need) {
            return;
        }
        let h = header::parse_local(&self.buf);
        self.buf.clear();
        if self.entries.len() >= cx.config.limits.max_members as usize {
            self.out.members_exceeded = true;
            self.stop(LimitHit {
                kind: LimitKind::Members,
                detail: "more zip members than allowed".into(),
            });
            return;
        }
        self.start_member(h, cx);
    }

    fn start_member(&mut self, h: Header, cx: &mut ScanCx<'_>) {
        cx.sink
            .text(&h.name, crate::inspect::sink::TextOrigin::FileName);
        cx.sink.end_text();
        let offset = self.record_start;
        let prot = h.protection();
        if h.flags & header::FLAG_MASKED != 0 {
            self.out.masked = true;
        }
        let readable = prot == Protection::None
            && (h.method == METHOD_STORED || h.method == METHOD_DEFLATE)
            && !h.is_dir();
        let consumer = if readable {
            let (consumer, hit) = self.pkg.route(&h.name, self.depth, cx);
            if let Some(hit) = hit {
                self.out.hit(hit);
            }
            consumer
        } else {
            if prot == Protection::None && !h.is_dir() && h.csize != 0 {
                self.out.hit(LimitHit {
                    kind: LimitKind::UnsupportedEncoding,
                    detail: "zip member compression method not supported".into(),
                });
            }
            Consumer::Ignore
        };
        let data = if h.size_unknown() {
            if h.method == METHOD_DEFLATE && prot == Protection::None {
                self.inflate.codec_mut().0.reset(false);
                self.inflate.restart();
                Data::Inflate
            } else {
                self.hunt.start(h.has_descriptor(), h.zip64);
                Data::Hunt
            }
        } else {
            if consumer.wants_data() && h.method == METHOD_DEFLATE {
                self.inflate.codec_mut().0.reset(false);
                self.inflate.restart();
            }
            Data::Counted {
                left: h.csize,
                inflate: h.method == METHOD_DEFLATE,
            }
        };
        self.entries
            .push(Entry::from_local(&h, offset, self.entries.len()));
        self.current = Some(Current {
            entry: self.entries.len() - 1,
            header: h,
            consumer,
            stalled: false,
        });
        self.state = St::Data(data);
        if data
            == (Data::Counted {
                left: 0,
                inflate: false,
            })
            || data
                == (Data::Counted {
                    left: 0,
                    inflate: true,
                })
        {
            self.end_member(0, cx);
        }
    }

    fn data(&mut self, data: Data, rest: &mut &[u8], cx: &mut ScanCx<'_>) {
        match data {
            Data::Counted { left, inflate } => {
                let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let (piece, after) = rest.split_at(take);
                *rest = after;
                self.deliver(piece, inflate, cx);
                let left = left - take as u64;
                self.state = St::Data(Data::Counted { left, inflate });
                if left == 0 {
                    let consumed = self.current.as_ref().map_or(0, |c| c.header.csize);
                    self.end_member(consumed, cx);
                }
            }
            Data::Inflate => self.inflate_unknown(rest, cx),
            Data::Hunt => self.hunt_step(rest, cx),
        }
    }

    /// Hands member data to its consumer, inflating if needed.
    fn deliver(&mut self, piece: &[u8], inflate: bool, cx: &mut ScanCx<'_>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if cur.stalled || !cur.consumer.wants_data() {
            return;
        }
        let entry = self.entries.get_mut(cur.entry);
        if !inflate {
            cur.consumer.feed(piece, &mut self.pkg, cx);
            if let Some(e) = entry {
                e.produced += piece.len() as u64;
            }
            return;
        }
        let consumer = &mut cur.consumer;
        let pkg = &mut self.pkg;
        // A part read only for its type gets a little input at a time, so inflating stops
        // soon after its first bytes.
        let step = if consumer.head_only() {
            HEAD_SLICE
        } else {
            piece.len().max(1)
        };
        let mut fed = Fed::More;
        for slice in piece.chunks(step) {
            if !consumer.wants_data() {
                break;
            }
            fed = self
                .inflate
                .feed(slice, cx, &mut |out, cx| consumer.feed(out, pkg, cx));
            if !matches!(fed, Fed::More) {
                break;
            }
        }
        if let Some(e) = entry {
            e.produced = self.inflate.written();
        }
        if let Fed::Stop(hit) = fed {
            cur.stalled = true;
            self.out.hit(hit);
        }
    }

    fn inflate_unknown(&mut self, rest: &mut &[u8], cx: &mut ScanCx<'_>) {
        let Some(cur) = self.current.as_mut() else {
            self.stop(malformed("zip member state lost"));
            return;
        };
        let consumer = &mut cur.consumer;
        let pkg = &mut self.pkg;
        let fed = self
            .inflate
            .feed(rest, cx, &mut |out, cx| consumer.feed(out, pkg, cx));
        if let Some(e) = self.entries.get_mut(cur.entry) {
            e.produced = self.inflate.written();
        }
        match fed {
            Fed::More => *rest = &[],
            Fed::End(n) => {
                *rest = rest.get(n..).unwrap_or_default();
                let consumed = self.inflate_total_in();
                self.end_member(consumed, cx);
                self.state = St::Descriptor;
            }
            Fed::Stop(hit) => {
                // Without inflating, the end of this member cannot be found.
                *rest = &[];
                self.stop(hit);
            }
        }
    }

    fn inflate_total_in(&mut self) -> u64 {
        self.inflate.codec_mut().0.total_in()
    }

    fn hunt_step(&mut self, rest: &mut &[u8], cx: &mut ScanCx<'_>) {
        let take = rest.len().min(HUNT_SLICE);
        let (piece, after) = rest.split_at(take);
        *rest = after;
        let mut released = Vec::new();
        let end = self.hunt.push(piece, &mut |data| {
            released.extend_from_slice(data);
        });
        if !released.is_empty() {
            self.deliver(&released, false, cx);
        }
        if let Some(end) = end {
            self.end_member(end.data_len, cx);
            self.state = St::Sig;
            self.replay = Some(end.replay);
        }
    }

    fn descriptor(&mut self, rest: &mut &[u8]) {
        if !self.gather(rest, 4) {
            return;
        }
        let zip64 = self.entries.last().is_some_and(|e| e.zip64);
        let width = if zip64 { 16 } else { 8 };
        let sig: [u8; 4] = crate::inspect::file::bytes::le(&self.buf, 0);
        self.buf.clear();
        // The signature is optional: without it, the 4 bytes read were the CRC.
        let left = if sig == SIG_DESCRIPTOR {
            4 + width
        } else {
            width
        };
        self.state = St::Skip(left);
    }

    fn end_member(&mut self, consumed: u64, cx: &mut ScanCx<'_>) {
        let Some(cur) = self.current.take() else {
            return;
        };
        let facts = cur.consumer.finish(&mut self.pkg, cx);
        cx.sink.end_text();
        if let Some(e) = self.entries.get_mut(cur.entry) {
            e.consumed = consumed;
            if let Some(facts) = facts {
                for hit in &facts.limits {
                    self.out.hit(hit.clone());
                }
                e.facts = Some((facts.file_type, facts.encryption));
            }
        }
        if !matches!(self.state, St::Data(Data::Inflate)) {
            self.state = if cur.header.has_descriptor() && !cur.header.size_unknown() {
                St::Descriptor
            } else {
                St::Sig
            };
        }
    }

    fn central(&mut self, rest: &mut &[u8]) {
        if !self.gather(rest, CENTRAL_FIXED) {
            return;
        }
        let need = CENTRAL_FIXED + header::central_var_len(&self.buf);
        if !self.gather(rest, need) {
            return;
        }
        let h = header::parse_central(&self.buf);
        self.buf.clear();
        self.out.confirm(&mut self.entries, &h);
        self.state = St::Sig;
    }

    fn zip64_eocd(&mut self, rest: &mut &[u8]) {
        if !self.gather(rest, 12) {
            return;
        }
        let size = u64_at(&self.buf, 4);
        self.buf.clear();
        self.state = St::Skip(size);
    }

    fn eocd(&mut self, rest: &mut &[u8]) {
        if !self.gather(rest, EOCD_FIXED) {
            return;
        }
        let need = EOCD_FIXED + usize::from(u16_at(&self.buf, 20));
        if !self.gather(rest, need) {
            return;
        }
        self.buf.clear();
        self.out.eocd = true;
        self.state = St::Trailing;
    }

    fn stop(&mut self, hit: LimitHit) {
        if self.state != St::Stopped {
            self.out.stopped = true;
            self.out.hit(hit);
            self.state = St::Stopped;
            self.replay = None;
        }
    }
}

impl FormatScanner for ZipScanner {
    fn feed(&mut self, chunk: &[u8], cx: &mut ScanCx<'_>) {
        let mut rest = chunk;
        loop {
            let used = self.run(rest, cx);
            rest = rest.get(used..).unwrap_or_default();
            if let Some(replay) = self.replay.take() {
                self.replay_all(replay, cx);
            } else if rest.is_empty() {
                break;
            }
        }
    }

    fn settled(&self) -> bool {
        // Only a stop is final: any later member may be clear, and the central directory must
        // still confirm the flags.
        self.state == St::Stopped
    }

    fn finish(mut self: Box<Self>, cx: &mut ScanCx<'_>) -> FormatFacts {
        if let Some(cur) = self.current.take() {
            // Truncated inside a member: report what was seen of it.
            let _ = cur.consumer.finish(&mut self.pkg, cx);
            cx.sink.end_text();
        }
        if !self.buf.is_empty() || !matches!(self.state, St::Trailing | St::Opaque | St::Stopped) {
            self.out.truncated = true;
        }
        let file_type = self.pkg.file_type();
        let pkg_verdict = self.pkg.finish(cx);
        let mut facts = verdict::facts(
            self.entries,
            self.out,
            file_type,
            pkg_verdict,
            cx.config.limits.max_members,
        );
        for m in &mut facts.members {
            if let Some(e) = self.pkg.member_encryption(&m.name) {
                m.encryption = e;
            }
        }
        facts
    }
}

impl ZipScanner {
    fn replay_all(&mut self, mut data: Vec<u8>, cx: &mut ScanCx<'_>) {
        let mut pos = 0;
        loop {
            let used = self.run(data.get(pos..).unwrap_or_default(), cx);
            pos += used;
            if let Some(mut again) = self.replay.take() {
                again.extend_from_slice(data.get(pos..).unwrap_or_default());
                data = again;
                pos = 0;
            } else if pos >= data.len() {
                return;
            }
        }
    }
}

impl verdict::Outcome {
    fn hit(&mut self, hit: LimitHit) {
        if self.hits.len() < MAX_HITS && !self.hits.contains(&hit) {
            self.hits.push(hit);
        }
    }
}

#[cfg(test)]
#[path = "zip_tests.rs"]
mod tests;
