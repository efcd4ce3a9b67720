//! Tenant settings and feature flags, for tenant administrators (public
//! listener, `tenant:admin`) and operators (admin listener, mTLS).
//!
//! | route | who |
//! |---|---|
//! | `GET, PATCH /api/v1/t/{tenant}/settings` | tenant admin |
//! | `GET /api/v1/t/{tenant}/features`, `GET, PUT …/features/{flag}` | tenant admin |
//! | `GET, PATCH /admin/tenants/{slug}/settings` | operator |
//! | `GET /admin/tenants/{slug}/features`, `GET, PUT …/features/{flag}` | operator |
//!
//! `PATCH` takes a JSON merge patch (RFC 7396) of the typed settings
//! (`rampart_tenancy::TenantSettings`; `null` resets a key to its default);
//! a value outside the platform's bounds, an unknown key or a wrong type is
//! 400 `tenant_setting_invalid` and changes nothing. Every change is written
//! to the tenant's audit log with the actor and the values before and after.
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web::{get, patch, put};
use rampart_auth::ClientContext;
use rampart_auth::audit::AuditEvent;
use rampart_tenancy::TenantSlug;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{self, JsonObject};
use crate::error::ApiError;
use crate::extract::{self, Caller, Operator, perm};
use crate::state::AppState;

/// The public listener's routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_settings)
        .service(patch_settings)
        .service(list_features)
        .service(get_feature)
        .service(put_feature);
}

/// The admin listener's routes.
pub fn configure_admin(cfg: &mut ServiceConfig) {
    cfg.service(admin_get_settings)
        .service(admin_patch_settings)
        .service(admin_list_features)
        .service(admin_get_feature)
        .service(admin_put_feature);
}

type TenantAdmin = Caller<perm::TenantAdmin>;

/// Who changed something, for the audit record.
struct Actor {
    actor: String,
    user: Option<rampart_auth::UserId>,
    client: ClientContext,
}

impl Actor {
    fn of(caller: &TenantAdmin) -> Self {
        Self {
            actor: caller.actor(),
            user: caller.principal.user_id,
            client: caller.client.clone(),
        }
    }

    fn operator(operator: &Operator, req: &HttpRequest) -> Self {
        Self {
            actor: operator.actor(),
            user: None,
            client: extract::client_context(req),
        }
    }

    async fn record(
        &self,
        state: &AppState,
        tenant: &TenantSlug,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        state
            .auth
            .audit(
                tenant,
                AuditEvent::new(action, "success")
                    .user(self.user)
                    .actor(self.actor.clone())
                    .client(&self.client)
                    .detail(detail),
            )
            .await?;
        Ok(())
    }
}

async fn read_settings(state: &AppState, tenant: &TenantSlug) -> Result<HttpResponse, ApiError> {
    // Registry state, not the cache: an admin reads what is stored.
    state.tenants.forget_tenant_settings(tenant).await;
    Ok(api::ok(&*state.tenants.tenant_settings(tenant).await?))
}

async fn apply_patch(
    state: &AppState,
    tenant: &TenantSlug,
    patch: &serde_json::Value,
    actor: &Actor,
) -> Result<HttpResponse, ApiError> {
    let (before, after) = state.tenants.update_tenant_settings(tenant, patch).await?;
    actor
        .record(
            state,
            tenant,
            "tenant_settings_update",
            serde_json::json!({"before": before, "after": after, "patch": patch}),
        )
        .await?;
    Ok(api::ok(after))
}

/// `…/features/{flag}`.
#[derive(Debug, Deserialize)]
pub struct FlagPath {
    /// The tenant (public listener).
    #[serde(alias = "slug")]
    pub tenant: TenantSlug,
    /// The flag: 1–100 of `[A-Za-z0-9._-]`.
    pub flag: String,
}

/// Body of `PUT …/features/{flag}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagBody {
    /// On or off.
    pub enabled: bool,
}

async fn read_flag(
    state: &AppState,
    tenant: &TenantSlug,
    flag: &str,
) -> Result<HttpResponse, ApiError> {
    let enabled = state.tenants.feature_enabled(tenant, flag).await?;
    Ok(api::ok(
        serde_json::json!({"flag": flag, "enabled": enabled}),
    ))
}

