//! The fields of `Portfolio` beyond its own columns and positions: versions,
//! shares, activity, stored metrics and the analysis, each requiring what
//! its REST route requires (`portfolio:read`, or `analytics:read` for
//! metrics and analytics) and calling the same crate service
//! ([`PortfolioService`], [`crate::portfolio_analysis::run_analysis`]); the
//! crate checks the caller's access to the portfolio (shares: `admin`).
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, Json, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use rampart_auth::Permission;
use rampart_portfolio::{Activity, Collaborative, DailyMetrics, NavPoint, Page, Share, Version};
use uuid::Uuid;

use super::paging::page_reader;
use super::{OrGql, RequestCaller};
use crate::error::ApiError;
use crate::portfolio_analysis::{AnalyticsQuery, run_analysis};

/// A caller's access to a portfolio, weakest first.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "rampart_portfolio::Access")]
pub enum Access {
    /// Read it, its versions, activity and comments.
    View,
    /// And comment.
    Comment,
    /// And change it and its positions.
    Edit,
    /// And share, revoke and delete.
    Admin,
    /// The owner.
    Owner,
}

/// A version of a portfolio (as `GET …/versions`).
#[derive(SimpleObject)]
pub struct VersionNode {
    version: i32,
    /// The portfolio with its positions as they were (JSON).
    snapshot: Json<serde_json::Value>,
    changed_by: Option<Uuid>,
    /// `create`, `update`, `add_position`, …
    change: String,
    created_at: DateTime<Utc>,
}

/// A share of a portfolio with a user of the tenant.
#[derive(SimpleObject)]
pub struct ShareNode {
    user_id: Uuid,
    access: Access,
    granted_by: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// An entry of a portfolio's activity trail.
#[derive(SimpleObject)]
pub struct ActivityNode {
    /// Sequence number (increasing).
    id: i64,
    actor_id: Option<Uuid>,
    action: String,
    /// State before (JSON; none for a creation).
    before: Option<Json<serde_json::Value>>,
    /// State after (JSON; none for a deletion).
    after: Option<Json<serde_json::Value>>,
    ip: Option<String>,
    occurred_at: DateTime<Utc>,
}

/// A stored day of a portfolio's metrics (as `GET …/metrics`).
#[derive(SimpleObject)]
pub struct DailyMetricsNode {
    date: NaiveDate,
    nav: f64,
    daily_return: Option<f64>,
    cumulative_return: Option<f64>,
    volatility_30d: Option<f64>,
    max_drawdown: Option<f64>,
}

/// A point of the NAV series of an analysis.
#[derive(SimpleObject)]
pub struct NavPointNode {
    date: NaiveDate,
    nav: f64,
    flow: f64,
    daily_return: Option<f64>,
    cumulative_return: f64,
    volatility_30d: Option<f64>,
    max_drawdown: f64,
}

/// The window an analysis covers.
#[derive(SimpleObject)]
pub struct AnalysisWindow {
    from: NaiveDate,
    to: NaiveDate,
    /// `requested` or `available-data`.
    basis: String,
}

/// A portfolio's analysis (as `GET …/analytics`): the report, the series
/// and the window.
#[derive(SimpleObject)]
pub struct Analysis {
    /// Performance (TWR, MWR), risk (volatility, Sharpe, Sortino, max
    /// drawdown, beta, VaR/CVaR), allocation, rebalancing (JSON, as REST's
    /// `report`).
    report: Json<serde_json::Value>,
    series: Vec<NavPointNode>,
    window: AnalysisWindow,
}

/// A Relay connection of a crate page; each edge's cursor by `cursor`.
pub fn connection<T, N: async_graphql::OutputType + From<T>>(
    after: Option<&str>,
    page: Page<T>,
    cursor: impl Fn(&T) -> String,
) -> Connection<String, N> {
    let mut c = Connection::new(after.is_some(), page.next.is_some());
    c.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(cursor(&item), N::from(item))),
    );
    c
}

impl From<Version> for VersionNode {
    fn from(v: Version) -> Self {
        VersionNode {
            version: v.version,
            snapshot: Json(v.snapshot),
            changed_by: v.changed_by,
            change: v.change,
            created_at: v.created_at,
        }
    }
}

