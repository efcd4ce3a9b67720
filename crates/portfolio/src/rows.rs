//! Row shapes of the portfolio tables and the SQL that reads them.
use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::{
    BigInt, Bool, Date, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::PortfolioError;
use crate::model::{
    Access, Activity, Actor, AllocationType, Comment, Portfolio, PortfolioDetail, Position, Share,
    Version,
};

pub(crate) const PORTFOLIO_COLUMNS: &str = "p.id, p.owner_id, p.name, p.description, p.base_currency, p.is_public, p.settings, p.version, p.created_at, p.updated_at, \
     CASE WHEN p.owner_id = $1 THEN 'owner' ELSE s.access END AS granted";

/// Joins the caller's unexpired share; `$1` is the caller.
pub(crate) const PORTFOLIO_FROM: &str = "FROM portfolios p LEFT JOIN portfolio_shares s \
     ON s.portfolio_id = p.id AND s.user_id = $1 AND (s.expires_at IS NULL OR s.expires_at > now())";

#[derive(diesel::QueryableByName)]
pub(crate) struct PortfolioRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    owner_id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Text)]
    base_currency: String,
    #[diesel(sql_type = Bool)]
    is_public: bool,
    #[diesel(sql_type = Jsonb)]
    settings: serde_json::Value,
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    granted: Option<String>,
}

impl PortfolioRow {
    /// The portfolio with the caller's access, or `None` when the caller
    /// may not see it.
    pub(crate) fn visible_to(self, actor: &Actor) -> Option<Portfolio> {
        let mut access = self.granted.as_deref().and_then(Access::parse);
        if actor.tenant_admin {
            access = access.max(Some(Access::Admin));
        }
        if self.is_public {
            access = access.max(Some(Access::View));
        }
        Some(Portfolio {
            id: self.id,
            owner_id: self.owner_id,
            name: self.name,
            description: self.description,
            base_currency: self.base_currency,
            is_public: self.is_public,
            settings: self.settings,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            access: access?,
        })
    }
}

/// Loads a portfolio the caller may see, checking `needed`; `lock` takes a
/// row lock so concurrent changes get consecutive versions.
pub(crate) async fn portfolio_for(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    needed: Access,
    lock: bool,
) -> Result<Portfolio, PortfolioError> {
    let sql = format!(
        "SELECT {PORTFOLIO_COLUMNS} {PORTFOLIO_FROM} WHERE p.id = $2 AND p.deleted_at IS NULL{}",
        if lock { " FOR UPDATE OF p" } else { "" }
    );
    let rows: Vec<PortfolioRow> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(actor.user_id)
        .bind::<SqlUuid, _>(id)
        .load(conn)
        .await?;
    let portfolio = rows
        .into_iter()
        .next()
        .and_then(|r| r.visible_to(actor))
        .ok_or(PortfolioError::NotFound)?;
    if portfolio.access < needed {
        return Err(PortfolioError::Forbidden {
            needed: needed.as_str(),
        });
    }
    Ok(portfolio)
}

const POSITION_COLUMNS: &str = "id, symbol, allocation_type, quantity::float8 AS quantity, target_weight::float8 AS target_weight, \
     purchase_price::float8 AS purchase_price, purchase_date, sector, notes";

#[derive(diesel::QueryableByName)]
struct PositionRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    symbol: String,
    #[diesel(sql_type = Text)]
    allocation_type: String,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    quantity: Option<f64>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    target_weight: Option<f64>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    purchase_price: Option<f64>,
    #[diesel(sql_type = Nullable<Date>)]
    purchase_date: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    sector: Option<String>,
    #[diesel(sql_type = Text)]
    notes: String,
}

pub(crate) async fn positions_of(
    conn: &mut AsyncPgConnection,
    portfolio_id: Uuid,
) -> Result<Vec<Position>, PortfolioError> {
    let rows: Vec<PositionRow> = diesel::sql_query(format!(
        "SELECT {POSITION_COLUMNS} FROM positions WHERE portfolio_id = $1 ORDER BY symbol, created_at, id"
    ))
    .bind::<SqlUuid, _>(portfolio_id)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Position {
            id: r.id,
            symbol: r.symbol,
            allocation_type: AllocationType::parse(&r.allocation_type).unwrap_or_default(),
            quantity: r.quantity,
            target_weight: r.target_weight,
            purchase_price: r.purchase_price,
            purchase_date: r.purchase_date,
            sector: r.sector,
            notes: r.notes,
        })
        .collect())
}

pub(crate) async fn detail(
    conn: &mut AsyncPgConnection,
    portfolio: Portfolio,
) -> Result<PortfolioDetail, PortfolioError> {
    let positions = positions_of(conn, portfolio.id).await?;
    Ok(PortfolioDetail {
        portfolio,
        positions,
    })
}

