//! `/api/v1/t/{tenant}/account/…`: the caller's own account over the bearer
//! API: change password, TOTP setup / confirm / disable, revoke the other
//! sessions, API keys (for `api_user` accounts) and logout. The logic lives
//! in `rampart_auth::AuthServer`; secrets (TOTP seed, backup codes, API keys)
//! are in the response once and never again.
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use rampart_auth::{AuthError, AuthServer, ClientContext, Principal, Role};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{self, ApiError};
use crate::app::AppState;
use crate::routes::api_v1::{auth_error, principal, user_of};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Plain routes with full paths, not a `web::scope` (see `api_v1`).
    cfg.route(
        "/api/v1/t/{tenant}/account/password",
        web::post().to(change_password),
    )
    .route(
        "/api/v1/t/{tenant}/account/mfa/totp",
        web::post().to(begin_totp),
    )
    .route(
        "/api/v1/t/{tenant}/account/mfa/totp/confirm",
        web::post().to(confirm_totp),
    )
    .route(
        "/api/v1/t/{tenant}/account/mfa/totp/disable",
        web::post().to(disable_totp),
    )
    .route(
        "/api/v1/t/{tenant}/account/sessions/revoke-others",
        web::post().to(revoke_other_sessions),
    )
    .route(
        "/api/v1/t/{tenant}/account/api-keys",
        web::post().to(create_api_key),
    )
    .route(
        "/api/v1/t/{tenant}/account/api-keys",
        web::get().to(list_api_keys),
    )
    .route(
        "/api/v1/t/{tenant}/account/api-keys/{prefix}",
        web::delete().to(revoke_api_key),
    )
    .route("/api/v1/t/{tenant}/account/logout", web::post().to(logout));
}

fn auth_of(state: &AppState) -> Result<&AuthServer, ApiError> {
    state.auth.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "authentication is not configured",
        )
    })
}

fn client_context(req: &HttpRequest) -> ClientContext {
    ClientContext {
        ip: req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
        device: None,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// A wrong password or code is a bad request here, not a missing token.
fn account_error(e: AuthError) -> ApiError {
    match e {
        AuthError::InvalidCredentials | AuthError::InvalidGrant(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            "wrong password or code",
        ),
        AuthError::Conflict(_) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.public_description())
        }
        e => auth_error(e),
    }
}

/// The session the caller's access token was issued for (`sid`), if any.
/// The token was verified by [`principal`] already; this is a cache hit.
fn session_of(req: &HttpRequest, auth: &AuthServer, tenant: &str) -> Option<Uuid> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let verified = auth
        .tokens()
        .verify_access_token(
            token,
            &auth.issuer(tenant),
            &auth.config().access_token_audience,
        )
        .ok()?;
    Uuid::parse_str(verified.claims.sid.as_deref()?).ok()
}

fn session_required(req: &HttpRequest, auth: &AuthServer, tenant: &str) -> Result<Uuid, ApiError> {
    session_of(req, auth, tenant).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "session_required",
            "this route needs a token issued to a login session",
        )
    })
}

/// A response holding a secret shown once: enveloped, never cached.
fn shown_once(status: StatusCode, data: serde_json::Value) -> HttpResponse {
    let mut r = api::ok_status(status, data);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn api_user(p: &Principal) -> Result<Uuid, ApiError> {
    let user = user_of(p)?;
    if p.role != Role::ApiUser {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "API keys are for api_user accounts",
        ));
    }
    Ok(user)
}

/// `POST …/account/password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChangePasswordBody {
    /// The current password.
    pub current_password: String,
    /// The new password (policy: 12+ characters, not a common password).
    pub new_password: String,
}

/// Changes the caller's password; every other session is revoked.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/account/password", request_body = ChangePasswordBody, responses((status = 200, description = "changed"), (status = 400, description = "wrong current password or policy"), (status = 401, description = "no valid token")))]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<ChangePasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let auth = auth_of(&state)?;
    let keep = session_of(&req, auth, &tenant);
    auth.change_password(
        &tenant,
        user_id,
        &body.current_password,
        &body.new_password,
        keep,
        &client_context(&req),
    )
    .await
    .map_err(account_error)?;
    Ok(api::ok(serde_json::json!({"changed": true})))
}

/// Starts TOTP setup: the secret and `otpauth://` URL, shown once; not
/// active until confirmed with a code.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/account/mfa/totp", responses((status = 200, description = "secret and otpauth URL"), (status = 409, description = "TOTP already enabled")))]
pub async fn begin_totp(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let auth = auth_of(&state)?;
    let setup = auth
        .begin_totp_setup(&tenant, user_id)
        .await
        .map_err(account_error)?;
    Ok(shown_once(
        StatusCode::OK,
        serde_json::json!({"secret": setup.secret_base32, "otpauthUrl": setup.otpauth_url}),
    ))
}

