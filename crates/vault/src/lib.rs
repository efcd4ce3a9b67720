//! # rampart-vault
//!
//! Secrets from Vault (OpenBao locally) through `vaultrs`.
//!
//! [`SecretStore::connect`] logs in (AppRole in production, a token in
//! development), loads every secret named in [`VaultConfig::secrets`] from the
//! KV v2 engine and refuses to start without them. A background task then polls
//! each secret's KV metadata (`current_version`) and re-reads the ones that
//! changed, so a key rotation written to Vault reaches the server without a
//! restart; consumers see new values through [`SecretStore::snapshot`] or
//! [`SecretStore::subscribe`].
//!
//! If Vault becomes unreachable the store keeps serving the secrets it holds,
//! [`SecretStore::health`] turns [`VaultHealth::Degraded`], and the task
//! retries with exponential backoff until Vault answers again.
//!
//! Envelope encryption ([`SecretStore::encrypt`]): Vault's transit engine hands
//! out a fresh AES-256 data key per value (plaintext and wrapped); the value is
//! encrypted here with AES-256-GCM and only the wrapped key, the nonce and the
//! ciphertext are kept ([`Sealed`]). Plaintext keys are zeroized after use.
//!
//! Certificates: [`SecretStore::issue_certificate`] asks the PKI engine for a
//! certificate and key ([`PkiRequest`], [`PkiCertificate`]).
//!
//! Secret values never appear in `Debug`, `Display`, errors or logs:
//! credentials are [`SecretString`]s (from the `secrecy` crate), serialized as
//! `"[redacted]"`.
//!
//! ```no_run
//! use rampart_vault::{SecretStore, VaultConfig};
//!
//! # async fn demo() -> Result<(), rampart_vault::VaultError> {
//! let mut config = VaultConfig::dev("http://127.0.0.1:8200", "root");
//! config.secrets = vec!["jwt".to_owned()];
//! let store = SecretStore::connect(config).await?;
//! let kid = store.secret("jwt").and_then(|s| s.get_str("kid").map(str::to_owned));
//! println!("signing key id {kid:?}, Vault {:?}", store.health());
//!
//! let sealed = store.encrypt(b"broker password", b"tenant:acme").await?;
//! let plain = store.decrypt(&sealed, b"tenant:acme").await?;
//! assert_eq!(&plain[..], b"broker password");
//! # Ok(()) }
//! ```
//!
//! The configuration is one serde struct; credentials never print:
//!
//! ```
//! use rampart_vault::{VaultAuth, VaultConfig};
//!
//! let config: VaultConfig = serde_json::from_value(serde_json::json!({
//!     "address": "https://vault.internal:8200",
//!     "auth": {"method": "approle", "role_id": "r-1", "secret_id_file": "/run/secrets/vault"},
//!     "secrets": ["jwt"],
//! }))
//! .unwrap();
//! config.validate().unwrap();
//! assert!(matches!(config.auth, VaultAuth::AppRole { .. }));
//! assert!(!format!("{config:?}").contains("r-1"));
//! ```
//!
//! The Vault policy the server's AppRole needs (with the default mounts):
//!
//! ```hcl
//! path "secret/data/rampart/*"      { capabilities = ["read"] }
//! path "secret/metadata/rampart/*"  { capabilities = ["read"] }
//! path "transit/datakey/plaintext/rampart" { capabilities = ["update"] }
//! path "transit/decrypt/rampart"    { capabilities = ["update"] }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use rustify::errors::ClientError as RustifyError;
pub use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;
use vaultrs::api::transit::requests::DataKeyType;
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
// `secrecy` wraps credentials; KV secrets (a `serde_json::Value`, which has no
// `Zeroize` impl for `SecretBox`) and transit data keys are wiped with `zeroize`.
use zeroize::{Zeroize, Zeroizing};

const REDACTED: &str = "[redacted]";
/// Associated data prefix of every [`Sealed`] value (binds the format version).
const SEALED_AAD_PREFIX: &[u8] = b"rampart-sealed-v1\0";

mod dev_transit;
pub use dev_transit::DevTransit;

// ------------------------------------------------------------------ errors

