//! Invitations: how a new user, or a member a tenant admin added (a
//! `pending` user without a password), gets in. An invitation is a
//! single-use, expiring link carrying `"{id}.{secret}"`; only the SHA-256 of
//! the secret is stored and compared in constant time. Accepting it sets the
//! password (the password policy applies), marks the e-mail address
//! verified, gives the user the invitation's role and activates them.
//! Re-sending replaces the secret and the expiry (the old link stops
//! working); revoking ends it. Expired, revoked, used and unknown links are
//! refused with their own [`AuthError`] variant.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use serde::Serialize;
use uuid::Uuid;

use rampart_tenancy::TenantPool;

use crate::audit::{AuditEvent, append};
use crate::context::{ct_eq, random_secret, sha256, split_handle, tenant_id};
use crate::error::AuthError;
use crate::password::{PasswordHasher, check_password_policy};
use crate::roles::Role;
use crate::schema::{invitations, users};
use crate::users::{self as user_rows, normalize_email};

/// Lifetime of an invitation unless the inviter says otherwise (7 days).
pub const DEFAULT_INVITATION_TTL_HOURS: u32 = 7 * 24;
/// Longest lifetime an inviter may choose (30 days).
pub const MAX_INVITATION_TTL_HOURS: u32 = 30 * 24;

/// Whom to invite.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    /// E-mail address (the login name).
    pub email: String,
    /// Display name of a new user (an existing pending member keeps theirs).
    pub display_name: String,
    /// The role the user gets on accepting: any role of the tenant but
    /// `api_user` ([`AuthError::UnknownRole`] for one it does not have).
    pub role: Role,
    /// Lifetime in hours, 1 to [`MAX_INVITATION_TTL_HOURS`]; default
    /// [`DEFAULT_INVITATION_TTL_HOURS`].
    pub ttl_hours: Option<u32>,
}

/// An invitation as listed (no secret).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = invitations, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    /// Id.
    pub id: Uuid,
    /// The user it lets in.
    pub user_id: UserId,
    /// Where it was sent.
    pub email: String,
    /// The role given on accepting.
    pub role: String,
    /// Who invited (`user:<id>`, `cli`, `mtls:<subject>`).
    pub invited_by: String,
    /// Created (or last re-sent).
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// When it was accepted.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Invitation {
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub fn status(&self) -> &'static str {
        if self.accepted_at.is_some() {
            "accepted"
        } else if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at <= Utc::now() {
            "expired"
        } else {
            "pending"
        }
    }

    /// Why this invitation cannot be accepted any more, if it cannot.
    fn refusal(&self) -> Option<AuthError> {
        match self.status() {
            "accepted" => Some(AuthError::InvitationUsed),
            "revoked" => Some(AuthError::InvitationRevoked),
            "expired" => Some(AuthError::InvitationExpired),
            _ => None,
        }
    }
}

/// An invitation just issued or re-sent; `token` is shown (or mailed) only now.
#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    /// The invitation.
    pub invitation: Invitation,
    /// The link's secret part: `"{id}.{secret}"`.
    pub token: String,
}

/// The outcome of accepting an invitation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedInvitation {
    /// The user now active.
    pub user_id: UserId,
    /// Their login.
    pub email: String,
    /// Their role.
    pub role: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = invitations, check_for_backend(diesel::pg::Pg))]
struct Stored {
    #[diesel(embed)]
    invitation: Invitation,
    secret_hash: Vec<u8>,
}

/// Invitations of a tenant: invite, list, re-send, revoke, accept.
#[derive(Clone)]
pub struct InvitationService {
    pub(crate) pool: TenantPool,
    pub(crate) hasher: PasswordHasher,
}

impl std::fmt::Debug for InvitationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationService").finish_non_exhaustive()
    }
}

fn expiry(ttl_hours: Option<u32>) -> Result<DateTime<Utc>, AuthError> {
    let hours = ttl_hours.unwrap_or(DEFAULT_INVITATION_TTL_HOURS);
    if !(1..=MAX_INVITATION_TTL_HOURS).contains(&hours) {
        return Err(AuthError::InvalidRequest(format!(
            "an invitation lives 1 to {MAX_INVITATION_TTL_HOURS} hours"
        )));
    }
    Ok(Utc::now() + chrono::Duration::hours(i64::from(hours)))
}

