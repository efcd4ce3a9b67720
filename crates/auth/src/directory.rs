//! What other crates read or change of this crate's `users` and `sessions`
//! tables, on a connection of their own transaction: the mail and alert
//! flows of rampart-notify lock, read and update a user in the same
//! transaction as their own rows, so these take `&mut AsyncPgConnection`
//! (already routed to one tenant by `TenantPool::with_tenant`) instead of a
//! tenant. The tables stay this crate's: no other crate names their columns.
//! rampart-members manages its members (the tenant's people) through the
//! account functions here, and its leaderboard flag, a column of `users`,
//! through [`set_leaderboard_opt_out`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable,
    SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::UserId;
use uuid::Uuid;

use crate::error::AuthError;
use crate::schema::{lower, sessions, user_flags, users};

/// A user to write to: id and e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The user.
    pub id: UserId,
    /// The login address.
    pub email: String,
}

/// A login session as a new-device check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStart {
    /// The session.
    pub id: Uuid,
    /// Whose it is.
    pub user_id: UserId,
    /// The address it came from.
    pub ip: Option<String>,
    /// The user agent it came with.
    pub user_agent: Option<String>,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// The user's login address.
    pub email: String,
}

/// Whether `id` is an active user of the tenant.
pub async fn is_active(conn: &mut AsyncPgConnection, id: UserId) -> Result<bool, AuthError> {
    Ok(diesel::select(diesel::dsl::exists(
        users::table.find(id).filter(users::status.eq("active")),
    ))
    .get_result(conn)
    .await?)
}

/// The address of `id` if the account is not disabled and its address not
/// yet verified (whom a verification link may go to).
pub async fn unverified_contact(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> Result<Option<Contact>, AuthError> {
    let email: Option<String> = users::table
        .find(id)
        .filter(users::status.ne("disabled"))
        .filter(users::email_verified.eq(false))
        .select(users::email)
        .first(conn)
        .await
        .optional()?;
    Ok(email.map(|email| Contact { id, email }))
}

/// The active account whose (lower-cased) address is `email`.
pub async fn active_contact_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> Result<Option<Contact>, AuthError> {
    let row: Option<(UserId, String)> = users::table
        .filter(lower(users::email).eq(email))
        .filter(users::status.eq("active"))
        .select((users::id, users::email))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(id, email)| Contact { id, email }))
}