/// Everything that can go wrong talking to Vault. Messages never contain
/// secret values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The configuration is unusable.
    #[error("invalid Vault configuration: {0}")]
    Config(String),
    /// Vault could not be reached (connection refused, timeout, TLS).
    #[error("Vault at {address} is unreachable: {detail}")]
    Unreachable {
        /// The configured address.
        address: String,
        /// What failed.
        detail: String,
    },
    /// Vault answered with an error status.
    #[error("Vault refused {operation} (HTTP {status}): {messages}")]
    Api {
        /// What we asked for.
        operation: String,
        /// HTTP status.
        status: u16,
        /// Vault's error messages.
        messages: String,
    },
    /// There is no secret (or no live version of it) at this path.
    #[error("Vault has no secret at {path}")]
    NotFound {
        /// KV path (mount and path).
        path: String,
    },
    /// Login (AppRole or token) failed.
    #[error("Vault login failed: {0}")]
    Auth(String),
    /// A required secret could not be loaded at start.
    #[error("cannot start without secret `{path}` from Vault: {source}")]
    Startup {
        /// The secret's path, relative to the prefix.
        path: String,
        /// Why it could not be loaded.
        #[source]
        source: Box<VaultError>,
    },
    /// The secret exists but does not have the fields/types the caller expects.
    #[error("secret `{path}` does not have the expected shape: {detail}")]
    Shape {
        /// The secret's path, relative to the prefix.
        path: String,
        /// Which field is missing or wrong (never the value).
        detail: String,
    },
    /// Vault answered something this client does not understand.
    #[error("unexpected answer from Vault for {operation}: {detail}")]
    Protocol {
        /// What we asked for.
        operation: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// A sealed value is malformed.
    #[error("malformed sealed value: {0}")]
    Malformed(&'static str),
    /// Authenticated decryption failed: wrong context, tampered or corrupt data.
    #[error("sealed value could not be decrypted (wrong context, tampered or corrupt)")]
    Decrypt,
    /// Local encryption failed.
    #[error("encryption failed")]
    Encrypt,
}

impl VaultError {
    /// Whether the error means Vault could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, VaultError::Unreachable { .. })
    }

    fn is_permission_denied(&self) -> bool {
        matches!(self, VaultError::Api { status: 403, .. })
    }
}

/// Maps a `vaultrs` error without ever copying a response body (which may hold
/// secret data) into the message.
fn map_client_error(err: ClientError, operation: &str, address: &str) -> VaultError {
    match err {
        ClientError::APIError { code: 404, .. } => VaultError::NotFound {
            path: operation.to_owned(),
        },
        ClientError::APIError { code, errors } => VaultError::Api {
            operation: operation.to_owned(),
            status: code,
            messages: if errors.is_empty() {
                "(no message)".to_owned()
            } else {
                errors.join("; ")
            },
        },
        ClientError::RestClientError { source } => match source {
            RustifyError::RequestError { source, .. } => VaultError::Unreachable {
                address: address.to_owned(),
                detail: format!("{source:#}"),
            },
            RustifyError::ServerResponseError { code: 404, .. } => VaultError::NotFound {
                path: operation.to_owned(),
            },
            RustifyError::ServerResponseError { code, .. } => VaultError::Api {
                operation: operation.to_owned(),
                status: code,
                messages: "(unparsed error body)".to_owned(),
            },
            other => VaultError::Protocol {
                operation: operation.to_owned(),
                detail: other.to_string(),
            },
        },
        ClientError::JsonParseError { .. } => VaultError::Protocol {
            operation: operation.to_owned(),
            detail: "the response did not have the expected JSON shape".to_owned(),
        },
        other => VaultError::Protocol {
            operation: operation.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// Keeps serde's messages only when they name a field, never a value.
fn shape_detail(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if text.starts_with("missing field")
        || text.starts_with("unknown field")
        || text.starts_with("duplicate field")
    {
        text
    } else {
        "a field has the wrong type or format".to_owned()
    }
}

// ------------------------------------------------------------------ config

/// Serializes a credential as `"[redacted]"` (or `""` when empty): printing
/// an effective configuration never shows the secret.
fn serialize_redacted<S: serde::Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if secret.expose_secret().is_empty() {
        ""
    } else {
        REDACTED
    })
}

fn serialize_redacted_option<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_some(&Redacted(secret)),
        None => serializer.serialize_none(),
    }
}

struct Redacted<'a>(&'a SecretString);

impl Serialize for Redacted<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_redacted(self.0, serializer)
    }
}

/// How the server logs in to Vault.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum VaultAuth {
    /// A static token: development only.
    Token {
        /// The token.
        #[serde(serialize_with = "serialize_redacted")]
        token: SecretString,
    },
    /// AppRole: the production method.
    #[serde(rename = "approle")]
    AppRole {
        /// Where the AppRole auth method is mounted (default `approle`).
        #[serde(default = "default_approle_mount")]
        mount: String,
        /// The role id.
        #[serde(serialize_with = "serialize_redacted")]
        role_id: SecretString,
        /// The secret id, inline…
        #[serde(default, serialize_with = "serialize_redacted_option")]
        secret_id: Option<SecretString>,
        /// …or read from this file at every login (so it can be rotated).
        #[serde(default)]
        secret_id_file: Option<PathBuf>,
    },
}

fn default_approle_mount() -> String {
    "approle".to_owned()
}

impl Default for VaultAuth {
    fn default() -> Self {
        VaultAuth::Token {
            token: SecretString::default(),
        }
    }
}

impl fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultAuth::Token { .. } => f.debug_struct("Token").field("token", &REDACTED).finish(),
            VaultAuth::AppRole {
                mount,
                secret_id_file,
                ..
            } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", &REDACTED)
                .field("secret_id", &REDACTED)
                .field("secret_id_file", secret_id_file)
                .finish(),
        }
    }
}

