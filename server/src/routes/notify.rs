//! E-mail notifications over HTTP, on [`rampart_notify::Notifier`]:
//! registration with a verification link, confirming an address,
//! account recovery (forgot → link → new password), price alerts (CRUD),
//! and the two jobs that mail new-device login alerts and fired price
//! alerts.
//!
//! | route | auth |
//! |---|---|
//! | `POST /api/v1/t/{tenant}/register` | none; the tenant's registration policy; `202` and a mail either way |
//! | `POST /api/v1/t/{tenant}/email/verification` | bearer; mails a new link |
//! | `GET /api/v1/t/{tenant}/email/verify?token=` | the link itself |
//! | `POST /api/v1/t/{tenant}/password/forgot` | none; `202` whether or not the address exists |
//! | `GET /api/v1/t/{tenant}/password/reset?token=` | the link: a form for the new password |
//! | `POST /api/v1/t/{tenant}/password/reset` | the token (JSON or form); revokes every session |
//! | `GET, POST /api/v1/t/{tenant}/price-alerts`, `GET, DELETE …/price-alerts/{id}` | bearer, `market:read`, own alerts only |
//!
//! The configuration is the server's `[notify]` section; the jobs are in
//! `crate::jobs`.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web::{delete, get, post};
use rampart_auth::ClientContext;
use rampart_auth::accounts::SelfRegistration;
use rampart_notify::{NewPriceAlert, Notifier};
use rampart_tenancy::TenantSlug;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::api::{self, JsonObject};
use crate::error::ApiError;
use crate::extract::{self, User, perm};
use crate::pages;
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    // Paths under the tenant API scope, no nested scope (see `api_v1`).
    cfg.service(register)
        .service(resend_verification)
        .service(confirm_email)
        .service(forgot_password)
        .route("/password/reset", web::get().to(reset_form))
        .service(reset_password)
        .service(list_alerts)
        .service(create_alert)
        .service(get_alert)
        .service(delete_alert);
}

fn notifier(state: &AppState) -> Result<Notifier, ApiError> {
    Ok(Notifier::new(
        state.tenants.clone(),
        state.config.notify.clone(),
    )?)
}

/// The client context of a reset: the device is the user agent (see
/// `rampart_notify::devices`).
fn reset_context(req: &HttpRequest) -> ClientContext {
    let mut ctx = extract::client_context(req);
    if ctx.ip.is_empty() {
        ctx.ip = "unknown".into();
    }
    ctx.device = ctx
        .user_agent
        .as_deref()
        .map(|u| u.chars().take(64).collect());
    ctx
}

/// `/api/v1/t/{tenant}/…` of the routes that take no credential.
#[derive(Debug, Deserialize)]
pub struct TenantPath {
    /// The tenant.
    pub tenant: TenantSlug,
}

/// Body of `POST …/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterBody {
    /// E-mail address (the login name).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Password (the auth crate's policy applies).
    pub password: String,
}

/// Self-service registration under the tenant's registration policy
/// (`closed` → 403 `registration_closed`, `invitation_only` → 403
/// `invitation_required`, `open` to other domains → 403
/// `email_domain_not_allowed`). A new address becomes an unverified
/// `viewer` and is mailed a verification link; an address that has an
/// account is mailed a password reset link instead. The answer is the same
/// `202` either way and comes before the relay is spoken to, so it never
/// tells whether the address has an account.
#[utoipa::path(request_body = RegisterBody, responses((status = 202, description = "accepted; a message was mailed to the address"), (status = 400, description = "invalid address or weak password"), (status = 403, description = "registration_closed, invitation_required or email_domain_not_allowed")))]
#[post("/register")]
pub async fn register(
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
    body: JsonObject<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant;
    let display_name = body.display_name.trim();
    if display_name.is_empty() || display_name.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "displayName must be 1–100 characters",
        ));
    }
    let outcome = state
        .auth
        .accounts()
        .self_register(&tenant, &body.email, display_name, &body.password)
        .await?;
    let notifier = notifier(&state)?;
    let email = body.into_inner().email;
    tokio::spawn(async move {
        let sent = match outcome {
            SelfRegistration::Created(user) => notifier
                .send_verification(&tenant, user.id)
                .await
                .map(|_| ()),
            SelfRegistration::Existing(_) => notifier.request_password_reset(&tenant, &email).await,
        };
        if let Err(e) = sent {
            tracing::warn!(%tenant, error = %e, "registration mail");
        }
    });
    Ok(api::ok_status(
        StatusCode::ACCEPTED,
        serde_json::json!({"accepted": true}),
    ))
}

/// Mails the caller a new verification link (at most one a minute).
#[utoipa::path(responses((status = 200, description = "whether a link was sent (not when verified or sent in the last minute)"), (status = 401, description = "no valid token")))]
#[post("/email/verification")]
pub async fn resend_verification(
    user: User,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sent = notifier(&state)?
        .send_verification(&user.tenant, user.id)
        .await?;
    Ok(api::ok(serde_json::json!({"sent": sent})))
}

/// The `token` of a link.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TokenQuery {
    /// `"{id}.{secret}"` from the message.
    pub token: String,
}

