//! Row shapes of the portfolio tables and the queries that read and write
//! them (typed by [`crate::schema`]).
use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::{PortfolioId, UserId};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::PortfolioError;
use crate::documents::{self, Kind, Need, OWNER, VIEW};
use crate::model::{Actor, AllocationType, Portfolio, PortfolioDetail, Position, PositionInput};
use crate::schema::{document_shares, portfolios, positions};

/// A portfolio row; the caller's access is resolved beside it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = portfolios, check_for_backend(Pg))]
pub(crate) struct PortfolioRow {
    id: PortfolioId,
    owner_id: UserId,
    name: String,
    description: String,
    base_currency: String,
    is_public: bool,
    settings: serde_json::Value,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Portfolios joined with the caller's unexpired share, if any.
#[diesel::dsl::auto_type(no_type_alias)]
fn with_caller_share(caller: Uuid) -> _ {
    portfolios::table.left_join(
        document_shares::table.on(document_shares::document_id
            .eq(portfolios::id)
            .and(document_shares::user_id.eq(caller))
            .and(
                document_shares::expires_at
                    .is_null()
                    .or(document_shares::expires_at.gt(now)),
            )),
    )
}

/// A portfolio row and the access level of the caller's share.
type VisibleRow = (PortfolioRow, Option<String>);

impl PortfolioRow {
    /// The portfolio with the caller's access, or `None` when the caller
    /// may not see it.
    fn visible_to(self, share: Option<String>, actor: &Actor) -> Option<Portfolio> {
        let access = documents::access_of(self.owner_id, share.as_deref(), actor, self.is_public);
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

/// Portfolios the actor may see (own, shared, public; all for a tenant
/// administrator), by id after `after`, at most `limit`.
pub(crate) async fn visible_portfolios(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Portfolio>, PortfolioError> {
    let mut query = with_caller_share(actor.user_id.into())
        .filter(portfolios::deleted_at.is_null())
        .select((
            PortfolioRow::as_select(),
            document_shares::access.nullable(),
        ))
        .order(portfolios::id)
        .limit(limit)
        .into_boxed();
    if !actor.tenant_admin {
        query = query.filter(
            portfolios::owner_id
                .eq(actor.user_id)
                .or(document_shares::user_id.nullable().is_not_null())
                .or(portfolios::is_public),
        );
    }
    if let Some(after) = after {
        query = query.filter(portfolios::id.gt(after));
    }
    let rows: Vec<VisibleRow> = query.load(conn).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(row, share)| row.visible_to(share, actor))
        .collect())
}

/// Portfolio `id` as `actor` sees it, once `actor` is found to have the
/// access `need` asks for (the row locked for the transaction when it says
/// so): how `PortfolioService` guards its portfolios (see
/// [`crate::Collaborative`]). `NotFound` when the actor may not see it,
/// `Forbidden` when the actor may see it but has less.
pub(crate) async fn allowed(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: PortfolioId,
    Need(needed, lock): Need,
) -> Result<Portfolio, PortfolioError> {
    if lock {
        // Locked on its own: `FOR UPDATE` may not cover the nullable side of
        // the share join below.
        portfolios::table
            .find(id)
            .select(portfolios::id)
            .for_update()
            .load::<Uuid>(conn)
            .await?;
    }
    let row: Option<VisibleRow> = with_caller_share(actor.user_id.into())
        .filter(portfolios::id.eq(id))
        .filter(portfolios::deleted_at.is_null())
        .select((
            PortfolioRow::as_select(),
            document_shares::access.nullable(),
        ))
        .first(conn)
        .await
        .optional()?;
    let portfolio = row
        .and_then(|(row, share)| row.visible_to(share, actor))
        .ok_or(PortfolioError::NotFound)?;
    documents::require(portfolio.access, needed)?;
    Ok(portfolio)
}

/// A new portfolio's own fields (its id is that of a new document, its
/// owner the actor).
#[derive(Insertable)]
#[diesel(table_name = portfolios)]
pub(crate) struct NewPortfolioRow<'a> {
    pub(crate) name: &'a str,
    pub(crate) description: &'a str,
    pub(crate) base_currency: &'a str,
    pub(crate) is_public: bool,
    pub(crate) settings: &'a serde_json::Value,
}

/// Creates a portfolio owned by the actor with its positions (version 1,
/// recorded as `change`); returns it as the owner sees it.
pub(crate) async fn create_portfolio(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    row: &NewPortfolioRow<'_>,
    positions: &[PositionInput],
    change: &str,
) -> Result<PortfolioDetail, PortfolioError> {
    let id = documents::insert(conn, Kind::Portfolio).await?;
    diesel::insert_into(portfolios::table)
        .values((
            portfolios::id.eq(id),
            portfolios::owner_id.eq(actor.user_id),
            row,
        ))
        .execute(conn)
        .await?;
    insert_positions(conn, id, positions).await?;
    let p = allowed(conn, actor, id.into(), OWNER).await?;
    let d = detail(conn, p).await?;
    insert_version(conn, actor, &d, change).await?;
    documents::record(conn, actor, id, change, None, Some(snapshot(&d))).await?;
    Ok(d)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = positions, check_for_backend(Pg))]
struct PositionRow {
    id: Uuid,
    symbol: String,
    allocation_type: String,
    quantity: Option<Decimal>,
    target_weight: Option<Decimal>,
    purchase_price: Option<Decimal>,
    purchase_date: Option<NaiveDate>,
    sector: Option<String>,
    notes: String,
}

/// A position's stored fields, to insert or to replace.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = positions, treat_none_as_null = true)]
struct PositionValues<'a> {
    symbol: &'a str,
    allocation_type: &'a str,
    quantity: Option<Decimal>,
    target_weight: Option<Decimal>,
    purchase_price: Option<Decimal>,
    purchase_date: Option<NaiveDate>,
    sector: Option<&'a str>,
    notes: &'a str,
}

