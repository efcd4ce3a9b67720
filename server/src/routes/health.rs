//! `/health` (liveness) and `/ready` (dependencies), on both listeners.
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::api;
use crate::app::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready));
}

/// One dependency's state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dependency {
    /// Configured at all (Redis and Vault are optional in dev mode).
    pub configured: bool,
    /// Answered the probe (true when not configured).
    pub ok: bool,
    /// Probe time.
    pub latency_ms: f64,
    /// What failed (no secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Readiness of the server.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (serving, a dependency is down: Redis → in-memory
    /// limits and cache; Vault → secrets held in memory) or `unavailable`
    /// (PostgreSQL down).
    pub status: &'static str,
    /// Names of the dependencies that are down.
    pub degraded: Vec<&'static str>,
    /// PostgreSQL.
    pub postgres: Dependency,
    /// Redis.
    pub redis: Dependency,
    /// Vault.
    pub vault: Dependency,
    /// Seconds since start.
    pub uptime_secs: u64,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "alive")))]
pub async fn health() -> HttpResponse {
    api::ok(serde_json::json!({"status": "ok"}))
}

/// Readiness: PostgreSQL, Redis and Vault probed; degraded states named.
#[utoipa::path(get, path = "/ready", responses((status = 200, description = "ready or degraded", body = Readiness), (status = 503, description = "PostgreSQL unreachable", body = Readiness)))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let report = probe(&state).await;
    let status = if report.postgres.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    api::ok_status(status, report)
}

async fn timed<F: std::future::Future<Output = Result<(), String>>>(
    configured: bool,
    f: F,
) -> Dependency {
    if !configured {
        return Dependency {
            configured,
            ok: true,
            latency_ms: 0.0,
            detail: None,
        };
    }
    let started = Instant::now();
    let result = match tokio::time::timeout(Duration::from_secs(2), f).await {
        Ok(r) => r,
        Err(_) => Err("timed out".into()),
    };
    Dependency {
        configured,
        ok: result.is_ok(),
        latency_ms: started.elapsed().as_secs_f64() * 1e3,
        detail: result.err(),
    }
}

/// Probes every dependency (used by `/ready` and the metrics gauges).
pub async fn probe(state: &AppState) -> Readiness {
    let pool_status = state.tenants.pool_status();
    for (label, v) in [
        ("size", pool_status.size),
        ("available", pool_status.available),
        ("waiting", pool_status.waiting),
        ("max", pool_status.max_size),
    ] {
        state
            .metrics
            .db_pool
            .with_label_values(&[label])
            .set(v as i64);
    }
    let postgres = timed(true, async {
        let mut conn = state
            .tenants
            .raw_pool()
            .get()
            .await
            .map_err(|e| e.to_string())?;
        diesel::sql_query("SELECT 1")
            .execute(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    })
    .await;
    let redis = timed(state.redis.is_some(), async {
        let client = state.redis.as_ref().ok_or("not configured")?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    })
    .await;
    let vault = timed(state.vault.is_some(), async {
        let store = state.vault.as_ref().ok_or("not configured")?;
        if store.health().is_ok() {
            Ok(())
        } else {
            Err(format!("{:?}", store.health()))
        }
    })
    .await;
    let mut degraded = Vec::new();
    for (name, dep) in [
        ("postgres", &postgres),
        ("redis", &redis),
        ("vault", &vault),
    ] {
        if !dep.ok {
            degraded.push(name);
        }
    }
    Readiness {
        status: if !postgres.ok {
            "unavailable"
        } else if degraded.is_empty() {
            "ready"
        } else {
            "degraded"
        },
        degraded,
        postgres,
        redis,
        vault,
        uptime_secs: state.started.elapsed().as_secs(),
    }
}
