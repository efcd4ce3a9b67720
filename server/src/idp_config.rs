//! Upstream identity providers declared in the configuration file
//! (`[[upstream_providers]]`), applied at start through the same service
//! as the CLI and the admin API ([`rampart_auth::UpstreamService::put_provider`],
//! create or replace; re-applying an unchanged declaration writes nothing).
//! The client secret is never written in the file: it is read from a Vault
//! KV secret (`client_secret_vault_path`) or an environment variable
//! (`client_secret_env`), then kept in the secret store.
//!
//! ```toml
//! [[upstream_providers]]
//! tenant = "acme"
//! name = "google"
//! display_name = "Google"
//! issuer = "https://accounts.google.com"
//! client_id = "1234.apps.googleusercontent.com"
//! client_secret_env = "ACME_GOOGLE_CLIENT_SECRET"
//! scopes = ["email", "profile"]
//! ```
//!
//! A known provider is declared by its preset, which fills its documented
//! name, display name, issuer, endpoints, scopes and audience (any of them
//! may still be given to override it):
//!
//! ```toml
//! [[upstream_providers]]
//! tenant = "acme"
//! preset = "tradestation"
//! client_id = "…"
//! client_secret_env = "ACME_TRADESTATION_CLIENT_SECRET"
//! ```
use rampart_auth::{AuthError, AuthServer, Role, UpstreamPreset, UpstreamProvider};
use rampart_tenancy::TenantSlug;
use rampart_vault::SecretStore;
use secrecy::SecretString;
use serde::Deserialize;

/// One declared provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredProvider {
    /// The tenant's slug.
    pub tenant: TenantSlug,
    /// A known provider (`tradestation`) whose documented settings fill
    /// every field left out.
    #[serde(default)]
    pub preset: Option<UpstreamPreset>,
    /// Name (in URLs): `[A-Za-z0-9_-]`; a preset's own name when left out.
    #[serde(default)]
    pub name: String,
    /// Shown on the login page (a preset's when left out).
    #[serde(default)]
    pub display_name: String,
    /// Issuer (`https://`, or `http://` on loopback; a preset's when left out).
    #[serde(default)]
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our callback URL; default
    /// `{public_base_url}/t/{tenant}/login/upstream/{name}/callback`.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// Scopes besides `openid`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Allow e-mail linking (with the tenant's `upstreamLinking` setting).
    #[serde(default)]
    pub link_verified_email: bool,
    /// Role of users created by a first login (default `viewer`).
    #[serde(default)]
    pub new_user_role: Option<Role>,
    /// The `audience` of the authorization request (a preset's when left out).
    #[serde(default)]
    pub audience: Option<String>,
    /// Explicit endpoints (all three, or none for discovery).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// See `authorization_endpoint`.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// See `authorization_endpoint`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Enabled (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A Vault KV path (under the configured prefix) holding the client
    /// secret in field `client_secret_vault_field`.
    #[serde(default)]
    pub client_secret_vault_path: Option<String>,
    /// The field of `client_secret_vault_path` (default `client_secret`).
    #[serde(default)]
    pub client_secret_vault_field: Option<String>,
    /// An environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
}

fn yes() -> bool {
    true
}

/// A client secret from the environment variable `var`.
pub(crate) fn env_secret(var: &str) -> anyhow::Result<SecretString> {
    let value =
        std::env::var(var).map_err(|_| anyhow::anyhow!("environment variable {var} is not set"))?;
    Ok(SecretString::from(value))
}

/// A provider's callback URL on this server:
/// `{public_base_url}/t/{tenant}/login/upstream/{name}/callback`.
pub fn default_redirect_uri(public_base_url: &str, tenant: &str, name: &str) -> String {
    format!(
        "{}/t/{tenant}/login/upstream/{name}/callback",
        public_base_url.trim_end_matches('/')
    )
}

impl DeclaredProvider {
    /// What is wrong with this declaration on its own.
    pub fn problems(&self, vault_configured: bool) -> Vec<String> {
        let mut out = Vec::new();
        let at = format!("upstream_providers[{}/{}]", self.tenant, self.name());
        if self.client_secret_vault_path.is_some() && self.client_secret_env.is_some() {
            out.push(format!(
                "{at}: client_secret_vault_path and client_secret_env are exclusive"
            ));
        }
        if self.client_secret_vault_path.is_some() && !vault_configured {
            out.push(format!("{at}: client_secret_vault_path needs [vault]"));
        }
        out
    }

