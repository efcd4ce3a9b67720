//! API keys: shown once, stored as SHA-256, identified by a public prefix,
//! with scopes (never beyond the owner's role), expiry, last-used time and
//! revocation that applies at once (every use reads the row).

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::sql_types::{Array, Bytea, Text, Uuid as SqlUuid};
use diesel::{ExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper};
use diesel_async::RunQueryDsl;
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use serde::Serialize;
use uuid::Uuid;

use rampart_tenancy::TenantPool;

use crate::audit::{AuditEvent, append};
use crate::context::{ClientContext, ct_eq, random_secret, sha256, tenant_id};
use crate::error::AuthError;
use crate::roles::{KNOWN_SCOPES, Permission, Principal, Role};
use crate::schema::api_keys;
use crate::users;

/// A key just created; `key` is shown only now.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Id.
    pub id: Uuid,
    /// Public prefix (safe to log and display).
    pub prefix: String,
    /// The whole key: `rk_{prefix}_{secret}`.
    pub key: String,
}

/// A key as listed (no secret).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKeyInfo {
    /// Id.
    pub id: Uuid,
    /// Public prefix.
    pub prefix: String,
    /// Owner.
    pub user_id: UserId,
    /// Label.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last authenticated with.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key carries permission scopes only, each granted by its owner's role
/// (checked again on every use against the owner's role at that time).
fn check_scopes_within_role(
    role: Role,
    permissions: &[Permission],
    scopes: &[String],
) -> Result<(), AuthError> {
    // Never `account:manage`: a key does not manage its owner's account.
    let granted: Vec<&str> = permissions
        .iter()
        .filter(|p| **p != Permission::AccountManage)
        .map(|p| p.scope())
        .collect();
    if let Some(beyond) = scopes.iter().find(|s| !granted.contains(&s.as_str())) {
        return Err(AuthError::Forbidden(format!(
            "scope {beyond} is beyond the role {}",
            role.as_str()
        )));
    }
    Ok(())
}

fn parse_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("rk_")?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == 12 && !secret.is_empty() && secret.len() <= 128).then_some((prefix, secret))
}

/// API keys of a tenant's users: create, authenticate, list, revoke.
#[derive(Clone)]
pub struct ApiKeyService {
    pub(crate) pool: TenantPool,
    pub(crate) roles: crate::tenant_roles::RoleService,
}

impl std::fmt::Debug for ApiKeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyService").finish_non_exhaustive()
    }
}

