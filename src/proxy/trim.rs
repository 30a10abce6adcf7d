//! Giving the memory of parked connections back to the system.
//!
//! A served HTTP/1.1 connection holds hyper's buffers (16 KiB and more); parking it frees them.
//! But glibc's malloc keeps freed memory in its arenas for reuse, so after a burst of
//! connections went quiet the resident size stays at the burst's peak, and a proxy holding
//! thousands of idle browser connections looks (and is, to the kernel) as large as when they
//! were all busy. So when many connections were parked recently, the free memory is handed
//! back with `malloc_trim`, off the request path and at most once per period.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often parked connections are looked at.
const PERIOD: Duration = Duration::from_secs(1);

/// Parked connections since the last trim that make one worth it: each freed about 16 KiB, so
/// this is a few MiB, while a trim walks the whole heap.
const WORTH_IT: usize = 128;

#[derive(Debug, Default)]
pub(crate) struct Trimmer {
    parked: AtomicUsize,
}

impl Trimmer {
    /// A connection was parked: its buffers were freed.
    pub(crate) fn parked(&self) {
        self.parked.fetch_add(1, Ordering::Relaxed);
    }

    /// Trims after each period in which enough connections were parked, until shutdown.
    pub(crate) async fn run(&self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let parked = self.parked.load(Ordering::Relaxed);
            if parked < WORTH_IT {
                continue;
            }
            // Parkings counted meanwhile stay for the next period.
            self.parked.fetch_sub(parked, Ordering::Relaxed);
            // A trim takes the allocator's locks for milliseconds: keep it off the workers.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "a foreign call without preconditions; no crate wraps it"
)]
fn trim() {
    // SAFETY: malloc_trim only returns free memory to the system; it has no preconditions.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(
        released = released != 0,
        "returned free memory to the system"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
