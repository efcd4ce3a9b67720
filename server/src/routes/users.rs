//! `/api/v1/t/{tenant}/me/…` and `/api/v1/t/{tenant}/users…`: the caller's
//! profile, preferences (typed, with defaults), own activity and the import
//! of a browser-app JSON export; a tenant administrator's user management
//! (`users:manage`): list users, change a role, disable or enable a user.
//! Over [`rampart_portfolio::UserService`] and
//! [`rampart_portfolio::PortfolioService::import_json`].
use actix_web::{HttpResponse, web};
use actix_web::{get, patch, post, put};
use rampart_portfolio::{PortfolioService, PreferencesPatch, ProfilePatch, UserService};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{self, JsonObject};
use crate::error::ApiError;
use crate::extract::{Caller, PageQuery, User, perm};
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(profile)
        .service(update_profile)
        .service(preferences)
        .service(update_preferences)
        .service(activity)
        .service(import)
        .service(list_users)
        .service(set_role)
        .service(set_status);
}

fn users(state: &AppState) -> UserService {
    UserService::new(state.tenants.clone(), &state.auth)
}

/// The caller's profile.
#[utoipa::path(responses((status = 200, description = "profile"), (status = 401, description = "no valid token")))]
#[get("/me/profile")]
pub async fn profile(user: User, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let own = users(&state).profile(&user.tenant, user.id).await?;
    Ok(api::ok(own))
}

/// Changes the caller's display name.
#[utoipa::path(responses((status = 200, description = "profile"), (status = 400, description = "invalid")))]
#[patch("/me/profile")]
pub async fn update_profile(
    user: User,
    state: web::Data<AppState>,
    body: JsonObject<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let changed = users(&state)
        .update_profile(&user.tenant, user.id, body.0)
        .await?;
    Ok(api::ok(changed))
}

/// The caller's preferences, defaults filled in.
#[utoipa::path(responses((status = 200, description = "preferences")))]
#[get("/me/preferences")]
pub async fn preferences(user: User, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let prefs = users(&state).preferences(&user.tenant, user.id).await?;
    Ok(api::ok(prefs))
}

/// Changes some of the caller's preferences (absent fields are kept).
#[utoipa::path(responses((status = 200, description = "preferences"), (status = 400, description = "invalid")))]
#[patch("/me/preferences")]
pub async fn update_preferences(
    user: User,
    state: web::Data<AppState>,
    body: JsonObject<PreferencesPatch>,
) -> Result<HttpResponse, ApiError> {
    let prefs = users(&state)
        .update_preferences(&user.tenant, user.id, body.0)
        .await?;
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
#[utoipa::path(params(LimitQuery), responses((status = 200, description = "activity")))]
#[get("/me/activity")]
pub async fn activity(
    user: User,
    state: web::Data<AppState>,
    query: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let a = users(&state)
        .activity(&user.tenant, user.id, query.limit.unwrap_or(50))
        .await?;
    Ok(api::ok(a))
}

/// Imports the caller's portfolios from a browser-app JSON export (see
/// `rampart_portfolio::import_json` for the schema): item by item
/// created / skipped (imported before) / refused; any refused item → 422
/// with the report and nothing applied.
#[utoipa::path(responses((status = 200, description = "report"), (status = 400, description = "not an export"), (status = 422, description = "refused items, nothing applied")))]
#[post("/me/import")]
pub async fn import(
    user: User<perm::PortfolioWrite>,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let report = PortfolioService::new(state.tenants.clone())
        .import_json(&user.tenant, &user.portfolio_actor(), &body)
        .await?;
    if !report.applied {
        let total = report.items.len();
        return Err(ApiError::import_rejected(
            report.refused,
            total,
            "portfolios",
            &report,
        ));
    }
    Ok(api::ok(report))
}

/// Users of the tenant (`users:manage`), cursor-paginated.
#[utoipa::path(params(PageQuery), responses((status = 200, description = "a page of users"), (status = 403, description = "needs users:manage")))]
#[get("/users")]
pub async fn list_users(
    caller: Caller<perm::UsersManage>,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (cursor, limit) = page.as_given();
    let service = users(&state);
    Ok(api::page_of(
        service.list(&caller.tenant, cursor, limit).await?,
    ))
}

/// `…/users/{id}/…`.
#[derive(Debug, Deserialize)]
pub struct UserPath {
    /// The user.
    pub id: rampart_auth::UserId,
}

/// A new role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `admin`, `trader` or `viewer`.
    pub role: String,
}

/// Changes a user's role (`users:manage`; not one's own).
#[utoipa::path(responses((status = 200, description = "profile"), (status = 400, description = "unknown role or own role"), (status = 404, description = "no such user")))]
#[put("/users/{id}/role")]
pub async fn set_role(
    admin: User<perm::UsersManage>,
    state: web::Data<AppState>,
    path: web::Path<UserPath>,
    body: JsonObject<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let changed = users(&state)
        .set_role(&admin.tenant, admin.id, path.id, &body.role)
        .await?;
    Ok(api::ok(changed))
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
#[utoipa::path(responses((status = 200, description = "profile"), (status = 400, description = "unknown status or oneself"), (status = 404, description = "no such user")))]
#[put("/users/{id}/status")]
pub async fn set_status(
    admin: User<perm::UsersManage>,
    state: web::Data<AppState>,
    path: web::Path<UserPath>,
    body: JsonObject<StatusBody>,
) -> Result<HttpResponse, ApiError> {
    let active = match body.status.as_str() {
        "active" => true,
        "disabled" => false,
        _ => return Err(ApiError::bad_request("status: active or disabled")),
    };
    let changed = users(&state)
        .set_active(&admin.tenant, admin.id, path.id, active)
        .await?;
    Ok(api::ok(changed))
}
