//! # rampart-ratelimit
//!
//! Rate limits shared across replicas: GCRA (the generic cell rate
//! algorithm) in one atomic Redis Lua script, with an in-memory fallback.
//!
//! GCRA keeps one number per key, the *theoretical arrival time* (TAT): the
//! moment the key's allowance would be fully replenished. A request costs one
//! emission interval `T = per_period / count`; it is allowed while the new TAT
//! stays within `burst × T` of now. So a [`Quota`] of 100 per 60 s with burst
//! 20 allows 20 requests at once, then one every 0.6 s.
//!
//! With a Redis URL configured, every replica runs the same script against the
//! same key (one round trip, Redis's clock, keys expire when replenished), so
//! the limit is shared. When Redis is absent, slow or failing, the limiter
//! answers from memory instead — the `governor` crate's keyed GCRA, with the
//! same quota — so a request is never failed because of Redis; it logs the
//! outage once and probes Redis again every `reprobe_after_ms` until it
//! answers.
//!
//! [`gcra_step`] is the Redis script's arithmetic as a pure function (the
//! script itself cannot be unit-tested); the tests check its invariants.
//!
//! ```
//! use std::time::Duration;
//! use rampart_ratelimit::{gcra_step, Quota};
//!
//! let quota = Quota::new(100, Duration::from_secs(60), 20);
//! let (first, tat) = gcra_step(None, 0, &quota);
//! assert!(first.allowed);
//! assert_eq!(first.remaining, 19);
//! assert_eq!(tat, Some(600_000)); // one emission interval (0.6 s) in µs
//! ```
//!
//! A limiter without Redis (per process), as the server builds it from its
//! configuration:
//!
//! ```
//! use std::time::Duration;
//! use rampart_ratelimit::{Quota, RateLimitBackend, RateLimitConfig, RateLimiter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rampart_ratelimit::RateLimitError> {
//! let limiter = RateLimiter::new(RateLimitConfig {
//!     per_tenant: Quota::new(2, Duration::from_secs(60), 2),
//!     ..RateLimitConfig::default()
//! })?;
//! assert_eq!(limiter.backend(), RateLimitBackend::Memory);
//! assert!(limiter.check_tenant("acme").await.allowed);
//! assert!(limiter.check_tenant("acme").await.allowed);
//! let denied = limiter.check_tenant("acme").await;
//! assert!(!denied.allowed);
//! assert!(denied.headers().iter().any(|(name, _)| *name == "Retry-After"));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Atomic GCRA step. KEYS[1] = key; ARGV = emission interval (µs), burst
/// offset (µs). Time comes from Redis so replicas' clocks do not matter.
/// Returns {allowed, remaining, reset_after µs, retry_after µs}.
const GCRA_LUA: &str = r"
local key = KEYS[1]
local interval = tonumber(ARGV[1])
local burst_offset = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = now
local stored = redis.call('GET', key)
if stored then
  local v = tonumber(stored)
  if v and v > now then tat = v end
end
local new_tat = tat + interval
if new_tat > now + burst_offset then
  return {0, 0, tat - now, new_tat - burst_offset - now}
end
local ttl_ms = math.floor((new_tat - now) / 1000) + 1
redis.call('SET', key, string.format('%d', new_tat), 'PX', string.format('%d', ttl_ms))
return {1, math.floor((now + burst_offset - new_tat) / interval), new_tat - now, 0}
";

/// Errors building a [`RateLimiter`] or reading its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The configuration is unusable.
    #[error("invalid rate limit configuration: {0}")]
    Config(String),
    /// A quota has a zero count, period or burst.
    #[error(
        "quota {count} per {per_period:?} with burst {burst}: count, period and burst must be > 0"
    )]
    InvalidQuota {
        /// Requests per period.
        count: u32,
        /// The period.
        per_period: Duration,
        /// Requests allowed at once.
        burst: u32,
    },
}

// ------------------------------------------------------------------ quota