    /// Its name: as declared, else its preset's.
    fn name(&self) -> &str {
        match (&self.preset, self.name.is_empty()) {
            (Some(preset), true) => preset.as_str(),
            _ => &self.name,
        }
    }

    async fn client_secret(
        &self,
        vault: Option<&SecretStore>,
    ) -> anyhow::Result<Option<SecretString>> {
        let at = format!("upstream provider {}/{}", self.tenant, self.name());
        if let Some(var) = &self.client_secret_env {
            let secret = env_secret(var).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
            return Ok(Some(secret));
        }
        if let Some(path) = &self.client_secret_vault_path {
            let store = vault.ok_or_else(|| anyhow::anyhow!("{at}: Vault is not configured"))?;
            let field = self
                .client_secret_vault_field
                .as_deref()
                .unwrap_or("client_secret");
            let secret = store
                .read_kv(path)
                .await
                .map_err(|e| anyhow::anyhow!("{at}: Vault secret {path}: {e}"))?;
            let value = secret
                .get_str(field)
                .ok_or_else(|| anyhow::anyhow!("{at}: Vault secret {path} has no field {field}"))?;
            return Ok(Some(SecretString::from(value.to_owned())));
        }
        Ok(None)
    }

    /// The provider to register.
    async fn provider(
        &self,
        public_base_url: &str,
        vault: Option<&SecretStore>,
    ) -> anyhow::Result<UpstreamProvider> {
        Ok(UpstreamProvider {
            preset: self.preset,
            name: self.name().to_owned(),
            display_name: self.display_name.clone(),
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret(vault).await?,
            redirect_uri: self.redirect_uri.clone().unwrap_or_else(|| {
                default_redirect_uri(public_base_url, &self.tenant, self.name())
            }),
            scopes: self.scopes.clone(),
            link_verified_email: self.link_verified_email,
            new_user_role: self.new_user_role.unwrap_or(Role::Viewer),
            authorization_endpoint: self.authorization_endpoint.clone(),
            token_endpoint: self.token_endpoint.clone(),
            jwks_uri: self.jwks_uri.clone(),
            audience: self.audience.clone(),
            enabled: self.enabled,
            ..UpstreamProvider::default()
        })
    }
}

/// Registers (or replaces) every declared provider. A missing secret, an
/// invalid field or an unknown tenant stops the start; a provider that
/// cannot be reached right now is logged and left as it was stored.
pub async fn apply(
    declared: &[DeclaredProvider],
    public_base_url: &str,
    auth: &AuthServer,
    vault: Option<&SecretStore>,
) -> anyhow::Result<()> {
    for d in declared {
        let provider = d.provider(public_base_url, vault).await?;
        match auth
            .upstream()
            .put_provider(&d.tenant, provider, true, "config")
            .await
        {
            Ok(info) => tracing::info!(
                tenant = %d.tenant,
                provider = info.name,
                "upstream provider from configuration"
            ),
            Err(AuthError::UpstreamDiscovery(e)) => tracing::warn!(
                tenant = %d.tenant,
                provider = d.name(),
                error = %e,
                "declared upstream provider not checked; kept as stored"
            ),
            Err(e) => {
                anyhow::bail!("upstream provider {}/{}: {e}", d.tenant, d.name())
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use figment::providers::{Format, Toml};

    /// A provider declared by its preset alone (and its client) takes the
    /// preset's name and callback; the auth crate fills the rest when it is
    /// stored.
    #[tokio::test]
    async fn a_declared_preset_needs_only_its_client() {
        #[derive(Deserialize)]
        struct File {
            upstream_providers: Vec<DeclaredProvider>,
        }
        let file: File = figment::Figment::from(Toml::string(
            r#"
            [[upstream_providers]]
            tenant = "acme"
            preset = "tradestation"
            client_id = "ts-client"
            "#,
        ))
        .extract()
        .unwrap();
        let d = &file.upstream_providers[0];
        assert!(d.problems(false).is_empty());
        let p = d.provider("https://rampart.example/", None).await.unwrap();
        assert_eq!(p.preset, Some(UpstreamPreset::TradeStation));
        assert_eq!(p.name, "tradestation");
        assert_eq!(
            p.redirect_uri,
            "https://rampart.example/t/acme/login/upstream/tradestation/callback"
        );
        assert!(
            p.issuer.is_empty() && p.scopes.is_empty(),
            "left to the preset"
        );
    }
}