/// Where and how to reach Vault, and which secrets the server needs.
///
/// Durations are milliseconds (`*_ms`). Unknown fields are refused.
/// Serializing it (to print the effective configuration) redacts the
/// credentials.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultConfig {
    /// Vault's address, e.g. `https://vault.internal:8200`.
    pub address: String,
    /// PEM file with the CA that signed Vault's certificate (HTTPS only).
    pub ca_cert_file: Option<PathBuf>,
    /// How to log in.
    pub auth: VaultAuth,
    /// Mount of the KV v2 engine (default `secret`).
    pub kv_mount: String,
    /// Prefix of the server's secrets inside the KV mount (default `rampart`).
    pub path_prefix: String,
    /// Secrets (paths under the prefix) that must load at start and are watched
    /// for rotation, e.g. `["jwt", "database"]`.
    pub secrets: Vec<String>,
    /// Mount of the transit engine (default `transit`).
    pub transit_mount: String,
    /// Transit key that wraps data keys (default `rampart`).
    pub transit_key: String,
    /// Timeout of one request to Vault.
    pub request_timeout_ms: u64,
    /// How often secrets are checked for a new version.
    pub refresh_interval_ms: u64,
    /// First retry delay after a failure.
    pub retry_min_backoff_ms: u64,
    /// Longest retry delay.
    pub retry_max_backoff_ms: u64,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig {
            address: "http://127.0.0.1:8200".to_owned(),
            ca_cert_file: None,
            auth: VaultAuth::default(),
            kv_mount: "secret".to_owned(),
            path_prefix: "rampart".to_owned(),
            secrets: Vec::new(),
            transit_mount: "transit".to_owned(),
            transit_key: "rampart".to_owned(),
            request_timeout_ms: 5_000,
            refresh_interval_ms: 30_000,
            retry_min_backoff_ms: 500,
            retry_max_backoff_ms: 30_000,
        }
    }
}

impl VaultConfig {
    /// A development configuration: token auth against `address`.
    pub fn dev(address: impl Into<String>, token: impl Into<String>) -> Self {
        VaultConfig {
            address: address.into(),
            auth: VaultAuth::Token {
                token: SecretString::from(Into::<String>::into(token)),
            },
            ..VaultConfig::default()
        }
    }

    /// Checks every value; the message names the bad field.
    pub fn validate(&self) -> Result<(), VaultError> {
        let url = url::Url::parse(&self.address).map_err(|e| {
            VaultError::Config(format!("address `{}` is not a URL: {e}", self.address))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(VaultError::Config(format!(
                "address `{}` must be http:// or https://",
                self.address
            )));
        }
        for (name, value) in [
            ("kv_mount", &self.kv_mount),
            ("transit_mount", &self.transit_mount),
            ("transit_key", &self.transit_key),
        ] {
            if value.trim().is_empty() {
                return Err(VaultError::Config(format!("{name} must not be empty")));
            }
        }
        if self.request_timeout_ms == 0
            || self.refresh_interval_ms == 0
            || self.retry_min_backoff_ms == 0
        {
            return Err(VaultError::Config(
                "request_timeout_ms, refresh_interval_ms and retry_min_backoff_ms must be > 0"
                    .to_owned(),
            ));
        }
        if self.retry_max_backoff_ms < self.retry_min_backoff_ms {
            return Err(VaultError::Config(
                "retry_max_backoff_ms must be >= retry_min_backoff_ms".to_owned(),
            ));
        }
        match &self.auth {
            VaultAuth::Token { token } if token.expose_secret().is_empty() => Err(
                VaultError::Config("auth.token is empty (use AppRole in production)".to_owned()),
            ),
            VaultAuth::AppRole {
                role_id,
                secret_id,
                secret_id_file,
                ..
            } => {
                if role_id.expose_secret().is_empty() {
                    return Err(VaultError::Config("auth.role_id is empty".to_owned()));
                }
                match (secret_id, secret_id_file) {
                    (Some(_), Some(_)) => Err(VaultError::Config(
                        "set auth.secret_id or auth.secret_id_file, not both".to_owned(),
                    )),
                    (None, None) => Err(VaultError::Config(
                        "auth.secret_id or auth.secret_id_file is required".to_owned(),
                    )),
                    _ => Ok(()),
                }
            }
            VaultAuth::Token { .. } => Ok(()),
        }
    }

    fn full_path(&self, path: &str) -> String {
        let path = path.trim_matches('/');
        let prefix = self.path_prefix.trim_matches('/');
        if prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{prefix}/{path}")
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let base = self
            .retry_min_backoff_ms
            .saturating_mul(1u64 << exp)
            .min(self.retry_max_backoff_ms);
        // ±20 % jitter so replicas do not retry in lockstep.
        let jitter = rand::random_range(0.8..1.2);
        Duration::from_millis((base as f64 * jitter) as u64)
    }
}

// ------------------------------------------------------------------ secrets

/// One version of one KV secret. `Debug` shows its path, version and field
/// names only; string values are zeroized when the last holder drops it.
pub struct Secret {
    path: String,
    version: u64,
    data: Value,
}

impl Secret {
    /// Path relative to the configured prefix.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The KV version this value came from.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// All fields.
    pub fn fields(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.data
            .as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// One string field.
    pub fn get_str(&self, field: &str) -> Option<&str> {
        self.data.get(field).and_then(Value::as_str)
    }

    /// The fields as a typed value.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, VaultError> {
        T::deserialize(&self.data).map_err(|e| VaultError::Shape {
            path: self.path.clone(),
            detail: shape_detail(&e),
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("fields", &self.fields().keys().collect::<Vec<_>>())
            .finish()
    }
}

fn zeroize_value(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        Value::Object(map) => map.values_mut().for_each(zeroize_value),
        _ => {}
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize_value(&mut self.data);
    }
}

/// The secrets the store holds at one moment.
#[derive(Debug, Clone, Default)]
pub struct SecretSnapshot {
    entries: BTreeMap<String, Arc<Secret>>,
}

impl SecretSnapshot {
    /// The secret at `path` (relative to the prefix).
    pub fn get(&self, path: &str) -> Option<&Arc<Secret>> {
        self.entries.get(path.trim_matches('/'))
    }

