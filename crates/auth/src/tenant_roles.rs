//! A tenant's roles as data: the `roles` table (name, description,
//! permission scopes). [`RoleService::permissions`] is what the one
//! authorization check reads for every credential, cached per tenant and
//! role. A change is announced on the tenancy change feed
//! ([`rampart_tenancy::ChangeFeed`], topic `roles`) in its transaction:
//! this process drops its entry at once, every other replica sees the
//! change when it next reads the feed, at most `auth.role_cache_secs`
//! later (one query for all tenants, not one per tenant and role).
//! Tenant admins list, create, change and delete roles here; every change is
//! audited (`role_create`, `role_update`, `role_delete`) with before and
//! after.

use rampart_tenancy::TenantSlug;
use std::sync::Arc;
use std::time::Duration;

use diesel::dsl::exists;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, PgArrayExpressionMethods, QueryDsl,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_tenancy::{ChangeFeed, TenantPool};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, append};
use crate::context::{ClientContext, tenant_id};
use crate::error::AuthError;
use crate::roles::{Permission, Role};
use crate::schema::{oauth_clients, roles, upstream_providers, users};

/// The permissions an admin-capable role must keep (unless another active
/// user keeps them through their role): without them nobody could manage
/// users or roles any more.
const ADMIN_CAPABLE: [Permission; 2] = [Permission::TenantAdmin, Permission::UsersManage];

/// Most characters in a role's description.
const DESCRIPTION_MAX: usize = 500;

/// A role as a tenant admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleInfo {
    /// Its name.
    pub name: Role,
    /// What it is for.
    pub description: String,
    /// Its permission scopes, in the order of [`Permission::ALL`].
    pub permissions: Vec<String>,
    /// One of [`Role::BUILT_IN`] (cannot be deleted).
    pub built_in: bool,
    /// Users who have it.
    pub users: i64,
}

/// A role's permissions and description, to create or change it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// Permission scopes (`portfolio:read`, `cases:share`, ...); an unknown
    /// one is [`AuthError::UnknownPermission`].
    pub permissions: Vec<String>,
    /// What the role is for (`None` keeps it; empty when creating).
    pub description: Option<String>,
}

impl RoleChange {
    /// The parsed permissions (sorted as in [`Permission::ALL`]) and the
    /// trimmed description.
    fn validated(&self) -> Result<(Vec<Permission>, Option<String>), AuthError> {
        let parsed = Permission::parse_scopes(&self.permissions)?;
        let ordered = Permission::ALL
            .iter()
            .copied()
            .filter(|p| parsed.contains(p))
            .collect();
        let description = self.description.as_deref().map(str::trim);
        if description.is_some_and(|d| d.chars().count() > DESCRIPTION_MAX) {
            return Err(AuthError::InvalidRequest(format!(
                "description: at most {DESCRIPTION_MAX} characters"
            )));
        }
        Ok((ordered, description.map(str::to_owned)))
    }
}

fn scopes(permissions: &[Permission]) -> Vec<String> {
    permissions.iter().map(|p| p.scope().to_owned()).collect()
}

/// The permissions of stored scopes; a scope this build does not know (a
/// newer release wrote it, or an operator) grants nothing.
fn stored_permissions(scopes: &[String]) -> Vec<Permission> {
    scopes
        .iter()
        .filter_map(|s| {
            let p = Permission::from_scope(s);
            if p.is_none() {
                tracing::warn!(scope = %s, "a role names an unknown permission; ignored");
            }
            p
        })
        .collect()
}

/// Key: (tenant slug, role, the tenant's `roles` generation).
type RoleCache = moka::sync::Cache<(String, Role, u64), Arc<[Permission]>>;

/// The change-feed topic of a tenant's `roles` rows.
const ROLES_TOPIC: &str = "roles";
/// How long an entry lives when nothing changes (entries of an older
/// generation are unreachable, and go by capacity or this lifetime).
const ENTRY_LIFETIME: Duration = Duration::from_secs(600);

