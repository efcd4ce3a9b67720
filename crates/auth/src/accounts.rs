//! Accounts: register, login (with the second step when MFA is on),
//! sessions, logout and password change.

use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, now};
use diesel::{
    ExpressionMethods, NullableExpressionMethods, OptionalExtension, PgExpressionMethods, QueryDsl,
    Queryable, Selectable, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use rampart_tenancy::{RegistrationMode, TenantPool};
use uuid::Uuid;

use crate::audit::{self, AuditEvent, append};
use crate::config::AuthConfig;
use crate::context::{ClientContext, ct_eq, sha256, split_handle, tenant_id, ttl};
use crate::error::AuthError;
use crate::mfa::MfaService;
use crate::password::PasswordHasher;
use crate::revocation::{Holder, RevocationFeed, revoke_sessions};
use crate::roles::Role;
use crate::schema::{login_challenges, lower, sessions, users};
pub use crate::session::{LoginOutcome, NewSession, SessionInfo};
use crate::session::{create_login_challenge, create_session};
use crate::throttle::{
    AttemptKind, InFlight, recent_failures, record_attempt, reserve_password_attempt,
    settle_password_attempt,
};
pub use crate::users::User;
use crate::users::{self as user_rows, UserProfile, normalize_email};

#[derive(diesel::QueryableByName)]
struct Preferences {
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    preferences: serde_json::Value,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct Credentials {
    id: UserId,
    password_hash: Option<String>,
    status: String,
    locked_until: Option<DateTime<Utc>>,
    failed_totp_count: i32,
    totp_enabled: bool,
    password_changed_at: Option<DateTime<Utc>>,
    email_verified: bool,
    role: String,
}

/// Whether the user has logged in from `ip` before (a session from that
/// address, live or not yet cleaned up): such a source is exempt from the
/// lockout, so the owner gets in while an attacker elsewhere is locked out.
async fn known_source(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: UserId,
    ip: &str,
) -> Result<bool, AuthError> {
    Ok(diesel::select(exists(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ip.eq(ip)),
    ))
    .get_result(conn)
    .await?)
}

/// [`AuthError::NotFound`] when an update of a user by id touched no row.
fn require_updated(rows: usize) -> Result<(), AuthError> {
    if rows == 0 {
        return Err(AuthError::NotFound("user".into()));
    }
    Ok(())
}

/// Sets a user's status ([`AuthError::NotFound`] for an unknown user).
async fn set_status(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: UserId,
    status: &str,
) -> Result<(), AuthError> {
    let n = diesel::update(users::table.find(user_id))
        .set((users::status.eq(status), users::updated_at.eq(now)))
        .execute(conn)
        .await?;
    require_updated(n)
}

/// The preferences of the one row a query of a user by id returned;
/// [`AuthError::NotFound`] when it returned none.
fn only_preferences(rows: Vec<Preferences>) -> Result<serde_json::Value, AuthError> {
    rows.into_iter()
        .next()
        .map(|r| r.preferences)
        .ok_or_else(|| AuthError::NotFound("user".into()))
}

/// Revokes the user's sessions not yet revoked, but for `keep`, with their
/// tokens; returns how many.
async fn revoke_sessions_except(
    conn: &mut diesel_async::AsyncPgConnection,
    revocations: &RevocationFeed,
    user_id: UserId,
    keep: Option<Uuid>,
) -> Result<usize, AuthError> {
    let ids: Vec<Uuid> = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::id.nullable().is_distinct_from(keep))
        .select(sessions::id)
        .load(conn)
        .await?;
    for id in &ids {
        revoke_sessions(conn, revocations, Holder::Session(*id)).await?;
    }
    Ok(ids.len())
}

/// Accounts and their sessions: registration, password and second-factor
/// login with brute-force defence, sessions, logout and password change.
#[derive(Clone)]
pub struct AccountService {
    pub(crate) pool: TenantPool,
    pub(crate) config: Arc<AuthConfig>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) mfa: MfaService,
    pub(crate) revocations: Arc<RevocationFeed>,
    pub(crate) in_flight: InFlight,
    pub(crate) roles: crate::tenant_roles::RoleService,
}

