//! The `users` table: the [`User`] model and the reads every service of
//! this crate shares (user rows are managed by the accounts service).

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::UserId;
use serde::Serialize;

use crate::error::AuthError;
use crate::roles::Role;
use crate::schema::{lower, users};

/// A user as the auth crate sees it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    /// Id.
    pub id: UserId,
    /// E-mail (login name).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// `active`, `disabled`, `pending`.
    pub status: String,
    /// Whether TOTP is on.
    pub totp_enabled: bool,
}

impl User {
    /// The parsed role (unknown names read as `viewer`).
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }
}

/// A user's profile as the product shows it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserProfile {
    /// Id.
    pub id: UserId,
    /// E-mail (the login).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// `active`, `disabled` or `pending`.
    pub status: String,
    /// Whether the e-mail address was verified.
    pub email_verified: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A user's profile by id.
pub(crate) async fn profile(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> Result<UserProfile, AuthError> {
    users::table
        .find(id)
        .select(UserProfile::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| AuthError::NotFound("user".into()))
}

/// E-mail addresses compare trimmed and lower-cased.
pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A user by id, whatever the status.
pub(crate) async fn find(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> Result<Option<User>, AuthError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// An active user by id.
pub(crate) async fn find_active(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> Result<Option<User>, AuthError> {
    Ok(users::table
        .find(id)
        .filter(users::status.eq("active"))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A user by (normalized) e-mail.
pub(crate) async fn by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> Result<Option<User>, AuthError> {
    Ok(users::table
        .filter(lower(users::email).eq(email))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}