async fn stored(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Stored>, AuthError> {
    Ok(invitations::table
        .find(id)
        .select(Stored::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// An invitation that can still change: [`AuthError::NotFound`] when
/// unknown, [`AuthError::InvitationUsed`] once accepted.
async fn not_accepted(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Invitation, AuthError> {
    let current = stored(conn, id)
        .await?
        .ok_or_else(|| AuthError::NotFound("invitation".into()))?;
    if current.invitation.accepted_at.is_some() {
        return Err(AuthError::InvitationUsed);
    }
    Ok(current.invitation)
}

/// The audit record of an inviter's action on `invitation`.
async fn record(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    action: &str,
    invitation: &Invitation,
    by: &str,
) -> Result<(), AuthError> {
    append(
        conn,
        tenant_id,
        &AuditEvent::new(action, "success")
            .user(Some(invitation.user_id))
            .actor(by)
            .detail(serde_json::json!({
                "invitation": invitation.id, "role": invitation.role
            })),
    )
    .await
}

impl InvitationService {
    /// A service over `pool`, hashing accepted passwords with `hasher` (the
    /// command line builds one without the rest of [`crate::AuthServer`]).
    pub fn new(pool: TenantPool, hasher: PasswordHasher) -> Self {
        Self { pool, hasher }
    }

    /// Invites `who`: a new address becomes a `pending` user without a
    /// password; a `pending` user (a member an admin added) is invited as
    /// they are. Any earlier live invitation of that user is revoked. An
    /// address of an active or disabled user is [`AuthError::Conflict`].
    pub async fn invite(
        &self,
        tenant: &TenantSlug,
        who: &NewInvitation,
        invited_by: &str,
    ) -> Result<IssuedInvitation, AuthError> {
        let email = normalize_email(&who.email);
        if !email.contains('@') || email.len() > 254 {
            return Err(AuthError::InvalidRequest("invalid e-mail address".into()));
        }
        if who.role == Role::ApiUser {
            return Err(AuthError::InvalidRequest(
                "api_user is for machine clients: invite with another role".into(),
            ));
        }
        let name = who.display_name.trim();
        let name = if name.is_empty() {
            email.split('@').next().unwrap_or_default()
        } else {
            name
        };
        if name.chars().count() > 200 {
            return Err(AuthError::InvalidRequest(
                "display name: at most 200 characters".into(),
            ));
        }
        let expires_at = expiry(who.ttl_hours)?;
        let secret = random_secret(32);
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let invitation = self
            .pool
            .with_tenant(tenant, async |conn| {
                if !crate::tenant_roles::role_exists(conn, who.role).await? {
                    return Err(AuthError::UnknownRole(who.role.to_string()));
                }
                let user_id = match user_rows::by_email(conn, &email).await? {
                    Some(u) if u.status == "pending" => u.id,
                    Some(_) => {
                        return Err(AuthError::Conflict(
                            "a user with this e-mail address exists already".into(),
                        ));
                    }
                    None => {
                        diesel::insert_into(users::table)
                            .values((
                                users::email.eq(&email),
                                users::display_name.eq(name),
                                users::role.eq(who.role.as_str()),
                                users::status.eq("pending"),
                            ))
                            .returning(users::id)
                            .get_result(conn)
                            .await?
                    }
                };
                diesel::update(
                    invitations::table
                        .filter(invitations::user_id.eq(user_id))
                        .filter(invitations::accepted_at.is_null())
                        .filter(invitations::revoked_at.is_null()),
                )
                .set(invitations::revoked_at.eq(now))
                .execute(conn)
                .await?;
                let invitation: Invitation = diesel::insert_into(invitations::table)
                    .values((
                        invitations::user_id.eq(user_id),
                        invitations::email.eq(&email),
                        invitations::role.eq(who.role.as_str()),
                        invitations::secret_hash.eq(sha256(secret.as_bytes())),
                        invitations::invited_by.eq(invited_by),
                        invitations::expires_at.eq(expires_at),
                    ))
                    .returning(Invitation::as_returning())
                    .get_result(conn)
                    .await?;
                record(
                    conn,
                    tenant_id,
                    "invitation_create",
                    &invitation,
                    invited_by,
                )
                .await?;
                Ok(invitation)
            })
            .await?;
        Ok(IssuedInvitation {
            token: format!("{}.{secret}", invitation.id),
            invitation,
        })
    }

    /// The tenant's invitations, newest first.
    pub async fn list(&self, tenant: &TenantSlug) -> Result<Vec<Invitation>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                Ok(invitations::table
                    .order(invitations::created_at.desc())
                    .select(Invitation::as_select())
                    .load(conn)
                    .await?)
            })
            .await
    }

    /// One invitation.
    pub async fn get(&self, tenant: &TenantSlug, id: Uuid) -> Result<Invitation, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                stored(conn, id)
                    .await?
                    .map(|s| s.invitation)
                    .ok_or_else(|| AuthError::NotFound("invitation".into()))
            })
            .await
    }

    /// Issues a new secret and expiry for an invitation not yet accepted
    /// (a revoked or expired one comes back to life); the old link stops
    /// working. An accepted invitation is [`AuthError::InvitationUsed`].
    pub async fn resend(
        &self,
        tenant: &TenantSlug,
        id: Uuid,
        ttl_hours: Option<u32>,
        by: &str,
    ) -> Result<IssuedInvitation, AuthError> {
        let expires_at = expiry(ttl_hours)?;
        let secret = random_secret(32);
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let invitation = self
            .pool
            .with_tenant(tenant, async |conn| {
                not_accepted(conn, id).await?;
                let invitation: Invitation = diesel::update(
                    invitations::table
                        .find(id)
                        .filter(invitations::accepted_at.is_null()),
                )
                .set((
                    invitations::secret_hash.eq(sha256(secret.as_bytes())),
                    invitations::expires_at.eq(expires_at),
                    invitations::revoked_at.eq(None::<DateTime<Utc>>),
                    invitations::created_at.eq(now),
                ))
                .returning(Invitation::as_returning())
                .get_result(conn)
                .await?;
                record(conn, tenant_id, "invitation_resend", &invitation, by).await?;
                Ok::<_, AuthError>(invitation)
            })
            .await?;
        Ok(IssuedInvitation {
            token: format!("{id}.{secret}"),
            invitation,
        })
    }

    /// Revokes an invitation not yet accepted (revoking twice is fine).
    pub async fn revoke(
        &self,
        tenant: &TenantSlug,
        id: Uuid,
        by: &str,
    ) -> Result<Invitation, AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let current = not_accepted(conn, id).await?;
                if current.revoked_at.is_some() {
                    return Ok(current);
                }
                let invitation: Invitation = diesel::update(invitations::table.find(id))
                    .set(invitations::revoked_at.eq(now))
                    .returning(Invitation::as_returning())
                    .get_result(conn)
                    .await?;
                record(conn, tenant_id, "invitation_revoke", &invitation, by).await?;
                Ok(invitation)
            })
            .await
    }

    /// The invitation a link carries, if it can still be accepted; else the
    /// refusal ([`AuthError::InvitationInvalid`] for an unknown or wrong link).
    pub async fn check(&self, tenant: &TenantSlug, token: &str) -> Result<Invitation, AuthError> {
        let (id, secret) = split_handle(token).ok_or(AuthError::InvitationInvalid)?;
        let hash = sha256(secret.as_bytes());
        let found = self
            .pool
            .with_tenant(tenant, async |conn| stored(conn, id).await)
            .await?
            .filter(|s| ct_eq(&s.secret_hash, &hash))
            .ok_or(AuthError::InvitationInvalid)?;
        match found.invitation.refusal() {
            Some(refusal) => Err(refusal),
            None => Ok(found.invitation),
        }
    }

    /// Accepts an invitation: sets the password (policy-checked), marks the
    /// address verified, gives the invitation's role and activates the user,
    /// all in one transaction; the invitation is consumed by a conditional
    /// `UPDATE`, so of two concurrent accepts one wins and the other is
    /// [`AuthError::InvitationUsed`]. Accepting again answers the same.
    pub async fn accept(
        &self,
        tenant: &TenantSlug,
        token: &str,
        password: &str,
    ) -> Result<AcceptedInvitation, AuthError> {
        let invitation = self.check(tenant, token).await?;
        check_password_policy(password, Some(&invitation.email))?;
        let password_hash = self.hasher.hash(password).await?;
        let hash = split_handle(token)
            .map(|(_, secret)| sha256(secret.as_bytes()))
            .ok_or(AuthError::InvitationInvalid)?;
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let consumed: Option<Vec<u8>> = diesel::update(
                    invitations::table
                        .find(invitation.id)
                        .filter(invitations::accepted_at.is_null())
                        .filter(invitations::revoked_at.is_null())
                        .filter(invitations::expires_at.gt(now)),
                )
                .set(invitations::accepted_at.eq(now))
                .returning(invitations::secret_hash)
                .get_result(conn)
                .await
                .optional()?;
                // Re-sent in between: the hash changed and this link is dead.
                if !consumed.is_some_and(|stored| ct_eq(&stored, &hash)) {
                    let now_stored = stored(conn, invitation.id).await?;
                    return Err(now_stored
                        .and_then(|s| s.invitation.refusal())
                        .unwrap_or(AuthError::InvitationInvalid));
                }
                let n = diesel::update(
                    users::table
                        .find(invitation.user_id)
                        .filter(users::status.eq("pending")),
                )
                .set((
                    users::password_hash.eq(&password_hash),
                    users::password_changed_at.eq(now),
                    users::email_verified.eq(true),
                    users::role.eq(&invitation.role),
                    users::status.eq("active"),
                    users::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
                if n == 0 {
                    // Disabled (or activated another way) since the invite.
                    return Err(AuthError::InvitationRevoked);
                }
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::new("invitation_accept", "success")
                        .user(Some(invitation.user_id))
                        .detail(serde_json::json!({"invitation": invitation.id})),
                )
                .await?;
                Ok(AcceptedInvitation {
                    user_id: invitation.user_id,
                    email: invitation.email.clone(),
                    role: invitation.role.clone(),
                })
            })
            .await
    }
}
