//! The quote caches: L1 in process (moka) and L2 in Redis, shared by every
//! server replica. L2 is best effort: when Redis is down or slow, lookups
//! count as misses and writes are dropped, so the chain degrades to L1 and the
//! providers instead of failing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{MarketError, Result};
use crate::model::Quote;

/// A quote as the caches keep it: with who fetched it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedQuote {
    /// The quote.
    pub quote: Quote,
    /// The provider that fetched it.
    pub origin: String,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

impl CachedQuote {
    /// Time since it was fetched.
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        (now - self.fetched_at).to_std().unwrap_or(Duration::ZERO)
    }
}

/// Why an L2 operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum L2Error {
    /// No connection (Redis down; a reconnect is attempted at most once a second).
    #[error("redis unavailable")]
    Unavailable,
    /// The operation took longer than its deadline.
    #[error("redis timed out")]
    Timeout,
    /// Redis answered with an error, or the value did not parse.
    #[error("redis error: {0}")]
    Failed(String),
}

/// The Redis (L2) quote cache.
pub struct RedisCache {
    client: redis::Client,
    connection: Arc<RwLock<Option<ConnectionManager>>>,
    connecting: Arc<std::sync::atomic::AtomicBool>,
    next_attempt_ms: AtomicU64,
    start: Instant,
    prefix: String,
    fresh_ttl: Duration,
    stale_ttl: Duration,
    op_timeout: Duration,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connects (waiting at most `op_timeout × 10` for the first connection).
    /// A Redis that is down is not an error: the cache starts disconnected and
    /// reconnects in the background.
    pub async fn connect(
        url: &str,
        prefix: &str,
        fresh_ttl: Duration,
        stale_ttl: Duration,
        op_timeout: Duration,
    ) -> Result<Self> {
        let client = rampart_dbtls::redis_client(url, &rampart_dbtls::RedisTlsConfig::default())
            .map_err(|e| MarketError::Config(format!("redis: {e}")))?;
        Self::with_client(client, prefix, fresh_ttl, stale_ttl, op_timeout).await
    }

