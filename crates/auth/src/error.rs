//! The crate's one error type, with its RFC 6749 error code. The HTTP
//! mapping is the server's (one table in `rampart-server`'s `error` module).

use std::time::Duration;

/// Everything the auth services can refuse or fail with.
///
/// Each variant maps to one OAuth 2.0 error code ([`AuthError::oauth_code`]);
/// [`AuthError::is_server_side`] says whether its text may be shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request is malformed (missing or duplicated parameter, bad PKCE, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed (unknown client, wrong secret, wrong method).
    #[error("invalid client")]
    InvalidClient,
    /// The grant (code, refresh token, verifier, redirect URI) is invalid,
    /// expired, revoked or was issued to another client.
    #[error("invalid grant: {0}")]
    InvalidGrant(String),
    /// The client may not use this grant type or response type.
    #[error("unauthorized client: {0}")]
    UnauthorizedClient(String),
    /// The grant type is not supported (implicit and password grants never are).
    #[error("unsupported grant type: {0}")]
    UnsupportedGrantType(String),
    /// The response type is not supported (only `code` is).
    #[error("unsupported response type: {0}")]
    UnsupportedResponseType(String),
    /// The requested scope is invalid or exceeds what the client may ask.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// The resource owner or the policy denied the request.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// A bearer token is missing, malformed, expired, revoked or not for us
    /// (RFC 6750 `invalid_token`).
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The principal lacks the permission for this operation.
    #[error("insufficient permission: {0}")]
    Forbidden(String),
    /// Wrong e-mail or password, unknown user, or locked account: one answer
    /// for all three so that accounts cannot be enumerated.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A second factor is needed to finish this login.
    #[error("a second factor is required")]
    MfaRequired,
    /// Too many attempts from this account and address; try again later.
    #[error("too many attempts; retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// A new password does not meet the policy.
    #[error("password rejected: {0}")]
    WeakPassword(String),
    /// The thing asked for does not exist (or is not visible to the caller).
    #[error("not found: {0}")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An invitation link that is malformed, unknown or was replaced by a
    /// newer one.
    #[error("invalid invitation link")]
    InvitationInvalid,
    /// An invitation past its expiry.
    #[error("this invitation has expired; ask for a new one")]
    InvitationExpired,
    /// An invitation revoked by an administrator.
    #[error("this invitation was revoked")]
    InvitationRevoked,
    /// An invitation accepted already (accepting is single use: sign in instead).
    #[error("this invitation was accepted already; sign in instead")]
    InvitationUsed,
    /// The key store (Vault/OpenBao or memory) failed.
    #[error("key store: {0}")]
    KeyStore(String),
    /// A cryptographic operation failed on our side.
    #[error("crypto: {0}")]
    Crypto(String),
    /// An upstream identity names the e-mail of a local account whose
    /// e-mail is not verified: it is not linked (whoever registered that
    /// account may not own the address; linking would hand them the
    /// upstream user's sign-ins).
    #[error("upstream identity not linked: {0}")]
    LinkRefused(String),
    /// The upstream identity provider failed or answered something invalid.
    #[error("upstream identity provider: {0}")]
    Upstream(String),
    /// An upstream provider being registered or changed could not be
    /// checked: its discovery document, explicit endpoints or JWKS are
    /// unreachable or invalid (a wrong issuer, most often). Shown to the
    /// administrator who made the change.
    #[error("upstream provider check failed: {0}")]
    UpstreamDiscovery(String),
    /// The user has no tokens at this upstream provider (never signed in
    /// through it, disconnected, or the provider refused the refresh
    /// token): they sign in through it to connect.
    #[error("not connected: {0}")]
    UpstreamNotConnected(String),
    /// A client secret was given but no secret store is configured
    /// (production without Vault): secrets are never kept in the database.
    #[error(
        "no secret store for client secrets: configure Vault (secrets are never stored in the database)"
    )]
    NoSecretStore,
    /// The secret store (Vault, the dev store) failed.
    #[error("secret store: {0}")]
    SecretStore(String),
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A database statement failed.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// The tenant's registration policy is `closed`.
    #[error("registration is closed for this tenant")]
    RegistrationClosed,
    /// The tenant's registration policy is `invitation_only`.
    #[error("registration needs an invitation")]
    InvitationRequired,
    /// Open registration, but not for this e-mail domain.
    #[error("registration is not open to this e-mail domain")]
    EmailDomainNotAllowed,
    /// The tenant requires a verified e-mail address to log in.
    #[error("the e-mail address must be verified before logging in")]
    EmailNotVerified,
    /// The tenant requires administrators to have a second factor.
    #[error("administrators of this tenant must enrol a second factor (TOTP) to log in")]
    MfaEnrollmentRequired,
    /// The audit row or tree size asked for is not sealed (yet): no signed
    /// tree head covers it.
    #[error("not sealed: {0}")]
    NotSealed(String),
    /// A role's permission list names a scope that is no permission.
    #[error("unknown permission: {0}")]
    UnknownPermission(String),
    /// The tenant has no role of this name (assigning one).
    #[error("unknown role: {0}")]
    UnknownRole(String),
    /// A built-in role cannot be deleted (its permissions can be changed).
    #[error("the built-in role {0} cannot be deleted")]
    RoleBuiltIn(String),
    /// The role is still given to users, clients or upstream providers.
    #[error("the role {0} is still assigned; assign another role first")]
    RoleInUse(String),
    /// The change would leave no active user with a role that has both
    /// `tenant:admin` and `users:manage` (the tenant would lock itself out).
    #[error(
        "no active user would keep a role with tenant:admin and users:manage; \
         give another user such a role first"
    )]
    RoleLockout,
    /// Tenant routing failed (unknown tenant, pool exhausted, ...).
    #[error("tenancy: {0}")]
    Tenancy(#[from] rampart_tenancy::TenancyError),
}

