//! Signing and tenant-encryption keys: storage, sealing and staged rotation.
//!
//! Three key chains rotate independently: ES256 signing (the default), RS256
//! signing (for relying parties that only accept RS256) and the symmetric
//! `A256GCM` key that encrypts the `tid` claim. Each chain moves keys through
//! [`KeyState::Next`] (published in the JWKS, not yet signing) →
//! [`KeyState::Active`] (signs) → [`KeyState::Retired`] (verifies only, until
//! the longest token lifetime plus skew has passed) → deleted. An emergency
//! [`KeyRing::revoke`] removes a key at once.
//!
//! Private keys leave memory only sealed: [`KeyEncryptionKey::seal`] wraps the
//! private JWK in a compact JWE (`dir` + `A256GCM`) before any [`KeyStore`]
//! sees it, whether that store is OpenBao/Vault ([`VaultKeyStore`]) or memory
//! ([`MemoryKeyStore`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aes_gcm::{Aes256Gcm, KeyInit};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use josekit::jwe::{self, JweHeader};
use josekit::jwk::Jwk;
use josekit::jwk::alg::ec::EcCurve;
use josekit::jws::{self, JwsSigner, JwsVerifier};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::context::unix_now;
use crate::error::AuthError;

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// ECDSA P-256 signing (`ES256`), the default.
    Es256,
    /// RSA 2048 PKCS#1 v1.5 signing (`RS256`).
    Rs256,
    /// 256-bit AES-GCM key encrypting the `tid` claim (`dir` + `A256GCM`).
    TenantEncryption,
}

impl KeyKind {
    /// All chains, in rotation order.
    pub const ALL: [KeyKind; 3] = [KeyKind::Es256, KeyKind::Rs256, KeyKind::TenantEncryption];

    /// The JOSE `alg` name.
    pub fn alg(self) -> &'static str {
        match self {
            KeyKind::Es256 => "ES256",
            KeyKind::Rs256 => "RS256",
            KeyKind::TenantEncryption => "dir",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Es256 => "es",
            KeyKind::Rs256 => "rs",
            KeyKind::TenantEncryption => "te",
        }
    }
}

/// Signing algorithm of a client's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SigningAlg {
    /// ECDSA P-256 SHA-256 (default).
    #[default]
    ES256,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    RS256,
}

impl SigningAlg {
    /// The key chain that signs with this algorithm.
    pub fn kind(self) -> KeyKind {
        match self {
            SigningAlg::ES256 => KeyKind::Es256,
            SigningAlg::RS256 => KeyKind::Rs256,
        }
    }

    /// Parses a JOSE `alg` name (only the two we sign with).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(SigningAlg::ES256),
            "RS256" => Some(SigningAlg::RS256),
            _ => None,
        }
    }

    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        self.kind().alg()
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published (JWKS) so caches learn it, not used to sign yet.
    Next,
    /// Signs (or encrypts) new tokens.
    Active,
    /// Verifies (or decrypts) tokens issued before rotation, until it expires.
    Retired,
}

/// A key as a [`KeyStore`] keeps it: metadata, the public JWK and the private
/// part sealed under the key-encryption key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// Key id (`kid`): `[a-z0-9-]`, unique.
    pub kid: String,
    /// What the key is for.
    pub kind: KeyKind,
    /// Where it is in its life.
    pub state: KeyState,
    /// Unix time of creation (publication for signing keys).
    pub created_at: i64,
    /// Unix time it became active.
    pub activated_at: Option<i64>,
    /// Unix time it was retired.
    pub retired_at: Option<i64>,
    /// The public JWK (signing keys only).
    pub public_jwk: Option<serde_json::Map<String, serde_json::Value>>,
    /// The private JWK, sealed with [`KeyEncryptionKey::seal`].
    pub sealed_private: String,
}

