//! `/api/v1/t/{tenant}/me/…` and `/api/v1/t/{tenant}/users…`: the caller's
//! profile, preferences (typed, with defaults), own activity and the import
//! of a browser-app JSON export; a tenant administrator's user management
//! (`users:manage`): list users, change a role, disable or enable a user.
//! Over [`rampart_portfolio::UserService`] and
//! [`rampart_portfolio::PortfolioService::import_json`].
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use rampart_auth::{Permission, Role, authorize};
use rampart_portfolio::{
    Actor, PortfolioError, PortfolioService, PreferencesPatch, ProfilePatch, UserService,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{self, ApiError};
use crate::app::AppState;
use crate::routes::api_v1::{principal, require, user_of};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/t/{tenant}/me/profile", web::get().to(profile))
        .route(
            "/api/v1/t/{tenant}/me/profile",
            web::patch().to(update_profile),
        )
        .route(
            "/api/v1/t/{tenant}/me/preferences",
            web::get().to(preferences),
        )
        .route(
            "/api/v1/t/{tenant}/me/preferences",
            web::patch().to(update_preferences),
        )
        .route("/api/v1/t/{tenant}/me/activity", web::get().to(activity))
        .route("/api/v1/t/{tenant}/me/import", web::post().to(import))
        .route("/api/v1/t/{tenant}/users", web::get().to(list_users))
        .route(
            "/api/v1/t/{tenant}/users/{id}/role",
            web::put().to(set_role),
        )
        .route(
            "/api/v1/t/{tenant}/users/{id}/status",
            web::put().to(set_status),
        );
}

fn user_error(e: PortfolioError) -> ApiError {
    match e {
        PortfolioError::NotFound => ApiError::not_found(),
        PortfolioError::Invalid(m) => ApiError::bad_request(m),
        PortfolioError::TooLarge { limit, unit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("at most {limit} {unit}"),
        ),
        PortfolioError::Tenancy(t) => ApiError::from(t),
        other => ApiError::internal(&other),
    }
}

fn users(state: &AppState) -> Result<UserService, ApiError> {
    let auth = state.auth.as_deref().ok_or_else(ApiError::not_found)?;
    Ok(UserService::new(state.tenants.clone(), auth))
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/me/profile", responses((status = 200, description = "profile"), (status = 401, description = "no valid token")))]
pub async fn profile(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let me = user_of(&p)?;
    let profile = users(&state)?
        .profile(&tenant, me)
        .await
        .map_err(user_error)?;
    Ok(api::ok(profile))
}

/// Changes the caller's display name.
#[utoipa::path(patch, path = "/api/v1/t/{tenant}/me/profile", responses((status = 200, description = "profile"), (status = 400, description = "invalid")))]
pub async fn update_profile(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let me = user_of(&p)?;
    let profile = users(&state)?
        .update_profile(&tenant, me, body.0)
        .await
        .map_err(user_error)?;
    Ok(api::ok(profile))
}

/// The caller's preferences, defaults filled in.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/me/preferences", responses((status = 200, description = "preferences")))]
pub async fn preferences(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let me = user_of(&p)?;
    let prefs = users(&state)?
        .preferences(&tenant, me)
        .await
        .map_err(user_error)?;
    Ok(api::ok(prefs))
}

/// Changes some of the caller's preferences (absent fields are kept).
#[utoipa::path(patch, path = "/api/v1/t/{tenant}/me/preferences", responses((status = 200, description = "preferences"), (status = 400, description = "invalid")))]
pub async fn update_preferences(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<PreferencesPatch>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let me = user_of(&p)?;
    let prefs = users(&state)?
        .update_preferences(&tenant, me, body.0)
        .await
        .map_err(user_error)?;
    Ok(api::ok(prefs))
}

/// `?limit=` (1–200, default 50) of each kind.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LimitQuery {
    /// Most entries of each kind.
    pub limit: Option<usize>,
}

