//! Accounts: register, login (with the second step when MFA is on),
//! sessions, logout and password change.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bytea, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use rampart_tenancy::TenantPool;
use uuid::Uuid;

use crate::audit::{self, AuditEvent, append};
use crate::config::AuthConfig;
use crate::context::{ClientContext, RevocationCache, ct_eq, sha256, split_handle, tenant_id, ttl};
use crate::error::AuthError;
use crate::mfa::MfaService;
use crate::password::PasswordHasher;
use crate::roles::Role;
pub use crate::session::{LoginOutcome, NewSession, SessionInfo};
use crate::session::{
    SESSION_COLUMNS, create_login_challenge, create_session, revoke_session_rows,
};
use crate::throttle::{AttemptKind, recent_failures, record_attempt};
pub use crate::users::User;
use crate::users::{USER_COLUMNS, normalize_email};

#[derive(diesel::QueryableByName)]
struct Credentials {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    password_hash: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    locked_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Integer)]
    failed_password_count: i32,
    #[diesel(sql_type = Integer)]
    failed_totp_count: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    totp_enabled: bool,
}

/// Accounts and their sessions: registration, password and second-factor
/// login with brute-force defence, sessions, logout and password change.
#[derive(Clone)]
pub struct AccountService {
    pub(crate) pool: TenantPool,
    pub(crate) config: Arc<AuthConfig>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) mfa: MfaService,
    pub(crate) revocations: RevocationCache,
}

impl std::fmt::Debug for AccountService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountService").finish_non_exhaustive()
    }
}

