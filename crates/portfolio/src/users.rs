//! Users of a tenant as the product sees them: a profile, typed preferences
//! with defaults (stored in `users.preferences`), the user's own activity
//! (portfolio changes they made and their auth audit rows), and a tenant
//! administrator's management of users (list, role, disable/enable).
//!
//! The user rows are the auth crate's: this module calls its accounts and
//! audit services and keeps the product's view (preferences with defaults,
//! assignable roles, paging). Disabling a user revokes, through auth, their
//! sessions, refresh tokens and access tokens.
use rampart_auth::audit::AuditService;
use rampart_auth::{AccountService, AuthServer, Role};
use rampart_ids::{PortfolioId, UserId};
use rampart_tenancy::TenantPool;
use rampart_tenancy::TenantSlug;
use serde::{Deserialize, Serialize};

use crate::PortfolioError;
use crate::documents;
use crate::error::from_auth;
use crate::model::{Activity, Page, paged};

/// A user's profile: the auth crate's, which owns the users table.
pub use rampart_auth::users::UserProfile as Profile;

/// Changes to one's own profile; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// Display name (1–100 characters, no control characters).
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Colour scheme of the user interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Follow the operating system.
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

/// The stored key of [`Preferences::weekly_report`].
const WEEKLY_REPORT: &str = "weekly_report";

/// A user's preferences, every field with a default. Stored as a JSON
/// object in `users.preferences`; keys this version does not know are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    /// Currency amounts are shown in (ISO 4217, default `USD`).
    pub base_currency: String,
    /// Colour scheme (default `system`).
    pub theme: Theme,
    /// Benchmark of analytics when none is asked for (default `^GSPC`).
    pub default_benchmark: String,
    /// Email notifications on or off (default on).
    pub notifications: bool,
    /// Seconds between live price updates (5–300, default 15).
    pub refresh_seconds: u32,
    /// The weekly portfolio report by e-mail (opt-in: default off; never
    /// sent while `notifications` is off).
    pub weekly_report: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            base_currency: "USD".into(),
            theme: Theme::System,
            default_benchmark: "^GSPC".into(),
            notifications: true,
            refresh_seconds: 15,
            weekly_report: false,
        }
    }
}

/// Changes to preferences; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesPatch {
    /// See [`Preferences::base_currency`].
    #[serde(default)]
    pub base_currency: Option<String>,
    /// See [`Preferences::theme`].
    #[serde(default)]
    pub theme: Option<Theme>,
    /// See [`Preferences::default_benchmark`].
    #[serde(default)]
    pub default_benchmark: Option<String>,
    /// See [`Preferences::notifications`].
    #[serde(default)]
    pub notifications: Option<bool>,
    /// See [`Preferences::refresh_seconds`].
    #[serde(default)]
    pub refresh_seconds: Option<u32>,
    /// See [`Preferences::weekly_report`].
    #[serde(default)]
    pub weekly_report: Option<bool>,
}