/// How many requests a key may make: `count` per `per_period` on average,
/// up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "QuotaSpec", into = "QuotaSpec")]
pub struct Quota {
    /// Requests per period (sustained rate).
    pub count: u32,
    /// The period.
    pub per_period: Duration,
    /// Requests allowed at once (bucket size).
    pub burst: u32,
}

/// The configuration form of a [`Quota`]: `{ count = 100, period_secs = 60, burst = 20 }`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaSpec {
    count: u32,
    period_secs: u64,
    burst: u32,
}

impl TryFrom<QuotaSpec> for Quota {
    type Error = RateLimitError;
    fn try_from(spec: QuotaSpec) -> Result<Self, RateLimitError> {
        let quota = Quota::new(
            spec.count,
            Duration::from_secs(spec.period_secs),
            spec.burst,
        );
        quota.validate().map(|()| quota)
    }
}

impl From<Quota> for QuotaSpec {
    fn from(q: Quota) -> Self {
        QuotaSpec {
            count: q.count,
            period_secs: q.per_period.as_secs(),
            burst: q.burst,
        }
    }
}

impl Quota {
    /// `count` requests per `per_period`, `burst` at once.
    pub const fn new(count: u32, per_period: Duration, burst: u32) -> Self {
        Quota {
            count,
            per_period,
            burst,
        }
    }

    /// Checks that count, period and burst are all non-zero.
    pub fn validate(&self) -> Result<(), RateLimitError> {
        if self.count == 0 || self.burst == 0 || self.per_period.is_zero() {
            return Err(RateLimitError::InvalidQuota {
                count: self.count,
                per_period: self.per_period,
                burst: self.burst,
            });
        }
        Ok(())
    }

    /// `T`: the time one request costs, in µs (at least 1).
    pub fn emission_interval_us(&self) -> u64 {
        let period = u64::try_from(self.per_period.as_micros()).unwrap_or(u64::MAX);
        (period / u64::from(self.count.max(1))).max(1)
    }

    /// `burst × T` in µs.
    fn burst_offset_us(&self) -> u64 {
        self.emission_interval_us()
            .saturating_mul(u64::from(self.burst.max(1)))
    }

    /// The `RateLimit-Policy` header value, e.g. `100;w=60;burst=20`.
    pub fn policy_header(&self) -> String {
        format!(
            "{};w={};burst={}",
            self.count,
            self.per_period.as_secs(),
            self.burst
        )
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests allowed at once when fully replenished (the burst).
    pub limit: u32,
    /// Requests that could still be made right now.
    pub remaining: u32,
    /// Time until the allowance is fully replenished.
    pub reset_after: Duration,
    /// When denied: time until one request would be allowed.
    pub retry_after: Option<Duration>,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Decision {
    fn allow_all(quota: &Quota) -> Self {
        Decision {
            allowed: true,
            limit: quota.burst,
            remaining: quota.burst,
            reset_after: Duration::ZERO,
            retry_after: None,
        }
    }

    /// Response headers: `RateLimit-Limit`, `RateLimit-Remaining`,
    /// `RateLimit-Reset` (seconds, rounded up) and, when denied, `Retry-After`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("RateLimit-Limit", self.limit.to_string()),
            ("RateLimit-Remaining", self.remaining.to_string()),
            ("RateLimit-Reset", ceil_secs(self.reset_after).to_string()),
        ];
        if let Some(retry) = self.retry_after {
            headers.push(("Retry-After", ceil_secs(retry).max(1).to_string()));
        }
        headers
    }

    /// The stricter of two decisions (a denial wins, then fewer remaining).
    pub fn stricter(self, other: Decision) -> Decision {
        match (self.allowed, other.allowed) {
            (true, false) => other,
            (false, true) => self,
            (false, false) => {
                if other.retry_after > self.retry_after {
                    other
                } else {
                    self
                }
            }
            (true, true) => {
                if other.remaining < self.remaining {
                    other
                } else {
                    self
                }
            }
        }
    }
}

