//! [`PortfolioService`]: every operation, each in one tenant transaction.
use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::{PortfolioId, UserId};
use rampart_tenancy::TenantPool;
use rampart_tenancy::TenantSlug;
use uuid::Uuid;

use crate::PortfolioError;
use crate::documents::{self, ADMIN_LOCKED, EDIT_LOCKED, Guarded, Need, VIEW, guarded, to_json};
use crate::model::{
    Access, Actor, NewPortfolio, Page, Portfolio, PortfolioDetail, PortfolioPatch, Position,
    PositionInput, check_currency, check_description, check_name, check_settings, check_weights,
};
use crate::rows::{
    NewPortfolioRow, commit_change, create_portfolio, delete_positions, detail, insert_positions,
    positions_of, positions_of_all, replace_position, visible_among, visible_portfolios,
};
use crate::schema::portfolios;

/// Portfolios of every tenant, over a [`TenantPool`]: each call routes to
/// one tenant's schema, checks the caller's access and runs in one
/// transaction.
#[derive(Clone)]
pub struct PortfolioService {
    pool: TenantPool,
}

/// Changes to a portfolio's own fields; `None` leaves a column as it is.
#[derive(AsChangeset)]
#[diesel(table_name = portfolios)]
struct PortfolioChanges<'a> {
    name: Option<&'a str>,
    description: Option<&'a str>,
    base_currency: Option<&'a str>,
    is_public: Option<bool>,
    settings: Option<&'a serde_json::Value>,
}

impl PortfolioChanges<'_> {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.base_currency.is_none()
            && self.is_public.is_none()
            && self.settings.is_none()
    }
}

/// Most portfolios of one [`PortfolioService::positions_of_many`] call.
pub(crate) const MAX_BATCH: usize = 1000;

