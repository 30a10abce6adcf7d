//! Where held request bodies wait for their verdict.
//!
//! In enforce mode nothing of an inspected body goes upstream before the verdict, so the proxy
//! must keep what it has read. Small bodies stay in memory, within a per-request and a global
//! budget; the rest goes to a temporary file that has no name (unlinked at creation) and holds
//! only AES-256-GCM ciphertext under a key that exists in this process's memory alone. When the
//! spool is dropped the key is gone, so nothing readable ever rests on disk, whatever happens to
//! the file's blocks later.
//!
//! Spill files outlive their bodies, within a budget ([`SpillFiles`]): the next large body is
//! written over pages the page cache already holds and read back from memory. A fresh page costs
//! more than the copy into it, and on a virtual machine whose freed memory goes back to the host
//! far more (a fresh GiB took 0.75-1.8 CPU-seconds there, a cached one 0.05), so a file is
//! recycled as a database recycles its log segments. Blocks past what the cache holds are
//! written with direct I/O and join the cache when they are read back.

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes all spools together may keep in memory.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

/// Where and how much one body may be held.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub budget: Arc<MemoryBudget>,
    /// Memory one request may use before spilling.
    pub request_memory: u64,
    /// Where spilled bodies go.
    pub files: Arc<SpillFiles>,
}

/// The spill directory and the idle spill files kept there for the next large bodies.
#[derive(Debug)]
pub struct SpillFiles {
    dir: PathBuf,
    /// Bytes of idle files kept; 0 keeps none.
    keep: u64,
    /// Most recently used last: its pages are the likeliest to be cached still.
    idle: Mutex<Vec<SpillFile>>,
    /// Bytes written to spill files, by [`Through`].
    written: [AtomicU64; 2],
}

/// How a block reached its spill file.
#[derive(Debug, Clone, Copy)]
enum Through {
    /// Over pages the page cache holds, or on a file system without direct I/O.
    PageCache = 0,
    /// With direct I/O, to the disk.
    Disk = 1,
}

/// One unnamed spill file, opened twice.
#[derive(Debug)]
struct SpillFile {
    /// Reads, and writes to blocks the page cache already holds.
    cached: std::fs::File,
    /// The same file with direct I/O, for blocks past `warm`: written through the cache, each
    /// would cost a fresh page now and be read back from the disk anyway if memory runs short.
    /// `None` where the file system has no direct I/O (tmpfs).
    direct: Option<std::fs::File>,
    /// Bytes from the start written or read through the cache. The kernel may have evicted some
    /// since; that costs speed, never correctness.
    warm: u64,
    len: u64,
}

/// A held body: memory first, then an encrypted file.
pub struct Spool {
    config: SpoolConfig,
    memory: VecDeque<Bytes>,
    /// Bytes of `memory` reserved from the budget.
    reserved: u64,
    file: Option<Spill>,
    len: u64,
}

/// The spill file is written in blocks of this size, each one sealed record:
/// `len (u32 LE) | ciphertext | tag | zero padding`. Fixed, aligned blocks let a block bypass
/// the page cache (O_DIRECT) where the cache has no pages for it yet.
const BLOCK: usize = 1 << 20;
const TAG_LEN: usize = 16;
/// Plaintext bytes one block holds.
const PAYLOAD: usize = BLOCK - 4 - TAG_LEN;
/// Direct I/O wants buffers, offsets and lengths aligned to the device's block size.
const ALIGN: usize = 4096;

/// A 4 KiB-aligned piece of memory, so that a `Vec` of them is a direct-I/O buffer.
#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(4096))]
struct Page([u8; ALIGN]);

/// One block's worth of aligned memory.
struct BlockBuf(Vec<Page>);

/// The encrypted file: seals and writes blocks, reads and opens them. Dropped, it gives the
/// file back to [`SpillFiles`].
struct Sealer {
    /// `None` only while being dropped.
    file: Option<SpillFile>,
    home: Arc<SpillFiles>,
    key: LessSafeKey,
    /// Blocks written; also the next nonce.
    records: u64,
    /// Set once every block has been read back, through the page cache.
    read_back: AtomicBool,
}

