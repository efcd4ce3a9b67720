//! Extractors: what a handler needs from a request, checked before the
//! handler runs. [`Caller<P>`] is the principal authenticated for the
//! tenant in the path (`{tenant}`) with permission `P` required;
//! [`User<P>`] the same when it must be a user (not a machine client);
//! [`Operator`] the client certificate on the admin listener;
//! [`PageQuery`] the cursor and page size of lists;
//! [`Gated<F, E>`] any of these when the tenant has feature flag `F` on.
//!
//! A token of another tenant is refused like a missing one, so nothing
//! reveals whether a tenant or resource exists elsewhere.
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use base64::Engine;
use futures::future::LocalBoxFuture;
use rampart_auth::UserId;
use rampart_auth::{AuthError, ClientContext, Permission, Principal, authorize};
use rampart_tenancy::TenantSlug;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::tls::ClientIdentity;

/// A permission a route requires, as a type (`Caller<perm::MarketRead>`).
pub trait Requirement {
    /// The permission, or `None` for "any authenticated caller".
    const PERMISSION: Option<Permission>;
}

/// The permission markers.
pub mod perm {
    use rampart_auth::Permission;

    use super::Requirement;

    /// Any authenticated caller of the tenant.
    pub struct Any;
    impl Requirement for Any {
        const PERMISSION: Option<Permission> = None;
    }

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("Requires `Permission::", stringify!($name), "`.")]
            pub struct $name;
            impl Requirement for $name {
                const PERMISSION: Option<Permission> = Some(Permission::$name);
            }
        )*};
    }
    markers!(
        PortfolioRead,
        PortfolioWrite,
        MarketRead,
        AnalyticsRead,
        UsersManage,
        AuditRead,
        ApiKeysManage,
        TenantAdmin,
        AccountManage,
        CasesRead,
        CasesWrite,
        CasesShare,
    );
}

/// The app state of a request (present on both listeners).
pub fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("app state missing")))
}

/// A bearer token the rate limiter verified for the path's tenant, kept in
/// the request's extensions so that the extractor does not verify it again.
#[derive(Clone)]
pub struct VerifiedBearer {
    /// The tenant of the path it was verified for.
    pub tenant: TenantSlug,
    /// The verification.
    pub verified: std::sync::Arc<rampart_auth::VerifiedAccessToken>,
}

/// `Authorization: Bearer …`.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// `Authorization: ApiKey …` or `X-API-Key: …`.
pub fn api_key(req: &HttpRequest) -> Option<&str> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("ApiKey "));
    let header = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
    match (authorization, header) {
        (Some(a), Some(h)) if a != h => None,
        (a, h) => a.or(h).map(str::trim),
    }
}

enum Credential {
    Bearer(String),
    ApiKey(String),
}

/// Authenticates an API key for `tenant` (read from the database on every
/// request, so a revocation, an expiry or a change of its owner's role or
/// status applies at once), then counts the request against the key's own
/// limit (`rate_limit.per_api_key`, keyed by the key's public prefix).
pub async fn authenticate_api_key(
    state: &AppState,
    tenant: &TenantSlug,
    key: &str,
) -> Result<Principal, ApiError> {
    let principal = state
        .auth
        .authenticate_api_key(tenant, key)
        .await
        .map_err(|e| match e {
            AuthError::InvalidToken(_) | AuthError::InvalidCredentials => {
                state
                    .metrics
                    .auth_events
                    .with_label_values(&["api_key", "error"])
                    .inc();
                ApiError::unauthorized()
            }
            e => ApiError::from(e),
        })?;
    // The prefix is public and names the key: the limit follows the
    // authenticated key, not whatever the header said.
    let prefix = key.get(3..15).unwrap_or_default();
    let decision = state
        .limiter
        .check_api_key(&format!("{tenant}:{prefix}"))
        .await;
    if !decision.allowed {
        state
            .metrics
            .rate_limited
            .with_label_values(&["api_key"])
            .inc();
        return Err(ApiError::rate_limited(
            "too many requests (api_key limit)",
            decision.retry_after.map(|r| r.as_secs().max(1)),
        ));
    }
    state
        .metrics
        .auth_events
        .with_label_values(&["api_key", "ok"])
        .inc();
    Ok(principal)
}

