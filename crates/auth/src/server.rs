//! [`AuthServer`]: a thin facade that builds the services of this crate over
//! one tenant pool, key ring and configuration, owns them, and hands them out
//! ([`AuthServer::accounts`], [`AuthServer::oauth`], ...). Its other methods
//! delegate to those services under the names the server has always used.

use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_tenancy::TenantPool;
use uuid::Uuid;

use crate::accounts::AccountService;
use crate::apikey::{ApiKeyInfo, ApiKeyService, NewApiKey};
use crate::audit::{AuditEvent, AuditRecord, AuditService, AuditVerification};
use crate::cleanup::{CleanupReport, CleanupService};
use crate::config::AuthConfig;
use crate::context::ClientContext;
use crate::error::AuthError;
use crate::invitation::InvitationService;
use crate::keys::{KeyEncryptionKey, KeyRing, MemoryKeyStore, RotationPolicy};
use crate::mfa::{MfaService, TotpSetup};
use crate::oauth::{
    AuthorizeError, AuthorizeRequest, CLIENT_CACHE_TTL, Client, ClientCredentials,
    ClientRegistration, OAuthService, TokenRequest, TokenResponse, ValidatedAuthorize,
};
use crate::password::PasswordHasher;
use crate::revocation::RevocationFeed;
use crate::roles::{Principal, Role};
use crate::session::{LoginOutcome, NewSession, SessionInfo};
use crate::tenant_roles::RoleService;
use crate::token::TokenService;
use crate::token::VerifiedAccessToken;
use crate::upstream::{UpstreamLogin, UpstreamOutcome, UpstreamService};
use crate::upstream_provider::{UpstreamProvider, UpstreamProviderInfo};
use crate::users::User;

/// The auth services of Rampart. Cheap to share behind an `Arc`.
pub struct AuthServer {
    pool: TenantPool,
    config: Arc<AuthConfig>,
    tokens: Arc<TokenService>,
    hasher: PasswordHasher,
    accounts: AccountService,
    mfa: MfaService,
    api_keys: ApiKeyService,
    audit_trail: AuditService,
    cleanup: CleanupService,
    oauth: OAuthService,
    upstream: UpstreamService,
    invitations: InvitationService,
    roles: RoleService,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// Builds the services. `sealer` encrypts secrets kept in tenant tables
    /// (TOTP seeds); it may be the same KEK as the key ring's.
    pub fn new(
        pool: TenantPool,
        config: AuthConfig,
        ring: Arc<KeyRing>,
        sealer: KeyEncryptionKey,
    ) -> Result<Self, AuthError> {
        config.validate()?;
        let tokens = Arc::new(TokenService::new(ring.clone(), &config));
        let hasher = PasswordHasher::new(&config)?;
        // One feed for every service that revokes or checks access tokens.
        let revocations = Arc::new(RevocationFeed::new(
            pool.clone(),
            Duration::from_secs(config.revocation_check_secs),
            config.access_token_ttl() + config.clock_skew(),
        ));
        let roles = RoleService::new(pool.clone(), config.role_cache_secs);
        let config = Arc::new(config);
        let mfa = MfaService {
            pool: pool.clone(),
            config: config.clone(),
            sealer: sealer.clone(),
        };
        Ok(Self {
            accounts: AccountService {
                pool: pool.clone(),
                config: config.clone(),
                hasher: hasher.clone(),
                mfa: mfa.clone(),
                revocations: revocations.clone(),
                in_flight: Default::default(),
                roles: roles.clone(),
            },
            mfa,
            api_keys: ApiKeyService {
                pool: pool.clone(),
                roles: roles.clone(),
            },
            audit_trail: AuditService {
                pool: pool.clone(),
                ring,
            },
            cleanup: CleanupService {
                pool: pool.clone(),
                config: config.clone(),
            },
            oauth: OAuthService {
                pool: pool.clone(),
                config: config.clone(),
                tokens: tokens.clone(),
                sealer: sealer.clone(),
                // One entry per (tenant, client): room for 10,000 tenants
                // with several clients each, so a load spread over all of
                // them does not evict what it is about to read again.
                client_cache: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(CLIENT_CACHE_TTL)
                    .build(),
                revocations,
                roles: roles.clone(),
            },
            invitations: InvitationService::new(pool.clone(), hasher.clone()),
            upstream: UpstreamService {
                pool: pool.clone(),
                config: config.clone(),
                sealer,
                upstreams: Arc::default(),
                secrets: Arc::new(crate::upstream_secrets::NoUpstreamSecrets),
                token_sealer: None,
            },
            roles,
            pool,
            config,
            tokens,
            hasher,
        })
    }