/// One GCRA step: the decision for a request at `now_us` on a key whose
/// stored TAT is `tat_us` (`None`: never seen or expired), and the TAT to
/// store if the request is allowed. Pure; the Redis script does the same.
pub fn gcra_step(tat_us: Option<u64>, now_us: u64, quota: &Quota) -> (Decision, Option<u64>) {
    let interval = quota.emission_interval_us();
    let burst_offset = quota.burst_offset_us();
    let tat = tat_us.unwrap_or(now_us).max(now_us);
    let new_tat = tat.saturating_add(interval);
    let horizon = now_us.saturating_add(burst_offset);
    if new_tat > horizon {
        let decision = Decision {
            allowed: false,
            limit: quota.burst,
            remaining: 0,
            reset_after: Duration::from_micros(tat - now_us),
            retry_after: Some(Duration::from_micros(new_tat - horizon)),
        };
        return (decision, None);
    }
    let remaining = u32::try_from((horizon - new_tat) / interval).unwrap_or(u32::MAX);
    let decision = Decision {
        allowed: true,
        limit: quota.burst,
        remaining,
        reset_after: Duration::from_micros(new_tat - now_us),
        retry_after: None,
    };
    (decision, Some(new_tat))
}

// ------------------------------------------------------------------ config

/// Rate limit settings. Durations are milliseconds (`*_ms`); quotas are
/// `{ count, period_secs, burst }`. Unknown fields are refused.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Turn rate limiting off entirely (every request allowed).
    pub enabled: bool,
    /// Redis shared by all replicas; in-memory only when `None`. Serialized
    /// with its password redacted.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// Per client IP (IPv6 counted per /64).
    pub per_ip: Quota,
    /// Per tenant.
    pub per_tenant: Quota,
    /// Per API key.
    pub per_api_key: Quota,
    /// Longest wait for Redis before answering from memory.
    pub redis_timeout_ms: u64,
    /// After a Redis failure, how long to answer from memory before trying
    /// Redis again.
    pub reprobe_after_ms: u64,
    /// In-memory keys held per quota, in units of 16 (the table of one quota
    /// holds up to `16 ×` this many keys before replenished ones are swept).
    pub memory_keys_per_shard: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            redis_url: None,
            key_prefix: "rampart:rl".to_owned(),
            per_ip: Quota::new(300, Duration::from_secs(60), 60),
            per_tenant: Quota::new(6_000, Duration::from_secs(60), 600),
            per_api_key: Quota::new(600, Duration::from_secs(60), 100),
            redis_timeout_ms: 100,
            reprobe_after_ms: 2_000,
            memory_keys_per_shard: 16_384,
        }
    }
}

/// The Redis URL with any password replaced.
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "[unparseable]".to_owned(),
    }
}

fn serialize_redacted_url<S: serde::Serializer>(
    url: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_some(&redact_url(url)),
        None => serializer.serialize_none(),
    }
}

impl fmt::Debug for RateLimitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitConfig")
            .field("enabled", &self.enabled)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("key_prefix", &self.key_prefix)
            .field("per_ip", &self.per_ip)
            .field("per_tenant", &self.per_tenant)
            .field("per_api_key", &self.per_api_key)
            .field("redis_timeout_ms", &self.redis_timeout_ms)
            .field("reprobe_after_ms", &self.reprobe_after_ms)
            .field("memory_keys_per_shard", &self.memory_keys_per_shard)
            .finish()
    }
}

