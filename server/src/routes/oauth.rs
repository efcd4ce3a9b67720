//! OAuth 2.1 / OpenID Connect endpoints of a tenant, under `/t/{tenant}`:
//! discovery, JWKS, authorize (with a server-rendered login page and MFA
//! step), token, revoke, introspect and userinfo, and login through an
//! upstream OpenID Connect provider. The logic lives in
//! `rampart_auth::AuthServer`; this module only maps HTTP to it.

use rampart_tenancy::TenantSlug;
use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use rampart_auth::oauth::{
    AuthorizeError, AuthorizeRequest, ClientAuthMethod, ClientCredentials, TokenRequest,
};
use rampart_auth::{AuthError, AuthServer};
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::oauth_status;
use crate::extract::client_context;
use crate::pages;

/// Shared state: `web::Data<AuthServer>`.
pub type AuthState = web::Data<AuthServer>;

/// Registers the routes (the caller adds `app_data(AuthState)`): plain
/// routes, outside the OpenAPI document; the protocol endpoints answer in
/// their own formats (form bodies, redirects, OAuth errors) and the
/// discovery document describes them.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/t/{tenant}")
            .route(
                "/.well-known/openid-configuration",
                web::get().to(discovery),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                web::get().to(discovery),
            )
            .route("/jwks.json", web::get().to(jwks))
            .route("/oauth/authorize", web::get().to(authorize))
            .route("/oauth/login", web::post().to(login))
            .route("/oauth/mfa", web::post().to(mfa))
            .route("/oauth/token", web::post().to(token))
            .route("/oauth/revoke", web::post().to(revoke))
            .route("/oauth/introspect", web::post().to(introspect))
            .route("/oauth/userinfo", web::get().to(userinfo))
            .route("/login/upstream/{provider}", web::get().to(upstream_login))
            .route(
                "/login/upstream/{provider}/callback",
                web::get().to(upstream_callback),
            ),
    );
}

fn oauth_error(e: &AuthError) -> HttpResponse {
    let status = oauth_status(e);
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if let AuthError::RateLimited { retry_after } = e {
        resp.insert_header((header::RETRY_AFTER, retry_after.as_secs().to_string()));
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.insert_header((
            header::WWW_AUTHENTICATE,
            format!("Bearer error=\"{}\"", e.oauth_code()),
        ));
    }
    resp.json(
        serde_json::json!({"error": e.oauth_code(), "error_description": e.public_description()}),
    )
}

fn cookie_name(tenant: &str) -> String {
    format!("rampart_session_{tenant}")
}

fn session_cookie(req: &HttpRequest, tenant: &str) -> Option<String> {
    req.cookie(&cookie_name(tenant))
        .map(|c| c.value().to_owned())
}

/// Name of the login-form CSRF cookie (double submit). Under https it has the
/// `__Secure-` prefix; `__Host-` would force `Path=/`, and the cookie is meant
/// for this tenant's `/oauth` forms only.
fn csrf_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Secure-rampart_csrf"
    } else {
        "rampart_csrf"
    }
}

fn is_secure(auth: &AuthServer) -> bool {
    auth.config().public_base_url.starts_with("https://")
}

/// A fresh random CSRF token (256 bits, base64url).
fn new_csrf_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Sets the CSRF cookie for the forms of `tenant` on a rendered page.
fn with_csrf_cookie(
    mut resp: HttpResponse,
    tenant: &str,
    token: &str,
    secure: bool,
) -> HttpResponse {
    let cookie = actix_web::cookie::Cookie::build(csrf_cookie_name(secure), token.to_owned())
        .path(format!("/t/{tenant}/oauth"))
        .http_only(true)
        .secure(secure)
        .same_site(actix_web::cookie::SameSite::Strict)
        .finish();
    if let Err(e) = resp.add_cookie(&cookie) {
        return oauth_error(&AuthError::Crypto(e.to_string()));
    }
    resp
}