/// Authenticates a bearer token for `tenant` and counts it in the metrics.
pub async fn authenticate(
    state: &AppState,
    tenant: &TenantSlug,
    token: Option<&str>,
) -> Result<Principal, ApiError> {
    let token = token
        .ok_or_else(|| ApiError::from(AuthError::InvalidToken("missing bearer token".into())))?;
    counted(state, state.auth.authenticate_bearer(tenant, token).await)
}

/// Authenticates a bearer token for the tenant of a path the extractors do
/// not see (the WebSocket upgrades): a malformed slug is refused like a
/// token of another tenant (401), after the missing-token check, so the
/// answer tells nothing about which tenants exist.
pub async fn authenticate_path_tenant(
    state: &AppState,
    raw_tenant: &str,
    token: Option<&str>,
) -> Result<(TenantSlug, Principal), ApiError> {
    let token = token
        .ok_or_else(|| ApiError::from(AuthError::InvalidToken("missing bearer token".into())))?;
    let tenant = TenantSlug::parse(raw_tenant).map_err(|_| ApiError::unauthorized())?;
    let principal = counted(state, state.auth.authenticate_bearer(&tenant, token).await)?;
    Ok((tenant, principal))
}

/// A bearer authentication's outcome as the API answers it, counted in the
/// metrics when it succeeded.
fn counted(state: &AppState, outcome: Result<Principal, AuthError>) -> Result<Principal, ApiError> {
    let principal = outcome.map_err(|e| match e {
        // Any refusal of the credential itself is the same 401.
        AuthError::InvalidCredentials => ApiError::unauthorized(),
        e => ApiError::from(e),
    })?;
    state
        .metrics
        .auth_events
        .with_label_values(&["bearer", "ok"])
        .inc();
    Ok(principal)
}

/// The one authorization check of the routes: the role's permissions as
/// the tenant's `roles` table has them now (read when the credential was
/// authenticated, at most `auth.role_cache_secs` old), narrowed by the
/// credential's scopes.
pub fn require(principal: &Principal, permission: Permission) -> Result<(), ApiError> {
    authorize(principal, permission)
        .map_err(|_| ApiError::forbidden(format!("needs {}", permission.scope())))
}

/// The user behind a principal (machine clients have none).
pub fn user_of(principal: &Principal) -> Result<UserId, ApiError> {
    principal.user_id.ok_or_else(|| {
        ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            ErrorCode::UserRequired,
            "this route needs a user, not a machine client",
        )
    })
}