    /// Path → version of every held secret.
    pub fn versions(&self) -> BTreeMap<String, u64> {
        self.entries
            .iter()
            .map(|(p, s)| (p.clone(), s.version))
            .collect()
    }
}

/// Whether the store is in touch with Vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VaultHealth {
    /// The last refresh succeeded.
    Ok,
    /// Refreshes fail; held secrets are still served.
    Degraded {
        /// When the first failure of this outage happened.
        since: DateTime<Utc>,
        /// The latest error (no secret values).
        last_error: String,
    },
}

impl VaultHealth {
    /// Whether Vault is reachable and the secrets are current.
    pub fn is_ok(&self) -> bool {
        matches!(self, VaultHealth::Ok)
    }
}

/// What one [`SecretStore::refresh`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// Paths whose version changed, with the new version.
    pub changed: Vec<(String, u64)>,
}

// ------------------------------------------------------------------ envelope

/// A value encrypted under a Vault-wrapped data key. Holds no plaintext: the
/// data key is wrapped by the transit key, the value is AES-256-GCM ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// Format version (1).
    pub v: u8,
    /// The data key as wrapped by Vault transit (`vault:vN:…`).
    pub wrapped_key: String,
    /// The 96-bit AES-GCM nonce, base64.
    pub nonce: String,
    /// Ciphertext with its 128-bit tag, base64.
    pub ciphertext: String,
}

impl Sealed {
    /// Compact JSON, for storing in a text column.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses [`Sealed::to_json`] output.
    pub fn from_json(text: &str) -> Result<Self, VaultError> {
        serde_json::from_str(text).map_err(|_| VaultError::Malformed("not a sealed value"))
    }

    /// The nonce and ciphertext, decoded and checked.
    fn parts(&self) -> Result<(Vec<u8>, Vec<u8>), VaultError> {
        if self.v != 1 {
            return Err(VaultError::Malformed("unknown version"));
        }
        let nonce = B64
            .decode(&self.nonce)
            .map_err(|_| VaultError::Malformed("nonce is not base64"))?;
        if nonce.len() != 12 {
            return Err(VaultError::Malformed("nonce is not 96 bits"));
        }
        let ciphertext = B64
            .decode(&self.ciphertext)
            .map_err(|_| VaultError::Malformed("ciphertext is not base64"))?;
        Ok((nonce, ciphertext))
    }
}

fn aad(context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEALED_AAD_PREFIX.len() + context.len());
    aad.extend_from_slice(SEALED_AAD_PREFIX);
    aad.extend_from_slice(context);
    aad
}

/// Encrypts `plaintext` under a data key and packs it with the key as
/// wrapped by whichever transit key made it.
fn seal_with(
    data_key: &[u8],
    wrapped_key: String,
    plaintext: &[u8],
    context: &[u8],
) -> Result<Sealed, VaultError> {
    let cipher = Aes256Gcm::new_from_slice(data_key).map_err(|_| VaultError::Encrypt)?;
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = aad(context);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Encrypt)?;
    Ok(Sealed {
        v: 1,
        wrapped_key,
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ciphertext),
    })
}

/// Decrypts a [`Sealed`] value's ciphertext with its unwrapped data key.
fn open_with(
    data_key: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let cipher = Aes256Gcm::new_from_slice(data_key).map_err(|_| VaultError::Decrypt)?;
    let aad = aad(context);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Decrypt)
}

fn decode_key(mut b64: String) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let key = B64.decode(b64.as_bytes()).map(Zeroizing::new);
    b64.zeroize();
    match key {
        Ok(key) if key.len() == 32 => Ok(key),
        _ => Err(VaultError::Protocol {
            operation: "transit data key".to_owned(),
            detail: "not a base64 256-bit key".to_owned(),
        }),
    }
}

// ------------------------------------------------------------------ store

struct Login {
    /// When a fresh AppRole login is due (2/3 of the token's lease).
    renew_at: Option<Instant>,
}

