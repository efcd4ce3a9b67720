//! The GraphQL types, queries and mutations. Every resolver requires what
//! its REST route requires and calls the same crate service.
use async_graphql::connection::Connection;
use async_graphql::dataloader::DataLoader;
use async_graphql::{
    ComplexObject, Context, Enum, InputObject, Json, Object, Result, SimpleObject,
};
use chrono::{DateTime, NaiveDate, Utc};
use rampart_amount::to_f64;
use rampart_auth::Permission;
use rampart_portfolio::{
    Actor, Decimal, NewPortfolio, Portfolio, PortfolioDetail, PortfolioError, PortfolioPatch,
    PortfolioService, Position, PositionInput,
};
use rampart_tenancy::TenantSlug;
use uuid::Uuid;

use super::loaders::PositionsLoader;
use super::paging::{page_cost, page_reader, page_size};
use super::portfolio_fields::{self as fields, Access};
use super::tenant_fields as tenant;
use super::{OrGql, RequestCaller};
use crate::error::ApiError;
use crate::portfolio_analysis::AnalyticsQuery;

fn caller<'a>(ctx: &Context<'a>) -> Result<&'a RequestCaller> {
    ctx.data::<RequestCaller>()
}

// ------------------------------------------------------------ types

/// How a position is sized.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "rampart_portfolio::AllocationType")]
pub enum AllocationType {
    /// A number of units.
    Quantity,
    /// A fraction of the portfolio.
    Weight,
}

/// A portfolio the caller may see.
#[derive(SimpleObject)]
#[graphql(name = "Portfolio", complex)]
pub struct PortfolioNode {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    description: String,
    base_currency: String,
    is_public: bool,
    /// Free-form settings (JSON).
    settings: Json<serde_json::Value>,
    /// Current version (each change makes one).
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The caller's access.
    access: Access,
    /// Positions already loaded with the portfolio (a single read or a
    /// change); a list leaves them to the batched loader.
    #[graphql(skip)]
    loaded: Option<Vec<Position>>,
}

impl PortfolioNode {
    fn new(p: Portfolio, loaded: Option<Vec<Position>>) -> Self {
        PortfolioNode {
            id: p.id.into(),
            owner_id: p.owner_id.into(),
            name: p.name,
            description: p.description,
            base_currency: p.base_currency,
            is_public: p.is_public,
            settings: Json(p.settings),
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
            access: p.access.into(),
            loaded,
        }
    }
}

/// A listed portfolio: its positions left to the batched loader.
impl From<Portfolio> for PortfolioNode {
    fn from(p: Portfolio) -> Self {
        PortfolioNode::new(p, None)
    }
}

impl From<PortfolioDetail> for PortfolioNode {
    fn from(d: PortfolioDetail) -> Self {
        PortfolioNode::new(d.portfolio, Some(d.positions))
    }
}

#[ComplexObject]
impl PortfolioNode {
    /// Its positions, by symbol.
    async fn positions(&self, ctx: &Context<'_>) -> Result<Vec<PositionNode>> {
        let positions = match &self.loaded {
            Some(p) => p.clone(),
            None => ctx
                .data::<DataLoader<PositionsLoader>>()?
                .load_one(self.id.into())
                .await?
                .unwrap_or_default(),
        };
        Ok(positions.into_iter().map(PositionNode::from).collect())
    }

    /// Its versions, newest first; the cursor is a version number (as
    /// `GET …/versions`).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, fields::VersionNode>> {
        fields::versions(ctx, self.id, first, after).await
    }

    /// Who it is shared with (needs `admin` access, as `GET …/shares`).
    async fn shares(&self, ctx: &Context<'_>) -> Result<Vec<fields::ShareNode>> {
        fields::shares(ctx, self.id).await
    }

    /// The activity trail, newest first (as `GET …/activity`).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, fields::ActivityNode>> {
        fields::activity(ctx, self.id, first, after).await
    }

    /// The stored daily metrics, oldest first (needs `analytics:read`; as
    /// `GET …/metrics`: `to` defaults to today, `from` to a year earlier).
    async fn metrics(
        &self,
        ctx: &Context<'_>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<fields::DailyMetricsNode>> {
        fields::metrics(ctx, self.id, from, to).await
    }

    /// Where its charts are drawn (SVG; `analytics:read` to fetch them).
    async fn charts(&self, ctx: &Context<'_>) -> Result<tenant::ChartUrls> {
        tenant::chart_urls(ctx, self.id)
    }

    /// The analysis (needs `analytics:read`; as `GET …/analytics`: the
    /// window from the dates, or the data available; benchmark `^GSPC`).
    #[graphql(complexity = 50)]
    async fn analytics(
        &self,
        ctx: &Context<'_>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        benchmark: Option<String>,
    ) -> Result<fields::Analysis> {
        let query = AnalyticsQuery {
            from,
            to,
            benchmark,
        };
        fields::analytics(ctx, self.id, query).await
    }
}