    /// [`RedisCache::connect`] with a client of the caller's (e.g. one made
    /// by `rampart_dbtls::redis_client` with TLS files).
    pub async fn with_client(
        client: redis::Client,
        prefix: &str,
        fresh_ttl: Duration,
        stale_ttl: Duration,
        op_timeout: Duration,
    ) -> Result<Self> {
        let cache = Self {
            client,
            connection: Arc::new(RwLock::new(None)),
            connecting: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            next_attempt_ms: AtomicU64::new(0),
            start: Instant::now(),
            prefix: prefix.to_owned(),
            fresh_ttl,
            stale_ttl,
            op_timeout,
        };
        let first = tokio::time::timeout(
            op_timeout * 10,
            ConnectionManager::new_with_config(cache.client.clone(), cache.manager_config()),
        )
        .await;
        match first {
            Ok(Ok(manager)) => cache.set_connection(Some(manager)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "L2 Redis unavailable at start; serving without it")
            }
            Err(_) => tracing::warn!("L2 Redis did not answer at start; serving without it"),
        }
        cache.next_attempt_ms.store(1000, Ordering::Relaxed);
        Ok(cache)
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.op_timeout * 5))
            .set_response_timeout(Some(self.op_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1))
    }

    fn set_connection(&self, manager: Option<ConnectionManager>) {
        if let Ok(mut slot) = self.connection.write() {
            *slot = manager;
        }
    }

    /// Whether a connection has been made.
    pub fn is_connected(&self) -> bool {
        self.connection.read().map(|c| c.is_some()).unwrap_or(false)
    }

    /// The connection, or `None` while Redis is unreachable. Never waits:
    /// a reconnect runs in the background at most once a second.
    fn manager(&self) -> Option<ConnectionManager> {
        if let Some(m) = self.connection.read().ok().and_then(|c| c.clone()) {
            return Some(m);
        }
        let now_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_attempt_ms.load(Ordering::Relaxed);
        if now_ms >= due
            && self
                .next_attempt_ms
                .compare_exchange(due, now_ms + 1000, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            && !self.connecting.swap(true, Ordering::AcqRel)
        {
            let client = self.client.clone();
            let config = self.manager_config();
            let slot = Arc::clone(&self.connection);
            let connecting = Arc::clone(&self.connecting);
            let limit = self.op_timeout * 10;
            tokio::spawn(async move {
                if let Ok(Ok(manager)) =
                    tokio::time::timeout(limit, ConnectionManager::new_with_config(client, config))
                        .await
                    && let Ok(mut slot) = slot.write()
                {
                    *slot = Some(manager);
                }
                connecting.store(false, Ordering::Release);
            });
        }
        None
    }

    fn fresh_key(&self, symbol: &str) -> String {
        format!("{}:quote:{symbol}", self.prefix)
    }

    fn last_key(&self, symbol: &str) -> String {
        format!("{}:quote-last:{symbol}", self.prefix)
    }

    async fn with_timeout<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> std::result::Result<T, L2Error> {
        let span = tracing::debug_span!(
            "redis",
            otel.kind = "client",
            db.system.name = "redis",
            db.namespace = "quote-cache"
        );
        match tokio::time::timeout(self.op_timeout, fut)
            .instrument(span)
            .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(L2Error::Failed(e.to_string())),
            Err(_) => Err(L2Error::Timeout),
        }
    }

    fn parse(raw: Option<String>) -> std::result::Result<Option<CachedQuote>, L2Error> {
        match raw {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| L2Error::Failed(format!("bad cached value: {e}"))),
        }
    }

    /// A quote younger than the L2 TTL.
    pub async fn get_fresh(
        &self,
        symbol: &str,
    ) -> std::result::Result<Option<CachedQuote>, L2Error> {
        let mut conn = self.manager().ok_or(L2Error::Unavailable)?;
        let raw: Option<String> = self.with_timeout(conn.get(self.fresh_key(symbol))).await?;
        let found = Self::parse(raw)?;
        Ok(found.filter(|q| q.age(Utc::now()) <= self.fresh_ttl))
    }

    /// Fresh quotes for several symbols, in one round trip (`None` where missing).
    pub async fn get_many_fresh(
        &self,
        symbols: &[String],
    ) -> std::result::Result<Vec<Option<CachedQuote>>, L2Error> {
        if symbols.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.manager().ok_or(L2Error::Unavailable)?;
        let keys: Vec<String> = symbols.iter().map(|s| self.fresh_key(s)).collect();
        let raw: Vec<Option<String>> = self
            .with_timeout(redis::cmd("MGET").arg(&keys).query_async(&mut conn))
            .await?;
        let now = Utc::now();
        raw.into_iter()
            .map(|r| Ok(Self::parse(r)?.filter(|q| q.age(now) <= self.fresh_ttl)))
            .collect()
    }

    /// The last quote ever cached for the symbol (kept for the stale TTL).
    pub async fn get_last(
        &self,
        symbol: &str,
    ) -> std::result::Result<Option<CachedQuote>, L2Error> {
        let mut conn = self.manager().ok_or(L2Error::Unavailable)?;
        let raw: Option<String> = self.with_timeout(conn.get(self.last_key(symbol))).await?;
        Self::parse(raw)
    }

    /// Stores a fresh quote (and the last-known copy) in one round trip.
    pub async fn put(&self, quote: &CachedQuote) -> std::result::Result<(), L2Error> {
        let mut conn = self.manager().ok_or(L2Error::Unavailable)?;
        let text = serde_json::to_string(quote).map_err(|e| L2Error::Failed(e.to_string()))?;
        let symbol = &quote.quote.symbol;
        let mut pipe = redis::pipe();
        pipe.set_ex(
            self.fresh_key(symbol),
            &text,
            self.fresh_ttl.as_secs().max(1),
        )
        .ignore()
        .set_ex(
            self.last_key(symbol),
            &text,
            self.stale_ttl.as_secs().max(1),
        )
        .ignore();
        self.with_timeout(pipe.query_async::<()>(&mut conn)).await
    }

    /// Deletes a symbol's entries (fresh and last known).
    pub async fn evict(&self, symbol: &str) -> std::result::Result<(), L2Error> {
        let mut conn = self.manager().ok_or(L2Error::Unavailable)?;
        self.with_timeout(conn.del::<_, ()>(vec![self.fresh_key(symbol), self.last_key(symbol)]))
            .await
    }
}
