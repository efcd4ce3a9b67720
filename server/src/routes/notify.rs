//! E-mail notifications over HTTP, on [`rampart_notify::Notifier`]:
//! registration with a verification link, confirming an address,
//! account recovery (forgot → link → new password), price alerts (CRUD),
//! and the two jobs that mail new-device login alerts and fired price
//! alerts.
//!
//! | route | auth |
//! |---|---|
//! | `POST /api/v1/t/{tenant}/register` | none; mails a verification link |
//! | `POST /api/v1/t/{tenant}/email/verification` | bearer; mails a new link |
//! | `GET /api/v1/t/{tenant}/email/verify?token=` | the link itself |
//! | `POST /api/v1/t/{tenant}/password/forgot` | none; `202` whether or not the address exists |
//! | `GET /api/v1/t/{tenant}/password/reset?token=` | the link: a form for the new password |
//! | `POST /api/v1/t/{tenant}/password/reset` | the token (JSON or form); revokes every session |
//! | `GET, POST /api/v1/t/{tenant}/price-alerts`, `GET, DELETE …/price-alerts/{id}` | bearer, `market:read`, own alerts only |
//!
//! The configuration is the server's `[notify]` section.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rampart_auth::{AuthError, ClientContext, Permission, Role};
use rampart_notify::{NewPriceAlert, Notifier, NotifyConfig, NotifyError};
use serde::Deserialize;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::api::{self, ApiError};
use crate::app::AppState;
use crate::routes::api_v1::{auth_error, principal, require, user_of};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Plain routes with full paths, not a `web::scope` (see `api_v1`).
    cfg.route("/api/v1/t/{tenant}/register", web::post().to(register))
        .route(
            "/api/v1/t/{tenant}/email/verification",
            web::post().to(resend_verification),
        )
        .route(
            "/api/v1/t/{tenant}/email/verify",
            web::get().to(confirm_email),
        )
        .route(
            "/api/v1/t/{tenant}/password/forgot",
            web::post().to(forgot_password),
        )
        .route(
            "/api/v1/t/{tenant}/password/reset",
            web::get().to(reset_form),
        )
        .route(
            "/api/v1/t/{tenant}/password/reset",
            web::post().to(reset_password),
        )
        .route(
            "/api/v1/t/{tenant}/price-alerts",
            web::get().to(list_alerts),
        )
        .route(
            "/api/v1/t/{tenant}/price-alerts",
            web::post().to(create_alert),
        )
        .route(
            "/api/v1/t/{tenant}/price-alerts/{id}",
            web::get().to(get_alert),
        )
        .route(
            "/api/v1/t/{tenant}/price-alerts/{id}",
            web::delete().to(delete_alert),
        );
}

fn config(state: &AppState) -> NotifyConfig {
    state.config.notify.clone()
}

fn notifier(state: &AppState) -> Result<Notifier, NotifyError> {
    Notifier::new(state.tenants.clone(), config(state))
}

fn notify_error(e: NotifyError) -> ApiError {
    match e {
        NotifyError::InvalidRequest(m) => ApiError::bad_request(m),
        NotifyError::InvalidToken => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "the link is invalid or has expired",
        ),
        NotifyError::NotFound(_) => ApiError::not_found(),
        NotifyError::Limit(m) => ApiError::new(StatusCode::CONFLICT, "limit_reached", m),
        NotifyError::Auth(e) => auth_error(e),
        NotifyError::Tenancy(e) => e.into(),
        e @ NotifyError::Smtp(_) => {
            tracing::warn!(error = %e, "mail relay");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "mail_unavailable",
                "the message could not be sent; try again later",
            );
            err.retry_after = Some(60);
            err
        }
        e => ApiError::internal(&e),
    }
}

fn client_context(req: &HttpRequest) -> ClientContext {
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let ua = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ClientContext {
        ip,
        device: ua.as_deref().map(|u| u.chars().take(64).collect()),
        user_agent: ua,
    }
}

fn auth_server(state: &AppState) -> Result<&rampart_auth::AuthServer, ApiError> {
    state.auth.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "authentication is not configured",
        )
    })
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