/// A position of a portfolio. Amounts are exact decimals (as strings).
#[derive(SimpleObject)]
#[graphql(name = "Position")]
pub struct PositionNode {
    id: Uuid,
    symbol: String,
    allocation_type: AllocationType,
    quantity: Option<Decimal>,
    target_weight: Option<Decimal>,
    purchase_price: Option<Decimal>,
    purchase_date: Option<NaiveDate>,
    sector: Option<String>,
    notes: String,
}

impl From<Position> for PositionNode {
    fn from(p: Position) -> Self {
        PositionNode {
            id: p.id,
            symbol: p.symbol,
            allocation_type: p.allocation_type.into(),
            quantity: p.quantity,
            target_weight: p.target_weight,
            purchase_price: p.purchase_price,
            purchase_date: p.purchase_date,
            sector: p.sector,
            notes: p.notes,
        }
    }
}

/// The caller (as `GET …/me`).
#[derive(SimpleObject)]
pub struct Me {
    /// The user's profile.
    user: UserProfile,
    /// The role the credential carries.
    role: String,
    /// The scopes that restrict it, if any.
    scopes: Option<Vec<String>>,
    /// The OAuth client of the token, if any.
    client_id: Option<String>,
}

/// A user's profile.
#[derive(SimpleObject)]
pub struct UserProfile {
    id: Uuid,
    email: String,
    display_name: String,
    role: String,
    status: String,
    totp_enabled: bool,
}

/// Where a market answer came from and how old it is (as REST's
/// `source`, `origin`, `ageMs`, `stale`).
#[derive(SimpleObject)]
pub struct Provenance {
    /// Who served it (`{"layer": …, "provider": …}`).
    source: Json<serde_json::Value>,
    /// The provider that fetched it originally.
    origin: Option<String>,
    /// Milliseconds since it was fetched.
    age_ms: u64,
    /// True: every provider failed; a last known value.
    stale: bool,
}

impl Provenance {
    fn of<T>(served: &rampart_market::Served<T>) -> Result<Self> {
        Ok(Provenance {
            source: Json(
                serde_json::to_value(&served.source)
                    .map_err(|e| ApiError::internal(&e))
                    .gql()?,
            ),
            origin: served.origin.clone(),
            age_ms: u64::try_from(served.age.as_millis()).unwrap_or(u64::MAX),
            stale: served.stale,
        })
    }
}

/// A quote through the market chain (prices are GraphQL `Float`s: the
/// nearest double of the exact decimal, as the schema has always typed them).
#[derive(SimpleObject)]
pub struct Quote {
    symbol: String,
    price: f64,
    previous_close: Option<f64>,
    bid: Option<f64>,
    ask: Option<f64>,
    volume: Option<u64>,
    currency: Option<String>,
    as_of: DateTime<Utc>,
    provenance: Provenance,
}

/// A daily bar.
#[derive(SimpleObject)]
pub struct Bar {
    date: NaiveDate,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    adj_close: Option<f64>,
    volume: u64,
}

/// Daily bars of a symbol over a window.
#[derive(SimpleObject)]
pub struct Bars {
    symbol: String,
    from: NaiveDate,
    to: NaiveDate,
    bars: Vec<Bar>,
    provenance: Provenance,
}

/// The window a leaderboard ranks over.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "rampart_members::Period")]
pub enum Period {
    /// That day against the previous close.
    Day,
    /// The last 7 days.
    Week,
    /// The last 30 days.
    Month,
}

