//! Per-tenant changes every replica follows, with one query for all
//! tenants.
//!
//! A service that caches something of a tenant (a role's permissions, ...)
//! announces a change of a topic inside the tenant transaction that made it
//! ([`ChangeFeed::announce`]); every replica reads the feed when its view is
//! older than its bound and keys its cache entries by
//! [`ChangeFeed::generation`], so an entry from before a change is never
//! served again. [`Freshness`] and [`snapshot_horizon`] are the reading
//! discipline, shared with other feeds (the access-token revocations of
//! `rampart-auth`).
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::TenancyError;
use crate::pool::TenantPool;
use crate::schema::tenant_changes;

#[diesel::declare_sql_function]
extern "SQL" {
    /// Records a change of `topic` for the tenant whose role is in effect (a
    /// `SECURITY DEFINER` function: tenant roles cannot write the platform
    /// schema); returns the tenant's id.
    #[sql_name = "platform_tenant_api.announce_change"]
    fn announce_change(topic: Text) -> SqlUuid;
}

/// The xmin of the current statement's snapshot: every transaction below it
/// has ended. A feed read at horizon `h` needs, next time, only the rows
/// written by transactions at or above `h` (rows carry their transaction id
/// in `xact`); rows read twice are applied twice, so appliers are
/// idempotent.
pub async fn snapshot_horizon(conn: &mut AsyncPgConnection) -> Result<i64, TenancyError> {
    Ok(diesel::select(diesel::dsl::sql::<BigInt>(
        "pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
    ))
    .get_result(conn)
    .await?)
}

/// Never read: the next check reads.
const STALE: u64 = u64::MAX;

/// How fresh a replica's view of a feed is, and the one reader at a time.
///
/// [`Freshness::ensure`] reads unless a read completed that started at
/// most `max_age` before the call, or after it began (a read that started
/// after you asked is as good as your own): waiting callers share one read.
#[derive(Debug)]
pub struct Freshness<S> {
    max_age: Duration,
    epoch: Instant,
    /// When the last completed read started (nanoseconds since `epoch`), or
    /// [`STALE`].
    read_at: AtomicU64,
    state: tokio::sync::Mutex<S>,
}

impl<S> Freshness<S> {
    /// A view that is stale until first read; `state` is the reader's own
    /// (its cursor).
    pub fn new(max_age: Duration, state: S) -> Self {
        Self {
            max_age,
            epoch: Instant::now(),
            read_at: AtomicU64::new(STALE),
            state: tokio::sync::Mutex::new(state),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.epoch).as_nanos()).unwrap_or(STALE - 1)
    }

    fn is_fresh(&self, asked: Instant) -> bool {
        let read_at = AtomicU64::load(&self.read_at, Ordering::Acquire);
        let asked = self.nanos(asked);
        read_at != STALE
            && (read_at >= asked || u128::from(asked - read_at) < self.max_age.as_nanos())
    }

    /// The next [`Freshness::ensure`] reads, whatever the age of the view.
    pub fn stale(&self) {
        self.read_at.store(STALE, Ordering::Release);
    }

    /// Runs `read` on the reader's state unless the view is fresh enough.
    pub async fn ensure<E>(
        &self,
        read: impl AsyncFnOnce(&mut S) -> Result<(), E>,
    ) -> Result<(), E> {
        let asked = Instant::now();
        if self.is_fresh(asked) {
            return Ok(());
        }
        let mut state = self.state.lock().await;
        if self.is_fresh(asked) {
            return Ok(());
        }
        let started = Instant::now();
        read(&mut state).await?;
        self.read_at.store(self.nanos(started), Ordering::Release);
        Ok(())
    }
}

/// How long announced changes are kept. A replica whose last read is older
/// than this (minus a margin) may have missed some, and treats every
/// tenant as changed.
const RETENTION: chrono::Duration = chrono::Duration::hours(1);
const CATCH_UP_LIMIT: Duration = Duration::from_secs(50 * 60);
/// How often a replica deletes the changes past retention.
const PURGE_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Cursor {
    horizon: i64,
    /// Rows at or above the horizon already counted (id, xact): a row is
    /// read again while an older transaction holds the horizon back.
    counted: HashMap<i64, i64>,
    last_read: Option<Instant>,
    purged: Option<Instant>,
}

/// This replica's view of the announced changes of every tenant.
#[derive(Debug)]
pub struct ChangeFeed {
    pool: TenantPool,
    view: Freshness<Cursor>,
    /// Changes seen per (tenant, topic).
    seen: RwLock<HashMap<(Uuid, String), u64>>,
    /// Bumped when this replica may have missed changes: every generation
    /// moves.
    epoch: AtomicU64,
}

impl ChangeFeed {
    /// A feed read when the view is older than `max_age` (`0`: on every
    /// [`ChangeFeed::generation`]).
    pub fn new(pool: TenantPool, max_age: Duration) -> Self {
        Self {
            pool,
            view: Freshness::new(max_age, Cursor::default()),
            seen: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        }
    }

    /// Records a change of `topic` inside the caller's tenant transaction
    /// (routed by [`TenantPool::with_tenant`]); other replicas see it within
    /// their `max_age`. Returns the tenant's id. The caller drops its own
    /// cached entries (this replica's generation moves on its next read).
    pub async fn announce(conn: &mut AsyncPgConnection, topic: &str) -> Result<Uuid, TenancyError> {
        Ok(diesel::select(announce_change(topic))
            .get_result(conn)
            .await?)
    }

    /// The generation of `topic` for `tenant`: it changes whenever a change
    /// of it is announced (by any replica, seen within `max_age`).
    pub async fn generation(&self, tenant: Uuid, topic: &str) -> Result<u64, TenancyError> {
        self.view
            .ensure(async |cursor| self.read(cursor).await)
            .await?;
        let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
        let count = seen.get(&(tenant, topic.to_owned())).copied().unwrap_or(0);
        Ok(AtomicU64::load(&self.epoch, Ordering::Acquire)
            .wrapping_shl(32)
            .wrapping_add(count))
    }

    /// The next [`ChangeFeed::generation`] reads the feed.
    pub fn stale(&self) {
        self.view.stale();
    }

    async fn read(&self, cursor: &mut Cursor) -> Result<(), TenancyError> {
        let started = Instant::now();
        let mut conn = self.pool.conn().await?;
        let horizon = snapshot_horizon(&mut conn).await?;
        let rows: Vec<(i64, i64, Uuid, String)> = tenant_changes::table
            .filter(tenant_changes::xact.ge(cursor.horizon))
            .select((
                tenant_changes::id,
                tenant_changes::xact,
                tenant_changes::tenant_id,
                tenant_changes::topic,
            ))
            .load(&mut conn)
            .await?;
        if cursor.purged.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            diesel::delete(
                tenant_changes::table
                    .filter(tenant_changes::changed_at.lt(chrono::Utc::now() - RETENTION)),
            )
            .execute(&mut conn)
            .await?;
            cursor.purged = Some(started);
        }
        if cursor
            .last_read
            .is_some_and(|t| t.elapsed() >= CATCH_UP_LIMIT)
        {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        {
            let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
            for (id, xact, tenant, topic) in rows {
                if cursor.counted.insert(id, xact).is_none() {
                    *seen.entry((tenant, topic)).or_insert(0) += 1;
                }
            }
        }
        cursor.counted.retain(|_, xact| *xact >= horizon);
        cursor.horizon = horizon;
        cursor.last_read = Some(started);
        Ok(())
    }
}
