//! Small, separate resilience pieces that the chain composes around each
//! provider: [`RateLimiter`] (token bucket), [`RetryPolicy`] (exponential
//! backoff with jitter, honouring `Retry-After`), [`CallTimeout`] and
//! [`Coalescer`] (single flight). The circuit breaker lives in
//! [`crate::breaker`].

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::duration_ms;
use crate::error::{MarketError, Result};

// ------------------------------------------------------------- rate limiter

/// Token-bucket settings, set to the vendor's quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Bucket size (burst).
    pub capacity: u32,
    /// Tokens added per second (e.g. 5 calls/minute = 0.0833).
    pub per_second: f64,
    /// How long a caller may wait for a token before giving up with
    /// [`MarketError::Throttled`] (and the chain moves to the next provider).
    #[serde(with = "duration_ms", rename = "max_wait_ms")]
    pub max_wait: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            capacity: 10,
            per_second: 5.0,
            max_wait: Duration::from_millis(500),
        }
    }
}

impl RateLimitConfig {
    /// `calls` per `period`, all of them available as a burst.
    pub fn per_period(calls: u32, period: Duration, max_wait: Duration) -> Self {
        Self {
            capacity: calls.max(1),
            per_second: f64::from(calls) / period.as_secs_f64().max(1e-9),
            max_wait,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket. Waiting callers reserve their token first, so they are
/// served in order and never oversubscribe the quota.
///
/// Kept instead of `governor`: governor cannot reserve a token for a caller
/// that waits (waiters would race and could wait past `max_wait`), and it
/// reads its own clock, not tokio's.
#[derive(Debug)]
pub struct RateLimiter {
    name: String,
    config: RateLimitConfig,
    bucket: Mutex<Bucket>,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(name: impl Into<String>, config: RateLimitConfig) -> Self {
        let bucket = Bucket {
            tokens: f64::from(config.capacity),
            last: Instant::now(),
        };
        Self {
            name: name.into(),
            config,
            bucket: Mutex::new(bucket),
        }
    }

    /// Reserves a token: `Ok(wait)` is how long to sleep before calling,
    /// `Err(wait)` means the wait would exceed `max_wait` (nothing reserved).
    pub fn reserve(&self) -> std::result::Result<Duration, Duration> {
        let now = Instant::now();
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let rate = self.config.per_second;
        if rate <= 0.0 {
            return Ok(Duration::ZERO);
        }
        let refill = now.saturating_duration_since(bucket.last).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(f64::from(self.config.capacity));
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(Duration::ZERO);
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / rate);
        if wait > self.config.max_wait {
            return Err(wait);
        }
        bucket.tokens -= 1.0;
        Ok(wait)
    }

    /// Waits for a token (up to `max_wait`).
    pub async fn acquire(&self) -> Result<()> {
        match self.reserve() {
            Ok(wait) if wait.is_zero() => Ok(()),
            Ok(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Err(wait) => Err(MarketError::Throttled {
                provider: self.name.clone(),
                wait,
            }),
        }
    }
}

// -------------------------------------------------------------------- retry

/// Retries with exponential backoff and jitter. Only idempotent calls are
/// retried, only on [`MarketError::retryable`] errors, and a vendor's
/// `Retry-After` replaces the backoff (or ends the retries when it is longer
/// than `max_retry_after`: the chain will rather ask the next provider).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt.
    #[serde(with = "duration_ms", rename = "initial_backoff_ms")]
    pub initial_backoff: Duration,
    /// Backoff growth per attempt.
    pub multiplier: f64,
    /// Backoff cap.
    #[serde(with = "duration_ms", rename = "max_backoff_ms")]
    pub max_backoff: Duration,
    /// Fraction of each backoff that is randomized (0 = none, 1 = full jitter).
    pub jitter: f64,
    /// The longest `Retry-After` worth waiting for.
    #[serde(with = "duration_ms", rename = "max_retry_after_ms")]
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(2),
            jitter: 0.5,
            max_retry_after: Duration::from_secs(2),
        }
    }
}