/// A spilling body: one block is filled while the previous one is sealed and written on the
/// blocking pool, so the disk works while the connection reads and inspects.
struct Spill {
    /// The block being filled: plaintext at `[4 .. 4 + fill]`.
    filling: BlockBuf,
    fill: usize,
    /// `None` only after a failed write, which fails the whole spool.
    writer: Option<Writer>,
}

enum Writer {
    /// Ready for the next block; with the spare buffer.
    Ready(Box<Sealer>, BlockBuf),
    /// Writing a block; gives back the sealer and the buffer when done.
    Writing(tokio::task::JoinHandle<io::Result<(Box<Sealer>, BlockBuf)>>),
}

// === impl MemoryBudget ===

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Bytes currently reserved by all spools.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

// === impl Spool ===

impl Spool {
    pub fn new(config: SpoolConfig) -> Self {
        Self {
            config,
            memory: VecDeque::new(),
            reserved: 0,
            file: None,
            len: 0,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True once the body no longer fits in memory and part of it is in the encrypted file.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// Holds `chunk`. Encryption and file I/O run on the blocking pool, beside the inspection.
    pub async fn push(&mut self, chunk: Bytes) -> io::Result<()> {
        self.len += chunk.len() as u64;
        if self.file.is_none() && self.fits_in_memory(chunk.len() as u64) {
            self.memory.push_back(chunk);
            return Ok(());
        }
        let mut spill = match self.file.take() {
            Some(spill) => spill,
            None => {
                let files = Arc::clone(&self.config.files);
                blocking(move || Spill::create(files)).await?
            }
        };
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            rest = spill.fill_from(rest);
            if spill.fill == PAYLOAD {
                spill.hand_off().await?;
            }
        }
        self.file = Some(spill);
        Ok(())
    }

    fn fits_in_memory(&mut self, n: u64) -> bool {
        if self.reserved + n > self.config.request_memory || !self.config.budget.try_reserve(n) {
            return false;
        }
        self.reserved += n;
        true
    }

    /// Turns the held body into a stream of its chunks, in order: memory first, then the file
    /// (decrypted block by block on the blocking pool, the next few blocks read while the
    /// current one is sent).
    pub fn into_reader(mut self) -> SpoolReader {
        SpoolReader {
            memory: std::mem::take(&mut self.memory),
            spill: self.file.take(),
            sealer: None,
            spares: Arc::default(),
            next_record: 0,
            ahead: VecDeque::new(),
            _spool: self,
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.config.budget.release(self.reserved);
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

/// Blocks read ahead of the one being sent. A virtual disk serves several requests in flight
/// faster than one at a time: 1 MiB direct reads ran at 1.1 GB/s one by one here, 1.6-1.8 GB/s
/// four at a time, and the read-back of a held upload was as slow as its inspection.
const READ_AHEAD: usize = 4;

type ReadAhead = tokio::task::JoinHandle<io::Result<Option<Bytes>>>;

/// Block buffers a reader is not using, shared with the chunks it handed out: a chunk is the
/// plaintext in its block's buffer, which comes back here when the chunk is dropped, so the
/// read-back neither copies a block nor allocates one.
#[derive(Default)]
struct Spares(Mutex<Vec<BlockBuf>>);

/// A block's buffer, lent out as a chunk.
struct Lent {
    buf: BlockBuf,
    spares: Arc<Spares>,
}

/// Reads a spool back.
pub struct SpoolReader {
    memory: VecDeque<Bytes>,
    /// Still being written: flushed before the first block is read.
    spill: Option<Spill>,
    /// Flushed: the sealer, shared by the reads under way.
    sealer: Option<Arc<Sealer>>,
    spares: Arc<Spares>,
    next_record: u64,
    /// The reads under way, in block order.
    ahead: VecDeque<ReadAhead>,
    // Keeps the memory reservation until the last chunk has been handed out.
    _spool: Spool,
}

impl SpoolReader {
    /// The next chunk, or `None` at the end.
    pub async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if let Some(chunk) = self.memory.pop_front() {
            return Ok(Some(chunk));
        }
        if let Some(spill) = self.spill.take() {
            let (sealer, buf) = spill.finish().await?;
            self.sealer = Some(Arc::new(*sealer));
            self.spares.give(buf);
        }
        self.read_ahead();
        let Some(pending) = self.ahead.pop_front() else {
            return Ok(None);
        };
        let chunk = pending.await.map_err(io::Error::other)??;
        self.read_ahead();
        // The last block is in hand. Marked now, not at the `None` after it: a body of known
        // length is not polled past its last byte.
        if self.ahead.is_empty()
            && let Some(sealer) = &self.sealer
        {
            sealer.read_back.store(true, Ordering::Relaxed);
        }
        Ok(chunk)
    }

    /// Starts reads until [`READ_AHEAD`] are under way or every block has been asked for.
    fn read_ahead(&mut self) {
        let Some(sealer) = &self.sealer else {
            return;
        };
        while self.ahead.len() < READ_AHEAD && self.next_record < sealer.records {
            let mut buf = self.spares.take();
            let (sealer, spares) = (Arc::clone(sealer), Arc::clone(&self.spares));
            let index = self.next_record;
            self.next_record += 1;
            self.ahead.push_back(tokio::task::spawn_blocking(move || {
                match sealer.read_record(&mut buf, index) {
                    Ok(Some(len)) => {
                        let lent = Bytes::from_owner(Lent { buf, spares });
                        Ok(Some(lent.slice(4..4 + len)))
                    }
                    other => {
                        spares.give(buf);
                        other.map(|_| None)
                    }
                }
            }));
        }
    }
}

// === impl Spares ===

impl Spares {
    fn take(&self) -> BlockBuf {
        self.lock().pop().unwrap_or_else(BlockBuf::new)
    }

    /// Keeps `buf` for the next read, up to what the reads under way and the chunks being sent
    /// can use at once.
    fn give(&self, buf: BlockBuf) {
        let mut spares = self.lock();
        if spares.len() < READ_AHEAD + 2 {
            spares.push(buf);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<BlockBuf>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        self.buf.bytes()
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        // An empty `Vec` holds no memory: nothing is allocated for the stand-in.
        self.spares
            .give(std::mem::replace(&mut self.buf, BlockBuf(Vec::new())));
    }
}

// === impl Spill ===

impl Spill {
    fn create(files: Arc<SpillFiles>) -> io::Result<Self> {
        Ok(Self {
            filling: BlockBuf::new(),
            fill: 0,
            writer: Some(Writer::Ready(
                Box::new(Sealer::create(files)?),
                BlockBuf::new(),
            )),
        })
    }

    /// Copies as much of `data` as fits into the block being filled; returns the rest.
    fn fill_from<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let n = data.len().min(PAYLOAD - self.fill);
        let at = 4 + self.fill;
        self.filling.bytes_mut()[at..at + n].copy_from_slice(&data[..n]);
        self.fill += n;
        &data[n..]
    }

    /// The sealer and spare buffer, once the block being written (if any) is on disk.
    async fn ready(&mut self) -> io::Result<(Box<Sealer>, BlockBuf)> {
        match self.writer.take() {
            Some(Writer::Ready(sealer, spare)) => Ok((sealer, spare)),
            Some(Writer::Writing(task)) => task.await.map_err(io::Error::other)?,
            None => Err(io::Error::other("an earlier spool write failed")),
        }
    }

    /// Sends the full block to be sealed and written, and goes on filling the spare one.
    async fn hand_off(&mut self) -> io::Result<()> {
        let (mut sealer, spare) = self.ready().await?;
        let mut full = std::mem::replace(&mut self.filling, spare);
        let fill = std::mem::take(&mut self.fill);
        self.writer = Some(Writer::Writing(tokio::task::spawn_blocking(move || {
            sealer.seal_and_write(&mut full, fill)?;
            Ok((sealer, full))
        })));
        Ok(())
    }

    /// Writes what is still buffered; the file is then complete.
    async fn finish(mut self) -> io::Result<(Box<Sealer>, BlockBuf)> {
        let (mut sealer, spare) = self.ready().await?;
        let (mut last, fill) = (self.filling, self.fill);
        blocking(move || {
            sealer.seal_and_write(&mut last, fill)?;
            drop(spare);
            Ok((sealer, last))
        })
        .await
    }
}

// === impl BlockBuf ===

impl BlockBuf {
    fn new() -> Self {
        Self(vec![Page([0; ALIGN]); BLOCK / ALIGN])
    }

    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.0)
    }
}

// === impl Sealer ===

impl Sealer {
    fn create(home: Arc<SpillFiles>) -> io::Result<Self> {
        let file = home.take()?;
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| io::Error::other("no randomness for the spool key"))?;
        let unbound =
            UnboundKey::new(&AES_256_GCM, &key).map_err(|_| io::Error::other("spool key"))?;
        key.fill(0);
        Ok(Self {
            file: Some(file),
            home,
            key: LessSafeKey::new(unbound),
            records: 0,
            read_back: AtomicBool::new(false),
        })
    }