/// The double-submit check: the form's `csrf` field equals the cookie (in
/// constant time). Returns the token when it matches.
fn checked_csrf(req: &HttpRequest, form: &HashMap<String, String>, secure: bool) -> Option<String> {
    use subtle::ConstantTimeEq;
    let cookie = req.cookie(csrf_cookie_name(secure))?;
    let field = form.get("csrf")?;
    let (a, b) = (cookie.value().as_bytes(), field.as_bytes());
    (!a.is_empty() && a.len() == b.len() && bool::from(a.ct_eq(b))).then(|| field.clone())
}

/// A form post without a matching CSRF token: the form again (400) with a
/// fresh token.
fn csrf_refused(page: HttpResponse, tenant: &str, token: &str, secure: bool) -> HttpResponse {
    let mut r = with_csrf_cookie(page, tenant, token, secure);
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}

fn page(title: &str, body: maud::Markup) -> HttpResponse {
    pages::sign_in_page(title, body)
}

fn login_page(
    tenant: &str,
    return_to: &str,
    client_name: &str,
    error: Option<&str>,
    csrf: &str,
) -> HttpResponse {
    login_page_with(tenant, return_to, client_name, error, &[], csrf)
}

/// The login page with "sign in with" links to the tenant's upstream providers.
fn login_page_with(
    tenant: &str,
    return_to: &str,
    client_name: &str,
    error: Option<&str>,
    upstreams: &[(String, String)],
    csrf: &str,
) -> HttpResponse {
    let hrefs: Vec<String> = upstreams
        .iter()
        .map(|(name, _)| {
            format!(
                "/t/{tenant}/login/upstream/{name}?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", return_to)
                    .finish()
            )
        })
        .collect();
    let links: Vec<pages::UpstreamLink<'_>> = upstreams
        .iter()
        .zip(&hrefs)
        .map(|((_, display), href)| pages::UpstreamLink { href, display })
        .collect();
    page(
        "Sign in",
        pages::login_form(tenant, return_to, client_name, error, &links, csrf),
    )
}

fn mfa_page(
    tenant: &str,
    return_to: &str,
    challenge: &str,
    error: Option<&str>,
    csrf: &str,
) -> HttpResponse {
    page(
        "Two-factor authentication",
        pages::mfa_form(tenant, return_to, challenge, error, csrf),
    )
}

async fn discovery(auth: AuthState, path: Tenant) -> HttpResponse {
    let tenant = path.into_inner();
    let tenant = match TenantSlug::parse(&tenant) {
        Ok(t) => t,
        Err(e) => return oauth_error(&AuthError::from(e)),
    };
    if let Err(e) = auth.pool().active_tenant(&tenant).await {
        return oauth_error(&AuthError::from(e));
    }
    HttpResponse::Ok().json(auth.discovery(&tenant))
}

async fn jwks(auth: AuthState) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(auth.jwks())
}

/// Only our own authorize URL of this tenant may be a post-login target.
fn safe_return_to(tenant: &str, return_to: &str) -> Option<String> {
    let prefix = format!("/t/{tenant}/oauth/authorize?");
    (return_to.starts_with(&prefix) && !return_to.contains("//") && !return_to.contains('\\'))
        .then(|| return_to.to_owned())
}

