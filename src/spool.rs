//! Where held request bodies wait for their verdict.
//!
//! In enforce mode nothing of an inspected body goes upstream before the verdict, so the proxy
//! must keep what it has read. Small bodies stay in memory, within a per-request and a global
//! budget; the rest goes to a temporary file that has no name (unlinked at creation) and holds
//! only AES-256-GCM ciphertext under a key that exists in this process's memory alone. When the
//! spool is dropped the key is gone, so nothing readable ever rests on disk, whatever happens to
//! the file's blocks later.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
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
    /// Directory for spill files; `None` = the system temp dir.
    pub dir: Option<PathBuf>,
}

/// A held body: memory first, then an encrypted file.
pub struct Spool {
    config: SpoolConfig,
    memory: VecDeque<Bytes>,
    /// Bytes of `memory` reserved from the budget.
    reserved: u64,
    file: Option<SpillFile>,
    len: u64,
}

/// Plaintext is gathered into records of about this size before encryption: fewer tags, fewer
/// writes.
const RECORD: usize = 256 << 10;
const TAG_LEN: usize = 16;

struct SpillFile {
    file: std::fs::File,
    key: LessSafeKey,
    /// Records written; also the next nonce.
    records: u64,
    pending: BytesMut,
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

    /// Holds `chunk`. File I/O runs on the blocking pool.
    pub async fn push(&mut self, chunk: Bytes) -> io::Result<()> {
        self.len += chunk.len() as u64;
        if self.file.is_none() && self.fits_in_memory(chunk.len() as u64) {
            self.memory.push_back(chunk);
            return Ok(());
        }
        let mut file = match self.file.take() {
            Some(file) => file,
            None => {
                let dir = self.config.dir.clone();
                tokio::task::spawn_blocking(move || SpillFile::create(dir))
                    .await
                    .map_err(io::Error::other)??
            }
        };
        file.pending.extend_from_slice(&chunk);
        if file.pending.len() >= RECORD {
            file = tokio::task::spawn_blocking(move || file.write_pending().map(|()| file))
                .await
                .map_err(io::Error::other)??;
        }
        self.file = Some(file);
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
    /// (decrypted record by record on the blocking pool).
    pub fn into_reader(mut self) -> SpoolReader {
        SpoolReader {
            memory: std::mem::take(&mut self.memory),
            file: self.file.take(),
            next_record: 0,
            _spool: self,
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.config.budget.release(self.reserved);
    }
}

/// Reads a spool back.
pub struct SpoolReader {
    memory: VecDeque<Bytes>,
    file: Option<SpillFile>,
    next_record: u64,
    // Keeps the memory reservation until the last chunk has been handed out.
    _spool: Spool,
}

impl SpoolReader {
    /// The next chunk, or `None` at the end.
    pub async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if let Some(chunk) = self.memory.pop_front() {
            return Ok(Some(chunk));
        }
        let Some(mut file) = self.file.take() else {
            return Ok(None);
        };
        let index = self.next_record;
        let (file, chunk) = tokio::task::spawn_blocking(move || {
            let chunk = file.read_record(index);
            (file, chunk)
        })
        .await
        .map_err(io::Error::other)?;
        let chunk = chunk?;
        if chunk.is_some() {
            self.next_record += 1;
            self.file = Some(file);
        }
        Ok(chunk)
    }
}

// === impl SpillFile ===

impl SpillFile {
    fn create(dir: Option<PathBuf>) -> io::Result<Self> {
        let dir = dir.unwrap_or_else(std::env::temp_dir);
        // Unlinked from the start (O_TMPFILE where available) and created 0600.
        let file = tempfile::tempfile_in(dir)?;
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| io::Error::other("no randomness for the spool key"))?;
        let unbound =
            UnboundKey::new(&AES_256_GCM, &key).map_err(|_| io::Error::other("spool key"))?;
        key.fill(0);
        Ok(Self {
            file,
            key: LessSafeKey::new(unbound),
            records: 0,
            pending: BytesMut::new(),
        })
    }

    /// Encrypts and appends the pending plaintext as one record: `len (u32 LE) | ciphertext | tag`.
    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut record = std::mem::take(&mut self.pending);
        let len =
            u32::try_from(record.len()).map_err(|_| io::Error::other("spool record too large"))?;
        let tag = self
            .key
            .seal_in_place_separate_tag(
                nonce(self.records),
                Aad::from(len.to_le_bytes()),
                &mut record,
            )
            .map_err(|_| io::Error::other("spool encryption failed"))?;
        self.file.write_all(&len.to_le_bytes())?;
        self.file.write_all(&record)?;
        self.file.write_all(tag.as_ref())?;
        self.records += 1;
        Ok(())
    }

    /// Decrypts record `index`; records are read in order, so the file position is already at
    /// it (the first read rewinds).
    fn read_record(&mut self, index: u64) -> io::Result<Option<Bytes>> {
        if index == 0 {
            self.write_pending()?;
            self.file.flush()?;
            self.file.seek(SeekFrom::Start(0))?;
        }
        if index >= self.records {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.file.read_exact(&mut len)?;
        let n = u32::from_le_bytes(len) as usize;
        let mut buf = vec![0u8; n + TAG_LEN];
        self.file.read_exact(&mut buf)?;
        let plain = self
            .key
            .open_in_place(nonce(index), Aad::from(len), &mut buf)
            .map_err(|_| io::Error::other("spool record failed authentication"))?;
        let plain_len = plain.len();
        buf.truncate(plain_len);
        Ok(Some(Bytes::from(buf)))
    }
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
            dir: Some(dir.to_owned()),
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
        let d = data(3 << 20);
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
    fn the_file_holds_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = SpillFile::create(Some(dir.path().to_owned())).unwrap();
        let secret = b"BSN 123456782 Vertrouwelijk ".repeat(10_000);
        f.pending.extend_from_slice(&secret);
        f.write_pending().unwrap();
        f.file.seek(SeekFrom::Start(0)).unwrap();
        let mut raw = Vec::new();
        f.file.read_to_end(&mut raw).unwrap();
        assert_eq!(raw.len(), 4 + secret.len() + TAG_LEN);
        assert!(
            !raw.windows(9).any(|w| w == b"123456782"),
            "plaintext on disk"
        );
        // Tampering is detected, not silently passed on.
        let mut g = f;
        g.file.seek(SeekFrom::Start(100)).unwrap();
        g.file.write_all(b"x").unwrap();
        assert!(g.read_record(0).is_err());
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