/// The tenant's roles: what each may do (for every request) and their
/// administration.
#[derive(Clone)]
pub struct RoleService {
    pool: TenantPool,
    /// `None` when `role_cache_secs` is 0: read on every request.
    cache: Option<(RoleCache, Arc<ChangeFeed>)>,
}

impl std::fmt::Debug for RoleService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleService").finish_non_exhaustive()
    }
}

impl RoleService {
    /// The service over `pool`, caching a role's permissions until a change
    /// is announced, seen by other replicas within `cache_secs` (`0`: no
    /// cache).
    pub fn new(pool: TenantPool, cache_secs: u64) -> Self {
        let cache = (cache_secs > 0).then(|| {
            // One entry per (tenant, role): 10,000 tenants × their roles in use.
            let entries = moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ENTRY_LIFETIME)
                .build();
            let feed = ChangeFeed::new(pool.clone(), Duration::from_secs(cache_secs));
            (entries, Arc::new(feed))
        });
        Self { pool, cache }
    }

    /// What `role` may do in `tenant` now (at most `role_cache_secs` old);
    /// nothing for a role the tenant does not have.
    pub async fn permissions(
        &self,
        tenant: &TenantSlug,
        role: Role,
    ) -> Result<Arc<[Permission]>, AuthError> {
        let key = match &self.cache {
            Some((entries, feed)) => {
                let id = tenant_id(&self.pool, tenant).await?;
                let key = (
                    tenant.to_string(),
                    role,
                    feed.generation(id, ROLES_TOPIC).await?,
                );
                if let Some(hit) = entries.get(&key) {
                    return Ok(hit);
                }
                Some(key)
            }
            None => None,
        };
        let stored: Option<Vec<String>> = self
            .pool
            .with_tenant(tenant, async |conn| {
                Ok::<_, AuthError>(
                    roles::table
                        .find(role.as_str())
                        .select(roles::permissions)
                        .first(conn)
                        .await
                        .optional()?,
                )
            })
            .await?;
        let permissions: Arc<[Permission]> = stored
            .as_deref()
            .map(stored_permissions)
            .unwrap_or_default()
            .into();
        if let (Some((entries, _)), Some(key)) = (&self.cache, key) {
            entries.insert(key, permissions.clone());
        }
        Ok(permissions)
    }

    /// Forget every cached role and read the change feed on the next
    /// request: call after changing `roles` rows outside this service.
    pub fn roles_changed_elsewhere(&self) {
        if let Some((entries, feed)) = &self.cache {
            entries.invalidate_all();
            feed.stale();
        }
    }

    /// [`AuthError::UnknownRole`] unless the tenant has `role`.
    pub async fn require_role(&self, tenant: &TenantSlug, role: Role) -> Result<(), AuthError> {
        let found = self
            .pool
            .with_tenant(tenant, async |conn| role_exists(conn, role).await)
            .await?;
        if found {
            Ok(())
        } else {
            Err(AuthError::UnknownRole(role.to_string()))
        }
    }

    /// Every role of the tenant by name, with its permissions and how many
    /// users have it.
    pub async fn list(&self, tenant: &TenantSlug) -> Result<Vec<RoleInfo>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows: Vec<(String, String, Vec<String>)> = roles::table
                    .select((roles::name, roles::description, roles::permissions))
                    .order(roles::name)
                    .load(conn)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for (name, description, permissions) in rows {
                    let users = users::table
                        .filter(users::role.eq(&name))
                        .count()
                        .get_result(conn)
                        .await?;
                    out.push(info(name, description, &permissions, users));
                }
                Ok::<_, AuthError>(out)
            })
            .await
    }

    /// One role; [`AuthError::NotFound`] if the tenant has none of that name.
    pub async fn get(&self, tenant: &TenantSlug, role: Role) -> Result<RoleInfo, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| load(conn, role).await)
            .await
    }

    /// Creates a role of the tenant's own ([`AuthError::Conflict`] if the
    /// name is taken).
    pub async fn create(
        &self,
        tenant: &TenantSlug,
        role: Role,
        change: &RoleChange,
        actor: &str,
        ctx: &ClientContext,
    ) -> Result<RoleInfo, AuthError> {
        let (permissions, description) = change.validated()?;
        let work = async |conn: &mut AsyncPgConnection| {
            let n = diesel::insert_into(roles::table)
                .values((
                    roles::name.eq(role.as_str()),
                    roles::description.eq(description.unwrap_or_default()),
                    roles::permissions.eq(scopes(&permissions)),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if n == 0 {
                return Err(AuthError::Conflict(format!("the role {role} exists")));
            }
            Ok((None, load(conn, role).await?))
        };
        self.changing(tenant, role, "role_create", actor, ctx, work)
            .await
    }

    /// Replaces a role's permissions (and description, if given). Refused
    /// with [`AuthError::RoleLockout`] when it takes `tenant:admin` or
    /// `users:manage` away and no active user would keep both.
    pub async fn update(
        &self,
        tenant: &TenantSlug,
        role: Role,
        change: &RoleChange,
        actor: &str,
        ctx: &ClientContext,
    ) -> Result<RoleInfo, AuthError> {
        let (permissions, description) = change.validated()?;
        let work = async |conn: &mut AsyncPgConnection| {
            // Role changes of a tenant one at a time, so two changes cannot
            // each rely on the role the other takes rights from.
            let _: Vec<String> = roles::table
                .select(roles::name)
                .for_update()
                .load(conn)
                .await?;
            let before = load(conn, role).await?;
            // A `None` description leaves the column as it is.
            diesel::update(roles::table.find(role.as_str()))
                .set(&RoleColumns {
                    permissions: scopes(&permissions),
                    description: description.as_deref(),
                })
                .execute(conn)
                .await?;
            let loses_admin = ADMIN_CAPABLE.iter().any(|p| {
                before.permissions.iter().any(|s| s == p.scope()) && !permissions.contains(p)
            });
            if loses_admin && !admin_remains(conn).await? {
                return Err(AuthError::RoleLockout);
            }
            Ok((Some(before), load(conn, role).await?))
        };
        self.changing(tenant, role, "role_update", actor, ctx, work)
            .await
    }

    /// Deletes a role of the tenant's own: never a built-in one
    /// ([`AuthError::RoleBuiltIn`]) nor one still given to a user, an OAuth
    /// client or an upstream provider's new users ([`AuthError::RoleInUse`]).
    pub async fn delete(
        &self,
        tenant: &TenantSlug,
        role: Role,
        actor: &str,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        if role.is_built_in() {
            return Err(AuthError::RoleBuiltIn(role.to_string()));
        }
        let work = async |conn: &mut AsyncPgConnection| {
            let before = load(conn, role).await?;
            let name = role.as_str();
            let in_use: bool = diesel::select(
                exists(users::table.filter(users::role.eq(name)))
                    .or(exists(
                        oauth_clients::table.filter(oauth_clients::service_role.eq(name)),
                    ))
                    .or(exists(
                        upstream_providers::table
                            .filter(upstream_providers::new_user_role.eq(name)),
                    )),
            )
            .get_result(conn)
            .await?;
            if in_use {
                return Err(AuthError::RoleInUse(role.to_string()));
            }
            diesel::delete(roles::table.find(name))
                .execute(conn)
                .await?;
            Ok((Some(before), ()))
        };
        self.changing(tenant, role, "role_delete", actor, ctx, work)
            .await
    }

    /// Runs one change of `role` in a transaction of the tenant, audits it
    /// as `action` with the role before and after (what `work` answers),
    /// and drops the role's cache entry once committed; the role after.
    async fn changing<A: Remaining>(
        &self,
        tenant: &TenantSlug,
        role: Role,
        action: &str,
        actor: &str,
        ctx: &ClientContext,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<(Option<RoleInfo>, A), AuthError>,
    ) -> Result<A, AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let after = self
            .pool
            .with_tenant(tenant, async |conn| {
                let (before, after) = work(conn).await?;
                let event = audited(action, actor, ctx, role, before.as_ref(), after.role());
                append(conn, tenant_id, &event).await?;
                ChangeFeed::announce(conn, ROLES_TOPIC).await?;
                Ok::<_, AuthError>(after)
            })
            .await?;
        self.forget();
        Ok(after)
    }

    /// Once the change committed: this process reads the feed on its next
    /// request (the generation moves, so an entry stored by a read that
    /// overlapped the change is never served).
    fn forget(&self) {
        if let Some((_, feed)) = &self.cache {
            feed.stale();
        }
    }
}

