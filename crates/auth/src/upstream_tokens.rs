//! A user's tokens at an upstream provider ("connections"): when a login
//! through a provider returns a refresh token, the access and refresh
//! tokens are sealed together by an [`UpstreamTokenSealer`] (Vault transit
//! in the reference server, bound to tenant, provider and user) and kept in
//! the tenant's `upstream_tokens` table, never in clear.
//! [`UpstreamService::upstream_access_token`] hands out a valid access
//! token, refreshing it with the refresh token when it has expired (and
//! keeping the rotated refresh token the provider returns);
//! [`UpstreamService::disconnect`] deletes them (revoking the refresh token
//! at the provider first, best effort, when it has a revocation endpoint);
//! [`UpstreamService::connections`] lists them without any secret.
//!
//! Tokens never reach a log line, an error message or an answer: errors
//! name the provider only.

use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::{ExpressionMethods, OptionalExtension, PgJsonbExpressionMethods, QueryDsl};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use oauth2::{RefreshToken, RequestTokenError};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, append};
use crate::context::tenant_id;
use crate::error::AuthError;
use crate::schema::{upstream_providers, upstream_tokens};
use crate::upstream::UpstreamService;
use crate::upstream_provider::UpstreamPreset;
use crate::upstream_secrets::IssuedTokens;
pub use crate::upstream_secrets::UpstreamTokenSealer;

/// An access token used within this margin of its expiry is refreshed first.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A connected provider as its user sees it: never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamConnection {
    /// The provider's name.
    pub provider: String,
    /// Its display name.
    pub display_name: String,
    /// Its preset (`tradestation`), if any.
    pub preset: Option<String>,
    /// The scopes the provider granted.
    pub scopes: Vec<String>,
    /// When the current access token expires (it is refreshed on use).
    pub access_expires_at: Option<DateTime<Utc>>,
    /// First connected.
    pub connected_at: DateTime<Utc>,
    /// Last stored (login or refresh).
    pub updated_at: DateTime<Utc>,
}

/// What is sealed: both tokens together. `Debug` shows neither.
#[derive(Serialize, Deserialize)]
struct TokenPair {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl Drop for TokenPair {
    fn drop(&mut self) {
        use secrecy::zeroize::Zeroize;
        self.access_token.zeroize();
        if let Some(r) = &mut self.refresh_token {
            r.zeroize();
        }
    }
}

/// The context that binds sealed tokens to one user of one provider of one
/// tenant.
fn seal_context(tenant: &str, provider: &str, user: UserId) -> Vec<u8> {
    format!("rampart/upstream-tokens/v1/{tenant}/{provider}/{user}").into_bytes()
}

fn not_connected(provider: &str) -> AuthError {
    AuthError::UpstreamNotConnected(format!(
        "no connection to {provider}: sign in through it first"
    ))
}

/// Deletes every user's tokens of provider `name` (its issuer changed or it
/// is deleted).
pub(crate) async fn delete_all(conn: &mut AsyncPgConnection, name: &str) -> Result<(), AuthError> {
    diesel::delete(upstream_tokens::table.filter(upstream_tokens::provider.eq(name)))
        .execute(conn)
        .await?;
    Ok(())
}

/// provider, display name, options, scopes, expiry, created, updated.
type ConnectionRow = (
    String,
    String,
    crate::upstream_provider::ProviderOptions,
    Vec<String>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
);

type TokenRow = (String, Option<DateTime<Utc>>, Vec<String>);

/// What a locked look at a user's tokens found.
enum Fresh {
    Valid(SecretString),
    Refreshed(SecretString),
    /// The provider refused the refresh token: the row was deleted.
    Revoked,
}

impl UpstreamService {
    fn token_sealer(&self) -> Result<&Arc<dyn UpstreamTokenSealer>, AuthError> {
        self.token_sealer
            .as_ref()
            .ok_or_else(|| AuthError::Crypto("no sealer for upstream tokens".into()))
    }

