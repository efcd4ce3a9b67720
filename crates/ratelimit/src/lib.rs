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
//! answers from memory instead — [`gcra_step`] over one bounded table per
//! keyspace, with the same quota — so a request is never failed because of
//! Redis; it logs the outage once and probes Redis again every
//! `reprobe_after_ms` until it answers.
//!
//! A request counted against several limits ([`RateLimiter::check_all`]) is
//! all or nothing: a refused request spends no budget of any scope.
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Atomic GCRA over one or more keys, all or nothing: every key is checked
/// first, and only when all allow is each one spent, so a refused request
/// costs no budget. KEYS = keys; ARGV = per key its emission interval (µs)
/// and burst offset (µs). Time comes from Redis so replicas' clocks do not
/// matter. Returns {refused (1-based index of the first refusing key, 0 when
/// allowed), then per key checked: allowed, remaining, reset_after µs,
/// retry_after µs}.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {0}
local new_tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst_offset = tonumber(ARGV[2 * i])
  local tat = now
  local stored = redis.call('GET', KEYS[i])
  if stored then
    local v = tonumber(stored)
    if v and v > now then tat = v end
  end
  local new_tat = tat + interval
  if new_tat > now + burst_offset then
    out[1] = i
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, tat - now)
    table.insert(out, new_tat - burst_offset - now)
    return out
  end
  new_tats[i] = new_tat
  table.insert(out, 1)
  table.insert(out, math.floor((now + burst_offset - new_tat) / interval))
  table.insert(out, new_tat - now)
  table.insert(out, 0)
end
for i = 1, #KEYS do
  local ttl_ms = math.floor((new_tats[i] - now) / 1000) + 1
  redis.call('SET', KEYS[i], string.format('%d', new_tats[i]), 'PX', string.format('%d', ttl_ms))
end
return out
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
    /// TLS files for a `rediss://` `redis_url` (root CA, optional client
    /// certificate).
    pub redis_tls: rampart_dbtls::RedisTlsConfig,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// Per client IP (IPv6 counted per /64).
    pub per_ip: Quota,
    /// Per tenant, anonymous requests (no verified credential of the tenant).
    pub per_tenant: Quota,
    /// Per tenant, requests with a verified credential of the tenant (a
    /// separate budget: anonymous traffic cannot exhaust it).
    pub per_tenant_authenticated: Quota,
    /// Per API key.
    pub per_api_key: Quota,
    /// Longest wait for Redis before answering from memory.
    pub redis_timeout_ms: u64,
    /// After a Redis failure, how long to answer from memory before trying
    /// Redis again.
    pub reprobe_after_ms: u64,
    /// In-memory keys held per keyspace (IP, tenant, API key), in units of 16:
    /// the table of one keyspace holds up to `16 ×` this many keys, then
    /// drops replenished ones and those closest to replenishment, never
    /// another keyspace's.
    pub memory_keys_per_shard: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            redis_url: None,
            redis_tls: rampart_dbtls::RedisTlsConfig::default(),
            key_prefix: "rampart:rl".to_owned(),
            per_ip: Quota::new(300, Duration::from_secs(60), 60),
            per_tenant: Quota::new(6_000, Duration::from_secs(60), 600),
            per_tenant_authenticated: Quota::new(6_000, Duration::from_secs(60), 600),
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
            .field("redis_tls", &self.redis_tls)
            .field("key_prefix", &self.key_prefix)
            .field("per_ip", &self.per_ip)
            .field("per_tenant", &self.per_tenant)
            .field("per_tenant_authenticated", &self.per_tenant_authenticated)
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
            ("per_tenant_authenticated", &self.per_tenant_authenticated),
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

/// The in-memory table of one keyspace (IP, tenant, API key, …) holds
/// `MEMORY_SHARDS × keys_per_shard` keys (the configuration's unit since the
/// table was 16 hand-kept shards).
const MEMORY_SHARDS: usize = 16;

/// One limit a request counts against: the scope it belongs to (the
/// keyspace, e.g. `ip`), the scoped key and its quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The keyspace (`ip`, `tenant`, `tenant_auth`, `api_key`, …): in memory
    /// each keyspace is bounded on its own, so a flood of distinct keys in
    /// one cannot evict another's state.
    pub scope: &'static str,
    /// The key, already scoped (e.g. `ip:192.0.2.1`).
    pub key: String,
    /// Its quota.
    pub quota: Quota,
}

/// The answer for a request counted against several limits at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The refusing limit's decision, or the strictest allowing one.
    pub decision: Decision,
    /// The scope of the limit that refused (the first in order), if any.
    pub refused_by: Option<&'static str>,
}

/// In-memory GCRA with exactly the Redis script's arithmetic
/// ([`gcra_step`]): one table of TATs per keyspace and quota, each bounded on
/// its own. A full table first drops replenished keys (the same as absent
/// ones), then the keys closest to replenishment (the smallest TATs: least
/// state lost, while throttled keys, whose TATs lie furthest ahead, stay).
/// Theoretical arrival times (µs since the limiter's epoch) by key.
type TatTable = HashMap<String, u64>;

