//! Where the server keeps upstream identity providers' client secrets
//! ([`UpstreamSecrets`]): in Vault's KV at
//! `<path_prefix>/auth/upstream/<tenant>/<provider>` (field `client_secret`)
//! when Vault is configured; otherwise, in dev mode only, in 0600 files
//! under `dev_secrets_dir/upstream/<tenant>/<provider>`. In production mode
//! without Vault none is stored ([`NoUpstreamSecrets`]: a clear error).
use rampart_tenancy::TenantSlug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rampart_auth::{AuthError, NoUpstreamSecrets, UpstreamSecrets};
use rampart_vault::{SecretStore, VaultError};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Mode, ServerConfig};

/// Where the secrets live in Vault, relative to the store's path prefix.
pub const UPSTREAM_PATH: &str = "auth/upstream";

/// The secret store the configuration calls for.
pub fn upstream_secrets(
    config: &ServerConfig,
    vault: Option<&Arc<SecretStore>>,
) -> Arc<dyn UpstreamSecrets> {
    match (vault, config.mode) {
        (Some(store), _) => Arc::new(VaultUpstreamSecrets::new(store.clone())),
        (None, Mode::Dev) => Arc::new(DevUpstreamSecrets::new(
            config.dev_secrets_dir.join("upstream"),
        )),
        (None, Mode::Production) => Arc::new(NoUpstreamSecrets),
    }
}

/// Client secrets in Vault's KV, through the server's own login.
#[derive(Clone)]
pub struct VaultUpstreamSecrets {
    store: Arc<SecretStore>,
}

impl std::fmt::Debug for VaultUpstreamSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultUpstreamSecrets")
            .field("path", &UPSTREAM_PATH)
            .finish_non_exhaustive()
    }
}

impl VaultUpstreamSecrets {
    /// Secrets under `<path_prefix>/auth/upstream` of `store`'s KV mount.
    pub fn new(store: Arc<SecretStore>) -> Self {
        Self { store }
    }

    /// The KV path of a provider's secret.
    pub fn path(tenant: &str, provider: &str) -> String {
        format!("{UPSTREAM_PATH}/{tenant}/{provider}")
    }
}

fn store_err(e: VaultError) -> AuthError {
    AuthError::SecretStore(e.to_string())
}

#[async_trait]
impl UpstreamSecrets for VaultUpstreamSecrets {
    async fn put(
        &self,
        tenant: &TenantSlug,
        provider: &str,
        secret: &SecretString,
    ) -> Result<(), AuthError> {
        let mut fields = serde_json::Map::new();
        fields.insert(
            "client_secret".into(),
            secret.expose_secret().to_owned().into(),
        );
        self.store
            .write_kv(&Self::path(tenant, provider), &fields)
            .await
            .map(drop)
            .map_err(store_err)
    }

    async fn get(
        &self,
        tenant: &TenantSlug,
        provider: &str,
    ) -> Result<Option<SecretString>, AuthError> {
        match self.store.read_kv(&Self::path(tenant, provider)).await {
            Ok(secret) => Ok(secret.get_str("client_secret").map(SecretString::from)),
            Err(VaultError::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn delete(&self, tenant: &TenantSlug, provider: &str) -> Result<(), AuthError> {
        self.store
            .delete_kv(&Self::path(tenant, provider))
            .await
            .map_err(store_err)
    }
}

/// Client secrets as 0600 files in a directory (dev mode without Vault,
/// `rampart demo`).
#[derive(Debug, Clone)]
pub struct DevUpstreamSecrets {
    dir: PathBuf,
}

impl DevUpstreamSecrets {
    /// Secrets under `dir/<tenant>/<provider>`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn file(&self, tenant: &TenantSlug, provider: &str) -> PathBuf {
        self.dir.join(tenant.as_str()).join(provider)
    }
}

fn io_err(path: &Path, e: std::io::Error) -> AuthError {
    AuthError::SecretStore(format!("{}: {e}", path.display()))
}

#[async_trait]
impl UpstreamSecrets for DevUpstreamSecrets {
    async fn put(
        &self,
        tenant: &TenantSlug,
        provider: &str,
        secret: &SecretString,
    ) -> Result<(), AuthError> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = self.file(tenant, provider);
        let dir = self.dir.join(tenant.as_str());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io_err(&dir, e))?;
        // Written beside it and renamed: never a half-written secret.
        let tmp = dir.join(format!(".{provider}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        file.write_all(secret.expose_secret().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))
    }

    async fn get(
        &self,
        tenant: &TenantSlug,
        provider: &str,
    ) -> Result<Option<SecretString>, AuthError> {
        let path = self.file(tenant, provider);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(SecretString::from(s))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    async fn delete(&self, tenant: &TenantSlug, provider: &str) -> Result<(), AuthError> {
        let path = self.file(tenant, provider);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, e)),
        }
    }
}
