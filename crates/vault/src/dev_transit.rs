//! A local stand-in for the transit key, for development without Vault
//! (`rampart demo`): the same [`Sealed`] envelope as
//! [`SecretStore::encrypt`](crate::SecretStore::encrypt), with each data key
//! wrapped by a 256-bit key held in memory (the caller keeps it in its dev
//! secrets) instead of by Vault. Wrapped keys read `dev:v1:<base64>`, so a
//! value sealed in development never opens through Vault and the reverse.
//! Never a production key store: the key sits next to the data it protects.
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use crate::{Sealed, VaultError, open_with, seal_with};

/// The prefix of a data key wrapped by a [`DevTransit`].
const WRAPPED_PREFIX: &str = "dev:v1:";
/// Associated data of a wrapped data key.
const WRAP_AAD: &[u8] = b"rampart-dev-transit-v1";

/// A development transit key. `Debug` shows nothing of it.
pub struct DevTransit {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DevTransit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevTransit { .. }")
    }
}

impl DevTransit {
    /// Over a 256-bit key.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: Zeroizing::new(key),
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self::new(rand::random())
    }

    /// The key's bytes, to keep in the dev secrets.
    pub fn key_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    fn cipher(&self) -> Result<Aes256Gcm, VaultError> {
        Aes256Gcm::new_from_slice(self.key.as_slice()).map_err(|_| VaultError::Encrypt)
    }

    /// Envelope-encrypts `plaintext` bound to `context`, as
    /// [`SecretStore::encrypt`](crate::SecretStore::encrypt) does.
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Result<Sealed, VaultError> {
        let data_key = Zeroizing::new(rand::random::<[u8; 32]>());
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let wrapped = self
            .cipher()?
            .encrypt(
                &nonce,
                Payload {
                    msg: data_key.as_slice(),
                    aad: WRAP_AAD,
                },
            )
            .map_err(|_| VaultError::Encrypt)?;
        let mut packed = nonce.to_vec();
        packed.extend_from_slice(&wrapped);
        let wrapped_key = format!("{WRAPPED_PREFIX}{}", B64.encode(packed));
        seal_with(data_key.as_slice(), wrapped_key, plaintext, context)
    }

    /// Opens what [`DevTransit::encrypt`] sealed with this key and `context`.
    pub fn decrypt(
        &self,
        sealed: &Sealed,
        context: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (nonce, ciphertext) = sealed.parts()?;
        let packed = sealed
            .wrapped_key
            .strip_prefix(WRAPPED_PREFIX)
            .ok_or(VaultError::Malformed("not sealed by a development key"))
            .and_then(|b64| {
                B64.decode(b64)
                    .map_err(|_| VaultError::Malformed("wrapped key is not base64"))
            })?;
        if packed.len() <= 12 {
            return Err(VaultError::Malformed("wrapped key is too short"));
        }
        let (wrap_nonce, wrapped) = packed.split_at(12);
        let data_key = self
            .cipher()
            .map_err(|_| VaultError::Decrypt)?
            .decrypt(
                Nonce::from_slice(wrap_nonce),
                Payload {
                    msg: wrapped,
                    aad: WRAP_AAD,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Decrypt)?;
        open_with(&data_key, &nonce, &ciphertext, context)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seals_and_opens_only_with_its_key_and_context() {
        let dev = DevTransit::generate();
        let sealed = dev.encrypt(b"PKSECRET", b"tenant/a").unwrap();
        let text = sealed.to_json();
        assert!(!text.contains("PKSECRET"), "{text}");
        assert!(sealed.wrapped_key.starts_with("dev:v1:"));
        let again = Sealed::from_json(&text).unwrap();
        assert_eq!(&*dev.decrypt(&again, b"tenant/a").unwrap(), b"PKSECRET");
        assert!(matches!(
            dev.decrypt(&again, b"tenant/b"),
            Err(VaultError::Decrypt)
        ));
        let other = DevTransit::generate();
        assert!(matches!(
            other.decrypt(&again, b"tenant/a"),
            Err(VaultError::Decrypt)
        ));
        let same = DevTransit::new(*dev.key_bytes());
        assert_eq!(&*same.decrypt(&again, b"tenant/a").unwrap(), b"PKSECRET");
        let vault_shaped = Sealed {
            wrapped_key: "vault:v1:abc".into(),
            ..again
        };
        assert!(matches!(
            dev.decrypt(&vault_shaped, b"tenant/a"),
            Err(VaultError::Malformed(_))
        ));
    }
}