/// A one-time code (TOTP or, to disable, a backup code).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CodeBody {
    /// The code.
    pub code: String,
}

/// Confirms TOTP setup with a current code; returns the backup codes once.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/account/mfa/totp/confirm", request_body = CodeBody, responses((status = 200, description = "enabled; backup codes"), (status = 400, description = "wrong code")))]
pub async fn confirm_totp(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let auth = auth_of(&state)?;
    let codes = auth
        .confirm_totp(&tenant, user_id, &body.code, &client_context(&req))
        .await
        .map_err(account_error)?;
    Ok(shown_once(
        StatusCode::OK,
        serde_json::json!({"backupCodes": codes}),
    ))
}

/// Turns TOTP off; needs a valid code not used before (TOTP or backup).
#[utoipa::path(post, path = "/api/v1/t/{tenant}/account/mfa/totp/disable", request_body = CodeBody, responses((status = 200, description = "disabled"), (status = 400, description = "wrong or reused code")))]
pub async fn disable_totp(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let auth = auth_of(&state)?;
    auth.disable_totp(&tenant, user_id, &body.code, &client_context(&req))
        .await
        .map_err(account_error)?;
    Ok(api::ok(serde_json::json!({"disabled": true})))
}

/// Revokes every session of the caller except the token's own.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/account/sessions/revoke-others", responses((status = 200, description = "how many were revoked"), (status = 403, description = "token without a session")))]
pub async fn revoke_other_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let auth = auth_of(&state)?;
    let keep = session_required(&req, auth, &tenant)?;
    let n = auth
        .revoke_other_sessions(&tenant, user_id, keep, &client_context(&req))
        .await
        .map_err(account_error)?;
    Ok(api::ok(serde_json::json!({"revoked": n})))
}

/// Logs out: revokes the token's session and its refresh tokens.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/account/logout", responses((status = 200, description = "logged out"), (status = 403, description = "token without a session")))]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let auth = auth_of(&state)?;
    let session = session_required(&req, auth, &tenant)?;
    auth.revoke_session(&tenant, user_id, session, &client_context(&req))
        .await
        .map_err(account_error)?;
    Ok(api::ok(serde_json::json!({"loggedOut": true})))
}

/// `POST …/account/api-keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateApiKeyBody {
    /// A label.
    pub name: String,
    /// Scopes the key grants.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Optional expiry (RFC 3339).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Creates an API key for the calling `api_user`; the key is shown once.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/account/api-keys", request_body = CreateApiKeyBody, responses((status = 201, description = "the key, shown once"), (status = 403, description = "not an api_user")))]
pub async fn create_api_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<CreateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = api_user(&p)?;
    let auth = auth_of(&state)?;
    if body.name.is_empty() || body.name.len() > 100 {
        return Err(ApiError::bad_request("name must be 1-100 characters"));
    }
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::bad_request("expires_at is in the past"));
    }
    let key = auth
        .create_api_key(
            &tenant,
            user_id,
            &body.name,
            &body.scopes,
            body.expires_at,
            &client_context(&req),
        )
        .await
        .map_err(account_error)?;
    Ok(shown_once(
        StatusCode::CREATED,
        serde_json::json!({"id": key.id, "prefix": key.prefix, "key": key.key}),
    ))
}

/// The calling `api_user`'s API keys (no secrets).
#[utoipa::path(get, path = "/api/v1/t/{tenant}/account/api-keys", responses((status = 200, description = "keys"), (status = 403, description = "not an api_user")))]
pub async fn list_api_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = api_user(&p)?;
    let auth = auth_of(&state)?;
    let keys = auth
        .list_api_keys(&tenant, user_id)
        .await
        .map_err(account_error)?;
    Ok(api::ok(keys))
}

/// Revokes one of the calling `api_user`'s keys by its prefix.
#[utoipa::path(delete, path = "/api/v1/t/{tenant}/account/api-keys/{prefix}", responses((status = 200, description = "revoked"), (status = 404, description = "not the caller's live key")))]
pub async fn revoke_api_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, prefix) = path.into_inner();
    let p = principal(&req, &state, &tenant).await?;
    let user_id = api_user(&p)?;
    let auth = auth_of(&state)?;
    // `revoke_api_key` goes by prefix alone: only the caller's own live keys.
    let owned = auth
        .list_api_keys(&tenant, user_id)
        .await
        .map_err(account_error)?
        .iter()
        .any(|k| k.prefix == prefix && k.revoked_at.is_none());
    if !owned {
        return Err(ApiError::not_found());
    }
    auth.revoke_api_key(&tenant, &prefix, &client_context(&req))
        .await
        .map_err(account_error)?;
    Ok(api::ok(serde_json::json!({"revoked": prefix})))
}
