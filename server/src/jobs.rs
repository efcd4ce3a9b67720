//! Every scheduled job of the server, started with the listeners and
//! stopped with them: dependency probes for `/metrics`, tenant usage flush
//! and retention purge, the members' daily snapshot, price alerts,
//! new-device login alerts, the audit log sealer, the nightly portfolio
//! metrics, the weekly report mail and the spare tenant schemas.
//!
//! Every run of a job is measured for `/metrics` (last run, duration,
//! successes and failures, label `job`) and is the root span of its own
//! trace.
use rampart_tenancy::TenantSlug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use rampart_auth::AuthError;
use rampart_auth::audit::AuditEvent;
use rampart_auth::audit_tree::SealAllReport;
use rampart_members::{
    CronSchedule, Members, MembersError, Scheduler, SnapshotJob, SnapshotReport, SystemClock,
};
use rampart_notify::{Notifier, NotifyError};
use rampart_tenancy::{Due, TableActivity};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::error::ApiError;
use crate::portfolio_analysis::run_analysis;
use crate::state::AppState;

/// The jobs' names in `/metrics` (label `job`).
pub const JOBS: &[&str] = &[
    "probes",
    "usage_flush",
    "retention_purge",
    "notify_cleanup",
    "snapshot",
    "price_alerts",
    "login_alerts",
    "audit_seal",
    "portfolio_metrics",
    "weekly_report",
    "market_ingest",
    "spares",
];

/// Runs one pass of `job`: recorded in `/metrics` and traced (a root span
/// when scheduled, a child of the request when an operator starts it).
pub async fn observed<T, E>(
    state: &AppState,
    job: &'static str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let span = tracing::debug_span!("job", otel.name = job, job);
    let result = work.instrument(span).await;
    state
        .metrics
        .record_job(job, started.elapsed(), result.is_ok());
    result
}

/// Every job, as tasks to stop with the server.
pub fn spawn_all(state: &AppState) -> Vec<JoinHandle<()>> {
    // Failure counters exist from the start (alerts on their rate).
    for job in JOBS {
        for result in ["success", "failure"] {
            state.metrics.job_runs.with_label_values(&[job, result]);
        }
    }
    vec![
        spawn_probes(state.clone()),
        spawn_maintenance(state.clone()),
        spawn_snapshot_scheduler(state.clone()),
        spawn_price_alert_job(state.clone()),
        spawn_login_alert_job(state.clone()),
        spawn_audit_sealer(state.clone()),
        spawn_metrics_scheduler(state.clone()),
        spawn_weekly_report_scheduler(state.clone()),
        spawn_ingest_scheduler(state.clone()),
        spawn_spares(state.clone()),
    ]
}

fn every(secs: u64) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(Duration::from_secs(secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick
}

/// Keeps the dependency gauges and pool gauges fresh for `/metrics`.
pub fn spawn_probes(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            // A pass fails when PostgreSQL does not answer (the other
            // dependencies have their own gauges).
            let _ = observed(&state, "probes", async {
                let r = state.ready_report().await;
                if r.postgres.ok { Ok(()) } else { Err(()) }
            })
            .await;
        }
    })
}

/// Keeps `database.spare_schemas` tenant schemas built ahead of demand
/// (`TenantPool::replenish_spares`), every 10 s from 10 s after start, so
/// that provisioning a tenant renames one instead of creating its tables.
pub fn spawn_spares(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_secs(10);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            match observed(&state, "spares", state.tenants.replenish_spares()).await {
                Ok(r) => {
                    state.metrics.spare_schemas.set(r.ready as i64);
                    if r.created + r.dropped > 0 {
                        tracing::info!(
                            created = r.created,
                            dropped = r.dropped,
                            ready = r.ready,
                            "spare tenant schemas replenished"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "replenishing spare tenant schemas failed"),
            }
        }
    })
}

