//! What portfolios and valuation cases share. Each is a *document*: a row of
//! `documents` with the same id, and that document's versions, shares within
//! the tenant, comment thread and activity trail. The services check the
//! caller's access to the portfolio or case first; these functions then read
//! and write the document's rows in the same transaction.
use chrono::{DateTime, Utc};
use diesel::dsl::exists;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use serde_json::Value;
use uuid::Uuid;

use crate::PortfolioError;
use crate::model::{
    Access, Activity, Actor, Comment, NewComment, Page, Share, ShareGrant, Version, paged,
};
use crate::schema::{
    document_activity as act, document_comments as com, document_shares as shr,
    document_versions as ver, documents,
};

pub(crate) mod sealed {
    use diesel_async::AsyncPgConnection;
    use rampart_tenancy::TenantPool;
    use uuid::Uuid;

    use crate::PortfolioError;
    use crate::model::{Access, Actor};

    /// The access a call needs, and whether it locks the document's row for
    /// its transaction (a change that depends on who owns or shares it).
    #[derive(Clone, Copy)]
    pub struct Need(pub Access, pub bool);

    /// What a kind of document tells [`super::Collaborative`] and
    /// [`super::guarded`]: where it is kept and how the caller's access to
    /// one is checked.
    pub trait Guarded {
        /// A document of this kind as a caller sees it.
        type Doc: Send;

        /// Its id as the service's API takes it (`PortfolioId` for
        /// portfolios, `Uuid` for cases).
        type Id: Copy + Send + Sync + Into<Uuid>;

        /// The pool the service routes through.
        fn tenants(&self) -> &TenantPool;

        /// Document `id` as `actor` sees it, once `actor` is found to have
        /// the access `need` asks for (the row locked for the transaction
        /// when it says so): `NotFound` when the actor may not see it,
        /// `Forbidden` when the actor may see it but has less.
        fn allowed(
            conn: &mut AsyncPgConnection,
            actor: &Actor,
            id: Self::Id,
            need: Need,
        ) -> impl Future<Output = Result<Self::Doc, PortfolioError>> + Send;

        /// The id of `doc`.
        fn id(doc: &Self::Doc) -> Uuid;

        /// Whose `doc` is.
        fn owner(doc: &Self::Doc) -> super::UserId;
    }
}

pub(crate) use sealed::{Guarded, Need};

