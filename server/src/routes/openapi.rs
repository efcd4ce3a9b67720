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
        crate::routes::admin::keys,
        crate::routes::admin::rotate_keys,
        crate::routes::admin::revoke_key,
        crate::routes::api_v1::me,
        crate::routes::api_v1::sessions,
        crate::routes::api_v1::revoke_session,
        crate::routes::api_v1::quote,
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