/// What a leaderboard ranks by.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "rampart_members::LeaderboardSort")]
pub enum LeaderboardSort {
    /// Relative return.
    Return,
    /// Profit and loss.
    Pnl,
}

/// One ranked member.
#[derive(SimpleObject)]
pub struct LeaderboardEntry {
    rank: i32,
    member_id: Uuid,
    name: String,
    equity: Decimal,
    pnl: Decimal,
    /// A ratio; none when the start equity was zero.
    return_pct: Option<f64>,
}

/// The first page of a leaderboard.
#[derive(SimpleObject)]
pub struct Leaderboard {
    /// The last day of the window (none before the first snapshot).
    as_of: Option<NaiveDate>,
    period: Period,
    sort: LeaderboardSort,
    entries: Vec<LeaderboardEntry>,
}

// ------------------------------------------------------------ inputs

/// A position to add or to put in place of one.
#[derive(InputObject)]
#[graphql(name = "PositionInput")]
pub struct PositionIn {
    symbol: String,
    allocation_type: Option<AllocationType>,
    quantity: Option<Decimal>,
    target_weight: Option<Decimal>,
    purchase_price: Option<Decimal>,
    purchase_date: Option<NaiveDate>,
    sector: Option<String>,
    notes: Option<String>,
}

impl From<PositionIn> for PositionInput {
    fn from(p: PositionIn) -> Self {
        PositionInput {
            symbol: p.symbol,
            allocation_type: p.allocation_type.map(Into::into).unwrap_or_default(),
            quantity: p.quantity,
            target_weight: p.target_weight,
            purchase_price: p.purchase_price,
            purchase_date: p.purchase_date,
            sector: p.sector,
            notes: p.notes,
        }
    }
}

/// A new portfolio.
#[derive(InputObject)]
#[graphql(name = "NewPortfolioInput")]
pub struct NewPortfolioIn {
    name: String,
    description: Option<String>,
    base_currency: Option<String>,
    is_public: Option<bool>,
    settings: Option<Json<serde_json::Value>>,
    #[graphql(default)]
    positions: Vec<PositionIn>,
}

impl From<NewPortfolioIn> for NewPortfolio {
    fn from(p: NewPortfolioIn) -> Self {
        NewPortfolio {
            name: p.name,
            description: p.description,
            base_currency: p.base_currency,
            is_public: p.is_public,
            settings: p.settings.map(|s| s.0),
            positions: p.positions.into_iter().map(Into::into).collect(),
        }
    }
}

/// Changes to a portfolio's own fields; absent ones stay.
#[derive(InputObject)]
#[graphql(name = "PortfolioPatchInput")]
pub struct PortfolioPatchIn {
    name: Option<String>,
    description: Option<String>,
    base_currency: Option<String>,
    is_public: Option<bool>,
    settings: Option<Json<serde_json::Value>>,
}

impl From<PortfolioPatchIn> for PortfolioPatch {
    fn from(p: PortfolioPatchIn) -> Self {
        PortfolioPatch {
            name: p.name,
            description: p.description,
            base_currency: p.base_currency,
            is_public: p.is_public,
            settings: p.settings.map(|s| s.0),
        }
    }
}

// ------------------------------------------------------------ queries

