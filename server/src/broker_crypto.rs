//! Members' broker credentials sealed by envelope encryption (the
//! `rampart_members::BrokerCrypto` the routes and the snapshot job use):
//! through Vault transit when Vault is configured; in development without
//! Vault, with `dev_transit = true` (`rampart demo`), through a local
//! development transit key kept in the dev secrets (`transit.hex`, 0600).
//! Production mode never uses the local key: the configuration is refused.
use std::path::Path;
use std::sync::Arc;

use rampart_members::{BrokerCrypto, MembersError};
use zeroize::Zeroizing;

use rampart_vault::{DevTransit, Sealed, SecretStore};

use crate::config::{Mode, ServerConfig};

/// The file of the development transit key in the dev secrets directory.
pub const DEV_TRANSIT_FILE: &str = "transit.hex";

/// Seals and opens broker credentials. `Unavailable` (no Vault, no dev
/// key) fails every call with `MembersError::Crypto` (answered 503).
pub enum BrokerSealer {
    /// Vault transit.
    Vault(Arc<SecretStore>),
    /// The development transit key (dev mode without Vault only).
    Dev(DevTransit),
    /// Neither.
    Unavailable,
}

impl std::fmt::Debug for BrokerSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Vault(_) => "BrokerSealer::Vault",
            Self::Dev(_) => "BrokerSealer::Dev",
            Self::Unavailable => "BrokerSealer::Unavailable",
        })
    }
}

impl BrokerSealer {
    /// The sealer the configuration asks for: Vault when configured; the
    /// development key when `dev_transit` is on in dev mode without Vault;
    /// otherwise none. `dev_transit` with Vault or in production mode is
    /// an error (the configuration's validation says so too).
    pub fn for_config(
        config: &ServerConfig,
        vault: Option<Arc<SecretStore>>,
    ) -> anyhow::Result<Self> {
        if config.dev_transit {
            if config.mode == Mode::Production {
                anyhow::bail!("dev_transit is refused in production mode: use Vault transit");
            }
            if vault.is_some() {
                anyhow::bail!("dev_transit is refused when [vault] is configured");
            }
            return Ok(Self::Dev(load_or_create(&config.dev_secrets_dir)?));
        }
        Ok(vault.map_or(Self::Unavailable, Self::Vault))
    }
}

/// The development transit key of `dir`, generated (0600) on first use.
fn load_or_create(dir: &Path) -> anyhow::Result<DevTransit> {
    let path = dir.join(DEV_TRANSIT_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let bytes = Zeroizing::new(hex::decode(text.trim())?);
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} is not a 256-bit hex key", path.display()))?;
        return Ok(DevTransit::new(key));
    }
    std::fs::create_dir_all(dir)?;
    let dev = DevTransit::generate();
    let text = Zeroizing::new(hex::encode(dev.key_bytes()));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(text.as_bytes())?;
    }
    Ok(dev)
}

fn crypto_err(e: rampart_vault::VaultError) -> MembersError {
    MembersError::Crypto(e.to_string())
}

#[async_trait::async_trait]
impl BrokerCrypto for BrokerSealer {
    async fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, MembersError> {
        let sealed = match self {
            Self::Vault(store) => store.encrypt(plaintext, context).await,
            Self::Dev(dev) => dev.encrypt(plaintext, context),
            Self::Unavailable => return Err(unavailable()),
        };
        Ok(sealed.map_err(crypto_err)?.to_json())
    }

    async fn open(&self, sealed: &str, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, MembersError> {
        let sealed = Sealed::from_json(sealed).map_err(crypto_err)?;
        match self {
            Self::Vault(store) => store.decrypt(&sealed, context).await,
            Self::Dev(dev) => dev.decrypt(&sealed, context),
            Self::Unavailable => return Err(unavailable()),
        }
        .map_err(crypto_err)
    }
}

fn unavailable() -> MembersError {
    MembersError::Crypto("Vault is not configured".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dev_config(dir: &Path) -> ServerConfig {
        ServerConfig {
            dev_transit: true,
            dev_secrets_dir: dir.to_path_buf(),
            ..ServerConfig::default()
        }
    }

    #[tokio::test]
    async fn the_dev_key_is_kept_in_the_dev_secrets_and_opens_what_it_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let first = BrokerSealer::for_config(&dev_config(dir.path()), None).unwrap();
        assert!(matches!(first, BrokerSealer::Dev(_)), "{first:?}");
        let sealed = first.seal(b"PKKEY", b"acme/1").await.unwrap();
        let file = dir.path().join(DEV_TRANSIT_FILE);
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A restart reads the same key.
        let again = BrokerSealer::for_config(&dev_config(dir.path()), None).unwrap();
        assert_eq!(&*again.open(&sealed, b"acme/1").await.unwrap(), b"PKKEY");
        assert!(again.open(&sealed, b"acme/2").await.is_err());
        // Without `dev_transit` nothing seals, as before.
        let off = ServerConfig {
            dev_transit: false,
            ..dev_config(dir.path())
        };
        let none = BrokerSealer::for_config(&off, None).unwrap();
        assert!(matches!(
            none.seal(b"x", b"y").await,
            Err(MembersError::Crypto(_))
        ));
    }

    #[test]
    fn production_mode_refuses_the_dev_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            mode: Mode::Production,
            ..dev_config(dir.path())
        };
        let err = BrokerSealer::for_config(&config, None).unwrap_err();
        assert!(err.to_string().contains("production"), "{err}");
        assert!(!dir.path().join(DEV_TRANSIT_FILE).exists());
        let problems = config.validate().unwrap_err().0;
        assert!(
            problems.iter().any(|p| p.contains("dev_transit")),
            "{problems:?}"
        );
    }
}