impl<'a> From<&'a PositionInput> for PositionValues<'a> {
    fn from(p: &'a PositionInput) -> Self {
        PositionValues {
            symbol: &p.symbol,
            allocation_type: p.allocation_type.as_str(),
            quantity: p.quantity,
            target_weight: p.target_weight,
            purchase_price: p.purchase_price,
            purchase_date: p.purchase_date,
            sector: p.sector.as_deref(),
            notes: p.notes.as_deref().unwrap_or(""),
        }
    }
}

pub(crate) async fn positions_of(
    conn: &mut AsyncPgConnection,
    portfolio_id: PortfolioId,
) -> Result<Vec<Position>, PortfolioError> {
    let rows: Vec<PositionRow> = positions::table
        .filter(positions::portfolio_id.eq(portfolio_id))
        .order((positions::symbol, positions::created_at, positions::id))
        .select(PositionRow::as_select())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(PositionRow::into_position).collect())
}

impl PositionRow {
    fn into_position(self) -> Position {
        // `numeric(28, 10)` comes back with ten decimals; the value is the same.
        let exact = |d: Option<Decimal>| d.map(|d| d.normalize());
        Position {
            id: self.id,
            symbol: self.symbol,
            allocation_type: AllocationType::parse(&self.allocation_type).unwrap_or_default(),
            quantity: exact(self.quantity),
            target_weight: exact(self.target_weight),
            purchase_price: exact(self.purchase_price),
            purchase_date: self.purchase_date,
            sector: self.sector,
            notes: self.notes,
        }
    }
}

/// Of `ids`, the portfolios the actor may see (one statement).
pub(crate) async fn visible_among(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    ids: &[PortfolioId],
) -> Result<Vec<PortfolioId>, PortfolioError> {
    let rows: Vec<VisibleRow> = with_caller_share(actor.user_id.into())
        .filter(portfolios::id.eq_any(ids))
        .filter(portfolios::deleted_at.is_null())
        .select((
            PortfolioRow::as_select(),
            document_shares::access.nullable(),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(row, share)| row.visible_to(share, actor))
        .map(|p| p.id)
        .collect())
}

/// The positions of every portfolio of `ids` (one statement), each list
/// in the order of [`positions_of`]; a portfolio without positions has an
/// empty list.
pub(crate) async fn positions_of_all(
    conn: &mut AsyncPgConnection,
    ids: &[PortfolioId],
) -> Result<std::collections::HashMap<PortfolioId, Vec<Position>>, PortfolioError> {
    let rows: Vec<(PortfolioId, PositionRow)> = positions::table
        .filter(positions::portfolio_id.eq_any(ids))
        .order((
            positions::portfolio_id,
            positions::symbol,
            positions::created_at,
            positions::id,
        ))
        .select((positions::portfolio_id, PositionRow::as_select()))
        .load(conn)
        .await?;
    let mut by_portfolio: std::collections::HashMap<PortfolioId, Vec<Position>> =
        ids.iter().map(|id| (*id, Vec::new())).collect();
    for (portfolio, row) in rows {
        by_portfolio
            .entry(portfolio)
            .or_default()
            .push(row.into_position());
    }
    Ok(by_portfolio)
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

/// Inserts positions; returns their ids in order.
pub(crate) async fn insert_positions(
    conn: &mut AsyncPgConnection,
    portfolio_id: Uuid,
    inputs: &[PositionInput],
) -> Result<Vec<Uuid>, PortfolioError> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<_> = inputs
        .iter()
        .map(|p| {
            (
                positions::portfolio_id.eq(portfolio_id),
                PositionValues::from(p),
            )
        })
        .collect();
    Ok(diesel::insert_into(positions::table)
        .values(rows)
        .returning(positions::id)
        .get_results(conn)
        .await?)
}

/// Replaces every stored field of a position.
pub(crate) async fn replace_position(
    conn: &mut AsyncPgConnection,
    portfolio_id: Uuid,
    position_id: Uuid,
    input: &PositionInput,
) -> Result<(), PortfolioError> {
    diesel::update(
        positions::table
            .filter(positions::id.eq(position_id))
            .filter(positions::portfolio_id.eq(portfolio_id)),
    )
    .set((PositionValues::from(input), positions::updated_at.eq(now)))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes one position, or every position of the portfolio.
pub(crate) async fn delete_positions(
    conn: &mut AsyncPgConnection,
    portfolio_id: Uuid,
    position_id: Option<Uuid>,
) -> Result<usize, PortfolioError> {
    let mut query = diesel::delete(positions::table)
        .filter(positions::portfolio_id.eq(portfolio_id))
        .into_boxed();
    if let Some(position_id) = position_id {
        query = query.filter(positions::id.eq(position_id));
    }
    Ok(query.execute(conn).await?)
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
    diesel::update(portfolios::table.find(portfolio.id))
        .set((
            portfolios::version.eq(portfolios::version + 1),
            portfolios::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    let current = allowed(conn, actor, portfolio.id, VIEW).await?;
    let current = detail(conn, current).await?;
    insert_version(conn, actor, &current, action).await?;
    documents::record(conn, actor, portfolio.id.into(), action, before, after).await?;
    Ok(current)
}

/// Stores the portfolio's current version.
pub(crate) async fn insert_version(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    detail: &PortfolioDetail,
    action: &str,
) -> Result<(), PortfolioError> {
    let p = &detail.portfolio;
    documents::insert_version(
        conn,
        actor,
        p.id.into(),
        p.version,
        snapshot(detail),
        action,
    )
    .await
}