impl RateLimitConfig {
    /// Checks every value; the message names the bad field.
    pub fn validate(&self) -> Result<(), RateLimitError> {
        for (name, quota) in [
            ("per_ip", &self.per_ip),
            ("per_tenant", &self.per_tenant),
            ("per_api_key", &self.per_api_key),
        ] {
            quota
                .validate()
                .map_err(|e| RateLimitError::Config(format!("{name}: {e}")))?;
        }
        if self.redis_timeout_ms == 0 || self.reprobe_after_ms == 0 {
            return Err(RateLimitError::Config(
                "redis_timeout_ms and reprobe_after_ms must be > 0".to_owned(),
            ));
        }
        if self.memory_keys_per_shard == 0 {
            return Err(RateLimitError::Config(
                "memory_keys_per_shard must be > 0".to_owned(),
            ));
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ memory

/// The in-memory table of one quota holds `MEMORY_SHARDS × keys_per_shard`
/// keys (the configuration's unit since the table was 16 hand-kept shards).
const MEMORY_SHARDS: usize = 16;

type KeyedGcra = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// In-memory GCRA: one `governor` keyed limiter per quota (governor fixes the
/// quota per limiter; the server uses three), swept when it fills up.
struct MemoryLimiter {
    clock: DefaultClock,
    max_keys: usize,
    by_quota: Mutex<HashMap<Quota, Arc<KeyedGcra>>>,
}

impl MemoryLimiter {
    fn new(keys_per_shard: usize) -> Self {
        MemoryLimiter {
            clock: DefaultClock::default(),
            max_keys: keys_per_shard.saturating_mul(MEMORY_SHARDS),
            by_quota: Mutex::new(HashMap::new()),
        }
    }

    /// The governor quota with exactly the Redis script's parameters: one
    /// request costs `T` (whole µs), `burst` at once.
    fn governor_quota(quota: &Quota) -> Option<governor::Quota> {
        let burst = NonZeroU32::new(quota.burst)?;
        governor::Quota::with_period(Duration::from_micros(quota.emission_interval_us()))
            .map(|q| q.allow_burst(burst))
    }

    fn limiter(&self, quota: &Quota) -> Option<Arc<KeyedGcra>> {
        let mut by_quota = self.by_quota.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(limiter) = by_quota.get(quota) {
            return Some(limiter.clone());
        }
        let limiter = Arc::new(
            governor::RateLimiter::dashmap_with_clock(
                Self::governor_quota(quota)?,
                self.clock.clone(),
            )
            .with_middleware::<StateInformationMiddleware>(),
        );
        by_quota.insert(*quota, limiter.clone());
        Some(limiter)
    }

    /// Bounds the table: replenished keys are the same as absent ones; if a
    /// flood of distinct keys still fills it, that quota's table starts over
    /// rather than grow without bound.
    fn sweep(&self, quota: &Quota, limiter: &KeyedGcra) {
        if limiter.len() < self.max_keys {
            return;
        }
        limiter.retain_recent();
        limiter.shrink_to_fit();
        if limiter.len() >= self.max_keys {
            let mut by_quota = self.by_quota.lock().unwrap_or_else(|p| p.into_inner());
            by_quota.remove(quota);
        }
    }

    fn check(&self, key: &str, quota: &Quota) -> Decision {
        // `Quota::validate` refuses what governor cannot express.
        let Some(limiter) = self.limiter(quota) else {
            return Decision::allow_all(quota);
        };
        let interval = Duration::from_micros(quota.emission_interval_us());
        let decision = match limiter.check_key(&key.to_owned()) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: quota.burst,
                    remaining,
                    // governor keeps the TAT private: this bound is at most
                    // one interval later than the exact replenishment.
                    reset_after: interval.saturating_mul(quota.burst.saturating_sub(remaining)),
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(self.clock.now());
                Decision {
                    allowed: false,
                    limit: quota.burst,
                    remaining: 0,
                    // Denied at TAT - (burst - 1)·T: the TAT is that far on.
                    reset_after: retry_after
                        .saturating_add(interval.saturating_mul(quota.burst.saturating_sub(1))),
                    retry_after: Some(retry_after),
                }
            }
        };
        self.sweep(quota, &limiter);
        decision
    }
}

// ------------------------------------------------------------------ redis

/// Which store the limiter is answering from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RateLimitBackend {
    /// No Redis configured: per-replica limits.
    Memory,
    /// Redis answers: limits shared by all replicas.
    Redis,
    /// Redis is configured but failing: answering from memory.
    Degraded {
        /// When the outage began.
        since: DateTime<Utc>,
        /// The latest error.
        last_error: String,
    },
}

