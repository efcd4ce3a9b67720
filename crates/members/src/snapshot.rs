//! The daily snapshot job: per tenant, per member with a broker account,
//! read equity, cash and positions from the broker, upsert the day's
//! snapshot and leaderboard row. One member's or tenant's failure is
//! recorded and the run goes on; a PostgreSQL advisory lock makes one
//! replica run it at a time.
//!
//! The broker's 429 and 5xx answers (and transport failures) are retried
//! with exponential backoff, honouring `Retry-After` in seconds (capped at
//! `max_retry_wait_ms`), up to `max_attempts` per request and within the
//! run's budget (`run_max_retries` retries and `run_budget_secs` in all):
//! past it, a member is tried once and reported failed if that fails.
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::broker::{SealedAccount, seal_context};
use crate::clock::{Clock, SystemClock};
use crate::schema::{broker_accounts, leaderboard_daily, portfolio_snapshots};
use crate::{BrokerCrypto, BrokerKeys, Members, MembersError};

/// The advisory lock key of the job (`hashtext('rampart.snapshot_job')`-like, fixed).
const JOB_LOCK_KEY: i64 = 0x7261_6d70_736e_6170; // "rampsnap"

/// Job settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// When to run (five-field cron, UTC). Default `0 9 * * *`.
    pub cron: String,
    /// The broker API (Alpaca paper trading by default).
    pub broker_base_url: String,
    /// Per broker request.
    pub request_timeout_ms: u64,
    /// Whether the scheduler runs at all (the admin trigger always works).
    pub enabled: bool,
    /// Attempts per broker request: 429, 5xx and transport failures are
    /// retried. Default 3.
    pub max_attempts: u32,
    /// The first backoff wait when the broker sends no `Retry-After`;
    /// doubled per attempt. Default 500.
    pub retry_base_ms: u64,
    /// The longest single wait, `Retry-After` included. Default 30 000.
    pub max_retry_wait_ms: u64,
    /// Retries a whole run may spend, over all members. Default 200.
    pub run_max_retries: u32,
    /// Time a run may spend before it stops retrying (members are still
    /// tried once). Default 1800.
    pub run_budget_secs: u64,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            cron: "0 9 * * *".into(),
            broker_base_url: "https://paper-api.alpaca.markets".into(),
            request_timeout_ms: 10_000,
            enabled: true,
            max_attempts: 3,
            retry_base_ms: 500,
            max_retry_wait_ms: 30_000,
            run_max_retries: 200,
            run_budget_secs: 1800,
        }
    }
}

/// What the broker says about an account, amounts exactly as it wrote them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BrokerState {
    equity: Decimal,
    cash: Decimal,
    last_equity: Decimal,
    positions: serde_json::Value,
}

/// A client of the Alpaca trading API (`GET /v2/account`, `GET /v2/positions`).
#[derive(Debug, Clone)]
pub struct AlpacaClient {
    http: reqwest::Client,
    base_url: String,
    retry: RetryPolicy,
}

/// How one request is retried.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    max_attempts: u32,
    base: Duration,
    max_wait: Duration,
}

impl RetryPolicy {
    fn of(config: &SnapshotConfig) -> Self {
        Self {
            max_attempts: config.max_attempts.max(1),
            base: Duration::from_millis(config.retry_base_ms),
            max_wait: Duration::from_millis(config.max_retry_wait_ms),
        }
    }

    /// The wait before attempt `attempt + 1`: the broker's `Retry-After`
    /// when it sent one, else `base × 2^(attempt-1)`; never above the cap.
    fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = || {
            self.base.saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
        };
        retry_after.unwrap_or_else(backoff).min(self.max_wait)
    }
}

/// What one run may still spend on retries.
pub(crate) struct RunBudget {
    deadline: DateTime<Utc>,
    retries_left: AtomicU32,
}