/// The queries.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The caller's profile (a user; as `GET …/me`).
    async fn me(&self, ctx: &Context<'_>) -> Result<Me> {
        let c = caller(ctx)?;
        let id = c.caller().user_id().gql()?;
        let user = c.state().auth.user(c.tenant(), id).await.gql()?;
        let p = &c.caller().principal;
        Ok(Me {
            user: UserProfile {
                id: user.id.into(),
                email: user.email,
                display_name: user.display_name,
                role: user.role,
                status: user.status,
                totp_enabled: user.totp_enabled,
            },
            role: p.role.as_str().to_owned(),
            scopes: p.scopes.clone(),
            client_id: p.client_id.clone(),
        })
    }

    /// Portfolios the caller may see (own, shared, public), by id; a page
    /// of `first` (1 to the configured cap) after the cursor `after`
    /// (needs `portfolio:read`, as `GET …/portfolios`).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn portfolios(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, PortfolioNode>> {
        let (c, actor, limit) = page_reader(ctx, first, Permission::PortfolioRead)?;
        let page = c
            .portfolios()
            .list(c.tenant(), &actor, after.as_deref(), limit)
            .await
            .gql()?;
        let cursor = |p: &Portfolio| p.id.to_string();
        Ok(fields::connection(after.as_deref(), page, cursor))
    }

    /// EPV valuation cases the caller may see (own, shared), by id (needs
    /// `portfolio:read`, as `GET …/cases`).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn cases(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, tenant::CaseNode>> {
        tenant::cases(ctx, first, after).await
    }

    /// One valuation case with its current inputs and valuation (as
    /// `GET …/cases/{id}`).
    async fn case(&self, ctx: &Context<'_>, id: Uuid) -> Result<tenant::CaseNode> {
        tenant::case(ctx, id).await
    }

    /// The tenant's members, by email (needs `users:manage`, as
    /// `GET …/admin/members`; broker keys never appear).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, tenant::MemberNode>> {
        tenant::members(ctx, first, after).await
    }

    /// One portfolio with its positions (as `GET …/portfolios/{id}`).
    async fn portfolio(&self, ctx: &Context<'_>, id: Uuid) -> Result<PortfolioNode> {
        let c = caller(ctx)?;
        let actor = c.portfolio_actor(Permission::PortfolioRead).gql()?;
        let d = c
            .portfolios()
            .get(c.tenant(), &actor, id.into())
            .await
            .gql()?;
        Ok(d.into())
    }

    /// A quote through the market chain (needs `market:read`).
    async fn quote(&self, ctx: &Context<'_>, symbol: String) -> Result<Quote> {
        let c = caller(ctx)?;
        c.require(Permission::MarketRead).gql()?;
        let symbol = normalized(&symbol)?;
        let served = c.state().market.quote(&symbol).await.gql()?;
        let provenance = Provenance::of(&served)?;
        let q = served.value;
        Ok(Quote {
            symbol: q.symbol,
            price: to_f64(q.price),
            previous_close: q.previous_close.map(to_f64),
            bid: q.bid.map(to_f64),
            ask: q.ask.map(to_f64),
            volume: q.volume,
            currency: q.currency,
            as_of: q.as_of,
            provenance,
        })
    }

    /// Daily bars through the market chain (needs `market:read`; as
    /// `GET …/bars/{symbol}`: `to` defaults to today, `from` to a year
    /// earlier, at most 30 years apart).
    async fn bars(
        &self,
        ctx: &Context<'_>,
        symbol: String,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Bars> {
        let c = caller(ctx)?;
        c.require(Permission::MarketRead).gql()?;
        let symbol = normalized(&symbol)?;
        let to = to.unwrap_or_else(|| Utc::now().date_naive());
        let from = from.unwrap_or(to - chrono::Duration::days(365));
        if from > to || (to - from).num_days() > 30 * 366 {
            return Err(ApiError::bad_request(
                "from must not be after to, at most 30 years apart",
            ))
            .gql();
        }
        let served = c.state().market.daily_bars(&symbol, from, to).await.gql()?;
        let provenance = Provenance::of(&served)?;
        let bars = served
            .value
            .into_iter()
            .map(|b| Bar {
                date: b.date,
                open: to_f64(b.open),
                high: to_f64(b.high),
                low: to_f64(b.low),
                close: to_f64(b.close),
                adj_close: b.adj_close.map(to_f64),
                volume: b.volume,
            })
            .collect();
        Ok(Bars {
            symbol,
            from,
            to,
            bars,
            provenance,
        })
    }

    /// The tenant's leaderboard, first page (needs `portfolio:read`).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn leaderboard(
        &self,
        ctx: &Context<'_>,
        period: Option<Period>,
        sort: Option<LeaderboardSort>,
        first: Option<i32>,
    ) -> Result<Leaderboard> {
        let c = caller(ctx)?;
        c.require(Permission::PortfolioRead).gql()?;
        let limit = page_size(ctx, first)?;
        let period = period
            .map(Into::into)
            .unwrap_or(rampart_members::Period::Day);
        let sort = sort.map(Into::into).unwrap_or_default();
        let page = rampart_members::Members::new(c.state().tenants.clone())
            .leaderboard(c.tenant(), period, sort, None, 0, limit)
            .await
            .gql()?;
        Ok(Leaderboard {
            as_of: page.as_of,
            period: page.period.into(),
            sort: page.sort.into(),
            entries: page
                .entries
                .into_iter()
                .map(|e| LeaderboardEntry {
                    rank: e.rank,
                    member_id: e.member_id.into(),
                    name: e.name,
                    equity: e.equity,
                    pnl: e.pnl,
                    return_pct: e.return_pct,
                })
                .collect(),
        })
    }
}

