//! Members' broker credentials sealed by Vault transit envelope encryption
//! (the `rampart_members::BrokerCrypto` the routes and the snapshot job use).
use std::sync::Arc;

use rampart_members::{BrokerCrypto, MembersError};
use zeroize::Zeroizing;

use rampart_vault::{Sealed, SecretStore};

/// Seals and opens broker credentials through Vault; without Vault every
/// call fails with `MembersError::Crypto` (answered 503).
pub struct VaultBrokerCrypto(pub Option<Arc<SecretStore>>);

#[async_trait::async_trait]
impl BrokerCrypto for VaultBrokerCrypto {
    async fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, MembersError> {
        let store = self.store()?;
        let sealed = store
            .encrypt(plaintext, context)
            .await
            .map_err(|e| MembersError::Crypto(e.to_string()))?;
        Ok(sealed.to_json())
    }

    async fn open(&self, sealed: &str, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, MembersError> {
        let store = self.store()?;
        let sealed = Sealed::from_json(sealed).map_err(|e| MembersError::Crypto(e.to_string()))?;
        store
            .decrypt(&sealed, context)
            .await
            .map_err(|e| MembersError::Crypto(e.to_string()))
    }
}

impl VaultBrokerCrypto {
    fn store(&self) -> Result<&SecretStore, MembersError> {
        self.0
            .as_deref()
            .ok_or_else(|| MembersError::Crypto("Vault is not configured".into()))
    }
}
