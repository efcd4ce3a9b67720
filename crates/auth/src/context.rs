//! What every service of this crate shares and none of them owns: where a
//! request comes from, the clock, secrets and handles and the tenant lookup.
//! A leaf: it imports no other
//! module of the crate but the error type.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rampart_tenancy::TenantPool;
use rampart_tenancy::TenantSlug;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::AuthError;

/// Where a request comes from (for sessions, throttling and audit).
#[derive(Debug, Clone, Default)]
pub struct ClientContext {
    /// Client IP address.
    pub ip: String,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// A device label (e.g. parsed from the user agent).
    pub device: Option<String>,
}

impl ClientContext {
    /// A context for an IP (tests, internal calls).
    pub fn ip(ip: &str) -> Self {
        Self {
            ip: ip.to_owned(),
            ..Self::default()
        }
    }

    /// The same context with a `User-Agent`.
    pub fn with_user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = Some(user_agent.to_owned());
        self
    }

    /// The context of an HTTP request: its client IP and `User-Agent`, the
    /// device label being the agent's first 64 characters. The agent is kept
    /// to its first [`MAX_USER_AGENT_CHARS`] characters, as stored.
    pub fn from_request(ip: String, user_agent: Option<&str>) -> Self {
        Self {
            ip,
            device: user_agent.map(|u| bounded(u, MAX_DEVICE_CHARS).to_owned()),
            user_agent: user_agent.map(|u| bounded(u, MAX_USER_AGENT_CHARS).to_owned()),
        }
    }

    /// The `User-Agent` as stored (at most [`MAX_USER_AGENT_CHARS`]).
    pub(crate) fn stored_user_agent(&self) -> Option<&str> {
        self.user_agent
            .as_deref()
            .map(|u| bounded(u, MAX_USER_AGENT_CHARS))
    }

    /// The device label as stored (at most 64 characters, `""` when none).
    pub(crate) fn stored_device(&self) -> &str {
        bounded(self.device.as_deref().unwrap_or(""), MAX_DEVICE_CHARS)
    }
}

/// How much of a `User-Agent` sessions and login challenges keep: their rows
/// are stored inline (no TOAST table per tenant), so they are bounded.
pub const MAX_USER_AGENT_CHARS: usize = 512;
const MAX_DEVICE_CHARS: usize = 64;

/// The first `max` characters of `s`.
fn bounded(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(i, _)| &s[..i])
}

/// A connection of the pool outside any tenant (the platform tables).
pub(crate) async fn platform_conn(
    pool: &TenantPool,
) -> Result<
    diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>,
    AuthError,
> {
    pool.raw_pool()
        .get()
        .await
        .map_err(|e| AuthError::Tenancy(rampart_tenancy::TenancyError::Pool(e.to_string())))
}

/// The id of an active tenant.
pub(crate) async fn tenant_id(pool: &TenantPool, tenant: &TenantSlug) -> Result<Uuid, AuthError> {
    Ok(pool.active_tenant(tenant).await?.id)
}

/// Current unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A lifetime in seconds from the configuration as a `chrono` duration.
pub(crate) fn ttl(secs: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2))
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// `n` random bytes, base64url.
pub(crate) fn random_secret(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// Constant-time equality.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Splits `"{uuid}.{secret}"`.
pub(crate) fn split_handle(token: &str) -> Option<(Uuid, &str)> {
    let (id, secret) = token.split_once('.')?;
    if secret.is_empty() || secret.len() > 128 {
        return None;
    }
    Some((Uuid::parse_str(id).ok()?, secret))
}
