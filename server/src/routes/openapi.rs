//! `GET /openapi.json`: the OpenAPI document of [`crate::openapi`].
use actix_web::{HttpResponse, web};

/// Registers `/openapi.json`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(serve));
}

async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::document())
}
