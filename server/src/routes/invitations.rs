//! Invitations over HTTP, on [`rampart_auth::InvitationService`]: a tenant
//! administrator (`users:manage`) invites users and added members, lists,
//! re-sends and revokes invitations (`/api/v1/t/{tenant}/invitations…`);
//! the invited person accepts with the link's token — as JSON
//! (`POST …/invitations/accept`) or on the page the link opens
//! (`GET`/`POST /t/{tenant}/invite/{token}`). The link is mailed when SMTP
//! is configured, otherwise returned once to the inviter.
use rampart_tenancy::TenantSlug;
use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use actix_web::{delete, get, post};
use rampart_auth::invitation::NewInvitation;
use rampart_auth::{AuthError, Role};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::api::{self, JsonObject, OptionalJson};
use crate::error::ApiError;
use crate::extract::{Caller, perm};
use crate::onboarding::{self, Delivered};
use crate::pages;
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(invite)
        .service(accept)
        .service(resend)
        .service(revoke);
}

/// Registers the invitation page (outside the tenant API scope).
pub fn configure_pages(cfg: &mut ServiceConfig) {
    cfg.route("/t/{tenant}/invite/{token}", web::get().to(page))
        .route("/t/{tenant}/invite/{token}", web::post().to(page_accept));
}

/// A tenant administrator: `users:manage` on this tenant.
type Admin = Caller<perm::UsersManage>;

/// `/api/v1/t/{tenant}/invitations/{id}`.
#[derive(Debug, Deserialize)]
pub struct InvitationPath {
    /// The tenant.
    pub tenant: TenantSlug,
    /// The invitation.
    pub id: Uuid,
}

/// Body of `POST …/invitations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteBody {
    /// E-mail address: a new user, or a member added as `pending`.
    pub email: String,
    /// Display name of a new user.
    #[serde(default)]
    pub name: String,
    /// One of the tenant's roles (`GET …/roles`) but `api_user`.
    pub role: String,
    /// Lifetime in hours (1–720, default 168).
    pub expires_in_hours: Option<u32>,
}

/// Body of `POST …/invitations/{id}/resend`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResendBody {
    /// Lifetime in hours of the new link (1–720, default 168).
    pub expires_in_hours: Option<u32>,
}

/// Body of `POST …/invitations/accept`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// The link's token (`{id}.{secret}`).
    pub token: String,
    /// The password to set (the password policy applies).
    pub password: String,
}

/// Any role of the tenant but the machine clients' (whether the tenant has
/// it is checked when inviting: 400 `unknown_role`).
fn role(name: &str) -> Result<Role, ApiError> {
    match Role::parse(name.trim()) {
        Some(r) if r != Role::ApiUser => Ok(r),
        _ => Err(ApiError::bad_request(
            "role must be one of the tenant's roles (GET …/roles), not api_user",
        )),
    }
}

async fn delivered(
    state: &AppState,
    tenant: &TenantSlug,
    issued: rampart_auth::invitation::IssuedInvitation,
) -> Result<Delivered, ApiError> {
    Ok(onboarding::deliver(&state.config, &state.tenants, tenant, issued).await?)
}

/// Invites a user (or a member added as `pending`) with a role; the link is
/// mailed when SMTP is configured, else returned once as `acceptUrl`.
#[utoipa::path(request_body = InviteBody, responses((status = 201, description = "invited"), (status = 400, description = "invalid"), (status = 409, description = "a user with this address exists")))]
#[post("/invitations")]
pub async fn invite(
    admin: Admin,
    state: web::Data<AppState>,
    body: JsonObject<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let who = NewInvitation {
        email: body.email.clone(),
        display_name: body.name.clone(),
        role: role(&body.role)?,
        ttl_hours: body.expires_in_hours,
    };
    let issued = state
        .auth
        .invitations()
        .invite(&admin.tenant, &who, &admin.actor())
        .await?;
    let out = delivered(&state, &admin.tenant, issued).await?;
    Ok(api::ok_status(StatusCode::CREATED, out))
}

/// The tenant's invitations with their status, newest first (no links).
#[utoipa::path(responses((status = 200, description = "invitations")))]
#[get("/invitations")]
pub async fn list(admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state.auth.invitations().list(&admin.tenant).await?;
    Ok(api::ok(
        all.into_iter().map(Delivered::listed).collect::<Vec<_>>(),
    ))
}

/// A new link for an invitation not yet accepted (the old link stops
/// working; a revoked or expired invitation comes back).
#[utoipa::path(request_body = ResendBody, responses((status = 200, description = "re-sent"), (status = 404, description = "unknown"), (status = 409, description = "accepted already")))]
#[post("/invitations/{id}/resend")]
pub async fn resend(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<InvitationPath>,
    body: OptionalJson<ResendBody>,
) -> Result<HttpResponse, ApiError> {
    let ttl = body.0.unwrap_or_default().expires_in_hours;
    let issued = state
        .auth
        .invitations()
        .resend(&admin.tenant, path.id, ttl, &admin.actor())
        .await?;
    Ok(api::ok(delivered(&state, &admin.tenant, issued).await?))
}

