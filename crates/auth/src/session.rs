//! Login sessions and pending second-factor challenges: the rows behind a
//! session cookie, shared by password and upstream logins.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::config::AuthConfig;
use crate::context::{ClientContext, random_secret, sha256, ttl};
use crate::error::AuthError;

/// A login session just created; `token` goes into the session cookie and
/// is shown only here.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Session id.
    pub session_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// `"{session_id}.{secret}"`: the bearer handle of the session.
    pub token: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// The result of a correct password.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Logged in.
    LoggedIn(NewSession),
    /// A second factor is needed: pass this challenge handle to
    /// `AccountService::verify_mfa` with a TOTP or backup code.
    MfaRequired {
        /// The pending login's handle.
        challenge: String,
    },
}

/// A session as listed to its user.
#[derive(Debug, Clone, diesel::QueryableByName, Serialize)]
pub struct SessionInfo {
    /// Id.
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// The user.
    #[diesel(sql_type = SqlUuid)]
    pub user_id: Uuid,
    /// Device label.
    #[diesel(sql_type = Text)]
    pub device: String,
    /// IP at login.
    #[diesel(sql_type = Nullable<Text>)]
    pub ip: Option<String>,
    /// User agent at login.
    #[diesel(sql_type = Nullable<Text>)]
    pub user_agent: Option<String>,
    /// Created.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Last seen.
    #[diesel(sql_type = Timestamptz)]
    pub last_seen_at: DateTime<Utc>,
    /// Expiry.
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
    /// When the user authenticated.
    #[diesel(sql_type = Timestamptz)]
    pub auth_time: DateTime<Utc>,
}

pub(crate) const SESSION_COLUMNS: &str =
    "id, user_id, device, ip, user_agent, created_at, last_seen_at, expires_at, auth_time";

pub(crate) async fn create_session(
    conn: &mut AsyncPgConnection,
    config: &AuthConfig,
    user_id: Uuid,
    ctx: &ClientContext,
    amr: &str,
) -> Result<NewSession, AuthError> {
    let secret = random_secret(32);
    let expires_at = Utc::now() + ttl(config.session_ttl_secs);
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let row: Id = diesel::sql_query(
        "INSERT INTO sessions (user_id, device, ip, user_agent, expires_at, secret_hash, amr) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Text, _>(ctx.device.as_deref().unwrap_or(""))
    .bind::<Text, _>(&ctx.ip)
    .bind::<Nullable<Text>, _>(ctx.user_agent.as_deref())
    .bind::<Timestamptz, _>(expires_at)
    .bind::<Bytea, _>(sha256(secret.as_bytes()))
    .bind::<Text, _>(amr)
    .get_result(conn)
    .await?;
    Ok(NewSession {
        session_id: row.id,
        user_id,
        token: format!("{}.{secret}", row.id),
        expires_at,
    })
}

/// A pending second-factor step for `user_id`; returns its handle
/// `"{id}.{secret}"` for `AccountService::verify_mfa`.
pub(crate) async fn create_login_challenge(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    ctx: &ClientContext,
) -> Result<String, AuthError> {
    let secret = random_secret(32);
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let row: Id = diesel::sql_query(
        "INSERT INTO login_challenges (user_id, secret_hash, device, ip, user_agent, expires_at) \
         VALUES ($1, $2, $3, $4, $5, now() + interval '5 minutes') RETURNING id",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Bytea, _>(sha256(secret.as_bytes()))
    .bind::<Text, _>(ctx.device.as_deref().unwrap_or(""))
    .bind::<Text, _>(&ctx.ip)
    .bind::<Nullable<Text>, _>(ctx.user_agent.as_deref())
    .get_result(conn)
    .await?;
    Ok(format!("{}.{secret}", row.id))
}

/// Revokes a session and the refresh tokens (and recorded access tokens) bound to it.
pub(crate) async fn revoke_session_rows(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
) -> Result<usize, AuthError> {
    let n = diesel::sql_query(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind::<SqlUuid, _>(session_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE session_id = $1 AND revoked_at IS NULL",
    )
    .bind::<SqlUuid, _>(session_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE access_tokens SET revoked_at = now() WHERE session_id = $1 AND revoked_at IS NULL",
    )
    .bind::<SqlUuid, _>(session_id)
    .execute(conn)
    .await?;
    Ok(n)
}
