//! The stored daily metrics of a portfolio (`portfolio_metrics_daily`): nav,
//! daily and cumulative return, 30-day volatility and max drawdown per day,
//! written by every analysis (see [`crate::analysis`]) and by the nightly
//! job that analyses every portfolio of a tenant ([`MetricsJobConfig`]), and
//! read back here without recomputing anything.
use chrono::NaiveDate;
use diesel::{ExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper};
use rampart_ids::PortfolioId;
use rampart_tenancy::TenantSlug;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::Actor;
use crate::schema::{portfolio_metrics_daily, portfolios, positions};
use crate::{Access, PortfolioError, PortfolioService};

/// The most days one read returns (twenty years of calendar days).
pub const MAX_METRIC_DAYS: i64 = 20 * 366;

/// One stored day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable)]
#[diesel(table_name = portfolio_metrics_daily)]
pub struct DailyMetrics {
    /// Trading day.
    pub date: NaiveDate,
    /// Net asset value at the close.
    pub nav: f64,
    /// Return since the previous day, flows excluded (none on the first).
    pub daily_return: Option<f64>,
    /// Compounded return since the first day of the analysed window.
    pub cumulative_return: Option<f64>,
    /// Annualized volatility of the last 30 returns.
    pub volatility_30d: Option<f64>,
    /// Worst drawdown so far in the window (≤ 0).
    pub max_drawdown: Option<f64>,
}

/// Days as CSV (`date,nav,daily_return,cumulative_return,volatility_30d,max_drawdown`;
/// an unknown figure is an empty cell).
pub fn metrics_csv(days: impl IntoIterator<Item = DailyMetrics>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "date",
        "nav",
        "daily_return",
        "cumulative_return",
        "volatility_30d",
        "max_drawdown",
    ]);
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for d in days {
        let _ = w.write_record([
            d.date.to_string(),
            d.nav.to_string(),
            opt(d.daily_return),
            opt(d.cumulative_return),
            opt(d.volatility_30d),
            opt(d.max_drawdown),
        ]);
    }
    w.into_inner()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// When the nightly metrics job runs (the server schedules it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsJobConfig {
    /// Whether the scheduler runs it (the admin trigger always works).
    pub enabled: bool,
    /// When (five-field cron, UTC). Default `30 22 * * *`, after the US close.
    pub cron: String,
}

impl Default for MetricsJobConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cron: "30 22 * * *".into(),
        }
    }
}

impl Actor {
    /// A scheduled job acting for the tenant: sees every portfolio as a
    /// tenant administrator does, and is no user.
    pub fn system() -> Self {
        Self {
            user_id: Uuid::nil().into(),
            tenant_admin: true,
            ip: None,
        }
    }
}

impl PortfolioService {
    /// The stored metrics of a portfolio (needs `view`) from `from` to `to`
    /// (both included), oldest first.
    pub async fn daily_metrics(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyMetrics>, PortfolioError> {
        if from > to || (to - from).num_days() > MAX_METRIC_DAYS {
            return Err(PortfolioError::Invalid(
                "from must not be after to, at most twenty years apart".into(),
            ));
        }
        self.with_portfolio(tenant, actor, id, Access::View, async |conn, _| {
            use diesel_async::RunQueryDsl;
            use portfolio_metrics_daily as m;
            Ok(m::table
                .filter(m::portfolio_id.eq(id))
                .filter(m::date.between(from, to))
                .order(m::date)
                .select(DailyMetrics::as_select())
                .load(conn)
                .await?)
        })
        .await
    }

    /// Every symbol a live portfolio of the tenant holds, sorted: what the
    /// daily ingestion job keeps up to date.
    pub async fn held_symbols(&self, tenant: &TenantSlug) -> Result<Vec<String>, PortfolioError> {
        self.pool()
            .with_tenant(tenant, async |conn| {
                use diesel_async::RunQueryDsl;
                Ok(positions::table
                    .inner_join(portfolios::table)
                    .filter(portfolios::deleted_at.is_null())
                    .select(positions::symbol)
                    .distinct()
                    .order(positions::symbol)
                    .load(conn)
                    .await?)
            })
            .await
    }

    /// Every live portfolio of the tenant, by id: what the nightly job
    /// analyses (not a user-facing listing, which is [`Self::list`]).
    pub async fn portfolio_ids(
        &self,
        tenant: &TenantSlug,
    ) -> Result<Vec<PortfolioId>, PortfolioError> {
        self.pool()
            .with_tenant(tenant, async |conn| {
                use diesel_async::RunQueryDsl;
                Ok(portfolios::table
                    .filter(portfolios::deleted_at.is_null())
                    .order(portfolios::id)
                    .select(portfolios::id)
                    .load(conn)
                    .await?)
            })
            .await
    }
}
