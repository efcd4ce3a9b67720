//! Brute-force defence: per-account and per-IP progressive delay, account
//! lockout, and an account+IP rate limit, with separate counters for
//! passwords and TOTP codes.
//!
//! A password attempt is checked and counted in one step before it is
//! hashed ([`reserve_password_attempt`]), so parallel requests cannot all
//! see the old count; at most `account_hash_concurrency` attempts per
//! account hash at once in a process ([`InFlight`]); a source is limited
//! across accounts (`source_attempts`, against password spraying). The
//! lockout counts failures in a sliding window (`lockout_secs`) and applies
//! to sources the account has not logged in from: the owner on a known
//! address still gets in while an attacker is locked out.

use rampart_tenancy::TenantSlug;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::config::AuthConfig;
use crate::context::ttl;
use crate::error::AuthError;
use crate::schema::login_attempts;

/// Which secret is being guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// A password.
    Password,
    /// A TOTP or backup code.
    Totp,
}

impl AttemptKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Password => "password",
            AttemptKind::Totp => "totp",
        }
    }
}

/// The delay before answering after `failures` recent failures: doubling
/// from `base`, capped at `cap`; none without failures.
pub fn progressive_delay(failures: u32, base: Duration, cap: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(cap)
}

#[derive(diesel::QueryableByName)]
struct Recent {
    #[diesel(sql_type = BigInt)]
    account_ip: i64,
    #[diesel(sql_type = BigInt)]
    ip: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_account_ip: Option<DateTime<Utc>>,
}

/// Recent failures relevant to one attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThrottleState {
    pub(crate) account_ip_failures: i64,
    pub(crate) ip_failures: i64,
    pub(crate) oldest_account_ip: Option<DateTime<Utc>>,
}

pub(crate) async fn recent_failures(
    conn: &mut AsyncPgConnection,
    config: &AuthConfig,
    kind: AttemptKind,
    account: &str,
    ip: &str,
) -> Result<ThrottleState, AuthError> {
    let since = Utc::now()
        - chrono::Duration::seconds(i64::try_from(config.rate_limit_window_secs).unwrap_or(900));
    // raw SQL: two counts over one scan need aggregate FILTER clauses.
    let rows: Vec<Recent> = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE account = $2) AS account_ip, count(*) AS ip, \
                min(attempted_at) FILTER (WHERE account = $2) AS oldest_account_ip \
         FROM login_attempts WHERE kind = $1 AND ip = $3 AND NOT success AND attempted_at > $4",
    )
    .bind::<Text, _>(kind.as_str())
    .bind::<Text, _>(account)
    .bind::<Text, _>(ip)
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?;
    let r = rows.into_iter().next();
    Ok(ThrottleState {
        account_ip_failures: r.as_ref().map(|r| r.account_ip).unwrap_or(0),
        ip_failures: r.as_ref().map(|r| r.ip).unwrap_or(0),
        oldest_account_ip: r.and_then(|r| r.oldest_account_ip),
    })
}

impl ThrottleState {
    /// Refuses when the account+IP pair used up its attempts in the window.
    pub(crate) fn check_rate_limit(&self, config: &AuthConfig) -> Result<(), AuthError> {
        if self.account_ip_failures >= i64::from(config.rate_limit_attempts) {
            return Err(AuthError::RateLimited {
                retry_after: retry_after(self.oldest_account_ip, config.rate_limit_window_secs),
            });
        }
        Ok(())
    }

    /// The progressive delay: the worse of the account's consecutive
    /// failures and this IP's recent failures.
    pub(crate) fn delay(&self, config: &AuthConfig, account_failures: i64) -> Duration {
        let n = account_failures
            .max(self.ip_failures)
            .max(self.account_ip_failures);
        progressive_delay(
            u32::try_from(n).unwrap_or(u32::MAX),
            Duration::from_millis(config.backoff_base_ms),
            Duration::from_millis(config.backoff_cap_ms),
        )
    }
}

pub(crate) async fn record_attempt(
    conn: &mut AsyncPgConnection,
    kind: AttemptKind,
    account: &str,
    ip: &str,
    success: bool,
) -> Result<(), AuthError> {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::kind.eq(kind.as_str()),
            login_attempts::account.eq(account),
            login_attempts::ip.eq(ip),
            login_attempts::success.eq(success),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Password attempts in flight per (tenant, account) in this process: a
/// bound on the Argon2id work one account can cause at a time, whatever the
/// number of parallel requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    counts: Arc<Mutex<HashMap<(String, String), usize>>>,
}

/// One admitted attempt; leaving drops it from the count.
#[derive(Debug)]
pub(crate) struct InFlightGuard {
    counts: Arc<Mutex<HashMap<(String, String), usize>>>,
    key: (String, String),
}