struct Shared {
    cfg: VaultConfig,
    client: RwLock<Arc<VaultClient>>,
    login: tokio::sync::Mutex<Login>,
    refresh_lock: tokio::sync::Mutex<()>,
    snapshot: watch::Sender<Arc<SecretSnapshot>>,
    health: RwLock<VaultHealth>,
}

/// Secrets held from Vault, kept current by a background task, plus envelope
/// encryption through transit. Cheap to clone; the background task ends when
/// the last clone is dropped.
#[derive(Clone)]
pub struct SecretStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("address", &self.shared.cfg.address)
            .field("versions", &self.snapshot().versions())
            .field("health", &self.health())
            .finish()
    }
}

fn build_client(cfg: &VaultConfig, token: &str) -> Result<VaultClient, VaultError> {
    // `address()` panics on a bad URL: validate() has parsed it already.
    let mut settings = VaultClientSettingsBuilder::default();
    settings
        .address(&cfg.address)
        .token(token)
        .timeout(Some(Duration::from_millis(cfg.request_timeout_ms)))
        .verify(true);
    if let Some(ca) = &cfg.ca_cert_file {
        settings.ca_certs(vec![ca.display().to_string()]);
    }
    let settings = settings
        .build()
        .map_err(|e| VaultError::Config(e.to_string()))?;
    VaultClient::new(settings).map_err(|e| map_client_error(e, "client setup", &cfg.address))
}

/// Logs in; returns the client and when to log in again.
async fn authenticate(cfg: &VaultConfig) -> Result<(VaultClient, Option<Instant>), VaultError> {
    match &cfg.auth {
        VaultAuth::Token { token } => Ok((build_client(cfg, token.expose_secret())?, None)),
        VaultAuth::AppRole {
            mount,
            role_id,
            secret_id,
            secret_id_file,
        } => {
            let secret_id = match (secret_id, secret_id_file) {
                (Some(s), _) => s.clone(),
                (None, Some(file)) => {
                    let text = Zeroizing::new(std::fs::read_to_string(file).map_err(|e| {
                        VaultError::Config(format!(
                            "cannot read auth.secret_id_file {}: {e}",
                            file.display()
                        ))
                    })?);
                    SecretString::from(text.trim())
                }
                (None, None) => {
                    return Err(VaultError::Config("auth.secret_id is required".to_owned()));
                }
            };
            let mut client = build_client(cfg, "")?;
            let auth = vaultrs::auth::approle::login(
                &client,
                mount,
                role_id.expose_secret(),
                secret_id.expose_secret(),
            )
            .await
            .map_err(
                |e| match map_client_error(e, "AppRole login", &cfg.address) {
                    unreachable @ VaultError::Unreachable { .. } => unreachable,
                    other => VaultError::Auth(other.to_string()),
                },
            )?;
            let token = Zeroizing::new(auth.client_token);
            client.set_token(&token);
            let renew_at = (auth.lease_duration > 0).then(|| {
                Instant::now() + Duration::from_secs(auth.lease_duration.saturating_mul(2) / 3)
            });
            Ok((client, renew_at))
        }
    }
}

impl SecretStore {
    /// Logs in and loads every secret in [`VaultConfig::secrets`]; fails with a
    /// clear error if any cannot be loaded. Starts the refresh task (needs a
    /// Tokio runtime).
    pub async fn connect(cfg: VaultConfig) -> Result<Self, VaultError> {
        cfg.validate()?;
        let (client, renew_at) = authenticate(&cfg).await?;
        let (snapshot, _) = watch::channel(Arc::new(SecretSnapshot::default()));
        let shared = Arc::new(Shared {
            client: RwLock::new(Arc::new(client)),
            login: tokio::sync::Mutex::new(Login { renew_at }),
            refresh_lock: tokio::sync::Mutex::new(()),
            snapshot,
            health: RwLock::new(VaultHealth::Ok),
            cfg,
        });
        let store = SecretStore { shared };
        let mut entries = BTreeMap::new();
        for path in &store.shared.cfg.secrets {
            let secret = store.read_kv(path).await.map_err(|e| VaultError::Startup {
                path: path.clone(),
                source: Box::new(e),
            })?;
            entries.insert(secret.path.clone(), Arc::new(secret));
        }
        store
            .shared
            .snapshot
            .send_replace(Arc::new(SecretSnapshot { entries }));
        tokio::spawn(poll(Arc::downgrade(&store.shared)));
        tracing::info!(
            address = %store.shared.cfg.address,
            secrets = store.shared.cfg.secrets.len(),
            "secrets loaded from Vault"
        );
        Ok(store)
    }

    /// The configuration in use.
    pub fn config(&self) -> &VaultConfig {
        &self.shared.cfg
    }

    /// All held secrets, as of now.
    pub fn snapshot(&self) -> Arc<SecretSnapshot> {
        self.shared.snapshot.borrow().clone()
    }

    /// A receiver that sees every new snapshot (after a rotation).
    pub fn subscribe(&self) -> watch::Receiver<Arc<SecretSnapshot>> {
        self.shared.snapshot.subscribe()
    }