/// A symbol as the market routes normalize it (400 when malformed).
fn normalized(symbol: &str) -> Result<String> {
    rampart_market::model::normalize_symbol(symbol)
        .map_err(|_| ApiError::bad_request("malformed symbol"))
        .gql()
}

// ------------------------------------------------------------ mutations

/// The mutations: the portfolio and position changes of the REST API, each
/// needing `portfolio:write` and the portfolio access the crate checks.
pub struct MutationRoot;

/// The caller as a writer of portfolios (REST's `AsUser<perm::PortfolioWrite>`):
/// `portfolio:write`, a user, the actor and the service.
fn writer<'a>(ctx: &Context<'a>) -> Result<(&'a RequestCaller, Actor, PortfolioService)> {
    let c = caller(ctx)?;
    let actor = c.portfolio_actor(Permission::PortfolioWrite).gql()?;
    Ok((c, actor, c.portfolios()))
}

/// A change to a portfolio by the caller as a [`writer`]: `change` is given
/// the service, the tenant and the actor; the portfolio as the change
/// leaves it.
async fn changed<F>(ctx: &Context<'_>, change: F) -> Result<PortfolioNode>
where
    F: AsyncFnOnce(
        &PortfolioService,
        &TenantSlug,
        &Actor,
    ) -> Result<PortfolioDetail, PortfolioError>,
{
    let (c, actor, svc) = writer(ctx)?;
    let d = change(&svc, c.tenant(), &actor).await;
    Ok(d.gql()?.into())
}

#[Object]
impl MutationRoot {
    /// Creates a portfolio (version 1), as `POST …/portfolios`.
    async fn create_portfolio(
        &self,
        ctx: &Context<'_>,
        input: NewPortfolioIn,
    ) -> Result<PortfolioNode> {
        changed(ctx, async |svc, tenant, actor| {
            svc.create(tenant, actor, input.into()).await
        })
        .await
    }

    /// Renames or changes a portfolio (`edit`), as `PATCH …/portfolios/{id}`.
    async fn update_portfolio(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        input: PortfolioPatchIn,
    ) -> Result<PortfolioNode> {
        changed(ctx, async |svc, tenant, actor| {
            svc.update(tenant, actor, id.into(), input.into()).await
        })
        .await
    }

    /// Deletes a portfolio (`admin`); its id.
    async fn delete_portfolio(&self, ctx: &Context<'_>, id: Uuid) -> Result<Uuid> {
        let (c, actor, svc) = writer(ctx)?;
        svc.delete(c.tenant(), &actor, id.into()).await.gql()?;
        Ok(id)
    }

    /// Adds a position (`edit`); a new version.
    async fn add_position(
        &self,
        ctx: &Context<'_>,
        portfolio_id: Uuid,
        input: PositionIn,
    ) -> Result<PortfolioNode> {
        changed(ctx, async |svc, tenant, actor| {
            svc.add_position(tenant, actor, portfolio_id.into(), input.into())
                .await
        })
        .await
    }

    /// Replaces a position (`edit`); a new version.
    async fn update_position(
        &self,
        ctx: &Context<'_>,
        portfolio_id: Uuid,
        position_id: Uuid,
        input: PositionIn,
    ) -> Result<PortfolioNode> {
        changed(ctx, async |svc, tenant, actor| {
            svc.update_position(
                tenant,
                actor,
                portfolio_id.into(),
                position_id,
                input.into(),
            )
            .await
        })
        .await
    }

    /// Removes a position (`edit`); a new version.
    async fn remove_position(
        &self,
        ctx: &Context<'_>,
        portfolio_id: Uuid,
        position_id: Uuid,
    ) -> Result<PortfolioNode> {
        changed(ctx, async |svc, tenant, actor| {
            svc.remove_position(tenant, actor, portfolio_id.into(), position_id)
                .await
        })
        .await
    }
}