/// Where a request comes from, for audit records and device checks.
pub fn client_context(req: &HttpRequest) -> ClientContext {
    ClientContext::from_request(
        crate::client_addr::client_ip(req)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The authenticated caller of `/api/v1/t/{tenant}/…`, with permission `P`.
pub struct Caller<P: Requirement = perm::Any> {
    /// The tenant of the path, validated (the token was issued by it).
    pub tenant: TenantSlug,
    /// Who is calling.
    pub principal: Principal,
    /// The bearer token (for its session id); empty for an API key.
    token: String,
    /// Where the request comes from.
    pub client: ClientContext,
    _permission: PhantomData<P>,
}

impl<P: Requirement> Caller<P> {
    /// The acting user, or 403 `user_required` for a machine client.
    pub fn user_id(&self) -> Result<UserId, ApiError> {
        user_of(&self.principal)
    }

    /// Whether the caller may also do `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        authorize(&self.principal, permission).is_ok()
    }

    /// A tenant administrator: the role grants `tenant:admin` (and a
    /// token, if any, carries it); the role's name does not matter.
    pub fn is_tenant_admin(&self) -> bool {
        self.may(Permission::TenantAdmin)
    }

    /// The login session the token was issued for (`sid`), if any. The token
    /// was verified already; this is a cache hit.
    pub fn session_id(&self, state: &AppState) -> Option<Uuid> {
        let auth = &state.auth;
        let verified = auth
            .tokens()
            .verify_access_token(
                &self.token,
                &auth.issuer(&self.tenant),
                &auth.config().access_token_audience,
            )
            .ok()?;
        Uuid::parse_str(verified.claims.sid.as_deref()?).ok()
    }

    /// When the user signed in for the token (`auth_time`), if it says.
    pub fn auth_time(&self, state: &AppState) -> Option<i64> {
        let auth = &state.auth;
        auth.tokens()
            .verify_access_token(
                &self.token,
                &auth.issuer(&self.tenant),
                &auth.config().access_token_audience,
            )
            .ok()?
            .claims
            .auth_time
    }

    /// The sign-in behind the token is at most `reauth_max_age_secs` old,
    /// or 403 `reauthentication_required` (sign in again with
    /// `prompt=login` or `max_age`).
    pub fn recently_authenticated(&self, state: &AppState) -> Result<(), ApiError> {
        let max_age = state.auth.config().reauth_max_age_secs;
        let age = self
            .auth_time(state)
            .map(|t| chrono::Utc::now().timestamp().saturating_sub(t));
        match age {
            Some(age) if age <= i64::try_from(max_age).unwrap_or(i64::MAX) => Ok(()),
            _ => Err(ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                ErrorCode::ReauthenticationRequired,
                format!(
                    "this change needs a sign-in of the last {max_age} seconds: \
                     authorize again with prompt=login or max_age={max_age}"
                ),
            )),
        }
    }

    /// [`Caller::session_id`], or 403 `session_required`.
    pub fn session_required(&self, state: &AppState) -> Result<Uuid, ApiError> {
        self.session_id(state).ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                ErrorCode::SessionRequired,
                "this route needs a token issued to a login session",
            )
        })
    }

    /// The actor the portfolio crate checks access for, as user `user_id`
    /// (the caller's own, from [`Caller::user_id`]).
    pub fn portfolio_actor_for(&self, user_id: UserId) -> rampart_portfolio::Actor {
        rampart_portfolio::Actor {
            user_id,
            tenant_admin: self.is_tenant_admin(),
            ip: Some(self.client.ip.clone()).filter(|ip| !ip.is_empty()),
        }
    }

    /// Who did it, for audit records: `user:<id>` or `client:<id>`.
    pub fn actor(&self) -> String {
        match (&self.principal.user_id, &self.principal.client_id) {
            (Some(u), _) => format!("user:{u}"),
            (None, Some(c)) => format!("client:{c}"),
            (None, None) => "unknown".to_owned(),
        }
    }
}

impl<P: Requirement + 'static> FromRequest for Caller<P> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            let credential = match (bearer_token(&req), api_key(&req)) {
                (Some(token), None) => Credential::Bearer(token.to_owned()),
                (None, Some(key)) => Credential::ApiKey(key.to_owned()),
                // None, or two credentials at once: refused.
                _ => return Err(ApiError::unauthorized()),
            };
            // Validated once here. No token is valid for a malformed slug:
            // refused like a token of another tenant, so nothing tells
            // whether a tenant exists.
            let tenant = req
                .match_info()
                .get("tenant")
                .and_then(|t| TenantSlug::parse(t).ok())
                .ok_or_else(ApiError::unauthorized)?;
            let (principal, token) = match credential {
                Credential::Bearer(token) => {
                    // Verified by the rate limiter already for this tenant?
                    let verified = req
                        .extensions()
                        .get::<VerifiedBearer>()
                        .filter(|v| v.tenant == tenant)
                        .map(|v| v.verified.clone());
                    let principal = match verified {
                        Some(v) => counted(
                            &state,
                            state.auth.authenticate_verified_bearer(&tenant, &v).await,
                        )?,
                        None => authenticate(&state, &tenant, Some(&token)).await?,
                    };
                    (principal, token)
                }
                Credential::ApiKey(key) => {
                    let principal = authenticate_api_key(&state, &tenant, &key).await?;
                    // A key never manages its owner's account (password,
                    // TOTP, keys, sessions): it could mint itself wider keys.
                    let pattern = req.match_pattern().unwrap_or_default();
                    if ["/api/v1/t/{tenant}/account/", "/api/v1/t/{tenant}/sessions"]
                        .iter()
                        .any(|p| pattern.starts_with(p))
                    {
                        return Err(ApiError::forbidden(
                            "account routes need a user's access token, not an API key",
                        ));
                    }
                    (principal, String::new())
                }
            };
            if let Some(permission) = P::PERMISSION {
                require(&principal, permission)?;
            }
            Ok(Caller {
                tenant,
                principal,
                token,
                client: client_context(&req),
                _permission: PhantomData,
            })
        })
    }
}

