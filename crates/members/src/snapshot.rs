//! The daily snapshot job: per tenant, per member with a broker account,
//! read equity, cash and positions from the broker, upsert the day's
//! snapshot and leaderboard row. One member's or tenant's failure is
//! recorded and the run goes on; a PostgreSQL advisory lock makes one
//! replica run it at a time.
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
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
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            cron: "0 9 * * *".into(),
            broker_base_url: "https://paper-api.alpaca.markets".into(),
            request_timeout_ms: 10_000,
            enabled: true,
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
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| MembersError::Broker(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        keys: &BrokerKeys,
        path: &str,
    ) -> Result<T, MembersError> {
        let res = self
            .http
            .get(format!("{}{path}", self.base_url))
            .header("APCA-API-KEY-ID", keys.key_id.as_str())
            .header("APCA-API-SECRET-KEY", keys.secret_key.as_str())
            .send()
            .await
            // Without the URL: reqwest's messages may carry it, never the keys.
            .map_err(|e| MembersError::Broker(format!("GET {path}: {}", e.without_url())))?;
        let status = res.status();
        if !status.is_success() {
            return Err(MembersError::Broker(format!("GET {path}: HTTP {status}")));
        }
        res.json::<T>()
            .await
            .map_err(|_| MembersError::Broker(format!("GET {path}: unreadable answer")))
    }

    pub(crate) async fn state(&self, keys: &BrokerKeys) -> Result<BrokerState, MembersError> {
        let account: AccountBody = self.get(keys, "/v2/account").await?;
        let positions: Vec<PositionBody> = self.get(keys, "/v2/positions").await?;
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
    pub member_id: Uuid,
    /// What went wrong (no secrets).
    pub error: String,
}

/// One tenant's part of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantReport {
    /// Tenant slug.
    pub tenant: String,
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
        let broker = AlpacaClient::new(
            &config.broker_base_url,
            Duration::from_millis(config.request_timeout_ms.max(1)),
        )?;
        Ok(Self {
            members,
            crypto,
            broker,
        })
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
        for tenant in tenants
            .iter()
            .filter(|t| t.status == rampart_tenancy::TenantStatus::Active)
        {
            let r = self.run_tenant(tenant.slug.as_str(), date).await;
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

    /// One tenant; never fails, reports instead.
    pub async fn run_tenant(&self, tenant: &str, date: NaiveDate) -> TenantReport {
        let mut report = TenantReport {
            tenant: tenant.to_owned(),
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
                tracing::warn!(tenant, error = %e, "snapshot job: tenant failed");
                report.error = Some(e.to_string());
                return report;
            }
        };
        report.accounts = accounts.len();
        for account in accounts {
            match self.snapshot_member(tenant, &account, date).await {
                Ok(()) => report.succeeded += 1,
                Err(e) => {
                    tracing::warn!(tenant, member = %account.member_id, error = %e, "snapshot job: member failed");
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
        tenant: &str,
        account: &SealedAccount,
        date: NaiveDate,
    ) -> Result<(), MembersError> {
        let plaintext: Zeroizing<Vec<u8>> = self
            .crypto
            .open(&account.sealed, &seal_context(tenant, account.member_id))
            .await?;
        let keys: BrokerKeys = serde_json::from_slice(&plaintext)
            .map_err(|_| MembersError::Crypto("sealed credentials are not a key pair".into()))?;
        let state = self.broker.state(&keys).await?;
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
    member: Uuid,
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
