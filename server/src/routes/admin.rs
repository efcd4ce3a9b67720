//! The admin listener's routes (mutual TLS required by the listener; each
//! handler also insists on the client identity and records it as the actor).
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use actix_web::{get, post};
use rampart_tenancy::TenantSlug;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{self, JsonObject, OptionalJson};
use crate::error::ApiError;
use crate::extract::Operator;
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(metrics)
        .service(whoami)
        .service(list_tenants)
        .service(provision)
        .service(migrate)
        .service(tenant)
        .service(lifecycle)
        .service(audit)
        .service(keys)
        .service(rotate_keys)
        .service(revoke_key);
}

/// Prometheus exposition of the server's metrics.
#[utoipa::path(responses((status = 200, description = "Prometheus text format")))]
#[get("/metrics")]
pub async fn metrics(
    _operator: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.ready_report().await;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&[])))
}

/// Who the server thinks is calling (subject, SANs, fingerprint).
#[utoipa::path(responses((status = 200, description = "client identity")))]
#[get("/admin/whoami")]
pub async fn whoami(operator: Operator) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(operator.0))
}

/// All tenants.
#[utoipa::path(responses((status = 200, description = "tenants")))]
#[get("/admin/tenants")]
pub async fn list_tenants(
    _operator: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(state.tenants.list().await?))
}

/// Body of `POST /admin/tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionBody {
    /// Slug: lowercase `[a-z][a-z0-9_]{2,39}`.
    pub slug: String,
    /// Display name.
    pub display_name: String,
    /// Migrated first.
    #[serde(default)]
    pub canary: bool,
    /// The first administrator's e-mail: invited at once (the link is
    /// mailed when SMTP is configured, else answered as
    /// `invitation.acceptUrl`).
    #[serde(default)]
    pub admin_email: Option<String>,
}

/// Provisions a tenant.
#[utoipa::path(request_body = ProvisionBody, responses((status = 201, description = "provisioned"), (status = 409, description = "exists")))]
#[post("/admin/tenants")]
pub async fn provision(
    who: Operator,
    state: web::Data<AppState>,
    body: JsonObject<ProvisionBody>,
) -> Result<HttpResponse, ApiError> {
    // The crate refuses it too, but as a configuration error (a 500).
    let name = body.display_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::bad_request("display_name: 1 to 200 characters"));
    }
    let started = std::time::Instant::now();
    let options = rampart_tenancy::ProvisionOptions {
        canary: body.canary,
        actor: Some(who.actor()),
        ..Default::default()
    };
    let result = match TenantSlug::parse(&body.slug) {
        Ok(slug) => {
            state
                .tenants
                .provision_with(&slug, &body.display_name, options)
                .await
        }
        Err(e) => Err(e),
    };
    state
        .metrics
        .provision_seconds
        .with_label_values(&[if result.is_ok() { "ok" } else { "error" }])
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(operator = %who.0.subject, slug = %body.slug, ok = result.is_ok(), "tenant provisioning");
    let provisioned = result?;
    // The admin page's OAuth client exists from the start.
    crate::admin_console::ensure_client(&state.auth, &provisioned.slug)
        .await
        .map_err(|e| ApiError::internal(&std::io::Error::other(e)))?;
    let Some(email) = body.admin_email.as_deref() else {
        return Ok(api::ok_status(StatusCode::CREATED, provisioned));
    };
    let issued =
        crate::onboarding::invite_first_admin(&state.auth, &provisioned.slug, email, &who.actor())
            .await?;
    let invitation =
        crate::onboarding::deliver(&state.config, &state.tenants, &provisioned.slug, issued)
            .await?;
    let mut out = serde_json::to_value(&provisioned).map_err(|e| ApiError::internal(&e))?;
    out["invitation"] = serde_json::to_value(&invitation).map_err(|e| ApiError::internal(&e))?;
    Ok(api::ok_status(StatusCode::CREATED, out))
}

/// One tenant with its health and usage.
#[utoipa::path(responses((status = 200, description = "tenant"), (status = 404, description = "unknown")))]
#[get("/admin/tenants/{slug}")]
pub async fn tenant(
    _operator: Operator,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    let tenant = state.tenants.tenant(&slug).await?;
    let health = state.tenants.health(&slug).await?;
    let usage = state.tenants.usage(&slug).await.ok();
    Ok(api::ok(
        serde_json::json!({"tenant": tenant, "health": health, "usage": usage}),
    ))
}

/// Longest retention of a deactivated tenant (100 years).
const MAX_RETENTION_DAYS: u32 = 36_500;