/// Inserts a position; returns its id.
pub(crate) async fn insert_position(
    conn: &mut AsyncPgConnection,
    portfolio_id: Uuid,
    p: &crate::PositionInput,
) -> Result<Uuid, PortfolioError> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let row: Id = diesel::sql_query(
        "INSERT INTO positions (portfolio_id, symbol, allocation_type, quantity, target_weight, purchase_price, purchase_date, sector, notes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind::<SqlUuid, _>(portfolio_id)
    .bind::<Text, _>(&p.symbol)
    .bind::<Text, _>(p.allocation_type.as_str())
    .bind::<Nullable<diesel::sql_types::Double>, _>(p.quantity)
    .bind::<Nullable<diesel::sql_types::Double>, _>(p.target_weight)
    .bind::<Nullable<diesel::sql_types::Double>, _>(p.purchase_price)
    .bind::<Nullable<Date>, _>(p.purchase_date)
    .bind::<Nullable<Text>, _>(p.sector.as_deref())
    .bind::<Text, _>(p.notes.as_deref().unwrap_or(""))
    .get_result(conn)
    .await?;
    Ok(row.id)
}

/// The stored form of a portfolio (no caller-specific access).
pub(crate) fn snapshot(detail: &PortfolioDetail) -> serde_json::Value {
    let mut v = serde_json::to_value(detail).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("access");
    }
    v
}

/// Bumps the version, stores the snapshot, records the activity, and
/// returns the portfolio as it is now.
pub(crate) async fn commit_change(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    portfolio: &Portfolio,
    action: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<PortfolioDetail, PortfolioError> {
    diesel::sql_query(
        "UPDATE portfolios SET version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind::<SqlUuid, _>(portfolio.id)
    .execute(conn)
    .await?;
    let now = portfolio_for(conn, actor, portfolio.id, Access::View, false).await?;
    let now = detail(conn, now).await?;
    insert_version(conn, actor, &now, action).await?;
    record_activity(conn, actor, portfolio.id, action, before, after).await?;
    Ok(now)
}

pub(crate) async fn insert_version(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    detail: &PortfolioDetail,
    action: &str,
) -> Result<(), PortfolioError> {
    diesel::sql_query(
        "INSERT INTO portfolio_versions (portfolio_id, version, snapshot, changed_by, change) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<SqlUuid, _>(detail.portfolio.id)
    .bind::<Integer, _>(detail.portfolio.version)
    .bind::<Jsonb, _>(snapshot(detail))
    .bind::<SqlUuid, _>(actor.user_id)
    .bind::<Text, _>(action)
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn record_activity(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    portfolio_id: Uuid,
    action: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), PortfolioError> {
    diesel::sql_query(
        "INSERT INTO portfolio_activity (portfolio_id, actor_id, action, before, after, ip) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind::<SqlUuid, _>(portfolio_id)
    .bind::<SqlUuid, _>(actor.user_id)
    .bind::<Text, _>(action)
    .bind::<Nullable<Jsonb>, _>(before)
    .bind::<Nullable<Jsonb>, _>(after)
    .bind::<Nullable<Text>, _>(actor.ip.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
pub(crate) struct VersionRow {
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Jsonb)]
    snapshot: serde_json::Value,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    changed_by: Option<Uuid>,
    #[diesel(sql_type = Text)]
    change: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl From<VersionRow> for Version {
    fn from(r: VersionRow) -> Self {
        Version {
            version: r.version,
            snapshot: r.snapshot,
            changed_by: r.changed_by,
            change: r.change,
            created_at: r.created_at,
        }
    }
}

#[derive(diesel::QueryableByName)]
pub(crate) struct ShareRow {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Text)]
    access: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    granted_by: Option<Uuid>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl From<ShareRow> for Share {
    fn from(r: ShareRow) -> Self {
        Share {
            user_id: r.user_id,
            access: Access::parse(&r.access).unwrap_or(Access::View),
            granted_by: r.granted_by,
            expires_at: r.expires_at,
            created_at: r.created_at,
        }
    }
}

#[derive(diesel::QueryableByName)]
pub(crate) struct CommentRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    author_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    parent_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl From<CommentRow> for Comment {
    fn from(r: CommentRow) -> Self {
        Comment {
            id: r.id,
            author_id: r.author_id,
            parent_id: r.parent_id,
            body: r.body,
            created_at: r.created_at,
        }
    }
}

#[derive(diesel::QueryableByName)]
pub(crate) struct ActivityRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    actor_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    before: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    after: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Text>)]
    ip: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    occurred_at: DateTime<Utc>,
}

impl From<ActivityRow> for Activity {
    fn from(r: ActivityRow) -> Self {
        Activity {
            id: r.id,
            actor_id: r.actor_id,
            action: r.action,
            before: r.before,
            after: r.after,
            ip: r.ip,
            occurred_at: r.occurred_at,
        }
    }
}
