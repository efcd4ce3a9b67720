//! The typed tenant settings ([`TenantSettings`]) as values: defaults and
//! validation against the platform's bounds ([`SettingsBounds`]). Reading
//! and changing them is [`crate::TenantPool::tenant_settings`] and friends.
use serde::{Deserialize, Serialize};

use crate::TenancyError;
use crate::config::SettingsBounds;

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
        self.allowed_domains.is_empty() || self.allowed_domains.contains(&domain)
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
    /// The members' leaderboard is readable without a token (names per
    /// the members' opt-out).
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

pub(crate) fn out_of_bounds(key: &str, message: String) -> TenancyError {
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
    pub(crate) fn keys() -> Vec<String> {
        match serde_json::to_value(Self::default()) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        }
    }
}

/// RFC 7396 JSON merge patch of `patch` into `target`.
pub(crate) fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
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
