//! `/api/v1/t/{tenant}/account/…`: the caller's own account over the bearer
//! API (tokens with `account:manage`; a recent sign-in for changes that
//! take no password): change password, TOTP setup / confirm / disable, revoke the other
//! sessions, the caller's API keys (scopes within the role) and logout;
//! a tenant's keys for its administrators (`apikeys:manage`). The logic lives
//! in `rampart_auth::AuthServer`; secrets (TOTP seed, backup codes, API keys)
//! are in the response once and never again.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use actix_web::{delete, get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{self, JsonObject};
use crate::error::ApiError;
use crate::extract::{Caller, User, perm};

/// The caller's own account: a user whose token carries `account:manage`.
/// Changes that need no password also need a recent sign-in
/// ([`crate::extract::Caller::recently_authenticated`]).
type Account = User<perm::AccountManage>;
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    // Paths under the tenant API scope, no nested scope (see `api_v1`).
    cfg.service(change_password)
        .service(begin_totp)
        .service(confirm_totp)
        .service(disable_totp)
        .service(revoke_other_sessions)
        .service(create_api_key)
        .service(list_api_keys)
        .service(revoke_api_key)
        .service(logout)
        .service(tenant_api_keys)
        .service(revoke_tenant_api_key);
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
#[utoipa::path(request_body = ChangePasswordBody, responses((status = 200, description = "changed"), (status = 400, description = "wrong current password or policy"), (status = 401, description = "no valid token")))]
#[post("/account/password")]
pub async fn change_password(
    user: Account,
    state: web::Data<AppState>,
    body: JsonObject<ChangePasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let keep = user.session_id(&state);
    state
        .auth
        .change_password(
            &user.tenant,
            user.id,
            &body.current_password,
            &body.new_password,
            keep,
            &user.client,
        )
        .await?;
    Ok(api::ok(serde_json::json!({"changed": true})))
}