impl std::fmt::Debug for AccountService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountService").finish_non_exhaustive()
    }
}

impl AccountService {
    /// Registers a user with a password (the tenant's password policy,
    /// Argon2id-hashed). Accounts made this way (by administrators, the
    /// demo, tests) count as verified; self-service sign-up is
    /// [`AccountService::self_register`].
    pub async fn register(
        &self,
        tenant: &TenantSlug,
        email: &str,
        display_name: &str,
        password: &str,
        role: Role,
    ) -> Result<User, AuthError> {
        let email = normalize_email(email);
        if !email.contains('@') || email.len() > 254 {
            return Err(AuthError::InvalidRequest("invalid e-mail address".into()));
        }
        let settings = self.pool.tenant_settings(tenant).await?;
        crate::tenant_policy::check_tenant_password(&settings, password, &email)?;
        let hash = self.hasher.hash(password).await?;
        crate::tenant_policy::insert_user(
            &self.pool,
            tenant,
            &email,
            display_name,
            &hash,
            role,
            true,
        )
        .await?
        .ok_or_else(|| AuthError::Conflict("e-mail already registered".into()))
    }

    /// A user by id.
    pub async fn user(&self, tenant: &TenantSlug, user_id: UserId) -> Result<User, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                user_rows::find(conn, user_id)
                    .await?
                    .ok_or_else(|| AuthError::NotFound("user".into()))
            })
            .await
    }

    /// Changes a user's role (admin operation; the caller checks permission);
    /// [`AuthError::UnknownRole`] if the tenant has no such role.
    pub async fn set_role(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        role: Role,
    ) -> Result<(), AuthError> {
        self.roles.require_role(tenant, role).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                diesel::update(users::table.find(user_id))
                    .set((users::role.eq(role.as_str()), users::updated_at.eq(now)))
                    .execute(conn)
                    .await?;
                Ok::<_, AuthError>(())
            })
            .await
    }

    /// A user's profile.
    pub async fn profile(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
    ) -> Result<UserProfile, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| user_rows::profile(conn, user_id).await)
            .await
    }

    /// A user by e-mail (compared trimmed and lower-cased), if any.
    pub async fn find_by_email(
        &self,
        tenant: &TenantSlug,
        email: &str,
    ) -> Result<Option<User>, AuthError> {
        let email = normalize_email(email);
        self.pool
            .with_tenant(tenant, async |conn| user_rows::by_email(conn, &email).await)
            .await
    }

    /// Users of the tenant by id, at most `limit`, after `after`.
    pub async fn list_users(
        &self,
        tenant: &TenantSlug,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<UserProfile>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let mut query = users::table
                    .select(UserProfile::as_select())
                    .order(users::id)
                    .limit(limit)
                    .into_boxed();
                if let Some(after) = after {
                    query = query.filter(users::id.gt(after));
                }
                Ok::<_, AuthError>(query.load(conn).await?)
            })
            .await
    }

    /// Changes a user's display name (`None` keeps it) and returns the
    /// profile. The caller validates the name.
    pub async fn update_display_name(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        display_name: Option<&str>,
    ) -> Result<UserProfile, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let target = users::table.find(user_id);
                match display_name {
                    Some(name) => {
                        diesel::update(target)
                            .set((users::display_name.eq(name), users::updated_at.eq(now)))
                            .execute(conn)
                            .await?
                    }
                    None => {
                        diesel::update(target)
                            .set(users::updated_at.eq(now))
                            .execute(conn)
                            .await?
                    }
                };
                user_rows::profile(conn, user_id).await
            })
            .await
    }

    /// Gives a user another role; [`AuthError::UnknownRole`] if the tenant
    /// has no such role, [`AuthError::NotFound`] for an unknown user.
    pub async fn assign_role(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        role: Role,
    ) -> Result<UserProfile, AuthError> {
        self.roles.require_role(tenant, role).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let n = diesel::update(users::table.find(user_id))
                    .set((users::role.eq(role.as_str()), users::updated_at.eq(now)))
                    .execute(conn)
                    .await?;
                require_updated(n)?;
                user_rows::profile(conn, user_id).await
            })
            .await
    }

    /// Disables a user and revokes their sessions, refresh tokens and
    /// access tokens in the same transaction; cached revocation verdicts are
    /// dropped so the next request re-reads them.
    pub async fn disable_user(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
    ) -> Result<UserProfile, AuthError> {
        let profile = self
            .pool
            .with_tenant(tenant, async |conn| {
                set_status(conn, user_id, "disabled").await?;
                revoke_sessions(conn, &self.revocations, Holder::User(user_id)).await?;
                user_rows::profile(conn, user_id).await
            })
            .await?;
        Ok(profile)
    }

    /// Re-enables a user (their revoked sessions and tokens stay revoked).
    pub async fn enable_user(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
    ) -> Result<UserProfile, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                set_status(conn, user_id, "active").await?;
                user_rows::profile(conn, user_id).await
            })
            .await
    }

    /// A user's stored preferences (a JSON value the product interprets).
    pub async fn preferences(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
    ) -> Result<serde_json::Value, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                // raw SQL: `preferences` is outside the 16-column diesel schema of users.
                let rows: Vec<Preferences> =
                    diesel::sql_query("SELECT preferences FROM users WHERE id = $1")
                        .bind::<diesel::sql_types::Uuid, _>(user_id)
                        .load(conn)
                        .await?;
                only_preferences(rows)
            })
            .await
    }

    /// Active users whose preference `key` is JSON `true` and whose
    /// `notifications` preference is not `false`, with their e-mail
    /// address, by id: the recipients of an opt-in mailing.
    pub async fn opted_in(
        &self,
        tenant: &TenantSlug,
        key: &str,
    ) -> Result<Vec<(UserId, String)>, AuthError> {
        #[derive(diesel::QueryableByName)]
        struct Recipient {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: UserId,
            #[diesel(sql_type = diesel::sql_types::Text)]
            email: String,
        }
        self.pool
            .with_tenant(tenant, async |conn| {
                // raw SQL: `preferences` is outside the 16-column diesel schema of users.
                let rows: Vec<Recipient> = diesel::sql_query(
                    "SELECT id, email FROM users WHERE status = 'active' \
                     AND preferences -> $1 = 'true'::jsonb \
                     AND preferences -> 'notifications' IS DISTINCT FROM 'false'::jsonb \
                     ORDER BY id",
                )
                .bind::<diesel::sql_types::Text, _>(key)
                .load(conn)
                .await?;
                Ok(rows.into_iter().map(|r| (r.id, r.email)).collect())
            })
            .await
    }

    /// Merges `patch` (a JSON object) into a user's preferences; keys not in
    /// the patch are kept, a stored value that is not an object is replaced.
    pub async fn merge_preferences(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        patch: &serde_json::Value,
    ) -> Result<serde_json::Value, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                // raw SQL: jsonb `||` merge on a column outside the 16-column diesel schema.
                let rows: Vec<Preferences> = diesel::sql_query(
                    "UPDATE users SET preferences = (CASE WHEN jsonb_typeof(preferences) = 'object' \
                     THEN preferences ELSE '{}'::jsonb END) || $2, updated_at = now() \
                     WHERE id = $1 RETURNING preferences",
                )
                .bind::<diesel::sql_types::Uuid, _>(user_id)
                .bind::<diesel::sql_types::Jsonb, _>(patch)
                .load(conn)
                .await?;
                only_preferences(rows)
            })
            .await
    }

    /// Password login. Unknown users, wrong passwords and disabled accounts
    /// all get [`AuthError::InvalidCredentials`] after the same work (a
    /// dummy hash for unknown users, the same attempt accounting for every
    /// e-mail). The attempt is checked and counted before hashing;
    /// [`AuthError::RateLimited`] (before any hashing) when the account+IP
    /// pair or the IP used its attempts, when too many attempts of the
    /// account are hashing right now, or when the account is locked for this
    /// source (too many recent failures, and the account never logged in
    /// from this address).
    pub async fn login(
        &self,
        tenant: &TenantSlug,
        email: &str,
        password: &str,
        ctx: &ClientContext,
    ) -> Result<LoginOutcome, AuthError> {
        let account = normalize_email(email);
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let settings = self.pool.tenant_settings(tenant).await?;
        let config = &self.config;
        let _in_flight =
            match self
                .in_flight
                .enter(tenant, &account, config.account_hash_concurrency)
            {
                Ok(guard) => guard,
                Err(limited) => {
                    self.audit_refusal(tenant, None, ctx, "in_flight").await?;
                    return Err(limited);
                }
            };
        let (reserved, creds) = self
            .pool
            .with_tenant(tenant, async |conn| {
                let creds: Option<Credentials> = users::table
                    .filter(lower(users::email).eq(&account))
                    .select(Credentials::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                let known_source = match &creds {
                    Some(c) => known_source(conn, c.id, &ctx.ip).await?,
                    None => false,
                };
                let reserved = reserve_password_attempt(
                    conn,
                    config,
                    &account,
                    &ctx.ip,
                    known_source,
                    creds.as_ref().and_then(|c| c.password_changed_at),
                )
                .await?;
                Ok::<_, AuthError>((reserved, creds))
            })
            .await?;
        let reservation = match reserved {
            Ok(r) => r,
            Err((refusal, retry_after)) => {
                let user = creds.as_ref().map(|c| c.id);
                self.audit_refusal(tenant, user, ctx, refusal.as_str())
                    .await?;
                return Err(AuthError::RateLimited { retry_after });
            }
        };
        let delay = reservation.delay(config);
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
        let usable = creds.as_ref().is_some_and(|c| c.status == "active");
        let success = check.valid && usable;
        let threshold = i64::from(self.config.lockout_threshold);
        self.pool
            .with_tenant(tenant, async |conn| {
                let Some(creds) = creds.as_ref() else {
                    append(
                        conn,
                        tenant_id,
                        &AuditEvent::new("login", "failure")
                            .client(ctx)
                            .detail(serde_json::json!({"reason": "unknown_user"})),
                    )
                    .await?;
                    return Ok(Err(AuthError::InvalidCredentials));
                };
                if !success {
                    let failures: i32 = diesel::update(users::table.find(creds.id))
                        .set(users::failed_password_count.eq(users::failed_password_count + 1))
                        .returning(users::failed_password_count)
                        .get_result(conn)
                        .await?;
                    let reason = if creds.status != "active" {
                        "disabled"
                    } else {
                        "bad_password"
                    };
                    append(
                        conn,
                        tenant_id,
                        &AuditEvent::by_user("login", "failure", creds.id, ctx)
                            .detail(serde_json::json!({"reason": reason})),
                    )
                    .await?;
                    if reservation.account_failures == threshold {
                        // The lockout itself is the sliding window over the
                        // attempt rows (`locked_until` is the TOTP lockout's).
                        append(
                            conn,
                            tenant_id,
                            &AuditEvent::by_user("lockout", "locked", creds.id, ctx).detail(
                                serde_json::json!({"kind": "password", "failures": failures}),
                            ),
                        )
                        .await?;
                    }
                    return Ok(Err(AuthError::InvalidCredentials));
                }
                settle_password_attempt(conn, &reservation).await?;
                diesel::update(users::table.find(creds.id))
                    .set((
                        users::failed_password_count.eq(0),
                        users::locked_until.eq(None::<DateTime<Utc>>),
                    ))
                    .execute(conn)
                    .await?;
                if let Some(upgraded) = &check.upgraded_hash {
                    diesel::update(users::table.find(creds.id))
                        .set(users::password_hash.eq(upgraded))
                        .execute(conn)
                        .await?;
                }
                if let Some(refusal) = crate::tenant_policy::login_refusal(
                    &settings,
                    creds.email_verified,
                    &creds.role,
                    creds.totp_enabled,
                ) {
                    append(
                        conn,
                        tenant_id,
                        &AuditEvent::by_user("login", "refused", creds.id, ctx)
                            .detail(serde_json::json!({"reason": refusal.to_string()})),
                    )
                    .await?;
                    return Ok(Err(refusal));
                }
                if creds.totp_enabled {
                    let challenge = create_login_challenge(conn, creds.id, ctx).await?;
                    append(
                        conn,
                        tenant_id,
                        &AuditEvent::by_user("login", "mfa_required", creds.id, ctx),
                    )
                    .await?;
                    return Ok(Ok(LoginOutcome::MfaRequired { challenge }));
                }
                let config = crate::tenant_policy::tenant_config(&self.config, &settings);
                let session = create_session(conn, &config, creds.id, ctx, "pwd").await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::by_user("login", "success", creds.id, ctx)
                        .detail(serde_json::json!({"session": session.session_id})),
                )
                .await?;
                Ok::<_, AuthError>(Ok(LoginOutcome::LoggedIn(session)))
            })
            .await?
    }

    /// Audits a password attempt refused before hashing.
    async fn audit_refusal(
        &self,
        tenant: &TenantSlug,
        user: Option<UserId>,
        ctx: &ClientContext,
        reason: &str,
    ) -> Result<(), AuthError> {
        audit::record(
            &self.pool,
            tenant,
            AuditEvent::new("login", "rate_limited")
                .user(user)
                .client(ctx)
                .detail(serde_json::json!({"reason": reason})),
        )
        .await
    }

    /// Second login step: a TOTP code (or a backup code) for a challenge
    /// from [`AccountService::login`]. Throttled on its own counters.
    pub async fn verify_mfa(
        &self,
        tenant: &TenantSlug,
        challenge: &str,
        code: &str,
        ctx: &ClientContext,
    ) -> Result<NewSession, AuthError> {
        let (challenge_id, secret) = split_handle(challenge)
            .ok_or_else(|| AuthError::InvalidRequest("bad challenge".into()))?;
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let settings = self.pool.tenant_settings(tenant).await?;
        let config = &self.config;
        let (challenge_user, creds, state) = self
            .pool
            .with_tenant(tenant, async |conn| {
                let row: Option<(Uuid, Vec<u8>)> = login_challenges::table
                    .find(challenge_id)
                    .filter(login_challenges::used_at.is_null())
                    .filter(login_challenges::expires_at.gt(now))
                    .select((login_challenges::user_id, login_challenges::secret_hash))
                    .first(conn)
                    .await
                    .optional()?;
                let (user_id, _) = row
                    .filter(|(_, hash)| ct_eq(hash, &sha256(secret.as_bytes())))
                    .ok_or_else(|| AuthError::InvalidGrant("login challenge expired".into()))?;
                let creds: Credentials = users::table
                    .find(user_id)
                    .select(Credentials::as_select())
                    .first(conn)
                    .await?;
                let state = recent_failures(
                    conn,
                    config,
                    AttemptKind::Totp,
                    &user_id.to_string(),
                    &ctx.ip,
                )
                .await?;
                Ok::<_, AuthError>((user_id, creds, state))
            })
            .await?;
        let account = challenge_user.to_string();
        if let Err(limited) = state.check_rate_limit(config) {
            audit::record(
                &self.pool,
                tenant,
                AuditEvent::by_user("mfa", "rate_limited", creds.id, ctx),
            )
            .await?;
            return Err(limited);
        }
        let delay = state.delay(config, i64::from(creds.failed_totp_count));
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let at = Utc::now();
        let locked = creds.locked_until.is_some_and(|t| t > at);
        self.pool
            .with_tenant(tenant, async |conn| {
                let method = if locked {
                    None
                } else {
                    self.mfa.check_second_factor(conn, creds.id, code).await?
                };
                record_attempt(conn, AttemptKind::Totp, &account, &ctx.ip, method.is_some())
                    .await?;
                let Some(method) = method else {
                    let failures: i32 = diesel::update(users::table.find(creds.id))
                        .set(users::failed_totp_count.eq(users::failed_totp_count + 1))
                        .returning(users::failed_totp_count)
                        .get_result(conn)
                        .await?;
                    append(
                        conn,
                        tenant_id,
                        &AuditEvent::by_user("mfa", "failure", creds.id, ctx),
                    )
                    .await?;
                    if !locked
                        && failures >= i32::try_from(self.config.lockout_threshold).unwrap_or(10)
                    {
                        diesel::update(users::table.find(creds.id))
                            .set(users::locked_until.eq(at + ttl(self.config.lockout_secs)))
                            .execute(conn)
                            .await?;
                        append(
                            conn,
                            tenant_id,
                            &AuditEvent::by_user("lockout", "locked", creds.id, ctx)
                                .detail(serde_json::json!({"kind": "totp"})),
                        )
                        .await?;
                    }
                    return Ok(Err(AuthError::InvalidCredentials));
                };
                let used = diesel::update(
                    login_challenges::table
                        .find(challenge_id)
                        .filter(login_challenges::used_at.is_null()),
                )
                .set(login_challenges::used_at.eq(now))
                .execute(conn)
                .await?;
                if used != 1 {
                    return Ok(Err(AuthError::InvalidGrant("login challenge used".into())));
                }
                diesel::update(users::table.find(creds.id))
                    .set(users::failed_totp_count.eq(0))
                    .execute(conn)
                    .await?;
                let config = crate::tenant_policy::tenant_config(&self.config, &settings);
                let session = create_session(conn, &config, creds.id, ctx, "pwd otp").await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::by_user("login", "success", creds.id, ctx)
                        .detail(serde_json::json!({"session": session.session_id, "mfa": method})),
                )
                .await?;
                Ok::<_, AuthError>(Ok(session))
            })
            .await?
    }

    /// Resolves a session handle (cookie value) to its row; refreshes
    /// `last_seen_at`. Expired, revoked and unknown sessions are refused.
    pub async fn authenticate_session(
        &self,
        tenant: &TenantSlug,
        token: &str,
    ) -> Result<(SessionInfo, User), AuthError> {
        let (id, secret) =
            split_handle(token).ok_or_else(|| AuthError::InvalidToken("bad session".into()))?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let hash: Option<Option<Vec<u8>>> = diesel::update(
                    sessions::table
                        .find(id)
                        .filter(sessions::revoked_at.is_null())
                        .filter(sessions::expires_at.gt(now)),
                )
                .set(sessions::last_seen_at.eq(now))
                .returning(sessions::secret_hash)
                .get_result(conn)
                .await
                .optional()?;
                let ok = hash
                    .flatten()
                    .is_some_and(|h| ct_eq(&h, &sha256(secret.as_bytes())));
                if !ok {
                    return Err(AuthError::InvalidToken("session expired".into()));
                }
                let session: SessionInfo = sessions::table
                    .find(id)
                    .select(SessionInfo::as_select())
                    .first(conn)
                    .await?;
                let user = user_rows::find_active(conn, session.user_id)
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(|| AuthError::InvalidToken("user disabled".into()))?;
                Ok((session, user))
            })
            .await
    }

    /// A user's live sessions, newest first.
    pub async fn list_sessions(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
    ) -> Result<Vec<SessionInfo>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows = sessions::table
                    .filter(sessions::user_id.eq(user_id))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::expires_at.gt(now))
                    .order(sessions::created_at.desc())
                    .select(SessionInfo::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, AuthError>(rows)
            })
            .await
    }

    /// Revokes one of the user's sessions and its refresh tokens (logout).
    pub async fn revoke_session(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        session_id: Uuid,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let owned: bool = diesel::select(exists(
                    sessions::table
                        .find(session_id)
                        .filter(sessions::user_id.eq(user_id)),
                ))
                .get_result(conn)
                .await?;
                if !owned {
                    return Err(AuthError::NotFound("session".into()));
                }
                revoke_sessions(conn, &self.revocations, Holder::Session(session_id)).await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::by_user("session_revoke", "success", user_id, ctx)
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
        tenant: &TenantSlug,
        session_token: &str,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let (session, user) = self.authenticate_session(tenant, session_token).await?;
        self.revoke_session(tenant, user.id, session.id, ctx).await
    }

    /// Revokes every session of the user except `keep`; returns how many.
    pub async fn revoke_other_sessions(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        keep: Uuid,
        ctx: &ClientContext,
    ) -> Result<usize, AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let revoked =
                    revoke_sessions_except(conn, &self.revocations, user_id, Some(keep)).await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::by_user("session_revoke_others", "success", user_id, ctx)
                        .detail(serde_json::json!({"revoked": revoked})),
                )
                .await?;
                Ok::<_, AuthError>(revoked)
            })
            .await
    }

    /// Changes a password after checking the current one; other sessions
    /// are revoked.
    pub async fn change_password(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
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
                let hash: Option<String> = users::table
                    .find(user_id)
                    .select(users::password_hash)
                    .first(conn)
                    .await?;
                Ok::<_, AuthError>(hash)
            })
            .await?;
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        if !self.hasher.verify(current, stored.as_deref()).await?.valid {
            audit::record(
                &self.pool,
                tenant,
                AuditEvent::by_user("password_change", "failure", user_id, ctx),
            )
            .await?;
            return Err(AuthError::InvalidCredentials);
        }
        let hash = self.hasher.hash(new).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                diesel::update(users::table.find(user_id))
                    .set((
                        users::password_hash.eq(&hash),
                        users::password_changed_at.eq(now),
                        users::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
                revoke_sessions_except(conn, &self.revocations, user_id, keep_session).await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::by_user("password_change", "success", user_id, ctx),
                )
                .await?;
                Ok::<_, AuthError>(())
            })
            .await
    }
}

