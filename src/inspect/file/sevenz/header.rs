//! The 7z header: property-id records (7-Zip's `7zFormat.txt`), decoded only as far as the
//! verdict needs: folders and their coders, stream counts, empty-stream flags and names.

use crate::inspect::file::ScanCx;
use crate::inspect::file::expand::{Expander, Fed, Lzma, malformed};
use crate::inspect::report::{Encryption, EncryptionKind, FileType, LimitHit, MemberReport};

const AES: &[u8] = &[0x06, 0xF1, 0x07, 0x01];
const LZMA: &[u8] = &[0x03, 0x01, 0x01];
const LZMA2: &[u8] = &[0x21];
const COPY: &[u8] = &[0x00];
/// An encoded header may wrap another; real archives use one level.
const MAX_NESTING: u8 = 4;

pub(super) enum Parsed {
    EncryptedHeader,
    Archive(Archive),
}

#[derive(Debug, Default)]
pub(super) struct Folder {
    pub(super) aes: bool,
    coder: Option<(Vec<u8>, Vec<u8>)>,
    coders: usize,
    unpack_sizes: Vec<u64>,
    /// The coder output that is the folder's result (bound to no other coder's input).
    main_out: usize,
    crc_defined: bool,
}

#[derive(Debug, Default)]
struct Streams {
    pack_pos: u64,
    pack_sizes: Vec<u64>,
    folders: Vec<Folder>,
    unpack_streams: Vec<u64>,
    /// Unpacked size of each stream (file content), folder by folder, when listed.
    sizes: Option<Vec<u64>>,
}

pub(super) struct File {
    pub(super) name: Vec<u8>,
    has_stream: bool,
}

#[derive(Default)]
pub(super) struct Archive {
    pub(super) folders: Vec<Folder>,
    unpack_streams: Vec<u64>,
    sizes: Vec<u64>,
    pub(super) files: Vec<File>,
}

type R<T> = Result<T, LimitHit>;

fn bad() -> LimitHit {
    malformed("corrupt 7z header")
}

struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

// === impl Cur ===

impl<'a> Cur<'a> {
    fn byte(&mut self) -> R<u8> {
        let v = *self.b.get(self.at).ok_or_else(bad)?;
        self.at += 1;
        Ok(v)
    }

    fn bytes(&mut self, n: u64) -> R<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| bad())?;
        let v = self
            .b
            .get(self.at..self.at.checked_add(n).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        self.at += n;
        Ok(v)
    }

    fn number(&mut self) -> R<u64> {
        let first = self.byte()?;
        let mut mask = 0x80u8;
        let mut value = 0u64;
        for i in 0..8 {
            if first & mask == 0 {
                let high = u64::from(first & mask.wrapping_sub(1));
                return Ok(value | (high << (8 * i)));
            }
            value |= u64::from(self.byte()?) << (8 * i);
            mask >>= 1;
        }
        Ok(value)
    }

    /// A count that must fit what is left of the buffer (no huge allocations from lies).
    fn count(&mut self) -> R<usize> {
        let n = self.number()?;
        if n > (self.b.len() - self.at.min(self.b.len())) as u64 + 1 {
            return Err(bad());
        }
        usize::try_from(n).map_err(|_| bad())
    }

    fn bits(&mut self, n: usize) -> R<Vec<bool>> {
        let bytes = self.bytes(n.div_ceil(8) as u64)?;
        Ok((0..n)
            .map(|i| bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
            .collect())
    }

    fn defined(&mut self, n: usize) -> R<Vec<bool>> {
        if self.byte()? != 0 {
            Ok(vec![true; n])
        } else {
            self.bits(n)
        }
    }

    fn digests(&mut self, n: usize) -> R<Vec<bool>> {
        let defined = self.defined(n)?;
        let count = defined.iter().filter(|d| **d).count();
        self.bytes(4 * count as u64)?;
        Ok(defined)
    }
}