    async fn seal_pair(
        &self,
        context: &[u8],
        access: &str,
        refresh: Option<&str>,
    ) -> Result<String, AuthError> {
        let pair = TokenPair {
            access_token: access.to_owned(),
            refresh_token: refresh.map(str::to_owned),
        };
        let plain = secrecy::zeroize::Zeroizing::new(
            serde_json::to_vec(&pair).map_err(|e| AuthError::Crypto(e.to_string()))?,
        );
        self.token_sealer()?.seal(&plain, context).await
    }

    async fn open_pair(&self, context: &[u8], sealed: &str) -> Result<TokenPair, AuthError> {
        let plain = self.token_sealer()?.open(sealed, context).await?;
        serde_json::from_str(plain.expose_secret())
            .map_err(|_| AuthError::Crypto("sealed upstream tokens are malformed".into()))
    }

    /// Keeps the tokens of a finished login when the provider returned a
    /// refresh token and a sealer is configured (else nothing is kept).
    pub(crate) async fn keep_login_tokens(
        &self,
        tenant: &TenantSlug,
        provider: &str,
        user: UserId,
        tokens: &IssuedTokens,
    ) -> Result<bool, AuthError> {
        if tokens.refresh_token.is_none() || self.token_sealer.is_none() {
            return Ok(false);
        }
        let context = seal_context(tenant, provider, user);
        let sealed = self
            .seal_pair(
                &context,
                &tokens.access_token,
                tokens.refresh_token.as_deref(),
            )
            .await?;
        let expires = expiry(tokens.expires_in);
        self.pool
            .with_tenant(tenant, async |conn| {
                diesel::insert_into(upstream_tokens::table)
                    .values((
                        upstream_tokens::user_id.eq(user),
                        upstream_tokens::provider.eq(provider),
                        upstream_tokens::sealed.eq(&sealed),
                        upstream_tokens::access_expires_at.eq(expires),
                        upstream_tokens::scopes.eq(&tokens.scopes),
                    ))
                    .on_conflict((upstream_tokens::user_id, upstream_tokens::provider))
                    .do_update()
                    .set((
                        upstream_tokens::sealed.eq(&sealed),
                        upstream_tokens::access_expires_at.eq(expires),
                        upstream_tokens::scopes.eq(&tokens.scopes),
                        upstream_tokens::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<_, AuthError>(())
            })
            .await?;
        Ok(true)
    }

    /// The providers `user` of `tenant` is connected to, by name.
    pub async fn connections(
        &self,
        tenant: &TenantSlug,
        user: UserId,
    ) -> Result<Vec<UpstreamConnection>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows: Vec<ConnectionRow> = upstream_tokens::table
                    .inner_join(upstream_providers::table)
                    .filter(upstream_tokens::user_id.eq(user))
                    .order(upstream_tokens::provider)
                    .select((
                        upstream_tokens::provider,
                        upstream_providers::display_name,
                        upstream_providers::options,
                        upstream_tokens::scopes,
                        upstream_tokens::access_expires_at,
                        upstream_tokens::created_at,
                        upstream_tokens::updated_at,
                    ))
                    .load(conn)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(
                            provider,
                            display_name,
                            preset,
                            scopes,
                            access_expires_at,
                            connected_at,
                            updated_at,
                        )| UpstreamConnection {
                            provider,
                            display_name,
                            preset: preset.preset,
                            scopes,
                            access_expires_at,
                            connected_at,
                            updated_at,
                        },
                    )
                    .collect())
            })
            .await
    }

    /// The name of the provider made from `preset` that `user` is connected
    /// to ([`AuthError::UpstreamNotConnected`] when none).
    pub async fn connected_provider(
        &self,
        tenant: &TenantSlug,
        user: UserId,
        preset: UpstreamPreset,
    ) -> Result<String, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                Ok::<_, AuthError>(
                    upstream_tokens::table
                        .inner_join(upstream_providers::table)
                        .filter(upstream_tokens::user_id.eq(user))
                        .filter(
                            upstream_providers::options
                                .contains(serde_json::json!({"preset": preset.as_str()})),
                        )
                        .filter(upstream_providers::enabled.eq(true))
                        .order(upstream_tokens::updated_at.desc())
                        .select(upstream_tokens::provider)
                        .first::<String>(conn)
                        .await
                        .optional()?,
                )
            })
            .await?
            .ok_or_else(|| not_connected(preset.as_str()))
    }

    /// A valid access token of `user` at `provider`: the stored one while it
    /// is valid for more than [`REFRESH_MARGIN`], else a new one from the
    /// provider's token endpoint with the refresh token (a rotated refresh
    /// token is kept). Concurrent callers of one user wait for each other
    /// (the row is locked), so a rotating refresh token is used once.
    /// [`AuthError::UpstreamNotConnected`] when there are no tokens, or when
    /// the provider refuses the refresh token (the tokens are then deleted:
    /// the user signs in through the provider again).
    pub async fn upstream_access_token(
        &self,
        tenant: &TenantSlug,
        user: UserId,
        provider: &str,
    ) -> Result<SecretString, AuthError> {
        let reg = self
            .upstreams
            .provider(&self.pool, &*self.secrets, tenant, provider)
            .await
            .map_err(|e| match e {
                AuthError::NotFound(_) => not_connected(provider),
                e => e,
            })?;
        let context = seal_context(tenant, provider, user);
        let fresh = self
            .pool
            .with_tenant(tenant, async |conn| {
                let row: Option<TokenRow> = upstream_tokens::table
                    .find((user, provider))
                    .select((
                        upstream_tokens::sealed,
                        upstream_tokens::access_expires_at,
                        upstream_tokens::scopes,
                    ))
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let Some((sealed, expires, old_scopes)) = row else {
                    return Err(not_connected(provider));
                };
                let pair = self.open_pair(&context, &sealed).await?;
                let margin = chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default();
                let valid = expires.is_some_and(|at| at > Utc::now() + margin);
                let Some(refresh) = pair.refresh_token.as_deref().filter(|_| !valid) else {
                    return Ok(Fresh::Valid(SecretString::from(pair.access_token.clone())));
                };
                let issued = match self.refresh(&reg, refresh).await {
                    Ok(issued) => issued,
                    Err(RefreshFailure::Refused) => {
                        diesel::delete(upstream_tokens::table.find((user, provider)))
                            .execute(conn)
                            .await?;
                        return Ok(Fresh::Revoked);
                    }
                    Err(RefreshFailure::Failed(e)) => return Err(e),
                };
                let refresh = issued.refresh_token.as_deref().unwrap_or(refresh);
                let sealed = self
                    .seal_pair(&context, &issued.access_token, Some(refresh))
                    .await?;
                // The granted scopes stay unless the provider names new ones.
                let scopes = if issued.scopes.is_empty() {
                    old_scopes
                } else {
                    issued.scopes.clone()
                };
                diesel::update(upstream_tokens::table.find((user, provider)))
                    .set((
                        upstream_tokens::sealed.eq(&sealed),
                        upstream_tokens::access_expires_at.eq(expiry(issued.expires_in)),
                        upstream_tokens::scopes.eq(&scopes),
                        upstream_tokens::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
                Ok(Fresh::Refreshed(SecretString::from(
                    issued.access_token.clone(),
                )))
            })
            .await?;
        match fresh {
            Fresh::Valid(t) => Ok(t),
            Fresh::Refreshed(t) => {
                tracing::debug!(%tenant, provider, %user, "upstream access token refreshed");
                Ok(t)
            }
            Fresh::Revoked => {
                tracing::info!(%tenant, provider, %user, "upstream refresh token refused; disconnected");
                Err(not_connected(provider))
            }
        }
    }

    /// Disconnects `user` from `provider`: deletes the stored tokens
    /// ([`AuthError::NotFound`] when there are none) and, best effort,
    /// revokes the refresh token at the provider's revocation endpoint.
    /// Audited as `upstream_disconnect`.
    pub async fn disconnect(
        &self,
        tenant: &TenantSlug,
        user: UserId,
        provider: &str,
    ) -> Result<(), AuthError> {
        let tenant_uuid = tenant_id(&self.pool, tenant).await?;
        let sealed: Option<String> = self
            .pool
            .with_tenant(tenant, async |conn| {
                let sealed: Option<String> =
                    diesel::delete(upstream_tokens::table.find((user, provider)))
                        .returning(upstream_tokens::sealed)
                        .get_result(conn)
                        .await
                        .optional()?;
                if sealed.is_some() {
                    append(
                        conn,
                        tenant_uuid,
                        &AuditEvent::new("upstream_disconnect", "success")
                            .user(Some(user))
                            .detail(serde_json::json!({"provider": provider})),
                    )
                    .await?;
                }
                Ok::<_, AuthError>(sealed)
            })
            .await?;
        let sealed =
            sealed.ok_or_else(|| AuthError::NotFound(format!("connection to {provider}")))?;
        // Best effort: the tokens are gone from here whatever the provider says.
        if let Err(e) = self.revoke_upstream(tenant, user, provider, &sealed).await {
            tracing::warn!(%tenant, provider, error = %e, "upstream token revocation failed");
        }
        Ok(())
    }

    async fn revoke_upstream(
        &self,
        tenant: &TenantSlug,
        user: UserId,
        provider: &str,
        sealed: &str,
    ) -> Result<(), AuthError> {
        let reg = self
            .upstreams
            .provider(&self.pool, &*self.secrets, tenant, provider)
            .await?;
        let Some(endpoint) = reg.provider.options.revocation_endpoint.clone() else {
            return Ok(());
        };
        let pair = self
            .open_pair(&seal_context(tenant, provider, user), sealed)
            .await?;
        let (token, hint) = match &pair.refresh_token {
            Some(r) => (r.as_str(), "refresh_token"),
            None => (pair.access_token.as_str(), "access_token"),
        };
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", token)
            .append_pair("token_type_hint", hint)
            .append_pair("client_id", &reg.provider.client_id);
        if let Some(secret) = &reg.client_secret {
            form.append_pair("client_secret", secret.expose_secret());
        }
        let body = secrecy::zeroize::Zeroizing::new(form.finish());
        let response = self
            .upstreams
            .http()?
            .post(&endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| AuthError::Upstream(format!("revocation: {}", e.without_url())))?;
        if !response.status().is_success() {
            return Err(AuthError::Upstream(format!(
                "revocation: HTTP {}",
                response.status()
            )));
        }
        Ok(())
    }

    /// New tokens from the provider's token endpoint for `refresh`.
    async fn refresh(
        &self,
        reg: &crate::upstream::Registered,
        refresh: &str,
    ) -> Result<IssuedTokens, RefreshFailure> {
        let http = self.upstreams.http().map_err(RefreshFailure::Failed)?;
        let http_client = |request| crate::upstream::send(http, request);
        let response = crate::upstream::oidc_client(reg)
            .map_err(RefreshFailure::Failed)?
            .exchange_refresh_token(&RefreshToken::new(refresh.to_owned()))
            .request_async(&http_client)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(_) => RefreshFailure::Refused,
                other => RefreshFailure::Failed(AuthError::Upstream(format!(
                    "refresh at {}: {}",
                    reg.provider.name,
                    token_error_kind(&other)
                ))),
            })?;
        Ok(IssuedTokens::from_response(&response))
    }
}

enum RefreshFailure {
    /// The provider answered with an OAuth error (`invalid_grant`…).
    Refused,
    Failed(AuthError),
}

/// What kind of failure a token request had, without any of its content.
fn token_error_kind<E, T>(e: &RequestTokenError<E, T>) -> &'static str
where
    E: std::error::Error + 'static,
    T: oauth2::ErrorResponse + 'static,
{
    match e {
        RequestTokenError::ServerResponse(_) => "refused",
        RequestTokenError::Request(_) => "request failed",
        RequestTokenError::Parse(_, _) => "unreadable answer",
        RequestTokenError::Other(_) => "failed",
    }
}

fn expiry(expires_in: Option<Duration>) -> Option<DateTime<Utc>> {
    expires_in
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| Utc::now() + d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_bind_tenant_provider_and_user() {
        let u = UserId::from(uuid::Uuid::nil());
        assert_ne!(seal_context("a", "ts", u), seal_context("b", "ts", u));
        assert_ne!(seal_context("a", "ts", u), seal_context("a", "ts2", u));
        assert_ne!(
            seal_context("a", "ts", u),
            seal_context("a", "ts", UserId::from(uuid::Uuid::max()))
        );
    }
}
