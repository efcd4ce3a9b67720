//! Address verification and password reset by e-mail.
//!
//! A link carries `"{id}.{secret}"`: the row id and 256 random bits. Only the
//! SHA-256 of the secret is stored, so a database leak yields no usable
//! link; the row holds the purpose, the address it was sent to, the expiry
//! and `used_at` (single use, consumed by a conditional `UPDATE`). An
//! unguessable stored secret needs no signing key to rotate and can be
//! revoked, which a stateless signed token could not.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use diesel::dsl::{IntervalDsl, exists, now};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_auth::audit::AuditEvent;
use rampart_auth::{AuthServer, ClientContext, directory};
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::mail::{MailKind, Outgoing};
use crate::schema::email_tokens;
use crate::{Notifier, NotifyError};

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    VerifyEmail,
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::PasswordReset => "password_reset",
        }
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn split_token(token: &str) -> Option<(Uuid, &str)> {
    let (id, secret) = token.split_once('.')?;
    let id = Uuid::parse_str(id).ok()?;
    (!secret.is_empty() && secret.len() <= 128).then_some((id, secret))
}

/// The shortest time between two links of one purpose to one user, so the
/// public routes cannot be used to flood someone's mailbox.
pub const RESEND_INTERVAL_SECS: i32 = 60;

/// Issues a token row and returns its handle; `None` when one was issued
/// less than [`RESEND_INTERVAL_SECS`] ago.
async fn issue_token(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    purpose: Purpose,
    email: &str,
    expires_at: DateTime<Utc>,
) -> Result<Option<String>, NotifyError> {
    let of_user = email_tokens::table
        .filter(email_tokens::user_id.eq(user_id))
        .filter(email_tokens::purpose.eq(purpose.as_str()));
    let recent: bool = diesel::select(exists(
        of_user.filter((email_tokens::created_at + RESEND_INTERVAL_SECS.seconds()).gt(now)),
    ))
    .get_result(conn)
    .await?;
    if recent {
        return Ok(None);
    }
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = B64.encode(secret);
    // A new link replaces the unused ones of the same purpose.
    diesel::update(of_user.filter(email_tokens::used_at.is_null()))
        .set(email_tokens::used_at.eq(now))
        .execute(conn)
        .await?;
    let id: Uuid = diesel::insert_into(email_tokens::table)
        .values((
            email_tokens::user_id.eq(user_id),
            email_tokens::purpose.eq(purpose.as_str()),
            email_tokens::secret_hash.eq(sha256(secret.as_bytes())),
            email_tokens::email.eq(email),
            email_tokens::expires_at.eq(expires_at),
        ))
        .returning(email_tokens::id)
        .get_result(conn)
        .await?;
    Ok(Some(format!("{id}.{secret}")))
}

/// The token `id` of `purpose` if it is unused and unexpired.
#[diesel::dsl::auto_type]
fn usable_token(id: Uuid, purpose: &'static str) -> _ {
    email_tokens::table.find(id).filter(
        email_tokens::purpose
            .eq(purpose)
            .and(email_tokens::used_at.is_null())
            .and(email_tokens::expires_at.gt(now)),
    )
}

/// Consumes a token of `purpose`; returns its user and the address it was
/// sent to. Unknown, expired, used and wrong-purpose tokens are all
/// [`NotifyError::InvalidToken`].
async fn consume_token(
    conn: &mut AsyncPgConnection,
    token: &str,
    purpose: Purpose,
) -> Result<(UserId, String), NotifyError> {
    let (id, secret) = split_token(token).ok_or(NotifyError::InvalidToken)?;
    let row: Option<(UserId, Vec<u8>, String)> = usable_token(id, purpose.as_str())
        .select((
            email_tokens::user_id,
            email_tokens::secret_hash,
            email_tokens::email,
        ))
        .for_update()
        .first(conn)
        .await
        .optional()?;
    let (user_id, _, email) = row
        .filter(|(_, hash, _)| ct_eq(hash, &sha256(secret.as_bytes())))
        .ok_or(NotifyError::InvalidToken)?;
    let used = diesel::update(
        email_tokens::table
            .find(id)
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(now))
    .execute(conn)
    .await?;
    if used != 1 {
        return Err(NotifyError::InvalidToken);
    }
    Ok((user_id, email))
}

fn ttl(secs: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2))
}

impl Notifier {
    fn link(&self, tenant: &TenantSlug, path: &str, token: &str) -> String {
        format!(
            "{}/api/v1/t/{tenant}/{path}?token={token}",
            self.config.public_base_url.trim_end_matches('/')
        )
    }

    /// Mails `user_id` a link that confirms their current address. Already
    /// verified users, and users mailed a link less than
    /// [`RESEND_INTERVAL_SECS`] ago, get nothing (`Ok(false)`).
    pub async fn send_verification(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
    ) -> Result<bool, NotifyError> {
        let expires_at = Utc::now() + ttl(self.config.verification_ttl_secs);
        let issued = self
            .pool
            .with_tenant(tenant, async |conn| {
                let Some(user) = directory::unverified_contact(conn, user_id).await? else {
                    return Ok(None);
                };
                let token =
                    issue_token(conn, user.id, Purpose::VerifyEmail, &user.email, expires_at)
                        .await?;
                Ok::<_, NotifyError>(token.map(|t| (user.email, t)))
            })
            .await?;
        let Some((email, token)) = issued else {
            return Ok(false);
        };
        let link = self.link(tenant, "email/verify", &token);
        let hours = self.config.verification_ttl_secs / 3600;
        self.mail(
            tenant,
            Outgoing {
                user_id,
                to: &email,
                kind: MailKind::VerifyEmail,
                html: None,
                subject: "Confirm your e-mail address".into(),
                body: format!(
                    "Please confirm that this is your address by opening this link:\n\n{link}\n\n\
                         The link works once and expires in {hours} hours. If you did not create \
                         an account, ignore this message.\n"
                ),
            },
        )
        .await?;
        Ok(true)
    }