impl AccountService {
    /// Registers a user with a password (policy-checked, Argon2id-hashed).
    pub async fn register(
        &self,
        tenant: &str,
        email: &str,
        display_name: &str,
        password: &str,
        role: Role,
    ) -> Result<User, AuthError> {
        let email = normalize_email(email);
        if !email.contains('@') || email.len() > 254 {
            return Err(AuthError::InvalidRequest("invalid e-mail address".into()));
        }
        crate::password::check_password_policy(password, Some(&email))?;
        let hash = self.hasher.hash(password).await?;
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let users: Vec<User> = diesel::sql_query(format!(
                    "INSERT INTO users (email, display_name, password_hash, role, password_changed_at) \
                     VALUES ($1, $2, $3, $4, now()) ON CONFLICT DO NOTHING RETURNING {USER_COLUMNS}"
                ))
                .bind::<Text, _>(&email)
                .bind::<Text, _>(display_name)
                .bind::<Text, _>(&hash)
                .bind::<Text, _>(role.as_str())
                .load(conn)
                .await?;
                let user = users
                    .into_iter()
                    .next()
                    .ok_or_else(|| AuthError::Conflict("e-mail already registered".into()))?;
                append(conn, tenant_id, &AuditEvent::new("register", "success").user(Some(user.id))).await?;
                Ok(user)
            })
            .await
    }

    /// A user by id.
    pub async fn user(&self, tenant: &str, user_id: Uuid) -> Result<User, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let users: Vec<User> =
                    diesel::sql_query(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                        .bind::<SqlUuid, _>(user_id)
                        .load(conn)
                        .await?;
                users
                    .into_iter()
                    .next()
                    .ok_or_else(|| AuthError::NotFound("user".into()))
            })
            .await
    }

    /// Changes a user's role (admin operation; the caller checks permission).
    pub async fn set_role(&self, tenant: &str, user_id: Uuid, role: Role) -> Result<(), AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                diesel::sql_query("UPDATE users SET role = $2, updated_at = now() WHERE id = $1")
                    .bind::<SqlUuid, _>(user_id)
                    .bind::<Text, _>(role.as_str())
                    .execute(conn)
                    .await?;
                Ok::<_, AuthError>(())
            })
            .await
    }

    /// Password login. Unknown users, wrong passwords, disabled and locked
    /// accounts all get [`AuthError::InvalidCredentials`] after the same
    /// work (a dummy hash for unknown users); [`AuthError::RateLimited`] when
    /// the account+IP pair used its attempts.
    pub async fn login(
        &self,
        tenant: &str,
        email: &str,
        password: &str,
        ctx: &ClientContext,
    ) -> Result<LoginOutcome, AuthError> {
        let account = normalize_email(email);
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let config = &self.config;
        let (state, creds) = self
            .pool
            .with_tenant(tenant, async |conn| {
                let state = recent_failures(conn, config, AttemptKind::Password, &account, &ctx.ip).await?;
                let creds: Vec<Credentials> = diesel::sql_query(
                    "SELECT id, password_hash, status, locked_until, failed_password_count, failed_totp_count, totp_enabled \
                     FROM users WHERE lower(email) = $1",
                )
                .bind::<Text, _>(&account)
                .load(conn)
                .await?;
                Ok::<_, AuthError>((state, creds.into_iter().next()))
            })
            .await?;
        if let Err(limited) = state.check_rate_limit(config) {
            let user = creds.as_ref().map(|c| c.id);
            audit::record(
                &self.pool,
                tenant,
                AuditEvent::new("login", "rate_limited")
                    .user(user)
                    .client(ctx),
            )
            .await?;
            return Err(limited);
        }
        let account_failures = creds
            .as_ref()
            .map(|c| i64::from(c.failed_password_count))
            .unwrap_or(0);
        let delay = state.delay(config, account_failures);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let check = self
            .hasher
            .verify(
                password,
                creds.as_ref().and_then(|c| c.password_hash.as_deref()),
            )
            .await?;
        let now = Utc::now();
        let usable = creds
            .as_ref()
            .is_some_and(|c| c.status == "active" && c.locked_until.is_none_or(|t| t <= now));
        let success = check.valid && usable;
        self
            .pool
            .with_tenant(tenant, async |conn| {
                record_attempt(conn, AttemptKind::Password, &account, &ctx.ip, success).await?;
                let Some(creds) = creds.as_ref() else {
                    append(conn, tenant_id, &AuditEvent::new("login", "failure").client(ctx)
                        .detail(serde_json::json!({"reason": "unknown_user"}))).await?;
                    return Ok(Err(AuthError::InvalidCredentials));
                };
                if !success {
                    let locked = creds.locked_until.is_some_and(|t| t > now);
                    #[derive(diesel::QueryableByName)]
                    struct Count {
                        #[diesel(sql_type = Integer)]
                        failed_password_count: i32,
                    }
                    let counted: Count = diesel::sql_query(
                        "UPDATE users SET failed_password_count = failed_password_count + 1 WHERE id = $1 \
                         RETURNING failed_password_count",
                    )
                    .bind::<SqlUuid, _>(creds.id)
                    .get_result(conn)
                    .await?;
                    let reason = if locked { "locked" } else if creds.status != "active" { "disabled" } else { "bad_password" };
                    append(conn, tenant_id, &AuditEvent::new("login", "failure").user(Some(creds.id)).client(ctx)
                        .detail(serde_json::json!({"reason": reason}))).await?;
                    if !locked && counted.failed_password_count >= i32::try_from(self.config.lockout_threshold).unwrap_or(10) {
                        diesel::sql_query("UPDATE users SET locked_until = $2 WHERE id = $1")
                            .bind::<SqlUuid, _>(creds.id)
                            .bind::<Timestamptz, _>(now + ttl(self.config.lockout_secs))
                            .execute(conn)
                            .await?;
                        append(conn, tenant_id, &AuditEvent::new("lockout", "locked").user(Some(creds.id)).client(ctx)
                            .detail(serde_json::json!({"kind": "password", "failures": counted.failed_password_count}))).await?;
                    }
                    return Ok(Err(AuthError::InvalidCredentials));
                }
                diesel::sql_query("UPDATE users SET failed_password_count = 0, locked_until = NULL WHERE id = $1")
                    .bind::<SqlUuid, _>(creds.id)
                    .execute(conn)
                    .await?;
                if let Some(upgraded) = &check.upgraded_hash {
                    diesel::sql_query("UPDATE users SET password_hash = $2 WHERE id = $1")
                        .bind::<SqlUuid, _>(creds.id)
                        .bind::<Text, _>(upgraded)
                        .execute(conn)
                        .await?;
                }
                if creds.totp_enabled {
                    let challenge = create_login_challenge(conn, creds.id, ctx).await?;
                    append(conn, tenant_id, &AuditEvent::new("login", "mfa_required").user(Some(creds.id)).client(ctx)).await?;
                    return Ok(Ok(LoginOutcome::MfaRequired { challenge }));
                }
                let session = create_session(conn, &self.config, creds.id, ctx, "pwd").await?;
                append(conn, tenant_id, &AuditEvent::new("login", "success").user(Some(creds.id)).client(ctx)
                    .detail(serde_json::json!({"session": session.session_id}))).await?;
                Ok::<_, AuthError>(Ok(LoginOutcome::LoggedIn(session)))
            })
            .await?
    }

    /// Second login step: a TOTP code (or a backup code) for a challenge
    /// from [`AccountService::login`]. Throttled on its own counters.
    pub async fn verify_mfa(
        &self,
        tenant: &str,
        challenge: &str,
        code: &str,
        ctx: &ClientContext,
    ) -> Result<NewSession, AuthError> {
        let (challenge_id, secret) = split_handle(challenge)
            .ok_or_else(|| AuthError::InvalidRequest("bad challenge".into()))?;
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        #[derive(diesel::QueryableByName)]
        struct Challenge {
            #[diesel(sql_type = SqlUuid)]
            user_id: Uuid,
            #[diesel(sql_type = Bytea)]
            secret_hash: Vec<u8>,
        }
        let config = &self.config;
        let (challenge_row, creds, state) = self
            .pool
            .with_tenant(tenant, async |conn| {
                let rows: Vec<Challenge> = diesel::sql_query(
                    "SELECT user_id, secret_hash FROM login_challenges \
                     WHERE id = $1 AND used_at IS NULL AND expires_at > now()",
                )
                .bind::<SqlUuid, _>(challenge_id)
                .load(conn)
                .await?;
                let row = rows
                    .into_iter()
                    .next()
                    .filter(|r| ct_eq(&r.secret_hash, &sha256(secret.as_bytes())))
                    .ok_or_else(|| AuthError::InvalidGrant("login challenge expired".into()))?;
                let creds: Credentials = diesel::sql_query(
                    "SELECT id, password_hash, status, locked_until, failed_password_count, failed_totp_count, totp_enabled \
                     FROM users WHERE id = $1",
                )
                .bind::<SqlUuid, _>(row.user_id)
                .get_result(conn)
                .await?;
                let state = recent_failures(conn, config, AttemptKind::Totp, &row.user_id.to_string(), &ctx.ip).await?;
                Ok::<_, AuthError>((row, creds, state))
            })
            .await?;
        let account = challenge_row.user_id.to_string();
        if let Err(limited) = state.check_rate_limit(config) {
            audit::record(
                &self.pool,
                tenant,
                AuditEvent::new("mfa", "rate_limited")
                    .user(Some(creds.id))
                    .client(ctx),
            )
            .await?;
            return Err(limited);
        }
        let delay = state.delay(config, i64::from(creds.failed_totp_count));
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let now = Utc::now();
        let locked = creds.locked_until.is_some_and(|t| t > now);
        self
            .pool
            .with_tenant(tenant, async |conn| {
                let method = if locked { None } else { self.mfa.check_second_factor(conn, creds.id, code).await? };
                record_attempt(conn, AttemptKind::Totp, &account, &ctx.ip, method.is_some()).await?;
                let Some(method) = method else {
                    #[derive(diesel::QueryableByName)]
                    struct Count {
                        #[diesel(sql_type = Integer)]
                        failed_totp_count: i32,
                    }
                    let counted: Count = diesel::sql_query(
                        "UPDATE users SET failed_totp_count = failed_totp_count + 1 WHERE id = $1 RETURNING failed_totp_count",
                    )
                    .bind::<SqlUuid, _>(creds.id)
                    .get_result(conn)
                    .await?;
                    append(conn, tenant_id, &AuditEvent::new("mfa", "failure").user(Some(creds.id)).client(ctx)).await?;
                    if !locked && counted.failed_totp_count >= i32::try_from(self.config.lockout_threshold).unwrap_or(10) {
                        diesel::sql_query("UPDATE users SET locked_until = $2 WHERE id = $1")
                            .bind::<SqlUuid, _>(creds.id)
                            .bind::<Timestamptz, _>(now + ttl(self.config.lockout_secs))
                            .execute(conn)
                            .await?;
                        append(conn, tenant_id, &AuditEvent::new("lockout", "locked").user(Some(creds.id)).client(ctx)
                            .detail(serde_json::json!({"kind": "totp"}))).await?;
                    }
                    return Ok(Err(AuthError::InvalidCredentials));
                };
                let used = diesel::sql_query("UPDATE login_challenges SET used_at = now() WHERE id = $1 AND used_at IS NULL")
                    .bind::<SqlUuid, _>(challenge_id)
                    .execute(conn)
                    .await?;
                if used != 1 {
                    return Ok(Err(AuthError::InvalidGrant("login challenge used".into())));
                }
                diesel::sql_query("UPDATE users SET failed_totp_count = 0 WHERE id = $1")
                    .bind::<SqlUuid, _>(creds.id)
                    .execute(conn)
                    .await?;
                let session = create_session(conn, &self.config, creds.id, ctx, "pwd otp").await?;
                append(conn, tenant_id, &AuditEvent::new("login", "success").user(Some(creds.id)).client(ctx)
                    .detail(serde_json::json!({"session": session.session_id, "mfa": method}))).await?;
                Ok::<_, AuthError>(Ok(session))
            })
            .await?
    }

    /// Resolves a session handle (cookie value) to its row; refreshes
    /// `last_seen_at`. Expired, revoked and unknown sessions are refused.
    pub async fn authenticate_session(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<(SessionInfo, User), AuthError> {
        let (id, secret) =
            split_handle(token).ok_or_else(|| AuthError::InvalidToken("bad session".into()))?;
        self.pool
            .with_tenant(tenant, async |conn| {
                #[derive(diesel::QueryableByName)]
                struct Hash {
                    #[diesel(sql_type = Nullable<Bytea>)]
                    secret_hash: Option<Vec<u8>>,
                }
                let rows: Vec<Hash> = diesel::sql_query(
                    "UPDATE sessions SET last_seen_at = now() WHERE id = $1 AND revoked_at IS NULL AND expires_at > now() \
                     RETURNING secret_hash",
                )
                .bind::<SqlUuid, _>(id)
                .load(conn)
                .await?;
                let ok = <[Hash]>::first(&rows)
                    .and_then(|r| r.secret_hash.as_deref())
                    .is_some_and(|h| ct_eq(h, &sha256(secret.as_bytes())));
                if !ok {
                    return Err(AuthError::InvalidToken("session expired".into()));
                }
                let session: SessionInfo =
                    diesel::sql_query(format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"))
                        .bind::<SqlUuid, _>(id)
                        .get_result(conn)
                        .await?;
                let user: User = diesel::sql_query(format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND status = 'active'"
                ))
                .bind::<SqlUuid, _>(session.user_id)
                .get_result(conn)
                .await
                .map_err(|_| AuthError::InvalidToken("user disabled".into()))?;
                Ok((session, user))
            })
            .await
    }

    /// A user's live sessions, newest first.
    pub async fn list_sessions(
        &self,
        tenant: &str,
        user_id: Uuid,
    ) -> Result<Vec<SessionInfo>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows = diesel::sql_query(format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
                     AND expires_at > now() ORDER BY created_at DESC"
                ))
                .bind::<SqlUuid, _>(user_id)
                .load(conn)
                .await?;
                Ok::<_, AuthError>(rows)
            })
            .await
    }

    /// Revokes one of the user's sessions and its refresh tokens (logout).
    pub async fn revoke_session(
        &self,
        tenant: &str,
        user_id: Uuid,
        session_id: Uuid,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let owned =
                    diesel::sql_query("SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2")
                        .bind::<SqlUuid, _>(session_id)
                        .bind::<SqlUuid, _>(user_id)
                        .execute(conn)
                        .await?;
                if owned == 0 {
                    return Err(AuthError::NotFound("session".into()));
                }
                revoke_session_rows(conn, session_id).await?;
                self.revocations.invalidate_all();
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::new("session_revoke", "success")
                        .user(Some(user_id))
                        .client(ctx)
                        .detail(serde_json::json!({"session": session_id})),
                )
                .await?;
                Ok(())
            })
            .await
    }

    /// Logs out: revokes the session named by its handle.
    pub async fn logout(
        &self,
        tenant: &str,
        session_token: &str,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let (session, user) = self.authenticate_session(tenant, session_token).await?;
        self.revoke_session(tenant, user.id, session.id, ctx).await
    }

    /// Revokes every session of the user except `keep`; returns how many.
    pub async fn revoke_other_sessions(
        &self,
        tenant: &str,
        user_id: Uuid,
        keep: Uuid,
        ctx: &ClientContext,
    ) -> Result<usize, AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                #[derive(diesel::QueryableByName)]
                struct Id {
                    #[diesel(sql_type = SqlUuid)]
                    id: Uuid,
                }
                let ids: Vec<Id> = diesel::sql_query(
                    "SELECT id FROM sessions WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
                )
                .bind::<SqlUuid, _>(user_id)
                .bind::<SqlUuid, _>(keep)
                .load(conn)
                .await?;
                for id in &ids {
                    revoke_session_rows(conn, id.id).await?;
                    self.revocations.invalidate_all();
                }
                append(conn, tenant_id, &AuditEvent::new("session_revoke_others", "success").user(Some(user_id)).client(ctx)
                    .detail(serde_json::json!({"revoked": ids.len()}))).await?;
                Ok::<_, AuthError>(ids.len())
            })
            .await
    }

    /// Changes a password after checking the current one; other sessions
    /// are revoked.
    pub async fn change_password(
        &self,
        tenant: &str,
        user_id: Uuid,
        current: &str,
        new: &str,
        keep_session: Option<Uuid>,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let user = self.user(tenant, user_id).await?;
        crate::password::check_password_policy(new, Some(&user.email))?;
        let stored: Option<String> = self
            .pool
            .with_tenant(tenant, async |conn| {
                #[derive(diesel::QueryableByName)]
                struct H {
                    #[diesel(sql_type = Nullable<Text>)]
                    password_hash: Option<String>,
                }
                let h: H = diesel::sql_query("SELECT password_hash FROM users WHERE id = $1")
                    .bind::<SqlUuid, _>(user_id)
                    .get_result(conn)
                    .await?;
                Ok::<_, AuthError>(h.password_hash)
            })
            .await?;
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        if !self.hasher.verify(current, stored.as_deref()).await?.valid {
            audit::record(
                &self.pool,
                tenant,
                AuditEvent::new("password_change", "failure")
                    .user(Some(user_id))
                    .client(ctx),
            )
            .await?;
            return Err(AuthError::InvalidCredentials);
        }
        let hash = self.hasher.hash(new).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                diesel::sql_query(
                    "UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE id = $1",
                )
                .bind::<SqlUuid, _>(user_id)
                .bind::<Text, _>(&hash)
                .execute(conn)
                .await?;
                #[derive(diesel::QueryableByName)]
                struct Id {
                    #[diesel(sql_type = SqlUuid)]
                    id: Uuid,
                }
                let ids: Vec<Id> = diesel::sql_query(
                    "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2",
                )
                .bind::<SqlUuid, _>(user_id)
                .bind::<Nullable<SqlUuid>, _>(keep_session)
                .load(conn)
                .await?;
                for id in &ids {
                    revoke_session_rows(conn, id.id).await?;
                    self.revocations.invalidate_all();
                }
                append(conn, tenant_id, &AuditEvent::new("password_change", "success").user(Some(user_id)).client(ctx)).await?;
                Ok::<_, AuthError>(())
            })
            .await
    }
}
