//! The `users` table: the [`User`] model and the reads every service of
//! this crate shares (user rows are managed by the accounts service).

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::error::AuthError;
use crate::roles::Role;

/// A user as the auth crate sees it.
#[derive(Debug, Clone, diesel::QueryableByName, Serialize)]
pub struct User {
    /// Id.
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// E-mail (login name).
    #[diesel(sql_type = Text)]
    pub email: String,
    /// Display name.
    #[diesel(sql_type = Text)]
    pub display_name: String,
    /// Role name.
    #[diesel(sql_type = Text)]
    pub role: String,
    /// `active`, `disabled`, `pending`.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// Whether TOTP is on.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub totp_enabled: bool,
}

impl User {
    /// The parsed role (unknown names read as `viewer`).
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }
}

pub(crate) const USER_COLUMNS: &str = "id, email, display_name, role, status, totp_enabled";

/// E-mail addresses compare trimmed and lower-cased.
pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A user by id, whatever the status.
pub(crate) async fn find(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<User>, AuthError> {
    let users: Vec<User> =
        diesel::sql_query(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind::<SqlUuid, _>(id)
            .load(conn)
            .await?;
    Ok(users.into_iter().next())
}

/// An active user by id.
pub(crate) async fn find_active(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<User>, AuthError> {
    let users: Vec<User> = diesel::sql_query(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND status = 'active'"
    ))
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await?;
    Ok(users.into_iter().next())
}

/// A user by (normalized) e-mail.
pub(crate) async fn by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> Result<Option<User>, AuthError> {
    let users: Vec<User> = diesel::sql_query(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE lower(email) = $1"
    ))
    .bind::<Text, _>(email)
    .load(conn)
    .await?;
    Ok(users.into_iter().next())
}