/// Revokes an invitation not yet accepted.
#[utoipa::path(responses((status = 200, description = "revoked"), (status = 404, description = "unknown"), (status = 409, description = "accepted already")))]
#[delete("/invitations/{id}")]
pub async fn revoke(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<InvitationPath>,
) -> Result<HttpResponse, ApiError> {
    let inv = state
        .auth
        .invitations()
        .revoke(&admin.tenant, path.id, &admin.actor())
        .await?;
    Ok(api::ok(Delivered::listed(inv)))
}

/// `/api/v1/t/{tenant}/…` of the public route.
#[derive(Debug, Deserialize)]
pub struct TenantPath {
    /// The tenant.
    pub tenant: TenantSlug,
}

fn next_steps(state: &AppState, tenant: &TenantSlug) -> serde_json::Value {
    let base = state.config.public_base_url.trim_end_matches('/');
    serde_json::json!({
        "issuer": state.auth.issuer(tenant),
        "mfaEnrolment": format!("{base}/api/v1/t/{tenant}/account/mfa/totp"),
    })
}

/// Accepts an invitation: sets the password, verifies the address and
/// activates the user. Expired, revoked, used and unknown links are refused
/// (`invitation_expired`, `invitation_revoked`, `invitation_used`,
/// `invitation_invalid`); accepting twice answers `invitation_used` and
/// creates nothing.
#[utoipa::path(request_body = AcceptBody, responses((status = 200, description = "accepted; sign in"), (status = 400, description = "weak password"), (status = 404, description = "invalid link"), (status = 409, description = "accepted already"), (status = 410, description = "expired or revoked")))]
#[post("/invitations/accept")]
pub async fn accept(
    state: web::Data<AppState>,
    path: web::Path<TenantPath>,
    body: JsonObject<AcceptBody>,
) -> Result<HttpResponse, ApiError> {
    let accepted = state
        .auth
        .invitations()
        .accept(&path.tenant, &body.token, &body.password)
        .await?;
    Ok(api::ok(serde_json::json!({
        "user": accepted,
        "next": next_steps(&state, &path.tenant),
    })))
}

/// `/t/{tenant}/invite/{token}`.
#[derive(Debug, Deserialize)]
pub struct PagePath {
    /// The tenant.
    pub tenant: String,
    /// The link's token.
    pub token: String,
}

/// What a refused link says on the page.
fn refusal_text(e: &AuthError) -> Option<&'static str> {
    match e {
        AuthError::InvitationInvalid => Some("This invitation link is not valid."),
        AuthError::InvitationExpired => {
            Some("This invitation has expired. Ask your administrator to send it again.")
        }
        AuthError::InvitationRevoked => Some("This invitation was withdrawn."),
        AuthError::InvitationUsed => {
            Some("This invitation was accepted already. Sign in with your password.")
        }
        e if e.is_unknown_tenant() => Some("This invitation link is not valid."),
        _ => None,
    }
}

fn refused_page(e: AuthError) -> Result<HttpResponse, ApiError> {
    let Some(text) = refusal_text(&e) else {
        return Err(e.into());
    };
    let status = ApiError::from(e).status;
    let mut page = pages::sign_in_page("Invitation", pages::message(text));
    *page.status_mut() = status;
    Ok(page)
}

/// The page a link opens: the invited address and a password form.
async fn page(
    state: web::Data<AppState>,
    path: web::Path<PagePath>,
) -> Result<HttpResponse, ApiError> {
    let tenant = match TenantSlug::parse(&path.tenant) {
        Ok(t) => t,
        Err(e) => return refused_page(e.into()),
    };
    match state.auth.invitations().check(&tenant, &path.token).await {
        Ok(inv) => Ok(pages::sign_in_page(
            "Accept your invitation",
            pages::invite_form(&path.tenant, &path.token, &inv.email, None),
        )),
        Err(e) => refused_page(e),
    }
}

/// The form's answer: two equal passwords, then as [`accept`].
async fn page_accept(
    state: web::Data<AppState>,
    path: web::Path<PagePath>,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let tenant = match TenantSlug::parse(&path.tenant) {
        Ok(t) => t,
        Err(e) => return refused_page(e.into()),
    };
    let invitations = state.auth.invitations();
    let inv = match invitations.check(&tenant, &path.token).await {
        Ok(inv) => inv,
        Err(e) => return refused_page(e),
    };
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let again = form.get("password_again").map(String::as_str).unwrap_or("");
    let retry = |error: &str| {
        let mut page = pages::sign_in_page(
            "Accept your invitation",
            pages::invite_form(&path.tenant, &path.token, &inv.email, Some(error)),
        );
        *page.status_mut() = StatusCode::BAD_REQUEST;
        Ok(page)
    };
    if password != again {
        return retry("The two passwords differ.");
    }
    match invitations.accept(&tenant, &path.token, password).await {
        Ok(_) => {
            let next = next_steps(&state, &tenant);
            Ok(pages::sign_in_page(
                "Welcome",
                pages::invite_accepted(
                    &inv.email,
                    next["mfaEnrolment"].as_str().unwrap_or_default(),
                ),
            ))
        }
        Err(AuthError::WeakPassword(why)) => retry(&format!("Choose another password: {why}.")),
        Err(e) => refused_page(e),
    }
}