/// The 256-bit key-encryption key (KEK) that seals private keys at rest.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    /// A KEK from 32 secret bytes and an id recorded in each sealed key.
    pub fn new(id: impl Into<String>, key: [u8; 32]) -> Self {
        Self { id: id.into(), key }
    }

    /// A KEK from 64 hex characters (e.g. read from a `*_FILE` secret).
    pub fn from_hex(id: impl Into<String>, hex_key: &str) -> Result<Self, AuthError> {
        let bytes = hex::decode(hex_key.trim())
            .map_err(|e| AuthError::Config(format!("key-encryption key: {e}")))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| AuthError::Config("key-encryption key must be 32 bytes".into()))?;
        Ok(Self::new(id, key))
    }

    /// A random KEK (development and tests).
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::new("dev", key)
    }

    /// Seals `plaintext` as a compact JWE (`dir`, `A256GCM`, `kid` = KEK id).
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, AuthError> {
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        header.set_key_id(self.id.clone());
        let encrypter = jwe::Dir.encrypter_from_bytes(self.key)?;
        Ok(jwe::serialize_compact(plaintext, &header, &encrypter)?)
    }

    /// Opens what [`Self::seal`] produced.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, AuthError> {
        let decrypter = jwe::Dir.decrypter_from_bytes(self.key)?;
        let (plain, header) = jwe::deserialize_compact(sealed, &decrypter)
            .map_err(|e| AuthError::KeyStore(format!("cannot open sealed key: {e}")))?;
        if header.key_id() != Some(self.id.as_str()) {
            return Err(AuthError::KeyStore(
                "sealed with another key-encryption key".into(),
            ));
        }
        Ok(plain)
    }
}

/// Persistent storage of [`StoredKey`]s (private parts already sealed).
#[async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// Every stored key.
    async fn load_all(&self) -> Result<Vec<StoredKey>, AuthError>;
    /// Creates or replaces a key.
    async fn save(&self, key: &StoredKey) -> Result<(), AuthError>;
    /// Deletes a key (all versions).
    async fn remove(&self, kid: &str) -> Result<(), AuthError>;
}

/// A [`KeyStore`] in process memory, for development and tests.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<String, StoredKey>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn load_all(&self) -> Result<Vec<StoredKey>, AuthError> {
        Ok(self.keys.lock().await.values().cloned().collect())
    }
    async fn save(&self, key: &StoredKey) -> Result<(), AuthError> {
        self.keys.lock().await.insert(key.kid.clone(), key.clone());
        Ok(())
    }
    async fn remove(&self, kid: &str) -> Result<(), AuthError> {
        self.keys.lock().await.remove(kid);
        Ok(())
    }
}

/// A [`KeyStore`] on a Vault/OpenBao KV version 2 mount.
pub struct VaultKeyStore {
    client: vaultrs::client::VaultClient,
    mount: String,
    prefix: String,
}

impl std::fmt::Debug for VaultKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultKeyStore")
            .field("mount", &self.mount)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn vault_err(e: vaultrs::error::ClientError) -> AuthError {
    AuthError::KeyStore(e.to_string())
}