/// Versions, shares, comments and the activity trail: what every document
/// (a portfolio, a valuation case) offers, each call in one tenant
/// transaction after the caller's access to the document is checked.
/// Implemented by [`crate::PortfolioService`] and [`crate::CaseService`];
/// bring it into scope to call these.
pub trait Collaborative: sealed::Guarded + Sync {
    /// Versions, newest first (needs `view`); the cursor is a version number.
    fn versions(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: Self::Id,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<Version>, PortfolioError>> + Send {
        let fetch = async move |after, count| {
            guarded(self, tenant, actor, id, VIEW, async |conn, _| {
                versions(conn, id.into(), after, count).await
            })
            .await
        };
        paged(after, limit, fetch, |v: &Version| v.version.to_string())
    }

    /// One version: the document as it was (needs `view`).
    fn version(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: Self::Id,
        number: i32,
    ) -> impl Future<Output = Result<Version, PortfolioError>> + Send {
        guarded(self, tenant, actor, id, VIEW, async move |conn, _| {
            version(conn, id.into(), number).await
        })
    }

    /// Shares the document with another user of the tenant, or changes the
    /// share (needs `admin`).
    fn share(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: Self::Id,
        grant: ShareGrant,
    ) -> impl Future<Output = Result<Share, PortfolioError>> + Send {
        async move {
            grant.check()?;
            guarded(self, tenant, actor, id, ADMIN_LOCKED, async |conn, doc| {
                share(conn, actor, id.into(), Self::owner(&doc), &grant).await
            })
            .await
        }
    }

    /// Shares of the document, expired ones included (needs `admin`).
    fn shares(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: Self::Id,
    ) -> impl Future<Output = Result<Vec<Share>, PortfolioError>> + Send {
        guarded(self, tenant, actor, id, ADMIN, async move |conn, _| {
            shares(conn, id.into()).await
        })
    }

    /// Revokes a share (needs `admin`).
    fn revoke(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: Self::Id,
        user_id: UserId,
    ) -> impl Future<Output = Result<(), PortfolioError>> + Send {
        guarded(
            self,
            tenant,
            actor,
            id,
            ADMIN_LOCKED,
            async move |conn, _| revoke(conn, actor, id.into(), user_id).await,
        )
    }

    /// Adds a comment (needs `comment`).
    fn comment(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: Self::Id,
        new: NewComment,
    ) -> impl Future<Output = Result<Comment, PortfolioError>> + Send {
        async move {
            new.checked_body()?;
            guarded(self, tenant, actor, id, COMMENT, async |conn, _| {
                comment(conn, actor, id.into(), &new).await
            })
            .await
        }
    }

    /// The comment thread, oldest first (needs `view`).
    fn comments(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: Self::Id,
    ) -> impl Future<Output = Result<Vec<Comment>, PortfolioError>> + Send {
        guarded(self, tenant, actor, id, VIEW, async move |conn, _| {
            comments(conn, id.into()).await
        })
    }

    /// The activity trail, newest first (needs `view`); the cursor is an
    /// activity id.
    fn activity(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: Self::Id,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<Activity>, PortfolioError>> + Send {
        let fetch = async move |after, count| {
            guarded(self, tenant, actor, id, VIEW, async |conn, _| {
                activity(conn, id.into(), after, count).await
            })
            .await
        };
        paged(after, limit, fetch, |a: &Activity| a.id.to_string())
    }
}

impl<T: sealed::Guarded + Sync> Collaborative for T {}

/// Reading a document.
pub(crate) const VIEW: Need = Need(Access::View, false);
/// Commenting on a document.
pub(crate) const COMMENT: Need = Need(Access::Comment, false);
/// Changing a document, its row locked so that concurrent changes get
/// consecutive versions.
pub(crate) const EDIT_LOCKED: Need = Need(Access::Edit, true);
/// Reading what only an administrator of the document may read.
pub(crate) const ADMIN: Need = Need(Access::Admin, false);
/// Changing who may see the document, or deleting it, its row locked.
pub(crate) const ADMIN_LOCKED: Need = Need(Access::Admin, true);
/// Reading a document just created by the actor.
pub(crate) const OWNER: Need = Need(Access::Owner, false);

/// `work` in one transaction of `tenant` once `actor` has what `need` asks
/// for on document `id` (see [`sealed::Guarded::allowed`]); `work` is
/// given the document as the actor sees it.
pub(crate) async fn guarded<S, T, W>(
    svc: &S,
    tenant: &TenantSlug,
    actor: &Actor,
    id: S::Id,
    need: Need,
    work: W,
) -> Result<T, PortfolioError>
where
    S: sealed::Guarded + ?Sized,
    W: AsyncFnOnce(&mut AsyncPgConnection, S::Doc) -> Result<T, PortfolioError>,
{
    svc.tenants()
        .with_tenant(tenant, async |conn| {
            let doc = S::allowed(conn, actor, id, need).await?;
            work(conn, doc).await
        })
        .await
}

/// A page of `svc`'s documents by id after the cursor `after` (see
/// [`paged`]), read in one transaction of `tenant` by `visible` (given the
/// id after which to start and how many to read; it leaves out those the
/// caller may not see).
pub(crate) async fn listed<S, V>(
    svc: &S,
    tenant: &TenantSlug,
    after: Option<&str>,
    limit: usize,
    visible: V,
) -> Result<Page<S::Doc>, PortfolioError>
where
    S: sealed::Guarded + ?Sized,
    V: AsyncFnOnce(
        &mut AsyncPgConnection,
        Option<Uuid>,
        i64,
    ) -> Result<Vec<S::Doc>, PortfolioError>,
{
    let fetch = async |after, count| {
        svc.tenants()
            .with_tenant(tenant, async |conn| visible(conn, after, count).await)
            .await
    };
    paged(after, limit, fetch, |doc| S::id(doc).to_string()).await
}

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Portfolio,
    ValuationCase,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Portfolio => "portfolio",
            Kind::ValuationCase => "valuation_case",
        }
    }
}

/// A new document of `kind`; the portfolio or case takes its id.
pub(crate) async fn insert(
    conn: &mut AsyncPgConnection,
    kind: Kind,
) -> Result<Uuid, PortfolioError> {
    let id = Uuid::new_v4();
    diesel::insert_into(documents::table)
        .values((documents::id.eq(id), documents::kind.eq(kind.as_str())))
        .execute(conn)
        .await?;
    Ok(id)
}

/// The caller's access to a document owned by `owner_id` through `share`
/// (the level of the caller's unexpired share, if any): the owner has
/// everything, a tenant administrator at least `admin`, anyone `view` of a
/// public one; `None` when the caller may not see it.
pub(crate) fn access_of(
    owner_id: UserId,
    share: Option<&str>,
    actor: &Actor,
    is_public: bool,
) -> Option<Access> {
    let mut access = if owner_id == actor.user_id {
        Some(Access::Owner)
    } else {
        share.and_then(Access::parse)
    };
    if actor.tenant_admin {
        access = access.max(Some(Access::Admin));
    }
    if is_public {
        access = access.max(Some(Access::View));
    }
    access
}

