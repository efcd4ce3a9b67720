//! `/api/v1/t/{tenant}/roles…`: a tenant's roles as data, over
//! [`rampart_auth::RoleService`]. Who may see the roles (`users:manage`,
//! to give them to users with `PUT …/users/{id}/role`) and who may change
//! them (`tenant:admin`: whoever changes a role's permissions can give
//! themselves any). A change applies to every credential of the role,
//! tokens and API keys issued before it included, within
//! `auth.role_cache_secs` on other replicas (at once on this one).
//!
//! | route | needs |
//! |---|---|
//! | `GET …/roles` | `users:manage` |
//! | `POST …/roles` (`{"name", "permissions", "description"}`) | `tenant:admin` |
//! | `PUT …/roles/{name}` (`{"permissions", "description"}`) | `tenant:admin` |
//! | `DELETE …/roles/{name}` (a tenant's own role no one has) | `tenant:admin` |
use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{delete, get, post, put};
use rampart_auth::{Role, RoleChange};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{self, Answer, JsonObject};
use crate::error::ApiError;
use crate::extract::{Caller, perm};
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(update)
        .service(delete);
}

/// Who changes roles: `tenant:admin`.
type Admin = Caller<perm::TenantAdmin>;

/// `…/roles/{name}`.
#[derive(Debug, Deserialize)]
pub struct RolePath {
    /// The role.
    pub name: String,
}

impl RolePath {
    /// The role named; a name that is no slug names no role (404).
    fn role(&self) -> Result<Role, ApiError> {
        Role::parse(&self.name).ok_or_else(ApiError::not_found)
    }
}

/// Body of `POST …/roles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleBody {
    /// A lowercase slug (`a-z`, `0-9`, `_`; starting with a letter; at most 32).
    pub name: String,
    /// Permission scopes (`portfolio:read`, `cases:write`, …).
    pub permissions: Vec<String>,
    /// What the role is for.
    pub description: Option<String>,
}

/// Body of `PUT …/roles/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoleBody {
    /// Every permission scope the role grants from now on.
    pub permissions: Vec<String>,
    /// What the role is for (absent: kept).
    pub description: Option<String>,
}

/// Every role of the tenant with its permissions, whether it is built in,
/// and how many users have it.
#[utoipa::path(responses((status = 200, description = "roles"), (status = 403, description = "needs users:manage")))]
#[get("/roles")]
pub async fn list(caller: Caller<perm::UsersManage>, state: web::Data<AppState>) -> Answer {
    Ok(api::ok(state.auth.roles().list(&caller.tenant).await?))
}

/// Creates a role of the tenant's own.
#[utoipa::path(request_body = CreateRoleBody, responses((status = 201, description = "the role"), (status = 400, description = "invalid name or unknown permission (unknown_permission)"), (status = 403, description = "needs tenant:admin"), (status = 409, description = "a role of this name exists")))]
#[post("/roles")]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: JsonObject<CreateRoleBody>,
) -> Answer {
    let body = body.into_inner();
    let role: Role = body.name.parse()?;
    let change = RoleChange {
        permissions: body.permissions,
        description: body.description,
    };
    let created = state
        .auth
        .roles()
        .create(&admin.tenant, role, &change, &admin.actor(), &admin.client)
        .await?;
    Ok(api::ok_status(StatusCode::CREATED, created))
}

/// Replaces a role's permissions (and description, if given).
#[utoipa::path(request_body = UpdateRoleBody, responses((status = 200, description = "the role"), (status = 400, description = "unknown permission (unknown_permission)"), (status = 403, description = "needs tenant:admin"), (status = 404, description = "no such role"), (status = 409, description = "no active user would keep tenant:admin and users:manage (role_lockout)")))]
#[put("/roles/{name}")]
pub async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<RolePath>,
    body: JsonObject<UpdateRoleBody>,
) -> Answer {
    let role = path.role()?;
    let body = body.into_inner();
    let change = RoleChange {
        permissions: body.permissions,
        description: body.description,
    };
    let updated = state
        .auth
        .roles()
        .update(&admin.tenant, role, &change, &admin.actor(), &admin.client)
        .await?;
    Ok(api::ok(updated))
}

/// Deletes a role of the tenant's own that no user, client or upstream
/// provider has.
#[utoipa::path(responses((status = 200, description = "deleted"), (status = 403, description = "needs tenant:admin"), (status = 404, description = "no such role"), (status = 409, description = "built in (role_built_in) or still assigned (role_in_use)")))]
#[delete("/roles/{name}")]
pub async fn delete(admin: Admin, state: web::Data<AppState>, path: web::Path<RolePath>) -> Answer {
    let role = path.role()?;
    state
        .auth
        .roles()
        .delete(&admin.tenant, role, &admin.actor(), &admin.client)
        .await?;
    Ok(api::ok(serde_json::json!({"deleted": role})))
}
