//! Brute-force defence: per-account and per-IP progressive delay, account
//! lockout, and an account+IP rate limit, with separate counters for
//! passwords and TOTP codes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::ExpressionMethods;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::config::AuthConfig;
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
            let window = i64::try_from(config.rate_limit_window_secs).unwrap_or(900);
            let left = self
                .oldest_account_ip
                .map(|t| (t + chrono::Duration::seconds(window) - Utc::now()).num_seconds())
                .unwrap_or(window)
                .max(1);
            return Err(AuthError::RateLimited {
                retry_after: Duration::from_secs(u64::try_from(left).unwrap_or(1)),
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
