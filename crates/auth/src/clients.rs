//! Managing a tenant's OAuth clients after [`OAuthService::register_client`]:
//! list, show, change redirect URIs, scopes and name, rotate a confidential
//! client's secret (returned once), disable (its tokens are revoked and it
//! gets no new ones) and delete.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_tenancy::TenantSlug;
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, append};
use crate::context::{random_secret, sha256, tenant_id};
use crate::error::AuthError;
use crate::oauth::{OAuthService, check_redirect_uris, check_scopes};
use crate::revocation::{Holder, RevocationFeed, revoke_tokens};
use crate::schema::{authorization_codes, oauth_clients};

/// A client as an administrator sees it (never its secret).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = oauth_clients, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    /// Id.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// `none` (public, PKCE), `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Grant types.
    pub grant_types: Vec<String>,
    /// Scopes it may ask for.
    pub allowed_scopes: Vec<String>,
    /// Signing algorithm of its tokens.
    pub signing_alg: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A change to a client; absent fields are kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New redirect URIs (replace the old ones).
    pub redirect_uris: Option<Vec<String>>,
    /// New allowed scopes (replace the old ones).
    pub allowed_scopes: Option<Vec<String>>,
}

async fn info(conn: &mut AsyncPgConnection, client_id: &str) -> Result<ClientInfo, AuthError> {
    oauth_clients::table
        .find(client_id)
        .select(ClientInfo::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| AuthError::NotFound("client".into()))
}

/// Revokes every token of a client and drops its unused codes.
async fn revoke_client_tokens(
    conn: &mut AsyncPgConnection,
    feed: &RevocationFeed,
    client_id: &str,
) -> Result<(), AuthError> {
    revoke_tokens(conn, feed, Holder::Client(client_id)).await?;
    diesel::delete(authorization_codes::table.filter(authorization_codes::client_id.eq(client_id)))
        .execute(conn)
        .await?;
    Ok(())
}

impl OAuthService {
    /// Cached client authentications are dropped after a change that must
    /// take effect at once.
    fn forget_cached(&self) {
        self.client_cache.invalidate_all();
    }

    async fn audited<T>(
        &self,
        tenant: &TenantSlug,
        action: &str,
        client_id: &str,
        actor: &str,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let out = work(conn).await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::new(action, "success")
                        .actor(actor)
                        .detail(serde_json::json!({"client_id": client_id})),
                )
                .await?;
                Ok(out)
            })
            .await
    }

    /// Every client of the tenant, disabled ones included, by id.
    pub async fn list_clients(&self, tenant: &TenantSlug) -> Result<Vec<ClientInfo>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                Ok(oauth_clients::table
                    .order(oauth_clients::client_id)
                    .select(ClientInfo::as_select())
                    .load(conn)
                    .await?)
            })
            .await
    }

    /// One client, disabled or not.
    pub async fn client_info(
        &self,
        tenant: &TenantSlug,
        client_id: &str,
    ) -> Result<ClientInfo, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| info(conn, client_id).await)
            .await
    }

    /// Changes a client's name, redirect URIs or scopes.
    pub async fn update_client(
        &self,
        tenant: &TenantSlug,
        client_id: &str,
        update: &ClientUpdate,
        actor: &str,
    ) -> Result<ClientInfo, AuthError> {
        if let Some(uris) = &update.redirect_uris {
            check_redirect_uris(uris)?;
        }
        if let Some(scopes) = &update.allowed_scopes {
            check_scopes(scopes)?;
        }
        if let Some(name) = &update.name
            && (name.trim().is_empty() || name.chars().count() > 200)
        {
            return Err(AuthError::InvalidRequest(
                "name: 1 to 200 characters".into(),
            ));
        }
        let out = self
            .audited(tenant, "client_update", client_id, actor, async |conn| {
                let current = info(conn, client_id).await?;
                diesel::update(oauth_clients::table.find(client_id))
                    .set((
                        oauth_clients::name.eq(update
                            .name
                            .as_deref()
                            .map(str::trim)
                            .unwrap_or(&current.name)),
                        oauth_clients::redirect_uris.eq(update
                            .redirect_uris
                            .as_ref()
                            .unwrap_or(&current.redirect_uris)),
                        oauth_clients::allowed_scopes.eq(update
                            .allowed_scopes
                            .as_ref()
                            .unwrap_or(&current.allowed_scopes)),
                    ))
                    .execute(conn)
                    .await?;
                info(conn, client_id).await
            })
            .await?;
        self.forget_cached();
        Ok(out)
    }

    /// A new secret for a confidential client (returned once; the old one
    /// stops working at once). Public clients have none:
    /// [`AuthError::InvalidRequest`].
    pub async fn rotate_client_secret(
        &self,
        tenant: &TenantSlug,
        client_id: &str,
        actor: &str,
    ) -> Result<String, AuthError> {
        let secret = random_secret(32);
        self.audited(
            tenant,
            "client_secret_rotate",
            client_id,
            actor,
            async |conn| {
                let current = info(conn, client_id).await?;
                if current.auth_method == "none" {
                    return Err(AuthError::InvalidRequest(
                        "a public client has no secret".into(),
                    ));
                }
                diesel::update(oauth_clients::table.find(client_id))
                    .set(oauth_clients::secret_hash.eq(sha256(secret.as_bytes())))
                    .execute(conn)
                    .await?;
                Ok(())
            },
        )
        .await?;
        self.forget_cached();
        Ok(secret)
    }

    /// Disables a client: it gets no tokens and its tokens are revoked.
    pub async fn disable_client(
        &self,
        tenant: &TenantSlug,
        client_id: &str,
        actor: &str,
    ) -> Result<ClientInfo, AuthError> {
        let out = self
            .audited(tenant, "client_disable", client_id, actor, async |conn| {
                diesel::update(
                    oauth_clients::table
                        .find(client_id)
                        .filter(oauth_clients::disabled_at.is_null()),
                )
                .set(oauth_clients::disabled_at.eq(now))
                .execute(conn)
                .await?;
                revoke_client_tokens(conn, &self.revocations, client_id).await?;
                info(conn, client_id).await
            })
            .await?;
        self.forget_cached();
        Ok(out)
    }

    /// Deletes a client and revokes its tokens.
    pub async fn delete_client(
        &self,
        tenant: &TenantSlug,
        client_id: &str,
        actor: &str,
    ) -> Result<(), AuthError> {
        self.audited(tenant, "client_delete", client_id, actor, async |conn| {
            let n = diesel::delete(oauth_clients::table.find(client_id))
                .execute(conn)
                .await?;
            if n == 0 {
                return Err(AuthError::NotFound("client".into()));
            }
            revoke_client_tokens(conn, &self.revocations, client_id).await
        })
        .await?;
        self.forget_cached();
        Ok(())
    }
}