enum Circuit {
    Closed,
    Open {
        since: DateTime<Utc>,
        last_error: String,
        retry_at: Instant,
        probing: bool,
    },
}

struct RedisBackend {
    manager: ConnectionManager,
    script: Script,
    timeout: Duration,
    reprobe_after: Duration,
    circuit: Mutex<Circuit>,
}

impl RedisBackend {
    /// Whether this request should go to Redis: always while closed; once per
    /// `reprobe_after` while open.
    fn admit(&self) -> bool {
        let mut circuit = self.circuit.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *circuit {
            Circuit::Closed => true,
            Circuit::Open {
                retry_at, probing, ..
            } => {
                if *probing || Instant::now() < *retry_at {
                    false
                } else {
                    *probing = true;
                    true
                }
            }
        }
    }

    fn on_success(&self) {
        let mut circuit = self.circuit.lock().unwrap_or_else(|p| p.into_inner());
        if let Circuit::Open { since, .. } = &*circuit {
            let outage = Utc::now().signed_duration_since(*since);
            tracing::info!(
                outage_ms = outage.num_milliseconds(),
                "Redis is back: rate limits shared again"
            );
        }
        *circuit = Circuit::Closed;
    }

    fn on_failure(&self, error: String) {
        let mut circuit = self.circuit.lock().unwrap_or_else(|p| p.into_inner());
        let retry_at = Instant::now() + self.reprobe_after;
        match &mut *circuit {
            Circuit::Closed => {
                tracing::warn!(%error, "Redis unavailable: rate limiting from memory (per replica) until it is back");
                *circuit = Circuit::Open {
                    since: Utc::now(),
                    last_error: error,
                    retry_at,
                    probing: false,
                };
            }
            Circuit::Open {
                last_error,
                retry_at: at,
                probing,
                ..
            } => {
                tracing::debug!(%error, "Redis still unavailable");
                *last_error = error;
                *at = retry_at;
                *probing = false;
            }
        }
    }

    #[tracing::instrument(
        level = "debug",
        name = "redis",
        skip_all,
        fields(otel.kind = "client", db.system.name = "redis", db.operation.name = "EVALSHA")
    )]
    async fn check(&self, key: &str, quota: &Quota) -> Result<Decision, String> {
        let mut conn = self.manager.clone();
        let mut invocation = self.script.key(key);
        invocation
            .arg(quota.emission_interval_us())
            .arg(quota.burst_offset_us());
        let reply: Vec<i64> =
            match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn)).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err(format!("no answer within {} ms", self.timeout.as_millis())),
            };
        let &[allowed, remaining, reset_after, retry_after] = reply.as_slice() else {
            return Err(format!(
                "rate limit script returned {} values, expected 4",
                reply.len()
            ));
        };
        let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(Decision {
            allowed: allowed == 1,
            limit: quota.burst,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_after: micros(reset_after),
            retry_after: (allowed != 1).then(|| micros(retry_after)),
        })
    }
}

// ------------------------------------------------------------------ limiter

struct Inner {
    cfg: RateLimitConfig,
    memory: MemoryLimiter,
    redis: Option<RedisBackend>,
}

/// Rate limiter shared by all replicas through Redis, with an in-memory
/// fallback. Cheap to clone.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.inner.cfg)
            .field("backend", &self.backend())
            .finish()
    }
}

