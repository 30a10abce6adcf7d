//! Server configurations for intercepted connections: one leaf per host, minted once, cached.
//!
//! A fresh leaf costs a key generation and a signature, so leaves are cached per name in a
//! bounded cache (quick_cache: S3-FIFO-style eviction, close to LRU with better scan
//! resistance). When many connections for a new host arrive at once, one of them mints and the
//! others wait for its result (single flight). A leaf is re-minted once half its lifetime has
//! passed, so a cached leaf always has at least half its validity left.
//!
//! All leaves share one session-ticket key and one session cache, so a client resumes without a
//! full handshake and 10,000 cached configs do not each carry their own session cache.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use quick_cache::sync::{Cache, EntryAction, EntryResult};
use rustls::{ServerConfig, server::ServerSessionMemoryCache};

use crate::tls::{
    Alpn, Ca, CaKeyAlgorithm, ServerTarget, TlsError,
    mint::{LeafFactory, MadeConfig},
};

/// How leaves are minted and cached.
#[derive(Clone, Debug)]
pub struct LeafOptions {
    /// Most leaves kept; each (certificate, key, server config) takes about 2.3 KiB, so the
    /// default 10,000 take about 23 MiB.
    pub cache_size: usize,
    /// Lifetime of a leaf (at least 10 minutes, capped by the CA's notAfter). The notBefore lies
    /// an hour back.
    pub validity: Duration,
    /// Sessions kept for resumption by clients without session-ticket support (TLS 1.2).
    pub session_cache_size: usize,
}

/// Counters of the leaf cache, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeafStats {
    /// Requests answered from the cache (including those that waited for another's mint).
    pub hits: u64,
    /// Requests that had to mint (new name, or a leaf past half its life).
    pub misses: u64,
    /// Leaves minted successfully.
    pub mints: u64,
    /// Mints that failed.
    pub mint_failures: u64,
    /// Misses caused by a cached leaf past half its life.
    pub refreshes: u64,
    /// Leaves in the cache now.
    pub cached: usize,
}

/// Mints leaf certificates signed by the CA and caches a ready server config per name.
pub struct LeafMinter {
    factory: Arc<LeafFactory>,
    /// Whether minting runs on the blocking pool: only for CAs whose signature costs well over
    /// a handshake (RSA, P-384: 1-1.5 ms); a P-256 mint (~140 us) costs less than the
    /// handshake that follows it on the same worker.
    offload: bool,
    cache: Cache<String, CachedLeaf>,
    counters: Counters,
}

#[derive(Clone)]
struct CachedLeaf {
    configs: LeafConfigs,
    refresh_at: Instant,
}

/// One leaf's server configs, which differ only in the ALPN they offer.
#[derive(Clone)]
pub struct LeafConfigs {
    pub(crate) h2_and_h1: Arc<ServerConfig>,
    pub(crate) h1_only: Arc<ServerConfig>,
}

impl LeafConfigs {
    /// The config offering `alpn`.
    pub fn offering(&self, alpn: Alpn) -> &Arc<ServerConfig> {
        match alpn {
            Alpn::H2AndH1 => &self.h2_and_h1,
            Alpn::H1Only => &self.h1_only,
        }
    }
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    mints: AtomicU64,
    mint_failures: AtomicU64,
    refreshes: AtomicU64,
}

// === impl LeafOptions ===

impl Default for LeafOptions {
    fn default() -> Self {
        Self {
            cache_size: 10_000,
            validity: Duration::from_secs(7 * 24 * 3600),
            session_cache_size: 4096,
        }
    }
}

// === impl LeafMinter ===

impl LeafMinter {
    /// A minter for `ca`. Fails only when the session-ticket key cannot be generated.
    pub fn new(ca: Arc<Ca>, options: LeafOptions) -> Result<Self, TlsError> {
        let ticketer =
            rustls::crypto::ring::Ticketer::new().map_err(|source| TlsError::Rustls {
                what: "the session ticketer",
                source,
            })?;
        let validity = time::Duration::try_from(options.validity)
            .unwrap_or(time::Duration::days(7))
            .max(time::Duration::minutes(10));
        let offload = ca.algorithm() != CaKeyAlgorithm::EcdsaP256;
        let factory = LeafFactory {
            ca,
            validity,
            provider: super::provider(),
            sessions: ServerSessionMemoryCache::new(options.session_cache_size.max(1)),
            ticketer,
        };
        Ok(Self {
            factory: Arc::new(factory),
            offload,
            cache: Cache::new(options.cache_size.max(1)),
            counters: Counters::default(),
        })
    }

    /// The server config for `target` offering ALPN `h2` and `http/1.1`, TLS 1.2 and 1.3, and
    /// resumption; see `server_configs`.
    pub async fn server_config(
        &self,
        target: &ServerTarget,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        Ok(self.server_configs(target).await?.h2_and_h1)
    }

