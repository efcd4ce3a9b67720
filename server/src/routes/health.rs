//! `/health` (liveness) and `/ready` (dependencies), on both listeners.
use actix_web::get;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api;
use crate::middleware::Listener;
use crate::readiness::PublicReadiness;
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health).service(ready);
}

/// Liveness: the process answers.
#[utoipa::path(responses((status = 200, description = "alive")))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    api::ok(serde_json::json!({"status": "ok"}))
}

/// Readiness. On the public listener only `ready` or `unavailable`; on the
/// admin listener (mutual TLS) every dependency's state and what failed.
/// Probed at most once a second.
#[utoipa::path(responses((status = 200, description = "ready (possibly degraded); the admin listener adds the dependencies' states (`Readiness`)", body = PublicReadiness), (status = 503, description = "PostgreSQL unreachable", body = PublicReadiness)))]
#[get("/ready")]
pub async fn ready(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let report = state.ready_report().await;
    let status = if report.serving() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let admin = req
        .app_data::<web::Data<Listener>>()
        .is_some_and(|l| l.0 == "admin");
    if admin {
        api::ok_status(status, report)
    } else {
        api::ok_status(status, report.public())
    }
}