struct MemoryLimiter {
    epoch: Instant,
    max_keys: usize,
    tables: Mutex<HashMap<(&'static str, Quota), TatTable>>,
}

impl MemoryLimiter {
    fn new(keys_per_shard: usize) -> Self {
        MemoryLimiter {
            epoch: Instant::now(),
            max_keys: keys_per_shard.saturating_mul(MEMORY_SHARDS).max(1),
            tables: Mutex::new(HashMap::new()),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Makes room for one more key in `table`.
    fn evict(table: &mut HashMap<String, u64>, max_keys: usize, now_us: u64) {
        if table.len() < max_keys {
            return;
        }
        table.retain(|_, tat| *tat > now_us);
        if table.len() < max_keys {
            return;
        }
        // Drop an eighth at once (amortised), the smallest TATs first.
        let drop = (max_keys / 8).max(1).min(table.len());
        let mut by_tat: Vec<(u64, &String)> = table.iter().map(|(k, t)| (*t, k)).collect();
        by_tat.select_nth_unstable_by_key(drop - 1, |(t, _)| *t);
        let victims: Vec<String> = by_tat
            .get(..drop)
            .unwrap_or_default()
            .iter()
            .map(|(_, k)| (*k).clone())
            .collect();
        for key in victims {
            table.remove(&key);
        }
    }

    /// All or nothing, like the Redis script: every limit is checked, and
    /// only when all allow is each one spent.
    fn check_all(&self, prefix: &str, limits: &[Limit]) -> Verdict {
        let now = self.now_us();
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let mut steps = Vec::with_capacity(limits.len());
        for limit in limits {
            let key = format!("{prefix}:{}", limit.key);
            let tat = tables
                .get(&(limit.scope, limit.quota))
                .and_then(|t| t.get(&key))
                .copied();
            let (decision, new_tat) = gcra_step(tat, now, &limit.quota);
            if !decision.allowed {
                return Verdict {
                    decision,
                    refused_by: Some(limit.scope),
                };
            }
            steps.push((key, decision, new_tat));
        }
        let mut strictest: Option<Decision> = None;
        for (limit, (key, decision, new_tat)) in limits.iter().zip(steps) {
            let table = tables.entry((limit.scope, limit.quota)).or_default();
            if let Some(new_tat) = new_tat {
                if !table.contains_key(&key) {
                    Self::evict(table, self.max_keys, now);
                }
                table.insert(key, new_tat);
            }
            strictest = Some(strictest.map_or(decision, |s| s.stricter(decision)));
        }
        Verdict {
            decision: strictest.unwrap_or(Decision {
                allowed: true,
                limit: 0,
                remaining: 0,
                reset_after: Duration::ZERO,
                retry_after: None,
            }),
            refused_by: None,
        }
    }

    /// Keys held in `scope`'s tables (for tests and metrics).
    fn len(&self, scope: &str) -> usize {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables
            .iter()
            .filter(|((s, _), _)| *s == scope)
            .map(|(_, t)| t.len())
            .sum()
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
    async fn check_all(&self, prefix: &str, limits: &[Limit]) -> Result<Verdict, String> {
        let mut conn = self.manager.clone();
        let mut invocation = self.script.prepare_invoke();
        for limit in limits {
            invocation
                .key(format!("{prefix}:{}", limit.key))
                .arg(limit.quota.emission_interval_us())
                .arg(limit.quota.burst_offset_us());
        }
        let reply: Vec<i64> =
            match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn)).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err(format!("no answer within {} ms", self.timeout.as_millis())),
            };
        let Some((&refused, per_key)) = reply.split_first() else {
            return Err("rate limit script returned nothing".to_owned());
        };
        if per_key.len() % 4 != 0 || per_key.len() / 4 > limits.len() || per_key.is_empty() {
            return Err(format!(
                "rate limit script returned {} values for {} keys",
                reply.len(),
                limits.len()
            ));
        }
        let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        let mut strictest: Option<Decision> = None;
        for (limit, values) in limits.iter().zip(per_key.chunks_exact(4)) {
            let &[allowed, remaining, reset_after, retry_after] = values else {
                continue;
            };
            let decision = Decision {
                allowed: allowed == 1,
                limit: limit.quota.burst,
                remaining: u32::try_from(remaining).unwrap_or(0),
                reset_after: micros(reset_after),
                retry_after: (allowed != 1).then(|| micros(retry_after)),
            };
            if !decision.allowed {
                return Ok(Verdict {
                    decision,
                    refused_by: Some(limit.scope),
                });
            }
            strictest = Some(strictest.map_or(decision, |s| s.stricter(decision)));
        }
        match (refused, strictest) {
            (0, Some(decision)) => Ok(Verdict {
                decision,
                refused_by: None,
            }),
            _ => Err(format!("rate limit script: inconsistent reply {reply:?}")),
        }
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
                let client = rampart_dbtls::redis_client(url, &cfg.redis_tls).map_err(|e| {
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

    /// Counts one request against `key` (already scoped, e.g. `ip:…`; the
    /// part before the first `:` is its keyspace in memory).
    /// Never fails: Redis trouble means an in-memory answer.
    pub async fn check(&self, key: &str, quota: Quota) -> Decision {
        let scope = match key.split_once(':') {
            Some(("ip", _)) => "ip",
            Some(("ip6", _)) => "ip6",
            Some(("tenant", _)) => "tenant",
            Some(("apikey", _)) => "api_key",
            _ => "other",
        };
        self.check_all(&[Limit {
            scope,
            key: key.to_owned(),
            quota,
        }])
        .await
        .decision
    }

    /// Counts one request against every limit in `limits`, all or nothing:
    /// when one refuses (the first refusing one is reported), none is spent,
    /// so a refused request costs no budget of any scope. Never fails: Redis
    /// trouble means an in-memory answer.
    pub async fn check_all(&self, limits: &[Limit]) -> Verdict {
        let Some(first) = limits.first() else {
            return Verdict {
                decision: Decision::allow_all(&self.inner.cfg.per_ip),
                refused_by: None,
            };
        };
        if !self.inner.cfg.enabled {
            return Verdict {
                decision: Decision::allow_all(&first.quota),
                refused_by: None,
            };
        }
        let prefix = &self.inner.cfg.key_prefix;
        if let Some(redis) = &self.inner.redis
            && redis.admit()
        {
            match redis.check_all(prefix, limits).await {
                Ok(verdict) => {
                    redis.on_success();
                    return verdict;
                }
                Err(error) => redis.on_failure(error),
            }
        }
        self.inner.memory.check_all(prefix, limits)
    }

    /// The per-IP limit of a client address (IPv6 per /64).
    pub fn ip_limit(&self, ip: IpAddr) -> Limit {
        let (scope, key) = match ip {
            IpAddr::V4(v4) => ("ip", format!("ip:{v4}")),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ("ip", format!("ip:{v4}")),
                None => {
                    let s = v6.segments();
                    (
                        "ip6",
                        format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]),
                    )
                }
            },
        };
        Limit {
            scope,
            key,
            quota: self.inner.cfg.per_ip,
        }
    }

