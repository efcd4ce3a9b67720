//! The typed tenant settings ([`TenantSettings`]): defaults, validation
//! against the platform's bounds ([`SettingsBounds`]), a per-process cache,
//! and changes as JSON merge patches.
//!
//! They live in the registry row's `settings` column (next to any untyped
//! keys of [`TenantPool::set_setting`], which they leave alone). Reads go
//! through a cache of `TenancyConfig::settings_cache_ttl_ms`: a change made
//! through this pool is seen by it at once; other replicas see it within
//! that TTL (the bound the documentation promises: 2 s by default).
use std::sync::Arc;

use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::schema::tenants;
use crate::{TenancyError, TenantPool, TenantSlug};

/// Who may create an account by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Nobody: accounts are made by administrators only.
    Closed,
    /// Only through an invitation.
    #[default]
    InvitationOnly,
    /// Anyone whose e-mail domain is in `allowedDomains` (all domains when
    /// the list is empty).
    Open,
}

/// The registration policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RegistrationPolicy {
    /// Who may register.
    pub mode: RegistrationMode,
    /// E-mail domains allowed to register when `mode` is `open` (lowercase,
    /// exact match; empty: any domain).
    pub allowed_domains: Vec<String>,
}

impl RegistrationPolicy {
    /// Whether an address's domain may register under an open policy.
    pub fn domain_allowed(&self, email: &str) -> bool {
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        self.allowed_domains.is_empty() || self.allowed_domains.iter().any(|d| *d == domain)
    }
}

/// Which local account an upstream (OpenID) identity may be linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamLinking {
    /// Never link by e-mail.
    None,
    /// Link to the local account with the same, verified, e-mail address.
    #[default]
    VerifiedEmail,
}

/// The tenant's password rules (on top of the built-in ones: not a common
/// password, not the e-mail address, at most 1 KiB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Minimum length in characters.
    pub min_length: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 12 }
    }
}

/// Every typed tenant setting, with its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TenantSettings {
    /// Who may register.
    pub registration: RegistrationPolicy,
    /// Login needs a verified e-mail address.
    pub email_verification_required: bool,
    /// Administrators must have a second factor to log in.
    pub mfa_required_for_admins: bool,
    /// Login session lifetime in seconds (within the platform's bounds).
    pub session_lifetime_secs: u64,
    /// Refresh token (idle) lifetime in seconds (within the platform's bounds).
    pub refresh_lifetime_secs: u64,
    /// Password rules.
    pub password_policy: PasswordPolicy,
    /// Members' leaderboard readable by every user of the tenant.
    pub public_leaderboard: bool,
    /// Linking of upstream identities to local accounts.
    pub upstream_linking: UpstreamLinking,
    /// A refresh retried within this many seconds gets the unused successor
    /// back once (0: off).
    pub refresh_grace_seconds: u64,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            registration: RegistrationPolicy::default(),
            email_verification_required: true,
            mfa_required_for_admins: false,
            session_lifetime_secs: 7 * 24 * 3600,
            refresh_lifetime_secs: 7 * 24 * 3600,
            password_policy: PasswordPolicy::default(),
            public_leaderboard: false,
            upstream_linking: UpstreamLinking::default(),
            refresh_grace_seconds: 0,
        }
    }
}

/// The platform's limits on tenant settings (`[database.settings_bounds]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsBounds {
    /// Shortest session lifetime.
    pub session_lifetime_min_secs: u64,
    /// Longest session lifetime.
    pub session_lifetime_max_secs: u64,
    /// Shortest refresh token lifetime.
    pub refresh_lifetime_min_secs: u64,
    /// Longest refresh token lifetime.
    pub refresh_lifetime_max_secs: u64,
    /// Longest refresh grace.
    pub refresh_grace_max_secs: u64,
    /// Smallest minimum password length a tenant may set.
    pub password_min_length_min: u32,
    /// Largest minimum password length a tenant may set.
    pub password_min_length_max: u32,
    /// Most e-mail domains in the registration allow-list.
    pub max_allowed_domains: usize,
}

impl Default for SettingsBounds {
    fn default() -> Self {
        Self {
            session_lifetime_min_secs: 5 * 60,
            session_lifetime_max_secs: 30 * 24 * 3600,
            refresh_lifetime_min_secs: 5 * 60,
            refresh_lifetime_max_secs: 90 * 24 * 3600,
            refresh_grace_max_secs: 60,
            password_min_length_min: 12,
            password_min_length_max: 128,
            max_allowed_domains: 100,
        }
    }
}

fn out_of_bounds(key: &str, message: String) -> TenancyError {
    TenancyError::Setting {
        key: key.to_owned(),
        message,
    }
}