    /// Keeps upstream providers' client secrets in `secrets` (the default,
    /// [`crate::NoUpstreamSecrets`], refuses to store any).
    pub fn with_upstream_secrets(
        mut self,
        secrets: Arc<dyn crate::upstream_secrets::UpstreamSecrets>,
    ) -> Self {
        self.upstream.secrets = secrets;
        self
    }

    /// Keeps users' upstream tokens (access and refresh) sealed by
    /// `sealer` (by default none are kept).
    pub fn with_upstream_token_sealer(
        mut self,
        sealer: Arc<dyn crate::upstream_secrets::UpstreamTokenSealer>,
    ) -> Self {
        self.upstream.token_sealer = Some(sealer);
        self
    }

    /// Services whose signing keys live in memory, sealed by one generated
    /// key (a demo, a test, a command that signs nothing lasting; a
    /// deployment keeps its keys in Vault through `VaultKeyStore`).
    pub async fn with_memory_keys(pool: TenantPool, config: AuthConfig) -> Result<Self, AuthError> {
        let kek = KeyEncryptionKey::generate();
        let ring = KeyRing::open(
            Arc::new(MemoryKeyStore::new()),
            kek.clone(),
            RotationPolicy::from_config(&config),
        )
        .await?;
        Self::new(pool, config, ring, kek)
    }

    /// Accounts and sessions.
    pub fn accounts(&self) -> &AccountService {
        &self.accounts
    }

    /// The TOTP second factor.
    pub fn mfa(&self) -> &MfaService {
        &self.mfa
    }

    /// API keys.
    pub fn api_keys(&self) -> &ApiKeyService {
        &self.api_keys
    }

    /// The audit log.
    pub fn audit_trail(&self) -> &AuditService {
        &self.audit_trail
    }

    /// Deleting expired rows.
    pub fn cleanup(&self) -> &CleanupService {
        &self.cleanup
    }

    /// The OAuth 2.1 endpoints' logic.
    pub fn oauth(&self) -> &OAuthService {
        &self.oauth
    }

    /// Login through upstream OpenID Connect providers.
    pub fn upstream(&self) -> &UpstreamService {
        &self.upstream
    }

    /// Invitations.
    pub fn invitations(&self) -> &InvitationService {
        &self.invitations
    }

    /// The tenant's roles and their permissions.
    pub fn roles(&self) -> &RoleService {
        &self.roles
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The token service (verify access tokens here).
    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// The password hasher.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The tenant pool.
    pub fn pool(&self) -> &TenantPool {
        &self.pool
    }

    /// The issuer URL of a tenant.
    pub fn issuer(&self, tenant: &TenantSlug) -> String {
        self.config.issuer(tenant)
    }

    /// Spawns a task that runs [`CleanupService::cleanup_all_tenants`] every
    /// `every`, logging failures; it ends when the server is dropped.
    pub fn spawn_cleanup(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let server = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(server) = server.upgrade() else {
                    break;
                };
                match server.cleanup.cleanup_all_tenants().await {
                    Ok(n) => tracing::debug!(deleted = n, "auth cleanup"),
                    Err(e) => tracing::warn!(error = %e, "auth cleanup failed"),
                }
            }
        })
    }
}

