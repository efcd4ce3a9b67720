//! The loop that fires a job on its cron schedule, across replicas: each
//! slot (a matching minute) is claimed in `platform.job_slots` by a
//! conditional upsert that only moves the job's last slot forward, so of
//! the replicas waking for a slot exactly one runs it. A loop whose job has
//! no recorded slot owes nothing from before it started; one that finds
//! slots missed since the last recorded one (the replicas were down) runs
//! once, for the latest of them.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::dsl::now as db_now;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_tenancy::{TenancyError, TenantPool};

use crate::clock::Clock;
use crate::schema::job_slots;
use crate::{CronSchedule, MembersError};

/// The wait before trying again when the database does not answer.
const RETRY_PAUSE: Duration = Duration::from_secs(30);

/// What a scheduler loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRun {
    /// Run the slot now (the latest one due).
    Due(DateTime<Utc>),
    /// Nothing is due before this time.
    WaitUntil(DateTime<Utc>),
    /// The schedule never fires.
    Never,
}

/// A job's schedule, its claims and its loop.
pub struct Scheduler {
    pool: TenantPool,
    job: String,
    schedule: CronSchedule,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("job", &self.job)
            .field("schedule", &self.schedule.as_str())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// The scheduler of `job` (its name in `platform.job_slots`).
    pub fn new(pool: TenantPool, job: &str, schedule: CronSchedule, clock: Arc<dyn Clock>) -> Self {
        Self {
            pool,
            job: job.to_owned(),
            schedule,
            clock,
        }
    }

    /// What is due at `now`, given the last claimed slot (none: the loop
    /// started at `started` and owes nothing before it).
    pub fn next_run(
        &self,
        last: Option<DateTime<Utc>>,
        started: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> NextRun {
        let Some(next) = self.schedule.next_after(last.unwrap_or(started)) else {
            return NextRun::Never;
        };
        if next > now {
            return NextRun::WaitUntil(next);
        }
        // One slot or many missed: one run, for the latest.
        let latest = self.schedule.latest_at_or_before(now).unwrap_or(next);
        NextRun::Due(latest.max(next))
    }

    async fn conn(
        &self,
    ) -> Result<
        deadpool::managed::Object<impl deadpool::managed::Manager<Type = AsyncPgConnection>>,
        MembersError,
    > {
        self.pool
            .raw_pool()
            .get()
            .await
            .map_err(|e| MembersError::Tenancy(TenancyError::Pool(e.to_string())))
    }

    /// The last slot claimed for the job, by any replica.
    pub async fn last_slot(&self) -> Result<Option<DateTime<Utc>>, MembersError> {
        let mut conn = self.conn().await?;
        Ok(job_slots::table
            .filter(job_slots::job.eq(&self.job))
            .select(job_slots::last_slot)
            .first(&mut *conn)
            .await
            .optional()?)
    }

    /// Claims `slot` for this replica: true for exactly one caller, and
    /// never for a slot at or before the last one claimed.
    pub async fn claim(&self, slot: DateTime<Utc>) -> Result<bool, MembersError> {
        let mut conn = self.conn().await?;
        let upsert = diesel::insert_into(job_slots::table)
            .values((job_slots::job.eq(&self.job), job_slots::last_slot.eq(slot)))
            .on_conflict(job_slots::job)
            .do_update()
            .set((
                job_slots::last_slot.eq(excluded(job_slots::last_slot)),
                job_slots::claimed_at.eq(db_now),
            ));
        // `ON CONFLICT … DO UPDATE … WHERE`: only forward.
        let n = diesel::query_dsl::methods::FilterDsl::filter(
            upsert,
            job_slots::last_slot.lt(excluded(job_slots::last_slot)),
        )
        .execute(&mut *conn)
        .await?;
        Ok(n == 1)
    }

    /// Runs `job` for each slot this replica claims, until the future is
    /// dropped (or the schedule never fires again).
    pub async fn run<F, Fut>(&self, mut job: F)
    where
        F: FnMut(DateTime<Utc>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let started = self.clock.now();
        loop {
            let last = match self.last_slot().await {
                Ok(last) => last,
                Err(e) => {
                    tracing::warn!(job = %self.job, error = %e, "scheduler: cannot read the last slot");
                    self.clock.sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            let now = self.clock.now();
            match self.next_run(last, started, now) {
                NextRun::Never => {
                    tracing::error!(job = %self.job, cron = %self.schedule.as_str(), "schedule never fires");
                    return;
                }
                NextRun::WaitUntil(at) => {
                    self.clock
                        .sleep((at - now).to_std().unwrap_or_default())
                        .await;
                }
                NextRun::Due(slot) => match self.claim(slot).await {
                    Ok(true) => job(slot).await,
                    // Another replica has it.
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(job = %self.job, error = %e, "scheduler: cannot claim the slot");
                        self.clock.sleep(RETRY_PAUSE).await;
                    }
                },
            }
        }
    }
}
