//! Managing a tenant's upstream providers: create or replace, list, show,
//! change, enable or disable, delete. Each change is checked against the
//! provider (discovery or explicit endpoints, and the JWKS) before it is
//! written, is audited, and drops this replica's cached copy at once
//! (other replicas see it within [`crate::upstream::PROVIDER_CACHE_TTL`]).
//! Client secrets go to the secret store; the table keeps only whether one
//! is stored.

use diesel::dsl::now;
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_tenancy::TenantSlug;
use secrecy::ExposeSecret;

use crate::audit::{AuditEvent, append};
use crate::context::tenant_id;
use crate::error::AuthError;
use crate::schema::{external_identities, upstream_providers};
use crate::upstream::UpstreamService;
use crate::upstream_provider::{
    self as rows, UpstreamProvider, UpstreamProviderInfo, UpstreamProviderUpdate,
};

fn not_found(name: &str) -> AuthError {
    AuthError::NotFound(format!("upstream provider {name}"))
}

/// Drops the identity links of provider `name` (its subjects mean nothing
/// under another issuer, and a reused name must not inherit them).
async fn unlink_all(conn: &mut AsyncPgConnection, name: &str) -> Result<usize, AuthError> {
    crate::upstream_tokens::delete_all(conn, name).await?;
    Ok(
        diesel::delete(external_identities::table.filter(external_identities::provider.eq(name)))
            .execute(conn)
            .await?,
    )
}

/// Writes `p` as the row `name` (inserted, or replacing the current one).
async fn write_row(
    conn: &mut AsyncPgConnection,
    p: &UpstreamProvider,
    has_client_secret: bool,
    exists: bool,
) -> Result<UpstreamProviderInfo, AuthError> {
    let values = (
        upstream_providers::display_name.eq(&p.display_name),
        upstream_providers::issuer.eq(&p.issuer),
        upstream_providers::client_id.eq(&p.client_id),
        upstream_providers::has_client_secret.eq(has_client_secret),
        upstream_providers::redirect_uri.eq(&p.redirect_uri),
        upstream_providers::scopes.eq(&p.scopes),
        upstream_providers::link_verified_email.eq(p.link_verified_email),
        upstream_providers::new_user_role.eq(p.new_user_role.as_str()),
        upstream_providers::authorization_endpoint.eq(p.authorization_endpoint.as_deref()),
        upstream_providers::token_endpoint.eq(p.token_endpoint.as_deref()),
        upstream_providers::jwks_uri.eq(p.jwks_uri.as_deref()),
        upstream_providers::enabled.eq(p.enabled),
        upstream_providers::options.eq(p.options().to_json()),
    );
    if exists {
        Ok(diesel::update(upstream_providers::table.find(&p.name))
            .set((values, upstream_providers::updated_at.eq(now)))
            .returning(UpstreamProviderInfo::as_returning())
            .get_result(conn)
            .await?)
    } else {
        Ok(diesel::insert_into(upstream_providers::table)
            .values((upstream_providers::name.eq(&p.name), values))
            .returning(UpstreamProviderInfo::as_returning())
            .get_result(conn)
            .await?)
    }
}