impl PreferencesPatch {
    /// The patch as the JSON object merged into the stored preferences.
    fn validated(self) -> Result<serde_json::Value, PortfolioError> {
        let mut out = serde_json::Map::new();
        if let Some(c) = self.base_currency {
            out.insert(
                "base_currency".into(),
                crate::model::check_currency(&c)?.into(),
            );
        }
        if let Some(t) = self.theme {
            out.insert("theme".into(), serde_json::to_value(t).unwrap_or_default());
        }
        if let Some(b) = self.default_benchmark {
            let b = b.trim().to_ascii_uppercase();
            if b.is_empty()
                || b.len() > 32
                || !b
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".^-=".contains(c))
            {
                return Err(PortfolioError::Invalid(
                    "default_benchmark: 1-32 of A-Z 0-9 . ^ - =".into(),
                ));
            }
            out.insert("default_benchmark".into(), b.into());
        }
        if let Some(n) = self.notifications {
            out.insert("notifications".into(), n.into());
        }
        if let Some(w) = self.weekly_report {
            out.insert(WEEKLY_REPORT.into(), w.into());
        }
        if let Some(r) = self.refresh_seconds {
            if !(5..=300).contains(&r) {
                return Err(PortfolioError::Invalid("refresh_seconds: 5-300".into()));
            }
            out.insert("refresh_seconds".into(), r.into());
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// Reads stored preferences; a stored value of the wrong type falls back to
/// its default rather than failing the whole read.
pub fn preferences_from(stored: &serde_json::Value) -> Preferences {
    let mut p = Preferences::default();
    let Some(o) = stored.as_object() else {
        return p;
    };
    let text = |k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    if let Some(v) = text("base_currency") {
        p.base_currency = v;
    }
    if let Some(v) = o
        .get("theme")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
    {
        p.theme = v;
    }
    if let Some(v) = text("default_benchmark") {
        p.default_benchmark = v;
    }
    if let Some(v) = o.get("notifications").and_then(|v| v.as_bool()) {
        p.notifications = v;
    }
    if let Some(v) = o.get(WEEKLY_REPORT).and_then(|v| v.as_bool()) {
        p.weekly_report = v;
    }
    if let Some(v) = o
        .get("refresh_seconds")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
    {
        p.refresh_seconds = v;
    }
    p
}

/// One row of the user's own auth audit trail: the auth crate's, which
/// owns the audit log.
pub use rampart_auth::audit::UserAuditEntry as AuditEntry;

/// The user's own history: portfolio changes they made and their auth
/// events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserActivity {
    /// Portfolio changes made by the user (with the portfolio id).
    pub portfolio: Vec<PortfolioActivity>,
    /// Auth audit rows of the user.
    pub auth: Vec<AuditEntry>,
}

/// A portfolio change with the portfolio it touched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioActivity {
    /// The portfolio.
    pub portfolio_id: PortfolioId,
    /// The change.
    #[serde(flatten)]
    pub activity: Activity,
}

/// Users of every tenant as the product sees them. The user rows belong to
/// the auth crate: profiles, roles, status and preferences go through its
/// [`AccountService`], the user's auth events through its audit log; only
/// the portfolio activity is read here. Callers establish who is acting (and
/// whether they may manage users) before calling.
#[derive(Clone)]
pub struct UserService {
    pool: TenantPool,
    accounts: AccountService,
    audit: AuditService,
}

impl std::fmt::Debug for UserService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserService").finish_non_exhaustive()
    }
}

impl UserService {
    /// A service over `pool` and the auth services of `auth`.
    pub fn new(pool: TenantPool, auth: &AuthServer) -> Self {
        Self {
            pool,
            accounts: auth.accounts().clone(),
            audit: auth.audit_trail().clone(),
        }
    }

    /// A user's profile.
    pub async fn profile(
        &self,
        tenant: &TenantSlug,
        user: UserId,
    ) -> Result<Profile, PortfolioError> {
        self.accounts.profile(tenant, user).await.map_err(from_auth)
    }