/// Parses the header at the end of the file; `tail` holds the packed bytes just before it
/// (starting at file offset `tail_start`) for an encoded header.
pub(super) fn parse(header: &[u8], tail: &[u8], tail_start: u64, cx: &mut ScanCx<'_>) -> R<Parsed> {
    let mut owned: Vec<u8>;
    let mut buf = header;
    for _ in 0..MAX_NESTING {
        let mut cur = Cur { b: buf, at: 0 };
        match cur.byte()? {
            0x01 => return read_header(&mut cur).map(Parsed::Archive),
            0x17 => {
                let streams = read_streams(&mut cur)?;
                let folder = streams.folders.first().ok_or_else(bad)?;
                if streams.folders.iter().any(|f| f.aes) {
                    return Ok(Parsed::EncryptedHeader);
                }
                owned = decode(&streams, folder, tail, tail_start, cx)?;
                buf = &owned;
            }
            _ => return Err(bad()),
        }
    }
    Err(bad())
}

fn decode(
    s: &Streams,
    f: &Folder,
    tail: &[u8],
    tail_start: u64,
    cx: &mut ScanCx<'_>,
) -> R<Vec<u8>> {
    let (id, props) = f
        .coder
        .as_ref()
        .filter(|_| f.coders == 1)
        .ok_or_else(|| malformed("7z header uses an unsupported coder chain"))?;
    let size = *f.unpack_sizes.last().ok_or_else(bad)?;
    if size > cx.config.limits.max_buffer_bytes as u64 {
        return Err(LimitHit {
            kind: crate::inspect::report::LimitKind::Buffer,
            detail: "7z header larger than buffer cap".into(),
        });
    }
    let pack_size = *s.pack_sizes.first().ok_or_else(bad)?;
    let from = (32 + s.pack_pos)
        .checked_sub(tail_start)
        .ok_or_else(|| LimitHit {
            kind: crate::inspect::report::LimitKind::Buffer,
            detail: "7z packed header outside the kept tail".into(),
        })?;
    let packed = tail
        .get(usize::try_from(from).map_err(|_| bad())?..)
        .and_then(|t| t.get(..usize::try_from(pack_size).ok()?))
        .ok_or_else(bad)?;
    if id.as_slice() == COPY {
        return Ok(packed.to_vec());
    }
    let dict = u32::try_from(size.max(4096)).unwrap_or(u32::MAX);
    let mut opts = liblzma::stream::LzmaOptions::new();
    let mut filters = liblzma::stream::Filters::new();
    if id.as_slice() == LZMA {
        let d = *props.first().ok_or_else(bad)?;
        if d >= 9 * 5 * 5 {
            return Err(bad());
        }
        opts.literal_context_bits(u32::from(d % 9))
            .literal_position_bits(u32::from(d / 9 % 5))
            .position_bits(u32::from(d / 45))
            .dict_size(dict);
        filters.lzma1(&opts);
    } else if id.as_slice() == LZMA2 {
        opts.dict_size(dict);
        filters.lzma2(&opts);
    } else {
        return Err(malformed("7z header uses an unsupported coder"));
    }
    let stream = liblzma::stream::Stream::new_raw_decoder(&filters).map_err(|_| bad())?;
    let mut lzma = Expander::new(Lzma(stream));
    let cap = usize::try_from(size).map_err(|_| bad())?;
    let mut out = Vec::with_capacity(cap);
    let fed = lzma.feed(packed, cx, &mut |piece, _| {
        let room = cap.saturating_sub(out.len()).min(piece.len());
        out.extend_from_slice(piece.get(..room).unwrap_or_default());
    });
    if let Fed::Stop(hit) = fed
        && out.len() < cap
    {
        return Err(hit);
    }
    if out.len() < cap {
        return Err(malformed("7z header shorter than declared"));
    }
    Ok(out)
}