/// Registers a `viewer` account and mails it a verification link. A relay
/// failure does not undo the account (`verificationSent: false`; the user
/// can ask for a new link).
#[utoipa::path(post, path = "/api/v1/t/{tenant}/register", request_body = RegisterBody, responses((status = 201, description = "registered; link mailed"), (status = 400, description = "invalid address or weak password"), (status = 409, description = "address already registered")))]
pub async fn register(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let auth = auth_server(&state)?;
    let display_name = body.display_name.trim();
    if display_name.is_empty() || display_name.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "displayName must be 1–100 characters",
        ));
    }
    let user = auth
        .register(
            &tenant,
            &body.email,
            display_name,
            &body.password,
            Role::Viewer,
        )
        .await
        .map_err(|e| match e {
            AuthError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "e-mail already registered",
            ),
            e => auth_error(e),
        })?;
    let sent = match notifier(&state) {
        Ok(n) => n.send_verification(&tenant, user.id).await,
        Err(e) => Err(e),
    };
    let sent = sent.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "verification mail after registration");
        false
    });
    Ok(api::ok_status(
        StatusCode::CREATED,
        serde_json::json!({"user": user, "verificationSent": sent}),
    ))
}

/// Mails the caller a new verification link (at most one a minute).
#[utoipa::path(post, path = "/api/v1/t/{tenant}/email/verification", responses((status = 200, description = "whether a link was sent (not when verified or sent in the last minute)"), (status = 401, description = "no valid token")))]
pub async fn resend_verification(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user_id = user_of(&p)?;
    let sent = notifier(&state)
        .map_err(notify_error)?
        .send_verification(&tenant, user_id)
        .await
        .map_err(notify_error)?;
    Ok(api::ok(serde_json::json!({"sent": sent})))
}

/// The `token` of a link.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TokenQuery {
    /// `"{id}.{secret}"` from the message.
    pub token: String,
}

/// Confirms an address from the link in a verification message.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/email/verify", params(TokenQuery), responses((status = 200, description = "verified"), (status = 400, description = "invalid, used or expired link")))]
pub async fn confirm_email(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let user_id = notifier(&state)
        .map_err(notify_error)?
        .confirm_email(&tenant, &query.token)
        .await
        .map_err(notify_error)?;
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
#[utoipa::path(post, path = "/api/v1/t/{tenant}/password/forgot", request_body = ForgotBody, responses((status = 202, description = "a link was mailed if the account exists")))]
pub async fn forgot_password(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<ForgotBody>,
) -> Result<HttpResponse, ApiError> {
    let notifier = notifier(&state).map_err(notify_error)?;
    let tenant = tenant.into_inner();
    let email = body.into_inner().email;
    tokio::spawn(async move {
        if let Err(e) = notifier.request_password_reset(&tenant, &email).await {
            tracing::warn!(tenant, error = %e, "password reset mail");
        }
    });
    Ok(api::ok_status(
        StatusCode::ACCEPTED,
        serde_json::json!({"accepted": true}),
    ))
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The page a reset link opens: a form that posts the token and the new
/// password back to the same path.
pub async fn reset_form(tenant: web::Path<String>, query: web::Query<TokenQuery>) -> HttpResponse {
    let action = format!("/api/v1/t/{}/password/reset", html_escape(&tenant));
    let token = html_escape(&query.token);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Choose a new password</title></head><body>\
             <h1>Choose a new password</h1>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <label>New password <input type=\"password\" name=\"password\" \
             autocomplete=\"new-password\" minlength=\"12\" required></label>\
             <button type=\"submit\">Set password</button></form></body></html>"
        ))
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
#[utoipa::path(post, path = "/api/v1/t/{tenant}/password/reset", request_body = ResetBody, responses((status = 200, description = "password changed, sessions revoked"), (status = 400, description = "invalid link or weak password")))]
pub async fn reset_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: web::Either<web::Json<ResetBody>, web::Form<ResetBody>>,
) -> Result<HttpResponse, ApiError> {
    let body = match body {
        web::Either::Left(j) => j.into_inner(),
        web::Either::Right(f) => f.into_inner(),
    };
    let auth = auth_server(&state)?;
    notifier(&state)
        .map_err(notify_error)?
        .reset_password(
            auth,
            &tenant,
            &body.token,
            &body.password,
            &client_context(&req),
        )
        .await
        .map_err(notify_error)?;
    Ok(api::ok(serde_json::json!({"passwordChanged": true})))
}