    fn file(&self) -> io::Result<&SpillFile> {
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("spool file already returned"))
    }

    /// Seals the `fill` plaintext bytes of `block` in place and writes the block at its offset.
    fn seal_and_write(&mut self, block: &mut BlockBuf, fill: usize) -> io::Result<()> {
        if fill == 0 {
            return Ok(());
        }
        let len = fill as u32;
        let nonce = nonce(self.records);
        let buf = block.bytes_mut();
        buf[..4].copy_from_slice(&len.to_le_bytes());
        let (head, rest) = buf.split_at_mut(4);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&head[..4]), &mut rest[..fill])
            .map_err(|_| io::Error::other("spool encryption failed"))?;
        rest[fill..fill + TAG_LEN].copy_from_slice(tag.as_ref());
        // Zeroes after the tag: a short last block carries no leftovers of an earlier one.
        rest[fill + TAG_LEN..].fill(0);
        let at = self.records * BLOCK as u64;
        let through = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("spool file already returned"))?
            .write_block(block.bytes(), at)?;
        self.home.written[through as usize].fetch_add(BLOCK as u64, Ordering::Relaxed);
        self.records += 1;
        Ok(())
    }

    /// Decrypts block `index` in `block`, whose `[4..4 + len]` then holds its `len` plaintext
    /// bytes; `None` past the end.
    fn read_record(&self, block: &mut BlockBuf, index: u64) -> io::Result<Option<usize>> {
        if index >= self.records {
            return Ok(None);
        }
        self.file()?
            .cached
            .read_exact_at(block.bytes_mut(), index * BLOCK as u64)?;
        let buf = block.bytes_mut();
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > PAYLOAD {
            return Err(io::Error::other("spool block corrupt"));
        }
        let (head, rest) = buf.split_at_mut(4);
        let plain = self
            .key
            .open_in_place(
                nonce(index),
                Aad::from(&head[..4]),
                &mut rest[..len + TAG_LEN],
            )
            .map_err(|_| io::Error::other("spool block failed authentication"))?;
        Ok(Some(plain.len()))
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        let Some(mut file) = self.file.take() else {
            return;
        };
        if *self.read_back.get_mut() {
            file.warm = file.warm.max(self.records * BLOCK as u64);
        }
        let home = Arc::clone(&self.home);
        // Truncating or closing a large file frees its pages, which is not work for an async
        // worker.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || home.put_back(file))),
            Err(_) => home.put_back(file),
        }
    }
}

