//! Roles, permissions and the one authorization check.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

/// A user's role within a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages the tenant: users, clients, keys, audit.
    Admin,
    /// Manages own portfolios and trades.
    Trader,
    /// Reads.
    Viewer,
    /// A machine client (API keys, `client_credentials`).
    ApiUser,
}

impl Role {
    /// Parses the stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "admin" => Some(Role::Admin),
            "trader" => Some(Role::Trader),
            "viewer" => Some(Role::Viewer),
            "api_user" => Some(Role::ApiUser),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Trader => "trader",
            Role::Viewer => "viewer",
            Role::ApiUser => "api_user",
        }
    }

    /// The permissions this role grants.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => Permission::ALL,
            Role::Trader => &[
                PortfolioRead,
                PortfolioWrite,
                TradeExecute,
                MarketRead,
                AnalyticsRead,
                AccountManage,
            ],
            Role::Viewer => &[PortfolioRead, MarketRead, AnalyticsRead, AccountManage],
            Role::ApiUser => &[
                PortfolioRead,
                TradeExecute,
                MarketRead,
                AnalyticsRead,
                AccountManage,
            ],
        }
    }
}

/// Declares [`Permission`] from one table of variant and OAuth scope, so the
/// variants, [`Permission::ALL`] and [`Permission::scope`] cannot drift apart.
macro_rules! permissions {
    ($($(#[doc = $doc:literal])* $name:ident => $scope:literal,)*) => {
        /// Something a principal may be allowed to do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum Permission {
            $($(#[doc = $doc])* $name,)*
        }

        impl Permission {
            /// Every permission, in declaration order (what [`Role::Admin`] grants).
            pub const ALL: &'static [Permission] = &[$(Permission::$name),*];

            /// The OAuth scope that carries this permission in tokens and API keys.
            pub fn scope(self) -> &'static str {
                match self {
                    $(Permission::$name => $scope,)*
                }
            }
        }
    };
}

permissions! {
    /// Read portfolios.
    PortfolioRead => "portfolio:read",
    /// Create and change portfolios.
    PortfolioWrite => "portfolio:write",
    /// Place trades.
    TradeExecute => "trade",
    /// Read market data.
    MarketRead => "market:read",
    /// Read analytics.
    AnalyticsRead => "analytics:read",
    /// Manage users and roles.
    UsersManage => "users:manage",
    /// Register OAuth clients.
    ClientsManage => "clients:manage",
    /// Create and revoke API keys.
    ApiKeysManage => "apikeys:manage",
    /// Read the audit log.
    AuditRead => "audit:read",
    /// Tenant settings.
    TenantAdmin => "tenant:admin",
    /// Manage one's own account (password, second factor, API keys,
    /// sessions): every role has it, a token only when it asked for it.
    AccountManage => "account:manage",
}

/// Every scope that maps to a permission, plus the OIDC ones.
pub const KNOWN_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "portfolio:read",
    "portfolio:write",
    "trade",
    "market:read",
    "analytics:read",
    "users:manage",
    "clients:manage",
    "apikeys:manage",
    "audit:read",
    "tenant:admin",
    "account:manage",
];

/// Who is calling, as established by a session, an access token or an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The user (none for a `client_credentials` machine client).
    pub user_id: Option<Uuid>,
    /// The OAuth client, when the principal comes from a token.
    pub client_id: Option<String>,
    /// The role.
    pub role: Role,
    /// Scopes that further restrict the role (tokens, API keys); `None` for
    /// a first-party session, which has the whole role.
    pub scopes: Option<Vec<String>>,
}

/// The single authorization check: the role must grant `permission`, and if
/// the principal is scope-restricted, a scope must carry it.
pub fn authorize(principal: &Principal, permission: Permission) -> Result<(), AuthError> {
    if !principal.role.permissions().contains(&permission) {
        return Err(AuthError::Forbidden(format!(
            "role {} lacks {}",
            principal.role.as_str(),
            permission.scope()
        )));
    }
    if let Some(scopes) = &principal.scopes
        && !scopes.iter().any(|s| s == permission.scope())
    {
        return Err(AuthError::Forbidden(format!(
            "scope {} not granted",
            permission.scope()
        )));
    }
    Ok(())
}
