//! # rampart-auth
//!
//! The OAuth 2.1 authorization server of Rampart as plain async services
//! (no web framework): keys and JWT access tokens with an encrypted tenant id,
//! accounts and passwords, brute-force defence, TOTP, sessions, roles, API
//! keys, a hash-chained audit log, the OAuth endpoints' logic, and login
//! through upstream OpenID Connect providers ([`upstream`]). [`AuthServer`] is
//! a thin facade owning one of each service ([`AuthServer::accounts`],
//! [`AuthServer::oauth`], ...). The server crate maps these to HTTP.
//!
//! ```
//! # async fn demo() -> Result<(), rampart_auth::AuthError> {
//! use std::sync::Arc;
//! use rampart_auth::{AuthConfig, AccessTokenRequest, KeyEncryptionKey, KeyRing,
//!     MemoryKeyStore, RotationPolicy, SigningAlg, TokenService};
//!
//! let config = AuthConfig::default();
//! let ring = KeyRing::open(
//!     Arc::new(MemoryKeyStore::new()),
//!     KeyEncryptionKey::generate(),
//!     RotationPolicy::from_config(&config),
//! ).await?;
//! let tokens = TokenService::new(ring, &config);
//! let tenant = uuid::Uuid::new_v4();
//! let (jwt, _claims) = tokens.issue_access_token(&AccessTokenRequest {
//!     tenant_id: tenant,
//!     issuer: config.issuer("acme"),
//!     audience: config.access_token_audience.clone(),
//!     subject: "user-1".into(),
//!     client_id: "web".into(),
//!     scope: "openid".into(),
//!     roles: vec!["trader".into()],
//!     session_id: None,
//!     family_id: None,
//!     auth_time: None,
//!     alg: SigningAlg::ES256,
//! })?;
//! let verified = tokens.verify_access_token(&jwt, &config.issuer("acme"), "rampart")?;
//! assert_eq!(verified.tenant_id, tenant);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod accounts;
pub mod apikey;
pub mod audit;
pub mod audit_query;
pub mod audit_tree;
pub mod cleanup;
pub mod clients;
mod config;
mod context;
pub mod directory;
mod error;
pub mod invitation;
mod jose_header;
pub mod keys;
pub mod merkle;
pub mod mfa;
pub mod oauth;
pub mod password;
mod revocation;
pub mod roles;
mod schema;
mod server;
pub mod session;
pub mod tenant_policy;
pub mod tenant_roles;
pub mod throttle;
pub mod token;
pub mod upstream;
mod upstream_admin;
pub mod upstream_provider;
pub mod upstream_secrets;
pub mod upstream_tokens;
pub mod users;

pub use accounts::AccountService;
pub use apikey::ApiKeyService;
pub use audit::AuditService;
pub use cleanup::CleanupService;
pub use config::AuthConfig;
pub use context::{ClientContext, MAX_USER_AGENT_CHARS};
pub use error::AuthError;
pub use invitation::InvitationService;
pub use keys::{
    KeyEncryptionKey, KeyKind, KeyRing, KeyState, KeyStore, MemoryKeyStore, RotationPolicy,
    SigningAlg, StoredKey, VaultKeyStore,
};
pub use mfa::MfaService;
pub use oauth::OAuthService;
pub use rampart_ids::UserId;
pub use roles::{Permission, Principal, Role, authorize};
pub use server::AuthServer;
pub use tenant_roles::{RoleChange, RoleInfo, RoleService};
pub use token::{
    AccessTokenClaims, AccessTokenRequest, Audience, IdTokenClaims, TokenService,
    VerifiedAccessToken,
};
pub use upstream::UpstreamService;
pub use upstream::{UpstreamLogin, UpstreamOutcome};
pub use upstream_provider::{
    UpstreamPreset, UpstreamProvider, UpstreamProviderInfo, UpstreamProviderUpdate,
};
pub use upstream_secrets::UpstreamTokenSealer;
pub use upstream_secrets::{MemoryUpstreamSecrets, NoUpstreamSecrets, UpstreamSecrets};
pub use upstream_tokens::UpstreamConnection;
