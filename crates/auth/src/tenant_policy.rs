//! The tenant's settings ([`rampart_tenancy::TenantSettings`]) as the
//! accounts apply them: who may register by themselves, the tenant's
//! password length, what a password login needs (a verified e-mail address,
//! a second factor for administrators) and how long its session lives.

use diesel::ExpressionMethods;
use diesel::OptionalExtension;
use diesel::dsl::now;
use diesel_async::RunQueryDsl;
use rampart_tenancy::TenantSlug;
use rampart_tenancy::{TenantPool, TenantSettings};

use crate::audit::{AuditEvent, append};
use crate::config::AuthConfig;
use crate::context::tenant_id;
use crate::error::AuthError;
use crate::roles::Role;
use crate::schema::users;
use crate::users::User;

/// The password rules of a tenant: the built-in policy plus its minimum length.
pub fn check_tenant_password(
    settings: &TenantSettings,
    password: &str,
    email: &str,
) -> Result<(), AuthError> {
    crate::password::check_password_policy(password, Some(email))?;
    let min = settings.password_policy.min_length as usize;
    if password.chars().count() < min {
        return Err(AuthError::WeakPassword(format!(
            "must be at least {min} characters"
        )));
    }
    Ok(())
}

/// Why a correct password does not log in under the tenant's settings.
pub(crate) fn login_refusal(
    settings: &TenantSettings,
    email_verified: bool,
    role: &str,
    totp_enabled: bool,
) -> Option<AuthError> {
    if settings.email_verification_required && !email_verified {
        return Some(AuthError::EmailNotVerified);
    }
    if settings.mfa_required_for_admins && role == Role::Admin.as_str() && !totp_enabled {
        return Some(AuthError::MfaEnrollmentRequired);
    }
    None
}

/// The auth configuration with the tenant's lifetimes: its session and
/// refresh (idle) lifetimes, and its refresh grace window when it sets one
/// (0, the default, leaves the platform's `refresh_grace_secs`, itself 0).
pub(crate) fn tenant_config(config: &AuthConfig, settings: &TenantSettings) -> AuthConfig {
    AuthConfig {
        session_ttl_secs: settings.session_lifetime_secs,
        refresh_token_ttl_secs: settings.refresh_lifetime_secs,
        refresh_grace_secs: effective_grace(config, settings),
        ..config.clone()
    }
}

/// The refresh grace window of a tenant, in seconds.
pub(crate) fn effective_grace(config: &AuthConfig, settings: &TenantSettings) -> u64 {
    if settings.refresh_grace_seconds > 0 {
        settings.refresh_grace_seconds
    } else {
        config.refresh_grace_secs
    }
}

/// Inserts a user; `None` when the e-mail address is taken. Audited as
/// `action` in the same transaction.
pub(crate) async fn insert_user(
    pool: &TenantPool,
    tenant: &TenantSlug,
    email: &str,
    display_name: &str,
    hash: &str,
    role: Role,
    email_verified: bool,
) -> Result<Option<User>, AuthError> {
    let tenant_id = tenant_id(pool, tenant).await?;
    pool.with_tenant(tenant, async |conn| {
        let user: Option<User> = diesel::insert_into(users::table)
            .values((
                users::email.eq(email),
                users::display_name.eq(display_name),
                users::password_hash.eq(hash),
                users::role.eq(role.as_str()),
                users::password_changed_at.eq(now),
                users::email_verified.eq(email_verified),
            ))
            .on_conflict_do_nothing()
            .returning(<User as diesel::SelectableHelper<_>>::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        if let Some(user) = &user {
            append(
                conn,
                tenant_id,
                &AuditEvent::new("register", "success")
                    .user(Some(user.id))
                    .detail(serde_json::json!({
                        "role": role.as_str(),
                        "emailVerified": email_verified,
                    })),
            )
            .await?;
        }
        Ok(user)
    })
    .await
}