/// A [`Caller`] that must be a user (not a machine client).
pub struct User<P: Requirement = perm::Any> {
    /// The caller.
    pub caller: Caller<P>,
    /// The user.
    pub id: UserId,
}

impl<P: Requirement> std::ops::Deref for User<P> {
    type Target = Caller<P>;
    fn deref(&self) -> &Caller<P> {
        &self.caller
    }
}

impl<P: Requirement> User<P> {
    /// The actor the portfolio crate checks access for.
    pub fn portfolio_actor(&self) -> rampart_portfolio::Actor {
        self.caller.portfolio_actor_for(self.id)
    }
}

impl<P: Requirement + 'static> FromRequest for User<P> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::<P>::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            let id = caller.user_id()?;
            Ok(User { caller, id })
        })
    }
}

/// A built-in feature flag a route can be gated by, as a type
/// (`Gated<flag::MonteCarlo, User<perm::AnalyticsRead>>`).
pub trait Flag {
    /// Its name under `…/features/{flag}`.
    const NAME: &'static str;
}

/// The built-in feature flags: name, default and what it turns on. Tenant
/// admins and operators switch them per tenant (`PUT …/features/{flag}`);
/// `[tenancy.default_feature_flags]` changes the default for all tenants.
pub const BUILT_IN_FLAGS: &[(&str, bool, &str)] = &[
    (
        flag::MonteCarlo::NAME,
        true,
        "Monte Carlo VaR/CVaR, outcome bands and the fan chart (CPU-heavy)",
    ),
    (
        flag::PriceStream::NAME,
        true,
        "the WebSocket price stream of a portfolio",
    ),
];

/// The built-in flag markers.
pub mod flag {
    use super::Flag;

    /// `monteCarlo`: `…/monte-carlo` and `…/charts/fan.svg`.
    pub struct MonteCarlo;
    impl Flag for MonteCarlo {
        const NAME: &'static str = "monteCarlo";
    }

    /// `priceStream`: `…/portfolios/{id}/stream` (WebSocket).
    pub struct PriceStream;
    impl Flag for PriceStream {
        const NAME: &'static str = "priceStream";
    }
}

/// Adds the [`BUILT_IN_FLAGS`] to the configured defaults (what the
/// configuration sets wins).
pub fn with_built_in_flags(defaults: &mut std::collections::BTreeMap<String, bool>) {
    for (name, on, _) in BUILT_IN_FLAGS {
        defaults.entry((*name).to_owned()).or_insert(*on);
    }
}

/// 403 `feature_disabled` unless flag `F` is on for `tenant` (its own
/// value, else the configured default, else the built-in one).
pub async fn require_flag<F: Flag>(state: &AppState, tenant: &TenantSlug) -> Result<(), ApiError> {
    let flags = state.tenants.feature_flags(tenant).await?;
    let on = flags.get(F::NAME).copied().unwrap_or_else(|| {
        BUILT_IN_FLAGS
            .iter()
            .any(|(name, on, _)| *name == F::NAME && *on)
    });
    if on {
        Ok(())
    } else {
        Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            ErrorCode::FeatureDisabled,
            format!("the feature {:?} is turned off for this tenant", F::NAME),
        ))
    }
}

/// What knows the tenant it was authenticated for.
pub trait InTenant {
    /// The tenant.
    fn tenant(&self) -> &TenantSlug;
}

impl<P: Requirement> InTenant for Caller<P> {
    fn tenant(&self) -> &TenantSlug {
        &self.tenant
    }
}

impl<P: Requirement> InTenant for User<P> {
    fn tenant(&self) -> &TenantSlug {
        &self.caller.tenant
    }
}

/// `E` (a [`Caller`] or [`User`]), extracted first, and then flag `F`
/// required on for its tenant: a caller who is not authenticated learns
/// nothing about the tenant's flags.
pub struct Gated<F: Flag, E> {
    /// The inner extractor.
    pub inner: E,
    _flag: PhantomData<F>,
}