fn read_header(cur: &mut Cur<'_>) -> R<Archive> {
    let mut archive = Archive::default();
    loop {
        match cur.byte()? {
            0x00 => return Ok(archive),
            0x02 => loop {
                if cur.number()? == 0 {
                    break;
                }
                let n = cur.number()?;
                cur.bytes(n)?;
            },
            0x03 => {
                read_streams(cur)?;
            }
            0x04 => {
                let s = read_streams(cur)?;
                archive.sizes = s.stream_sizes();
                archive.folders = s.folders;
                archive.unpack_streams = s.unpack_streams;
            }
            0x05 => archive.files = read_files(cur)?,
            _ => return Err(bad()),
        }
    }
}

fn read_streams(cur: &mut Cur<'_>) -> R<Streams> {
    let mut s = Streams::default();
    loop {
        match cur.byte()? {
            0x00 => return Ok(s),
            0x06 => {
                s.pack_pos = cur.number()?;
                let n = cur.count()?;
                loop {
                    match cur.byte()? {
                        0x00 => break,
                        0x09 => s.pack_sizes = (0..n).map(|_| cur.number()).collect::<R<_>>()?,
                        0x0A => drop(cur.digests(n)?),
                        _ => return Err(bad()),
                    }
                }
            }
            0x07 => read_unpack(cur, &mut s)?,
            0x08 => read_substreams(cur, &mut s)?,
            _ => return Err(bad()),
        }
    }
}

fn read_unpack(cur: &mut Cur<'_>, s: &mut Streams) -> R<()> {
    if cur.byte()? != 0x0B {
        return Err(bad());
    }
    let n = cur.count()?;
    if cur.byte()? != 0 {
        return Err(malformed("7z external folders not supported"));
    }
    let mut outs = Vec::with_capacity(n);
    for _ in 0..n {
        let (folder, out) = read_folder(cur)?;
        s.folders.push(folder);
        outs.push(out);
    }
    if cur.byte()? != 0x0C {
        return Err(bad());
    }
    for (folder, out) in s.folders.iter_mut().zip(outs) {
        folder.unpack_sizes = (0..out).map(|_| cur.number()).collect::<R<_>>()?;
    }
    s.unpack_streams = vec![1; n];
    loop {
        match cur.byte()? {
            0x00 => return Ok(()),
            0x0A => {
                for (f, d) in s.folders.iter_mut().zip(cur.digests(n)?) {
                    f.crc_defined = d;
                }
            }
            _ => return Err(bad()),
        }
    }
}

fn read_folder(cur: &mut Cur<'_>) -> R<(Folder, usize)> {
    let mut f = Folder::default();
    let coders = cur.count()?;
    let (mut ins, mut outs) = (0usize, 0usize);
    for _ in 0..coders {
        let flag = cur.byte()?;
        let id = cur.bytes(u64::from(flag & 0x0F))?;
        let (i, o) = if flag & 0x10 != 0 {
            (cur.count()?, cur.count()?)
        } else {
            (1, 1)
        };
        let props = if flag & 0x20 != 0 {
            let n = cur.number()?;
            cur.bytes(n)?
        } else {
            &[]
        };
        f.aes |= id == AES;
        f.coder = Some((id.to_vec(), props.to_vec()));
        ins += i;
        outs += o;
    }
    f.coders = coders;
    let mut bound = Vec::new();
    for _ in 0..outs.saturating_sub(1) {
        cur.number()?;
        bound.push(cur.number()?);
    }
    f.main_out = (0..outs)
        .find(|o| !bound.contains(&(*o as u64)))
        .unwrap_or(0);
    let packed = ins.saturating_sub(outs.saturating_sub(1));
    if packed > 1 {
        for _ in 0..packed {
            cur.number()?;
        }
    }
    Ok((f, outs))
}