/// Tenant usage counters flushed every minute; tenants past their retention
/// deadline purged, and the notifier's spent e-mail links and old
/// new-device marks deleted, every hour.
pub fn spawn_maintenance(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut minutes = 0u64;
        loop {
            tick.tick().await;
            if let Err(e) = observed(&state, "usage_flush", state.tenants.flush_usage()).await {
                tracing::warn!(error = %e, "flushing tenant usage failed");
            }
            if minutes.is_multiple_of(60) {
                match observed(&state, "retention_purge", state.tenants.purge_expired()).await {
                    Ok(purged) if !purged.is_empty() => {
                        tracing::info!(?purged, "purged tenants past retention")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention purge failed"),
                }
                let cleanup = async { notifier(&state)?.cleanup_all().await };
                if let Err(e) = observed(&state, "notify_cleanup", cleanup).await {
                    tracing::warn!(error = %e, "notify cleanup failed");
                }
            }
            minutes += 1;
        }
    })
}

/// Runs the snapshot job once for `date` and audits it in every tenant it
/// touched (`actor`: `job:snapshot` or the operator's `mtls:<subject>`).
pub async fn run_snapshot_job(
    state: &AppState,
    date: NaiveDate,
    actor: &str,
) -> Result<SnapshotReport, MembersError> {
    observed(state, "snapshot", snapshot_pass(state, date, actor)).await
}

async fn snapshot_pass(
    state: &AppState,
    date: NaiveDate,
    actor: &str,
) -> Result<SnapshotReport, MembersError> {
    let config = state.config.snapshot.clone();
    let job = SnapshotJob::new(
        Members::new(state.tenants.clone()),
        state.broker_crypto.clone(),
        &config,
    )?;
    let report = job.run(date).await?;
    for t in &report.tenants {
        let result = match (&t.error, t.failed.is_empty()) {
            (Some(_), _) => "failure",
            (None, true) => "success",
            (None, false) => "partial",
        };
        let event = AuditEvent::new("snapshot.run", result)
            .actor(actor.to_owned())
            .detail(serde_json::json!({
                "date": date,
                "accounts": t.accounts,
                "succeeded": t.succeeded,
                "failed": t.failed.len(),
                "failedMembers": t.failed.iter().map(|f| f.member_id).collect::<Vec<_>>(),
                "tenantError": t.error.is_some(),
            }));
        if let Err(e) = state.auth.audit(&t.tenant, event).await {
            tracing::warn!(tenant = %t.tenant, error = %e, "snapshot run: audit write failed");
        }
    }
    tracing::info!(
        %date,
        ran = report.ran,
        succeeded = report.succeeded,
        failed_members = report.failed_members,
        failed_tenants = report.failed_tenants,
        "snapshot job finished"
    );
    Ok(report)
}

/// Runs the snapshot job on its cron schedule (UTC) until aborted: each
/// slot on one replica only, and after downtime one run for the latest
/// missed slot (`rampart_members::Scheduler`). An invalid expression is
/// logged and the scheduler does not run.
pub fn spawn_snapshot_scheduler(state: AppState) -> JoinHandle<()> {
    let config = state.config.snapshot.clone();
    spawn_cron(
        state,
        config.enabled,
        config.cron,
        "snapshot",
        |state, next| async move { run_snapshot_job(&state, next.date_naive(), "job:snapshot").await },
    )
}

/// Runs `job` at every time of the five-field UTC `cron` until aborted (not
/// at all unless `enabled`): each slot on one replica only, and after
/// downtime one run for the latest missed slot
/// (`rampart_members::Scheduler`, slots claimed under the name `what`). An
/// invalid expression is logged and nothing runs.
fn spawn_cron<T, E, F>(
    state: AppState,
    enabled: bool,
    cron: String,
    what: &'static str,
    job: impl Fn(AppState, chrono::DateTime<Utc>) -> F + Send + Sync + 'static,
) -> JoinHandle<()>
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>> + Send,
{
    tokio::spawn(async move {
        if !enabled {
            return;
        }
        let schedule = match CronSchedule::parse(&cron) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(%cron, error = %e, "{what} scheduler not started");
                return;
            }
        };
        let scheduler =
            Scheduler::new(state.tenants.clone(), what, schedule, Arc::new(SystemClock));
        scheduler
            .run(|slot| {
                let state = state.clone();
                let job = &job;
                async move {
                    if let Err(e) = job(state, slot).await {
                        tracing::error!(error = %e, "{what} job failed");
                    }
                }
            })
            .await;
    })
}