async fn authorize(
    auth: AuthState,
    req: HttpRequest,
    path: Tenant,
    query: web::Query<AuthorizeRequest>,
) -> HttpResponse {
    let validated = match TenantSlug::parse(&path).map_err(|e| AuthorizeError::Page(e.into())) {
        Ok(tenant) => auth
            .validate_authorize(&tenant, &query)
            .await
            .map(|v| (tenant, v)),
        Err(e) => Err(e),
    };
    let (tenant, validated) = match validated {
        Ok(v) => v,
        Err(AuthorizeError::Page(e)) => {
            let mut r = page(
                "Authorization error",
                pages::message(&e.public_description()),
            );
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return r;
        }
        Err(AuthorizeError::Redirect { location, .. }) => {
            return HttpResponse::Found()
                .insert_header((header::LOCATION, location))
                .finish();
        }
    };
    let session = match session_cookie(&req, &tenant) {
        Some(cookie) => auth.authenticate_session(&tenant, &cookie).await.ok(),
        None => None,
    };
    match session {
        Some((session, _user)) if !validated.needs_login(session.auth_time) => {
            return match auth
                .issue_authorization_code(&tenant, &validated, &session)
                .await
            {
                Ok(location) => HttpResponse::Found()
                    .insert_header((header::LOCATION, location))
                    .finish(),
                Err(e) => oauth_error(&e),
            };
        }
        // OIDC Core 3.1.2.6: no page for prompt=none.
        _ if validated.prompt_none => {
            return HttpResponse::Found()
                .insert_header((
                    header::LOCATION,
                    validated.login_required(&auth.issuer(&tenant)),
                ))
                .finish();
        }
        _ => {}
    }
    // After this sign-in, back to the request without `prompt`/`max_age`:
    // the new session is the fresh one they asked for.
    let rest: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k != "prompt" && k != "max_age")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&rest)
        .finish();
    let return_to = format!("/t/{tenant}/oauth/authorize?{query}");
    let csrf = new_csrf_token();
    // The page still works (password login) when the list cannot be read.
    let upstreams = auth.upstream_providers(&tenant).await.unwrap_or_else(|e| {
        tracing::warn!(%tenant, error = %e, "upstream providers unavailable");
        Vec::new()
    });
    let page = login_page_with(
        &tenant,
        &return_to,
        &validated.client_name,
        None,
        &upstreams,
        &csrf,
    );
    with_csrf_cookie(page, &tenant, &csrf, is_secure(&auth))
}

/// `/t/{tenant}/…`: the tenant of the path.
type Tenant = web::Path<String>;
/// A form body (`application/x-www-form-urlencoded`).
type Form = web::Form<HashMap<String, String>>;

/// The form's `return_to`, where it is safe to send the browser back to.
fn form_return_to(tenant: &str, form: &Form) -> Result<String, AuthError> {
    form.get("return_to")
        .and_then(|r| safe_return_to(tenant, r))
        .ok_or_else(|| AuthError::InvalidRequest("return_to".into()))
}

fn logged_in_redirect(
    tenant: &str,
    return_to: &str,
    session_token: &str,
    secure: bool,
) -> HttpResponse {
    let cookie = actix_web::cookie::Cookie::build(cookie_name(tenant), session_token.to_owned())
        .path(format!("/t/{tenant}"))
        .http_only(true)
        .secure(secure)
        .same_site(actix_web::cookie::SameSite::Lax)
        .finish();
    HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, return_to.to_owned()))
        .finish()
}