impl InFlight {
    /// Admits one more attempt for `account` unless `limit` are running.
    pub(crate) fn enter(
        &self,
        tenant: &TenantSlug,
        account: &str,
        limit: usize,
    ) -> Result<InFlightGuard, AuthError> {
        let key = (tenant.to_string(), account.to_owned());
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= limit.max(1) {
            return Err(AuthError::RateLimited {
                retry_after: Duration::from_secs(1),
            });
        }
        *n += 1;
        Ok(InFlightGuard {
            counts: self.counts.clone(),
            key,
        })
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Window {
    #[diesel(sql_type = BigInt)]
    account_ip: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_account_ip: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    ip: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_ip: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    account: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_account: Option<DateTime<Utc>>,
}

/// A password attempt reserved before hashing: its `login_attempts` row
/// (recorded as a failure until [`settle_password_attempt`] says otherwise)
/// and the failures it saw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reservation {
    pub(crate) id: i64,
    /// Failures of the account (every source) in the lockout window,
    /// this attempt included.
    pub(crate) account_failures: i64,
    /// Failures of this source (every account) in the rate-limit window.
    pub(crate) ip_failures: i64,
    /// Failures of this account from this source, this attempt included.
    pub(crate) account_ip_failures: i64,
}

impl Reservation {
    /// The progressive delay for this attempt, the same for known and
    /// unknown accounts (it depends on attempt rows only).
    pub(crate) fn delay(&self, config: &AuthConfig) -> Duration {
        let n = (self.account_failures - 1)
            .max(self.account_ip_failures - 1)
            .max(self.ip_failures)
            .max(0);
        progressive_delay(
            u32::try_from(n).unwrap_or(u32::MAX),
            Duration::from_millis(config.backoff_base_ms),
            Duration::from_millis(config.backoff_cap_ms),
        )
    }
}

/// Why a password attempt was refused before any hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This account from this source used its attempts.
    AccountSource,
    /// This source used its attempts across accounts (password spraying).
    Source,
    /// The account is locked for sources it has not logged in from.
    Locked,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::AccountSource => "account_source",
            Refusal::Source => "source",
            Refusal::Locked => "locked",
        }
    }
}

/// How long until the oldest counted failure leaves its window (at least 1 s).
fn retry_after(oldest: Option<DateTime<Utc>>, window_secs: u64) -> Duration {
    let window = i64::try_from(window_secs).unwrap_or(900);
    let left = oldest
        .map(|t| (t + chrono::Duration::seconds(window) - Utc::now()).num_seconds())
        .unwrap_or(window)
        .max(1);
    Duration::from_secs(u64::try_from(left).unwrap_or(1))
}

/// Checks and counts a password attempt in one step, before any hashing:
/// under transaction-scoped advisory locks on the account and on the source
/// (so parallel attempts queue here and each sees the others' rows), counts
/// the failures in the sliding windows and either refuses or inserts the
/// attempt as a failure. Failures before `counted_since` (the last password
/// change) do not count towards the lockout. `known_source` (the account
/// has logged in from this address before) is exempt from the lockout, not
/// from the per-source limits.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn reserve_password_attempt(
    conn: &mut AsyncPgConnection,
    config: &AuthConfig,
    account: &str,
    ip: &str,
    known_source: bool,
    counted_since: Option<DateTime<Utc>>,
) -> Result<Result<Reservation, (Refusal, Duration)>, AuthError> {
    let kind = AttemptKind::Password.as_str();
    // raw SQL: advisory locks have no DSL; the lock order is always account
    // then source, so two attempts never wait on each other in a circle.
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended('login-account:' || $1, 0)), \
                pg_advisory_xact_lock(hashtextextended('login-source:' || $2, 0))",
    )
    .bind::<Text, _>(account)
    .bind::<Text, _>(ip)
    .execute(conn)
    .await?;
    let now = Utc::now();
    let rate_since = now - ttl(config.rate_limit_window_secs);
    let window_start = now - ttl(config.lockout_secs);
    let lock_since = counted_since.map_or(window_start, |t| t.max(window_start));
    // raw SQL: three counts over one scan need aggregate FILTER clauses.
    let rows: Vec<Window> = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE account = $2 AND ip = $3 AND attempted_at > $4) AS account_ip, \
                min(attempted_at) FILTER (WHERE account = $2 AND ip = $3 AND attempted_at > $4) AS oldest_account_ip, \
                count(*) FILTER (WHERE ip = $3 AND attempted_at > $4) AS ip, \
                min(attempted_at) FILTER (WHERE ip = $3 AND attempted_at > $4) AS oldest_ip, \
                count(*) FILTER (WHERE account = $2 AND attempted_at > $5) AS account, \
                min(attempted_at) FILTER (WHERE account = $2 AND attempted_at > $5) AS oldest_account \
         FROM login_attempts \
         WHERE kind = $1 AND NOT success AND (account = $2 OR ip = $3) \
           AND attempted_at > least($4, $5)",
    )
    .bind::<Text, _>(kind)
    .bind::<Text, _>(account)
    .bind::<Text, _>(ip)
    .bind::<Timestamptz, _>(rate_since)
    .bind::<Timestamptz, _>(lock_since)
    .load(conn)
    .await?;
    let Some(w) = rows.into_iter().next() else {
        return Err(AuthError::Database(diesel::result::Error::NotFound));
    };
    if w.account_ip >= i64::from(config.rate_limit_attempts) {
        return Ok(Err((
            Refusal::AccountSource,
            retry_after(w.oldest_account_ip, config.rate_limit_window_secs),
        )));
    }
    if w.ip >= i64::from(config.source_attempts) {
        return Ok(Err((
            Refusal::Source,
            retry_after(w.oldest_ip, config.rate_limit_window_secs),
        )));
    }
    if !known_source && w.account >= i64::from(config.lockout_threshold) {
        return Ok(Err((
            Refusal::Locked,
            retry_after(w.oldest_account, config.lockout_secs),
        )));
    }
    let id: i64 = diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::kind.eq(kind),
            login_attempts::account.eq(account),
            login_attempts::ip.eq(ip),
            login_attempts::success.eq(false),
        ))
        .returning(login_attempts::id)
        .get_result(conn)
        .await?;
    Ok(Ok(Reservation {
        id,
        account_failures: w.account + 1,
        ip_failures: w.ip,
        account_ip_failures: w.account_ip + 1,
    }))
}

/// Marks a reserved attempt as successful (it no longer counts as a failure).
pub(crate) async fn settle_password_attempt(
    conn: &mut AsyncPgConnection,
    reservation: &Reservation,
) -> Result<(), AuthError> {
    diesel::update(login_attempts::table.find(reservation.id))
        .set(login_attempts::success.eq(true))
        .execute(conn)
        .await?;
    Ok(())
}