/// Methods of [`AuthServer`] that hand straight to one of its services,
/// as a table: `service: Service => [async] fn method(&self, args) -> answer;`.
macro_rules! delegate {
    () => {};
    ($(#[$meta:meta])* $service:ident: $Service:ident => async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; $($rest:tt)*) => {
        #[doc = concat!("See [`", stringify!($Service), "::", stringify!($name), "`].")]
        $(#[$meta])*
        pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
            self.$service.$name($($arg),*).await
        }
        delegate! { $($rest)* }
    };
    ($(#[$meta:meta])* $service:ident: $Service:ident => fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; $($rest:tt)*) => {
        #[doc = concat!("See [`", stringify!($Service), "::", stringify!($name), "`].")]
        $(#[$meta])*
        pub fn $name(&self $(, $arg: $ty)*) -> $ret {
            self.$service.$name($($arg),*)
        }
        delegate! { $($rest)* }
    };
}

/// Methods kept from before the split, each delegating to one service.
impl AuthServer {
    delegate! {
        accounts: AccountService => async fn register(&self, tenant: &TenantSlug, email: &str, display_name: &str, password: &str, role: Role) -> Result<User, AuthError>;
        accounts: AccountService => async fn user(&self, tenant: &TenantSlug, user_id: UserId) -> Result<User, AuthError>;
        accounts: AccountService => async fn set_role(&self, tenant: &TenantSlug, user_id: UserId, role: Role) -> Result<(), AuthError>;
        accounts: AccountService => async fn login(&self, tenant: &TenantSlug, email: &str, password: &str, ctx: &ClientContext) -> Result<LoginOutcome, AuthError>;
        accounts: AccountService => async fn verify_mfa(&self, tenant: &TenantSlug, challenge: &str, code: &str, ctx: &ClientContext) -> Result<NewSession, AuthError>;
        accounts: AccountService => async fn authenticate_session(&self, tenant: &TenantSlug, token: &str) -> Result<(SessionInfo, User), AuthError>;
        accounts: AccountService => async fn list_sessions(&self, tenant: &TenantSlug, user_id: UserId) -> Result<Vec<SessionInfo>, AuthError>;
        accounts: AccountService => async fn revoke_session(&self, tenant: &TenantSlug, user_id: UserId, session_id: Uuid, ctx: &ClientContext) -> Result<(), AuthError>;
        accounts: AccountService => async fn logout(&self, tenant: &TenantSlug, session_token: &str, ctx: &ClientContext) -> Result<(), AuthError>;
        accounts: AccountService => async fn revoke_other_sessions(&self, tenant: &TenantSlug, user_id: UserId, keep: Uuid, ctx: &ClientContext) -> Result<usize, AuthError>;
        accounts: AccountService => async fn change_password(&self, tenant: &TenantSlug, user_id: UserId, current: &str, new: &str, keep_session: Option<Uuid>, ctx: &ClientContext) -> Result<(), AuthError>;

        mfa: MfaService => async fn begin_totp_setup(&self, tenant: &TenantSlug, user_id: UserId) -> Result<TotpSetup, AuthError>;
        mfa: MfaService => async fn confirm_totp(&self, tenant: &TenantSlug, user_id: UserId, code: &str, ctx: &ClientContext) -> Result<Vec<String>, AuthError>;
        mfa: MfaService => async fn disable_totp(&self, tenant: &TenantSlug, user_id: UserId, code: &str, ctx: &ClientContext) -> Result<(), AuthError>;

        api_keys: ApiKeyService => async fn create_api_key(&self, tenant: &TenantSlug, user_id: UserId, name: &str, scopes: &[String], expires_at: Option<DateTime<Utc>>, ctx: &ClientContext) -> Result<NewApiKey, AuthError>;
        api_keys: ApiKeyService => async fn authenticate_api_key(&self, tenant: &TenantSlug, key: &str) -> Result<Principal, AuthError>;
        api_keys: ApiKeyService => async fn list_api_keys(&self, tenant: &TenantSlug, user_id: UserId) -> Result<Vec<ApiKeyInfo>, AuthError>;
        api_keys: ApiKeyService => async fn revoke_api_key(&self, tenant: &TenantSlug, prefix: &str, ctx: &ClientContext) -> Result<(), AuthError>;

        audit_trail: AuditService => async fn audit(&self, tenant: &TenantSlug, event: AuditEvent) -> Result<(), AuthError>;
        audit_trail: AuditService => async fn audit_log(&self, tenant: &TenantSlug, limit: i64) -> Result<Vec<AuditRecord>, AuthError>;
        audit_trail: AuditService => async fn verify_audit_chain(&self, tenant: &TenantSlug) -> Result<AuditVerification, AuthError>;

        cleanup: CleanupService => async fn cleanup_expired(&self, tenant: &TenantSlug) -> Result<CleanupReport, AuthError>;
        cleanup: CleanupService => async fn cleanup_all_tenants(&self) -> Result<usize, AuthError>;

        oauth: OAuthService => async fn register_client(&self, tenant: &TenantSlug, reg: &ClientRegistration) -> Result<Option<String>, AuthError>;
        oauth: OAuthService => async fn client(&self, tenant: &TenantSlug, client_id: &str) -> Result<Client, AuthError>;
        oauth: OAuthService => async fn authenticate_client(&self, tenant: &TenantSlug, creds: &ClientCredentials) -> Result<Client, AuthError>;
        oauth: OAuthService => async fn validate_authorize(&self, tenant: &TenantSlug, req: &AuthorizeRequest) -> Result<ValidatedAuthorize, AuthorizeError>;
        oauth: OAuthService => async fn issue_authorization_code(&self, tenant: &TenantSlug, request: &ValidatedAuthorize, session: &SessionInfo) -> Result<String, AuthError>;
        oauth: OAuthService => async fn token(&self, tenant: &TenantSlug, creds: &ClientCredentials, req: &TokenRequest, ctx: &ClientContext) -> Result<TokenResponse, AuthError>;
        oauth: OAuthService => async fn authenticate_bearer(&self, tenant: &TenantSlug, token: &str) -> Result<Principal, AuthError>;
        oauth: OAuthService => async fn authenticate_verified_bearer(&self, tenant: &TenantSlug, verified: &VerifiedAccessToken) -> Result<Principal, AuthError>;
        oauth: OAuthService => async fn introspect(&self, tenant: &TenantSlug, creds: &ClientCredentials, token: &str) -> Result<serde_json::Value, AuthError>;
        oauth: OAuthService => async fn revoke(&self, tenant: &TenantSlug, creds: &ClientCredentials, token: &str, ctx: &ClientContext) -> Result<(), AuthError>;
        oauth: OAuthService => async fn userinfo(&self, tenant: &TenantSlug, bearer: &str) -> Result<serde_json::Value, AuthError>;

        oauth: OAuthService => fn discovery(&self, tenant: &TenantSlug) -> serde_json::Value;
        oauth: OAuthService => fn jwks(&self) -> serde_json::Value;

        upstream: UpstreamService => async fn upstream_providers(&self, tenant: &TenantSlug) -> Result<Vec<(String, String)>, AuthError>;
        upstream: UpstreamService => async fn begin_login(&self, tenant: &TenantSlug, provider: &str, return_to: Option<&str>) -> Result<UpstreamLogin, AuthError>;
        #[allow(clippy::too_many_arguments)]
        upstream: UpstreamService => async fn complete_login(&self, tenant: &TenantSlug, provider: &str, code: &str, state: &str, iss: Option<&str>, pending: &str, ctx: &ClientContext) -> Result<UpstreamOutcome, AuthError>;
    }

    /// See [`OAuthService::access_tokens_revoked_elsewhere`].
    pub fn access_tokens_revoked_elsewhere(&self) {
        self.oauth.access_tokens_revoked_elsewhere()
    }

    /// Registers or replaces an upstream provider (actor `library`); see
    /// [`UpstreamService::put_provider`].
    pub async fn add_upstream_provider(
        &self,
        tenant: &TenantSlug,
        provider: UpstreamProvider,
    ) -> Result<UpstreamProviderInfo, AuthError> {
        self.upstream
            .put_provider(tenant, provider, true, "library")
            .await
    }
}
