//! `/api/v1`: the versioned JSON API (a later `/api/v2` can live beside it).
//! Every route is tenant-scoped (`/api/v1/t/{tenant}/…`) and authenticated
//! with a bearer access token issued by that tenant; a token of another
//! tenant is refused like a missing one, so nothing reveals whether a
//! tenant or resource exists elsewhere.
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use rampart_auth::{AuthError, Permission, Principal, authorize};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{self, ApiError};
use crate::app::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Plain routes, not a `web::scope`: a scope would claim every path under
    // its prefix and hide the routes other files register there.
    cfg.route("/api/v1/t/{tenant}/me", web::get().to(me))
        .route("/api/v1/t/{tenant}/sessions", web::get().to(sessions))
        .route(
            "/api/v1/t/{tenant}/sessions/{id}",
            web::delete().to(revoke_session),
        )
        .route("/api/v1/t/{tenant}/quotes/{symbol}", web::get().to(quote));
}

pub(crate) fn auth_error(e: AuthError) -> ApiError {
    match e.http_status() {
        401 => {
            let mut err = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid access token is required",
            );
            err.details = None;
            err
        }
        403 => ApiError::new(StatusCode::FORBIDDEN, "forbidden", "not allowed"),
        404 => ApiError::not_found(),
        429 => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests",
        ),
        s if s >= 500 => ApiError::internal(&e),
        _ => ApiError::bad_request(e.public_description()),
    }
}

/// The caller, from `Authorization: Bearer …`, verified for `tenant`.
pub(crate) async fn principal(
    req: &HttpRequest,
    state: &AppState,
    tenant: &str,
) -> Result<Principal, ApiError> {
    let auth = state.auth.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "authentication is not configured",
        )
    })?;
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| auth_error(AuthError::InvalidToken("missing bearer token".into())))?;
    let principal = auth
        .authenticate_bearer(tenant, token)
        .await
        .map_err(auth_error)?;
    if let Some(m) = req.app_data::<web::Data<AppState>>() {
        m.metrics
            .auth_events
            .with_label_values(&["bearer", "ok"])
            .inc();
    }
    Ok(principal)
}

pub(crate) fn require(principal: &Principal, permission: Permission) -> Result<(), ApiError> {
    authorize(principal, permission).map_err(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("needs {}", permission.scope()),
        )
    })
}

pub(crate) fn user_of(principal: &Principal) -> Result<Uuid, ApiError> {
    principal.user_id.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "user_required",
            "this route needs a user, not a machine client",
        )
    })
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/me", responses((status = 200, description = "profile"), (status = 401, description = "no valid token")))]
pub async fn me(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let auth = state.auth.as_ref().ok_or_else(ApiError::not_found)?;
    let user = auth.user(&tenant, user_id).await.map_err(auth_error)?;
    Ok(api::ok(
        serde_json::json!({"user": user, "role": p.role, "scopes": p.scopes, "client_id": p.client_id}),
    ))
}

/// Pagination parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Opaque cursor from the previous page's `meta.nextCursor`.
    pub cursor: Option<String>,
    /// Page size (1–100, default 20).
    pub limit: Option<usize>,
}

fn decode_cursor(cursor: &str) -> Result<Uuid, ApiError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ApiError::bad_request("malformed cursor"))?;
    Uuid::from_slice(&bytes).map_err(|_| ApiError::bad_request("malformed cursor"))
}

fn encode_cursor(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// The caller's sessions, newest first, cursor-paginated.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/sessions", params(PageQuery), responses((status = 200, description = "a page of sessions")))]
pub async fn sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let limit = page.limit.unwrap_or(20).clamp(1, 100);
    let after = page.cursor.as_deref().map(decode_cursor).transpose()?;
    let auth = state.auth.as_ref().ok_or_else(ApiError::not_found)?;
    let mut all = auth
        .list_sessions(&tenant, user_id)
        .await
        .map_err(auth_error)?;
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
        .then(|| items.last().map(|s| encode_cursor(s.id)))
        .flatten();
    Ok(api::page(items, next))
}

/// Revokes one of the caller's sessions (and its refresh tokens).
#[utoipa::path(delete, path = "/api/v1/t/{tenant}/sessions/{id}", responses((status = 200, description = "revoked"), (status = 404, description = "not the caller's session")))]
pub async fn revoke_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let auth = state.auth.as_ref().ok_or_else(ApiError::not_found)?;
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let ua = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ctx = rampart_auth::ClientContext {
        ip,
        device: None,
        user_agent: ua,
    };
    auth.revoke_session(&tenant, user_id, id, &ctx)
        .await
        .map_err(auth_error)?;
    Ok(api::ok(serde_json::json!({"revoked": id})))
}

/// A quote through the market chain; says who served it and how old it is.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/quotes/{symbol}", responses((status = 200, description = "quote")))]
pub async fn quote(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, symbol) = path.into_inner();
    let p = principal(&req, &state, &tenant).await?;
    require(&p, Permission::MarketRead)?;
    if symbol.is_empty()
        || symbol.len() > 32
        || !symbol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".^-=".contains(c))
    {
        return Err(ApiError::bad_request("malformed symbol"));
    }
    match state.market.quote(&symbol).await {
        Ok(served) => {
            let mut res = api::ok(serde_json::json!({
                "quote": served.value,
                "source": served.source,
                "ageMs": served.age.as_millis() as u64,
                "stale": served.stale,
            }));
            if served.stale {
                crate::routes::market_api::mark_stale(&mut res, served.age);
            }
            Ok(res)
        }
        Err(rampart_market::MarketError::UnknownSymbol { .. }) => Err(ApiError::not_found()),
        Err(e) => {
            tracing::warn!(error = %e, "quote failed");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "market_unavailable",
                "no provider could answer",
            );
            err.retry_after = Some(5);
            Err(err)
        }
    }
}
