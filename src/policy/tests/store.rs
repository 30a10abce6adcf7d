use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::policy::{PolicyStore, ReloadOutcome};

const BLOCK_CLOUD: &str = "category = [\"cloud\"]";

fn store_with(rules: &str) -> (Dir, Arc<PolicyStore>, Arc<Mutex<Vec<ReloadOutcome>>>) {
    let d = Dir::with_rules(rules);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let store = PolicyStore::load(d.path().to_path_buf(), None, move |o| {
        log.lock().unwrap().push(o.clone())
    })
    .unwrap();
    (d, Arc::new(store), seen)
}

/// Polls `cond` until it holds or `deadline` passes.
fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn a_good_change_is_applied_and_changes_the_version() {
    let (d, store, seen) = store_with(&rule("cloud", "log", BLOCK_CLOUD));
    let before = store.current();
    assert_eq!(
        decided(&before, &get("dropbox.com")).action,
        crate::policy::Action::Log
    );

    d.write("rules.toml", &rule("cloud", "block", BLOCK_CLOUD));
    let outcome = store.reload();
    let ReloadOutcome::Applied { version } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_ne!(version, before.version());
    assert_eq!(store.current().version(), version);
    assert!(decided(&store.current(), &get("dropbox.com")).blocks());
    // The snapshot taken before the reload is untouched.
    assert!(!decided(&before, &get("dropbox.com")).blocks());
    assert_eq!(seen.lock().unwrap().as_slice(), [outcome]);
}

#[test]
fn reloading_the_same_files_is_unchanged() {
    let (_d, store, _) = store_with(&rule("cloud", "log", BLOCK_CLOUD));
    let v = store.current().version().to_owned();
    assert_eq!(store.reload(), ReloadOutcome::Unchanged { version: v });
}

#[test]
fn a_broken_change_is_rejected_and_the_old_policy_stays() {
    let (d, store, seen) = store_with(&rule("cloud", "block", BLOCK_CLOUD));
    let v = store.current().version().to_owned();
    d.write(
        "rules.toml",
        &rule("cloud", "block", "category = [\"no-such-category\"]"),
    );
    let outcome = store.reload();
    let ReloadOutcome::Rejected {
        error,
        kept_version,
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(kept_version, &v);
    assert!(
        error.contains("rules.toml:7: rules[0].category: unknown category"),
        "{error}"
    );
    assert_eq!(store.current().version(), v);
    assert!(decided(&store.current(), &get("dropbox.com")).blocks());
    assert_eq!(store.rejected_total(), 1);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn reload_under_running_traffic() {
    let (d, store, _) = store_with(&rule("cloud", "log", BLOCK_CLOUD));
    let v1 = store.current().version().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (store, stop, checks) = (store.clone(), stop.clone(), checks.clone());
            thread::spawn(move || {
                let mut versions = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    // One exchange: one snapshot from head to verdict.
                    let p = store.current();
                    let head = decided(&p, &get("dropbox.com"));
                    let again = decided(&p, &get("dropbox.com"));
                    assert_eq!(head, again, "a snapshot never changes under an exchange");
                    versions.insert((p.version().to_owned(), head.action.as_str()));
                    checks.fetch_add(1, Ordering::Relaxed);
                }
                versions
            })
        })
        .collect();

    assert!(eventually(Duration::from_secs(10), || checks
        .load(Ordering::Relaxed)
        > 100));
    d.write("rules.toml", &rule("cloud", "block", BLOCK_CLOUD));
    let ReloadOutcome::Applied { version: v2 } = store.reload() else {
        panic!("good policy rejected")
    };
    let after_good = checks.load(Ordering::Relaxed);
    assert!(eventually(Duration::from_secs(10), || checks
        .load(Ordering::Relaxed)
        > after_good + 100));
    d.write("rules.toml", "[[rules]]\nid = \"broken\"\n");
    assert!(matches!(store.reload(), ReloadOutcome::Rejected { .. }));
    let after_bad = checks.load(Ordering::Relaxed);
    assert!(eventually(Duration::from_secs(10), || checks
        .load(Ordering::Relaxed)
        > after_bad + 100));
    stop.store(true, Ordering::Relaxed);

    let mut seen = std::collections::BTreeSet::new();
    for w in workers {
        seen.extend(w.join().expect("a worker panicked"));
    }
    // Only the two good versions were ever served, each with its own decision.
    let expected: std::collections::BTreeSet<_> = [(v1, "log"), (v2.clone(), "block")].into();
    assert!(seen.is_subset(&expected), "{seen:?}");
    assert!(seen.iter().any(|(v, _)| *v == v2));
    assert_eq!(store.current().version(), v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_applies_changes_and_rejects_broken_files() {
    let (d, store, seen) = store_with(&rule("cloud", "log", BLOCK_CLOUD));
    let v1 = store.current().version().to_owned();
    // The watch is registered when `watch` returns.
    let task = store.watch();

    // Several quick writes: the debounce folds them into (typically) one reload.
    for action in ["allow", "log", "block"] {
        d.write("rules.toml", &rule("cloud", action, BLOCK_CLOUD));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let applied = wait_for(Duration::from_secs(10), || store.current().version() != v1).await;
    assert!(applied, "the watcher did not reload");
    assert!(decided(&store.current(), &get("dropbox.com")).blocks());
    let reloads = seen.lock().unwrap().len();
    assert!(
        (1..3).contains(&reloads),
        "3 quick writes gave {reloads} reloads"
    );

    let v2 = store.current().version().to_owned();
    d.write("rules.toml", "this is = = not toml");
    let rejected = wait_for(Duration::from_secs(10), || store.rejected_total() == 1).await;
    assert!(rejected, "the broken file was not rejected");
    assert_eq!(store.current().version(), v2);
    let last = seen.lock().unwrap().last().cloned();
    assert!(
        matches!(last, Some(ReloadOutcome::Rejected { ref kept_version, .. }) if *kept_version == v2),
        "{last:?}"
    );

    // Files that are not policy files do not trigger a reload.
    let before = seen.lock().unwrap().len();
    d.write("notes.txt", "hello");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(seen.lock().unwrap().len(), before);
    task.abort();
}

async fn wait_for(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    cond()
}
