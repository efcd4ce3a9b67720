//! Roles, permissions and the one authorization check.
//!
//! A role is data: its name is a [`Role`] (a lowercase slug), what it may do
//! is the `permissions` column of the tenant's `roles` table, read through
//! [`crate::tenant_roles::RoleService`] (cached per tenant for
//! `auth.role_cache_secs`). The built-in roles are seeded by the tenant
//! migrations with [`Role::default_permissions`]; a tenant admin changes
//! them and adds roles of their own.

use rampart_ids::UserId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

/// The longest role name.
pub const ROLE_NAME_MAX: usize = 32;

/// A role's name within a tenant: a lowercase slug (`[a-z][a-z0-9_]*`, at
/// most [`ROLE_NAME_MAX`] bytes). `Copy`, so it travels like the enum it
/// replaced; the built-in roles are its constants (`Role::Admin`, ...).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role {
    len: u8,
    bytes: [u8; ROLE_NAME_MAX],
}

/// The built-in roles keep the names of the enum variants they were, so the
/// code that names them reads as before.
#[allow(non_upper_case_globals)]
impl Role {
    /// Manages the tenant: users, roles, clients, keys, audit (every permission).
    pub const Admin: Role = Role::built_in("admin");
    /// Manages own portfolios, trades and cases.
    pub const Trader: Role = Role::built_in("trader");
    /// Reads.
    pub const Viewer: Role = Role::built_in("viewer");
    /// A machine client (API keys, `client_credentials`).
    pub const ApiUser: Role = Role::built_in("api_user");
    /// EPV tier 2: reads, writes own portfolios and valuation cases.
    pub const Analyst: Role = Role::built_in("analyst");
    /// EPV tier 3: an analyst who also shares cases with colleagues.
    pub const SeniorAnalyst: Role = Role::built_in("senior_analyst");
    /// EPV tier 4: a senior analyst who also trades, reads the audit log
    /// and manages the tenant's API keys.
    pub const Manager: Role = Role::built_in("manager");
}

impl Role {
    /// The roles every tenant has (seeded by the tenant migrations, never
    /// deleted; their permissions can be changed).
    pub const BUILT_IN: &'static [Role] = &[
        Role::Admin,
        Role::Trader,
        Role::Viewer,
        Role::ApiUser,
        Role::Analyst,
        Role::SeniorAnalyst,
        Role::Manager,
    ];

    /// A built-in name (checked at compile time: a bad name fails the build).
    const fn built_in(name: &str) -> Role {
        match Role::from_bytes(name.as_bytes()) {
            Some(r) => r,
            None => panic!("invalid built-in role name"),
        }
    }

    const fn from_bytes(name: &[u8]) -> Option<Role> {
        if name.is_empty() || name.len() > ROLE_NAME_MAX || !name[0].is_ascii_lowercase() {
            return None;
        }
        let mut bytes = [0u8; ROLE_NAME_MAX];
        let mut i = 0;
        while i < name.len() {
            let b = name[i];
            if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return None;
            }
            bytes[i] = b;
            i += 1;
        }
        Some(Role {
            len: name.len() as u8,
            bytes,
        })
    }

    /// Parses a role name: any valid slug (whether the tenant has such a
    /// role is for [`crate::tenant_roles::RoleService`] to say).
    pub fn parse(name: &str) -> Option<Self> {
        Role::from_bytes(name.as_bytes())
    }

    /// The stored name.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked by `from_bytes`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Whether this is one of [`Role::BUILT_IN`].
    pub fn is_built_in(self) -> bool {
        Role::BUILT_IN.contains(&self)
    }

    /// What the tenant migrations seed a built-in role with (a tenant admin
    /// may have changed it since: the tenant's `roles` table is what counts);
    /// none for any other role. A test checks the migration against these.
    pub fn default_permissions(self) -> &'static [Permission] {
        match self {
            Role::Admin => Permission::ALL,
            Role::Trader => &seed::TRADER,
            Role::Viewer => &seed::VIEWER,
            Role::ApiUser => &seed::API_USER,
            Role::Analyst => &seed::ANALYST,
            Role::SeniorAnalyst => &seed::SENIOR_ANALYST,
            Role::Manager => &seed::MANAGER,
            _ => &[],
        }
    }
}

/// The built-in roles' default permissions (but admin's, which is all of
/// them), in the order the migrations seed them: each role's own portfolio
/// and trading permissions, those every such role has, then its own cases
/// and administrative ones.
mod seed {
    use super::Permission::{self, *};

    /// What every seeded role but admin has.
    const COMMON: [Permission; 4] = [MarketRead, AnalyticsRead, AccountManage, CasesRead];

    /// `before`, [`COMMON`], `after` (`N` must be their length: a wrong one
    /// fails the build).
    const fn seeded<const N: usize>(
        before: &[Permission],
        after: &[Permission],
    ) -> [Permission; N] {
        let mut out = [PortfolioRead; N];
        let mut n = 0;
        let parts: [&[Permission]; 3] = [before, &COMMON, after];
        let mut part = 0;
        while part < parts.len() {
            let mut i = 0;
            while i < parts[part].len() {
                out[n] = parts[part][i];
                n += 1;
                i += 1;
            }
            part += 1;
        }
        assert!(n == N, "wrong length of a seeded role");
        out
    }