/// What one pass of the nightly metrics job did.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsReport {
    /// Active tenants gone through.
    pub tenants: usize,
    /// Portfolios analysed and stored.
    pub succeeded: usize,
    /// Portfolios (or whole tenants, `portfolio` none) that failed, with the
    /// stable error code of the failure.
    pub failed: Vec<MetricsFailure>,
}

/// A portfolio the metrics job could not analyse.
#[derive(Debug, serde::Serialize)]
pub struct MetricsFailure {
    /// Tenant slug.
    pub tenant: TenantSlug,
    /// The portfolio; none when the tenant's portfolios could not be listed.
    pub portfolio: Option<uuid::Uuid>,
    /// Why, as the API's stable error code (e.g. `unprocessable` when a
    /// holding has no prices).
    pub code: &'static str,
}

/// One pass of the metrics job: every portfolio of every active tenant is
/// analysed over its default window (the one the analytics routes use) and
/// its days stored in `portfolio_metrics_daily`, replacing what was stored
/// for them: running it again the same day changes nothing. One
/// portfolio's failure is reported and does not stop the others.
pub async fn run_metrics_job(state: &AppState) -> Result<MetricsReport, ApiError> {
    observed(state, "portfolio_metrics", async {
        let service = rampart_portfolio::PortfolioService::new(state.tenants.clone());
        let actor = rampart_portfolio::Actor::system();
        let query = crate::portfolio_analysis::AnalyticsQuery::default();
        let mut report = MetricsReport::default();
        for tenant in state.tenants.active_slugs().await.map_err(ApiError::from)? {
            report.tenants += 1;
            let ids = match service.portfolio_ids(&tenant).await {
                Ok(ids) => ids,
                Err(e) => {
                    let code = ApiError::from(e).code.as_str();
                    report.failed.push(MetricsFailure {
                        tenant,
                        portfolio: None,
                        code,
                    });
                    continue;
                }
            };
            for id in ids {
                let run = run_analysis(state, &tenant, &actor, id.into(), &query).await;
                match run {
                    Ok(_) => report.succeeded += 1,
                    Err(e) => report.failed.push(MetricsFailure {
                        tenant: tenant.clone(),
                        portfolio: Some(id.into()),
                        code: e.code.as_str(),
                    }),
                }
            }
        }
        tracing::info!(
            tenants = report.tenants,
            succeeded = report.succeeded,
            failed = report.failed.len(),
            "portfolio metrics job finished"
        );
        Ok(report)
    })
    .await
}

/// What one run of the ingestion job did.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestJobReport {
    /// Active tenants whose portfolios' symbols were gathered.
    pub tenants: usize,
    /// Bars stored new, over every symbol.
    pub inserted: u64,
    /// Stored bars whose values changed.
    pub updated: u64,
    /// Symbols that failed (their report says why).
    pub failed: usize,
    /// Per symbol, sorted.
    pub symbols: Vec<rampart_market::IngestReport>,
}

