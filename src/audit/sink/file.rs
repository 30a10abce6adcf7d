//! The file sink: one JSON line per event, rotated by size and by time, rotated files deleted
//! after the retention period (KSP 1.6).
//!
//! The active file is `path`; a rotated file is `path.<UTC time of rotation>`, so names sort in
//! time order. Every new file's chain continues the newest rotated file (see `chain`), and a
//! restart first rotates a non-empty active file away, so the writer never appends to a chain it
//! did not start. Files and the directory are created owner-only: the log is personal data.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::audit::chain::{ChainState, line_hash};
use crate::audit::config::FileSinkConfig;
use crate::audit::sink::{Severity, Sink, started_text};

pub(crate) struct FileSink {
    config: FileSinkConfig,
    file: Option<BufWriter<File>>,
    size: u64,
    /// Which `rotate_every` period the active file belongs to.
    period: Option<u64>,
    chain: ChainState,
}

// === impl FileSink ===

impl FileSink {
    pub(crate) fn open(config: FileSinkConfig, now: SystemTime) -> io::Result<Self> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut sink = Self {
            period: period_of(&config, now),
            chain: ChainState::new(String::new(), String::new(), None),
            config,
            file: None,
            size: 0,
        };
        let nonempty = fs::metadata(&sink.config.path).is_ok_and(|m| m.len() > 0);
        if nonempty {
            fs::rename(&sink.config.path, sink.rotated_name(now)?)?;
        }
        let previous = match sink.rotated_files()?.last() {
            Some(last) => Some((file_name(last), last_line_hash(last)?)),
            None => None,
        };
        sink.start_file(now, previous)?;
        sink.apply_retention(now)?;
        Ok(sink)
    }

    fn start_file(
        &mut self,
        now: SystemTime,
        previous: Option<(String, String)>,
    ) -> io::Result<()> {
        let file = open_append(&self.config.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(BufWriter::new(file));
        self.period = period_of(&self.config, now);
        self.chain = ChainState::new(file_name(&self.config.path), started_text(now), previous);
        Ok(())
    }

    fn rotation_due(&self, now: SystemTime) -> bool {
        if self.chain.is_empty() {
            return false;
        }
        let by_size = self.config.max_size > 0 && self.size >= self.config.max_size;
        by_size || period_of(&self.config, now) != self.period
    }

    fn rotate(&mut self, now: SystemTime) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
            f.get_ref().sync_all()?;
        }
        let rotated = self.rotated_name(now)?;
        fs::rename(&self.config.path, &rotated)?;
        let previous = self
            .chain
            .last_hash()
            .map(|h| (file_name(&rotated), h.to_owned()));
        self.start_file(now, previous)?;
        self.apply_retention(now)
    }

    /// `path.<time>`, with a counter if two rotations fall in the same microsecond.
    fn rotated_name(&self, now: SystemTime) -> io::Result<PathBuf> {
        let stamp: String = started_text(now)
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let base = format!("{}.{stamp}", self.config.path.display());
        let mut candidate = PathBuf::from(&base);
        let mut n = 1;
        while candidate.exists() {
            candidate = PathBuf::from(format!("{base}.{n}"));
            n += 1;
        }
        Ok(candidate)
    }

    /// Rotated files of this sink, oldest first.
    fn rotated_files(&self) -> io::Result<Vec<PathBuf>> {
        let dir = match self.config.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let prefix = format!("{}.", file_name(&self.config.path));
        let mut out: Vec<PathBuf> = fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Deletes rotated files whose last write is older than the retention period.
    fn apply_retention(&self, now: SystemTime) -> io::Result<()> {
        let Some(keep) = self.config.retention else {
            return Ok(());
        };
        let Some(cutoff) = now.checked_sub(keep) else {
            return Ok(());
        };
        for path in self.rotated_files()? {
            let modified = fs::metadata(&path).and_then(|m| m.modified());
            if modified.is_ok_and(|m| m < cutoff) {
                match fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::info!(file = %path.display(), "audit file past retention, deleted")
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "cannot delete expired audit file")
                    }
                }
            }
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn prepare(&mut self, now: SystemTime) -> io::Result<()> {
        if self.file.is_none() {
            // After a write error: the same file again, same chain.
            let file = open_append(&self.config.path)?;
            self.size = file.metadata()?.len();
            self.file = Some(BufWriter::new(file));
        }
        if self.rotation_due(now) {
            self.rotate(now)?;
        }
        Ok(())
    }

    fn chain(&mut self) -> &mut ChainState {
        &mut self.chain
    }

    fn write_line(&mut self, line: &[u8], _: Severity, _: &str) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(io::Error::other("audit file is not open"));
        };
        let res = f.write_all(line).and_then(|()| f.write_all(b"\n"));
        match res {
            Ok(()) => {
                self.size += line.len() as u64 + 1;
                Ok(())
            }
            Err(e) => {
                self.file = None;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.flush().inspect_err(|_| self.file = None)
    }

    fn tick(&mut self, now: SystemTime) -> io::Result<()> {
        if self.file.is_some() && self.rotation_due(now) {
            self.rotate(now)?;
        }
        self.apply_retention(now)
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn period_of(config: &FileSinkConfig, now: SystemTime) -> Option<u64> {
    let every = config.rotate_every?.as_secs().max(1);
    let since = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    Some(since / every)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Hash of a file's last line (the bytes after the last newline but one), read from its tail.
pub(crate) fn last_line_hash(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(crate::audit::chain::MAX_LINE as u64 + 1);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
    let last = match memchr::memrchr(b'\n', body) {
        Some(i) => body.get(i + 1..).unwrap_or_default(),
        None => body,
    };
    Ok(line_hash(last))
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
