//! [`PortfolioService`]: every operation, each in one tenant transaction.
use diesel::sql_types::{Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_tenancy::TenantPool;
use uuid::Uuid;

use crate::PortfolioError;
use crate::model::{
    Access, Activity, Actor, Comment, NewComment, NewPortfolio, Page, Portfolio, PortfolioDetail,
    PortfolioPatch, PositionInput, Share, ShareGrant, Version, check_currency, check_description,
    check_name, check_settings, check_weights,
};
use crate::rows::{
    ActivityRow, CommentRow, PORTFOLIO_COLUMNS, PORTFOLIO_FROM, PortfolioRow, ShareRow, VersionRow,
    commit_change, detail, insert_position, insert_version, portfolio_for, positions_of,
    record_activity,
};

/// Portfolios of every tenant, over a [`TenantPool`]: each call routes to
/// one tenant's schema, checks the caller's access and runs in one
/// transaction.
#[derive(Clone)]
pub struct PortfolioService {
    pool: TenantPool,
}

fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit.clamp(1, 100)).unwrap_or(100)
}

fn parse_cursor<T: std::str::FromStr>(after: Option<&str>) -> Result<Option<T>, PortfolioError> {
    after
        .map(|a| {
            a.parse()
                .map_err(|_| PortfolioError::Invalid("malformed cursor".into()))
        })
        .transpose()
}