fn within(key: &str, value: u64, min: u64, max: u64) -> Result<(), TenancyError> {
    if value < min || value > max {
        return Err(out_of_bounds(
            key,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(())
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && !d.starts_with(['.', '-'])
        && !d.ends_with(['.', '-'])
        && d.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

impl TenantSettings {
    /// Checks every value against `bounds`; the first offending key is
    /// named in [`TenancyError::Setting`].
    pub fn validate(&self, bounds: &SettingsBounds) -> Result<(), TenancyError> {
        within(
            "sessionLifetimeSecs",
            self.session_lifetime_secs,
            bounds.session_lifetime_min_secs,
            bounds.session_lifetime_max_secs,
        )?;
        within(
            "refreshLifetimeSecs",
            self.refresh_lifetime_secs,
            bounds.refresh_lifetime_min_secs,
            bounds.refresh_lifetime_max_secs,
        )?;
        within(
            "refreshGraceSeconds",
            self.refresh_grace_seconds,
            0,
            bounds.refresh_grace_max_secs,
        )?;
        within(
            "passwordPolicy.minLength",
            u64::from(self.password_policy.min_length),
            u64::from(bounds.password_min_length_min),
            u64::from(bounds.password_min_length_max),
        )?;
        let domains = &self.registration.allowed_domains;
        if domains.len() > bounds.max_allowed_domains {
            return Err(out_of_bounds(
                "registration.allowedDomains",
                format!("at most {} domains", bounds.max_allowed_domains),
            ));
        }
        if let Some(bad) = domains.iter().find(|d| !valid_domain(d)) {
            return Err(out_of_bounds(
                "registration.allowedDomains",
                format!(
                    "{:?} is not a lowercase domain name",
                    bad.chars().take(64).collect::<String>()
                ),
            ));
        }
        Ok(())
    }

    /// The keys of the `settings` column these settings own.
    fn keys() -> Vec<String> {
        match serde_json::to_value(Self::default()) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        }
    }
}

/// RFC 7396 JSON merge patch of `patch` into `target`.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
    }
}

fn parse_settings(value: serde_json::Value) -> Result<TenantSettings, TenancyError> {
    serde_json::from_value(value).map_err(|e| TenancyError::Setting {
        key: "*".into(),
        message: e.to_string(),
    })
}

impl TenantPool {
    /// The typed settings of a tenant (defaults for what is unset), from the
    /// cache (see the module documentation for how fresh).
    pub async fn tenant_settings(&self, slug: &str) -> Result<Arc<TenantSettings>, TenancyError> {
        let slug = TenantSlug::parse(slug)?;
        if let Some(s) = self.inner.settings_cache.get(slug.as_str()).await {
            return Ok(s);
        }
        let settings = Arc::new(parse_settings(self.settings(slug.as_str()).await?)?);
        self.inner
            .settings_cache
            .insert(slug.as_str().to_owned(), settings.clone())
            .await;
        Ok(settings)
    }

    /// Applies a JSON merge patch (RFC 7396: `null` resets a setting to its
    /// default) to the typed settings, validates the result against the
    /// platform bounds and stores it. Returns the settings before and after.
    /// Unknown keys and wrong types are [`TenancyError::Setting`].
    pub async fn update_tenant_settings(
        &self,
        slug: &str,
        patch: &serde_json::Value,
    ) -> Result<(TenantSettings, TenantSettings), TenancyError> {
        if !patch.is_object() {
            return Err(out_of_bounds("*", "the patch must be a JSON object".into()));
        }
        let slug = TenantSlug::parse(slug)?;
        let bounds = &self.inner.config.settings_bounds;
        let keys = TenantSettings::keys();
        if let serde_json::Value::Object(p) = patch
            && let Some(unknown) = p.keys().find(|k| !keys.contains(k))
        {
            return Err(out_of_bounds(
                &unknown.chars().take(100).collect::<String>(),
                "unknown setting".into(),
            ));
        }
        let mut conn = self.conn().await?;
        let result = conn
            .transaction::<_, TenancyError, _>(async |conn| {
                {
                    // FOR UPDATE: concurrent patches apply one after the other.
                    let stored: serde_json::Value = tenants::table
                        .filter(tenants::slug.eq(slug.as_str()))
                        .filter(tenants::status.ne("purged"))
                        .select(tenants::settings)
                        .for_update()
                        .first(conn)
                        .await
                        .optional()?
                        .ok_or_else(|| TenancyError::NotFound(slug.to_string()))?;
                    let before = parse_settings(stored.clone())?;
                    // Only the typed keys: untyped ones stay as they are.
                    let mut typed = serde_json::to_value(&before)
                        .map_err(|e| out_of_bounds("*", e.to_string()))?;
                    merge_patch(&mut typed, patch);
                    // Keys reset with `null` fall back to their defaults.
                    let mut full = serde_json::to_value(TenantSettings::default())
                        .map_err(|e| out_of_bounds("*", e.to_string()))?;
                    merge_patch(&mut full, &typed);
                    let after: TenantSettings = serde_json::from_value(full)
                        .map_err(|e| out_of_bounds("*", e.to_string()))?;
                    after.validate(bounds)?;
                    let after_json = serde_json::to_value(&after)
                        .map_err(|e| out_of_bounds("*", e.to_string()))?;
                    diesel::update(tenants::table.filter(tenants::slug.eq(slug.as_str())))
                        .set((
                            tenants::settings.eq(tenants::settings.concat(after_json)),
                            tenants::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                    Ok::<_, TenancyError>((before, after))
                }
            })
            .await;
        self.inner.settings_cache.invalidate(slug.as_str()).await;
        result
    }

    /// Forgets the cached settings of a tenant (e.g. after a change made
    /// with [`TenantPool::set_setting`]).
    pub async fn forget_tenant_settings(&self, slug: &str) {
        self.inner.settings_cache.invalidate(slug).await;
    }
}