/// Whether a call may safely be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads: safe to retry.
    Idempotent,
    /// Never retried.
    NotIdempotent,
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff before attempt `attempt + 1` (`attempt` ≥ 1), jittered.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(32) as i32;
        let base = (self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exp))
            .min(self.max_backoff.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter * rand::rng().random::<f64>();
        Duration::from_secs_f64((base * factor).max(0.0))
    }

    /// The delay before retrying after `error`, or `None` to stop.
    pub fn delay_after(
        &self,
        attempt: u32,
        error: &MarketError,
        idempotency: Idempotency,
    ) -> Option<Duration> {
        if idempotency == Idempotency::NotIdempotent
            || attempt >= self.max_attempts
            || !error.retryable()
        {
            return None;
        }
        match error {
            // The breaker or our own quota said no: another provider, not another try.
            MarketError::CircuitOpen { .. }
            | MarketError::Throttled { .. }
            | MarketError::AllProvidersFailed { .. } => None,
            MarketError::RateLimited {
                retry_after: Some(after),
                ..
            } => (*after <= self.max_retry_after).then_some(*after),
            _ => Some(self.backoff(attempt)),
        }
    }

    /// Runs `op` (given the attempt number, from 1) until it succeeds or the
    /// policy gives up.
    pub async fn run<T, F, Fut>(&self, idempotency: Idempotency, mut op: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) => match self.delay_after(attempt, &e, idempotency) {
                    Some(delay) => {
                        tracing::debug!(attempt, ?delay, error = %e, "retrying");
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
            }
        }
    }
}

// ------------------------------------------------------------------ timeout

/// A per-call deadline.
#[derive(Debug, Clone)]
pub struct CallTimeout {
    provider: String,
    after: Duration,
}

impl CallTimeout {
    /// A deadline of `after` for calls to `provider`.
    pub fn new(provider: impl Into<String>, after: Duration) -> Self {
        Self {
            provider: provider.into(),
            after,
        }
    }

    /// The deadline.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// Runs `fut`, failing with [`MarketError::Timeout`] when it is late.
    pub async fn run<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.after, fut).await {
            Ok(result) => result.map_err(|e| match e {
                MarketError::Timeout { provider, .. } => MarketError::Timeout {
                    provider,
                    after: self.after,
                },
                other => other,
            }),
            Err(_) => Err(MarketError::Timeout {
                provider: self.provider.clone(),
                after: self.after,
            }),
        }
    }
}

// --------------------------------------------------------------- coalescing

/// Single flight: concurrent requests for the same key share one execution.
/// Nothing is kept once the execution finishes, so later requests start a new
/// one (coalescing, not caching).
///
/// Built on `futures`' [`Shared`]: the first caller's future is shared, every
/// concurrent caller polls the same one, and whoever polls it drives it, so
/// a dropped first caller does not strand the others. When the last caller
/// leaves (finished or cancelled) the entry is removed.
pub struct Coalescer<K, T> {
    inflight: Mutex<HashMap<K, Flight<T>>>,
    next_id: AtomicU64,
    joined: AtomicU64,
}

struct Flight<T> {
    id: u64,
    future: Shared<BoxFuture<'static, T>>,
}

impl<K, T> std::fmt::Debug for Coalescer<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("joined", &self.joined.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<K, T> Default for Coalescer<K, T>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

/// Removes a flight's entry when its last caller leaves, finished or not.
/// It owns this caller's handle, so while it runs the handle still counts.
struct Leave<'a, K: Eq + Hash, T> {
    inflight: &'a Mutex<HashMap<K, Flight<T>>>,
    key: Option<K>,
    id: u64,
    future: Shared<BoxFuture<'static, T>>,
}

impl<K: Eq + Hash, T> Drop for Leave<'_, K, T> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut map = self
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = map.get(&key).is_some_and(|flight| {
            // Finished, or only the map's handle and ours are left.
            flight.id == self.id
                && (self.future.peek().is_some() || self.future.strong_count().unwrap_or(0) <= 2)
        });
        if last {
            map.remove(&key);
        }
    }
}

impl<K, T> Coalescer<K, T>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    /// An empty coalescer.
    pub fn new() -> Self {
        Self {
            inflight: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        }
    }

    /// How many requests joined an execution started by another.
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }

    /// Runs `make()` for `key`, or joins the execution already in flight.
    /// Returns the output and whether this request joined another's.
    pub async fn run<F, Fut>(&self, key: K, make: F) -> (T, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (future, id, joined) = {
            let mut map = self
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match map.get(&key) {
                Some(flight) => (flight.future.clone(), flight.id, true),
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let future = make().boxed().shared();
                    map.insert(
                        key.clone(),
                        Flight {
                            id,
                            future: future.clone(),
                        },
                    );
                    (future, id, false)
                }
            }
        };
        if joined {
            self.joined.fetch_add(1, Ordering::Relaxed);
        }
        let mut leave = Leave {
            inflight: &self.inflight,
            key: Some(key),
            id,
            future,
        };
        let output = (&mut leave.future).await;
        drop(leave);
        (output, joined)
    }
}