async fn login(auth: AuthState, req: HttpRequest, path: Tenant, form: Form) -> HttpResponse {
    let tenant = path.into_inner();
    let return_to = match form_return_to(&tenant, &form) {
        Ok(r) => r,
        Err(e) => return oauth_error(&e),
    };
    let secure = is_secure(&auth);
    let Some(csrf) = checked_csrf(&req, &form, secure) else {
        let fresh = new_csrf_token();
        let page = login_page(
            &tenant,
            &return_to,
            "",
            Some("The form expired. Please sign in again."),
            &fresh,
        );
        return csrf_refused(page, &tenant, &fresh, secure);
    };
    let email = form.get("email").map(String::as_str).unwrap_or("");
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let tenant = match TenantSlug::parse(&tenant) {
        Ok(t) => t,
        Err(e) => return oauth_error(&AuthError::from(e)),
    };
    match auth
        .login(&tenant, email, password, &client_context(&req))
        .await
    {
        Ok(rampart_auth::accounts::LoginOutcome::LoggedIn(s)) => {
            logged_in_redirect(&tenant, &return_to, &s.token, secure)
        }
        Ok(rampart_auth::accounts::LoginOutcome::MfaRequired { challenge }) => {
            mfa_page(&tenant, &return_to, &challenge, None, &csrf)
        }
        Err(AuthError::InvalidCredentials) => login_page(
            &tenant,
            &return_to,
            "",
            Some("Wrong e-mail or password."),
            &csrf,
        ),
        Err(e @ AuthError::RateLimited { .. }) => {
            let mut r = login_page(
                &tenant,
                &return_to,
                "",
                Some("Too many attempts. Try again later."),
                &csrf,
            );
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            if let AuthError::RateLimited { retry_after } = e
                && let Ok(v) = header::HeaderValue::from_str(&retry_after.as_secs().to_string())
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        // The tenant's login policy: a clear reason (the password was right).
        Err(e @ (AuthError::EmailNotVerified | AuthError::MfaEnrollmentRequired)) => {
            let mut r = login_page(&tenant, &return_to, "", Some(&e.to_string()), &csrf);
            *r.status_mut() = StatusCode::FORBIDDEN;
            r
        }
        Err(e) => oauth_error(&e),
    }
}

async fn mfa(auth: AuthState, req: HttpRequest, path: Tenant, form: Form) -> HttpResponse {
    let tenant = path.into_inner();
    let return_to = match form_return_to(&tenant, &form) {
        Ok(r) => r,
        Err(e) => return oauth_error(&e),
    };
    let challenge = form.get("challenge").map(String::as_str).unwrap_or("");
    let secure = is_secure(&auth);
    let Some(csrf) = checked_csrf(&req, &form, secure) else {
        let fresh = new_csrf_token();
        let page = mfa_page(
            &tenant,
            &return_to,
            challenge,
            Some("The form expired. Please try again."),
            &fresh,
        );
        return csrf_refused(page, &tenant, &fresh, secure);
    };
    let code = form.get("code").map(String::as_str).unwrap_or("");
    let tenant = match TenantSlug::parse(&tenant) {
        Ok(t) => t,
        Err(e) => return oauth_error(&AuthError::from(e)),
    };
    match auth
        .verify_mfa(&tenant, challenge, code, &client_context(&req))
        .await
    {
        Ok(s) => logged_in_redirect(&tenant, &return_to, &s.token, secure),
        Err(AuthError::InvalidCredentials) => {
            mfa_page(&tenant, &return_to, challenge, Some("Wrong code."), &csrf)
        }
        Err(e) => oauth_error(&e),
    }
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Client authentication from `Authorization: Basic` or the form body.
fn client_credentials(
    req: &HttpRequest,
    form: &HashMap<String, String>,
) -> Result<ClientCredentials, AuthError> {
    if let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(b64) = value.strip_prefix("Basic ")
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| AuthError::InvalidClient)?;
        let text = String::from_utf8(decoded).map_err(|_| AuthError::InvalidClient)?;
        let (id, secret) = text.split_once(':').ok_or(AuthError::InvalidClient)?;
        if form.contains_key("client_secret") {
            return Err(AuthError::InvalidRequest(
                "more than one client authentication method".into(),
            ));
        }
        return Ok(ClientCredentials {
            client_id: form_decode(id),
            secret: Some(form_decode(secret)),
            method: ClientAuthMethod::ClientSecretBasic,
        });
    }
    let client_id = form
        .get("client_id")
        .cloned()
        .ok_or(AuthError::InvalidClient)?;
    Ok(match form.get("client_secret") {
        Some(secret) => ClientCredentials {
            client_id,
            secret: Some(secret.clone()),
            method: ClientAuthMethod::ClientSecretPost,
        },
        None => ClientCredentials {
            client_id,
            secret: None,
            method: ClientAuthMethod::None,
        },
    })
}

