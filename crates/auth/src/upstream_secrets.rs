//! Where the client secrets of upstream providers live: never in the
//! database (the `upstream_providers` row only says whether one is stored),
//! but in a secret store behind [`UpstreamSecrets`] — Vault's KV in the
//! reference server, a directory of 0600 files in development,
//! [`MemoryUpstreamSecrets`] in tests. Values travel as
//! [`secrecy::SecretString`], so they are redacted in `Debug` output.

use rampart_tenancy::TenantSlug;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use oauth2::TokenResponse;
use secrecy::SecretString;

use crate::error::AuthError;

/// A store of upstream providers' client secrets, by tenant and provider
/// name (both already validated by the caller: slug and `[A-Za-z0-9_-]`).
#[async_trait]
pub trait UpstreamSecrets: Send + Sync + std::fmt::Debug {
    /// Stores (or replaces) the secret.
    async fn put(
        &self,
        tenant: &TenantSlug,
        provider: &str,
        secret: &SecretString,
    ) -> Result<(), AuthError>;
    /// The secret, `None` when none is stored.
    async fn get(
        &self,
        tenant: &TenantSlug,
        provider: &str,
    ) -> Result<Option<SecretString>, AuthError>;
    /// Removes the secret; removing an absent one is not an error.
    async fn delete(&self, tenant: &TenantSlug, provider: &str) -> Result<(), AuthError>;
}

/// Secrets in process memory (tests, and embedders that bring their own
/// persistence). Lost when the process ends.
#[derive(Default)]
pub struct MemoryUpstreamSecrets {
    secrets: RwLock<HashMap<(String, String), SecretString>>,
}

impl MemoryUpstreamSecrets {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryUpstreamSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryUpstreamSecrets")
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl UpstreamSecrets for MemoryUpstreamSecrets {
    async fn put(
        &self,
        tenant: &TenantSlug,
        provider: &str,
        secret: &SecretString,
    ) -> Result<(), AuthError> {
        let mut map = self.secrets.write().unwrap_or_else(PoisonError::into_inner);
        map.insert((tenant.to_string(), provider.to_owned()), secret.clone());
        Ok(())
    }

    async fn get(
        &self,
        tenant: &TenantSlug,
        provider: &str,
    ) -> Result<Option<SecretString>, AuthError> {
        let map = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(&(tenant.to_string(), provider.to_owned())).cloned())
    }

    async fn delete(&self, tenant: &TenantSlug, provider: &str) -> Result<(), AuthError> {
        let mut map = self.secrets.write().unwrap_or_else(PoisonError::into_inner);
        map.remove(&(tenant.to_string(), provider.to_owned()));
        Ok(())
    }
}

/// No secret store: reading finds nothing, storing is refused with
/// [`AuthError::NoSecretStore`] (the default of [`crate::AuthServer`], and
/// the reference server's in production mode without Vault). Providers
/// without a client secret (public clients, PKCE) still work.
#[derive(Debug, Default)]
pub struct NoUpstreamSecrets;

#[async_trait]
impl UpstreamSecrets for NoUpstreamSecrets {
    async fn put(&self, _: &TenantSlug, _: &str, _: &SecretString) -> Result<(), AuthError> {
        Err(AuthError::NoSecretStore)
    }

    async fn get(&self, _: &TenantSlug, _: &str) -> Result<Option<SecretString>, AuthError> {
        Ok(None)
    }

    async fn delete(&self, _: &TenantSlug, _: &str) -> Result<(), AuthError> {
        Ok(())
    }
}

/// Seals and opens upstream tokens (envelope encryption). `context` must be
/// given again to open: a sealed value copied to another user, provider or
/// tenant does not open. The reference server implements it with Vault
/// transit (or the development transit key of `rampart demo`).
#[async_trait::async_trait]
pub trait UpstreamTokenSealer: Send + Sync {
    /// Encrypts `plaintext`; returns a self-describing text to store.
    async fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, AuthError>;
    /// Opens what [`UpstreamTokenSealer::seal`] returned for the same context
    /// (the sealed value is UTF-8 text).
    async fn open(&self, sealed: &str, context: &[u8]) -> Result<SecretString, AuthError>;
}

/// Tokens a provider returned (login or refresh).
pub(crate) struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<Duration>,
    pub scopes: Vec<String>,
}

impl IssuedTokens {
    pub(crate) fn from_response<R: TokenResponse>(r: &R) -> Self {
        Self {
            access_token: r.access_token().secret().clone(),
            refresh_token: r.refresh_token().map(|t| t.secret().clone()),
            expires_in: r.expires_in(),
            scopes: r
                .scopes()
                .map(|s| s.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        }
    }
}

impl Drop for IssuedTokens {
    fn drop(&mut self) {
        use secrecy::zeroize::Zeroize;
        self.access_token.zeroize();
        if let Some(r) = &mut self.refresh_token {
            r.zeroize();
        }
    }
}