    /// A tenant's limit: `per_tenant` for anonymous requests,
    /// `per_tenant_authenticated` for requests with a verified credential of
    /// the tenant — two budgets, so anonymous traffic cannot starve the
    /// tenant's users.
    pub fn tenant_limit(&self, tenant: &str, authenticated: bool) -> Limit {
        if authenticated {
            Limit {
                scope: "tenant_auth",
                key: format!("tenant-auth:{tenant}"),
                quota: self.inner.cfg.per_tenant_authenticated,
            }
        } else {
            Limit {
                scope: "tenant",
                key: format!("tenant:{tenant}"),
                quota: self.inner.cfg.per_tenant,
            }
        }
    }

    /// An API key's limit. The key is hashed, so passing the credential
    /// itself keeps it out of Redis.
    pub fn api_key_limit(&self, api_key: &str) -> Limit {
        let digest = Sha256::digest(api_key.as_bytes());
        let id = hex::encode(digest.get(..12).unwrap_or_default());
        Limit {
            scope: "api_key",
            key: format!("apikey:{id}"),
            quota: self.inner.cfg.per_api_key,
        }
    }

    /// Counts one request from a client IP against `per_ip` (IPv6 per /64).
    pub async fn check_ip(&self, ip: IpAddr) -> Decision {
        self.check_all(&[self.ip_limit(ip)]).await.decision
    }

    /// Counts one anonymous request for a tenant against `per_tenant`.
    pub async fn check_tenant(&self, tenant: &str) -> Decision {
        self.check_all(&[self.tenant_limit(tenant, false)])
            .await
            .decision
    }

    /// Counts one request for an API key against `per_api_key`.
    pub async fn check_api_key(&self, api_key: &str) -> Decision {
        self.check_all(&[self.api_key_limit(api_key)])
            .await
            .decision
    }

    /// Counts one anonymous request against every scope that applies, all
    /// or nothing ([`RateLimiter::check_all`]): the refusing decision, or
    /// the strictest allowing one.
    pub async fn check_request(
        &self,
        ip: Option<IpAddr>,
        tenant: Option<&str>,
        api_key: Option<&str>,
    ) -> Decision {
        let mut limits = Vec::new();
        limits.extend(ip.map(|ip| self.ip_limit(ip)));
        limits.extend(api_key.map(|k| self.api_key_limit(k)));
        limits.extend(tenant.map(|t| self.tenant_limit(t, false)));
        self.check_all(&limits).await.decision
    }

    /// Keys the in-memory fallback holds for `scope` (e.g. `ip`).
    pub fn memory_keys(&self, scope: &str) -> usize {
        self.inner.memory.len(scope)
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