/// Confirms an address from the link in a verification message.
#[utoipa::path(params(TokenQuery), responses((status = 200, description = "verified"), (status = 400, description = "invalid, used or expired link")))]
#[get("/email/verify")]
pub async fn confirm_email(
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let user_id = notifier(&state)?
        .confirm_email(&path.tenant, &query.token)
        .await?;
    Ok(api::ok(
        serde_json::json!({"verified": true, "userId": user_id}),
    ))
}

/// Body of `POST …/password/forgot`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    /// The account's e-mail address.
    pub email: String,
}

/// Starts account recovery: mails a reset link if the address belongs to an
/// active account. The answer is the same either way, and is given before
/// the relay is spoken to, so neither its content nor its timing tells
/// whether the account exists.
#[utoipa::path(request_body = ForgotBody, responses((status = 202, description = "a link was mailed if the account exists")))]
#[post("/password/forgot")]
pub async fn forgot_password(
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
    body: JsonObject<ForgotBody>,
) -> Result<HttpResponse, ApiError> {
    let notifier = notifier(&state)?;
    let tenant = path.into_inner().tenant;
    let email = body.into_inner().email;
    tokio::spawn(async move {
        if let Err(e) = notifier.request_password_reset(&tenant, &email).await {
            tracing::warn!(%tenant, error = %e, "password reset mail");
        }
    });
    Ok(api::ok_status(
        StatusCode::ACCEPTED,
        serde_json::json!({"accepted": true}),
    ))
}

/// The page a reset link opens: a form that posts the token and the new
/// password back to the same path.
pub async fn reset_form(
    path: web::Path<TenantPath>,
    query: web::Query<TokenQuery>,
) -> HttpResponse {
    pages::reset_form(&path.tenant, &query.token)
}

/// Body of `POST …/password/reset` (JSON or an HTML form).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// The token from the link.
    pub token: String,
    /// The new password.
    pub password: String,
}

/// Sets a new password from a reset link; every session of the account is
/// revoked and the link is spent.
#[utoipa::path(request_body = ResetBody, responses((status = 200, description = "password changed, sessions revoked"), (status = 400, description = "invalid link or weak password")))]
#[post("/password/reset")]
pub async fn reset_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
    body: web::Either<web::Json<ResetBody>, web::Form<ResetBody>>,
) -> Result<HttpResponse, ApiError> {
    let body = match body {
        web::Either::Left(j) => j.into_inner(),
        web::Either::Right(f) => f.into_inner(),
    };
    notifier(&state)?
        .reset_password(
            &state.auth,
            &path.tenant,
            &body.token,
            &body.password,
            &reset_context(&req),
        )
        .await?;
    Ok(api::ok(serde_json::json!({"passwordChanged": true})))
}

/// The owner of price alerts: a user with `market:read`.
type AlertOwner = User<perm::MarketRead>;

/// `…/price-alerts/{id}`.
#[derive(Debug, Deserialize)]
pub struct AlertPath {
    /// The alert.
    pub id: Uuid,
}

/// The caller's price alerts, newest first.
#[utoipa::path(responses((status = 200, description = "alerts"), (status = 401, description = "no valid token")))]
#[get("/price-alerts")]
pub async fn list_alerts(
    owner: AlertOwner,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let alerts = notifier(&state)?
        .list_price_alerts(&owner.tenant, owner.id)
        .await?;
    Ok(api::ok(alerts))
}

/// Creates a price alert: `{"symbol", "direction": "above"|"below", "threshold", "note"?}`.
#[utoipa::path(responses((status = 201, description = "created"), (status = 400, description = "malformed symbol or threshold"), (status = 409, description = "too many alerts")))]
#[post("/price-alerts")]
pub async fn create_alert(
    owner: AlertOwner,
    state: web::Data<AppState>,
    body: JsonObject<NewPriceAlert>,
) -> Result<HttpResponse, ApiError> {
    let alert = notifier(&state)?
        .create_price_alert(&owner.tenant, owner.id, &body)
        .await?;
    Ok(api::ok_status(StatusCode::CREATED, alert))
}

/// One of the caller's price alerts.
#[utoipa::path(responses((status = 200, description = "the alert"), (status = 404, description = "not the caller's")))]
#[get("/price-alerts/{id}")]
pub async fn get_alert(
    owner: AlertOwner,
    state: web::Data<AppState>,
    path: web::Path<AlertPath>,
) -> Result<HttpResponse, ApiError> {
    let alert = notifier(&state)?
        .price_alert(&owner.tenant, owner.id, path.id)
        .await?;
    Ok(api::ok(alert))
}

/// Deletes one of the caller's price alerts.
#[utoipa::path(responses((status = 200, description = "deleted"), (status = 404, description = "not the caller's")))]
#[delete("/price-alerts/{id}")]
pub async fn delete_alert(
    owner: AlertOwner,
    state: web::Data<AppState>,
    path: web::Path<AlertPath>,
) -> Result<HttpResponse, ApiError> {
    notifier(&state)?
        .delete_price_alert(&owner.tenant, owner.id, path.id)
        .await?;
    Ok(api::ok(serde_json::json!({"deleted": path.id})))
}
