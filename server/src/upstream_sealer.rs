//! Users' upstream tokens (`rampart_auth::UpstreamTokenSealer`) sealed by
//! the same envelope encryption as members' broker keys: Vault transit, or
//! the development transit key of `rampart demo` (see
//! [`crate::broker_crypto`]). Without either, no upstream token is kept.
use rampart_auth::{AuthError, UpstreamTokenSealer};
use rampart_members::BrokerCrypto;
use secrecy::SecretString;

use crate::broker_crypto::BrokerSealer;

fn crypto(e: rampart_members::MembersError) -> AuthError {
    AuthError::Crypto(e.to_string())
}

#[async_trait::async_trait]
impl UpstreamTokenSealer for BrokerSealer {
    async fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, AuthError> {
        BrokerCrypto::seal(self, plaintext, context)
            .await
            .map_err(crypto)
    }

    async fn open(&self, sealed: &str, context: &[u8]) -> Result<SecretString, AuthError> {
        let plain = BrokerCrypto::open(self, sealed, context)
            .await
            .map_err(crypto)?;
        let text = std::str::from_utf8(&plain)
            .map_err(|_| AuthError::Crypto("sealed upstream tokens are not text".into()))?;
        Ok(SecretString::from(text.to_owned()))
    }
}

/// Whether the sealer can seal at all (Vault or the dev key).
pub fn available(sealer: &BrokerSealer) -> bool {
    !matches!(sealer, BrokerSealer::Unavailable)
}