    /// Confirms an address from a verification link: sets
    /// `users.email_verified` if the user's address is still the one the link
    /// was sent to. Returns the user.
    pub async fn confirm_email(
        &self,
        tenant: &TenantSlug,
        token: &str,
    ) -> Result<UserId, NotifyError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let (user_id, email) = consume_token(conn, token, Purpose::VerifyEmail).await?;
                if !directory::mark_email_verified(conn, user_id, &email).await? {
                    return Err(NotifyError::InvalidToken);
                }
                Ok(user_id)
            })
            .await
    }

    /// Starts account recovery: mails a reset link to `email` if it names an
    /// active user (at most one link per [`RESEND_INTERVAL_SECS`]). Says
    /// nothing about whether it does (`Ok(())` either way), so the route
    /// cannot be used to probe for accounts.
    pub async fn request_password_reset(
        &self,
        tenant: &TenantSlug,
        email: &str,
    ) -> Result<(), NotifyError> {
        let account = email.trim().to_lowercase();
        let expires_at = Utc::now() + ttl(self.config.reset_ttl_secs);
        let issued = self
            .pool
            .with_tenant(tenant, async |conn| {
                let Some(user) = directory::active_contact_by_email(conn, &account).await? else {
                    return Ok(None);
                };
                let token = issue_token(
                    conn,
                    user.id,
                    Purpose::PasswordReset,
                    &user.email,
                    expires_at,
                )
                .await?;
                Ok::<_, NotifyError>(token.map(|t| (user, t)))
            })
            .await?;
        let Some((user, token)) = issued else {
            return Ok(());
        };
        let link = self.link(tenant, "password/reset", &token);
        let minutes = self.config.reset_ttl_secs / 60;
        self.mail(
            tenant,
            Outgoing {
                user_id: user.id,
                to: &user.email,
                kind: MailKind::PasswordReset,
                html: None,
                subject: "Reset your password".into(),
                body: format!(
                    "Someone asked to reset the password of your account. To choose a new \
                         password, open this link:\n\n{link}\n\nThe link works once and expires in \
                         {minutes} minutes. Every session of the account is signed out when the \
                         password changes. If you did not ask for this, ignore this message.\n"
                ),
            },
        )
        .await
    }

    /// Completes account recovery: checks `new_password` against the auth
    /// crate's policy, consumes the link, stores the new hash (clearing any
    /// lockout) and revokes every session of the user. Returns the user.
    pub async fn reset_password(
        &self,
        auth: &AuthServer,
        tenant: &TenantSlug,
        token: &str,
        new_password: &str,
        ctx: &ClientContext,
    ) -> Result<UserId, NotifyError> {
        // Peek at the address first so the policy (which refuses passwords
        // containing the address) runs before the link is spent.
        let (id, _) = split_token(token).ok_or(NotifyError::InvalidToken)?;
        let email = self
            .pool
            .with_tenant(tenant, async |conn| {
                let email: Option<String> = usable_token(id, Purpose::PasswordReset.as_str())
                    .select(email_tokens::email)
                    .first(conn)
                    .await
                    .optional()?;
                email.ok_or(NotifyError::InvalidToken)
            })
            .await?;
        rampart_auth::password::check_password_policy(new_password, Some(&email.to_lowercase()))?;
        let hash = auth.hasher().hash(new_password).await?;
        let user_id = self
            .pool
            .with_tenant(tenant, async |conn| {
                let (user_id, _) = consume_token(conn, token, Purpose::PasswordReset).await?;
                if !directory::reset_password_hash(conn, user_id, &hash).await? {
                    return Err(NotifyError::InvalidToken);
                }
                Ok(user_id)
            })
            .await?;
        // Nil is no session's id: every session goes.
        auth.revoke_other_sessions(tenant, user_id, Uuid::nil(), ctx)
            .await?;
        auth.audit(
            tenant,
            AuditEvent::new("password_reset", "success")
                .user(Some(user_id))
                .client(ctx),
        )
        .await?;
        // Tell the owner, so a reset they did not make does not go unseen.
        // The password is changed already: a mail that fails is logged.
        let sent = self
            .mailer
            .send(
                &self.pool,
                tenant,
                Outgoing {
                    user_id,
                    to: &email,
                    kind: MailKind::PasswordChanged,
                    html: None,
                    subject: "Your password was changed".into(),
                    body: format!(
                        "The password of your account was changed through a reset link{from}. \
                         Every session was signed out; a second factor, if you use one, stays \
                         on. If this was not you, contact your administrator at once.\n",
                        from = if ctx.ip.is_empty() {
                            String::new()
                        } else {
                            format!(" from {}", ctx.ip)
                        }
                    ),
                },
            )
            .await;
        if let Err(e) = sent {
            tracing::warn!(%tenant, error = %e, "password-changed mail not sent");
        }
        Ok(user_id)
    }
}
