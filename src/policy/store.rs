//! The current policy, replaced whole on reload.
//!
//! A reload compiles and validates the new files first and swaps the `Arc<Policy>` only when
//! they are good; a bad policy is logged, counted and rejected, and the old one stays. Callers
//! take `current()` once per exchange and keep that snapshot to the end, so a reload never
//! changes the rules under an exchange in flight.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::policy::{Policy, PolicyError};

/// Quiet time after the last file event before reloading: editors write a file in several
/// steps (truncate, write, rename), and one reload should see the end result.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(500);

/// Holds the active policy.
pub struct PolicyStore {
    dir: PathBuf,
    fingerprint_key: Option<Vec<u8>>,
    current: ArcSwap<Policy>,
    on_reload: Box<dyn Fn(&ReloadOutcome) + Send + Sync>,
    /// One reload at a time, so a slow compile of older files cannot replace a newer policy.
    reloading: Mutex<()>,
    rejected: AtomicU64,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new policy is active.
    Applied { version: String },
    /// The files compile to the active version: nothing to do.
    Unchanged { version: String },
    /// The new files are invalid; the active policy stays.
    Rejected { error: String, kept_version: String },
}

// === impl PolicyStore ===

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("dir", &self.dir)
            .field("version", &self.current.load().version())
            .finish_non_exhaustive()
    }
}

impl PolicyStore {
    /// Loads the policy in `dir`. `on_reload` is called after every reload attempt (for
    /// metrics); the store logs each outcome itself.
    pub fn load(
        dir: PathBuf,
        fingerprint_key: Option<Vec<u8>>,
        on_reload: impl Fn(&ReloadOutcome) + Send + Sync + 'static,
    ) -> Result<PolicyStore, PolicyError> {
        let policy = Policy::load_with_key(&dir, fingerprint_key.as_deref())?;
        tracing::info!(
            policy_version = policy.version(),
            dir = %dir.display(),
            rules = policy.rules.len(),
            "policy loaded"
        );
        Ok(PolicyStore {
            dir,
            fingerprint_key,
            current: ArcSwap::from_pointee(policy),
            on_reload: Box::new(on_reload),
            reloading: Mutex::new(()),
            rejected: AtomicU64::new(0),
        })
    }

    /// The active policy. Cheap: no lock, one reference count.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many reloads were rejected since start.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Compiles the files again and swaps the policy in if it is valid and different.
    /// Blocking (file reads and compilation): call it from a blocking context.
    pub fn reload(&self) -> ReloadOutcome {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let active = self.current.load_full();
        let outcome = match Policy::load_with_key(&self.dir, self.fingerprint_key.as_deref()) {
            Ok(p) if p.version() == active.version() => ReloadOutcome::Unchanged {
                version: p.version().to_owned(),
            },
            Ok(p) => {
                let version = p.version().to_owned();
                self.current.store(Arc::new(p));
                ReloadOutcome::Applied { version }
            }
            Err(e) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                ReloadOutcome::Rejected {
                    error: e.to_string(),
                    kept_version: active.version().to_owned(),
                }
            }
        };
        match &outcome {
            ReloadOutcome::Applied { version } => {
                tracing::info!(policy_version = %version, previous = active.version(), "policy reloaded");
            }
            ReloadOutcome::Unchanged { version } => {
                tracing::debug!(policy_version = %version, "policy unchanged");
            }
            ReloadOutcome::Rejected {
                error,
                kept_version,
            } => {
                tracing::warn!(policy_version = %kept_version, %error, "policy reload rejected; keeping the active policy");
            }
        }
        (self.on_reload)(&outcome);
        outcome
    }

    /// Watches the policy directory and reloads after changes to `*.toml` files, debounced by
    /// [`DEBOUNCE`]. Must be called inside a Tokio runtime. The watch is registered before this
    /// returns; the task ends when the store is dropped (at the next event) or at once when the
    /// watch cannot be set up (logged: reload with SIGHUP then).
    pub fn watch(self: &Arc<Self>) -> JoinHandle<()> {
        // Capacity 1 is enough: one pending event means "reload after the quiet time".
        let (tx, rx) = mpsc::channel::<()>(1);
        let watcher = match start_watcher(&self.dir, tx) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(error = %e, dir = %self.dir.display(), "cannot watch the policy directory; reload with SIGHUP");
                None
            }
        };
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let Some(watcher) = watcher else { return };
            debounce_loop(store, rx).await;
            drop(watcher);
        })
    }
}

fn start_watcher(dir: &Path, tx: mpsc::Sender<()>) -> notify::Result<notify::RecommendedWatcher> {
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && changes_content(&ev.kind)
            && ev.paths.iter().any(|p| is_policy_file(p))
        {
            let _ = tx.try_send(());
        }
    };
    let mut watcher = notify::recommended_watcher(handler)?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Waits for an event, then for `DEBOUNCE` without one, then reloads; until the channel or
/// the store goes away.
async fn debounce_loop(store: Weak<PolicyStore>, mut rx: mpsc::Receiver<()>) {
    while rx.recv().await.is_some() {
        loop {
            match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        let Some(store) = store.upgrade() else { return };
        if let Err(e) = tokio::task::spawn_blocking(move || store.reload()).await {
            tracing::error!(error = %e, "policy reload task failed");
        }
    }
}

/// Reading the files during a reload must not trigger another reload: only writes count.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        _ => false,
    }
}

fn is_policy_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".toml") && !n.starts_with('.') && !n.starts_with('#'))
}