impl RateLimiter {
    /// Builds the limiter. With a Redis URL, the connection is made lazily
    /// (a Redis that is down at start only means in-memory limits until it is
    /// up). Must be called inside a Tokio runtime when Redis is configured.
    pub fn new(cfg: RateLimitConfig) -> Result<Self, RateLimitError> {
        cfg.validate()?;
        let redis = match &cfg.redis_url {
            None => None,
            Some(url) => {
                let client = redis::Client::open(url.as_str()).map_err(|e| {
                    RateLimitError::Config(format!("redis_url {}: {e}", redact_url(url)))
                })?;
                let timeout = Duration::from_millis(cfg.redis_timeout_ms);
                let manager_cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(cfg.reprobe_after_ms));
                let manager = ConnectionManager::new_lazy_with_config(client, manager_cfg)
                    .map_err(|e| {
                        RateLimitError::Config(format!("redis connection manager: {e}"))
                    })?;
                Some(RedisBackend {
                    manager,
                    script: Script::new(GCRA_LUA),
                    timeout,
                    reprobe_after: Duration::from_millis(cfg.reprobe_after_ms),
                    circuit: Mutex::new(Circuit::Closed),
                })
            }
        };
        let memory = MemoryLimiter::new(cfg.memory_keys_per_shard);
        Ok(RateLimiter {
            inner: Arc::new(Inner { cfg, memory, redis }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RateLimitConfig {
        &self.inner.cfg
    }

    /// Counts one request against `key` (already scoped, e.g. `ip:…`).
    /// Never fails: Redis trouble means an in-memory answer.
    pub async fn check(&self, key: &str, quota: Quota) -> Decision {
        if !self.inner.cfg.enabled {
            return Decision::allow_all(&quota);
        }
        let key = format!("{}:{key}", self.inner.cfg.key_prefix);
        if let Some(redis) = &self.inner.redis
            && redis.admit()
        {
            match redis.check(&key, &quota).await {
                Ok(decision) => {
                    redis.on_success();
                    return decision;
                }
                Err(error) => redis.on_failure(error),
            }
        }
        self.inner.memory.check(&key, &quota)
    }

    /// Counts one request from a client IP against `per_ip` (IPv6 per /64).
    pub async fn check_ip(&self, ip: IpAddr) -> Decision {
        let key = match ip {
            IpAddr::V4(v4) => format!("ip:{v4}"),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => format!("ip:{v4}"),
                None => {
                    let s = v6.segments();
                    format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        };
        self.check(&key, self.inner.cfg.per_ip).await
    }

    /// Counts one request for a tenant against `per_tenant`.
    pub async fn check_tenant(&self, tenant: &str) -> Decision {
        self.check(&format!("tenant:{tenant}"), self.inner.cfg.per_tenant)
            .await
    }

    /// Counts one request for an API key against `per_api_key`. The key is
    /// hashed, so passing the credential itself keeps it out of Redis.
    pub async fn check_api_key(&self, api_key: &str) -> Decision {
        let digest = Sha256::digest(api_key.as_bytes());
        let id = hex::encode(digest.get(..12).unwrap_or_default());
        self.check(&format!("apikey:{id}"), self.inner.cfg.per_api_key)
            .await
    }

    /// Counts one request against every scope that applies and returns the
    /// strictest decision.
    pub async fn check_request(
        &self,
        ip: Option<IpAddr>,
        tenant: Option<&str>,
        api_key: Option<&str>,
    ) -> Decision {
        let mut decision: Option<Decision> = None;
        let mut merge = |d: Decision| decision = Some(decision.map_or(d, |prev| prev.stricter(d)));
        if let Some(ip) = ip {
            merge(self.check_ip(ip).await);
        }
        if let Some(tenant) = tenant {
            merge(self.check_tenant(tenant).await);
        }
        if let Some(api_key) = api_key {
            merge(self.check_api_key(api_key).await);
        }
        decision.unwrap_or_else(|| Decision::allow_all(&self.inner.cfg.per_ip))
    }

    /// Which store answers (for `/ready` and metrics).
    pub fn backend(&self) -> RateLimitBackend {
        let Some(redis) = &self.inner.redis else {
            return RateLimitBackend::Memory;
        };
        let circuit = redis.circuit.lock().unwrap_or_else(|p| p.into_inner());
        match &*circuit {
            Circuit::Closed => RateLimitBackend::Redis,
            Circuit::Open {
                since, last_error, ..
            } => RateLimitBackend::Degraded {
                since: *since,
                last_error: last_error.clone(),
            },
        }
    }
}
