//! The member page beside the admin page, on the same stack (maud frame,
//! the admin page's script and styles, its CSP): `GET /t/{tenant}/member/`
//! and `GET /t/{tenant}/member/callback` (the OAuth redirect target). A
//! member signs in with the tenant's OAuth 2.1 code flow with PKCE as the
//! public client [`MEMBER_CLIENT_ID`](crate::admin_console::MEMBER_CLIENT_ID) (registered with the admin page's at
//! provisioning) and sees their equity chart (`me/portfolio.svg`), their
//! daily and total P&L (`me/portfolio`) and the leaderboard.
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use rampart_tenancy::TenantSlug;
use utoipa_actix_web::service_config::ServiceConfig;

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
    match crate::admin_console::sign_in(&state, &tenant, crate::admin_console::MEMBER).await {
        Ok(sign_in) => pages::member_page(
            StatusCode::OK,
            &tenant,
            Some(&sign_in.login()),
            pages::member_view(&tenant),
        ),
        Err(no) => problem(&tenant, no.status, no.title, &no.text),
    }
}
