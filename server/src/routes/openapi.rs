//! `GET /openapi.json`: the OpenAPI document of [`crate::openapi`].
use actix_web::{HttpResponse, web};
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers `/openapi.json`.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(serve));
}

async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::document())
}