impl<F: Flag, E> std::ops::Deref for Gated<F, E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.inner
    }
}

impl<F: Flag + 'static, E: FromRequest<Error = ApiError> + InTenant + 'static> FromRequest
    for Gated<F, E>
{
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let inner = E::from_request(req, payload);
        let state = state_of(req);
        Box::pin(async move {
            let inner = inner.await?;
            let state = state?;
            require_flag::<F>(&state, inner.tenant()).await?;
            Ok(Gated {
                inner,
                _flag: PhantomData,
            })
        })
    }
}

/// The operator on the admin listener, from its client certificate.
pub struct Operator(pub ClientIdentity);

impl Operator {
    /// The recorded actor: `mtls:<subject>`.
    pub fn actor(&self) -> String {
        format!("mtls:{}", self.0.subject)
    }
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.conn_data::<ClientIdentity>()
                .cloned()
                .map(Operator)
                .ok_or_else(ApiError::client_certificate_required),
        )
    }
}

/// Pagination parameters of lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Opaque cursor from the previous page's `meta.nextCursor`.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
}

impl PageQuery {
    /// The page size: `default` when absent, clamped to `1..=max`.
    pub fn limit(&self, default: usize, max: usize) -> usize {
        self.limit.unwrap_or(default).clamp(1, max)
    }

    /// The cursor as given and the page size as asked (default 20), for
    /// services that decode the cursor and clamp the size themselves.
    pub fn as_given(&self) -> (Option<&str>, usize) {
        (self.cursor.as_deref(), self.limit.unwrap_or(20))
    }

    /// The cursor's text (cursors are URL-safe base64 of a string).
    pub fn cursor_text(&self) -> Result<Option<String>, ApiError> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// A cursor for `text`.
pub fn encode_cursor(text: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// The bytes of a cursor.
pub fn decode_cursor_bytes(cursor: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ApiError::bad_request("malformed cursor"))
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    String::from_utf8(decode_cursor_bytes(cursor)?)
        .map_err(|_| ApiError::bad_request("malformed cursor"))
}

/// The bearer token of a WebSocket handshake (browsers cannot set headers
/// on one): `?access_token=`, then `Sec-WebSocket-Protocol: bearer, <token>`,
/// then `Authorization`.
pub fn ws_bearer_token(req: &HttpRequest, access_token: Option<&str>) -> Option<String> {
    if let Some(t) = access_token.filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    let protocols: Vec<&str> = req
        .headers()
        .get_all(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if let Some(i) = protocols
        .iter()
        .position(|p| p.eq_ignore_ascii_case("bearer"))
        && let Some(t) = protocols.get(i + 1).filter(|t| !t.is_empty())
    {
        return Some((*t).to_owned());
    }
    bearer_token(req).map(str::to_owned)
}

/// A crate service built from the state for one request.
pub trait TenantService: Sized {
    /// The service over the state's tenant pool.
    fn from_state(state: &AppState) -> Self;
}

impl TenantService for rampart_portfolio::PortfolioService {
    fn from_state(state: &AppState) -> Self {
        Self::new(state.tenants.clone())
    }
}

impl TenantService for rampart_portfolio::CaseService {
    fn from_state(state: &AppState) -> Self {
        Self::new(state.tenants.clone())
    }
}

/// A crate service `S` as the calling user: the tenant of the path
/// (checked against the token), permission `P` required, and the actor the
/// crate checks each object's own access (owner, share, tenant admin) for.
pub struct AsUser<S, P: Requirement> {
    /// The service.
    pub svc: S,
    /// The tenant of the path.
    pub tenant: TenantSlug,
    /// The caller as the crate sees it.
    pub actor: rampart_portfolio::Actor,
    _permission: PhantomData<P>,
}

impl<S: TenantService + 'static, P: Requirement + 'static> FromRequest for AsUser<S, P> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = User::<P>::from_request(req, payload);
        let svc = state_of(req).map(|state| S::from_state(&state));
        Box::pin(async move {
            let user = user.await?;
            Ok(AsUser {
                svc: svc?,
                actor: user.portfolio_actor(),
                tenant: user.caller.tenant,
                _permission: PhantomData,
            })
        })
    }
}
