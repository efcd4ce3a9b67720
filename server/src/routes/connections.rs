//! `/api/v1/t/{tenant}/me/connections[/{provider}]`: the caller's
//! connections to upstream providers (the tokens kept, sealed, when they
//! signed in through one; TradeStation's are what the TradeStation market
//! routes use). Listing never shows a token; deleting one disconnects
//! (the tokens are deleted and revoked at the provider, best effort).
use actix_web::{HttpResponse, web};
use actix_web::{delete, get};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api;
use crate::error::ApiError;
use crate::extract::{User, perm};
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_connections).service(disconnect);
}

/// `…/me/connections/{provider}`.
#[derive(Debug, Deserialize)]
pub struct ProviderPath {
    /// The upstream provider's name.
    pub provider: String,
}

/// The upstream providers the caller is connected to: provider, display
/// name, preset, granted scopes, when the access token expires (it is
/// refreshed on use), when connected. Never a token.
#[utoipa::path(responses((status = 200, description = "`connections`: provider, displayName, preset, scopes, accessExpiresAt, connectedAt, updatedAt"), (status = 401, description = "no valid token"), (status = 403, description = "not a user")))]
#[get("/me/connections")]
pub async fn list_connections(
    user: User<perm::Any>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let connections = state
        .auth
        .upstream()
        .connections(&user.tenant, user.id)
        .await?;
    Ok(api::ok(serde_json::json!({ "connections": connections })))
}

/// Disconnects the caller from an upstream provider: its tokens are deleted
/// here and revoked at the provider (best effort, when it has a revocation
/// endpoint). Signing in through the provider connects again.
#[utoipa::path(responses((status = 200, description = "disconnected"), (status = 404, description = "not connected to this provider")))]
#[delete("/me/connections/{provider}")]
pub async fn disconnect(
    user: User<perm::Any>,
    state: web::Data<AppState>,
    path: web::Path<ProviderPath>,
) -> Result<HttpResponse, ApiError> {
    state
        .auth
        .upstream()
        .disconnect(&user.tenant, user.id, &path.provider)
        .await?;
    Ok(api::ok(
        serde_json::json!({ "provider": path.provider, "disconnected": true }),
    ))
}
