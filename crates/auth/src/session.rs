//! Login sessions and pending second-factor challenges: the rows behind a
//! session cookie, shared by password and upstream logins.

use chrono::{DateTime, Utc};
use rampart_ids::UserId;

use diesel::{ExpressionMethods, Queryable, Selectable};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::config::AuthConfig;
use crate::context::{ClientContext, random_secret, sha256, ttl};
use crate::error::AuthError;
use crate::schema::{login_challenges, sessions};

/// A login session just created; `token` goes into the session cookie and
/// is shown only here.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Session id.
    pub session_id: Uuid,
    /// The user.
    pub user_id: UserId,
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
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct SessionInfo {
    /// Id.
    pub id: Uuid,
    /// The user.
    pub user_id: UserId,
    /// Device label.
    pub device: String,
    /// IP at login.
    pub ip: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last seen.
    pub last_seen_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// When the user authenticated.
    pub auth_time: DateTime<Utc>,
}

/// How long a pending second-factor step stays usable.
const CHALLENGE_TTL_SECS: i64 = 300;

pub(crate) async fn create_session(
    conn: &mut AsyncPgConnection,
    config: &AuthConfig,
    user_id: UserId,
    ctx: &ClientContext,
    amr: &str,
) -> Result<NewSession, AuthError> {
    let secret = random_secret(32);
    let expires_at = Utc::now() + ttl(config.session_ttl_secs);
    let id: Uuid = diesel::insert_into(sessions::table)
        .values((
            sessions::user_id.eq(user_id),
            sessions::device.eq(ctx.stored_device()),
            sessions::ip.eq(&ctx.ip),
            sessions::user_agent.eq(ctx.stored_user_agent()),
            sessions::expires_at.eq(expires_at),
            sessions::secret_hash.eq(sha256(secret.as_bytes())),
            sessions::amr.eq(amr),
        ))
        .returning(sessions::id)
        .get_result(conn)
        .await?;
    Ok(NewSession {
        session_id: id,
        user_id,
        token: format!("{id}.{secret}"),
        expires_at,
    })
}

/// A pending second-factor step for `user_id`; returns its handle
/// `"{id}.{secret}"` for `AccountService::verify_mfa`.
pub(crate) async fn create_login_challenge(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    ctx: &ClientContext,
) -> Result<String, AuthError> {
    let secret = random_secret(32);
    let id: Uuid = diesel::insert_into(login_challenges::table)
        .values((
            login_challenges::user_id.eq(user_id),
            login_challenges::secret_hash.eq(sha256(secret.as_bytes())),
            login_challenges::device.eq(ctx.stored_device()),
            login_challenges::ip.eq(&ctx.ip),
            login_challenges::user_agent.eq(ctx.stored_user_agent()),
            login_challenges::expires_at
                .eq(Utc::now() + chrono::Duration::seconds(CHALLENGE_TTL_SECS)),
        ))
        .returning(login_challenges::id)
        .get_result(conn)
        .await?;
    Ok(format!("{id}.{secret}"))
}