/// The OAuth answer of an endpoint: its response, or its error in the
/// OAuth format (RFC 6749 §5.2).
fn oauth_answer(result: Result<HttpResponse, AuthError>) -> HttpResponse {
    result.unwrap_or_else(|e| oauth_error(&e))
}

/// The `token` parameter of a revocation or an introspection.
fn token_param(form: &Form) -> Result<&str, AuthError> {
    form.get("token")
        .map(String::as_str)
        .ok_or_else(|| AuthError::InvalidRequest("token".into()))
}

async fn token(auth: AuthState, req: HttpRequest, path: Tenant, form: Form) -> HttpResponse {
    oauth_answer(
        async {
            let creds = client_credentials(&req, &form)?;
            let request = TokenRequest {
                grant_type: form.get("grant_type").cloned(),
                code: form.get("code").cloned(),
                redirect_uri: form.get("redirect_uri").cloned(),
                code_verifier: form.get("code_verifier").cloned(),
                refresh_token: form.get("refresh_token").cloned(),
                scope: form.get("scope").cloned(),
            };
            let ctx = client_context(&req);
            let t = auth
                .token(&TenantSlug::parse(&path)?, &creds, &request, &ctx)
                .await?;
            Ok(HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::PRAGMA, "no-cache"))
                .json(t))
        }
        .await,
    )
}

async fn revoke(auth: AuthState, req: HttpRequest, path: Tenant, form: Form) -> HttpResponse {
    oauth_answer(
        async {
            let creds = client_credentials(&req, &form)?;
            let token = token_param(&form)?;
            let ctx = client_context(&req);
            auth.revoke(&TenantSlug::parse(&path)?, &creds, token, &ctx)
                .await?;
            Ok(HttpResponse::Ok().finish())
        }
        .await,
    )
}

async fn introspect(auth: AuthState, req: HttpRequest, path: Tenant, form: Form) -> HttpResponse {
    oauth_answer(
        async {
            let creds = client_credentials(&req, &form)?;
            let v = auth
                .introspect(&TenantSlug::parse(&path)?, &creds, token_param(&form)?)
                .await?;
            Ok(HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(v))
        }
        .await,
    )
}

async fn userinfo(auth: AuthState, req: HttpRequest, path: Tenant) -> HttpResponse {
    let tenant = path.into_inner();
    let Some(bearer) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return oauth_error(&AuthError::InvalidToken("bearer token required".into()));
    };
    let tenant = match TenantSlug::parse(&tenant) {
        Ok(t) => t,
        Err(e) => return oauth_error(&AuthError::from(e)),
    };
    match auth.userinfo(&tenant, bearer.trim()).await {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => oauth_error(&e),
    }
}

fn upstream_cookie_name(tenant: &str) -> String {
    format!("rampart_upstream_{tenant}")
}

/// Starts a login at an upstream OpenID Connect provider: the sealed state,
/// nonce and PKCE verifier go into a short-lived cookie bound to this path.
async fn upstream_login(
    auth: AuthState,
    path: web::Path<(String, String)>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let (tenant, provider) = path.into_inner();
    let return_to = match query.get("return_to") {
        Some(r) => match safe_return_to(&tenant, r) {
            Some(r) => Some(r),
            None => return oauth_error(&AuthError::InvalidRequest("return_to".into())),
        },
        None => None,
    };
    let tenant = match TenantSlug::parse(&tenant) {
        Ok(t) => t,
        Err(e) => return oauth_error(&AuthError::from(e)),
    };
    if let Err(e) = auth.pool().active_tenant(&tenant).await {
        return oauth_error(&AuthError::from(e));
    }
    match auth
        .begin_login(&tenant, &provider, return_to.as_deref())
        .await
    {
        Ok(login) => {
            let cookie =
                actix_web::cookie::Cookie::build(upstream_cookie_name(&tenant), login.pending)
                    .path(format!("/t/{tenant}/login/upstream"))
                    .http_only(true)
                    .secure(auth.config().public_base_url.starts_with("https://"))
                    // Lax: the provider's redirect back is a top-level GET.
                    .same_site(actix_web::cookie::SameSite::Lax)
                    .max_age(actix_web::cookie::time::Duration::minutes(10))
                    .finish();
            HttpResponse::Found()
                .cookie(cookie)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::LOCATION, login.authorization_url))
                .finish()
        }
        Err(e) => oauth_error(&e),
    }
}