impl From<Activity> for ActivityNode {
    fn from(a: Activity) -> Self {
        ActivityNode {
            id: a.id,
            actor_id: a.actor_id,
            action: a.action,
            before: a.before.map(Json),
            after: a.after.map(Json),
            ip: a.ip,
            occurred_at: a.occurred_at,
        }
    }
}

/// `versions(first, after)`.
pub async fn versions(
    ctx: &Context<'_>,
    id: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, VersionNode>> {
    let (c, actor, limit) = page_reader(ctx, first, Permission::PortfolioRead)?;
    let svc = c.portfolios();
    let page = svc.versions(c.tenant(), &actor, id.into(), after.as_deref(), limit);
    let cursor = |v: &Version| v.version.to_string();
    Ok(connection(after.as_deref(), page.await.gql()?, cursor))
}

/// `shares`.
pub async fn shares(ctx: &Context<'_>, id: Uuid) -> Result<Vec<ShareNode>> {
    let c = ctx.data::<RequestCaller>()?;
    let actor = c.portfolio_actor(Permission::PortfolioRead).gql()?;
    let shares = c
        .portfolios()
        .shares(c.tenant(), &actor, id.into())
        .await
        .gql()?;
    Ok(shares
        .into_iter()
        .map(|s: Share| ShareNode {
            user_id: s.user_id.into(),
            access: s.access.into(),
            granted_by: s.granted_by,
            expires_at: s.expires_at,
            created_at: s.created_at,
        })
        .collect())
}

/// `activity(first, after)`.
pub async fn activity(
    ctx: &Context<'_>,
    id: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, ActivityNode>> {
    let (c, actor, limit) = page_reader(ctx, first, Permission::PortfolioRead)?;
    let svc = c.portfolios();
    let page = svc.activity(c.tenant(), &actor, id.into(), after.as_deref(), limit);
    let cursor = |a: &Activity| a.id.to_string();
    Ok(connection(after.as_deref(), page.await.gql()?, cursor))
}

/// `metrics(from, to)`: the stored days (as `GET …/metrics`: `to` defaults
/// to today, `from` to 365 days earlier).
pub async fn metrics(
    ctx: &Context<'_>,
    id: Uuid,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<DailyMetricsNode>> {
    let c = ctx.data::<RequestCaller>()?;
    let actor = c.portfolio_actor(Permission::AnalyticsRead).gql()?;
    let to = to.unwrap_or_else(|| Utc::now().date_naive());
    let from = from.unwrap_or(to - chrono::Duration::days(365));
    let svc = c.portfolios();
    let days = svc.daily_metrics(c.tenant(), &actor, id.into(), from, to);
    Ok(days
        .await
        .gql()?
        .into_iter()
        .map(|d: DailyMetrics| DailyMetricsNode {
            date: d.date,
            nav: d.nav,
            daily_return: d.daily_return,
            cumulative_return: d.cumulative_return,
            volatility_30d: d.volatility_30d,
            max_drawdown: d.max_drawdown,
        })
        .collect())
}

/// `analytics(from, to, benchmark)`: the analysis REST's `…/analytics` runs.
pub async fn analytics(ctx: &Context<'_>, id: Uuid, query: AnalyticsQuery) -> Result<Analysis> {
    let c = ctx.data::<RequestCaller>()?;
    let actor = c.portfolio_actor(Permission::AnalyticsRead).gql()?;
    query.window().gql()?;
    let (series, report, window) = run_analysis(c.state(), c.tenant(), &actor, id, &query)
        .await
        .gql()?;
    let report = serde_json::to_value(&report)
        .map_err(|e| ApiError::internal(&e))
        .gql()?;
    Ok(Analysis {
        report: Json(report),
        series: series
            .into_iter()
            .map(|p: NavPoint| NavPointNode {
                date: p.date,
                nav: p.nav,
                flow: p.flow,
                daily_return: p.daily_return,
                cumulative_return: p.cumulative_return,
                volatility_30d: p.volatility_30d,
                max_drawdown: p.max_drawdown,
            })
            .collect(),
        window: AnalysisWindow {
            from: window.from,
            to: window.to,
            basis: window.basis.to_owned(),
        },
    })
}