impl AuthError {
    /// The RFC 6749 / RFC 6750 / OIDC error code for this error.
    pub fn oauth_code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_)
            | Self::UnknownRole(_)
            | Self::RoleBuiltIn(_)
            | Self::RoleInUse(_)
            | Self::RoleLockout
            | Self::WeakPassword(_)
            | Self::Conflict(_)
            | Self::UpstreamNotConnected(_)
            | Self::UpstreamDiscovery(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_)
            | Self::InvitationInvalid
            | Self::InvitationExpired
            | Self::InvitationRevoked
            | Self::InvitationUsed => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnsupportedResponseType(_) => "unsupported_response_type",
            Self::InvalidScope(_) | Self::UnknownPermission(_) => "invalid_scope",
            Self::AccessDenied(_)
            | Self::InvalidCredentials
            | Self::LinkRefused(_)
            | Self::RegistrationClosed
            | Self::InvitationRequired
            | Self::EmailDomainNotAllowed
            | Self::EmailNotVerified
            | Self::MfaEnrollmentRequired => "access_denied",
            Self::InvalidToken(_) => "invalid_token",
            Self::Forbidden(_) => "insufficient_scope",
            Self::MfaRequired => "interaction_required",
            Self::RateLimited { .. } => "temporarily_unavailable",
            Self::NotFound(_) | Self::NotSealed(_) => "not_found",
            Self::KeyStore(_)
            | Self::Crypto(_)
            | Self::Upstream(_)
            | Self::Config(_)
            | Self::NoSecretStore
            | Self::SecretStore(_)
            | Self::Database(_) => "server_error",
            Self::Tenancy(e) if is_unknown_tenant(e) => "invalid_request",
            Self::Tenancy(_) => "server_error",
        }
    }

    /// A failure on our side (key store, crypto, configuration, database,
    /// the upstream provider, tenant routing other than an unknown tenant):
    /// its text is logged, never shown.
    pub fn is_server_side(&self) -> bool {
        match self {
            Self::KeyStore(_)
            | Self::Crypto(_)
            | Self::Config(_)
            | Self::Database(_)
            | Self::SecretStore(_)
            | Self::Upstream(_) => true,
            Self::Tenancy(e) => !is_unknown_tenant(e),
            _ => false,
        }
    }

    /// Whether the tenant could not be addressed at all (unknown, malformed,
    /// suspended, deactivated or purged): answered like an unknown tenant.
    pub fn is_unknown_tenant(&self) -> bool {
        matches!(self, Self::Tenancy(e) if is_unknown_tenant(e))
    }

    /// A description safe to show to the client: server-side details are
    /// replaced by a generic text.
    pub fn public_description(&self) -> String {
        if self.is_server_side() {
            "internal error".to_owned()
        } else {
            self.to_string()
        }
    }
}

fn is_unknown_tenant(e: &rampart_tenancy::TenancyError) -> bool {
    use rampart_tenancy::TenancyError as T;
    matches!(
        e,
        T::NotFound(_) | T::InvalidSlug { .. } | T::Suspended(_) | T::Deactivated(_) | T::Purged(_)
    )
}

impl From<josekit::JoseError> for AuthError {
    fn from(e: josekit::JoseError) -> Self {
        Self::Crypto(e.to_string())
    }
}