/// The provider's redirect back: finish the login, set the session cookie and
/// continue to where the login started (the pending authorize request).
async fn upstream_callback(
    auth: AuthState,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let (tenant, provider) = path.into_inner();
    let fail = |status: StatusCode, text: &str| {
        let mut r = page("Sign-in failed", pages::message(text));
        *r.status_mut() = status;
        r
    };
    if let Some(error) = query.get("error") {
        return fail(
            StatusCode::FORBIDDEN,
            &format!("The identity provider answered: {error}"),
        );
    }
    let (Some(code), Some(state)) = (query.get("code"), query.get("state")) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "The identity provider's answer is incomplete.",
        );
    };
    let Some(pending) = req.cookie(&upstream_cookie_name(&tenant)) else {
        return fail(
            StatusCode::FORBIDDEN,
            "No sign-in was started in this browser.",
        );
    };
    let outcome = match TenantSlug::parse(&tenant) {
        Ok(slug) => {
            auth.complete_login(
                &slug,
                &provider,
                code,
                state,
                query.get("iss").map(String::as_str),
                pending.value(),
                &client_context(&req),
            )
            .await
        }
        Err(e) => Err(AuthError::from(e)),
    };
    let mut gone = actix_web::cookie::Cookie::build(upstream_cookie_name(&tenant), "")
        .path(format!("/t/{tenant}/login/upstream"))
        .finish();
    gone.make_removal();
    let secure = auth.config().public_base_url.starts_with("https://");
    let mut resp = match outcome {
        Ok(done) => {
            let return_to = done.return_to.unwrap_or_default();
            match done.login {
                rampart_auth::accounts::LoginOutcome::LoggedIn(s) if !return_to.is_empty() => {
                    logged_in_redirect(&tenant, &return_to, &s.token, secure)
                }
                rampart_auth::accounts::LoginOutcome::LoggedIn(s) => {
                    let mut r = page("Signed in", pages::message("You are signed in."));
                    let cookie = actix_web::cookie::Cookie::build(cookie_name(&tenant), s.token)
                        .path(format!("/t/{tenant}"))
                        .http_only(true)
                        .secure(secure)
                        .same_site(actix_web::cookie::SameSite::Lax)
                        .finish();
                    if let Err(e) = r.add_cookie(&cookie) {
                        return oauth_error(&AuthError::Crypto(e.to_string()));
                    }
                    r
                }
                rampart_auth::accounts::LoginOutcome::MfaRequired { challenge } => {
                    let csrf = new_csrf_token();
                    let page = mfa_page(&tenant, &return_to, &challenge, None, &csrf);
                    with_csrf_cookie(page, &tenant, &csrf, secure)
                }
            }
        }
        Err(e @ AuthError::LinkRefused(_)) => {
            tracing::info!(tenant, provider, error = %e, "upstream identity not linked");
            fail(
                oauth_status(&e),
                "An account with this e-mail address exists, but its address is not verified. \
                 Sign in with its password and verify the address first.",
            )
        }
        Err(e @ (AuthError::AccessDenied(_) | AuthError::Upstream(_))) => {
            tracing::info!(tenant, provider, error = %e, "upstream login refused");
            let status = oauth_status(&e);
            fail(
                status,
                "Sign-in with the identity provider failed. Please try again.",
            )
        }
        Err(e) => return oauth_error(&e),
    };
    let _ = resp.add_cookie(&gone);
    resp
}