async fn alert_owner(
    req: &HttpRequest,
    state: &AppState,
    tenant: &str,
) -> Result<(Uuid, Notifier), ApiError> {
    let p = principal(req, state, tenant).await?;
    require(&p, Permission::MarketRead)?;
    let user_id = user_of(&p)?;
    Ok((user_id, notifier(state).map_err(notify_error)?))
}

/// The caller's price alerts, newest first.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/price-alerts", responses((status = 200, description = "alerts"), (status = 401, description = "no valid token")))]
pub async fn list_alerts(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, n) = alert_owner(&req, &state, &tenant).await?;
    let alerts = n
        .list_price_alerts(&tenant, user_id)
        .await
        .map_err(notify_error)?;
    Ok(api::ok(alerts))
}

/// Creates a price alert: `{"symbol", "direction": "above"|"below", "threshold", "note"?}`.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/price-alerts", responses((status = 201, description = "created"), (status = 400, description = "malformed symbol or threshold"), (status = 409, description = "too many alerts")))]
pub async fn create_alert(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<NewPriceAlert>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, n) = alert_owner(&req, &state, &tenant).await?;
    let alert = n
        .create_price_alert(&tenant, user_id, &body)
        .await
        .map_err(notify_error)?;
    Ok(api::ok_status(StatusCode::CREATED, alert))
}

/// One of the caller's price alerts.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/price-alerts/{id}", responses((status = 200, description = "the alert"), (status = 404, description = "not the caller's")))]
pub async fn get_alert(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let (user_id, n) = alert_owner(&req, &state, &tenant).await?;
    let alert = n
        .price_alert(&tenant, user_id, id)
        .await
        .map_err(notify_error)?;
    Ok(api::ok(alert))
}

/// Deletes one of the caller's price alerts.
#[utoipa::path(delete, path = "/api/v1/t/{tenant}/price-alerts/{id}", responses((status = 200, description = "deleted"), (status = 404, description = "not the caller's")))]
pub async fn delete_alert(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let (user_id, n) = alert_owner(&req, &state, &tenant).await?;
    n.delete_price_alert(&tenant, user_id, id)
        .await
        .map_err(notify_error)?;
    Ok(api::ok(serde_json::json!({"deleted": id})))
}

/// One pass of the price-alert job over every active tenant; returns how
/// many alerts fired.
pub async fn run_price_alerts_once(state: &AppState) -> Result<usize, NotifyError> {
    notifier(state)?.check_price_alerts_all(&state.market).await
}

/// One pass of the new-device check over every active tenant; returns how
/// many alerts were mailed.
pub async fn run_login_alerts_once(state: &AppState) -> Result<usize, NotifyError> {
    notifier(state)?.check_new_logins_all().await
}

fn every(secs: u64) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(Duration::from_secs(secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick
}

/// Checks price alerts against the market chain every
/// `price_check_secs`; each alert is mailed once, across replicas too.
pub fn spawn_price_alert_job(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = every(config(&state).price_check_secs);
        loop {
            tick.tick().await;
            if let Err(e) = run_price_alerts_once(&state).await {
                tracing::warn!(error = %e, "price alert job");
            }
        }
    })
}

/// Mails new-device login alerts every `login_check_secs` (see
/// `rampart_notify::devices` for what a device is).
pub fn spawn_login_alert_job(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = every(config(&state).login_check_secs);
        loop {
            tick.tick().await;
            if let Err(e) = run_login_alerts_once(&state).await {
                tracing::warn!(error = %e, "new-device alert job");
            }
        }
    })
}
