//! The tenant admin web page: plain server-rendered HTML with a little
//! vanilla JavaScript (no build step), on the public listener.
//!
//! - `GET /t/{tenant}/admin/` the page; `GET /t/{tenant}/admin/callback` the
//!   same page as the OAuth redirect target (the script finishes the login);
//!   `GET /t/{tenant}/admin/admin.js`, `…/admin.css` and `…/favicon.svg` its assets
//!   (`server/assets/admin/`, compiled in). The page's CSP allows only these
//!   same-origin files: no inline script or style. Images may also be
//!   `blob:` URLs: the Portfolios panel fetches the SVG charts with the
//!   bearer token and shows them as `<img>` (an SVG in `<img>` runs no
//!   script).
//! - `GET /api/v1/t/{tenant}/admin/health` this tenant's health and usage
//!   (bearer token of the tenant, admin role with `tenant:admin`).
//!
//! Login is the tenant's own OAuth 2.1 authorization code flow with PKCE
//! (S256) from the browser, as the public client [`CLIENT_ID`], registered
//! when the tenant is provisioned (`crate::admin_console`; the anonymous
//! page only checks it). Its one redirect URI
//! is `{public_base_url}/t/{tenant}/admin/callback`: the configured base,
//! not the request's `Host`, so a forged `Host` can never register a
//! redirect target elsewhere. Open the page at `public_base_url` (the
//! script links there when opened under another origin). The access token
//! lives in `sessionStorage` of that tab only; the API enforces the admin
//! role on every call, the page only explains a refusal.
use actix_web::get;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use rampart_tenancy::TenantSlug;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api;
use crate::error::ApiError;
use crate::extract::{Caller, perm};
use crate::pages;
use crate::state::AppState;

pub use crate::admin_console::{CLIENT_ID, SCOPE, redirect_uri};

const ADMIN_JS: &str = include_str!("../../assets/admin/admin.js");
const ADMIN_CSS: &str = include_str!("../../assets/admin/admin.css");
const FAVICON: &str = include_str!("../../assets/admin/favicon.svg");

/// Registers the page's API route (under the tenant API scope).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health);
}

/// Registers the page and its assets (plain routes with full paths, no
/// `web::scope`).
pub fn configure_pages(cfg: &mut ServiceConfig) {
    cfg.route("/t/{tenant}/admin", web::get().to(to_slash))
        .route("/t/{tenant}/admin/", web::get().to(page))
        .route("/t/{tenant}/admin/callback", web::get().to(page))
        .route("/t/{tenant}/admin/admin.js", web::get().to(script))
        .route("/t/{tenant}/admin/admin.css", web::get().to(stylesheet))
        .route("/t/{tenant}/admin/favicon.svg", web::get().to(favicon));
}

async fn to_slash(tenant: web::Path<String>) -> HttpResponse {
    let Ok(tenant) = TenantSlug::parse(&tenant) else {
        return pages::admin_problem("", StatusCode::NOT_FOUND, "Not found", "No such tenant.");
    };
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, format!("/t/{tenant}/admin/")))
        .finish()
}

async fn page(state: web::Data<AppState>, tenant: web::Path<String>) -> HttpResponse {
    let Ok(tenant) = TenantSlug::parse(&tenant) else {
        return pages::admin_problem("", StatusCode::NOT_FOUND, "Not found", "No such tenant.");
    };
    match crate::admin_console::sign_in(&state, &tenant, crate::admin_console::ADMIN).await {
        Ok(sign_in) => pages::admin_page(
            StatusCode::OK,
            &tenant,
            Some(&sign_in.login()),
            pages::admin_console(&tenant),
        ),
        Err(no) => pages::admin_problem(&tenant, no.status, no.title, &no.text),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type(content_type)
        .body(body)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", ADMIN_JS)
}

async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", ADMIN_CSS)
}

async fn favicon() -> HttpResponse {
    asset("image/svg+xml", FAVICON)
}

/// This tenant's health (reachability, migrations, probe latency) and
/// usage (schema size, connection checkouts).
#[utoipa::path(responses((status = 200, description = "health and usage"), (status = 401, description = "no valid token"), (status = 403, description = "not a tenant admin")))]
#[get("/admin/health")]
pub async fn health(
    admin: Caller<perm::TenantAdmin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &admin.tenant;
    let health = state.tenants.health(tenant).await?;
    let usage = match state.tenants.usage(tenant).await {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::warn!(tenant = %tenant.as_str(), error = %e, "tenant usage unavailable");
            None
        }
    };
    Ok(api::ok(serde_json::json!({
        "tenant": tenant.as_str(),
        "health": health,
        "usage": usage.map(|u| serde_json::json!({
            "schemaBytes": u.schema_bytes,
            "checkouts": u.checkouts,
            "tables": u.tables.len(),
        })),
    })))
}