    /// The held secret at `path` (relative to the prefix).
    pub fn secret(&self, path: &str) -> Option<Arc<Secret>> {
        self.snapshot().get(path).cloned()
    }

    /// The held secret at `path`, typed.
    pub fn typed<T: DeserializeOwned>(&self, path: &str) -> Result<T, VaultError> {
        self.secret(path)
            .ok_or_else(|| VaultError::NotFound {
                path: self.shared.cfg.full_path(path),
            })?
            .deserialize()
    }

    /// The held version of the secret at `path`.
    pub fn version(&self, path: &str) -> Option<u64> {
        self.snapshot().get(path).map(|s| s.version)
    }

    /// Whether Vault is reachable and the held secrets current.
    pub fn health(&self) -> VaultHealth {
        self.shared
            .health
            .read()
            .map(|h| h.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reads the latest version of a KV secret from Vault now (not held).
    pub async fn read_kv(&self, path: &str) -> Result<Secret, VaultError> {
        let full = self.shared.cfg.full_path(path);
        let mount = self.shared.cfg.kv_mount.as_str();
        let op = format!("{mount}/{full}");
        let meta = self
            .call(&op, |c| {
                let full = full.clone();
                async move { vaultrs::kv2::read_metadata(&*c, mount, &full).await }
            })
            .await?;
        self.read_version(path, meta.current_version).await
    }

    /// Reads a KV secret from Vault now, typed.
    pub async fn read_typed<T: DeserializeOwned>(&self, path: &str) -> Result<T, VaultError> {
        self.read_kv(path).await?.deserialize()
    }

    async fn read_version(&self, path: &str, version: u64) -> Result<Secret, VaultError> {
        let full = self.shared.cfg.full_path(path);
        let mount = self.shared.cfg.kv_mount.as_str();
        let op = format!("{mount}/{full}");
        let data: Value = self
            .call(&op, |c| {
                let full = full.clone();
                async move { vaultrs::kv2::read_version::<Value>(&*c, mount, &full, version).await }
            })
            .await?;
        if !data.is_object() {
            return Err(VaultError::Protocol {
                operation: op,
                detail: "secret data is not an object".to_owned(),
            });
        }
        Ok(Secret {
            path: path.trim_matches('/').to_owned(),
            version,
            data,
        })
    }

    /// Writes a new version of a KV secret (used by `keys rotate` and dev
    /// setup); returns the new version. Held secrets pick it up on the next
    /// refresh.
    pub async fn write_kv(
        &self,
        path: &str,
        fields: &Map<String, Value>,
    ) -> Result<u64, VaultError> {
        let full = self.shared.cfg.full_path(path);
        let mount = self.shared.cfg.kv_mount.as_str();
        let op = format!("write {mount}/{full}");
        let meta = self
            .call(&op, |c| {
                let full = full.clone();
                async move { vaultrs::kv2::set(&*c, mount, &full, fields).await }
            })
            .await?;
        Ok(meta.version)
    }

    /// The names under a KV folder (sub-folders end in `/`); empty when
    /// there is none. Through the store's login (AppRole tokens renewed).
    pub async fn list_kv(&self, path: &str) -> Result<Vec<String>, VaultError> {
        let full = self.shared.cfg.full_path(path);
        let mount = self.shared.cfg.kv_mount.as_str();
        let op = format!("list {mount}/{full}");
        match self
            .call(&op, |c| {
                let full = full.clone();
                async move { vaultrs::kv2::list(&*c, mount, &full).await }
            })
            .await
        {
            Err(VaultError::NotFound { .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// Deletes a KV secret with every version and its metadata; deleting
    /// an absent one is not an error.
    pub async fn delete_kv(&self, path: &str) -> Result<(), VaultError> {
        let full = self.shared.cfg.full_path(path);
        let mount = self.shared.cfg.kv_mount.as_str();
        let op = format!("delete {mount}/{full}");
        match self
            .call(&op, |c| {
                let full = full.clone();
                async move { vaultrs::kv2::delete_metadata(&*c, mount, &full).await }
            })
            .await
        {
            Ok(()) | Err(VaultError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Checks every held secret's `current_version` and re-reads the ones
    /// that changed. Updates [`SecretStore::health`]. On error the held
    /// secrets stay as they were (other paths may still have been updated).
    pub async fn refresh(&self) -> Result<RefreshOutcome, VaultError> {
        let _guard = self.shared.refresh_lock.lock().await;
        let result = self.refresh_inner().await;
        match &result {
            Ok(_) => self.mark_ok(),
            Err(e) => self.mark_degraded(e),
        }
        result
    }

    async fn refresh_inner(&self) -> Result<RefreshOutcome, VaultError> {
        if self.shared.cfg.secrets.is_empty() {
            // Nothing to watch: still prove Vault answers and the token is
            // valid (`lookup-self` is allowed by Vault's default policy).
            self.call("token lookup-self", |c| async move {
                vaultrs::token::lookup_self(&*c).await.map(drop)
            })
            .await?;
            return Ok(RefreshOutcome::default());
        }
        let current = self.snapshot();
        let mut entries = current.entries.clone();
        let mut outcome = RefreshOutcome::default();
        let mut first_error = None;
        let mount = self.shared.cfg.kv_mount.as_str();
        for path in &self.shared.cfg.secrets {
            let full = self.shared.cfg.full_path(path);
            let op = format!("{mount}/{full}");
            let meta = self
                .call(&op, |c| {
                    let full = full.clone();
                    async move { vaultrs::kv2::read_metadata(&*c, mount, &full).await }
                })
                .await;
            let result = match meta {
                Ok(meta) if current.get(path).map(|s| s.version) == Some(meta.current_version) => {
                    continue;
                }
                Ok(meta) => self.read_version(path, meta.current_version).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(secret) => {
                    outcome.changed.push((secret.path.clone(), secret.version));
                    entries.insert(secret.path.clone(), Arc::new(secret));
                }
                Err(e) => {
                    let unreachable = e.is_unreachable();
                    first_error.get_or_insert(e);
                    if unreachable {
                        break; // no point asking about the other paths
                    }
                }
            }
        }
        if !outcome.changed.is_empty() {
            tracing::info!(changed = ?outcome.changed, "secrets rotated in Vault picked up");
            self.shared
                .snapshot
                .send_replace(Arc::new(SecretSnapshot { entries }));
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }

    fn mark_ok(&self) {
        let mut health = self
            .shared
            .health
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if !health.is_ok() {
            tracing::info!(address = %self.shared.cfg.address, "Vault reachable again; secrets current");
        }
        *health = VaultHealth::Ok;
    }

    fn mark_degraded(&self, err: &VaultError) {
        let mut health = self
            .shared
            .health
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let since = match &*health {
            VaultHealth::Degraded { since, .. } => *since,
            VaultHealth::Ok => {
                tracing::warn!(
                    address = %self.shared.cfg.address,
                    error = %err,
                    "Vault refresh failed; serving held secrets"
                );
                Utc::now()
            }
        };
        *health = VaultHealth::Degraded {
            since,
            last_error: err.to_string(),
        };
    }

    /// Enables the transit engine and creates the key if missing (dev setup;
    /// needs a token allowed to mount engines).
    pub async fn ensure_transit_key(&self) -> Result<(), VaultError> {
        let cfg = &self.shared.cfg;
        let mount = cfg.transit_mount.as_str();
        let enabled = self
            .call(&format!("enable {mount}/ (sys/mounts)"), |c| async move {
                vaultrs::sys::mount::enable(&*c, mount, "transit", None).await
            })
            .await;
        match enabled {
            Ok(()) => tracing::info!(mount, "transit engine enabled"),
            Err(VaultError::Api {
                status: 400,
                ref messages,
                ..
            }) if messages.contains("already in use") => {}
            Err(e) => return Err(e),
        }
        let key = cfg.transit_key.as_str();
        // Creating an existing key is a no-op in Vault/OpenBao.
        self.call(&format!("create {mount}/keys/{key}"), |c| async move {
            vaultrs::transit::key::create(&*c, mount, key, None).await
        })
        .await
    }

    /// Envelope-encrypts `plaintext`. `context` (tenant, purpose, record id…)
    /// is authenticated but not stored: [`SecretStore::decrypt`] needs the same.
    pub async fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Result<Sealed, VaultError> {
        let cfg = &self.shared.cfg;
        let (mount, key) = (cfg.transit_mount.as_str(), cfg.transit_key.as_str());
        let data_key = self
            .call(
                &format!("{mount}/datakey/plaintext/{key}"),
                |c| async move {
                    vaultrs::transit::generate::data_key(
                        &*c,
                        mount,
                        key,
                        DataKeyType::Plaintext,
                        None,
                    )
                    .await
                },
            )
            .await?;
        let missing = || VaultError::Protocol {
            operation: "transit data key".to_owned(),
            detail: "no plaintext key in the answer".to_owned(),
        };
        let key_bytes = decode_key(data_key.plaintext.ok_or_else(missing)?)?;
        seal_with(&key_bytes, data_key.ciphertext, plaintext, context)
    }

    /// Unwraps the data key through transit and decrypts. Fails with
    /// [`VaultError::Decrypt`] on a wrong context or tampered data.
    pub async fn decrypt(
        &self,
        sealed: &Sealed,
        context: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (nonce, ciphertext) = sealed.parts()?;
        let cfg = &self.shared.cfg;
        let (mount, key) = (cfg.transit_mount.as_str(), cfg.transit_key.as_str());
        let wrapped = sealed.wrapped_key.as_str();
        let unwrapped = self
            .call(&format!("{mount}/decrypt/{key}"), |c| async move {
                vaultrs::transit::data::decrypt(&*c, mount, key, wrapped, None).await
            })
            .await
            .map_err(|e| match e {
                // A tampered wrapped key is refused by Vault with 400.
                VaultError::Api { status: 400, .. } => VaultError::Decrypt,
                other => other,
            })?;
        let key_bytes = decode_key(unwrapped.plaintext)?;
        open_with(&key_bytes, &nonce, &ciphertext, context)
    }

    /// Issues a certificate from the PKI secrets engine at `mount` with
    /// `role` (for the server's own TLS: issue on start, renew before expiry).
    pub async fn issue_certificate(
        &self,
        request: &PkiRequest,
    ) -> Result<PkiCertificate, VaultError> {
        let mut opts = vaultrs::api::pki::requests::GenerateCertificateRequest::builder();
        opts.common_name(request.common_name.clone())
            .ttl(request.ttl.clone());
        if !request.alt_names.is_empty() {
            opts.alt_names(request.alt_names.join(","));
        }
        if !request.ip_sans.is_empty() {
            opts.ip_sans(request.ip_sans.join(","));
        }
        let client = self.client();
        let issued = vaultrs::pki::cert::generate(
            client.as_ref(),
            &request.mount,
            &request.role,
            Some(&mut opts),
        )
        .await
        .map_err(|e| map_client_error(e, "PKI issue", &self.shared.cfg.address))?;
        let mut chain = issued.certificate.trim().to_owned();
        for ca in issued.ca_chain.unwrap_or_default() {
            chain.push('\n');
            chain.push_str(ca.trim());
        }
        chain.push('\n');
        Ok(PkiCertificate {
            cert_chain_pem: chain,
            key_pem: SecretString::from(issued.private_key),
            issuing_ca_pem: issued.issuing_ca,
            expires_at: issued
                .expiration
                .and_then(|e| chrono::DateTime::from_timestamp(e as i64, 0)),
        })
    }

    fn client(&self) -> Arc<VaultClient> {
        self.shared
            .client
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Logs in again (AppRole) and swaps the client in.
    async fn relogin(&self, force: bool) -> Result<(), VaultError> {
        if matches!(self.shared.cfg.auth, VaultAuth::Token { .. }) {
            return Ok(());
        }
        let mut login = self.shared.login.lock().await;
        let due = login.renew_at.is_some_and(|at| Instant::now() >= at);
        if !force && !due {
            return Ok(());
        }
        let (client, renew_at) = authenticate(&self.shared.cfg).await?;
        *self
            .shared
            .client
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(client);
        login.renew_at = renew_at;
        tracing::info!("logged in to Vault again (AppRole)");
        Ok(())
    }

    /// Runs one Vault call, logging in again first when the token is due and
    /// once more after a 403. Marks the store degraded when Vault is
    /// unreachable.
    #[tracing::instrument(
        level = "debug",
        name = "vault",
        skip_all,
        fields(otel.kind = "client", vault.operation = %operation)
    )]
    async fn call<T, F, Fut>(&self, operation: &str, f: F) -> Result<T, VaultError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let address = self.shared.cfg.address.as_str();
        let result = async {
            self.relogin(false).await?;
            match f(self.client())
                .await
                .map_err(|e| map_client_error(e, operation, address))
            {
                Err(e)
                    if e.is_permission_denied()
                        && matches!(self.shared.cfg.auth, VaultAuth::AppRole { .. }) =>
                {
                    self.relogin(true).await?;
                    f(self.client())
                        .await
                        .map_err(|e| map_client_error(e, operation, address))
                }
                other => other,
            }
        }
        .await;
        if let Err(e) = &result
            && e.is_unreachable()
        {
            self.mark_degraded(e);
        }
        result
    }
}

/// The refresh loop: every `refresh_interval_ms` while healthy, with
/// exponential backoff while failing. Ends when the store is dropped.
async fn poll(shared: Weak<Shared>) {
    let mut failures: u32 = 0;
    loop {
        let delay = match shared.upgrade() {
            Some(s) if failures == 0 => Duration::from_millis(s.cfg.refresh_interval_ms),
            Some(s) => s.cfg.backoff(failures),
            None => return,
        };
        tokio::time::sleep(delay).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let store = SecretStore { shared };
        match store.refresh().await {
            Ok(_) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::debug!(error = %e, failures, "Vault refresh failed");
            }
        }
    }
}

/// What to ask Vault's PKI engine for.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PkiRequest {
    /// Mount of the PKI engine.
    #[serde(default = "default_pki_mount")]
    pub mount: String,
    /// Role allowed to issue the server's names.
    pub role: String,
    /// Common name.
    pub common_name: String,
    /// DNS alt names.
    #[serde(default)]
    pub alt_names: Vec<String>,
    /// IP SANs.
    #[serde(default)]
    pub ip_sans: Vec<String>,
    /// Lifetime, e.g. `72h`.
    #[serde(default = "default_pki_ttl")]
    pub ttl: String,
}

fn default_pki_mount() -> String {
    "pki".to_owned()
}

fn default_pki_ttl() -> String {
    "72h".to_owned()
}

/// A certificate issued by Vault's PKI engine.
#[derive(Debug, Clone)]
pub struct PkiCertificate {
    /// Leaf then chain, PEM.
    pub cert_chain_pem: String,
    /// Private key (secret).
    pub key_pem: SecretString,
    /// The issuing CA, PEM.
    pub issuing_ca_pem: String,
    /// When it expires.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}
