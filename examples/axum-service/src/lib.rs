//! # rampart-example-axum
//!
//! A small [axum] service that embeds `rampart-tenancy` and `rampart-auth`:
//! `GET /t/{tenant}/users` verifies a bearer access token for the tenant in
//! the path and answers with that tenant's users, read with diesel's DSL in
//! the tenant's own schema. Nothing here depends on actix-web; the libraries
//! are plain async Rust.
//!
//! The authenticated caller is an extractor, [`TenantCaller`]: a handler
//! that takes one cannot run for a request without a valid token for the
//! tenant in its path.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rampart_auth::{
    AccessTokenRequest, AuthConfig, AuthError, KeyEncryptionKey, KeyRing, MemoryKeyStore,
    RotationPolicy, SigningAlg, TokenService,
};
use rampart_tenancy::{TenancyError, Tenant, TenantPool};
use serde::Serialize;
use uuid::Uuid;

/// The tenant template's `users` table, as far as this service reads it.
/// Unqualified: `with_tenant` routes it to the tenant's schema.
mod schema {
    diesel::table! {
        users (id) {
            id -> Uuid,
            email -> Text,
            display_name -> Text,
            role -> Text,
        }
    }
}
use schema::users;

/// One user of a tenant, as `GET /t/{tenant}/users` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserSummary {
    /// User id.
    pub id: Uuid,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: String,
}

/// What the handlers share: the tenant pool and the token service.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    pool: TenantPool,
    tokens: TokenService,
    auth: AuthConfig,
}

impl AppState {
    /// A state over `pool` that verifies tokens with `tokens` for the issuers
    /// and audience of `auth`.
    pub fn new(pool: TenantPool, tokens: TokenService, auth: AuthConfig) -> Self {
        Self {
            inner: Arc::new(Shared { pool, tokens, auth }),
        }
    }

    /// A state whose signing keys live in memory (a demo or a test; a
    /// deployment keeps them in Vault through `rampart_auth::VaultKeyStore`).
    pub async fn with_memory_keys(pool: TenantPool, auth: AuthConfig) -> Result<Self, AuthError> {
        let ring = KeyRing::open(
            Arc::new(MemoryKeyStore::new()),
            KeyEncryptionKey::generate(),
            RotationPolicy::from_config(&auth),
        )
        .await?;
        let tokens = TokenService::new(ring, &auth);
        Ok(Self::new(pool, tokens, auth))
    }

    /// The tenant pool.
    pub fn pool(&self) -> &TenantPool {
        &self.inner.pool
    }

    /// Issues an access token for `subject` in `tenant` (what the OAuth
    /// flows of `rampart_auth::AuthServer` do after a login).
    pub fn issue_token(&self, tenant: &Tenant, subject: &str) -> Result<String, AuthError> {
        let auth = &self.inner.auth;
        let (token, _claims) = self.inner.tokens.issue_access_token(&AccessTokenRequest {
            tenant_id: tenant.id,
            issuer: auth.issuer(tenant.slug.as_str()),
            audience: auth.access_token_audience.clone(),
            subject: subject.to_owned(),
            client_id: "rampart-example-axum".into(),
            scope: "openid".into(),
            roles: Vec::new(),
            session_id: None,
            family_id: None,
            auth_time: None,
            alg: SigningAlg::ES256,
        })?;
        Ok(token)
    }
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/t/{tenant}/users", get(list_users))
        .with_state(state)
}

/// The caller of a tenant route: a bearer access token verified for the
/// tenant in the path, which may serve requests.
#[derive(Debug, Clone)]
pub struct TenantCaller {
    /// The tenant of the path (and of the token).
    pub tenant: Arc<Tenant>,
    /// The token's subject.
    pub subject: String,
}

impl FromRequestParts<AppState> for TenantCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(slug) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let auth = &state.inner.auth;
        // The token first: a caller without one learns nothing about which
        // tenants exist. The issuer names the tenant of the path.
        let verified = state
            .inner
            .tokens
            .verify_access_token(token, &auth.issuer(&slug), &auth.access_token_audience)
            .map_err(|_| ApiError::Unauthorized)?;
        let tenant = state.inner.pool.active_tenant(&slug).await?;
        // The tenant id sealed inside the token must be this tenant's, so a
        // token survives neither a slug reused after a purge nor a forged issuer.
        if verified.tenant_id != tenant.id {
            return Err(ApiError::Unauthorized);
        }
        Ok(TenantCaller {
            tenant,
            subject: verified.claims.sub,
        })
    }
}

/// `GET /t/{tenant}/users`: the tenant's users by e-mail.
async fn list_users(
    State(state): State<AppState>,
    caller: TenantCaller,
) -> Result<Json<Vec<UserSummary>>, ApiError> {
    let listed = state
        .pool()
        .with_tenant(caller.tenant.slug.as_str(), async |conn| {
            users::table
                .select(UserSummary::as_select())
                .order(users::email)
                .load(conn)
                .await
                .map_err(TenancyError::from)
        })
        .await?;
    Ok(Json(listed))
}

/// Why a request failed, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No, a malformed or an invalid bearer token for this tenant.
    #[error("a valid bearer token for this tenant is required")]
    Unauthorized,
    /// The tenant does not exist or may not serve requests.
    #[error("no such tenant")]
    NotFound,
    /// Anything else (the database is down, …); details stay in the server.
    #[error("internal error")]
    Internal(#[source] TenancyError),
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::InvalidSlug { .. }
            | TenancyError::NotFound(_)
            | TenancyError::Suspended(_)
            | TenancyError::Deactivated(_)
            | TenancyError::Purged(_) => ApiError::NotFound,
            other => ApiError::Internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let body = Json(serde_json::json!({ "error": code, "message": self.to_string() }));
        if status == StatusCode::UNAUTHORIZED {
            return (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
        }
        (status, body).into_response()
    }
}