// === impl SpillFiles ===

impl SpillFiles {
    /// Spill files in `dir` (`None`: the system temp dir), keeping up to `keep` bytes of idle
    /// ones. Nothing is kept on a file system in memory, where a kept file would be memory
    /// that no body uses.
    pub fn new(dir: Option<PathBuf>, keep: u64) -> Arc<Self> {
        let dir = dir.unwrap_or_else(std::env::temp_dir);
        let keep = if in_memory(&dir) { 0 } else { keep };
        Arc::new(Self {
            dir,
            keep,
            idle: Mutex::new(Vec::new()),
            written: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    /// Bytes of idle files kept for the next bodies.
    pub fn kept(&self) -> u64 {
        self.lock().iter().map(|f| f.len).sum()
    }

    /// Bytes written to spill files since the start: through the page cache, and with direct
    /// I/O to the disk.
    pub fn written(&self) -> [u64; 2] {
        self.written.each_ref().map(|n| n.load(Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SpillFile>> {
        // A file list is valid whatever a panicking holder did to it.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> io::Result<SpillFile> {
        // Popped first, so that a new file is not created under the lock.
        let idle = self.lock().pop();
        match idle {
            Some(file) => Ok(file),
            None => SpillFile::create(&self.dir),
        }
    }

    /// Keeps `file` for the next body if the budget has room for it, or for a part of it.
    fn put_back(&self, mut file: SpillFile) {
        let mut idle = self.lock();
        let kept: u64 = idle.iter().map(|f| f.len).sum();
        let room = self.keep.saturating_sub(kept) / BLOCK as u64 * BLOCK as u64;
        if room == 0 {
            return;
        }
        if file.len > room {
            if file.cached.set_len(room).is_err() {
                return;
            }
            file.len = room;
            file.warm = file.warm.min(room);
        }
        idle.push(file);
    }
}

// === impl SpillFile ===

impl SpillFile {
    fn create(dir: &Path) -> io::Result<Self> {
        let cached = open_unnamed(dir)?;
        let direct = reopen_direct(&cached);
        Ok(Self {
            cached,
            direct,
            warm: 0,
            len: 0,
        })
    }

    fn write_block(&mut self, block: &[u8], at: u64) -> io::Result<Through> {
        let end = at + block.len() as u64;
        let through = match &self.direct {
            Some(direct) if end > self.warm => {
                direct.write_all_at(block, at)?;
                Through::Disk
            }
            _ => {
                self.cached.write_all_at(block, at)?;
                self.warm = self.warm.max(end);
                Through::PageCache
            }
        };
        self.len = self.len.max(end);
        Ok(through)
    }
}

/// A temporary file with no name (O_TMPFILE), mode 0600; else an ordinary unnamed temporary
/// file.
fn open_unnamed(dir: &Path) -> io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
    match rustix::fs::open(dir, flags, Mode::RUSR | Mode::WUSR) {
        Ok(fd) => Ok(std::fs::File::from(fd)),
        Err(_) => tempfile::tempfile_in(dir),
    }
}

/// A second descriptor of `file` for direct I/O, where the file system has it. An unnamed file
/// can only be reopened through its `/proc` link.
fn reopen_direct(file: &std::fs::File) -> Option<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsRawFd;
    let link = format!("/proc/self/fd/{}", file.as_raw_fd());
    let flags = OFlags::RDWR | OFlags::DIRECT | OFlags::CLOEXEC;
    rustix::fs::open(link, flags, Mode::empty())
        .ok()
        .map(std::fs::File::from)
}

/// True on tmpfs and ramfs.
fn in_memory(dir: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    rustix::fs::statfs(dir).is_ok_and(|fs| {
        // `f_type`'s width differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        let kind = fs.f_type as i64;
        kind == TMPFS_MAGIC || kind == RAMFS_MAGIC
    })
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(request: u64, total: u64, dir: &std::path::Path) -> SpoolConfig {
        SpoolConfig {
            budget: MemoryBudget::new(total),
            request_memory: request,
            files: SpillFiles::new(Some(dir.to_owned()), 0),
        }
    }

    async fn read_all(spool: Spool) -> Vec<u8> {
        let mut r = spool.into_reader();
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().await.unwrap() {
            out.extend_from_slice(&c);
        }
        out
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(config(1 << 20, 1 << 20, dir.path()));
        let d = data(100_000);
        for c in d.chunks(7_000) {
            s.push(Bytes::copy_from_slice(c)).await.unwrap();
        }
        assert!(!s.spilled());
        assert_eq!(read_all(s).await, d);
    }

    #[tokio::test]
    async fn large_bodies_spill_encrypted_and_come_back_intact() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(64 << 10, 1 << 20, dir.path());
        let budget = cfg.budget.clone();
        let mut s = Spool::new(cfg);
        // More blocks than are read ahead at once, so read buffers are reused.
        let d = data(9 << 20);
        for c in d.chunks(50_000) {
            s.push(Bytes::copy_from_slice(c)).await.unwrap();
        }
        assert!(s.spilled());
        assert_eq!(s.len(), d.len() as u64);
        // The spill file has no name in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(budget.used() <= 64 << 10);
        assert_eq!(read_all(s).await, d);
        assert_eq!(budget.used(), 0, "memory reservation released");
    }

    #[test]
    fn the_file_holds_no_plaintext_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let mut sealer = Sealer::create(SpillFiles::new(Some(dir.path().to_owned()), 0)).unwrap();
        let secret = b"BSN 123456782 Vertrouwelijk ".repeat(50_000);
        let mut block = BlockBuf::new();
        for piece in secret.chunks(PAYLOAD) {
            block.bytes_mut()[4..4 + piece.len()].copy_from_slice(piece);
            sealer.seal_and_write(&mut block, piece.len()).unwrap();
        }
        assert_eq!(sealer.records, secret.len().div_ceil(PAYLOAD) as u64);
        // Direct I/O needs aligned buffers, so the test reads block by block too.
        let mut raw = Vec::new();
        for i in 0..sealer.records {
            let file = &sealer.file().unwrap().cached;
            file.read_exact_at(block.bytes_mut(), i * BLOCK as u64)
                .unwrap();
            raw.extend_from_slice(block.bytes());
        }
        assert!(
            !raw.windows(9).any(|w| w == b"123456782"),
            "plaintext on disk"
        );
        let mut back = Vec::new();
        for i in 0..sealer.records {
            let len = sealer.read_record(&mut block, i).unwrap().unwrap();
            back.extend_from_slice(&block.bytes()[4..4 + len]);
        }
        assert_eq!(back, secret);
        // Tampering is detected, not silently passed on.
        let file = &sealer.file().unwrap().cached;
        file.read_exact_at(block.bytes_mut(), 0).unwrap();
        block.bytes_mut()[100] ^= 1;
        file.write_all_at(block.bytes(), 0).unwrap();
        assert!(sealer.read_record(&mut block, 0).is_err());
    }

    /// What the idle files look like once the blocking pool has put back those in use: the
    /// hand-back runs after the last reader of a file lets go.
    async fn idle_files(files: &SpillFiles, count: usize) -> Vec<(u64, u64)> {
        for _ in 0..500 {
            let idle: Vec<_> = files.lock().iter().map(|f| (f.len, f.warm)).collect();
            if idle.len() == count {
                return idle;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!(
            "expected {count} idle spill files, have {}",
            files.lock().len()
        );
    }

    /// A directory on the disk the build is on: the system temp dir may be in memory.
    fn disk_dir() -> tempfile::TempDir {
        tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target")).unwrap()
    }

    async fn spool_of(files: &Arc<SpillFiles>, body: &[u8]) -> Spool {
        let mut s = Spool::new(SpoolConfig {
            budget: MemoryBudget::new(1 << 20),
            // All in the file, so the test knows its blocks.
            request_memory: 0,
            files: Arc::clone(files),
        });
        for c in body.chunks(50_000) {
            s.push(Bytes::copy_from_slice(c)).await.unwrap();
        }
        assert!(s.spilled());
        s
    }

    #[tokio::test]
    async fn a_spill_file_read_back_is_kept_warm_and_reused() {
        let dir = disk_dir();
        let files = SpillFiles::new(Some(dir.path().to_owned()), 64 << 20);
        let first = data(3 * PAYLOAD + 1000);
        let blocks = 4 * BLOCK as u64;
        assert_eq!(read_all(spool_of(&files, &first).await).await, first);
        assert_eq!(idle_files(&files, 1).await, vec![(blocks, blocks)]);
        assert_eq!(files.kept(), blocks);
        // A new file has no pages in the cache: its blocks went to the disk.
        assert_eq!(files.written(), [0, blocks]);

        // A shorter body in the same file: only its own blocks come back, not the first body's.
        // Its reader stops at the last byte, as an HTTP client sending a body of known length
        // does, and the file is kept warm all the same.
        let second: Vec<u8> = data(PAYLOAD + 5).iter().map(|b| b ^ 0x55).collect();
        let spool = spool_of(&files, &second).await;
        assert_eq!(files.kept(), 0, "the file is in use");
        let mut reader = spool.into_reader();
        let mut back = Vec::new();
        while back.len() < second.len() {
            back.extend_from_slice(&reader.next_chunk().await.unwrap().unwrap());
        }
        drop(reader);
        assert_eq!(back, second);
        assert_eq!(idle_files(&files, 1).await, vec![(blocks, blocks)]);
        // The second body's two blocks went over the pages the first one left.
        assert_eq!(files.written(), [2 * BLOCK as u64, blocks]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn chunks_lend_their_blocks_and_give_them_back() {
        let dir = disk_dir();
        let files = SpillFiles::new(Some(dir.path().to_owned()), 0);
        let d = data(9 * PAYLOAD + 7);
        let mut reader = spool_of(&files, &d).await.into_reader();
        let spares = Arc::clone(&reader.spares);
        let mut chunks = Vec::new();
        while let Some(chunk) = reader.next_chunk().await.unwrap() {
            chunks.push(chunk);
        }
        drop(reader);
        // All chunks alive at once: no block was read into again while lent.
        assert_eq!(chunks.len(), 10);
        assert_eq!(chunks.concat(), d);
        drop(chunks);
        assert_eq!(spares.lock().len(), READ_AHEAD + 2);
    }

    #[tokio::test]
    async fn a_body_never_read_back_keeps_its_file_cold() {
        let dir = disk_dir();
        let files = SpillFiles::new(Some(dir.path().to_owned()), 64 << 20);
        let spool = spool_of(&files, &data(2 * PAYLOAD)).await;
        // A blocked upload: the spool goes without a read.
        drop(spool);
        // Written past the cache, with direct I/O: nothing of it is in the cache.
        assert_eq!(idle_files(&files, 1).await, vec![(2 * BLOCK as u64, 0)]);
    }

    #[tokio::test]
    async fn kept_files_stay_within_their_budget() {
        let dir = disk_dir();
        let keep = 2 * BLOCK as u64;
        let files = SpillFiles::new(Some(dir.path().to_owned()), keep);
        let a = spool_of(&files, &data(5 * PAYLOAD)).await;
        let b = spool_of(&files, &data(PAYLOAD)).await;
        assert_eq!(read_all(b).await, data(PAYLOAD));
        assert_eq!(
            idle_files(&files, 1).await,
            vec![(BLOCK as u64, BLOCK as u64)]
        );
        // `a` finds room for one of its five blocks: it is cut to fit.
        assert_eq!(read_all(a).await, data(5 * PAYLOAD));
        let idle = idle_files(&files, 2).await;
        assert_eq!(idle.iter().map(|f| f.0).sum::<u64>(), keep);
        let cut = files.lock()[1].cached.metadata().unwrap().len();
        assert_eq!(cut, BLOCK as u64, "the file itself was truncated");

        let none = SpillFiles::new(Some(dir.path().to_owned()), 0);
        assert_eq!(
            read_all(spool_of(&none, &data(PAYLOAD)).await).await,
            data(PAYLOAD)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(none.kept(), 0);
    }

    #[test]
    fn nothing_is_kept_on_a_memory_file_system() {
        let shm = Path::new("/dev/shm");
        assert!(in_memory(shm), "/dev/shm is tmpfs on Linux");
        assert_eq!(SpillFiles::new(Some(shm.to_owned()), 1 << 30).keep, 0);
        assert!(!in_memory(disk_dir().path()));
    }

    #[tokio::test]
    async fn the_global_budget_is_shared() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(1 << 20, 100_000, dir.path());
        let mut a = Spool::new(cfg.clone());
        let mut b = Spool::new(cfg.clone());
        a.push(Bytes::from(vec![1u8; 80_000])).await.unwrap();
        b.push(Bytes::from(vec![2u8; 80_000])).await.unwrap();
        assert!(!a.spilled());
        assert!(
            b.spilled(),
            "second request must spill when the global budget is used up"
        );
        drop(a);
        assert_eq!(cfg.budget.used(), 0);
        assert_eq!(read_all(b).await, vec![2u8; 80_000]);
    }
}
