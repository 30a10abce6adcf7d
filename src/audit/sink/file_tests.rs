use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::audit::event::{AuditEvent, EventAction};
use crate::audit::writer::write_one;

pub(crate) fn event(i: u64) -> AuditEvent {
    AuditEvent::new(
        format!("ID{i:014}"),
        EventAction::Exchange,
        "127.0.0.1:1000".parse().unwrap(),
        UNIX_EPOCH,
    )
}

fn write(sink: &mut FileSink, i: u64, now: SystemTime) {
    write_one(sink, &mut event(i), now, Severity::Info, "exchange").unwrap();
}

fn config(dir: &Path) -> FileSinkConfig {
    FileSinkConfig {
        path: dir.join("logs/audit.log"),
        max_size: 0,
        rotate_every: None,
        retention: None,
    }
}

/// The sink's files, rotated ones first (oldest first), the active one last.
pub(crate) fn files_in_order(active: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.", active.file_name().unwrap().to_string_lossy());
    let mut rotated: Vec<PathBuf> = fs::read_dir(active.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect();
    rotated.sort();
    rotated.push(active.to_owned());
    rotated
}

fn verify_all(files: &[PathBuf]) -> (i32, String) {
    let mut out = Vec::new();
    let status = crate::audit::cli::verify(files, &mut out);
    (status, String::from_utf8(out).unwrap())
}

fn lines(path: &Path) -> usize {
    fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn rotates_by_size_and_links_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_size = 600;
    let now = SystemTime::now();
    let mut sink = FileSink::open(c.clone(), now).unwrap();
    for i in 0..12 {
        write(&mut sink, i, now + Duration::from_micros(i));
    }
    sink.flush().unwrap();
    let files = files_in_order(&c.path);
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(files.iter().map(|f| lines(f)).sum::<usize>(), 12);
    for f in &files {
        assert_eq!(fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let dir_mode = fs::metadata(c.path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let (status, out) = verify_all(&files);
    assert_eq!(status, 0, "{out}");

    // Deleting a whole rotated file in the middle is seen at the next file's first line.
    let mut gap = files.clone();
    let removed = gap.remove(1);
    let (status, out) = verify_all(&gap);
    assert_eq!(status, 1, "{out}");
    let removed_name = removed.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        out.contains("does not continue") && out.contains(&removed_name),
        "{out}"
    );
}

#[test]
fn rotates_when_the_period_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.rotate_every = Some(Duration::from_secs(3600));
    let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 3600 * 3600 + 10);
    let mut sink = FileSink::open(c.clone(), t0).unwrap();
    write(&mut sink, 0, t0);
    write(&mut sink, 1, t0 + Duration::from_secs(60));
    sink.tick(t0 + Duration::from_secs(120)).unwrap();
    assert_eq!(files_in_order(&c.path).len(), 1, "same hour: no rotation");
    sink.tick(t0 + Duration::from_secs(3600)).unwrap();
    write(&mut sink, 2, t0 + Duration::from_secs(3601));
    sink.flush().unwrap();
    let files = files_in_order(&c.path);
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!((lines(&files[0]), lines(&files[1])), (2, 1));
    assert_eq!(verify_all(&files).0, 0);
    // A quiet period does not create empty files.
    sink.tick(t0 + Duration::from_secs(3 * 3600)).unwrap();
    sink.tick(t0 + Duration::from_secs(4 * 3600)).unwrap();
    assert_eq!(files_in_order(&c.path).len(), 3);
}

#[test]
fn a_restart_continues_the_chain_in_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let now = SystemTime::now();
    let mut sink = FileSink::open(c.clone(), now).unwrap();
    write(&mut sink, 0, now);
    write(&mut sink, 1, now);
    sink.flush().unwrap();
    drop(sink);
    let later = now + Duration::from_secs(1);
    let mut sink = FileSink::open(c.clone(), later).unwrap();
    write(&mut sink, 2, later);
    sink.flush().unwrap();
    let files = files_in_order(&c.path);
    assert_eq!(files.len(), 2);
    let (status, out) = verify_all(&files);
    assert_eq!(status, 0, "{out}");
    // The active file alone verifies, and says what it continues.
    let (status, out) = verify_all(&files[1..]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("continues audit.log."), "{out}");
}

#[test]
fn retention_deletes_only_old_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.retention = Some(Duration::from_secs(30 * 86_400));
    fs::create_dir_all(c.path.parent().unwrap()).unwrap();
    let now = SystemTime::now();
    let old = c.path.with_file_name("audit.log.20200101T000000.000000Z");
    let recent = c.path.with_file_name("audit.log.20260101T000000.000000Z");
    let unrelated = c.path.with_file_name("other.log.20200101");
    for p in [&old, &recent, &unrelated] {
        fs::write(p, "x\n").unwrap();
        File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(now - Duration::from_secs(40 * 86_400))
            .unwrap();
    }
    File::options()
        .write(true)
        .open(&recent)
        .unwrap()
        .set_modified(now - Duration::from_secs(86_400))
        .unwrap();
    let mut sink = FileSink::open(c.clone(), now).unwrap();
    assert!(!old.exists(), "past retention: deleted");
    assert!(recent.exists(), "within retention: kept");
    assert!(unrelated.exists(), "not ours: kept");
    assert!(c.path.exists());
    // Housekeeping applies it later too.
    sink.tick(now + Duration::from_secs(31 * 86_400)).unwrap();
    assert!(!recent.exists());
}