/// The caller's own history: portfolio changes they made and their auth
/// audit rows, newest first.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/me/activity", params(LimitQuery), responses((status = 200, description = "activity")))]
pub async fn activity(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    query: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let me = user_of(&p)?;
    let a = users(&state)?
        .activity(&tenant, me, query.limit.unwrap_or(50))
        .await
        .map_err(user_error)?;
    Ok(api::ok(a))
}

/// Imports the caller's portfolios from a browser-app JSON export (see
/// `rampart_portfolio::import_json` for the schema): item by item
/// created / skipped (imported before) / refused; any refused item → 422
/// with the report and nothing applied.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/me/import", responses((status = 200, description = "report"), (status = 400, description = "not an export"), (status = 422, description = "refused items, nothing applied")))]
pub async fn import(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    require(&p, Permission::PortfolioWrite)?;
    let actor = Actor {
        user_id: user_of(&p)?,
        tenant_admin: p.role == Role::Admin && authorize(&p, Permission::TenantAdmin).is_ok(),
        ip: req.peer_addr().map(|a| a.ip().to_string()),
    };
    let report = PortfolioService::new(state.tenants.clone())
        .import_json(&tenant, &actor, &body)
        .await
        .map_err(user_error)?;
    if !report.applied {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "import_rejected",
            format!(
                "{} of {} portfolios are invalid; nothing was applied",
                report.refused,
                report.items.len()
            ),
        )
        .with_details(serde_json::to_value(&report).unwrap_or_default()));
    }
    Ok(api::ok(report))
}

/// Pagination parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Opaque cursor from the previous page's `meta.nextCursor`.
    pub cursor: Option<String>,
    /// Page size (1–100, default 20).
    pub limit: Option<usize>,
}

/// Users of the tenant (`users:manage`), cursor-paginated.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/users", params(PageQuery), responses((status = 200, description = "a page of users"), (status = 403, description = "needs users:manage")))]
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    require(&p, Permission::UsersManage)?;
    let page = users(&state)?
        .list(&tenant, page.cursor.as_deref(), page.limit.unwrap_or(20))
        .await
        .map_err(user_error)?;
    Ok(api::page(page.items, page.next))
}

/// A new role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `admin`, `trader` or `viewer`.
    pub role: String,
}

/// Changes a user's role (`users:manage`; not one's own).
#[utoipa::path(put, path = "/api/v1/t/{tenant}/users/{id}/role", responses((status = 200, description = "profile"), (status = 400, description = "unknown role or own role"), (status = 404, description = "no such user")))]
pub async fn set_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    body: api::JsonObject<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let p = principal(&req, &state, &tenant).await?;
    require(&p, Permission::UsersManage)?;
    let me = user_of(&p)?;
    let profile = users(&state)?
        .set_role(&tenant, me, id, &body.role)
        .await
        .map_err(user_error)?;
    Ok(api::ok(profile))
}

/// A new status.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `active` or `disabled`.
    pub status: String,
}

/// Disables or re-enables a user (`users:manage`; not oneself). Disabling
/// revokes the user's sessions, refresh tokens and access tokens at once.
#[utoipa::path(put, path = "/api/v1/t/{tenant}/users/{id}/status", responses((status = 200, description = "profile"), (status = 400, description = "unknown status or oneself"), (status = 404, description = "no such user")))]
pub async fn set_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    body: api::JsonObject<StatusBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let p = principal(&req, &state, &tenant).await?;
    require(&p, Permission::UsersManage)?;
    let me = user_of(&p)?;
    let active = match body.status.as_str() {
        "active" => true,
        "disabled" => false,
        _ => return Err(ApiError::bad_request("status: active or disabled")),
    };
    let profile = users(&state)?
        .set_active(&tenant, me, id, active)
        .await
        .map_err(user_error)?;
    if !active {
        // Its access tokens were revoked in the same transaction: make every
        // request re-read them instead of trusting a cached verdict.
        if let Some(auth) = &state.auth {
            auth.access_tokens_revoked_elsewhere();
        }
    }
    Ok(api::ok(profile))
}
