//! Upstream identity providers over HTTP, on [`rampart_auth::UpstreamService`]:
//! register (or, with `PUT`-like replace, re-register), list, show, change,
//! enable or disable, delete — for the operator on the admin listener
//! (`/admin/t/{tenant}/idps…`) and for a tenant administrator
//! (`tenant:admin`, `/api/v1/t/{tenant}/idps…`). Client secrets are
//! accepted in bodies and stored in the secret store; answers only say
//! `hasClientSecret`.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use actix_web::{delete, get, patch, post};
use rampart_auth::{UpstreamProvider, UpstreamProviderUpdate};
use rampart_tenancy::TenantSlug;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{self, JsonObject};
use crate::error::ApiError;
use crate::extract::{Caller, Operator, perm};
use crate::state::AppState;

/// Registers the tenant administrator's routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(show)
        .service(update)
        .service(delete);
}

/// Registers the admin listener's routes.
pub fn configure_admin(cfg: &mut ServiceConfig) {
    cfg.service(admin_list)
        .service(admin_create)
        .service(admin_show)
        .service(admin_update)
        .service(admin_delete);
}

/// A tenant administrator.
type Admin = Caller<perm::TenantAdmin>;

/// `…/idps/{name}`.
#[derive(Debug, Deserialize)]
pub struct IdpPath {
    /// The tenant.
    pub tenant: TenantSlug,
    /// The provider's name.
    pub name: String,
}

/// `/admin/t/{tenant}/idps`.
#[derive(Debug, Deserialize)]
pub struct TenantPath {
    /// The tenant.
    pub tenant: TenantSlug,
}

// ------------------------------------------------ shared by both listeners

async fn do_create(
    state: &AppState,
    tenant: &TenantSlug,
    body: UpstreamProvider,
    actor: &str,
) -> Result<HttpResponse, ApiError> {
    let info = state
        .auth
        .upstream()
        .put_provider(tenant, body, false, actor)
        .await?;
    Ok(api::ok_status(StatusCode::CREATED, info))
}

async fn do_list(state: &AppState, tenant: &TenantSlug) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(state.auth.upstream().list_providers(tenant).await?))
}

async fn do_show(state: &AppState, path: &IdpPath) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(
        state
            .auth
            .upstream()
            .provider_info(&path.tenant, &path.name)
            .await?,
    ))
}

async fn do_update(
    state: &AppState,
    path: &IdpPath,
    body: &UpstreamProviderUpdate,
    actor: &str,
) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(
        state
            .auth
            .upstream()
            .update_provider(&path.tenant, &path.name, body, actor)
            .await?,
    ))
}

async fn do_delete(
    state: &AppState,
    path: &IdpPath,
    actor: &str,
) -> Result<HttpResponse, ApiError> {
    state
        .auth
        .upstream()
        .delete_provider(&path.tenant, &path.name, actor)
        .await?;
    Ok(api::ok(
        serde_json::json!({"name": path.name, "deleted": true}),
    ))
}

// ------------------------------------------------ tenant administrator

/// Registers an upstream identity provider (checked through its discovery
/// document or explicit endpoints first; the client secret goes to the
/// secret store).
#[utoipa::path(responses((status = 201, description = "created (hasClientSecret, never the secret)"), (status = 400, description = "invalid, or the provider could not be checked (idp_check_failed)"), (status = 409, description = "name taken"), (status = 503, description = "no secret store for a client secret")))]
#[post("/idps")]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: JsonObject<UpstreamProvider>,
) -> Result<HttpResponse, ApiError> {
    do_create(&state, &admin.tenant, body.into_inner(), &admin.actor()).await
}

/// The tenant's upstream identity providers (no secrets).
#[utoipa::path(responses((status = 200, description = "providers")))]
#[get("/idps")]
pub async fn list(admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    do_list(&state, &admin.tenant).await
}

/// One upstream identity provider.
#[utoipa::path(responses((status = 200, description = "provider"), (status = 404, description = "unknown")))]
#[get("/idps/{name}")]
pub async fn show(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<IdpPath>,
) -> Result<HttpResponse, ApiError> {
    do_show(&state, &path).await
}

/// Changes a provider (absent fields kept; `enabled: false` disables it).
#[utoipa::path(responses((status = 200, description = "provider"), (status = 400, description = "invalid, or the provider could not be checked"), (status = 404, description = "unknown"), (status = 503, description = "no secret store for a client secret")))]
#[patch("/idps/{name}")]
pub async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<IdpPath>,
    body: JsonObject<UpstreamProviderUpdate>,
) -> Result<HttpResponse, ApiError> {
    do_update(&state, &path, &body, &admin.actor()).await
}

/// Deletes a provider, its identity links and its client secret.
#[utoipa::path(responses((status = 200, description = "deleted"), (status = 404, description = "unknown")))]
#[delete("/idps/{name}")]
pub async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<IdpPath>,
) -> Result<HttpResponse, ApiError> {
    do_delete(&state, &path, &admin.actor()).await
}

// ------------------------------------------------ operator (admin listener)

/// Registers an upstream identity provider in a tenant (operator).
#[utoipa::path(responses((status = 201, description = "created (hasClientSecret, never the secret)"), (status = 400, description = "invalid, or the provider could not be checked (idp_check_failed)"), (status = 409, description = "name taken"), (status = 503, description = "no secret store for a client secret")))]
#[post("/admin/t/{tenant}/idps")]
pub async fn admin_create(
    operator: Operator,
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
    body: JsonObject<UpstreamProvider>,
) -> Result<HttpResponse, ApiError> {
    do_create(&state, &path.tenant, body.into_inner(), &operator.actor()).await
}

/// A tenant's upstream identity providers (operator).
#[utoipa::path(responses((status = 200, description = "providers")))]
#[get("/admin/t/{tenant}/idps")]
pub async fn admin_list(
    _operator: Operator,
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
) -> Result<HttpResponse, ApiError> {
    do_list(&state, &path.tenant).await
}

/// One upstream identity provider (operator).
#[utoipa::path(responses((status = 200, description = "provider"), (status = 404, description = "unknown")))]
#[get("/admin/t/{tenant}/idps/{name}")]
pub async fn admin_show(
    _operator: Operator,
    state: web::Data<AppState>,
    path: web::Path<IdpPath>,
) -> Result<HttpResponse, ApiError> {
    do_show(&state, &path).await
}

/// Changes a provider (operator).
#[utoipa::path(responses((status = 200, description = "provider"), (status = 400, description = "invalid, or the provider could not be checked"), (status = 404, description = "unknown"), (status = 503, description = "no secret store for a client secret")))]
#[patch("/admin/t/{tenant}/idps/{name}")]
pub async fn admin_update(
    operator: Operator,
    state: web::Data<AppState>,
    path: web::Path<IdpPath>,
    body: JsonObject<UpstreamProviderUpdate>,
) -> Result<HttpResponse, ApiError> {
    do_update(&state, &path, &body, &operator.actor()).await
}

/// Deletes a provider (operator).
#[utoipa::path(responses((status = 200, description = "deleted"), (status = 404, description = "unknown")))]
#[delete("/admin/t/{tenant}/idps/{name}")]
pub async fn admin_delete(
    operator: Operator,
    state: web::Data<AppState>,
    path: web::Path<IdpPath>,
) -> Result<HttpResponse, ApiError> {
    do_delete(&state, &path, &operator.actor()).await
}
