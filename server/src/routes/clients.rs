//! OAuth clients over HTTP, on [`rampart_auth::OAuthService`]: create,
//! list, show, change (name, redirect URIs, scopes), rotate a confidential
//! client's secret (answered once), disable and delete — for a tenant
//! administrator (`tenant:admin`, `/api/v1/t/{tenant}/clients…`) and for the
//! operator on the admin listener (`/admin/t/{tenant}/clients…`).
use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{delete, get, patch, post};
use rampart_auth::SigningAlg;
use rampart_auth::clients::ClientUpdate;
use rampart_auth::oauth::{ClientAuthMethod, ClientRegistration};
use rampart_tenancy::TenantSlug;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{self, Answer, JsonObject};
use crate::error::ApiError;
use crate::extract::{Caller, Operator, perm};
use crate::state::AppState;

/// Registers the tenant administrator's routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(show)
        .service(update)
        .service(delete)
        .service(rotate_secret)
        .service(disable);
}

/// Registers the admin listener's routes.
pub fn configure_admin(cfg: &mut ServiceConfig) {
    cfg.service(admin_list)
        .service(admin_create)
        .service(admin_show)
        .service(admin_update)
        .service(admin_delete)
        .service(admin_rotate_secret)
        .service(admin_disable);
}

/// A tenant administrator.
type Admin = Caller<perm::TenantAdmin>;
type State = web::Data<AppState>;
/// `…/clients/{client_id}` of either listener.
type Client = web::Path<ClientPath>;
type Update = JsonObject<ClientUpdate>;

/// `…/clients/{client_id}`.
#[derive(Debug, Deserialize)]
pub struct ClientPath {
    /// The tenant.
    pub tenant: TenantSlug,
    /// The client.
    pub client_id: String,
}

/// `/admin/t/{tenant}/clients`.
#[derive(Debug, Deserialize)]
pub struct TenantPath {
    /// The tenant.
    pub tenant: TenantSlug,
}

/// Body of `POST …/clients`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateClientBody {
    /// Client id, unique in the tenant (1–100 characters).
    pub client_id: String,
    /// Display name (shown on the sign-in page).
    pub name: String,
    /// Exact redirect URIs (loopback ones match any port).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Scopes it may ask for.
    pub allowed_scopes: Vec<String>,
    /// A confidential client (gets a secret, `client_secret_basic`); public
    /// clients use PKCE only.
    #[serde(default)]
    pub confidential: bool,
    /// Grant types (default `authorization_code`, `refresh_token`).
    pub grant_types: Option<Vec<String>>,
    /// `ES256` (default) or `RS256`.
    pub signing_alg: Option<String>,
}

impl CreateClientBody {
    /// The registration this body asks for.
    pub fn registration(&self) -> Result<ClientRegistration, ApiError> {
        let signing_alg = match self.signing_alg.as_deref() {
            None => SigningAlg::ES256,
            Some(alg) => SigningAlg::parse(alg)
                .ok_or_else(|| ApiError::bad_request("signingAlg: ES256 or RS256"))?,
        };
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ApiError::bad_request("name: 1 to 200 characters"));
        }
        Ok(ClientRegistration {
            client_id: self.client_id.trim().to_owned(),
            name: name.to_owned(),
            redirect_uris: self.redirect_uris.clone(),
            grant_types: self
                .grant_types
                .clone()
                .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]),
            allowed_scopes: self.allowed_scopes.clone(),
            auth_method: if self.confidential {
                ClientAuthMethod::ClientSecretBasic
            } else {
                ClientAuthMethod::None
            },
            signing_alg,
        })
    }
}

// ------------------------------------------------ shared by both listeners

async fn do_create(state: &AppState, tenant: &TenantSlug, body: &CreateClientBody) -> Answer {
    let reg = body.registration()?;
    let oauth = state.auth.oauth();
    let secret = oauth.register_client(tenant, &reg).await?;
    let client = oauth.client_info(tenant, &reg.client_id).await?;
    Ok(api::ok_status(
        StatusCode::CREATED,
        serde_json::json!({"client": client, "clientSecret": secret}),
    ))
}

async fn do_list(state: &AppState, tenant: &TenantSlug) -> Answer {
    Ok(api::ok(state.auth.oauth().list_clients(tenant).await?))
}

async fn do_show(state: &AppState, path: &ClientPath) -> Answer {
    let oauth = state.auth.oauth();
    Ok(api::ok(
        oauth.client_info(&path.tenant, &path.client_id).await?,
    ))
}

async fn do_update(state: &AppState, path: &ClientPath, body: &ClientUpdate, by: &str) -> Answer {
    let oauth = state.auth.oauth();
    let client = oauth.update_client(&path.tenant, &path.client_id, body, by);
    Ok(api::ok(client.await?))
}

async fn do_rotate(state: &AppState, path: &ClientPath, by: &str) -> Answer {
    let oauth = state.auth.oauth();
    let secret = oauth.rotate_client_secret(&path.tenant, &path.client_id, by);
    let secret = secret.await?;
    Ok(api::ok(
        serde_json::json!({"clientId": path.client_id, "clientSecret": secret}),
    ))
}

async fn do_disable(state: &AppState, path: &ClientPath, by: &str) -> Answer {
    let oauth = state.auth.oauth();
    let client = oauth.disable_client(&path.tenant, &path.client_id, by);
    Ok(api::ok(client.await?))
}