/// One pass of the daily ingestion: the symbols held in any live portfolio
/// of any active tenant plus `[market_ingest] symbols`, each brought up to
/// today through the market chain (from the day after its newest stored
/// bar, so a run after a crash resumes where it stopped; upserts, so a
/// repeated run stores nothing twice). Progress and rows in `/metrics`.
pub async fn run_ingest_job(state: &AppState) -> Result<IngestJobReport, ApiError> {
    observed(state, "market_ingest", async {
        let service = rampart_portfolio::PortfolioService::new(state.tenants.clone());
        let mut symbols: std::collections::BTreeSet<String> = state
            .config
            .market_ingest
            .symbols
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .collect();
        let mut report = IngestJobReport::default();
        for tenant in state.tenants.active_slugs().await.map_err(ApiError::from)? {
            report.tenants += 1;
            symbols.extend(service.held_symbols(&tenant).await?);
        }
        let progress = &state.metrics.ingest_symbols;
        progress
            .with_label_values(&["total"])
            .set(i64::try_from(symbols.len()).unwrap_or(i64::MAX));
        progress.with_label_values(&["done"]).set(0);
        let rows = &state.metrics.ingest_rows;
        for symbol in symbols {
            let one = std::slice::from_ref(&symbol);
            // The instrument (name, exchange, type) from the vendors' search.
            state.market.record_instruments(one).await;
            for r in state.market.update_daily(one).await {
                report.inserted += r.inserted;
                report.updated += r.updated;
                report.failed += usize::from(r.error.is_some());
                rows.with_label_values(&["inserted"]).inc_by(r.inserted);
                rows.with_label_values(&["updated"]).inc_by(r.updated);
                rows.with_label_values(&["unchanged"]).inc_by(r.unchanged);
                report.symbols.push(r);
            }
            progress.with_label_values(&["done"]).inc();
        }
        tracing::info!(
            symbols = report.symbols.len(),
            inserted = report.inserted,
            failed = report.failed,
            "market ingestion job finished"
        );
        Ok(report)
    })
    .await
}

/// Runs the ingestion job on its cron schedule (`[market_ingest]`, UTC).
pub fn spawn_ingest_scheduler(state: AppState) -> JoinHandle<()> {
    let config = state.config.market_ingest.clone();
    spawn_cron(
        state,
        config.enabled,
        config.cron,
        "market_ingest",
        |state, _| async move { run_ingest_job(&state).await },
    )
}

/// Runs the metrics job on its cron schedule (`[portfolio_metrics]`, UTC).
pub fn spawn_metrics_scheduler(state: AppState) -> JoinHandle<()> {
    let config = state.config.portfolio_metrics.clone();
    spawn_cron(
        state,
        config.enabled,
        config.cron,
        "portfolio_metrics",
        |state, _| async move { run_metrics_job(&state).await },
    )
}

fn notifier(state: &AppState) -> Result<Notifier, NotifyError> {
    Notifier::new(state.tenants.clone(), state.config.notify.clone())
}

/// One pass of the price-alert job over every active tenant; returns how
/// many alerts fired.
pub async fn run_price_alerts_once(state: &AppState) -> Result<usize, NotifyError> {
    observed(state, "price_alerts", async {
        notifier(state)?.check_price_alerts_all(&state.market).await
    })
    .await
}

/// One pass of the new-device check over every active tenant; returns how
/// many alerts were mailed.
pub async fn run_login_alerts_once(state: &AppState) -> Result<usize, NotifyError> {
    observed(state, "login_alerts", async {
        notifier(state)?.check_new_logins_all().await
    })
    .await
}

/// How often a periodic job that visits only the tenants with activity
/// (see [`TableActivity`]) visits every tenant anyway.
const FULL_PASS_EVERY: u64 = 30;

/// Checks price alerts against the market chain every
/// `price_check_secs`, in the tenants that have alerts; each alert is
/// mailed once, across replicas too.
pub fn spawn_price_alert_job(state: AppState) -> JoinHandle<()> {
    let secs = state.config.notify.price_check_secs;
    let alerts = Arc::new(TableActivity::rows("price_alerts", FULL_PASS_EVERY));
    spawn_every(state, secs, "price alert job", move |state| {
        let alerts = alerts.clone();
        async move {
            observed(&state, "price_alerts", async {
                let due = alerts.due(&state.tenants).await?;
                let fired = notifier(&state)?
                    .check_price_alerts_due(&state.market, &due)
                    .await;
                if fired.is_err() {
                    alerts.again(due);
                }
                fired
            })
            .await
        }
    })
}