/// Refuses a caller whose `access` to a document is less than `needed`.
pub(crate) fn require(access: Access, needed: Access) -> Result<(), PortfolioError> {
    if access < needed {
        return Err(PortfolioError::Forbidden {
            needed: needed.as_str(),
        });
    }
    Ok(())
}

/// `v` as JSON for the activity trail.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Option<Value> {
    serde_json::to_value(v).ok()
}

/// Adds an entry to the document's activity trail and announces the
/// change on the tenant's change feed (topic [`crate::CHANGE_TOPIC`]), in
/// the same transaction: every change of a document (its fields,
/// positions, shares, comments, analyses) goes through here, so a replica
/// keying cached answers by the topic's generation never serves one from
/// before it.
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    action: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), PortfolioError> {
    diesel::insert_into(act::table)
        .values((
            act::document_id.eq(id),
            act::actor_id.eq(actor.user_id),
            act::action.eq(action),
            act::before.eq(before),
            act::after.eq(after),
            act::ip.eq(actor.ip.as_deref()),
        ))
        .execute(conn)
        .await?;
    rampart_tenancy::ChangeFeed::announce(conn, crate::CHANGE_TOPIC).await?;
    Ok(())
}

/// Stores version `version` of the document.
pub(crate) async fn insert_version(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    version: i32,
    snapshot: Value,
    change: &str,
) -> Result<(), PortfolioError> {
    diesel::insert_into(ver::table)
        .values((
            ver::document_id.eq(id),
            ver::version.eq(version),
            ver::snapshot.eq(snapshot),
            ver::changed_by.eq(actor.user_id),
            ver::change.eq(change),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Versions, newest first, at most `count` after the version number `after`.
async fn versions(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    after: Option<i32>,
    count: i64,
) -> Result<Vec<Version>, PortfolioError> {
    let mut query = ver::table
        .filter(ver::document_id.eq(id))
        .order(ver::version.desc())
        .limit(count)
        .select(VersionRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(ver::version.lt(after));
    }
    let rows: Vec<VersionRow> = query.load(conn).await?;
    Ok(rows.into_iter().map(Version::from).collect())
}

/// Every version, oldest first.
pub(crate) async fn all_versions(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Vec<Version>, PortfolioError> {
    let rows: Vec<VersionRow> = ver::table
        .filter(ver::document_id.eq(id))
        .order(ver::version)
        .select(VersionRow::as_select())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(Version::from).collect())
}

/// One version ([`PortfolioError::NotFound`] when there is none).
pub(crate) async fn version(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    version: i32,
) -> Result<Version, PortfolioError> {
    let row: Option<VersionRow> = ver::table
        .find((id, version))
        .select(VersionRow::as_select())
        .first(conn)
        .await
        .optional()?;
    row.map(Version::from).ok_or(PortfolioError::NotFound)
}

/// Shares the document owned by `owner_id` with another active user of the
/// tenant, or changes the share; recorded with the share before and after.
pub(crate) async fn share(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    owner_id: UserId,
    grant: &ShareGrant,
) -> Result<Share, PortfolioError> {
    if grant.user_id == owner_id {
        return Err(PortfolioError::Invalid("the owner needs no share".into()));
    }
    check_active_user(conn, grant.user_id).await?;
    let before: Option<ShareRow> = shr::table
        .find((id, grant.user_id))
        .select(ShareRow::as_select())
        .first(conn)
        .await
        .optional()?;
    let before = before.map(Share::from);
    let row: ShareRow = diesel::insert_into(shr::table)
        .values((
            shr::document_id.eq(id),
            shr::user_id.eq(grant.user_id),
            shr::access.eq(grant.access.as_str()),
            shr::granted_by.eq(actor.user_id),
            shr::expires_at.eq(grant.expires_at),
        ))
        .on_conflict((shr::document_id, shr::user_id))
        .do_update()
        .set((
            shr::access.eq(excluded(shr::access)),
            shr::granted_by.eq(excluded(shr::granted_by)),
            shr::expires_at.eq(excluded(shr::expires_at)),
        ))
        .returning(ShareRow::as_returning())
        .get_result(conn)
        .await?;
    let share = Share::from(row);
    let before = before.as_ref().and_then(to_json);
    record(conn, actor, id, "share", before, to_json(&share)).await?;
    Ok(share)
}

/// The document's shares, expired ones included.
pub(crate) async fn shares(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Vec<Share>, PortfolioError> {
    let rows: Vec<ShareRow> = shr::table
        .filter(shr::document_id.eq(id))
        .order((shr::created_at, shr::user_id))
        .select(ShareRow::as_select())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(Share::from).collect())
}

/// Revokes `user_id`'s share ([`PortfolioError::NotFound`] when none).
pub(crate) async fn revoke(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    user_id: UserId,
) -> Result<(), PortfolioError> {
    let gone: Option<ShareRow> = diesel::delete(shr::table.find((id, user_id)))
        .returning(ShareRow::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    let gone = gone.map(Share::from).ok_or(PortfolioError::NotFound)?;
    record(conn, actor, id, "revoke", to_json(&gone), None).await
}

/// Adds a comment (a reply when `parent_id` names a comment of the same
/// document).
pub(crate) async fn comment(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    new: &NewComment,
) -> Result<Comment, PortfolioError> {
    let body = new.checked_body()?;
    if let Some(parent) = new.parent_id {
        let found: bool = diesel::select(exists(
            com::table
                .filter(com::id.eq(parent))
                .filter(com::document_id.eq(id)),
        ))
        .get_result(conn)
        .await?;
        if !found {
            return Err(PortfolioError::Invalid("parent_id: no such comment".into()));
        }
    }
    let row: CommentRow = diesel::insert_into(com::table)
        .values((
            com::document_id.eq(id),
            com::author_id.eq(actor.user_id),
            com::parent_id.eq(new.parent_id),
            com::body.eq(&body),
        ))
        .returning(CommentRow::as_returning())
        .get_result(conn)
        .await?;
    let comment = Comment::from(row);
    record(conn, actor, id, "comment", None, to_json(&comment)).await?;
    Ok(comment)
}

/// The comment thread, oldest first (at most 1,000).
pub(crate) async fn comments(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Vec<Comment>, PortfolioError> {
    let rows: Vec<CommentRow> = com::table
        .filter(com::document_id.eq(id))
        .order((com::created_at, com::id))
        .limit(1000)
        .select(CommentRow::as_select())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(Comment::from).collect())
}

/// The activity trail, newest first, at most `count` after the activity id
/// `after`.
async fn activity(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    after: Option<i64>,
    count: i64,
) -> Result<Vec<Activity>, PortfolioError> {
    let mut query = act::table
        .filter(act::document_id.eq(id))
        .order(act::id.desc())
        .limit(count)
        .select(ActivityRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(act::id.lt(after));
    }
    let rows: Vec<ActivityRow> = query.load(conn).await?;
    Ok(rows.into_iter().map(Activity::from).collect())
}

/// What one user did to documents of `kind`, newest first, at most
/// `limit`: (document id, entry).
pub(crate) async fn activity_of_actor(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    user_id: UserId,
    limit: i64,
) -> Result<Vec<(Uuid, Activity)>, PortfolioError> {
    let rows: Vec<(Uuid, ActivityRow)> = act::table
        .inner_join(documents::table)
        .filter(documents::kind.eq(kind.as_str()))
        .filter(act::actor_id.eq(user_id))
        .order(act::id.desc())
        .limit(limit)
        .select((act::document_id, ActivityRow::as_select()))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, row)| (id, Activity::from(row)))
        .collect())
}

/// Refuses a user id that is not an active user of the tenant (a share's
/// grantee).
async fn check_active_user(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
) -> Result<(), PortfolioError> {
    let active = rampart_auth::directory::is_active(conn, user_id).await;
    if active.map_err(crate::error::from_auth)? {
        Ok(())
    } else {
        Err(PortfolioError::Invalid(
            "user_id: no such user in this tenant".into(),
        ))
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ver, check_for_backend(Pg))]
struct VersionRow {
    version: i32,
    snapshot: Value,
    changed_by: Option<Uuid>,
    change: String,
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

#[derive(Queryable, Selectable)]
#[diesel(table_name = shr, check_for_backend(Pg))]
struct ShareRow {
    user_id: UserId,
    access: String,
    granted_by: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
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

#[derive(Queryable, Selectable)]
#[diesel(table_name = com, check_for_backend(Pg))]
struct CommentRow {
    id: Uuid,
    author_id: Uuid,
    parent_id: Option<Uuid>,
    body: String,
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

#[derive(Queryable, Selectable)]
#[diesel(table_name = act, check_for_backend(Pg))]
struct ActivityRow {
    id: i64,
    actor_id: Option<Uuid>,
    action: String,
    before: Option<Value>,
    after: Option<Value>,
    ip: Option<String>,
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