/// Starts TOTP setup: the secret and `otpauth://` URL, shown once; not
/// active until confirmed with a code.
#[utoipa::path(responses((status = 200, description = "secret and otpauth URL"), (status = 409, description = "TOTP already enabled")))]
#[post("/account/mfa/totp")]
pub async fn begin_totp(
    user: Account,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    user.recently_authenticated(&state)?;
    let setup = state.auth.begin_totp_setup(&user.tenant, user.id).await?;
    Ok(api::shown_once(
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
#[utoipa::path(request_body = CodeBody, responses((status = 200, description = "enabled; backup codes"), (status = 400, description = "wrong code")))]
#[post("/account/mfa/totp/confirm")]
pub async fn confirm_totp(
    user: Account,
    state: web::Data<AppState>,
    body: JsonObject<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    user.recently_authenticated(&state)?;
    let codes = state
        .auth
        .confirm_totp(&user.tenant, user.id, &body.code, &user.client)
        .await?;
    Ok(api::shown_once(
        StatusCode::OK,
        serde_json::json!({"backupCodes": codes}),
    ))
}

/// Turns TOTP off; needs a valid code not used before (TOTP or backup).
#[utoipa::path(request_body = CodeBody, responses((status = 200, description = "disabled"), (status = 400, description = "wrong or reused code")))]
#[post("/account/mfa/totp/disable")]
pub async fn disable_totp(
    user: Account,
    state: web::Data<AppState>,
    body: JsonObject<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    user.recently_authenticated(&state)?;
    state
        .auth
        .disable_totp(&user.tenant, user.id, &body.code, &user.client)
        .await?;
    Ok(api::ok(serde_json::json!({"disabled": true})))
}

/// Revokes every session of the caller except the token's own.
#[utoipa::path(responses((status = 200, description = "how many were revoked"), (status = 403, description = "token without a session")))]
#[post("/account/sessions/revoke-others")]
pub async fn revoke_other_sessions(
    user: Account,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let keep = user.session_required(&state)?;
    user.recently_authenticated(&state)?;
    let n = state
        .auth
        .revoke_other_sessions(&user.tenant, user.id, keep, &user.client)
        .await?;
    Ok(api::ok(serde_json::json!({"revoked": n})))
}

/// Logs out: revokes the token's session and its refresh tokens.
#[utoipa::path(responses((status = 200, description = "logged out"), (status = 403, description = "token without a session")))]
#[post("/account/logout")]
pub async fn logout(user: User, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let session = user.session_required(&state)?;
    state
        .auth
        .revoke_session(&user.tenant, user.id, session, &user.client)
        .await?;
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

/// Creates an API key for the caller; the key is shown once. Its scopes
/// must be ones the caller's role grants.
#[utoipa::path(request_body = CreateApiKeyBody, responses((status = 201, description = "the key, shown once"), (status = 403, description = "a scope beyond the caller's role")))]
#[post("/account/api-keys")]
pub async fn create_api_key(
    user: Account,
    state: web::Data<AppState>,
    body: JsonObject<CreateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    user.recently_authenticated(&state)?;
    if body.name.is_empty() || body.name.len() > 100 {
        return Err(ApiError::bad_request("name must be 1-100 characters"));
    }
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::bad_request("expires_at is in the past"));
    }
    let key = state
        .auth
        .create_api_key(
            &user.tenant,
            user.id,
            &body.name,
            &body.scopes,
            body.expires_at,
            &user.client,
        )
        .await?;
    Ok(api::shown_once(
        StatusCode::CREATED,
        serde_json::json!({"id": key.id, "prefix": key.prefix, "key": key.key}),
    ))
}

/// The caller's API keys (no secrets).
#[utoipa::path(responses((status = 200, description = "keys")))]
#[get("/account/api-keys")]
pub async fn list_api_keys(
    user: Account,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let keys = state.auth.list_api_keys(&user.tenant, user.id).await?;
    Ok(api::ok(keys))
}

/// `…/account/api-keys/{prefix}`.
#[derive(Debug, Deserialize)]
pub struct KeyPath {
    /// The key's public prefix.
    pub prefix: String,
}

/// Revokes one of the caller's keys by its prefix.
#[utoipa::path(responses((status = 200, description = "revoked"), (status = 404, description = "not the caller's live key")))]
#[delete("/account/api-keys/{prefix}")]
pub async fn revoke_api_key(
    user: Account,
    state: web::Data<AppState>,
    path: web::Path<KeyPath>,
) -> Result<HttpResponse, ApiError> {
    let prefix = path.prefix.as_str();
    // `revoke_api_key` goes by prefix alone: only the caller's own live keys.
    let owned = state
        .auth
        .list_api_keys(&user.tenant, user.id)
        .await?
        .iter()
        .any(|k| k.prefix == prefix && k.revoked_at.is_none());
    if !owned {
        return Err(ApiError::not_found());
    }
    state
        .auth
        .revoke_api_key(&user.tenant, prefix, &user.client)
        .await?;
    Ok(api::ok(serde_json::json!({"revoked": prefix})))
}

/// Every API key of the tenant with its owner, scopes, expiry, last use and
/// revocation (no secrets), for its administrators.
#[utoipa::path(responses((status = 200, description = "keys"), (status = 403, description = "needs apikeys:manage")))]
#[get("/api-keys")]
pub async fn tenant_api_keys(
    caller: Caller<perm::ApiKeysManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(
        state
            .auth
            .api_keys()
            .list_tenant_api_keys(&caller.tenant)
            .await?,
    ))
}

/// Revokes any key of the tenant (effective on its next use).
#[utoipa::path(responses((status = 200, description = "revoked"), (status = 403, description = "needs apikeys:manage"), (status = 404, description = "no live key with this prefix")))]
#[delete("/api-keys/{prefix}")]
pub async fn revoke_tenant_api_key(
    caller: Caller<perm::ApiKeysManage>,
    state: web::Data<AppState>,
    path: web::Path<KeyPath>,
) -> Result<HttpResponse, ApiError> {
    state
        .auth
        .revoke_api_key(&caller.tenant, &path.prefix, &caller.client)
        .await?;
    Ok(api::ok(serde_json::json!({"revoked": path.prefix})))
}
