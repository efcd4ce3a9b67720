//! The signing-key store in Vault through the server's own [`SecretStore`]:
//! the same login as every other Vault path (AppRole in production, its
//! token renewed by logging in again), so no static token is needed for the
//! keys. Keys live at `<path_prefix>/auth/keys/<kid>` in the KV mount.
use std::sync::Arc;

use async_trait::async_trait;
use rampart_auth::{AuthError, KeyStore, StoredKey};
use rampart_vault::SecretStore;

/// Where the keys live, relative to the store's path prefix.
pub const KEYS_PATH: &str = "auth/keys";

/// A [`KeyStore`] over the server's [`SecretStore`].
#[derive(Clone)]
pub struct SecretStoreKeys {
    store: Arc<SecretStore>,
}

impl std::fmt::Debug for SecretStoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStoreKeys")
            .field("path", &KEYS_PATH)
            .finish_non_exhaustive()
    }
}

impl SecretStoreKeys {
    /// Keys in `store`'s KV mount under `<path_prefix>/auth/keys`.
    pub fn new(store: Arc<SecretStore>) -> Self {
        Self { store }
    }
}

fn store_err(e: rampart_vault::VaultError) -> AuthError {
    AuthError::KeyStore(e.to_string())
}

fn key_path(kid: &str) -> String {
    format!("{KEYS_PATH}/{kid}")
}

#[async_trait]
impl KeyStore for SecretStoreKeys {
    async fn load_all(&self) -> Result<Vec<StoredKey>, AuthError> {
        let names = self.store.list_kv(KEYS_PATH).await.map_err(store_err)?;
        let mut keys = Vec::with_capacity(names.len());
        for name in names.iter().filter(|n| !n.ends_with('/')) {
            match self.store.read_typed::<StoredKey>(&key_path(name)).await {
                Ok(key) => keys.push(key),
                // Deleted between list and read.
                Err(rampart_vault::VaultError::NotFound { .. }) => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        Ok(keys)
    }

    async fn save(&self, key: &StoredKey) -> Result<(), AuthError> {
        let fields = match serde_json::to_value(key) {
            Ok(serde_json::Value::Object(fields)) => fields,
            Ok(_) => return Err(AuthError::KeyStore("a key is not a JSON object".into())),
            Err(e) => return Err(AuthError::KeyStore(e.to_string())),
        };
        self.store
            .write_kv(&key_path(&key.kid), &fields)
            .await
            .map(drop)
            .map_err(store_err)
    }

    async fn remove(&self, kid: &str) -> Result<(), AuthError> {
        self.store
            .delete_kv(&key_path(kid))
            .await
            .map_err(store_err)
    }
}
