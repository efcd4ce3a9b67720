//! The member page beside the admin page, on the same stack (maud frame,
//! the admin page's script and styles, its CSP): `GET /t/{tenant}/member/`
//! and `GET /t/{tenant}/member/callback` (the OAuth redirect target). A
//! member signs in with the tenant's OAuth 2.1 code flow with PKCE as the
//! public client [`MEMBER_CLIENT_ID`] (registered with the admin page's at
//! provisioning) and sees their equity chart (`me/portfolio.svg`), their
//! daily and total P&L (`me/portfolio`) and the leaderboard.
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use rampart_tenancy::TenantSlug;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::admin_console::{MEMBER_CLIENT_ID, MEMBER_SCOPE, member_redirect_uri};
use crate::pages;
use crate::state::AppState;

/// Registers the routes (plain routes with full paths, no `web::scope`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/t/{tenant}/member", web::get().to(to_slash))
        .route("/t/{tenant}/member/", web::get().to(page))
        .route("/t/{tenant}/member/callback", web::get().to(page));
}

fn problem(tenant: &str, status: StatusCode, title: &str, text: &str) -> HttpResponse {
    pages::member_page(
        status,
        tenant,
        None,
        maud::html! { section class="card" role="alert" { h1 { (title) } p { (text) } } },
    )
}

async fn to_slash(tenant: web::Path<String>) -> HttpResponse {
    let Ok(tenant) = TenantSlug::parse(&tenant) else {
        return problem("", StatusCode::NOT_FOUND, "Not found", "No such tenant.");
    };
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, format!("/t/{tenant}/member/")))
        .finish()
}

async fn page(state: web::Data<AppState>, tenant: web::Path<String>) -> HttpResponse {
    let Ok(tenant) = TenantSlug::parse(&tenant) else {
        return problem("", StatusCode::NOT_FOUND, "Not found", "No such tenant.");
    };
    if state.tenants.active_tenant(&tenant).await.is_err() {
        return problem(
            &tenant,
            StatusCode::NOT_FOUND,
            "Not found",
            "No such tenant, or it is not active.",
        );
    }
    let auth = &state.auth;
    let redirect = member_redirect_uri(&auth.config().public_base_url, &tenant);
    // Registered at provisioning (never by this anonymous GET): checked only.
    if let Err(e) = crate::admin_console::check_member_client(auth, &tenant, &redirect).await {
        tracing::error!(%tenant, error = %e, "member page: OAuth client unavailable");
        return problem(
            &tenant,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "The member page's OAuth client is not set up for this tenant; the server log says why.",
        );
    }
    let issuer = auth.issuer(&tenant);
    let login = pages::AdminLogin {
        client_id: MEMBER_CLIENT_ID,
        redirect_uri: &redirect,
        issuer: &issuer,
        scope: MEMBER_SCOPE,
    };
    pages::member_page(
        StatusCode::OK,
        &tenant,
        Some(&login),
        pages::member_view(&tenant),
    )
}