    /// The server configs for `target`: from the cache, or minted now (once, however many
    /// callers ask for the same new name at the same moment).
    pub async fn server_configs(&self, target: &ServerTarget) -> Result<LeafConfigs, TlsError> {
        let key = target.as_key();
        // Fast path under the shard's read lock.
        if let Some(entry) = self.cache.get(key.as_ref())
            && entry.refresh_at > Instant::now()
        {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(entry.configs);
        }
        let fresh = |_: &String, entry: &mut CachedLeaf| {
            if entry.refresh_at > Instant::now() {
                EntryAction::Retain(entry.configs.clone())
            } else {
                EntryAction::ReplaceWithGuard
            }
        };
        let guard = match self.cache.entry_async(key.as_ref(), fresh).await {
            EntryResult::Retained(configs) => {
                // Another caller minted it while we waited.
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(configs);
            }
            EntryResult::Vacant(guard) => Some(guard),
            EntryResult::Replaced(guard, _) => {
                self.counters.refreshes.fetch_add(1, Ordering::Relaxed);
                Some(guard)
            }
            // Not produced by our callback or by the async variant; mint uncached.
            EntryResult::Removed(..) | EntryResult::Timeout => None,
        };
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        // On error the guard drops unfilled and the next waiter mints in turn.
        let leaf = self.mint_entry(target).await?;
        let configs = leaf.configs.clone();
        if let Some(guard) = guard {
            let _ = guard.insert(leaf);
        }
        Ok(configs)
    }

    /// The server configs for an intercepted CONNECT: minted for the SNI name when the client sent
    /// a usable one, else for the CONNECT host.
    ///
    /// When the SNI name is unusable or minting for it fails, the CONNECT host is tried before
    /// giving up, so a client with an odd SNI still gets a certificate (and decides itself whether
    /// it matches). Returns the name the leaf was minted for.
    pub async fn server_config_for_connect(
        &self,
        sni: Option<&str>,
        connect_host: &str,
    ) -> Result<(ServerTarget, LeafConfigs), TlsError> {
        let fallback = ServerTarget::parse(connect_host);
        if let Some(sni) = sni {
            match ServerTarget::parse(sni) {
                Ok(target) => match self.server_configs(&target).await {
                    Ok(configs) => return Ok((target, configs)),
                    Err(e) if fallback.as_ref().is_ok_and(|f| *f != target) => {
                        tracing::warn!(error = %e, "minting for the SNI name failed; using the CONNECT host");
                    }
                    Err(e) => return Err(e),
                },
                Err(e) => tracing::debug!(error = %e, "unusable SNI; using the CONNECT host"),
            }
        }
        let target = fallback?;
        let configs = self.server_configs(&target).await?;
        Ok((target, configs))
    }

    /// Mints a fresh leaf and config for `target` on the calling thread, bypassing the cache
    /// (benchmarks, tools).
    pub fn mint(&self, target: &ServerTarget) -> Result<Arc<ServerConfig>, TlsError> {
        let made = self.factory.make(target);
        self.count(target, made).map(|leaf| leaf.configs.h2_and_h1)
    }

    /// Counters since start.
    pub fn stats(&self) -> LeafStats {
        LeafStats {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            mints: self.counters.mints.load(Ordering::Relaxed),
            mint_failures: self.counters.mint_failures.load(Ordering::Relaxed),
            refreshes: self.counters.refreshes.load(Ordering::Relaxed),
            cached: self.cache.len(),
        }
    }

    /// Requests answered from the cache.
    pub fn hits(&self) -> u64 {
        self.counters.hits.load(Ordering::Relaxed)
    }

    /// Requests that had to mint.
    pub fn misses(&self) -> u64 {
        self.counters.misses.load(Ordering::Relaxed)
    }

    /// The CA leaves are signed with.
    pub fn ca(&self) -> &Arc<Ca> {
        &self.factory.ca
    }

    async fn mint_entry(&self, target: &ServerTarget) -> Result<CachedLeaf, TlsError> {
        let made = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.offload => {
                let (factory, owned) = (self.factory.clone(), target.clone());
                runtime
                    .spawn_blocking(move || factory.make(&owned))
                    .await
                    .unwrap_or_else(|e| Err(TlsError::MintTask(e.to_string())))
            }
            _ => self.factory.make(target),
        };
        self.count(target, made)
    }

    fn count(
        &self,
        target: &ServerTarget,
        made: Result<MadeConfig, TlsError>,
    ) -> Result<CachedLeaf, TlsError> {
        let made = made.inspect_err(|_| {
            self.counters.mint_failures.fetch_add(1, Ordering::Relaxed);
        })?;
        self.counters.mints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(host = %target, "minted leaf certificate");
        let half_life = Duration::try_from(made.remaining / 2).unwrap_or_default();
        Ok(CachedLeaf {
            configs: made.configs,
            // An unrepresentable instant (CA valid for millennia): refresh in a day instead.
            refresh_at: Instant::now()
                .checked_add(half_life)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(24 * 3600)),
        })
    }
}

impl std::fmt::Debug for LeafMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafMinter")
            .field("ca", &self.factory.ca)
            .field("offload", &self.offload)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl LeafMinter {
    /// Makes the cached leaf for `target` due for refresh, as if half its life had passed.
    pub(crate) fn age_for_test(&self, target: &ServerTarget) {
        let key = target.as_key();
        if let Some(mut entry) = self.cache.get(key.as_ref()) {
            entry.refresh_at = Instant::now();
            self.cache.insert(key.into_owned(), entry);
        }
    }
}