/// Body of lifecycle actions.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleBody {
    /// Why (suspend).
    #[serde(default)]
    pub reason: String,
    /// Retention in days (deactivate), at most 36500.
    #[schema(maximum = 36500)]
    pub retention_days: Option<u32>,
    /// Purge before the retention deadline.
    #[serde(default)]
    pub force: bool,
}

/// suspend | resume | deactivate | reactivate | purge.
#[utoipa::path(request_body = LifecycleBody, responses((status = 200, description = "new state"), (status = 409, description = "transition refused")))]
#[post("/admin/tenants/{slug}/{action}")]
pub async fn lifecycle(
    operator: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: OptionalJson<LifecycleBody>,
) -> Result<HttpResponse, ApiError> {
    let who = operator.actor();
    let (slug, action) = path.into_inner();
    let body = body.0.unwrap_or_default();
    // The deadline is now + retention: far enough out, chrono's date
    // arithmetic panics.
    if body.retention_days.is_some_and(|d| d > MAX_RETENTION_DAYS) {
        return Err(ApiError::bad_request(format!(
            "retention_days: at most {MAX_RETENTION_DAYS}"
        )));
    }
    let t = &state.tenants;
    // Parsed in the one arm that runs: an unknown action stays a 404.
    let slug = || TenantSlug::parse(&slug);
    let changed = match action.as_str() {
        "suspend" => t.suspend(&slug()?, &body.reason, Some(&who)).await?,
        "resume" => t.resume(&slug()?, Some(&who)).await?,
        "deactivate" => {
            t.deactivate(
                &slug()?,
                body.retention_days
                    .map(|d| chrono::Duration::days(i64::from(d))),
                Some(&who),
            )
            .await?
        }
        "reactivate" => t.reactivate(&slug()?, Some(&who)).await?,
        "purge" => t.purge(&slug()?, body.force, Some(&who)).await?,
        _ => return Err(ApiError::not_found()),
    };
    Ok(api::ok(changed))
}

/// Migrates every tenant to the newest template and reports.
#[utoipa::path(responses((status = 200, description = "report")))]
#[post("/admin/tenants/migrate")]
pub async fn migrate(who: Operator, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    tracing::info!(operator = %who.0.subject, "migrate all tenants");
    Ok(api::ok(state.tenants.migrate_all().await?))
}

/// The published keys (JWKS: next, active and retired public keys).
#[utoipa::path(responses((status = 200, description = "JWKS")))]
#[get("/admin/keys")]
pub async fn keys(
    _operator: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(state.keys.jwks()))
}

/// Body of `POST /admin/keys/rotate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// `es256` (default), `rs256` or `tenant_encryption`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// Rotates a key chain now: the published next key starts signing.
#[utoipa::path(request_body = RotateBody, responses((status = 200, description = "rotated")))]
#[post("/admin/keys/rotate")]
pub async fn rotate_keys(
    who: Operator,
    state: web::Data<AppState>,
    body: OptionalJson<RotateBody>,
) -> Result<HttpResponse, ApiError> {
    let kind = match body
        .0
        .as_ref()
        .and_then(|b| b.kind.as_deref())
        .unwrap_or("es256")
    {
        "es256" => rampart_auth::KeyKind::Es256,
        "rs256" => rampart_auth::KeyKind::Rs256,
        "tenant_encryption" => rampart_auth::KeyKind::TenantEncryption,
        other => return Err(ApiError::bad_request(format!("unknown key kind {other:?}"))),
    };
    let ring = &state.keys;
    ring.rotate_now(kind).await?;
    tracing::warn!(operator = %who.0.subject, ?kind, "key rotated by operator");
    Ok(api::ok(ring.jwks()))
}

/// Emergency revoke: the key stops verifying at once.
#[utoipa::path(responses((status = 200, description = "revoked"), (status = 404, description = "unknown key")))]
#[post("/admin/keys/{kid}/revoke")]
pub async fn revoke_key(
    who: Operator,
    state: web::Data<AppState>,
    kid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ring = &state.keys;
    ring.revoke(&kid).await?;
    tracing::warn!(operator = %who.0.subject, kid = %kid, "key revoked by operator");
    Ok(api::ok(ring.jwks()))
}

/// Query of `GET /admin/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// How many of the newest records (1–1000, default 100).
    pub limit: Option<i64>,
}

/// The admin audit trail: every change made on this listener, newest first,
/// with the operator's certificate identity.
#[utoipa::path(params(AuditQuery), responses((status = 200, description = "records")))]
#[get("/admin/audit")]
pub async fn audit(
    _operator: Operator,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(
        state.tenants.admin_actions(q.limit.unwrap_or(100)).await?,
    ))
}