impl ApiKeyService {
    /// Creates an API key for a user. `scopes` must be permission scopes
    /// the user's role grants ([`AuthError::Forbidden`] otherwise); a key
    /// used later is bounded by the owner's role at that time as well.
    pub async fn create_api_key(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        name: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
        ctx: &ClientContext,
    ) -> Result<NewApiKey, AuthError> {
        if let Some(bad) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
            return Err(AuthError::InvalidScope(bad.clone()));
        }
        if scopes.is_empty() {
            return Err(AuthError::InvalidRequest(
                "an API key needs at least one scope".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if !scopes.iter().all(|s| seen.insert(s)) {
            return Err(AuthError::InvalidRequest(
                "an API key lists each scope at most once".into(),
            ));
        }
        if name.trim().is_empty()
            || name.chars().count() > 200
            || name.chars().any(char::is_control)
        {
            return Err(AuthError::InvalidRequest(
                "an API key's name is 1 to 200 characters, no control characters".into(),
            ));
        }
        let user = self
            .pool
            .with_tenant(tenant, async |conn| users::find(conn, user_id).await)
            .await?
            .ok_or_else(|| AuthError::NotFound("user".into()))?;
        let role = user.role();
        check_scopes_within_role(role, &self.roles.permissions(tenant, role).await?, scopes)?;
        let prefix: String = hex::encode(&sha256(random_secret(16).as_bytes())[..6]);
        let secret = random_secret(32);
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let id = self
            .pool
            .with_tenant(tenant, async |conn| {
                let id: Uuid = diesel::insert_into(api_keys::table)
                    .values((
                        api_keys::prefix.eq(&prefix),
                        api_keys::key_hash.eq(sha256(secret.as_bytes())),
                        api_keys::user_id.eq(user_id),
                        api_keys::name.eq(name),
                        api_keys::scopes.eq(scopes),
                        api_keys::expires_at.eq(expires_at),
                    ))
                    .returning(api_keys::id)
                    .get_result(conn)
                    .await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::new("api_key_create", "success")
                        .user(Some(user_id))
                        .client(ctx)
                        .detail(serde_json::json!({"prefix": prefix})),
                )
                .await?;
                Ok::<_, AuthError>(id)
            })
            .await?;
        Ok(NewApiKey {
            id,
            key: format!("rk_{prefix}_{secret}"),
            prefix,
        })
    }

    /// Resolves an API key to its principal; unknown, wrong, revoked and
    /// expired keys are [`AuthError::InvalidToken`].
    pub async fn authenticate_api_key(
        &self,
        tenant: &TenantSlug,
        key: &str,
    ) -> Result<Principal, AuthError> {
        let (prefix, secret) =
            parse_key(key).ok_or_else(|| AuthError::InvalidToken("malformed API key".into()))?;
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Bytea)]
            key_hash: Vec<u8>,
            #[diesel(sql_type = SqlUuid)]
            user_id: UserId,
            #[diesel(sql_type = Array<Text>)]
            scopes: Vec<String>,
            #[diesel(sql_type = Text)]
            role: String,
        }
        let row: Option<Row> = self
            .pool
            .with_tenant(tenant, async |conn| {
                // raw SQL: UPDATE ... FROM users (the key is usable only while its user is active).
                let rows: Vec<Row> = diesel::sql_query(
                    "UPDATE api_keys k SET last_used_at = now() FROM users u \
                     WHERE k.prefix = $1 AND u.id = k.user_id AND k.revoked_at IS NULL \
                       AND (k.expires_at IS NULL OR k.expires_at > now()) AND u.status = 'active' \
                     RETURNING k.key_hash, k.user_id, k.scopes, u.role",
                )
                .bind::<Text, _>(prefix)
                .load(conn)
                .await?;
                Ok::<_, AuthError>(rows.into_iter().next())
            })
            .await?;
        let row = row
            .filter(|r| ct_eq(&r.key_hash, &sha256(secret.as_bytes())))
            .ok_or_else(|| AuthError::InvalidToken("unknown, revoked or expired API key".into()))?;
        let role = Role::parse(&row.role).unwrap_or(Role::Viewer);
        Ok(Principal {
            tenant_id,
            user_id: Some(row.user_id),
            client_id: None,
            role,
            permissions: self.roles.permissions(tenant, role).await?.to_vec(),
            scopes: Some(row.scopes),
        })
    }

    /// Every API key of the tenant, newest first (for its administrators).
    pub async fn list_tenant_api_keys(
        &self,
        tenant: &TenantSlug,
    ) -> Result<Vec<ApiKeyInfo>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows = api_keys::table
                    .order(api_keys::created_at.desc())
                    .select(ApiKeyInfo::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, AuthError>(rows)
            })
            .await
    }

    /// A user's API keys.
    pub async fn list_api_keys(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
    ) -> Result<Vec<ApiKeyInfo>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows = api_keys::table
                    .filter(api_keys::user_id.eq(user_id))
                    .order(api_keys::created_at)
                    .select(ApiKeyInfo::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, AuthError>(rows)
            })
            .await
    }

    /// Revokes a key by its prefix.
    pub async fn revoke_api_key(
        &self,
        tenant: &TenantSlug,
        prefix: &str,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let n = diesel::update(
                    api_keys::table
                        .filter(api_keys::prefix.eq(prefix))
                        .filter(api_keys::revoked_at.is_null()),
                )
                .set(api_keys::revoked_at.eq(now))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Err(AuthError::NotFound("API key".into()));
                }
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::new("api_key_revoke", "success")
                        .client(ctx)
                        .detail(serde_json::json!({"prefix": prefix})),
                )
                .await?;
                Ok(())
            })
            .await
    }
}
