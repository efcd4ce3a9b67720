//! `/health` (liveness) and `/ready` (dependencies), on both listeners.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::api;
use crate::readiness::{self, Readiness};
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready));
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "alive")))]
pub async fn health() -> HttpResponse {
    api::ok(serde_json::json!({"status": "ok"}))
}

/// Readiness: PostgreSQL, Redis and Vault probed; degraded states named.
#[utoipa::path(get, path = "/ready", responses((status = 200, description = "ready or degraded", body = Readiness), (status = 503, description = "PostgreSQL unreachable", body = Readiness)))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let report = readiness::probe(&state).await;
    let status = if report.postgres.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    api::ok_status(status, report)
}