/// The addresses of those of `ids` whose accounts are active.
pub async fn active_addresses(
    conn: &mut AsyncPgConnection,
    ids: &[UserId],
) -> Result<HashMap<UserId, String>, AuthError> {
    let rows: Vec<(UserId, String)> = users::table
        .filter(users::id.eq_any(ids))
        .filter(users::status.eq("active"))
        .select((users::id, users::email))
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Locks the row of `id` until the transaction ends (serializes what one
/// user does elsewhere, e.g. creations under a per-user limit). Whether the
/// user exists.
pub async fn lock_user(conn: &mut AsyncPgConnection, id: UserId) -> Result<bool, AuthError> {
    let found: Option<UserId> = users::table
        .find(id)
        .select(users::id)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// Marks the address of `id` verified if it is still `email` (compared
/// case-insensitively). Whether it was.
pub async fn mark_email_verified(
    conn: &mut AsyncPgConnection,
    id: UserId,
    email: &str,
) -> Result<bool, AuthError> {
    let n = diesel::update(
        users::table
            .find(id)
            .filter(lower(users::email).eq(lower(email))),
    )
    .set((users::email_verified.eq(true), users::updated_at.eq(now)))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Sets the password hash of the active account `id` (a reset: the failure
/// count and any lockout end with it). Whether the account was active. The
/// hash comes from [`crate::AuthServer::hasher`].
pub async fn reset_password_hash(
    conn: &mut AsyncPgConnection,
    id: UserId,
    hash: &str,
) -> Result<bool, AuthError> {
    let n = diesel::update(users::table.find(id).filter(users::status.eq("active")))
        .set((
            users::password_hash.eq(hash),
            users::password_changed_at.eq(now),
            users::updated_at.eq(now),
            users::failed_password_count.eq(0),
            users::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Sessions begun after `since`, oldest first, at most `limit`, leaving out
/// those in `seen`, each with its user's address.
pub async fn sessions_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
    seen: &[Uuid],
    limit: i64,
) -> Result<Vec<SessionStart>, AuthError> {
    type Row = (
        Uuid,
        UserId,
        Option<String>,
        Option<String>,
        DateTime<Utc>,
        String,
    );
    let rows: Vec<Row> = sessions::table
        .inner_join(users::table)
        .filter(
            sessions::created_at
                .gt(since)
                .and(sessions::id.ne_all(seen)),
        )
        .order((sessions::created_at, sessions::id))
        .limit(limit)
        .select((
            sessions::id,
            sessions::user_id,
            sessions::ip,
            sessions::user_agent,
            sessions::created_at,
            users::email,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, user_id, ip, user_agent, created_at, email)| SessionStart {
                id,
                user_id,
                ip,
                user_agent,
                created_at,
                email,
            },
        )
        .collect())
}

/// A user as a tenant admin manages members: no secrets, no security state.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct Account {
    /// The user.
    pub id: UserId,
    /// The login address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// `active`, `pending` or `disabled`.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The account `id`.
pub async fn account(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> Result<Option<Account>, AuthError> {
    Ok(users::table
        .find(id)
        .select(Account::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Accounts of people (not machine clients, role `api_user`) ordered by
/// lower-cased address, after `after`, at most `limit`.
pub async fn people_after(
    conn: &mut AsyncPgConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<Account>, AuthError> {
    Ok(users::table
        .filter(users::role.ne("api_user"))
        .filter(lower(users::email).gt(after))
        .order(lower(users::email))
        .limit(limit)
        .select(Account::as_select())
        .load(conn)
        .await?)
}

/// The accounts whose lower-cased address is one of `emails`, keyed by it;
/// with `lock`, their rows stay locked until the transaction ends.
pub async fn accounts_by_email(
    conn: &mut AsyncPgConnection,
    emails: &[String],
    lock: bool,
) -> Result<HashMap<String, Account>, AuthError> {
    let query = users::table
        .filter(lower(users::email).eq_any(emails))
        .select((lower(users::email), Account::as_select()));
    let rows: Vec<(String, Account)> = if lock {
        query.for_update().load(conn).await?
    } else {
        query.load(conn).await?
    };
    Ok(rows.into_iter().collect())
}

/// Locks the accounts against new and changed rows until the transaction
/// ends (reads go on): a bulk change checks, then writes, with no account
/// changing in between.
pub async fn lock_accounts(conn: &mut AsyncPgConnection) -> Result<(), AuthError> {
    // raw SQL: LOCK TABLE has no diesel DSL.
    diesel::sql_query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Upserted {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: UserId,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    created: bool,
}

/// Creates a `pending` account (no credentials yet) for `email`, or sets the
/// name and role of the account that has it: `(id, created)`. `None` when
/// the address belongs to a machine client (`api_user`), which is left as
/// it is.
pub async fn upsert_pending(
    conn: &mut AsyncPgConnection,
    email: &str,
    display_name: &str,
    role: &str,
) -> Result<Option<(UserId, bool)>, AuthError> {
    use diesel::sql_types::Text;
    // `xmax = 0` only for a row this statement inserted.
    // raw SQL: the conflict target is the expression index `lower(email)`, and `xmax` tells an insert from an update.
    let row: Option<Upserted> = diesel::sql_query(
        "INSERT INTO users (email, display_name, role, status) VALUES ($1, $2, $3, 'pending') \
         ON CONFLICT ((lower(email))) DO UPDATE SET display_name = EXCLUDED.display_name, \
         role = EXCLUDED.role, updated_at = now() WHERE users.role <> 'api_user' \
         RETURNING id, (xmax = 0) AS created",
    )
    .bind::<Text, _>(email)
    .bind::<Text, _>(display_name)
    .bind::<Text, _>(role)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| (r.id, r.created)))
}

/// The display names of `ids` (those that exist).
pub async fn display_names(
    conn: &mut AsyncPgConnection,
    ids: &[UserId],
) -> Result<HashMap<UserId, String>, AuthError> {
    let rows: Vec<(UserId, String)> = users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::display_name))
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Those of `ids` who left the leaderboard (rampart-members' flag).
pub async fn leaderboard_opt_outs(
    conn: &mut AsyncPgConnection,
    ids: &[UserId],
) -> Result<Vec<UserId>, AuthError> {
    Ok(user_flags::table
        .filter(user_flags::id.eq_any(ids))
        .filter(user_flags::leaderboard_opt_out)
        .select(user_flags::id)
        .load(conn)
        .await?)
}

/// Sets whether `id` left the leaderboard; whether the user exists.
pub async fn set_leaderboard_opt_out(
    conn: &mut AsyncPgConnection,
    id: UserId,
    opt_out: bool,
) -> Result<bool, AuthError> {
    let n = diesel::update(user_flags::table.find(id))
        .set((
            user_flags::leaderboard_opt_out.eq(opt_out),
            user_flags::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
}
