//! What each TLS origin speaks, so that an intercepted client is offered the same.
//!
//! An intercepted client settles on HTTP/2 or HTTP/1.1 with the proxy before any request says
//! what it wants. Offered both, it takes HTTP/2, and if the origin speaks only HTTP/1.1 every
//! request is then translated on the way, and the client pays HTTP/2's framing for nothing:
//! curl 7.88 spends about twice the CPU on an HTTP/2 upload as on an HTTP/1.1 one. So an
//! intercepted client is offered what the origin chose when the proxy last dialed it. An origin
//! not dialed recently is dialed during the client's handshake (as mitmproxy's eager connection
//! strategy does), and that connection is kept for the first request, so learning costs no
//! handshake of its own.
//!
//! A stale answer is harmless: the proxy translates between the two protocols either way.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::net::DialError;
use crate::tls::Alpn;

/// How long an origin's choice is trusted.
const REMEMBER_FOR: Duration = Duration::from_secs(3600);
/// Origins remembered at most (about a hundred bytes each).
const REMEMBERED: usize = 16_384;
/// How long a client's handshake waits for an origin it has to learn. The dial goes on after
/// that and still carries the first request; only the offer falls back to both protocols.
const PROBE_WAIT: Duration = Duration::from_secs(1);
/// How long a connection dialed during a handshake waits for its first request.
const KEEP_AHEAD: Duration = Duration::from_secs(10);
/// Dials kept per origin: clients that open several connections at once each dial one.
const AHEAD_PER_ORIGIN: usize = 4;

/// A connection that can say which application protocol it negotiated.
pub trait Negotiated {
    fn speaks_h2(&self) -> bool;
}

/// `(host, port)`; hosts are lowercase, as `Target` and the `Connector` have them.
type Key = (Box<str>, u16);
type Dial<T> = JoinHandle<Result<T, DialError>>;
/// Dials made during handshakes, per origin, each with an id for its expiry.
type Ahead<T> = HashMap<Key, Vec<(u64, Dial<T>)>>;

/// What TLS origins chose, and the connections dialed ahead to learn it.
pub struct Origins<T> {
    learned: quick_cache::sync::Cache<Key, (bool, Instant)>,
    ahead: Mutex<Ahead<T>>,
    next_id: AtomicU64,
}

fn key(host: &str, port: u16) -> Key {
    (host.to_ascii_lowercase().into_boxed_str(), port)
}

/// A `Key` borrowed, so that the lookup on every intercepted request builds nothing. Hashes as
/// `Key` does: the string, then the port.
#[derive(Hash)]
struct KeyRef<'a>(&'a str, u16);

impl quick_cache::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *key.0 == *self.0 && key.1 == self.1
    }
}

fn offer_for(h2: bool) -> Alpn {
    if h2 { Alpn::H2AndH1 } else { Alpn::H1Only }
}

impl<T: Negotiated + Send + 'static> Origins<T> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            learned: quick_cache::sync::Cache::new(REMEMBERED),
            ahead: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// Remembers what `host:port` chose when offered both protocols.
    pub fn learn(&self, host: &str, port: u16, h2: bool) {
        self.learned.insert(key(host, port), (h2, Instant::now()));
    }

    /// What `host:port` (`host` in lowercase) chose when last dialed, if that was recent.
    pub fn known(&self, host: &str, port: u16) -> Option<bool> {
        let (h2, at) = self.learned.get(&KeyRef(host, port))?;
        (at.elapsed() < REMEMBER_FOR).then_some(h2)
    }

    /// What to offer a client that offers both protocols for `host:port`: what the origin chose
    /// when last dialed or, for an origin not seen recently, what it chooses now. `dial`
    /// connects to it offering both; its connection waits for the first request (`take`).
    pub async fn offer<F>(self: &Arc<Self>, host: &str, port: u16, dial: F) -> Alpn
    where
        F: Future<Output = Result<T, DialError>> + Send + 'static,
    {
        if let Some(h2) = self.known(host, port) {
            return offer_for(h2);
        }
        let (chose, choice) = oneshot::channel();
        let origins = Arc::downgrade(self);
        let (owned, port_) = (host.to_owned(), port);
        let task = tokio::spawn(async move {
            let conn = dial.await?;
            let h2 = conn.speaks_h2();
            if let Some(origins) = origins.upgrade() {
                origins.learn(&owned, port_, h2);
            }
            let _ = chose.send(h2);
            Ok(conn)
        });
        self.keep(key(host, port), task);
        match tokio::time::timeout(PROBE_WAIT, choice).await {
            Ok(Ok(h2)) => offer_for(h2),
            // Failed (the request that follows will say why) or slow: offer both.
            Ok(Err(_)) | Err(_) => Alpn::H2AndH1,
        }
    }

    /// The connection dialed ahead for `host:port`, once it is made (or the dial's error),
    /// if there is one.
    pub async fn take(&self, host: &str, port: u16) -> Option<Result<T, DialError>> {
        let dial = {
            let mut ahead = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
            let k = key(host, port);
            let kept = ahead.get_mut(&k)?;
            let (_, dial) = kept.remove(0);
            if kept.is_empty() {
                ahead.remove(&k);
            }
            dial
        };
        // A dial that panicked: the caller dials anew.
        dial.await.ok()
    }

    /// Connections dialed ahead and not yet taken.
    pub fn kept(&self) -> usize {
        let ahead = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
        ahead.values().map(Vec::len).sum()
    }

    fn keep(self: &Arc<Self>, key: Key, dial: Dial<T>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut ahead = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
            let kept = ahead.entry(key.clone()).or_default();
            if kept.len() >= AHEAD_PER_ORIGIN {
                // Still learns the origin's choice; the connection closes once made.
                return;
            }
            kept.push((id, dial));
        }
        let origins = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_AHEAD).await;
            if let Some(origins) = origins.upgrade() {
                origins.forget(&key, id);
            }
        });
    }

    fn forget(&self, key: &Key, id: u64) {
        let mut ahead = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(kept) = ahead.get_mut(key) else {
            return;
        };
        if let Some(at) = kept.iter().position(|(i, _)| *i == id) {
            kept.remove(at).1.abort();
        }
        if kept.is_empty() {
            ahead.remove(key);
        }
    }
}

#[cfg(test)]
#[path = "origins_tests.rs"]
mod tests;
