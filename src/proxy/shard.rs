//! Client connections are served on shards: one single-threaded runtime per core, each with
//! its own upstream connection pool.
//!
//! On a work-stealing runtime an exchange's tasks (the client connection, the pooled upstream
//! connection, the body on its way) are spread over the workers, and each hand-over between
//! them is a thread wake-up. A shard keeps a connection and everything it starts on one
//! thread, so an exchange runs without waking another; and every core still serves, which one
//! worker alone would not.
//!
//! Each shard accepts connections itself (see `listener::serve`); the counts here keep them
//! spread.
//!
//! When there is one shard for each CPU the process may run on, each shard's thread is bound to
//! its own CPU. Left to the kernel, two shards sometimes shared one CPU for a while, and the
//! connections of both waited on each other: a W1 p99 of 2-4 ms instead of about 1 ms in 9 of
//! 58 rounds (benches/README.md, finding 22). Threads a shard starts for blocking work
//! (spool I/O, the inspection of long uploads) are not bound: they exist to use another core.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

thread_local! {
    /// The shard this thread drives, `None` off the shards.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The shard whose thread calls this; `None` on any other thread.
pub(crate) fn current() -> Option<usize> {
    CURRENT.get()
}

/// The running shards. Dropping this stops them; tasks still on them are dropped.
pub struct Shards {
    shards: Vec<Shard>,
    stop: CancellationToken,
}

struct Shard {
    handle: Handle,
    /// Connections being served here, to give the next one to the least busy shard.
    open: Arc<AtomicUsize>,
}

/// A connection counted on its shard until this is dropped.
#[derive(Debug)]
pub(crate) struct Placed {
    open: Arc<AtomicUsize>,
}

// === impl Shards ===

impl Shards {
    /// Starts `count` shards (at least one), each on a thread of its own; with `pin`, each
    /// thread is bound to a CPU of its own where [`cpu_plan`] finds one per shard.
    pub fn start(count: usize, pin: bool) -> std::io::Result<Self> {
        let count = count.max(1);
        let binding = if pin { binding(count) } else { None };
        // Built in place, so that a failure stops the shards already started.
        let mut this = Self {
            shards: Vec::with_capacity(count),
            stop: CancellationToken::new(),
        };
        for index in 0..count {
            let cpu = binding.as_ref().map(|(cpus, _)| cpus[index]);
            let mut builder = tokio::runtime::Builder::new_current_thread();
            // Names fit the 15 bytes the kernel keeps, so `top -H` shows the shard's number.
            builder
                .enable_all()
                .thread_name(format!("sluis-helper-{index}"));
            // A thread inherits its creator's CPU mask, and the blocking pool's threads are
            // created by the bound shard thread: they get the whole mask back. That fails only
            // where binding is refused altogether (a seccomp filter), and then the shard's own
            // binding failed too, was logged, and left nothing to undo.
            if let Some((_, all)) = binding {
                builder.on_thread_start(move || {
                    let _ = sched_setaffinity(None, &all);
                });
            }
            let runtime = builder.build()?;
            this.shards.push(Shard {
                handle: runtime.handle().clone(),
                open: Arc::new(AtomicUsize::new(0)),
            });
            let stop = this.stop.clone();
            std::thread::Builder::new()
                .name(format!("sluis-shard-{index}"))
                .spawn(move || {
                    CURRENT.set(Some(index));
                    if let Some(cpu) = cpu {
                        let mut one = CpuSet::new();
                        one.set(cpu);
                        if let Err(e) = sched_setaffinity(None, &one) {
                            // Only the binding is lost.
                            tracing::warn!(error = %e, cpu, "cannot bind a serving thread to its CPU");
                        }
                    }
                    runtime.block_on(stop.cancelled());
                })?;
        }
        Ok(this)
    }

    pub(crate) fn count(&self) -> usize {
        self.shards.len()
    }

    /// Every shard's runtime, in order.
    pub(crate) fn handles(&self) -> impl Iterator<Item = &Handle> {
        self.shards.iter().map(|s| &s.handle)
    }

    /// Where a connection accepted on shard `here` is served: there (`None`), unless it serves
    /// more than the least busy shard by over an eighth and one, then on that one. The count
    /// to hold while serving it comes along.
    pub(crate) fn place(&self, here: usize) -> (Option<&Handle>, Placed) {
        let open = |s: &Shard| s.open.load(Ordering::Relaxed);
        let least = self
            .shards
            .iter()
            .min_by_key(|s| open(s))
            .unwrap_or_else(|| unreachable!("there is always one shard"));
        let (shard, elsewhere) = match self.shards.get(here) {
            Some(s) if open(s) <= open(least) + 1 + open(least) / 8 => (s, None),
            _ => (least, Some(&least.handle)),
        };
        shard.open.fetch_add(1, Ordering::Relaxed);
        let placed = Placed {
            open: Arc::clone(&shard.open),
        };
        (elsewhere, placed)
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Where `count` shards would be bound (see [`cpu_plan`]), with the whole mask they came from;
/// says in the log which it is.
fn binding(count: usize) -> Option<(Vec<usize>, CpuSet)> {
    let allowed = match sched_getaffinity(None) {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(error = %e, "serving threads not bound to CPUs: affinity unknown");
            return None;
        }
    };
    let Some(cpus) = cpu_plan(&allowed, count) else {
        tracing::info!(
            workers = count,
            cpus = allowed.count(),
            "serving threads not bound to CPUs: their number differs from the CPUs available"
        );
        return None;
    };
    tracing::info!(?cpus, "each serving thread bound to its own CPU");
    Some((cpus, allowed))
}

/// The CPU for each of `count` shards: the CPUs in `allowed`, in order, when there are exactly
/// `count` of them. Otherwise `None`: fewer CPUs than shards would crowd some, and more mean the
/// process was limited some other way (a CPU quota, an explicit `workers`), where binding would
/// pick CPUs the operator did not mean.
fn cpu_plan(allowed: &CpuSet, count: usize) -> Option<Vec<usize>> {
    let cpus: Vec<usize> = (0..CpuSet::MAX_CPU)
        .filter(|&c| allowed.is_set(c))
        .collect();
    (cpus.len() == count).then_some(cpus)
}

// === impl Placed ===

impl Drop for Placed {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(shards: &Shards) -> Vec<usize> {
        shards
            .shards
            .iter()
            .map(|s| s.open.load(Ordering::Relaxed))
            .collect()
    }

    #[test]
    fn a_shard_keeps_what_it_accepts_until_it_is_clearly_the_busier() {
        let shards = Shards::start(2, false).unwrap();
        let mut held = Vec::new();
        let mut handed = 0;
        for _ in 0..20 {
            let (elsewhere, placed) = shards.place(0);
            handed += usize::from(elsewhere.is_some());
            held.push(placed);
        }
        // Every connection arrived on the first shard. It kept one while it served no more than
        // one above the other plus an eighth of the other's count, and handed it over beyond.
        assert_eq!(open(&shards), [11, 9]);
        assert_eq!(handed, 9);
        // The second shard, less busy, keeps what it accepts.
        let (elsewhere, placed) = shards.place(1);
        assert!(elsewhere.is_none());
        held.push(placed);
        assert_eq!(open(&shards), [11, 10]);
        drop(held);
        assert_eq!(open(&shards), [0, 0]);
    }

    #[test]
    fn shards_are_bound_only_when_there_is_one_per_allowed_cpu() {
        let set = |cpus: &[usize]| {
            let mut set = CpuSet::new();
            for &c in cpus {
                set.set(c);
            }
            set
        };
        assert_eq!(cpu_plan(&set(&[0, 1]), 2), Some(vec![0, 1]));
        // A cpuset of other CPUs (taskset -c 2,5) is used as it is.
        assert_eq!(cpu_plan(&set(&[2, 5]), 2), Some(vec![2, 5]));
        // More shards than CPUs, or fewer (a quota, an explicit count): the kernel decides.
        assert_eq!(cpu_plan(&set(&[0, 1]), 3), None);
        assert_eq!(cpu_plan(&set(&[0, 1, 2, 3]), 2), None);
    }

    #[test]
    fn at_least_one_shard_runs() {
        let shards = Shards::start(0, false).unwrap();
        assert_eq!(shards.count(), 1);
        let (elsewhere, _placed) = shards.place(0);
        assert!(elsewhere.is_none());
    }
}