impl UpstreamService {
    /// Runs `work` in `tenant`'s schema and appends `action` to its audit log
    /// (actor, provider, and what `work` returns as detail) in the same
    /// transaction.
    async fn audited<T>(
        &self,
        tenant: &TenantSlug,
        action: &str,
        name: &str,
        actor: &str,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<(T, serde_json::Value), AuthError>,
    ) -> Result<T, AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let out = self
            .pool
            .with_tenant(tenant, async |conn| {
                let (out, mut detail) = work(conn).await?;
                detail["provider"] = name.into();
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::new(action, "success")
                        .actor(actor)
                        .detail(detail),
                )
                .await?;
                Ok(out)
            })
            .await;
        self.upstreams.forget(tenant, name);
        out
    }

    /// Registers provider `provider.name` of `tenant`, or replaces it when
    /// `replace` (else an existing one is [`AuthError::Conflict`]). The
    /// provider is checked first (discovery or explicit endpoints, JWKS):
    /// [`AuthError::UpstreamDiscovery`] when that fails. Its client secret,
    /// if any, goes to the secret store ([`AuthError::NoSecretStore`] when
    /// there is none); without one, a stored secret is removed.
    pub async fn put_provider(
        &self,
        tenant: &TenantSlug,
        provider: UpstreamProvider,
        replace: bool,
        actor: &str,
    ) -> Result<UpstreamProviderInfo, AuthError> {
        let p = provider.checked()?;
        tenant_id(&self.pool, tenant).await?;
        let existing = self
            .pool
            .with_tenant(tenant, async |conn| {
                // New users of the provider get this role: the tenant must have it.
                if !crate::tenant_roles::role_exists(conn, p.new_user_role).await? {
                    return Err(AuthError::UnknownRole(p.new_user_role.to_string()));
                }
                rows::find(conn, &p.name).await
            })
            .await?;
        if let Some(current) = &existing {
            if !replace {
                return Err(AuthError::Conflict(format!(
                    "upstream provider {} exists",
                    p.name
                )));
            }
            // Re-applying the same declaration (a restart) changes nothing.
            if self.unchanged(tenant, current, &p).await? {
                return Ok(current.clone());
            }
        }
        self.upstreams
            .resolve(
                &p.issuer,
                p.authorization_endpoint
                    .as_deref()
                    .and_then(|a| Some((a, p.token_endpoint.as_deref()?, p.jwks_uri.as_deref()?))),
            )
            .await?;
        if let Some(secret) = &p.client_secret {
            self.secrets.put(tenant, &p.name, secret).await?;
        }
        let has_secret = p.client_secret.is_some();
        let action = if existing.is_some() {
            "idp_replace"
        } else {
            "idp_create"
        };
        let info = self
            .audited(tenant, action, &p.name, actor, async |conn| {
                let current = rows::find(conn, &p.name).await?;
                let unlinked = match &current {
                    Some(c) if c.issuer != p.issuer => unlink_all(conn, &p.name).await?,
                    _ => 0,
                };
                let info = write_row(conn, &p, has_secret, current.is_some()).await?;
                let detail = serde_json::json!({
                    "issuer": info.issuer,
                    "hasClientSecret": has_secret,
                    "enabled": info.enabled,
                    "unlinkedIdentities": unlinked,
                });
                Ok((info, detail))
            })
            .await?;
        if !has_secret {
            self.secrets.delete(tenant, &info.name).await?;
        }
        Ok(info)
    }

    /// Whether `p` says what `current` (and its stored secret) already say.
    async fn unchanged(
        &self,
        tenant: &TenantSlug,
        current: &UpstreamProviderInfo,
        p: &UpstreamProvider,
    ) -> Result<bool, AuthError> {
        let same_fields = current.display_name == p.display_name
            && current.issuer == p.issuer
            && current.client_id == p.client_id
            && current.redirect_uri == p.redirect_uri
            && current.scopes == p.scopes
            && current.link_verified_email == p.link_verified_email
            && current.new_user_role == p.new_user_role.as_str()
            && current.authorization_endpoint == p.authorization_endpoint
            && current.token_endpoint == p.token_endpoint
            && current.jwks_uri == p.jwks_uri
            && current.options == p.options()
            && current.enabled == p.enabled;
        if !same_fields {
            return Ok(false);
        }
        Ok(match (&p.client_secret, current.has_client_secret) {
            (None, has) => !has,
            (Some(_), false) => false,
            (Some(given), true) => self
                .secrets
                .get(tenant, &p.name)
                .await?
                .is_some_and(|stored| {
                    crate::context::ct_eq(
                        stored.expose_secret().as_bytes(),
                        given.expose_secret().as_bytes(),
                    )
                }),
        })
    }

    /// Every provider of `tenant`, disabled ones included, by name.
    pub async fn list_providers(
        &self,
        tenant: &TenantSlug,
    ) -> Result<Vec<UpstreamProviderInfo>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                Ok(upstream_providers::table
                    .order(upstream_providers::name)
                    .select(UpstreamProviderInfo::as_select())
                    .load(conn)
                    .await?)
            })
            .await
    }

    /// One provider, disabled or not.
    pub async fn provider_info(
        &self,
        tenant: &TenantSlug,
        name: &str,
    ) -> Result<UpstreamProviderInfo, AuthError> {
        if !rows::valid_provider_name(name) {
            return Err(not_found(name));
        }
        self.pool
            .with_tenant(tenant, async |conn| rows::find(conn, name).await)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// Changes some of a provider's fields (absent ones are kept), checking
    /// the result like [`UpstreamService::put_provider`] does.
    pub async fn update_provider(
        &self,
        tenant: &TenantSlug,
        name: &str,
        update: &UpstreamProviderUpdate,
        actor: &str,
    ) -> Result<UpstreamProviderInfo, AuthError> {
        if update.remove_client_secret && update.client_secret.is_some() {
            return Err(AuthError::InvalidRequest(
                "clientSecret and removeClientSecret together".into(),
            ));
        }
        let current = self.provider_info(tenant, name).await?;
        let p = UpstreamProvider::updated(&current, update).checked()?;
        let needs_check = p.issuer != current.issuer
            || p.authorization_endpoint != current.authorization_endpoint
            || p.token_endpoint != current.token_endpoint
            || p.jwks_uri != current.jwks_uri;
        if needs_check {
            self.upstreams
                .resolve(
                    &p.issuer,
                    p.authorization_endpoint.as_deref().and_then(|a| {
                        Some((a, p.token_endpoint.as_deref()?, p.jwks_uri.as_deref()?))
                    }),
                )
                .await?;
        }
        if let Some(secret) = &p.client_secret {
            self.secrets.put(tenant, name, secret).await?;
        }
        let has_secret = match (&p.client_secret, update.remove_client_secret) {
            (Some(_), _) => true,
            (None, true) => false,
            (None, false) => current.has_client_secret,
        };
        let info = self
            .audited(tenant, "idp_update", name, actor, async |conn| {
                let now_row = rows::find(conn, name)
                    .await?
                    .ok_or_else(|| not_found(name))?;
                let unlinked = if now_row.issuer != p.issuer {
                    unlink_all(conn, name).await?
                } else {
                    0
                };
                let info = write_row(conn, &p, has_secret, true).await?;
                let detail = serde_json::json!({
                    "issuer": info.issuer,
                    "secretChanged": p.client_secret.is_some() || update.remove_client_secret,
                    "enabled": info.enabled,
                    "unlinkedIdentities": unlinked,
                });
                Ok((info, detail))
            })
            .await?;
        if update.remove_client_secret {
            self.secrets.delete(tenant, name).await?;
        }
        Ok(info)
    }

    /// Enables or disables a provider: a disabled one is not offered and
    /// its logins (started or new) are refused.
    pub async fn set_provider_enabled(
        &self,
        tenant: &TenantSlug,
        name: &str,
        enabled: bool,
        actor: &str,
    ) -> Result<UpstreamProviderInfo, AuthError> {
        if !rows::valid_provider_name(name) {
            return Err(not_found(name));
        }
        let action = if enabled { "idp_enable" } else { "idp_disable" };
        self.audited(tenant, action, name, actor, async |conn| {
            let info: UpstreamProviderInfo = diesel::update(upstream_providers::table.find(name))
                .set((
                    upstream_providers::enabled.eq(enabled),
                    upstream_providers::updated_at.eq(now),
                ))
                .returning(UpstreamProviderInfo::as_returning())
                .get_result(conn)
                .await
                .map_err(|e| match e {
                    diesel::result::Error::NotFound => not_found(name),
                    e => e.into(),
                })?;
            Ok((info, serde_json::json!({})))
        })
        .await
    }

    /// Deletes a provider, its identity links (the local users stay) and
    /// its client secret.
    pub async fn delete_provider(
        &self,
        tenant: &TenantSlug,
        name: &str,
        actor: &str,
    ) -> Result<(), AuthError> {
        if !rows::valid_provider_name(name) {
            return Err(not_found(name));
        }
        self.audited(tenant, "idp_delete", name, actor, async |conn| {
            let n = diesel::delete(upstream_providers::table.find(name))
                .execute(conn)
                .await?;
            if n == 0 {
                return Err(not_found(name));
            }
            let unlinked = unlink_all(conn, name).await?;
            Ok(((), serde_json::json!({"unlinkedIdentities": unlinked})))
        })
        .await?;
        self.secrets.delete(tenant, name).await
    }
}