impl RunBudget {
    fn new(config: &SnapshotConfig, clock: &dyn Clock) -> Self {
        let secs = i64::try_from(config.run_budget_secs).unwrap_or(i64::MAX);
        let deadline = clock
            .now()
            .checked_add_signed(chrono::Duration::seconds(secs.min(366 * 86_400)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Self {
            deadline,
            retries_left: AtomicU32::new(config.run_max_retries),
        }
    }

    /// Takes one retry that waits `wait`, if the budget has it.
    fn take(&self, clock: &dyn Clock, wait: Duration) -> bool {
        let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        let fits = clock
            .now()
            .checked_add_signed(wait)
            .is_some_and(|t| t <= self.deadline);
        fits && self
            .retries_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Retries and waits of one request, within a run.
struct Attempts<'a> {
    clock: &'a dyn Clock,
    budget: &'a RunBudget,
}

/// `Retry-After` in its seconds form (the HTTP-date form is not honoured:
/// the backoff applies).
fn retry_after(res: &reqwest::Response) -> Option<Duration> {
    let value = res.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

#[derive(Deserialize)]
struct AccountBody {
    equity: String,
    cash: String,
    last_equity: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct PositionBody {
    symbol: String,
    qty: String,
    #[serde(default)]
    market_value: Option<String>,
    #[serde(default)]
    avg_entry_price: Option<String>,
    #[serde(default)]
    current_price: Option<String>,
    #[serde(default)]
    unrealized_pl: Option<String>,
    #[serde(default)]
    side: Option<String>,
}

/// An amount the broker sent as decimal text, every digit kept.
fn number(field: &str, text: &str) -> Result<Decimal, MembersError> {
    let t = text.trim();
    t.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(t))
        .map_err(|_| MembersError::Broker(format!("`{field}` is not a number")))
}

impl AlpacaClient {
    /// A client of `base_url` (e.g. `https://paper-api.alpaca.markets`).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, MembersError> {
        Self::with_config(&SnapshotConfig {
            broker_base_url: base_url.to_owned(),
            request_timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            ..SnapshotConfig::default()
        })
    }

    /// A client per the job's settings (URL, timeout, retries).
    pub fn with_config(config: &SnapshotConfig) -> Result<Self, MembersError> {
        let timeout = Duration::from_millis(config.request_timeout_ms.max(1));
        let base_url = config.broker_base_url.as_str();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| MembersError::Broker(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            retry: RetryPolicy::of(config),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        keys: &BrokerKeys,
        path: &str,
        attempts: &Attempts<'_>,
    ) -> Result<T, MembersError> {
        let mut attempt = 1u32;
        loop {
            let sent = self
                .http
                .get(format!("{}{path}", self.base_url))
                .header("APCA-API-KEY-ID", keys.key_id.as_str())
                .header("APCA-API-SECRET-KEY", keys.secret_key.as_str())
                .send()
                .await;
            let (error, after) = match sent {
                Ok(res) if res.status().is_success() => {
                    return res.json::<T>().await.map_err(|_| {
                        MembersError::Broker(format!("GET {path}: unreadable answer"))
                    });
                }
                Ok(res) => {
                    let status = res.status();
                    let error = format!("GET {path}: HTTP {status}");
                    let retryable = status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error();
                    if !retryable {
                        return Err(MembersError::Broker(error));
                    }
                    (error, retry_after(&res))
                }
                // Without the URL: reqwest's messages may carry it, never the keys.
                Err(e) => (format!("GET {path}: {}", e.without_url()), None),
            };
            let wait = self.retry.wait(attempt, after);
            if attempt >= self.retry.max_attempts {
                return Err(MembersError::Broker(format!(
                    "{error} (after {attempt} attempts)"
                )));
            }
            if !attempts.budget.take(attempts.clock, wait) {
                return Err(MembersError::Broker(format!(
                    "{error} (the run's retry budget is spent)"
                )));
            }
            attempts.clock.sleep(wait).await;
            attempt += 1;
        }
    }

    async fn state(
        &self,
        keys: &BrokerKeys,
        attempts: &Attempts<'_>,
    ) -> Result<BrokerState, MembersError> {
        let account: AccountBody = self.get(keys, "/v2/account", attempts).await?;
        let positions: Vec<PositionBody> = self.get(keys, "/v2/positions", attempts).await?;
        let equity = number("equity", &account.equity)?;
        Ok(BrokerState {
            equity,
            cash: number("cash", &account.cash)?,
            last_equity: match account.last_equity.as_deref() {
                Some(t) => number("last_equity", t)?,
                None => equity,
            },
            positions: serde_json::to_value(positions)
                .map_err(|_| MembersError::Broker("unreadable positions".into()))?,
        })
    }
}

/// Why one member's snapshot failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberFailure {
    /// The member.
    pub member_id: UserId,
    /// What went wrong (no secrets).
    pub error: String,
}

/// One tenant's part of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantReport {
    /// Tenant slug.
    pub tenant: TenantSlug,
    /// Members with a broker account.
    pub accounts: usize,
    /// Snapshots written.
    pub succeeded: usize,
    /// Members that failed.
    pub failed: Vec<MemberFailure>,
    /// Set when the tenant as a whole failed (then nothing else ran for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotReport {
    /// The day the snapshots are for.
    pub date: NaiveDate,
    /// False when another replica held the lock (nothing ran here).
    pub ran: bool,
    /// Per tenant.
    pub tenants: Vec<TenantReport>,
    /// Snapshots written in all.
    pub succeeded: usize,
    /// Members failed in all.
    pub failed_members: usize,
    /// Tenants failed as a whole.
    pub failed_tenants: usize,
}

/// The job: members, a broker client and the credential opener.
#[derive(Clone)]
pub struct SnapshotJob {
    members: Members,
    crypto: Arc<dyn BrokerCrypto>,
    broker: AlpacaClient,
    config: SnapshotConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SnapshotJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotJob")
            .field("broker", &self.broker.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

impl SnapshotJob {
    /// A job over `members` reading the broker at `config.broker_base_url`.
    pub fn new(
        members: Members,
        crypto: Arc<dyn BrokerCrypto>,
        config: &SnapshotConfig,
    ) -> Result<Self, MembersError> {
        let broker = AlpacaClient::with_config(config)?;
        Ok(Self {
            members,
            crypto,
            broker,
            config: config.clone(),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same job on another clock (the retries' waits and the run's
    /// budget use it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Runs for `date` across every active tenant, unless another replica
    /// is running it (then `ran` is false). Rerunning a day overwrites that
    /// day's snapshots; it never duplicates them.
    pub async fn run(&self, date: NaiveDate) -> Result<SnapshotReport, MembersError> {
        // A connection of its own, detached from the pool: the session-level
        // lock ends with the connection, even if this future is dropped.
        let pooled = self
            .members
            .pool()
            .raw_pool()
            .get()
            .await
            .map_err(|e| rampart_tenancy::TenancyError::Pool(e.to_string()))?;
        let mut lock_conn: AsyncPgConnection = deadpool::managed::Object::take(pooled);
        // raw SQL: a session-level advisory lock.
        let locked: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<BigInt, _>(JOB_LOCK_KEY)
            .get_result(&mut lock_conn)
            .await?;
        let mut report = SnapshotReport {
            date,
            ran: locked.locked,
            tenants: Vec::new(),
            succeeded: 0,
            failed_members: 0,
            failed_tenants: 0,
        };
        if !locked.locked {
            return Ok(report);
        }
        let tenants = self.members.pool().list().await;
        let tenants = match tenants {
            Ok(t) => t,
            Err(e) => {
                drop(lock_conn);
                return Err(e.into());
            }
        };
        let budget = RunBudget::new(&self.config, self.clock.as_ref());
        for tenant in tenants
            .iter()
            .filter(|t| t.status == rampart_tenancy::TenantStatus::Active)
        {
            let r = self.run_tenant_within(&tenant.slug, date, &budget).await;
            report.succeeded += r.succeeded;
            report.failed_members += r.failed.len();
            report.failed_tenants += usize::from(r.error.is_some());
            report.tenants.push(r);
        }
        // Closing the connection would release it too; unlock to be tidy.
        // raw SQL: a session-level advisory lock.
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(JOB_LOCK_KEY)
            .execute(&mut lock_conn)
            .await;
        drop(lock_conn);
        Ok(report)
    }

    /// One tenant, with a run's budget of its own; never fails, reports
    /// instead.
    pub async fn run_tenant(&self, tenant: &TenantSlug, date: NaiveDate) -> TenantReport {
        let budget = RunBudget::new(&self.config, self.clock.as_ref());
        self.run_tenant_within(tenant, date, &budget).await
    }

    async fn run_tenant_within(
        &self,
        tenant: &TenantSlug,
        date: NaiveDate,
        budget: &RunBudget,
    ) -> TenantReport {
        let mut report = TenantReport {
            tenant: tenant.clone(),
            accounts: 0,
            succeeded: 0,
            failed: Vec::new(),
            error: None,
        };
        let accounts: Result<Vec<SealedAccount>, MembersError> = self
            .members
            .pool()
            .with_tenant(tenant, async |conn| {
                broker_accounts::table
                    .order(broker_accounts::user_id)
                    .select(SealedAccount::as_select())
                    .load(conn)
                    .await
                    .map_err(MembersError::from)
            })
            .await;
        let accounts = match accounts {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "snapshot job: tenant failed");
                report.error = Some(e.to_string());
                return report;
            }
        };
        report.accounts = accounts.len();
        for account in accounts {
            match self.snapshot_member(tenant, &account, date, budget).await {
                Ok(()) => report.succeeded += 1,
                Err(e) => {
                    tracing::warn!(%tenant, member = %account.member_id, error = %e, "snapshot job: member failed");
                    report.failed.push(MemberFailure {
                        member_id: account.member_id,
                        error: e.to_string(),
                    });
                }
            }
        }
        report
    }

    async fn snapshot_member(
        &self,
        tenant: &TenantSlug,
        account: &SealedAccount,
        date: NaiveDate,
        budget: &RunBudget,
    ) -> Result<(), MembersError> {
        let plaintext: Zeroizing<Vec<u8>> = self
            .crypto
            .open(&account.sealed, &seal_context(tenant, account.member_id))
            .await?;
        let keys: BrokerKeys = serde_json::from_slice(&plaintext)
            .map_err(|_| MembersError::Crypto("sealed credentials are not a key pair".into()))?;
        let attempts = Attempts {
            clock: self.clock.as_ref(),
            budget,
        };
        let state = self.broker.state(&keys, &attempts).await?;
        drop(keys);
        let pnl = state
            .equity
            .checked_sub(state.last_equity)
            .ok_or_else(|| MembersError::Broker("equity out of range".into()))?;
        // The return is a ratio for ranking: a float, unlike the amounts.
        let ret = if state.last_equity > Decimal::ZERO {
            pnl.checked_div(state.last_equity).and_then(|r| r.to_f64())
        } else {
            None
        };
        let (id, member) = (account.id, account.member_id);
        self.members
            .pool()
            .with_tenant(tenant, async |conn| {
                write_snapshot(conn, id, member, date, &state, pnl, ret).await
            })
            .await
    }
}

async fn write_snapshot(
    conn: &mut AsyncPgConnection,
    account: Uuid,
    member: UserId,
    date: NaiveDate,
    state: &BrokerState,
    pnl: Decimal,
    ret: Option<f64>,
) -> Result<(), MembersError> {
    // Both rows in the tenant transaction `with_tenant` opened.
    use leaderboard_daily as board;
    use portfolio_snapshots as snap;
    diesel::insert_into(snap::table)
        .values((
            snap::user_id.eq(member),
            snap::broker_account_id.eq(account),
            snap::snapshot_date.eq(date),
            snap::equity.eq(state.equity),
            snap::cash.eq(state.cash),
            snap::last_equity.eq(state.last_equity),
            snap::daily_pnl.eq(pnl),
            snap::daily_return.eq(ret),
            snap::positions.eq(&state.positions),
        ))
        .on_conflict((snap::user_id, snap::snapshot_date))
        .do_update()
        .set((
            snap::broker_account_id.eq(excluded(snap::broker_account_id)),
            snap::equity.eq(excluded(snap::equity)),
            snap::cash.eq(excluded(snap::cash)),
            snap::last_equity.eq(excluded(snap::last_equity)),
            snap::daily_pnl.eq(excluded(snap::daily_pnl)),
            snap::daily_return.eq(excluded(snap::daily_return)),
            snap::positions.eq(excluded(snap::positions)),
            snap::taken_at.eq(now),
        ))
        .execute(conn)
        .await?;
    diesel::insert_into(board::table)
        .values((
            board::user_id.eq(member),
            board::broker_account_id.eq(account),
            board::date.eq(date),
            board::equity.eq(state.equity),
            board::last_equity.eq(state.last_equity),
            board::daily_pnl.eq(pnl),
            board::daily_return.eq(ret),
        ))
        .on_conflict((board::user_id, board::date))
        .do_update()
        .set((
            board::broker_account_id.eq(excluded(board::broker_account_id)),
            board::equity.eq(excluded(board::equity)),
            board::last_equity.eq(excluded(board::last_equity)),
            board::daily_pnl.eq(excluded(board::daily_pnl)),
            board::daily_return.eq(excluded(board::daily_return)),
            board::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_honour_retry_after_and_are_capped() {
        let policy = RetryPolicy::of(&SnapshotConfig {
            retry_base_ms: 100,
            max_retry_wait_ms: 1_500,
            ..SnapshotConfig::default()
        });
        let ms = Duration::from_millis;
        assert_eq!(policy.wait(1, None), ms(100));
        assert_eq!(policy.wait(2, None), ms(200));
        assert_eq!(policy.wait(3, None), ms(400));
        assert_eq!(policy.wait(40, None), ms(1_500));
        assert_eq!(policy.wait(1, Some(ms(1_000))), ms(1_000));
        assert_eq!(policy.wait(1, Some(Duration::from_secs(3_600))), ms(1_500));
    }
}