impl VaultKeyStore {
    /// Connects to `address` with `token`; keys live under `mount`/`prefix`
    /// (e.g. `secret` and `rampart/auth/keys`).
    pub fn new(address: &str, token: &str, mount: &str, prefix: &str) -> Result<Self, AuthError> {
        url::Url::parse(address).map_err(|e| AuthError::Config(format!("vault address: {e}")))?;
        let settings = vaultrs::client::VaultClientSettingsBuilder::default()
            .address(address)
            .token(token)
            .timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| AuthError::Config(format!("vault settings: {e}")))?;
        let client = vaultrs::client::VaultClient::new(settings).map_err(vault_err)?;
        Ok(Self {
            client,
            mount: mount.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    fn path(&self, kid: &str) -> String {
        format!("{}/{kid}", self.prefix)
    }
}

#[async_trait]
impl KeyStore for VaultKeyStore {
    async fn load_all(&self) -> Result<Vec<StoredKey>, AuthError> {
        let names = match vaultrs::kv2::list(&self.client, &self.mount, &self.prefix).await {
            Ok(names) => names,
            Err(vaultrs::error::ClientError::APIError { code: 404, .. }) => Vec::new(),
            Err(e) => return Err(vault_err(e)),
        };
        let mut keys = Vec::with_capacity(names.len());
        for name in names {
            match vaultrs::kv2::read::<StoredKey>(&self.client, &self.mount, &self.path(&name))
                .await
            {
                Ok(key) => keys.push(key),
                // Deleted between list and read.
                Err(vaultrs::error::ClientError::APIError { code: 404, .. }) => {}
                Err(e) => return Err(vault_err(e)),
            }
        }
        Ok(keys)
    }

    async fn save(&self, key: &StoredKey) -> Result<(), AuthError> {
        vaultrs::kv2::set(&self.client, &self.mount, &self.path(&key.kid), key)
            .await
            .map(|_| ())
            .map_err(vault_err)
    }

    async fn remove(&self, kid: &str) -> Result<(), AuthError> {
        match vaultrs::kv2::delete_metadata(&self.client, &self.mount, &self.path(kid)).await {
            Ok(()) | Err(vaultrs::error::ClientError::APIError { code: 404, .. }) => Ok(()),
            Err(e) => Err(vault_err(e)),
        }
    }
}

/// A key loaded for use: the stored metadata plus ready crypto objects.
pub(crate) struct LiveKey {
    pub(crate) meta: StoredKey,
    pub(crate) signer: Option<Box<dyn JwsSigner>>,
    pub(crate) verifier: Option<Box<dyn JwsVerifier>>,
    /// The `tid` key as a ready AES-256-GCM cipher (tenant-encryption keys).
    pub(crate) tid_cipher: Option<Aes256Gcm>,
    /// The base64url protected header this key writes on a `tid` JWE.
    pub(crate) tid_header: Option<String>,
}

impl LiveKey {
    fn from_stored(meta: StoredKey, kek: &KeyEncryptionKey) -> Result<Self, AuthError> {
        let private = Jwk::from_bytes(kek.open(&meta.sealed_private)?)?;
        let mut live = LiveKey {
            meta,
            signer: None,
            verifier: None,
            tid_cipher: None,
            tid_header: None,
        };
        match live.meta.kind {
            KeyKind::Es256 => {
                let public = private.to_public_key()?;
                live.signer = Some(Box::new(jws::ES256.signer_from_jwk(&private)?));
                live.verifier = Some(Box::new(jws::ES256.verifier_from_jwk(&public)?));
            }
            KeyKind::Rs256 => {
                let public = private.to_public_key()?;
                live.signer = Some(Box::new(jws::RS256.signer_from_jwk(&private)?));
                live.verifier = Some(Box::new(jws::RS256.verifier_from_jwk(&public)?));
            }
            KeyKind::TenantEncryption => {
                let secret = private
                    .parameter("k")
                    .and_then(|k| k.as_str())
                    .and_then(|k| B64.decode(k).ok())
                    .ok_or_else(|| AuthError::KeyStore("tenant key has no `k`".into()))?;
                let cipher = Aes256Gcm::new_from_slice(&secret)
                    .map_err(|_| AuthError::KeyStore("tenant key is not 256 bits".into()))?;
                live.tid_cipher = Some(cipher);
                live.tid_header = Some(crate::jose_header::tid_header_b64(&live.meta.kid)?);
            }
        }
        Ok(live)
    }
}

/// An immutable view of the key ring at one moment.
#[derive(Default)]
pub(crate) struct KeySet {
    pub(crate) by_kid: HashMap<String, Arc<LiveKey>>,
    pub(crate) active: HashMap<KeyKind, Arc<LiveKey>>,
    /// Exact base64url JWS headers we write (`alg`, `typ`, `kid`), mapped to
    /// their key and `typ`: a token whose header is byte-for-byte ours skips
    /// header decoding and parsing.
    pub(crate) jws_headers: HashMap<String, (Arc<LiveKey>, &'static str)>,
    /// Exact base64url `tid` JWE headers we write, mapped to their key.
    pub(crate) tid_headers: HashMap<String, Arc<LiveKey>>,
}

impl KeySet {
    fn build(keys: Vec<LiveKey>) -> Self {
        let mut set = KeySet::default();
        for key in keys {
            let key = Arc::new(key);
            if key.meta.state == KeyState::Active {
                // Two actives can briefly coexist across instances: the newest signs.
                let newer = set
                    .active
                    .get(&key.meta.kind)
                    .is_none_or(|cur| cur.meta.activated_at < key.meta.activated_at);
                if newer {
                    set.active.insert(key.meta.kind, key.clone());
                }
            }
            match key.meta.kind {
                KeyKind::Es256 | KeyKind::Rs256 => {
                    for typ in crate::jose_header::SIGNED_TYPES {
                        let alg = if key.meta.kind == KeyKind::Es256 {
                            SigningAlg::ES256
                        } else {
                            SigningAlg::RS256
                        };
                        if let Ok(h) =
                            crate::jose_header::jws_header_b64(alg.as_str(), typ, &key.meta.kid)
                        {
                            set.jws_headers.insert(h, (key.clone(), typ));
                        }
                    }
                }
                KeyKind::TenantEncryption => {
                    if let Some(h) = &key.tid_header {
                        set.tid_headers.insert(h.clone(), key.clone());
                    }
                }
            }
            set.by_kid.insert(key.meta.kid.clone(), key);
        }
        set
    }
}

/// Timing of the staged rotation.
#[derive(Debug, Clone, Copy)]
pub struct RotationPolicy {
    /// How long an active key signs.
    pub rotate_after: Duration,
    /// How long the next key is published before it may sign.
    pub publish_lead: Duration,
    /// How long a retired key keeps verifying (longest token lifetime + skew).
    pub retire_for: Duration,
}

impl RotationPolicy {
    /// The policy implied by an [`crate::config::AuthConfig`].
    pub fn from_config(config: &crate::config::AuthConfig) -> Self {
        Self {
            rotate_after: Duration::from_secs(config.key_rotation_secs),
            publish_lead: Duration::from_secs(config.key_publish_lead_secs),
            retire_for: config.max_signed_lifetime(),
        }
    }
}

fn secs_i64(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The platform's keys, loaded from a [`KeyStore`] and rotated in stages.
pub struct KeyRing {
    store: Arc<dyn KeyStore>,
    kek: KeyEncryptionKey,
    policy: RotationPolicy,
    current: RwLock<Arc<KeySet>>,
    /// Serialises rotation within this process.
    rotation: Mutex<()>,
    /// Bumped on every change so caches of verified tokens can be dropped.
    generation: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the keys from `store` and makes sure every chain has an active
    /// and a next key (creating them on first start).
    pub async fn open(
        store: Arc<dyn KeyStore>,
        kek: KeyEncryptionKey,
        policy: RotationPolicy,
    ) -> Result<Arc<Self>, AuthError> {
        let ring = Arc::new(Self {
            store,
            kek,
            policy,
            current: RwLock::new(Arc::new(KeySet::default())),
            rotation: Mutex::new(()),
            generation: std::sync::atomic::AtomicU64::new(0),
        });
        ring.reload().await?;
        ring.maintain_at(unix_now()).await?;
        Ok(ring)
    }

    /// Re-reads the store (picks up rotations made by other instances).
    pub async fn reload(&self) -> Result<(), AuthError> {
        let stored = self.store.load_all().await?;
        let mut live = Vec::with_capacity(stored.len());
        for key in stored {
            live.push(LiveKey::from_stored(key, &self.kek)?);
        }
        let set = Arc::new(KeySet::build(live));
        if let Ok(mut slot) = self.current.write() {
            *slot = set;
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Changes whenever the set of usable keys changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Metadata of every key (no private parts).
    pub fn keys(&self) -> Vec<StoredKey> {
        let mut keys: Vec<StoredKey> = self
            .snapshot()
            .by_kid
            .values()
            .map(|k| StoredKey {
                sealed_private: String::new(),
                ..k.meta.clone()
            })
            .collect();
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        keys
    }

    /// The active key id of a chain.
    pub fn active_kid(&self, kind: KeyKind) -> Option<String> {
        self.snapshot()
            .active
            .get(&kind)
            .map(|k| k.meta.kid.clone())
    }

    /// The public JWK Set: every signing key that is next, active or retired.
    pub fn jwks(&self) -> serde_json::Value {
        let snapshot = self.snapshot();
        let mut keys: Vec<&Arc<LiveKey>> = snapshot
            .by_kid
            .values()
            .filter(|k| k.meta.public_jwk.is_some())
            .collect();
        keys.sort_by(|a, b| {
            (a.meta.created_at, &a.meta.kid).cmp(&(b.meta.created_at, &b.meta.kid))
        });
        let keys: Vec<serde_json::Value> = keys
            .into_iter()
            .filter_map(|k| k.meta.public_jwk.clone().map(serde_json::Value::Object))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Runs the staged rotation as of now. Call it periodically (see
    /// [`KeyRing::spawn_rotation`]).
    pub async fn maintain(&self) -> Result<bool, AuthError> {
        self.maintain_at(unix_now()).await
    }

    /// Runs the staged rotation as of `now` (unix seconds): creates missing
    /// next/active keys, promotes next → active once the active key is old
    /// enough and the next key has been published long enough, and deletes
    /// retired keys whose tokens have all expired. Returns whether anything
    /// changed.
    pub async fn maintain_at(&self, now: i64) -> Result<bool, AuthError> {
        let _guard = self.rotation.lock().await;
        let mut stored: Vec<StoredKey> = self.store.load_all().await?;
        let mut changed = false;
        for kind in KeyKind::ALL {
            changed |= self.maintain_chain(kind, now, &mut stored).await?;
        }
        if changed {
            self.reload().await?;
        }
        Ok(changed)
    }

    async fn maintain_chain(
        &self,
        kind: KeyKind,
        now: i64,
        stored: &mut Vec<StoredKey>,
    ) -> Result<bool, AuthError> {
        let mut changed = false;
        let retire_for = secs_i64(self.policy.retire_for);
        // Expired retired keys go first.
        let expired: Vec<String> = stored
            .iter()
            .filter(|k| k.kind == kind && k.state == KeyState::Retired)
            .filter(|k| k.retired_at.unwrap_or(0).saturating_add(retire_for) <= now)
            .map(|k| k.kid.clone())
            .collect();
        for kid in expired {
            self.store.remove(&kid).await?;
            stored.retain(|k| k.kid != kid);
            changed = true;
        }
        let active = stored
            .iter()
            .position(|k| k.kind == kind && k.state == KeyState::Active);
        let next = stored
            .iter()
            .position(|k| k.kind == kind && k.state == KeyState::Next);
        match (active, next) {
            (None, Some(n)) => {
                // No active key (first start after a revoke): promote at once.
                self.promote(stored, n, None, now).await?;
                changed = true;
            }
            (None, None) => {
                let mut key = self.generate(kind, now)?;
                key.state = KeyState::Active;
                key.activated_at = Some(now);
                self.store.save(&key).await?;
                stored.push(key);
                changed = true;
            }
            (Some(a), Some(n)) => {
                let due = stored[a]
                    .activated_at
                    .unwrap_or(stored[a].created_at)
                    .saturating_add(secs_i64(self.policy.rotate_after))
                    <= now;
                let published = stored[n]
                    .created_at
                    .saturating_add(secs_i64(self.policy.publish_lead))
                    <= now;
                if due && published {
                    self.promote(stored, n, Some(a), now).await?;
                    changed = true;
                }
            }
            (Some(_), None) => {}
        }
        if !stored
            .iter()
            .any(|k| k.kind == kind && k.state == KeyState::Next)
        {
            let key = self.generate(kind, now)?;
            self.store.save(&key).await?;
            stored.push(key);
            changed = true;
        }
        Ok(changed)
    }

    async fn promote(
        &self,
        stored: &mut [StoredKey],
        next: usize,
        active: Option<usize>,
        now: i64,
    ) -> Result<(), AuthError> {
        // Publish the new active key before retiring the old one so there is
        // never a moment without a signer.
        stored[next].state = KeyState::Active;
        stored[next].activated_at = Some(now);
        self.store.save(&stored[next]).await?;
        if let Some(a) = active {
            stored[a].state = KeyState::Retired;
            stored[a].retired_at = Some(now);
            self.store.save(&stored[a]).await?;
        }
        Ok(())
    }

    /// Forces a rotation of one chain now, ignoring the schedule (the next
    /// key signs from now on; a fresh next key is published).
    pub async fn rotate_now(&self, kind: KeyKind) -> Result<(), AuthError> {
        {
            let _guard = self.rotation.lock().await;
            let mut stored = self.store.load_all().await?;
            let now = unix_now();
            let active = stored
                .iter()
                .position(|k| k.kind == kind && k.state == KeyState::Active);
            let next = match stored
                .iter()
                .position(|k| k.kind == kind && k.state == KeyState::Next)
            {
                Some(n) => n,
                None => {
                    let key = self.generate(kind, now)?;
                    self.store.save(&key).await?;
                    stored.push(key);
                    stored.len() - 1
                }
            };
            self.promote(&mut stored, next, active, now).await?;
            let key = self.generate(kind, now)?;
            self.store.save(&key).await?;
        }
        self.reload().await
    }

    /// Emergency revoke: deletes the key from the store and from this ring
    /// at once. Tokens it signed stop verifying immediately. If it was the
    /// active key, the next key takes over (and a new next key is made).
    pub async fn revoke(&self, kid: &str) -> Result<(), AuthError> {
        self.store.remove(kid).await?;
        self.reload().await?;
        self.maintain_at(unix_now()).await?;
        Ok(())
    }

    fn generate(&self, kind: KeyKind, now: i64) -> Result<StoredKey, AuthError> {
        let mut id = [0u8; 9];
        rand::rng().fill_bytes(&mut id);
        let kid = format!("{}-{}", kind.prefix(), hex::encode(id));
        let mut private = match kind {
            KeyKind::Es256 => Jwk::generate_ec_key(EcCurve::P256)?,
            KeyKind::Rs256 => Jwk::generate_rsa_key(2048)?,
            KeyKind::TenantEncryption => Jwk::generate_oct_key(32)?,
        };
        private.set_key_id(kid.clone());
        private.set_algorithm(kind.alg());
        let public_jwk = match kind {
            KeyKind::TenantEncryption => None,
            _ => {
                let mut public = private.to_public_key()?;
                public.set_key_id(kid.clone());
                public.set_algorithm(kind.alg());
                public.set_key_use("sig");
                Some(public.as_ref().clone())
            }
        };
        let sealed_private = self.kek.seal(private.to_string().as_bytes())?;
        Ok(StoredKey {
            kid,
            kind,
            state: KeyState::Next,
            created_at: now,
            activated_at: None,
            retired_at: None,
            public_jwk,
            sealed_private,
        })
    }

    /// Spawns a task that reloads the store and runs [`KeyRing::maintain`]
    /// every `every`, logging failures.
    pub fn spawn_rotation(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let ring = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(ring) = ring.upgrade() else { break };
                if let Err(e) = ring.reload().await {
                    tracing::warn!(error = %e, "key ring reload failed");
                }
                if let Err(e) = ring.maintain().await {
                    tracing::warn!(error = %e, "key rotation failed");
                }
            }
        })
    }
}
