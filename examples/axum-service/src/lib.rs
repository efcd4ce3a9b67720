//! # rampart-example-axum
//!
//! A small [axum] service that embeds `rampart-tenancy` and `rampart-auth`:
//! `GET /t/{tenant}/users` verifies a bearer access token for the tenant in
//! the path and answers with a page of that tenant's users. Nothing here
//! depends on actix-web; the libraries are plain async Rust.
//!
//! The service owns no table. The tenant's `users` belong to `rampart-auth`,
//! so they are read through its API
//! ([`AuthServer::accounts`] → [`AccountService::list_users`](rampart_auth::AccountService::list_users)),
//! and tokens are verified by the same [`AuthServer`]
//! ([`AuthServer::tokens`]) — the rule of the workspace: every table has one
//! owning crate, and other crates call the owner's API, never its tables.
//!
//! The authenticated caller is an extractor, [`TenantCaller`]: a handler
//! that takes one cannot run for a request without a valid token for the
//! tenant in its path.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rampart_auth::users::UserProfile;
use rampart_auth::{AccessTokenRequest, AuthConfig, AuthError, AuthServer, SigningAlg};
use rampart_tenancy::{TenancyError, Tenant, TenantPool, TenantSlug};
use serde::Deserialize;
use uuid::Uuid;

/// Users per page of `GET /t/{tenant}/users` when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: i64 = 50;

/// The largest `limit` `GET /t/{tenant}/users` accepts.
pub const MAX_PAGE_LIMIT: i64 = 200;

/// What the handlers share: the auth services of `rampart-auth` (which hold
/// the tenant pool too).
#[derive(Clone)]
pub struct AppState {
    auth: Arc<AuthServer>,
}

impl AppState {
    /// A state over `auth`: tokens are verified by its token service for the
    /// issuers and audience of its configuration, users are read through its
    /// accounts service.
    pub fn new(auth: Arc<AuthServer>) -> Self {
        Self { auth }
    }

    /// A state whose signing keys live in memory, sealed by one generated
    /// key-encryption key (a demo or a test; a deployment keeps them in Vault
    /// through `rampart_auth::VaultKeyStore` and builds its
    /// [`AuthServer`] with [`AuthServer::new`]).
    pub async fn with_memory_keys(pool: TenantPool, config: AuthConfig) -> Result<Self, AuthError> {
        let auth = AuthServer::with_memory_keys(pool, config).await?;
        Ok(Self::new(Arc::new(auth)))
    }

    /// The auth services.
    pub fn auth(&self) -> &AuthServer {
        &self.auth
    }

    /// The tenant pool.
    pub fn pool(&self) -> &TenantPool {
        self.auth.pool()
    }

    /// Issues an access token for `subject` in `tenant` (what the OAuth
    /// flows of [`AuthServer::oauth`] do after a login).
    pub fn issue_token(&self, tenant: &Tenant, subject: &str) -> Result<String, AuthError> {
        let config = self.auth.config();
        let (token, _claims) = self.auth.tokens().issue_access_token(&AccessTokenRequest {
            tenant_id: tenant.id,
            issuer: config.issuer(tenant.slug.as_str()),
            audience: config.access_token_audience.clone(),
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
        let auth = state.auth();
        // The token first: a caller without one learns nothing about which
        // tenants exist. The issuer names the tenant of the path.
        let verified = auth
            .tokens()
            .verify_access_token(
                token,
                &auth.config().issuer(&slug),
                &auth.config().access_token_audience,
            )
            .map_err(|_| ApiError::Unauthorized)?;
        let slug = TenantSlug::parse(&slug)?;
        let tenant = auth.pool().active_tenant(&slug).await?;
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

/// The query of `GET /t/{tenant}/users`: keyset paging by user id.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PageQuery {
    /// Only users whose id is greater than this one (the last id of the
    /// previous page).
    pub after: Option<Uuid>,
    /// At most this many users, 1 to [`MAX_PAGE_LIMIT`]
    /// (default [`DEFAULT_PAGE_LIMIT`]).
    pub limit: Option<i64>,
}

impl PageQuery {
    /// The limit to ask for, or why it is refused.
    fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_LIMIT),
            Some(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_PAGE_LIMIT}"
            ))),
        }
    }
}

/// `GET /t/{tenant}/users?after=&limit=`: a page of the tenant's users by
/// id, through `rampart-auth`'s accounts service. A client asks for the next
/// page with `after` = the last id it got; a page shorter than `limit` is
/// the last.
async fn list_users(
    State(state): State<AppState>,
    caller: TenantCaller,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Vec<UserProfile>>, ApiError> {
    // After the caller: a request without a valid token gets a 401 whatever
    // its query says.
    let Query(page) = page.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page.limit()?;
    let listed = state
        .auth()
        .accounts()
        .list_users(&caller.tenant.slug, page.after, limit)
        .await?;
    Ok(Json(listed))
}

/// Why a request failed, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An invalid query (paging parameters).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No, a malformed or an invalid bearer token for this tenant.
    #[error("a valid bearer token for this tenant is required")]
    Unauthorized,
    /// The tenant does not exist or may not serve requests.
    #[error("no such tenant")]
    NotFound,
    /// Anything else (the database is down, …); details stay in the server.
    #[error("internal error")]
    Internal(#[source] AuthError),
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::InvalidSlug { .. }
            | TenancyError::NotFound(_)
            | TenancyError::Suspended(_)
            | TenancyError::Deactivated(_)
            | TenancyError::Purged(_) => ApiError::NotFound,
            other => ApiError::Internal(AuthError::Tenancy(other)),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            // The tenant was suspended, say, between the token check and the read.
            AuthError::Tenancy(e) => ApiError::from(e),
            other => ApiError::Internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
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