impl PortfolioService {
    /// A service over `pool`.
    pub fn new(pool: TenantPool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &TenantPool {
        &self.pool
    }

    /// Creates a portfolio owned by the actor (version 1).
    pub async fn create(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        new: NewPortfolio,
    ) -> Result<PortfolioDetail, PortfolioError> {
        check_name(&new.name)?;
        let description = new.description.unwrap_or_default();
        check_description(&description)?;
        let currency = check_currency(new.base_currency.as_deref().unwrap_or("USD"))?;
        let settings = new.settings.unwrap_or_else(|| serde_json::json!({}));
        check_settings(&settings)?;
        let positions = new
            .positions
            .into_iter()
            .map(PositionInput::validated)
            .collect::<Result<Vec<_>, _>>()?;
        check_weights(positions.iter().map(|p| p.target_weight))?;
        if positions.len() > crate::import_report::MAX_ROWS {
            return Err(PortfolioError::TooLarge {
                limit: crate::import_report::MAX_ROWS,
                unit: "rows",
            });
        }
        self.pool
            .with_tenant(tenant, async |conn| {
                create_portfolio(
                    conn,
                    actor,
                    &NewPortfolioRow {
                        name: new.name.trim(),
                        description: &description,
                        base_currency: &currency,
                        is_public: new.is_public.unwrap_or(false),
                        settings: &settings,
                    },
                    &positions,
                    "create",
                )
                .await
            })
            .await
    }

    /// Portfolios the actor may see (own, shared, public; all for a tenant
    /// administrator), by id, `limit` at a time after the cursor `after`.
    pub async fn list(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Portfolio>, PortfolioError> {
        documents::listed(self, tenant, after, limit, async |conn, after, count| {
            visible_portfolios(conn, actor, after, count).await
        })
        .await
    }

    /// One portfolio with its positions.
    pub async fn get(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
    ) -> Result<PortfolioDetail, PortfolioError> {
        guarded(self, tenant, actor, id, VIEW, async |conn, p| {
            detail(conn, p).await
        })
        .await
    }

    /// The positions of the portfolios of `ids` the actor may see (needs
    /// `view` on each; the others are left out, as if they did not exist),
    /// by portfolio id, in two statements whatever the number of ids: for
    /// callers that batch (a GraphQL DataLoader listing N portfolios).
    pub async fn positions_of_many(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        ids: &[PortfolioId],
    ) -> Result<std::collections::HashMap<PortfolioId, Vec<crate::Position>>, PortfolioError> {
        if ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        if ids.len() > MAX_BATCH {
            return Err(PortfolioError::TooLarge {
                limit: MAX_BATCH,
                unit: "portfolios",
            });
        }
        self.pool
            .with_tenant(tenant, async |conn| {
                let visible = visible_among(conn, actor, ids).await?;
                positions_of_all(conn, &visible).await
            })
            .await
    }

    /// Changes a portfolio's own fields (needs `edit`).
    pub async fn update(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        patch: PortfolioPatch,
    ) -> Result<PortfolioDetail, PortfolioError> {
        if let Some(n) = &patch.name {
            check_name(n)?;
        }
        if let Some(d) = &patch.description {
            check_description(d)?;
        }
        let currency = patch
            .base_currency
            .as_deref()
            .map(check_currency)
            .transpose()?;
        if let Some(s) = &patch.settings {
            check_settings(s)?;
        }
        guarded(self, tenant, actor, id, EDIT_LOCKED, async |conn, p| {
            let before = to_json(&p);
            let changes = PortfolioChanges {
                name: patch.name.as_deref().map(str::trim),
                description: patch.description.as_deref(),
                base_currency: currency.as_deref(),
                is_public: patch.is_public,
                settings: patch.settings.as_ref(),
            };
            // An empty patch still makes a version, as it always did.
            if !changes.is_empty() {
                diesel::update(portfolios::table.find(id))
                    .set(&changes)
                    .execute(conn)
                    .await?;
            }
            let after = Self::allowed(conn, actor, id, VIEW).await?;
            commit_change(conn, actor, &p, "update", before, to_json(&after)).await
        })
        .await
    }

    /// Deletes a portfolio (needs `admin`); it disappears from every list.
    pub async fn delete(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
    ) -> Result<(), PortfolioError> {
        guarded(self, tenant, actor, id, ADMIN_LOCKED, async |conn, p| {
            diesel::update(portfolios::table.find(id))
                .set((
                    portfolios::deleted_at.eq(now),
                    portfolios::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            documents::record(conn, actor, id.into(), "delete", to_json(&p), None).await
        })
        .await
    }

    /// Adds a position (needs `edit`).
    pub async fn add_position(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        input: PositionInput,
    ) -> Result<PortfolioDetail, PortfolioError> {
        let input = input.validated()?;
        self.edit_positions(tenant, actor, id, async |conn, p, existing| {
            check_weights(
                existing
                    .iter()
                    .map(|x| x.target_weight)
                    .chain([input.target_weight]),
            )?;
            let pid = insert_positions(conn, id.into(), std::slice::from_ref(&input))
                .await?
                .into_iter()
                .next();
            let after = positions_of(conn, id)
                .await?
                .into_iter()
                .find(|x| Some(x.id) == pid);
            commit_change(conn, actor, &p, "add_position", None, to_json(&after)).await
        })
        .await
    }

    /// Replaces a position (needs `edit`).
    pub async fn update_position(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        position_id: Uuid,
        input: PositionInput,
    ) -> Result<PortfolioDetail, PortfolioError> {
        let input = input.validated()?;
        self.edit_positions(tenant, actor, id, async |conn, p, existing| {
            let before = existing
                .iter()
                .find(|x| x.id == position_id)
                .cloned()
                .ok_or(PortfolioError::NotFound)?;
            check_weights(
                existing
                    .iter()
                    .filter(|x| x.id != position_id)
                    .map(|x| x.target_weight)
                    .chain([input.target_weight]),
            )?;
            replace_position(conn, id.into(), position_id, &input).await?;
            let after = positions_of(conn, id)
                .await?
                .into_iter()
                .find(|x| x.id == position_id);
            commit_change(
                conn,
                actor,
                &p,
                "update_position",
                to_json(&before),
                to_json(&after),
            )
            .await
        })
        .await
    }

    /// Removes a position (needs `edit`).
    pub async fn remove_position(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        position_id: Uuid,
    ) -> Result<PortfolioDetail, PortfolioError> {
        self.edit_positions(tenant, actor, id, async |conn, p, existing| {
            let before = existing
                .into_iter()
                .find(|x| x.id == position_id)
                .ok_or(PortfolioError::NotFound)?;
            delete_positions(conn, id.into(), Some(position_id)).await?;
            commit_change(conn, actor, &p, "remove_position", to_json(&before), None).await
        })
        .await
    }

    /// Replaces or extends the positions in one change (used by CSV import).
    pub(crate) async fn apply_positions(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        positions: &[PositionInput],
        replace: bool,
    ) -> Result<PortfolioDetail, PortfolioError> {
        self.edit_positions(tenant, actor, id, async |conn, p, existing| {
            let kept: &[Position] = if replace { &[] } else { &existing };
            check_weights(
                kept.iter()
                    .map(|x| x.target_weight)
                    .chain(positions.iter().map(|x| x.target_weight)),
            )?;
            if replace {
                delete_positions(conn, id.into(), None).await?;
            }
            insert_positions(conn, id.into(), positions).await?;
            let after = positions_of(conn, id).await?;
            commit_change(
                conn,
                actor,
                &p,
                if replace {
                    "import_replace"
                } else {
                    "import_append"
                },
                to_json(&existing),
                to_json(&after),
            )
            .await
        })
        .await
    }

    /// Runs `change` in one transaction on a portfolio the actor may edit
    /// (its row locked, so concurrent changes get consecutive versions),
    /// given the portfolio and its positions as they are before the change.
    async fn edit_positions<F>(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        change: F,
    ) -> Result<PortfolioDetail, PortfolioError>
    where
        F: AsyncFnOnce(
            &mut AsyncPgConnection,
            Portfolio,
            Vec<Position>,
        ) -> Result<PortfolioDetail, PortfolioError>,
    {
        guarded(self, tenant, actor, id, EDIT_LOCKED, async |conn, p| {
            let existing = positions_of(conn, id).await?;
            change(conn, p, existing).await
        })
        .await
    }

    /// Runs `work` on a portfolio the actor may see with `needed` access.
    pub(crate) async fn with_portfolio<T, F>(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        needed: Access,
        work: F,
    ) -> Result<T, PortfolioError>
    where
        F: AsyncFnOnce(&mut AsyncPgConnection, PortfolioDetail) -> Result<T, PortfolioError>,
    {
        guarded(
            self,
            tenant,
            actor,
            id,
            Need(needed, false),
            async |conn, p| {
                let d = detail(conn, p).await?;
                work(conn, d).await
            },
        )
        .await
    }
}

/// How [`PortfolioService`] guards its portfolios (see
/// [`crate::Collaborative`]): a portfolio the caller may see, checked for
/// the access needed ([`rows::allowed`]).
impl crate::documents::Guarded for PortfolioService {
    type Doc = Portfolio;
    type Id = PortfolioId;

    fn tenants(&self) -> &TenantPool {
        self.pool()
    }

    async fn allowed(
        conn: &mut AsyncPgConnection,
        actor: &Actor,
        id: PortfolioId,
        need: crate::documents::Need,
    ) -> Result<Portfolio, PortfolioError> {
        crate::rows::allowed(conn, actor, id, need).await
    }

    fn id(portfolio: &Portfolio) -> Uuid {
        portfolio.id.into()
    }

    fn owner(portfolio: &Portfolio) -> UserId {
        portfolio.owner_id
    }
}
