//! The OpenAPI 3 document, generated from the handlers (utoipa), served at
//! `/openapi.json` and printed by `rampart openapi`.
use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart",
        description = "Multi-tenant trading and portfolio platform"
    ),
    paths(
        crate::routes::health::health,
        crate::routes::health::ready,
        crate::routes::admin::metrics,
        crate::routes::admin::whoami,
        crate::routes::admin::list_tenants,
        crate::routes::admin::provision,
        crate::routes::admin::tenant,
        crate::routes::admin::lifecycle,
        crate::routes::admin::migrate,
        crate::routes::admin::audit,
        crate::routes::admin::keys,
        crate::routes::admin::rotate_keys,
        crate::routes::admin::revoke_key,
        crate::routes::api_v1::me,
        crate::routes::api_v1::sessions,
        crate::routes::api_v1::revoke_session,
        crate::routes::api_v1::quote,
        crate::routes::notify::register,
        crate::routes::notify::resend_verification,
        crate::routes::notify::confirm_email,
        crate::routes::notify::forgot_password,
        crate::routes::notify::reset_password,
        crate::routes::notify::list_alerts,
        crate::routes::notify::create_alert,
        crate::routes::notify::get_alert,
        crate::routes::notify::delete_alert,
        crate::routes::admin_page::health,
        crate::routes::account::change_password,
        crate::routes::account::begin_totp,
        crate::routes::account::confirm_totp,
        crate::routes::account::disable_totp,
        crate::routes::account::revoke_other_sessions,
        crate::routes::account::logout,
        crate::routes::account::create_api_key,
        crate::routes::account::list_api_keys,
        crate::routes::account::revoke_api_key,
        crate::routes::members::list_members,
        crate::routes::members::upsert_member,
        crate::routes::members::preview_import,
        crate::routes::members::commit_import,
        crate::routes::members::attach_broker,
        crate::routes::members::detach_broker,
        crate::routes::members::leaderboard,
        crate::routes::members::leaderboard_opt_out,
        crate::routes::members::trigger_snapshot,
        crate::routes::portfolios::list,
        crate::routes::portfolios::create,
        crate::routes::portfolios::get,
        crate::routes::portfolios::update,
        crate::routes::portfolios::delete,
        crate::routes::portfolios::add_position,
        crate::routes::portfolios::update_position,
        crate::routes::portfolios::remove_position,
        crate::routes::portfolios::versions,
        crate::routes::portfolios::version,
        crate::routes::portfolios::shares,
        crate::routes::portfolios::share,
        crate::routes::portfolios::revoke,
        crate::routes::portfolios::comments,
        crate::routes::portfolios::comment,
        crate::routes::portfolios::activity,
        crate::routes::portfolios::export_csv,
        crate::routes::portfolios::import_csv,
        crate::routes::portfolios::analytics,
        crate::routes::portfolios::performance_csv,
        crate::routes::portfolios::equity_chart,
        crate::routes::portfolios::returns_chart,
        crate::routes::users::profile,
        crate::routes::users::update_profile,
        crate::routes::users::preferences,
        crate::routes::users::update_preferences,
        crate::routes::users::activity,
        crate::routes::users::import,
        crate::routes::users::list_users,
        crate::routes::users::set_role,
        crate::routes::users::set_status,
        crate::routes::market_api::quotes,
        crate::routes::market_api::bars,
        crate::routes::market_api::search,
        crate::routes::stream::stream,
    ),
    components(schemas(
        crate::api::ErrorBody,
        crate::api::Meta,
        crate::routes::health::Readiness,
        crate::routes::health::Dependency,
        crate::routes::admin::ProvisionBody,
        crate::routes::admin::LifecycleBody,
        crate::routes::admin::RotateBody,
    ))
)]
pub struct ApiDoc;

/// The document as JSON text.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}

/// Registers `/openapi.json`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(serve));
}

async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