async fn write_flag(
    state: &AppState,
    path: &FlagPath,
    enabled: bool,
    actor: &Actor,
) -> Result<HttpResponse, ApiError> {
    let before = state
        .tenants
        .feature_enabled(&path.tenant, &path.flag)
        .await?;
    state
        .tenants
        .set_feature(&path.tenant, &path.flag, enabled)
        .await?;
    actor
        .record(
            state,
            &path.tenant,
            "feature_flag_update",
            serde_json::json!({"flag": path.flag, "before": before, "after": enabled}),
        )
        .await?;
    Ok(api::ok(
        serde_json::json!({"flag": path.flag, "enabled": enabled}),
    ))
}

/// The tenant's typed settings (defaults for what is unset).
#[utoipa::path(responses((status = 200, description = "settings"), (status = 403, description = "not a tenant admin")))]
#[get("/settings")]
pub async fn get_settings(
    caller: TenantAdmin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    read_settings(&state, &caller.tenant).await
}

/// Changes settings with a JSON merge patch; audited with before and after.
#[utoipa::path(responses((status = 200, description = "the settings after the change"), (status = 400, description = "tenant_setting_invalid: unknown key, wrong type or outside the platform's bounds"), (status = 403, description = "not a tenant admin")))]
#[patch("/settings")]
pub async fn patch_settings(
    caller: TenantAdmin,
    state: web::Data<AppState>,
    body: JsonObject<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    apply_patch(&state, &caller.tenant, &body, &Actor::of(&caller)).await
}

/// Every feature flag of the tenant (its own over the platform defaults).
#[utoipa::path(responses((status = 200, description = "flags"), (status = 403, description = "not a tenant admin")))]
#[get("/features")]
pub async fn list_features(
    caller: TenantAdmin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(state.tenants.feature_flags(&caller.tenant).await?))
}

/// One feature flag.
#[utoipa::path(responses((status = 200, description = "the flag"), (status = 400, description = "malformed flag name"), (status = 403, description = "not a tenant admin")))]
#[get("/features/{flag}")]
pub async fn get_feature(
    caller: TenantAdmin,
    state: web::Data<AppState>,
    path: web::Path<FlagPath>,
) -> Result<HttpResponse, ApiError> {
    read_flag(&state, &caller.tenant, &path.flag).await
}

/// Turns a feature flag on or off; audited.
#[utoipa::path(request_body = FlagBody, responses((status = 200, description = "the flag"), (status = 400, description = "malformed flag name"), (status = 403, description = "not a tenant admin")))]
#[put("/features/{flag}")]
pub async fn put_feature(
    caller: TenantAdmin,
    state: web::Data<AppState>,
    path: web::Path<FlagPath>,
    body: JsonObject<FlagBody>,
) -> Result<HttpResponse, ApiError> {
    write_flag(&state, &path, body.enabled, &Actor::of(&caller)).await
}

/// A tenant's typed settings (operator).
#[utoipa::path(responses((status = 200, description = "settings"), (status = 404, description = "unknown tenant")))]
#[get("/admin/tenants/{slug}/settings")]
pub async fn admin_get_settings(
    _operator: Operator,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    read_settings(&state, &slug).await
}

/// Changes a tenant's settings (operator); audited in the tenant's log.
#[utoipa::path(responses((status = 200, description = "the settings after the change"), (status = 400, description = "tenant_setting_invalid")))]
#[patch("/admin/tenants/{slug}/settings")]
pub async fn admin_patch_settings(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    body: JsonObject<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    apply_patch(&state, &slug, &body, &Actor::operator(&operator, &req)).await
}

/// A tenant's feature flags (operator).
#[utoipa::path(responses((status = 200, description = "flags")))]
#[get("/admin/tenants/{slug}/features")]
pub async fn admin_list_features(
    _operator: Operator,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    Ok(api::ok(state.tenants.feature_flags(&slug).await?))
}

/// One feature flag of a tenant (operator).
#[utoipa::path(responses((status = 200, description = "the flag"), (status = 400, description = "malformed flag name")))]
#[get("/admin/tenants/{slug}/features/{flag}")]
pub async fn admin_get_feature(
    _operator: Operator,
    state: web::Data<AppState>,
    path: web::Path<FlagPath>,
) -> Result<HttpResponse, ApiError> {
    read_flag(&state, &path.tenant, &path.flag).await
}

/// Turns a tenant's feature flag on or off (operator); audited.
#[utoipa::path(request_body = FlagBody, responses((status = 200, description = "the flag")))]
#[put("/admin/tenants/{slug}/features/{flag}")]
pub async fn admin_put_feature(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<FlagPath>,
    body: JsonObject<FlagBody>,
) -> Result<HttpResponse, ApiError> {
    write_flag(
        &state,
        &path,
        body.enabled,
        &Actor::operator(&operator, &req),
    )
    .await
}