    /// Changes one's own profile.
    pub async fn update_profile(
        &self,
        tenant: &TenantSlug,
        user: UserId,
        patch: ProfilePatch,
    ) -> Result<Profile, PortfolioError> {
        let name = patch
            .display_name
            .map(|n| {
                let n = n.trim().to_owned();
                if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
                    Err(PortfolioError::Invalid(
                        "display_name: 1-100 characters, no control characters".into(),
                    ))
                } else {
                    Ok(n)
                }
            })
            .transpose()?;
        self.accounts
            .update_display_name(tenant, user, name.as_deref())
            .await
            .map_err(from_auth)
    }

    /// A user's preferences, defaults filled in.
    pub async fn preferences(
        &self,
        tenant: &TenantSlug,
        user: UserId,
    ) -> Result<Preferences, PortfolioError> {
        let stored = self
            .accounts
            .preferences(tenant, user)
            .await
            .map_err(from_auth)?;
        Ok(preferences_from(&stored))
    }

    /// Changes some preferences (keys not in the patch, including ones this
    /// version does not know, are kept).
    pub async fn update_preferences(
        &self,
        tenant: &TenantSlug,
        user: UserId,
        patch: PreferencesPatch,
    ) -> Result<Preferences, PortfolioError> {
        let merge = patch.validated()?;
        let stored = self
            .accounts
            .merge_preferences(tenant, user, &merge)
            .await
            .map_err(from_auth)?;
        Ok(preferences_from(&stored))
    }

    /// The user's own history, newest first, at most `limit` (1–200) of
    /// each kind.
    pub async fn activity(
        &self,
        tenant: &TenantSlug,
        user: UserId,
        limit: usize,
    ) -> Result<UserActivity, PortfolioError> {
        let limit = i64::try_from(limit.clamp(1, 200)).unwrap_or(200);
        let audit = self
            .audit
            .user_events(tenant, user, limit)
            .await
            .map_err(from_auth)?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows =
                    documents::activity_of_actor(conn, documents::Kind::Portfolio, user, limit)
                        .await?;
                let portfolio = rows
                    .into_iter()
                    .map(|(portfolio_id, activity)| PortfolioActivity {
                        portfolio_id: portfolio_id.into(),
                        activity,
                    })
                    .collect();
                Ok(UserActivity {
                    portfolio,
                    auth: audit,
                })
            })
            .await
    }

    /// Who gets the weekly report: active users who opted in (and have not
    /// turned notifications off), with their e-mail address.
    pub async fn weekly_report_recipients(
        &self,
        tenant: &TenantSlug,
    ) -> Result<Vec<(UserId, String)>, PortfolioError> {
        let recipients = self.accounts.opted_in(tenant, WEEKLY_REPORT).await;
        recipients.map_err(from_auth)
    }

    /// Users of the tenant by id, `limit` (1–100) at a time after `after`.
    pub async fn list(
        &self,
        tenant: &TenantSlug,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Profile>, PortfolioError> {
        let fetch = async |after, count| {
            let users = self.accounts.list_users(tenant, after, count).await;
            users.map_err(from_auth)
        };
        paged(after, limit, fetch, |p: &Profile| p.id.to_string()).await
    }

    /// Gives a user another role: any role the tenant has (its `roles`
    /// table), except `api_user`, which is for machine clients. An
    /// administrator cannot change their own role (no self-lockout).
    pub async fn set_role(
        &self,
        tenant: &TenantSlug,
        admin: UserId,
        user: UserId,
        role: &str,
    ) -> Result<Profile, PortfolioError> {
        let role = Role::parse(role)
            .filter(|r| *r != Role::ApiUser)
            .ok_or_else(|| {
                PortfolioError::Invalid("role: the name of one of the tenant's roles".into())
            })?;
        if admin == user {
            return Err(PortfolioError::Invalid(
                "an administrator cannot change their own role".into(),
            ));
        }
        self.accounts
            .assign_role(tenant, user, role)
            .await
            .map_err(from_auth)
    }

    /// Disables (`active = false`) or re-enables a user. Disabling revokes
    /// the user's sessions, refresh tokens and access tokens (through auth,
    /// which also forgets its cached verdicts). An administrator cannot
    /// disable themselves.
    pub async fn set_active(
        &self,
        tenant: &TenantSlug,
        admin: UserId,
        user: UserId,
        active: bool,
    ) -> Result<Profile, PortfolioError> {
        if admin == user && !active {
            return Err(PortfolioError::Invalid(
                "an administrator cannot disable themselves".into(),
            ));
        }
        let profile = if active {
            self.accounts.enable_user(tenant, user).await
        } else {
            self.accounts.disable_user(tenant, user).await
        };
        profile.map_err(from_auth)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stored_preferences_fill_in_defaults_and_survive_bad_values() {
        assert_eq!(
            preferences_from(&serde_json::json!(null)),
            Preferences::default()
        );
        let p = preferences_from(&serde_json::json!({
            "theme": "dark", "notifications": "yes", "refresh_seconds": -1, "other": 1
        }));
        assert_eq!(p.theme, Theme::Dark);
        assert!(p.notifications, "a wrong type keeps the default");
        assert_eq!(p.refresh_seconds, 15);
        assert_eq!(p.base_currency, "USD");
    }

    #[test]
    fn patches_are_validated_and_normalized() {
        let merge = PreferencesPatch {
            base_currency: Some("chf".into()),
            default_benchmark: Some(" spy ".into()),
            ..PreferencesPatch::default()
        }
        .validated()
        .unwrap();
        assert_eq!(
            merge,
            serde_json::json!({"base_currency": "CHF", "default_benchmark": "SPY"})
        );
        for bad in [
            PreferencesPatch {
                refresh_seconds: Some(301),
                ..PreferencesPatch::default()
            },
            PreferencesPatch {
                base_currency: Some("US".into()),
                ..PreferencesPatch::default()
            },
            PreferencesPatch {
                default_benchmark: Some(String::new()),
                ..PreferencesPatch::default()
            },
        ] {
            assert!(bad.validated().is_err());
        }
    }
}