/// Mails new-device login alerts every `login_check_secs` (see
/// `rampart_notify::devices` for what a device is), in the tenants with new
/// sessions.
pub fn spawn_login_alert_job(state: AppState) -> JoinHandle<()> {
    let secs = state.config.notify.login_check_secs;
    let sessions = Arc::new(TableActivity::inserts("sessions", FULL_PASS_EVERY));
    spawn_every(state, secs, "new-device alert job", move |state| {
        let sessions = sessions.clone();
        async move {
            observed(&state, "login_alerts", async {
                let due = sessions.due(&state.tenants).await?;
                let sent = notifier(&state)?.check_new_logins_due(&due).await;
                if sent.is_err() {
                    sessions.again(due);
                }
                sent
            })
            .await
        }
    })
}

/// Runs `job` on the state every `secs`; a failed run is logged as `what`
/// and the next tick tries again.
fn spawn_every<T, E, F>(
    state: AppState,
    secs: u64,
    what: &'static str,
    job: impl Fn(AppState) -> F + Send + 'static,
) -> JoinHandle<()>
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>> + Send,
{
    tokio::spawn(async move {
        let mut tick = every(secs);
        loop {
            tick.tick().await;
            if let Err(e) = job(state.clone()).await {
                tracing::warn!(error = %e, "{what}");
            }
        }
    })
}

/// One pass of the audit sealer: every tenant's new audit rows become
/// leaves of its Merkle tree under a new signed tree head. Another replica
/// sealing at the same time makes this pass a no-op (`ran` false).
pub async fn run_audit_seal_once(state: &AppState) -> Result<SealAllReport, AuthError> {
    seal_due(state, &Due::All).await
}

/// [`run_audit_seal_once`] for the tenants in `due`.
async fn seal_due(state: &AppState, due: &Due) -> Result<SealAllReport, AuthError> {
    observed(state, "audit_seal", async {
        let report = state.auth.audit_trail().seal_due(due).await?;
        for (tenant, error) in &report.failed {
            tracing::warn!(%tenant, %error, "sealing the audit log failed");
        }
        Ok(report)
    })
    .await
}

/// Seals the audit logs every `auth.audit_seal_secs` (`0`: never), on one
/// replica at a time (a PostgreSQL advisory lock), in the tenants whose
/// `audit_log` took rows (every tenant every [`FULL_PASS_EVERY`] passes).
pub fn spawn_audit_sealer(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let secs = state.config.auth.audit_seal_secs;
        if secs == 0 {
            return;
        }
        let audit = TableActivity::inserts("audit_log", FULL_PASS_EVERY);
        let mut tick = every(secs);
        loop {
            tick.tick().await;
            let due = match audit.due(&state.tenants).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "audit sealer: which tenants have new rows");
                    Due::All
                }
            };
            match seal_due(&state, &due).await {
                // Another replica held the lock: this pass's tenants wait
                // for the next one, not for the next full pass.
                Ok(report) if !report.ran => audit.again(due),
                Ok(report) => audit.again(Due::Only(
                    report.failed.into_iter().map(|(t, _)| t).collect(),
                )),
                Err(e) => {
                    tracing::warn!(error = %e, "audit sealer");
                    audit.again(due);
                }
            }
        }
    })
}

/// One pass of the weekly report job (see [`crate::weekly_report`]).
pub async fn run_weekly_report_job(
    state: &AppState,
) -> Result<crate::weekly_report::WeeklyReportRun, ApiError> {
    observed(
        state,
        "weekly_report",
        crate::weekly_report::run(state, Utc::now()),
    )
    .await
}

/// Mails the weekly reports on `[notify] weekly_report_cron` (empty: never).
pub fn spawn_weekly_report_scheduler(state: AppState) -> JoinHandle<()> {
    let cron = state.config.notify.weekly_report_cron.clone();
    spawn_cron(
        state,
        !cron.is_empty(),
        cron,
        "weekly_report",
        |state, _| async move { run_weekly_report_job(&state).await },
    )
}