/// What a self-service registration did. The caller answers both the same
/// way and mails the address (a verification link, or for an existing
/// account a message about the attempt), so the answer never tells whether
/// the address has an account.
#[derive(Debug, Clone)]
pub enum SelfRegistration {
    /// A new, unverified account.
    Created(User),
    /// The address belongs to this existing account; nothing was changed.
    Existing(UserId),
}

impl AccountService {
    /// Self-service registration of a `viewer` under the tenant's
    /// registration policy: refused when closed
    /// ([`AuthError::RegistrationClosed`]), invitation only
    /// ([`AuthError::InvitationRequired`]) or open to other domains
    /// ([`AuthError::EmailDomainNotAllowed`]). The account starts unverified.
    /// The password is hashed whether or not the address is taken, so both
    /// answers cost the same.
    pub async fn self_register(
        &self,
        tenant: &TenantSlug,
        email: &str,
        display_name: &str,
        password: &str,
    ) -> Result<SelfRegistration, AuthError> {
        let settings = self.pool.tenant_settings(tenant).await?;
        let email = normalize_email(email);
        if !email.contains('@') || email.len() > 254 {
            return Err(AuthError::InvalidRequest("invalid e-mail address".into()));
        }
        match settings.registration.mode {
            RegistrationMode::Closed => return Err(AuthError::RegistrationClosed),
            RegistrationMode::InvitationOnly => return Err(AuthError::InvitationRequired),
            RegistrationMode::Open if !settings.registration.domain_allowed(&email) => {
                return Err(AuthError::EmailDomainNotAllowed);
            }
            RegistrationMode::Open => {}
        }
        crate::tenant_policy::check_tenant_password(&settings, password, &email)?;
        let hash = self.hasher.hash(password).await?;
        match crate::tenant_policy::insert_user(
            &self.pool,
            tenant,
            &email,
            display_name,
            &hash,
            Role::Viewer,
            false,
        )
        .await?
        {
            Some(user) => Ok(SelfRegistration::Created(user)),
            None => {
                let existing = self
                    .find_by_email(tenant, &email)
                    .await?
                    .ok_or_else(|| AuthError::Conflict("e-mail already registered".into()))?;
                crate::audit::record(
                    &self.pool,
                    tenant,
                    AuditEvent::new("register", "existing_address").user(Some(existing.id)),
                )
                .await?;
                Ok(SelfRegistration::Existing(existing.id))
            }
        }
    }
}