fn to_json<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

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
        tenant: &str,
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
        if positions.len() > crate::transfer::MAX_ROWS {
            return Err(PortfolioError::TooLarge {
                limit: crate::transfer::MAX_ROWS,
                unit: "rows",
            });
        }
        self.pool
            .with_tenant(tenant, async |conn| {
                #[derive(diesel::QueryableByName)]
                struct Id {
                    #[diesel(sql_type = SqlUuid)]
                    id: Uuid,
                }
                let row: Id = diesel::sql_query(
                    "INSERT INTO portfolios (owner_id, name, description, base_currency, is_public, settings) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind::<SqlUuid, _>(actor.user_id)
                .bind::<Text, _>(new.name.trim())
                .bind::<Text, _>(&description)
                .bind::<Text, _>(&currency)
                .bind::<Bool, _>(new.is_public.unwrap_or(false))
                .bind::<Jsonb, _>(&settings)
                .get_result(conn)
                .await?;
                for p in &positions {
                    insert_position(conn, row.id, p).await?;
                }
                let p = portfolio_for(conn, actor, row.id, Access::Owner, false).await?;
                let d = detail(conn, p).await?;
                insert_version(conn, actor, &d, "create").await?;
                record_activity(conn, actor, row.id, "create", None, Some(crate::rows::snapshot(&d))).await?;
                Ok(d)
            })
            .await
    }

    /// Portfolios the actor may see (own, shared, public; all for a tenant
    /// administrator), by id, `limit` at a time after the cursor `after`.
    pub async fn list(
        &self,
        tenant: &str,
        actor: &Actor,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Portfolio>, PortfolioError> {
        let after: Option<Uuid> = parse_cursor(after)?;
        let limit = page_limit(limit);
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows: Vec<PortfolioRow> = diesel::sql_query(format!(
                    "SELECT {PORTFOLIO_COLUMNS} {PORTFOLIO_FROM} WHERE p.deleted_at IS NULL \
                     AND (p.owner_id = $1 OR s.user_id IS NOT NULL OR p.is_public OR $2) \
                     AND ($3::uuid IS NULL OR p.id > $3) ORDER BY p.id LIMIT $4"
                ))
                .bind::<SqlUuid, _>(actor.user_id)
                .bind::<Bool, _>(actor.tenant_admin)
                .bind::<Nullable<SqlUuid>, _>(after)
                .bind::<diesel::sql_types::BigInt, _>(limit + 1)
                .load(conn)
                .await?;
                let mut items: Vec<Portfolio> = rows
                    .into_iter()
                    .filter_map(|r| r.visible_to(actor))
                    .collect();
                let next = if items.len() > usize::try_from(limit).unwrap_or(100) {
                    items.pop();
                    items.last().map(|p| p.id.to_string())
                } else {
                    None
                };
                Ok(Page { items, next })
            })
            .await
    }

    /// One portfolio with its positions.
    pub async fn get(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
    ) -> Result<PortfolioDetail, PortfolioError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let p = portfolio_for(conn, actor, id, Access::View, false).await?;
                detail(conn, p).await
            })
            .await
    }

    /// Changes a portfolio's own fields (needs `edit`).
    pub async fn update(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
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
        self.pool
            .with_tenant(tenant, async |conn| {
                let p = portfolio_for(conn, actor, id, Access::Edit, true).await?;
                let before = to_json(&p);
                diesel::sql_query(
                    "UPDATE portfolios SET name = coalesce($2, name), description = coalesce($3, description), \
                     base_currency = coalesce($4, base_currency), is_public = coalesce($5, is_public), \
                     settings = coalesce($6, settings) WHERE id = $1",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<Nullable<Text>, _>(patch.name.as_deref().map(str::trim))
                .bind::<Nullable<Text>, _>(patch.description.as_deref())
                .bind::<Nullable<Text>, _>(currency.as_deref())
                .bind::<Nullable<Bool>, _>(patch.is_public)
                .bind::<Nullable<Jsonb>, _>(patch.settings.as_ref())
                .execute(conn)
                .await?;
                let after = portfolio_for(conn, actor, id, Access::View, false).await?;
                commit_change(conn, actor, &p, "update", before, to_json(&after)).await
            })
            .await
    }

    /// Deletes a portfolio (needs `admin`); it disappears from every list.
    pub async fn delete(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
    ) -> Result<(), PortfolioError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let p = portfolio_for(conn, actor, id, Access::Admin, true).await?;
                diesel::sql_query(
                    "UPDATE portfolios SET deleted_at = now(), updated_at = now() WHERE id = $1",
                )
                .bind::<SqlUuid, _>(id)
                .execute(conn)
                .await?;
                record_activity(conn, actor, id, "delete", to_json(&p), None).await
            })
            .await
    }

    /// Adds a position (needs `edit`).
    pub async fn add_position(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        input: PositionInput,
    ) -> Result<PortfolioDetail, PortfolioError> {
        let input = input.validated()?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let p = portfolio_for(conn, actor, id, Access::Edit, true).await?;
                let existing = positions_of(conn, id).await?;
                check_weights(
                    existing
                        .iter()
                        .map(|x| x.target_weight)
                        .chain([input.target_weight]),
                )?;
                let pid = insert_position(conn, id, &input).await?;
                let after = positions_of(conn, id)
                    .await?
                    .into_iter()
                    .find(|x| x.id == pid);
                commit_change(conn, actor, &p, "add_position", None, to_json(&after)).await
            })
            .await
    }

    /// Replaces a position (needs `edit`).
    pub async fn update_position(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        position_id: Uuid,
        input: PositionInput,
    ) -> Result<PortfolioDetail, PortfolioError> {
        let input = input.validated()?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let p = portfolio_for(conn, actor, id, Access::Edit, true).await?;
                let existing = positions_of(conn, id).await?;
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
                diesel::sql_query(
                    "UPDATE positions SET symbol = $3, allocation_type = $4, quantity = $5, target_weight = $6, \
                     purchase_price = $7, purchase_date = $8, sector = $9, notes = $10, updated_at = now() \
                     WHERE id = $2 AND portfolio_id = $1",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<SqlUuid, _>(position_id)
                .bind::<Text, _>(&input.symbol)
                .bind::<Text, _>(input.allocation_type.as_str())
                .bind::<Nullable<diesel::sql_types::Double>, _>(input.quantity)
                .bind::<Nullable<diesel::sql_types::Double>, _>(input.target_weight)
                .bind::<Nullable<diesel::sql_types::Double>, _>(input.purchase_price)
                .bind::<Nullable<diesel::sql_types::Date>, _>(input.purchase_date)
                .bind::<Nullable<Text>, _>(input.sector.as_deref())
                .bind::<Text, _>(input.notes.as_deref().unwrap_or(""))
                .execute(conn)
                .await?;
                let after = positions_of(conn, id).await?.into_iter().find(|x| x.id == position_id);
                commit_change(conn, actor, &p, "update_position", to_json(&before), to_json(&after)).await
            })
            .await
    }

    /// Removes a position (needs `edit`).
    pub async fn remove_position(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        position_id: Uuid,
    ) -> Result<PortfolioDetail, PortfolioError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let p = portfolio_for(conn, actor, id, Access::Edit, true).await?;
                let before = positions_of(conn, id)
                    .await?
                    .into_iter()
                    .find(|x| x.id == position_id)
                    .ok_or(PortfolioError::NotFound)?;
                diesel::sql_query("DELETE FROM positions WHERE id = $2 AND portfolio_id = $1")
                    .bind::<SqlUuid, _>(id)
                    .bind::<SqlUuid, _>(position_id)
                    .execute(conn)
                    .await?;
                commit_change(conn, actor, &p, "remove_position", to_json(&before), None).await
            })
            .await
    }

    /// Replaces or extends the positions in one change (used by CSV import).
    pub(crate) async fn apply_positions(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        positions: &[PositionInput],
        replace: bool,
    ) -> Result<PortfolioDetail, PortfolioError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let p = portfolio_for(conn, actor, id, Access::Edit, true).await?;
                let existing = positions_of(conn, id).await?;
                let kept: &[crate::Position] = if replace { &[] } else { &existing };
                check_weights(
                    kept.iter()
                        .map(|x| x.target_weight)
                        .chain(positions.iter().map(|x| x.target_weight)),
                )?;
                if replace {
                    diesel::sql_query("DELETE FROM positions WHERE portfolio_id = $1")
                        .bind::<SqlUuid, _>(id)
                        .execute(conn)
                        .await?;
                }
                for input in positions {
                    insert_position(conn, id, input).await?;
                }
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

    /// Versions, newest first (needs `view`); the cursor is a version number.
    pub async fn versions(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Version>, PortfolioError> {
        let after: Option<i32> = parse_cursor(after)?;
        let limit = page_limit(limit);
        self.pool
            .with_tenant(tenant, async |conn| {
                portfolio_for(conn, actor, id, Access::View, false).await?;
                let rows: Vec<VersionRow> = diesel::sql_query(
                    "SELECT version, snapshot, changed_by, change, created_at FROM portfolio_versions \
                     WHERE portfolio_id = $1 AND ($2::integer IS NULL OR version < $2) ORDER BY version DESC LIMIT $3",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<Nullable<Integer>, _>(after)
                .bind::<diesel::sql_types::BigInt, _>(limit + 1)
                .load(conn)
                .await?;
                let mut items: Vec<Version> = rows.into_iter().map(Version::from).collect();
                let next = if items.len() > usize::try_from(limit).unwrap_or(100) {
                    items.pop();
                    items.last().map(|v| v.version.to_string())
                } else {
                    None
                };
                Ok(Page { items, next })
            })
            .await
    }

    /// One version (needs `view`).
    pub async fn version(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        version: i32,
    ) -> Result<Version, PortfolioError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                portfolio_for(conn, actor, id, Access::View, false).await?;
                let rows: Vec<VersionRow> = diesel::sql_query(
                    "SELECT version, snapshot, changed_by, change, created_at FROM portfolio_versions \
                     WHERE portfolio_id = $1 AND version = $2",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<Integer, _>(version)
                .load(conn)
                .await?;
                rows.into_iter()
                    .next()
                    .map(Version::from)
                    .ok_or(PortfolioError::NotFound)
            })
            .await
    }

    /// Shares the portfolio with another user of the tenant, or changes an
    /// existing share (needs `admin`).
    pub async fn share(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        grant: ShareGrant,
    ) -> Result<Share, PortfolioError> {
        if grant.access == Access::Owner {
            return Err(PortfolioError::Invalid(
                "access: one of view, comment, edit, admin".into(),
            ));
        }
        if grant.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
            return Err(PortfolioError::Invalid("expires_at is in the past".into()));
        }
        self.pool
            .with_tenant(tenant, async |conn| {
                let p = portfolio_for(conn, actor, id, Access::Admin, true).await?;
                if grant.user_id == p.owner_id {
                    return Err(PortfolioError::Invalid("the owner needs no share".into()));
                }
                #[derive(diesel::QueryableByName)]
                struct Found {
                    #[diesel(sql_type = Bool)]
                    found: bool,
                }
                let user: Found = diesel::sql_query(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND status = 'active') AS found",
                )
                .bind::<SqlUuid, _>(grant.user_id)
                .get_result(conn)
                .await?;
                if !user.found {
                    return Err(PortfolioError::Invalid("user_id: no such user in this tenant".into()));
                }
                let before: Vec<ShareRow> = diesel::sql_query(
                    "SELECT user_id, access, granted_by, expires_at, created_at FROM portfolio_shares \
                     WHERE portfolio_id = $1 AND user_id = $2",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<SqlUuid, _>(grant.user_id)
                .load(conn)
                .await?;
                let before = before.into_iter().next().map(Share::from);
                let row: ShareRow = diesel::sql_query(
                    "INSERT INTO portfolio_shares (portfolio_id, user_id, access, granted_by, expires_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (portfolio_id, user_id) DO UPDATE \
                     SET access = EXCLUDED.access, granted_by = EXCLUDED.granted_by, expires_at = EXCLUDED.expires_at \
                     RETURNING user_id, access, granted_by, expires_at, created_at",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<SqlUuid, _>(grant.user_id)
                .bind::<Text, _>(grant.access.as_str())
                .bind::<SqlUuid, _>(actor.user_id)
                .bind::<Nullable<Timestamptz>, _>(grant.expires_at)
                .get_result(conn)
                .await?;
                let share = Share::from(row);
                record_activity(conn, actor, id, "share", before.as_ref().and_then(to_json), to_json(&share)).await?;
                Ok(share)
            })
            .await
    }

    /// Shares of the portfolio, expired ones included (needs `admin`).
    pub async fn shares(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
    ) -> Result<Vec<Share>, PortfolioError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                portfolio_for(conn, actor, id, Access::Admin, false).await?;
                let rows: Vec<ShareRow> = diesel::sql_query(
                    "SELECT user_id, access, granted_by, expires_at, created_at FROM portfolio_shares \
                     WHERE portfolio_id = $1 ORDER BY created_at, user_id",
                )
                .bind::<SqlUuid, _>(id)
                .load(conn)
                .await?;
                Ok(rows.into_iter().map(Share::from).collect())
            })
            .await
    }

    /// Revokes a share (needs `admin`).
    pub async fn revoke(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        user_id: Uuid,
    ) -> Result<(), PortfolioError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                portfolio_for(conn, actor, id, Access::Admin, true).await?;
                let rows: Vec<ShareRow> = diesel::sql_query(
                    "DELETE FROM portfolio_shares WHERE portfolio_id = $1 AND user_id = $2 \
                     RETURNING user_id, access, granted_by, expires_at, created_at",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<SqlUuid, _>(user_id)
                .load(conn)
                .await?;
                let gone = rows
                    .into_iter()
                    .next()
                    .map(Share::from)
                    .ok_or(PortfolioError::NotFound)?;
                record_activity(conn, actor, id, "revoke", to_json(&gone), None).await
            })
            .await
    }

    /// Adds a comment (needs `comment`).
    pub async fn comment(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        new: NewComment,
    ) -> Result<Comment, PortfolioError> {
        let body = new.body.trim().to_owned();
        if body.is_empty() || body.chars().count() > 5000 {
            return Err(PortfolioError::Invalid("body: 1-5000 characters".into()));
        }
        self.pool
            .with_tenant(tenant, async |conn| {
                portfolio_for(conn, actor, id, Access::Comment, false).await?;
                if let Some(parent) = new.parent_id {
                    let found: Vec<CommentRow> = diesel::sql_query(
                        "SELECT id, author_id, parent_id, body, created_at FROM portfolio_comments WHERE id = $1 AND portfolio_id = $2",
                    )
                    .bind::<SqlUuid, _>(parent)
                    .bind::<SqlUuid, _>(id)
                    .load(conn)
                    .await?;
                    if found.is_empty() {
                        return Err(PortfolioError::Invalid("parent_id: no such comment".into()));
                    }
                }
                let row: CommentRow = diesel::sql_query(
                    "INSERT INTO portfolio_comments (portfolio_id, author_id, parent_id, body) VALUES ($1, $2, $3, $4) \
                     RETURNING id, author_id, parent_id, body, created_at",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<SqlUuid, _>(actor.user_id)
                .bind::<Nullable<SqlUuid>, _>(new.parent_id)
                .bind::<Text, _>(&body)
                .get_result(conn)
                .await?;
                let comment = Comment::from(row);
                record_activity(conn, actor, id, "comment", None, to_json(&comment)).await?;
                Ok(comment)
            })
            .await
    }

    /// The comment thread, oldest first (needs `view`).
    pub async fn comments(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
    ) -> Result<Vec<Comment>, PortfolioError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                portfolio_for(conn, actor, id, Access::View, false).await?;
                let rows: Vec<CommentRow> = diesel::sql_query(
                    "SELECT id, author_id, parent_id, body, created_at FROM portfolio_comments \
                     WHERE portfolio_id = $1 ORDER BY created_at, id LIMIT 1000",
                )
                .bind::<SqlUuid, _>(id)
                .load(conn)
                .await?;
                Ok(rows.into_iter().map(Comment::from).collect())
            })
            .await
    }

    /// The activity trail, newest first (needs `view`); the cursor is an
    /// activity id.
    pub async fn activity(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Activity>, PortfolioError> {
        let after: Option<i64> = parse_cursor(after)?;
        let limit = page_limit(limit);
        self.pool
            .with_tenant(tenant, async |conn| {
                portfolio_for(conn, actor, id, Access::View, false).await?;
                let rows: Vec<ActivityRow> = diesel::sql_query(
                    "SELECT id, actor_id, action, before, after, ip, occurred_at FROM portfolio_activity \
                     WHERE portfolio_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<Nullable<diesel::sql_types::BigInt>, _>(after)
                .bind::<diesel::sql_types::BigInt, _>(limit + 1)
                .load(conn)
                .await?;
                let mut items: Vec<Activity> = rows.into_iter().map(Activity::from).collect();
                let next = if items.len() > usize::try_from(limit).unwrap_or(100) {
                    items.pop();
                    items.last().map(|a| a.id.to_string())
                } else {
                    None
                };
                Ok(Page { items, next })
            })
            .await
    }

    /// Runs `work` on a portfolio the actor may see with `needed` access.
    pub(crate) async fn with_portfolio<T, F>(
        &self,
        tenant: &str,
        actor: &Actor,
        id: Uuid,
        needed: Access,
        work: F,
    ) -> Result<T, PortfolioError>
    where
        F: AsyncFnOnce(&mut AsyncPgConnection, PortfolioDetail) -> Result<T, PortfolioError>,
    {
        self.pool
            .with_tenant(tenant, async |conn| {
                let p = portfolio_for(conn, actor, id, needed, false).await?;
                let d = detail(conn, p).await?;
                work(conn, d).await
            })
            .await
    }
}