async fn do_delete(state: &AppState, path: &ClientPath, by: &str) -> Answer {
    let oauth = state.auth.oauth();
    oauth
        .delete_client(&path.tenant, &path.client_id, by)
        .await?;
    Ok(api::ok(
        serde_json::json!({"clientId": path.client_id, "deleted": true}),
    ))
}

// ------------------------------------------------ tenant administrator

/// Registers a client; a confidential one's secret is answered once.
#[utoipa::path(request_body = CreateClientBody, responses((status = 201, description = "created (clientSecret shown once)"), (status = 400, description = "invalid"), (status = 409, description = "client id taken")))]
#[post("/clients")]
pub async fn create(who: Admin, state: State, body: JsonObject<CreateClientBody>) -> Answer {
    do_create(&state, &who.tenant, &body).await
}

/// The tenant's clients (no secrets).
#[utoipa::path(responses((status = 200, description = "clients")))]
#[get("/clients")]
pub async fn list(who: Admin, state: State) -> Answer {
    do_list(&state, &who.tenant).await
}

/// One client.
#[utoipa::path(responses((status = 200, description = "client"), (status = 404, description = "unknown")))]
#[get("/clients/{client_id}")]
pub async fn show(_: Admin, state: State, path: Client) -> Answer {
    do_show(&state, &path).await
}

/// Changes a client's name, redirect URIs or scopes (absent fields kept).
#[utoipa::path(responses((status = 200, description = "client"), (status = 400, description = "invalid"), (status = 404, description = "unknown")))]
#[patch("/clients/{client_id}")]
pub async fn update(who: Admin, state: State, path: Client, body: Update) -> Answer {
    do_update(&state, &path, &body, &who.actor()).await
}

/// A new secret for a confidential client (shown once; the old one stops
/// working at once).
#[utoipa::path(responses((status = 200, description = "new secret (shown once)"), (status = 400, description = "public client"), (status = 404, description = "unknown")))]
#[post("/clients/{client_id}/secret")]
pub async fn rotate_secret(who: Admin, state: State, path: Client) -> Answer {
    do_rotate(&state, &path, &who.actor()).await
}

/// Disables a client: no new tokens, its tokens revoked.
#[utoipa::path(responses((status = 200, description = "disabled"), (status = 404, description = "unknown")))]
#[post("/clients/{client_id}/disable")]
pub async fn disable(who: Admin, state: State, path: Client) -> Answer {
    do_disable(&state, &path, &who.actor()).await
}

/// Deletes a client and revokes its tokens.
#[utoipa::path(responses((status = 200, description = "deleted"), (status = 404, description = "unknown")))]
#[delete("/clients/{client_id}")]
pub async fn delete(who: Admin, state: State, path: Client) -> Answer {
    do_delete(&state, &path, &who.actor()).await
}

// ------------------------------------------------ operator (admin listener)

/// Registers a client in a tenant (operator).
#[utoipa::path(request_body = CreateClientBody, responses((status = 201, description = "created (clientSecret shown once)"), (status = 400, description = "invalid"), (status = 409, description = "client id taken")))]
#[post("/admin/t/{tenant}/clients")]
pub async fn admin_create(
    _: Operator,
    state: State,
    path: web::Path<TenantPath>,
    body: JsonObject<CreateClientBody>,
) -> Answer {
    do_create(&state, &path.tenant, &body).await
}

/// A tenant's clients (operator).
#[utoipa::path(responses((status = 200, description = "clients")))]
#[get("/admin/t/{tenant}/clients")]
pub async fn admin_list(_: Operator, state: State, path: web::Path<TenantPath>) -> Answer {
    do_list(&state, &path.tenant).await
}

/// One client (operator).
#[utoipa::path(responses((status = 200, description = "client"), (status = 404, description = "unknown")))]
#[get("/admin/t/{tenant}/clients/{client_id}")]
pub async fn admin_show(_: Operator, state: State, path: Client) -> Answer {
    do_show(&state, &path).await
}

/// Changes a client (operator).
#[utoipa::path(responses((status = 200, description = "client"), (status = 400, description = "invalid"), (status = 404, description = "unknown")))]
#[patch("/admin/t/{tenant}/clients/{client_id}")]
pub async fn admin_update(who: Operator, state: State, path: Client, body: Update) -> Answer {
    do_update(&state, &path, &body, &who.actor()).await
}

/// Rotates a confidential client's secret (operator; shown once).
#[utoipa::path(responses((status = 200, description = "new secret (shown once)"), (status = 400, description = "public client"), (status = 404, description = "unknown")))]
#[post("/admin/t/{tenant}/clients/{client_id}/secret")]
pub async fn admin_rotate_secret(who: Operator, state: State, path: Client) -> Answer {
    do_rotate(&state, &path, &who.actor()).await
}

/// Disables a client (operator).
#[utoipa::path(responses((status = 200, description = "disabled"), (status = 404, description = "unknown")))]
#[post("/admin/t/{tenant}/clients/{client_id}/disable")]
pub async fn admin_disable(who: Operator, state: State, path: Client) -> Answer {
    do_disable(&state, &path, &who.actor()).await
}

/// Deletes a client (operator).
#[utoipa::path(responses((status = 200, description = "deleted"), (status = 404, description = "unknown")))]
#[delete("/admin/t/{tenant}/clients/{client_id}")]
pub async fn admin_delete(who: Operator, state: State, path: Client) -> Answer {
    do_delete(&state, &path, &who.actor()).await
}