    pub(super) const VIEWER: [Permission; 5] = seeded(&[PortfolioRead], &[]);
    pub(super) const API_USER: [Permission; 6] = seeded(&[PortfolioRead, TradeExecute], &[]);
    /// EPV tier 2.
    pub(super) const ANALYST: [Permission; 7] =
        seeded(&[PortfolioRead, PortfolioWrite], &[CasesWrite]);
    /// EPV tier 3: an analyst who also shares.
    pub(super) const SENIOR_ANALYST: [Permission; 8] =
        seeded(&[PortfolioRead, PortfolioWrite], &[CasesWrite, CasesShare]);
    pub(super) const TRADER: [Permission; 9] = seeded(
        &[PortfolioRead, PortfolioWrite, TradeExecute],
        &[CasesWrite, CasesShare],
    );
    /// EPV tier 4: a senior analyst who also trades, reads the audit log
    /// and manages the tenant's API keys.
    pub(super) const MANAGER: [Permission; 11] = seeded(
        &[PortfolioRead, PortfolioWrite, TradeExecute],
        &[CasesWrite, CasesShare, AuditRead, ApiKeysManage],
    );
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Role({:?})", self.as_str())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        Role::parse(s).ok_or_else(|| {
            AuthError::InvalidRequest(format!(
                "a role name is a lowercase slug of at most {ROLE_NAME_MAX} characters \
                 (a-z, 0-9, _; starting with a letter)"
            ))
        })
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<str> for Role {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Role {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
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

            /// The permission of a scope (`None` for OIDC scopes and unknown ones).
            pub fn from_scope(scope: &str) -> Option<Permission> {
                match scope {
                    $($scope => Some(Permission::$name),)*
                    _ => None,
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
    /// Manage users and their roles (can give any role: admin-equivalent).
    UsersManage => "users:manage",
    /// Register OAuth clients.
    ClientsManage => "clients:manage",
    /// Create and revoke API keys.
    ApiKeysManage => "apikeys:manage",
    /// Read the audit log.
    AuditRead => "audit:read",
    /// Tenant settings, and the tenant's roles and their permissions.
    TenantAdmin => "tenant:admin",
    /// Manage one's own account (password, second factor, API keys,
    /// sessions): every role has it, a token only when it asked for it.
    AccountManage => "account:manage",
    /// Read the valuation cases one may see (own, shared), their versions,
    /// comments, analyses, activity and exports; comment where a share allows.
    CasesRead => "cases:read",
    /// Create, change, delete and import one's cases; attach analyses.
    CasesWrite => "cases:write",
    /// Share one's cases with colleagues and revoke shares.
    CasesShare => "cases:share",
}

impl Permission {
    /// The older scope that carries this permission in tokens and keys as
    /// well: the cases routes took `portfolio:read`/`portfolio:write` before
    /// cases had permissions of their own, and a token or key asked for with
    /// those keeps its reach (the role must grant the cases permission all
    /// the same).
    pub fn also_carried_by(self) -> Option<&'static str> {
        match self {
            Permission::CasesRead => Some("portfolio:read"),
            Permission::CasesWrite | Permission::CasesShare => Some("portfolio:write"),
            _ => None,
        }
    }

    /// Parses permission scopes (a role's list): [`AuthError::UnknownPermission`]
    /// names the first that is none; duplicates are dropped, order kept.
    pub fn parse_scopes<S: AsRef<str>>(scopes: &[S]) -> Result<Vec<Permission>, AuthError> {
        let mut out = Vec::with_capacity(scopes.len());
        for s in scopes {
            let p = Permission::from_scope(s.as_ref())
                .ok_or_else(|| AuthError::UnknownPermission(s.as_ref().to_owned()))?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Ok(out)
    }
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
    "cases:read",
    "cases:write",
    "cases:share",
];

/// Who is calling, as established by a session, an access token or an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The user (none for a `client_credentials` machine client).
    pub user_id: Option<UserId>,
    /// The OAuth client, when the principal comes from a token.
    pub client_id: Option<String>,
    /// The role.
    pub role: Role,
    /// What the role grants, read from the tenant's `roles` table when the
    /// credential was authenticated (at most `auth.role_cache_secs` old).
    pub permissions: Vec<Permission>,
    /// Scopes that further restrict the role (tokens, API keys); `None` for
    /// a first-party session, which has the whole role.
    pub scopes: Option<Vec<String>>,
}

/// The single authorization check: the role must grant `permission` (its
/// permissions as they are now, see [`Principal::permissions`]), and if the
/// principal is scope-restricted, a scope must carry it.
pub fn authorize(principal: &Principal, permission: Permission) -> Result<(), AuthError> {
    if !principal.permissions.contains(&permission) {
        return Err(AuthError::Forbidden(format!(
            "role {} lacks {}",
            principal.role.as_str(),
            permission.scope()
        )));
    }
    if let Some(scopes) = &principal.scopes
        && !scopes
            .iter()
            .any(|s| s == permission.scope() || Some(s.as_str()) == permission.also_carried_by())
    {
        return Err(AuthError::Forbidden(format!(
            "scope {} not granted",
            permission.scope()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_slugs() {
        assert_eq!(Role::parse("senior_analyst"), Some(Role::SeniorAnalyst));
        assert_eq!(
            Role::parse("desk_2").map(|r| r.to_string()),
            Some("desk_2".into())
        );
        for bad in ["", "Admin", "2x", "a-b", "a b", &"x".repeat(33)] {
            assert_eq!(Role::parse(bad), None, "{bad:?}");
        }
        assert!(matches!(Role::parse("admin"), Some(Role::Admin)));
        assert!(!Role::parse("desk").is_some_and(Role::is_built_in));
    }

    #[test]
    fn every_scope_of_a_permission_is_known() {
        for p in Permission::ALL {
            assert!(KNOWN_SCOPES.contains(&p.scope()), "{p:?}");
            assert_eq!(Permission::from_scope(p.scope()), Some(*p));
        }
    }
}