/// Whether the tenant (of `conn`) has `role`.
pub(crate) async fn role_exists(
    conn: &mut AsyncPgConnection,
    role: Role,
) -> Result<bool, AuthError> {
    Ok(diesel::select(exists(roles::table.find(role.as_str())))
        .get_result(conn)
        .await?)
}

fn info(name: String, description: String, stored: &[String], users: i64) -> RoleInfo {
    let role = Role::parse(&name);
    RoleInfo {
        built_in: role.is_some_and(Role::is_built_in),
        // The table's check constraint keeps every name a slug.
        name: role.unwrap_or(Role::Viewer),
        description,
        permissions: scopes(&stored_permissions(stored)),
        users,
    }
}

/// What a change leaves of the role: the role after a create or an
/// update, nothing after a delete.
trait Remaining {
    fn role(&self) -> Option<&RoleInfo>;
}

impl Remaining for RoleInfo {
    fn role(&self) -> Option<&RoleInfo> {
        Some(self)
    }
}

impl Remaining for () {
    fn role(&self) -> Option<&RoleInfo> {
        None
    }
}

async fn load(conn: &mut AsyncPgConnection, role: Role) -> Result<RoleInfo, AuthError> {
    let row: Option<(String, String, Vec<String>)> = roles::table
        .find(role.as_str())
        .select((roles::name, roles::description, roles::permissions))
        .first(conn)
        .await
        .optional()?;
    let (name, description, permissions) =
        row.ok_or_else(|| AuthError::NotFound(format!("role {role}")))?;
    let users = users::table
        .filter(users::role.eq(role.as_str()))
        .count()
        .get_result(conn)
        .await?;
    Ok(info(name, description, &permissions, users))
}

/// Whether an active user has a role with both [`ADMIN_CAPABLE`] permissions.
async fn admin_remains(conn: &mut AsyncPgConnection) -> Result<bool, AuthError> {
    let needed = scopes(&ADMIN_CAPABLE);
    Ok(diesel::select(exists(
        users::table
            .inner_join(roles::table)
            .filter(users::status.eq("active"))
            .filter(roles::permissions.contains(needed)),
    ))
    .get_result(conn)
    .await?)
}

fn audited(
    action: &str,
    actor: &str,
    ctx: &ClientContext,
    role: Role,
    before: Option<&RoleInfo>,
    after: Option<&RoleInfo>,
) -> AuditEvent {
    let view = |r: Option<&RoleInfo>| {
        r.map(|r| serde_json::json!({"description": r.description, "permissions": r.permissions}))
    };
    AuditEvent::new(action, "success")
        .actor(actor)
        .client(ctx)
        .detail(serde_json::json!({
            "role": role.as_str(),
            "before": view(before),
            "after": view(after),
        }))
}

/// What [`RoleService::update`] writes.
#[derive(diesel::AsChangeset)]
#[diesel(table_name = roles)]
struct RoleColumns<'a> {
    permissions: Vec<String>,
    description: Option<&'a str>,
}
