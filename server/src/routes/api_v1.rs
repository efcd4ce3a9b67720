//! `/api/v1`: the versioned JSON API (a later `/api/v2` can live beside it).
//! Every route is tenant-scoped (`/api/v1/t/{tenant}/…`) and authenticated
//! with a bearer access token issued by that tenant; a token of another
//! tenant is refused like a missing one, so nothing reveals whether a
//! tenant or resource exists elsewhere.
use actix_web::{HttpResponse, web};
use actix_web::{delete, get};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::api;
use crate::error::ApiError;
use crate::extract::{Caller, PageQuery, User, decode_cursor_bytes, encode_cursor, perm};
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    // Paths under the tenant API scope (`crate::listeners`), no nested
    // scope: a scope would claim every path under its prefix and hide the
    // routes other files register there.
    cfg.service(me)
        .service(sessions)
        .service(revoke_session)
        .service(quote);
}

/// The caller's profile, role, what the role may do now (`permissions`)
/// and the token's scopes.
#[utoipa::path(responses((status = 200, description = "profile"), (status = 401, description = "no valid token")))]
#[get("/me")]
pub async fn me(user: User, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let profile = state.auth.user(&user.tenant, user.id).await?;
    let p = &user.principal;
    let permissions: Vec<&str> = p.permissions.iter().map(|p| p.scope()).collect();
    Ok(api::ok(serde_json::json!({
        "user": profile, "role": p.role, "permissions": permissions,
        "scopes": p.scopes, "client_id": p.client_id
    })))
}

/// The caller's sessions, newest first, cursor-paginated.
#[utoipa::path(params(PageQuery), responses((status = 200, description = "a page of sessions")))]
#[get("/sessions")]
pub async fn sessions(
    user: User,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit(20, 100);
    let after = match page.cursor.as_deref() {
        Some(c) => Some(
            Uuid::from_slice(&decode_cursor_bytes(c)?)
                .map_err(|_| ApiError::bad_request("malformed cursor"))?,
        ),
        None => None,
    };
    let mut all = state.auth.list_sessions(&user.tenant, user.id).await?;
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let start = match after {
        Some(id) => all
            .iter()
            .position(|s| s.id == id)
            .map(|i| i + 1)
            .ok_or_else(|| ApiError::bad_request("stale cursor"))?,
        None => 0,
    };
    let rest = &all[start.min(all.len())..];
    let items: Vec<_> = rest.iter().take(limit).cloned().collect();
    let next = (rest.len() > limit)
        .then(|| items.last().map(|s| encode_cursor(s.id.as_bytes())))
        .flatten();
    Ok(api::page(items, next))
}

/// `…/sessions/{id}`.
#[derive(Debug, Deserialize)]
pub struct SessionPath {
    /// The session.
    pub id: Uuid,
}

/// Revokes one of the caller's sessions (and its refresh tokens).
#[utoipa::path(responses((status = 200, description = "revoked"), (status = 404, description = "not the caller's session")))]
#[delete("/sessions/{id}")]
pub async fn revoke_session(
    user: User,
    state: web::Data<AppState>,
    path: web::Path<SessionPath>,
) -> Result<HttpResponse, ApiError> {
    state
        .auth
        .revoke_session(&user.tenant, user.id, path.id, &user.client)
        .await?;
    Ok(api::ok(serde_json::json!({"revoked": path.id})))
}

/// `…/quotes/{symbol}`.
#[derive(Debug, Deserialize)]
pub struct SymbolPath {
    /// The symbol.
    pub symbol: String,
}

/// A quote through the market chain; says who served it and how old it is.
#[utoipa::path(responses((status = 200, description = "quote")))]
#[get("/quotes/{symbol}")]
pub async fn quote(
    _caller: Caller<perm::MarketRead>,
    state: web::Data<AppState>,
    path: web::Path<SymbolPath>,
) -> Result<HttpResponse, ApiError> {
    let symbol = &path.symbol;
    if symbol.is_empty()
        || symbol.len() > 32
        || !symbol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".^-=".contains(c))
    {
        return Err(ApiError::bad_request("malformed symbol"));
    }
    let served = state.market.quote(symbol).await?;
    let mut res = api::ok(serde_json::json!({
        "quote": served.value,
        "source": served.source,
        "ageMs": served.age.as_millis() as u64,
        "stale": served.stale,
    }));
    if served.stale {
        api::mark_stale(&mut res, served.age);
    }
    Ok(res)
}