fn read_substreams(cur: &mut Cur<'_>, s: &mut Streams) -> R<()> {
    loop {
        match cur.byte()? {
            0x00 => return Ok(()),
            0x0D => {
                for n in s.unpack_streams.iter_mut() {
                    *n = cur.number()?;
                }
            }
            0x09 => {
                let mut sizes = Vec::new();
                for (n, folder) in s.unpack_streams.iter().zip(&s.folders) {
                    if *n == 0 {
                        continue;
                    }
                    let mut sum = 0u64;
                    for _ in 1..*n {
                        let size = cur.number()?;
                        sum = sum.saturating_add(size);
                        sizes.push(size);
                    }
                    sizes.push(folder.size().saturating_sub(sum));
                }
                s.sizes = Some(sizes);
            }
            0x0A => {
                let count = s
                    .unpack_streams
                    .iter()
                    .zip(&s.folders)
                    .map(|(n, f)| {
                        if *n == 1 && f.crc_defined {
                            0
                        } else {
                            *n as usize
                        }
                    })
                    .sum();
                cur.digests(count)?;
            }
            _ => return Err(bad()),
        }
    }
}

fn read_files(cur: &mut Cur<'_>) -> R<Vec<File>> {
    let n = cur.count()?;
    let mut empty = vec![false; n];
    let mut names: Vec<Vec<u8>> = Vec::new();
    loop {
        let kind = cur.number()?;
        if kind == 0 {
            break;
        }
        let size = cur.number()?;
        let data = cur.bytes(size)?;
        match kind {
            0x0E => empty = Cur { b: data, at: 0 }.bits(n)?,
            0x11 => names = utf16_names(data.get(1..).unwrap_or_default()),
            _ => {}
        }
    }
    Ok((0..n)
        .map(|i| File {
            name: names.get(i).cloned().unwrap_or_default(),
            has_stream: !empty.get(i).copied().unwrap_or(false),
        })
        .collect())
}

fn utf16_names(b: &[u8]) -> Vec<Vec<u8>> {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    units
        .split(|&u| u == 0)
        .map(|name| String::from_utf16_lossy(name).into_bytes())
        .collect()
}

// === impl Folder ===

impl Folder {
    /// Unpacked size of the folder's result.
    fn size(&self) -> u64 {
        self.unpack_sizes.get(self.main_out).copied().unwrap_or(0)
    }
}

// === impl Streams ===

impl Streams {
    /// Each stream's size: as listed, or one stream per folder of the folder's size.
    fn stream_sizes(&self) -> Vec<u64> {
        if let Some(sizes) = &self.sizes {
            return sizes.clone();
        }
        self.unpack_streams
            .iter()
            .zip(&self.folders)
            .flat_map(|(n, f)| {
                let one = if *n == 1 { f.size() } else { 0 };
                std::iter::repeat_n(one, usize::try_from(*n).unwrap_or(0))
            })
            .collect()
    }
}

// === impl Archive ===

impl Archive {
    /// Which folders hold at least one file's data.
    pub(super) fn folders_in_use(&self) -> Vec<bool> {
        self.unpack_streams.iter().map(|n| *n > 0).collect()
    }

    pub(super) fn member_reports(&self) -> Vec<MemberReport> {
        let mut folder_of = Vec::new();
        for (i, n) in self.unpack_streams.iter().enumerate() {
            folder_of.extend(std::iter::repeat_n(i, usize::try_from(*n).unwrap_or(0)));
        }
        let mut streams = folder_of.into_iter().zip(self.sizes.iter().copied());
        self.files
            .iter()
            .take(1000)
            .map(|f| {
                let stream = if f.has_stream { streams.next() } else { None };
                let aes = stream
                    .and_then(|(i, _)| self.folders.get(i))
                    .is_some_and(|folder| folder.aes);
                let encryption = if aes {
                    Encryption::encrypted(EncryptionKind::SevenZipAes, "AES folder")
                } else if f.has_stream {
                    Encryption::not_encrypted("compressed, not encrypted")
                } else {
                    Encryption::not_encrypted("no content")
                };
                MemberReport {
                    name: String::from_utf8_lossy(&f.name).into_owned(),
                    file_type: FileType::Unknown,
                    size: stream.map_or(0, |(_, size)| size),
                    encryption,
                }
            })
            .collect()
    }
}
