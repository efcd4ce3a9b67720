//! [`AuthServer`]: the services of this crate bound to a tenant pool, a key
//! ring and a configuration.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rampart_tenancy::TenantPool;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::password::PasswordHasher;
use crate::{AuthConfig, AuthError, KeyEncryptionKey, KeyRing, TokenService};

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
}

/// The auth services of Rampart. Cheap to share behind an `Arc`.
pub struct AuthServer {
    pub(crate) pool: TenantPool,
    pub(crate) config: AuthConfig,
    pub(crate) tokens: TokenService,
    pub(crate) hasher: PasswordHasher,
    /// Seals TOTP secrets and refresh successors at rest.
    pub(crate) sealer: KeyEncryptionKey,
    /// Upstream OpenID Connect providers per tenant.
    pub(crate) upstreams: crate::upstream::UpstreamRegistry,
    /// Confidential clients that authenticated at introspection recently.
    pub(crate) client_cache: ClientCache,
    /// Access tokens (tenant, jti) recently checked against `access_tokens`:
    /// `true` when revoked. Cleared whenever this process revokes tokens.
    pub(crate) revocations: moka::sync::Cache<(String, String), bool>,
}

/// Key: (tenant, client_id, SHA-256 of the secret that authenticated).
pub(crate) type ClientCache =
    moka::sync::Cache<(String, String, [u8; 32]), Arc<crate::oauth::Client>>;

/// How long an authenticated client is trusted without re-reading its row
/// (a disabled client keeps introspecting at most this long).
pub(crate) const CLIENT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// Builds the services. `sealer` encrypts secrets kept in tenant tables
    /// (TOTP seeds); it may be the same KEK as the key ring's.
    pub fn new(
        pool: TenantPool,
        config: AuthConfig,
        ring: Arc<KeyRing>,
        sealer: KeyEncryptionKey,
    ) -> Result<Self, AuthError> {
        config.validate()?;
        let tokens = TokenService::new(ring, &config);
        let hasher = PasswordHasher::new(&config)?;
        let revocations = moka::sync::Cache::builder()
            .max_capacity(config.verified_token_cache_entries)
            .time_to_live(std::time::Duration::from_secs(config.revocation_check_secs))
            .build();
        Ok(Self {
            pool,
            config,
            tokens,
            hasher,
            sealer,
            upstreams: crate::upstream::UpstreamRegistry::default(),
            client_cache: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(CLIENT_CACHE_TTL)
                .build(),
            revocations,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The token service (verify access tokens here).
    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// The password hasher.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The tenant pool.
    pub fn pool(&self) -> &TenantPool {
        &self.pool
    }

    /// The issuer URL of a tenant.
    pub fn issuer(&self, tenant: &str) -> String {
        self.config.issuer(tenant)
    }

    pub(crate) async fn tenant_id(&self, tenant: &str) -> Result<Uuid, AuthError> {
        Ok(self.pool.active_tenant(tenant).await?.id)
    }
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
