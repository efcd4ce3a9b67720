//! The OAuth 2.1 authorization server logic (framework-agnostic): client
//! registry, authorization requests (PKCE S256 only), the token endpoint
//! (`authorization_code`, `refresh_token`, `client_credentials`),
//! revocation (RFC 7009), introspection (RFC 7662), discovery (RFC 8414 and
//! OpenID Connect), JWKS and userinfo.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use diesel::dsl::{exists, now};
use diesel::sql_types::{Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use std::sync::Arc;

use rampart_tenancy::TenantPool;

use crate::audit::{AuditEvent, append, audit_time};
use crate::config::AuthConfig;
use crate::context::{ClientContext, ct_eq, random_secret, sha256, tenant_id, ttl};
use crate::error::AuthError;
use crate::keys::{KeyEncryptionKey, SigningAlg};
use crate::revocation::{Holder, RevocationFeed, revoke_tokens};
use crate::roles::{KNOWN_SCOPES, Principal, Role};
use crate::schema::{authorization_codes, oauth_clients, refresh_tokens};
use crate::session::SessionInfo;
use crate::token::{AccessTokenRequest, IdTokenClaims, TokenService, VerifiedAccessToken};
use crate::users::{self, User};

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// Public client (PKCE only).
    None,
    /// HTTP Basic with the client secret.
    ClientSecretBasic,
    /// Secret in the form body.
    ClientSecretPost,
}

impl ClientAuthMethod {
    fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::None => "none",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "client_secret_basic" => ClientAuthMethod::ClientSecretBasic,
            "client_secret_post" => ClientAuthMethod::ClientSecretPost,
            _ => ClientAuthMethod::None,
        }
    }
}

/// A client to register in a tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRegistration {
    /// Client id, unique in the tenant.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`.
    pub grant_types: Vec<String>,
    /// Scopes it may ask for.
    pub allowed_scopes: Vec<String>,
    /// Token endpoint authentication.
    pub auth_method: ClientAuthMethod,
    /// Signing algorithm of its tokens.
    pub signing_alg: SigningAlg,
}

/// A registered client (no secret).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_clients, check_for_backend(diesel::pg::Pg))]
pub struct Client {
    /// Id.
    pub client_id: String,
    /// Name.
    pub name: String,
    secret_hash: Option<Vec<u8>>,
    auth_method: String,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Grant types.
    pub grant_types: Vec<String>,
    /// Allowed scopes.
    pub allowed_scopes: Vec<String>,
    signing_alg: String,
    service_role: String,
}

impl Client {
    /// The signing algorithm.
    pub fn signing_alg(&self) -> SigningAlg {
        SigningAlg::parse(&self.signing_alg).unwrap_or_default()
    }
    /// The authentication method.
    pub fn auth_method(&self) -> ClientAuthMethod {
        ClientAuthMethod::parse(&self.auth_method)
    }
    fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

/// Client authentication as presented at an endpoint.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// Client id.
    pub client_id: String,
    /// Secret, if any.
    pub secret: Option<String>,
    /// How it was presented.
    pub method: ClientAuthMethod,
}

/// `GET /oauth/authorize` parameters.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeRequest {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Redirect URI (required).
    pub redirect_uri: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Opaque client state, echoed.
    pub state: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// Must be `S256`.
    pub code_challenge_method: Option<String>,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// OIDC `prompt`: `none` (never show a page: `login_required` when not
    /// signed in), `login` (sign in again), `consent`, `select_account`.
    #[serde(default)]
    pub prompt: Option<String>,
    /// OIDC `max_age`: sign in again when the session's sign-in is older
    /// than this many seconds.
    #[serde(default)]
    pub max_age: Option<i64>,
}

/// A checked authorization request, ready for login and consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidatedAuthorize {
    /// Client.
    pub client_id: String,
    /// Client name.
    pub client_name: String,
    /// The redirect URI, as sent (exactly matched).
    pub redirect_uri: String,
    /// Granted scopes.
    pub scope: String,
    /// State.
    pub state: Option<String>,
    /// PKCE challenge (S256).
    pub code_challenge: String,
    /// Nonce.
    pub nonce: Option<String>,
    /// `prompt=login`: a fresh sign-in, whatever session exists.
    #[serde(default)]
    pub prompt_login: bool,
    /// `prompt=none`: no page at all.
    #[serde(default)]
    pub prompt_none: bool,
    /// `max_age` in seconds.
    #[serde(default)]
    pub max_age: Option<i64>,
}

impl ValidatedAuthorize {
    /// Whether a session signed in at `auth_time` must sign in again.
    pub fn needs_login(&self, auth_time: DateTime<Utc>) -> bool {
        self.prompt_login
            || self
                .max_age
                .is_some_and(|max| (Utc::now() - auth_time).num_seconds() > max)
    }

    /// The redirect that answers `prompt=none` without a usable session
    /// (OIDC Core 3.1.2.6: `login_required`).
    pub fn login_required(&self, issuer: &str) -> String {
        let mut params = vec![
            ("error", "login_required"),
            ("error_description", "the user must sign in"),
            ("iss", issuer),
        ];
        if let Some(state) = &self.state {
            params.push(("state", state.as_str()));
        }
        append_query(&self.redirect_uri, &params)
    }
}

/// Why an authorization request failed, and where to tell.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page,
    /// never redirect.
    Page(AuthError),
    /// Redirect back to the client with `error`, `state` and `iss`.
    Redirect {
        /// Where to send the user agent (already carrying the error).
        location: String,
        /// The error.
        error: AuthError,
    },
}

/// `POST /oauth/token` parameters (after client authentication parsing).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    /// Grant type.
    pub grant_type: Option<String>,
    /// Authorization code.
    pub code: Option<String>,
    /// Redirect URI of the authorization request.
    pub redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// Refresh token.
    pub refresh_token: Option<String>,
    /// Requested scope.
    pub scope: Option<String>,
}

/// A successful token response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    /// JWT access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: u64,
    /// Opaque refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OIDC ID token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Granted scope.
    pub scope: String,
}

/// Redirect URIs must be absolute and carry no fragment.
pub(crate) fn check_redirect_uris(uris: &[String]) -> Result<(), AuthError> {
    for uri in uris {
        // Kept inline in `authorization_codes` (no TOAST table).
        if uri.len() > MAX_REDIRECT_URI_BYTES {
            return Err(AuthError::InvalidRequest(format!(
                "redirect_uri longer than {MAX_REDIRECT_URI_BYTES} bytes"
            )));
        }
        let u = url::Url::parse(uri)
            .map_err(|_| AuthError::InvalidRequest("redirect_uri must be absolute".into()))?;
        if u.fragment().is_some() {
            return Err(AuthError::InvalidRequest(
                "redirect_uri must not have a fragment".into(),
            ));
        }
    }
    Ok(())
}

/// The longest redirect URI a client may register.
pub const MAX_REDIRECT_URI_BYTES: usize = 2_000;

/// The longest OpenID Connect `nonce` an authorization request may carry
/// (it is kept with the code and copied into the ID token).
pub const MAX_NONCE_BYTES: usize = 512;

/// Every scope must be one Rampart knows.
pub(crate) fn check_scopes(scopes: &[String]) -> Result<(), AuthError> {
    match scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        Some(bad) => Err(AuthError::InvalidScope(bad.clone())),
        None => Ok(()),
    }
}

fn invalid_request(msg: &str) -> AuthError {
    AuthError::InvalidRequest(msg.to_owned())
}

/// The request parameter `name`, which must be present.
fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, AuthError> {
    value.ok_or_else(|| AuthError::InvalidRequest(format!("{name} missing")))
}

fn is_loopback_redirect(u: &url::Url) -> bool {
    u.scheme() == "http" && matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || u.scheme() == "http" && matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
}

/// Exact string match against the registered URIs; for loopback IP
/// redirect URIs (RFC 8252 §7.3) only the port may differ.
pub fn redirect_uri_matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(req) = url::Url::parse(requested) else {
        return false;
    };
    if !is_loopback_redirect(&req) {
        return false;
    }
    registered.iter().any(|r| {
        url::Url::parse(r).is_ok_and(|mut reg| {
            let mut req = req.clone();
            is_loopback_redirect(&reg)
                && reg.set_port(None).is_ok()
                && req.set_port(None).is_ok()
                && reg.as_str() == req.as_str()
        })
    })
}

fn valid_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a PKCE verifier against an S256 challenge in constant time.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    valid_pkce_value(verifier)
        && ct_eq(
            B64.encode(sha256(verifier.as_bytes())).as_bytes(),
            challenge.as_bytes(),
        )
}

fn grant_scope(requested: Option<&str>, allowed: &[String]) -> Result<String, AuthError> {
    let requested: Vec<&str> = match requested {
        Some(s) if !s.trim().is_empty() => s.split_whitespace().collect(),
        _ => allowed.iter().map(String::as_str).collect(),
    };
    for s in &requested {
        if !KNOWN_SCOPES.contains(s) || !allowed.iter().any(|a| a == s) {
            return Err(AuthError::InvalidScope((*s).to_owned()));
        }
    }
    let mut out: Vec<&str> = Vec::new();
    for s in requested {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out.join(" "))
}

fn append_query(base: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => base.to_owned(),
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = authorization_codes, check_for_backend(diesel::pg::Pg))]
struct CodeRow {
    client_id: String,
    user_id: UserId,
    session_id: Option<Uuid>,
    redirect_uri: String,
    scope: String,
    code_challenge: String,
    nonce: Option<String>,
    auth_time: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// The refresh grant's one statement: marks the presented token rotated,
/// inserts its successor, appends the `token_refresh` audit event (the
/// fields [`append`] writes) and reads the user (active only).
///
/// Raw SQL: a data-modifying CTE. Its fixed text and static query id let
/// diesel keep it prepared per connection, where a `sql_query` is parsed
/// and planned on every refresh.
struct Rotation<'a> {
    hash: &'a [u8],
    client_id: &'a str,
    successor_id: Uuid,
    sealed: Option<&'a str>,
    successor_hash: &'a [u8],
    idle_secs: f64,
    /// The audit event's time, tenant and client.
    occurred_at: DateTime<Utc>,
    tenant_id: Uuid,
    ctx: &'a ClientContext,
}

impl diesel::query_builder::QueryId for Rotation<'_> {
    type QueryId = Rotation<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for Rotation<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for Rotation<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> diesel::QueryResult<()> {
        out.push_sql(
            "WITH old AS (UPDATE refresh_tokens SET rotated_at = now(), successor_sealed = ",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.sealed)?;
        out.push_sql(", successor_id = ");
        out.push_bind_param::<SqlUuid, _>(&self.successor_id)?;
        out.push_sql(" WHERE token_hash = ");
        out.push_bind_param::<Bytea, _>(&self.hash)?;
        out.push_sql(" AND client_id = ");
        out.push_bind_param::<Text, _>(&self.client_id)?;
        out.push_sql(
            " AND rotated_at IS NULL AND revoked_at IS NULL \
               AND expires_at > now() AND family_expires_at > now() \
             RETURNING family_id, client_id, user_id, session_id, scope, auth_code_hash, auth_time, family_expires_at), \
             ins AS (INSERT INTO refresh_tokens (id, token_hash, family_id, client_id, user_id, session_id, scope, \
               auth_code_hash, auth_time, expires_at, family_expires_at) SELECT ",
        );
        out.push_bind_param::<SqlUuid, _>(&self.successor_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Bytea, _>(&self.successor_hash)?;
        out.push_sql(
            ", family_id, client_id, user_id, session_id, scope, auth_code_hash, auth_time, \
               least(now() + make_interval(secs => ",
        );
        out.push_bind_param::<diesel::sql_types::Double, _>(&self.idle_secs)?;
        out.push_sql(
            "), family_expires_at), family_expires_at FROM old RETURNING id), \
             audit AS (INSERT INTO audit_log (occurred_at, tenant_id, user_id, actor, action, result, ip, \
               user_agent, detail) SELECT ",
        );
        out.push_bind_param::<Timestamptz, _>(&self.occurred_at)?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&self.tenant_id)?;
        out.push_sql(", user_id, ");
        out.push_bind_param::<Text, _>(&self.client_id)?;
        out.push_sql(", 'token_refresh', 'success', ");
        out.push_bind_param::<Text, _>(&self.ctx.ip)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.ctx.user_agent)?;
        out.push_sql(
            ", '{}'::jsonb FROM old) \
             SELECT old.family_id, old.user_id, old.session_id, old.scope, old.auth_time, \
               u.email, u.display_name, u.role, u.totp_enabled \
             FROM old LEFT JOIN users u ON u.id = old.user_id AND u.status = 'active'",
        );
        Ok(())
    }
}

#[derive(diesel::QueryableByName)]
struct RotatedRow {
    #[diesel(sql_type = SqlUuid)]
    family_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: UserId,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    session_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    scope: String,
    #[diesel(sql_type = Timestamptz)]
    auth_time: DateTime<Utc>,
    /// The user's row, read in the same statement when the user is active.
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    display_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    role: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Bool>)]
    totp_enabled: Option<bool>,
}

impl RotatedRow {
    /// The active user read with the rotation, if it was.
    fn active_user(&mut self) -> Option<User> {
        Some(User {
            id: self.user_id,
            email: self.email.take()?,
            display_name: self.display_name.take()?,
            role: self.role.take()?,
            status: "active".into(),
            totp_enabled: self.totp_enabled?,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
struct RefreshState {
    family_id: Uuid,
    client_id: String,
    user_id: UserId,
    session_id: Option<Uuid>,
    scope: String,
    auth_time: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    successor_sealed: Option<String>,
    successor_id: Option<Uuid>,
}

/// What the tokens are minted for (by the client of the [`TokenCall`]).
struct Grant<'a> {
    user: Option<&'a User>,
    scope: String,
    session_id: Option<Uuid>,
    auth_time: Option<DateTime<Utc>>,
    family_id: Option<Uuid>,
    nonce: Option<String>,
}

impl<'a> Grant<'a> {
    /// Tokens for `user` of login session `session_id` (authenticated at
    /// `auth_time`) in refresh-token family `family`.
    fn to_user(
        user: &'a User,
        scope: String,
        (session_id, auth_time): (Option<Uuid>, DateTime<Utc>),
        family: Uuid,
    ) -> Self {
        Self {
            user: Some(user),
            scope,
            session_id,
            auth_time: Some(auth_time),
            family_id: Some(family),
            nonce: None,
        }
    }

    /// Tokens for the client itself (`client_credentials`).
    fn to_client(scope: String) -> Self {
        Self {
            user: None,
            scope,
            session_id: None,
            auth_time: None,
            family_id: None,
            nonce: None,
        }
    }
}

/// A token request of an authenticated client, for a grant type it may use.
#[derive(Clone, Copy)]
struct TokenCall<'a> {
    tenant: &'a TenantSlug,
    tenant_id: Uuid,
    client: &'a Client,
    req: &'a TokenRequest,
    ctx: &'a ClientContext,
}

impl TokenCall<'_> {
    /// An audit event of this call: the client acting, from its context.
    fn event(&self, action: &str, result: &str, user: Option<UserId>) -> AuditEvent {
        AuditEvent::new(action, result)
            .user(user)
            .client(self.ctx)
            .actor(&self.client.client_id)
    }
}

/// The registered client if `creds` authenticate it with its registered
/// method.
fn check_client_credentials(
    client: Client,
    creds: &ClientCredentials,
) -> Result<Client, AuthError> {
    if credentials_match(&client, creds) {
        Ok(client)
    } else {
        Err(AuthError::InvalidClient)
    }
}

/// Whether `creds` authenticate `client` (the secret compared in constant time).
fn credentials_match(client: &Client, creds: &ClientCredentials) -> bool {
    match (client.auth_method(), &creds.secret, &client.secret_hash) {
        (ClientAuthMethod::None, None, _) => creds.method == ClientAuthMethod::None,
        (registered, Some(secret), Some(hash)) if registered == creds.method => {
            ct_eq(&sha256(secret.as_bytes()), hash)
        }
        _ => false,
    }
}

/// Revokes every refresh-token family of `families` (their refresh tokens
/// and the access tokens minted in them).
async fn revoke_families(
    conn: &mut AsyncPgConnection,
    feed: &RevocationFeed,
    families: impl IntoIterator<Item = Uuid>,
) -> Result<(), AuthError> {
    for family in families {
        revoke_tokens(conn, feed, Holder::Family(family)).await?;
    }
    Ok(())
}

/// A client that is not disabled.
async fn enabled_client(
    conn: &mut AsyncPgConnection,
    client_id: &str,
) -> Result<Option<Client>, AuthError> {
    Ok(oauth_clients::table
        .find(client_id)
        .filter(oauth_clients::disabled_at.is_null())
        .select(Client::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A refresh token's row by the hash of the token.
async fn refresh_state(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
) -> Result<Option<RefreshState>, AuthError> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(RefreshState::as_select())
        .first(conn)
        .await
        .optional()?)
}

async fn load_user(conn: &mut AsyncPgConnection, id: UserId) -> Result<User, AuthError> {
    users::find_active(conn, id)
        .await?
        .ok_or_else(|| AuthError::InvalidGrant("user is not active".into()))
}

/// Key: (tenant, client_id, SHA-256 of the secret that authenticated).
pub(crate) type ClientCache = moka::sync::Cache<(String, String, [u8; 32]), Arc<Client>>;

/// How long an authenticated client is trusted without re-reading its row
/// (a disabled client keeps introspecting at most this long).
pub(crate) const CLIENT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The OAuth 2.1 authorization server: clients, authorize, token (code,
/// refresh, client credentials), revocation, introspection, bearer
/// authentication, userinfo, discovery and JWKS.
#[derive(Clone)]
pub struct OAuthService {
    pub(crate) pool: TenantPool,
    pub(crate) config: Arc<AuthConfig>,
    pub(crate) tokens: Arc<TokenService>,
    /// Seals refresh successors at rest (the grace-window replay answer).
    pub(crate) sealer: KeyEncryptionKey,
    /// Confidential clients that authenticated at introspection recently.
    pub(crate) client_cache: ClientCache,
    pub(crate) revocations: Arc<RevocationFeed>,
    /// The roles' permissions, read for every bearer token.
    pub(crate) roles: crate::tenant_roles::RoleService,
}

impl std::fmt::Debug for OAuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthService").finish_non_exhaustive()
    }
}

impl OAuthService {
    fn issuer(&self, tenant: &TenantSlug) -> String {
        self.config.issuer(tenant)
    }

    /// Registers a client; returns its secret (shown once) for confidential clients.
    pub async fn register_client(
        &self,
        tenant: &TenantSlug,
        reg: &ClientRegistration,
    ) -> Result<Option<String>, AuthError> {
        if reg.client_id.is_empty() || reg.client_id.len() > 100 {
            return Err(invalid_request("client_id"));
        }
        for g in &reg.grant_types {
            if !matches!(
                g.as_str(),
                "authorization_code" | "refresh_token" | "client_credentials"
            ) {
                return Err(AuthError::UnsupportedGrantType(g.clone()));
            }
        }
        if reg.auth_method == ClientAuthMethod::None
            && reg.grant_types.iter().any(|g| g == "client_credentials")
        {
            return Err(invalid_request(
                "public clients cannot use client_credentials",
            ));
        }
        check_redirect_uris(&reg.redirect_uris)?;
        check_scopes(&reg.allowed_scopes)?;
        let secret = (reg.auth_method != ClientAuthMethod::None).then(|| random_secret(32));
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let n = diesel::insert_into(oauth_clients::table)
                    .values((
                        oauth_clients::client_id.eq(&reg.client_id),
                        oauth_clients::name.eq(&reg.name),
                        oauth_clients::secret_hash
                            .eq(secret.as_ref().map(|s| sha256(s.as_bytes()))),
                        oauth_clients::auth_method.eq(reg.auth_method.as_str()),
                        oauth_clients::redirect_uris.eq(&reg.redirect_uris),
                        oauth_clients::grant_types.eq(&reg.grant_types),
                        oauth_clients::allowed_scopes.eq(&reg.allowed_scopes),
                        oauth_clients::signing_alg.eq(reg.signing_alg.as_str()),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                if n == 0 {
                    return Err(AuthError::Conflict("client_id exists".into()));
                }
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::new("client_register", "success")
                        .detail(serde_json::json!({"client_id": reg.client_id})),
                )
                .await?;
                Ok(())
            })
            .await?;
        Ok(secret)
    }

    /// A client by id.
    pub async fn client(&self, tenant: &TenantSlug, client_id: &str) -> Result<Client, AuthError> {
        let client_id = client_id.to_owned();
        self.pool
            .with_tenant(tenant, async |conn| {
                enabled_client(conn, &client_id)
                    .await?
                    .ok_or(AuthError::InvalidClient)
            })
            .await
    }

    /// Authenticates a client at the token, revocation or introspection endpoint.
    pub async fn authenticate_client(
        &self,
        tenant: &TenantSlug,
        creds: &ClientCredentials,
    ) -> Result<Client, AuthError> {
        let client = self.client(tenant, &creds.client_id).await?;
        check_client_credentials(client, creds)
    }

    /// Validates an authorization request: client, exact redirect URI, then
    /// response type, PKCE (S256 only) and scope.
    pub async fn validate_authorize(
        &self,
        tenant: &TenantSlug,
        req: &AuthorizeRequest,
    ) -> Result<ValidatedAuthorize, AuthorizeError> {
        let client_id =
            required(req.client_id.as_deref(), "client_id").map_err(AuthorizeError::Page)?;
        let client = self
            .client(tenant, client_id)
            .await
            .map_err(AuthorizeError::Page)?;
        let redirect_uri =
            required(req.redirect_uri.as_deref(), "redirect_uri").map_err(AuthorizeError::Page)?;
        if !redirect_uri_matches(&client.redirect_uris, redirect_uri) {
            return Err(AuthorizeError::Page(invalid_request(
                "redirect_uri is not registered",
            )));
        }
        let issuer = self.issuer(tenant);
        let fail = |error: AuthError| {
            let mut params = vec![("error", error.oauth_code()), ("iss", issuer.as_str())];
            let desc = error.public_description();
            params.push(("error_description", desc.as_str()));
            if let Some(state) = &req.state {
                params.push(("state", state.as_str()));
            }
            AuthorizeError::Redirect {
                location: append_query(redirect_uri, &params),
                error,
            }
        };
        if req.response_type.as_deref() != Some("code") {
            return Err(fail(AuthError::UnsupportedResponseType(
                req.response_type.clone().unwrap_or_default(),
            )));
        }
        if !client.allows_grant("authorization_code") {
            return Err(fail(AuthError::UnauthorizedClient(
                "authorization_code".into(),
            )));
        }
        let challenge = match (
            req.code_challenge.as_deref(),
            req.code_challenge_method.as_deref(),
        ) {
            (Some(c), Some("S256")) if c.len() == 43 && valid_pkce_value(c) => c.to_owned(),
            (None, _) => return Err(fail(invalid_request("code_challenge required (PKCE S256)"))),
            (Some(_), Some("S256")) => {
                return Err(fail(invalid_request("malformed code_challenge")));
            }
            _ => return Err(fail(invalid_request("code_challenge_method must be S256"))),
        };
        let scope = grant_scope(req.scope.as_deref(), &client.allowed_scopes).map_err(fail)?;
        let prompts: Vec<&str> = req
            .prompt
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        if let Some(unknown) = prompts
            .iter()
            .find(|p| !["none", "login", "consent", "select_account"].contains(p))
        {
            return Err(fail(invalid_request(&format!(
                "unknown prompt {:?}",
                unknown.chars().take(20).collect::<String>()
            ))));
        }
        let prompt_none = prompts.contains(&"none");
        if prompt_none && prompts.len() > 1 {
            return Err(fail(invalid_request("prompt=none stands alone")));
        }
        if req.max_age.is_some_and(|m| m < 0) {
            return Err(fail(invalid_request("max_age must not be negative")));
        }
        if req
            .nonce
            .as_ref()
            .is_some_and(|n| n.len() > MAX_NONCE_BYTES)
        {
            return Err(fail(invalid_request(&format!(
                "nonce longer than {MAX_NONCE_BYTES} bytes"
            ))));
        }
        Ok(ValidatedAuthorize {
            prompt_login: prompts.contains(&"login"),
            prompt_none,
            max_age: req.max_age,
            client_id: client.client_id,
            client_name: client.name,
            redirect_uri: redirect_uri.to_owned(),
            scope,
            state: req.state.clone(),
            code_challenge: challenge,
            nonce: req.nonce.clone(),
        })
    }

    /// Issues an authorization code for a logged-in session and returns the
    /// redirect location (`code`, `state`, `iss`).
    pub async fn issue_authorization_code(
        &self,
        tenant: &TenantSlug,
        request: &ValidatedAuthorize,
        session: &SessionInfo,
    ) -> Result<String, AuthError> {
        let code = random_secret(32);
        let ttl = chrono::Duration::seconds(
            i64::try_from(self.config.authorization_code_ttl_secs).unwrap_or(60),
        );
        self.pool
            .with_tenant(tenant, async |conn| {
                diesel::insert_into(authorization_codes::table)
                    .values((
                        authorization_codes::code_hash.eq(sha256(code.as_bytes())),
                        authorization_codes::client_id.eq(&request.client_id),
                        authorization_codes::user_id.eq(session.user_id),
                        authorization_codes::session_id.eq(session.id),
                        authorization_codes::redirect_uri.eq(&request.redirect_uri),
                        authorization_codes::scope.eq(&request.scope),
                        authorization_codes::code_challenge.eq(&request.code_challenge),
                        authorization_codes::nonce.eq(request.nonce.as_deref()),
                        authorization_codes::auth_time.eq(session.auth_time),
                        authorization_codes::expires_at.eq(Utc::now() + ttl),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<_, AuthError>(())
            })
            .await?;
        let issuer = self.issuer(tenant);
        let mut params = vec![("code", code.as_str()), ("iss", issuer.as_str())];
        if let Some(state) = &request.state {
            params.push(("state", state.as_str()));
        }
        Ok(append_query(&request.redirect_uri, &params))
    }

    /// The token endpoint.
    pub async fn token(
        &self,
        tenant: &TenantSlug,
        creds: &ClientCredentials,
        req: &TokenRequest,
        ctx: &ClientContext,
    ) -> Result<TokenResponse, AuthError> {
        let grant_type = required(req.grant_type.as_deref(), "grant_type")?;
        if !matches!(
            grant_type,
            "authorization_code" | "refresh_token" | "client_credentials"
        ) {
            return Err(AuthError::UnsupportedGrantType(grant_type.to_owned()));
        }
        let client = self.authenticate_client(tenant, creds).await?;
        if !client.allows_grant(grant_type) {
            return Err(AuthError::UnauthorizedClient(grant_type.to_owned()));
        }
        let call = TokenCall {
            tenant,
            tenant_id: tenant_id(&self.pool, tenant).await?,
            client: &client,
            req,
            ctx,
        };
        match grant_type {
            "authorization_code" => self.exchange_code(call).await,
            "refresh_token" => self.refresh(call).await,
            _ => self.client_credentials(call).await,
        }
    }

    fn mint(
        &self,
        call: TokenCall<'_>,
        grant: Grant<'_>,
        refresh: Option<String>,
    ) -> Result<TokenResponse, AuthError> {
        let TokenCall {
            tenant,
            tenant_id,
            client,
            ..
        } = call;
        let roles = match grant.user {
            Some(u) => vec![u.role().as_str().to_owned()],
            None => vec![
                Role::parse(&client.service_role)
                    .unwrap_or(Role::ApiUser)
                    .as_str()
                    .to_owned(),
            ],
        };
        let subject = grant
            .user
            .map(|u| u.id.to_string())
            .unwrap_or_else(|| client.client_id.clone());
        let alg = client.signing_alg();
        let (access, claims) = self.tokens.issue_access_token(&AccessTokenRequest {
            tenant_id,
            issuer: self.issuer(tenant),
            audience: self.config.access_token_audience.clone(),
            subject: subject.clone(),
            client_id: client.client_id.clone(),
            scope: grant.scope.clone(),
            roles,
            session_id: grant.session_id,
            family_id: grant.family_id,
            auth_time: grant.auth_time.map(|t| t.timestamp()),
            alg,
        })?;
        let id_token = match grant.user {
            Some(user) if grant.scope.split(' ').any(|s| s == "openid") => {
                let with_email = grant.scope.split(' ').any(|s| s == "email");
                let with_profile = grant.scope.split(' ').any(|s| s == "profile");
                Some(self.tokens.issue_id_token(
                    alg,
                    IdTokenClaims {
                        iss: self.issuer(tenant),
                        sub: subject,
                        aud: client.client_id.clone(),
                        exp: 0,
                        iat: 0,
                        auth_time: grant.auth_time.map(|t| t.timestamp()).unwrap_or(claims.iat),
                        nonce: grant.nonce.clone(),
                        at_hash: None,
                        sid: grant.session_id.map(|s| s.to_string()),
                        email: with_email.then(|| user.email.clone()),
                        name: with_profile.then(|| user.display_name.clone()),
                    },
                    Some(&access),
                )?)
            }
            _ => None,
        };
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer".into(),
            expires_in: self.config.access_token_ttl_secs,
            refresh_token: refresh,
            id_token,
            scope: grant.scope,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_refresh(
        &self,
        conn: &mut AsyncPgConnection,
        family: Uuid,
        client: &Client,
        user_id: UserId,
        session_id: Option<Uuid>,
        scope: &str,
        code_hash: Option<&[u8]>,
        auth_time: DateTime<Utc>,
        idle_ttl_secs: u64,
    ) -> Result<String, AuthError> {
        let token = random_secret(32);
        let issued = Utc::now();
        diesel::insert_into(refresh_tokens::table)
            .values((
                refresh_tokens::token_hash.eq(sha256(token.as_bytes())),
                refresh_tokens::family_id.eq(family),
                refresh_tokens::client_id.eq(&client.client_id),
                refresh_tokens::user_id.eq(user_id),
                refresh_tokens::session_id.eq(session_id),
                refresh_tokens::scope.eq(scope),
                refresh_tokens::auth_code_hash.eq(code_hash),
                refresh_tokens::auth_time.eq(auth_time),
                refresh_tokens::expires_at.eq(issued + ttl(idle_ttl_secs)),
                refresh_tokens::family_expires_at
                    .eq(issued + ttl(self.config.refresh_family_ttl_secs)),
            ))
            .execute(conn)
            .await?;
        Ok(token)
    }

    async fn exchange_code(&self, call: TokenCall<'_>) -> Result<TokenResponse, AuthError> {
        let code = required(call.req.code.as_deref(), "code")?;
        let redirect_uri = required(call.req.redirect_uri.as_deref(), "redirect_uri")?;
        let code_hash = sha256(code.as_bytes());
        let refresh_ttl_secs = self
            .pool
            .tenant_settings(call.tenant)
            .await?
            .refresh_lifetime_secs;
        // The family this exchange starts, kept on the code's row: a replay
        // of the code revokes it.
        let family = Uuid::new_v4();
        self.pool
            .with_tenant(call.tenant, async |conn| {
                let row: Option<CodeRow> = diesel::update(
                    authorization_codes::table
                        .find(&code_hash)
                        .filter(authorization_codes::used_at.is_null()),
                )
                .set((
                    authorization_codes::used_at.eq(now),
                    authorization_codes::family_id.eq(family),
                ))
                .returning(CodeRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
                let Some(row) = row else {
                    // Unknown, or a replay: a replayed code revokes the whole
                    // family it started (its refresh tokens and every access
                    // token minted from the code or by refreshes of it).
                    let replayed: bool =
                        diesel::select(exists(authorization_codes::table.find(&code_hash)))
                            .get_result(conn)
                            .await?;
                    if replayed {
                        // The family of the first exchange (its access
                        // tokens carry it), and any refresh tokens of the
                        // code (rows from before families were kept on
                        // codes).
                        let mut families: Vec<Uuid> = refresh_tokens::table
                            .filter(refresh_tokens::auth_code_hash.eq(&code_hash))
                            .select(refresh_tokens::family_id)
                            .distinct()
                            .load(conn)
                            .await?;
                        let first: Option<Uuid> = authorization_codes::table
                            .find(&code_hash)
                            .select(authorization_codes::family_id)
                            .first(conn)
                            .await?;
                        families.extend(first);
                        families.sort_unstable();
                        families.dedup();
                        revoke_families(conn, &self.revocations, families).await?;
                        append(
                            conn,
                            call.tenant_id,
                            &call.event("code_replay", "revoked", None),
                        )
                        .await?;
                    }
                    return Ok(Err(AuthError::InvalidGrant(
                        "code is invalid or was used".into(),
                    )));
                };
                if row.client_id != call.client.client_id {
                    return Ok(Err(AuthError::InvalidGrant(
                        "code was issued to another client".into(),
                    )));
                }
                if row.expires_at <= Utc::now() {
                    return Ok(Err(AuthError::InvalidGrant("code expired".into())));
                }
                if row.redirect_uri != redirect_uri {
                    return Ok(Err(AuthError::InvalidGrant(
                        "redirect_uri does not match".into(),
                    )));
                }
                let Some(verifier) = call.req.code_verifier.as_deref() else {
                    return Ok(Err(AuthError::InvalidGrant(
                        "code_verifier required".into(),
                    )));
                };
                if !pkce_s256_matches(verifier, &row.code_challenge) {
                    return Ok(Err(AuthError::InvalidGrant(
                        "code_verifier does not match".into(),
                    )));
                }
                let user = load_user(conn, row.user_id).await?;
                let refresh = if call.client.allows_grant("refresh_token") {
                    Some(
                        self.insert_refresh(
                            conn,
                            family,
                            call.client,
                            user.id,
                            row.session_id,
                            &row.scope,
                            Some(&code_hash),
                            row.auth_time,
                            refresh_ttl_secs,
                        )
                        .await?,
                    )
                } else {
                    None
                };
                let grant = Grant {
                    nonce: row.nonce.clone(),
                    ..Grant::to_user(
                        &user,
                        row.scope.clone(),
                        (row.session_id, row.auth_time),
                        family,
                    )
                };
                let response = self.mint(call, grant, refresh)?;
                append(
                    conn,
                    call.tenant_id,
                    &call
                        .event("token_issue", "success", Some(user.id))
                        .detail(serde_json::json!({"grant": "authorization_code"})),
                )
                .await?;
                Ok::<_, AuthError>(Ok(response))
            })
            .await?
    }

    async fn refresh(&self, call: TokenCall<'_>) -> Result<TokenResponse, AuthError> {
        let presented = required(call.req.refresh_token.as_deref(), "refresh_token")?;
        let hash = sha256(presented.as_bytes());
        let config = crate::tenant_policy::tenant_config(
            &self.config,
            &*self.pool.tenant_settings(call.tenant).await?,
        );
        let successor = random_secret(32);
        let grace = i64::try_from(config.refresh_grace_secs).unwrap_or(0);
        // The successor is kept (sealed) only for a grace-window retry.
        let sealed = if grace > 0 {
            Some(self.sealer.seal(successor.as_bytes())?)
        } else {
            None
        };
        self.pool
            .with_tenant(call.tenant, async |conn| {
                // One statement: mark the presented token rotated and insert
                // its successor. A concurrent refresh of the same token waits
                // on the row lock, then finds it rotated (no fork, no
                // serialization failure).
                let successor_hash = sha256(successor.as_bytes());
                let rotated: Vec<RotatedRow> = Rotation {
                    hash: &hash,
                    client_id: &call.client.client_id,
                    successor_id: Uuid::new_v4(),
                    sealed: sealed.as_deref(),
                    successor_hash: &successor_hash,
                    idle_secs: config.refresh_token_ttl_secs as f64,
                    occurred_at: audit_time(),
                    tenant_id: call.tenant_id,
                    ctx: call.ctx,
                }
                .load(conn)
                .await?;
                // Audited by the rotation itself; a grace-window retry below.
                let mut audited = true;
                let (mut row, token) = match rotated.into_iter().next() {
                    Some(row) => (row, successor.clone()),
                    None => {
                        let Some(state) = refresh_state(conn, &hash).await? else {
                            return Ok(Err(AuthError::InvalidGrant(
                                "unknown refresh token".into(),
                            )));
                        };
                        if state.client_id != call.client.client_id {
                            return Ok(Err(AuthError::InvalidGrant(
                                "refresh token of another client".into(),
                            )));
                        }
                        if state.revoked_at.is_some() || state.expires_at <= Utc::now() {
                            return Ok(Err(AuthError::InvalidGrant(
                                "refresh token revoked or expired".into(),
                            )));
                        }
                        // Grace (off by default): a retry of a just-rotated
                        // token gets its successor back, only while that
                        // successor is unused and at most once; anything
                        // else is reuse and revokes the family.
                        let within_grace = grace > 0
                            && state
                                .rotated_at
                                .is_some_and(|t| t + chrono::Duration::seconds(grace) > Utc::now());
                        let successor_unused = match state.successor_id {
                            Some(id) if within_grace => {
                                diesel::select(exists(
                                    refresh_tokens::table
                                        .find(id)
                                        .filter(refresh_tokens::revoked_at.is_null())
                                        .filter(refresh_tokens::rotated_at.is_null()),
                                ))
                                .get_result::<bool>(conn)
                                .await?
                            }
                            _ => false,
                        };
                        // Taking the sealed successor is one conditional
                        // update: of concurrent retries exactly one wins.
                        let taken = successor_unused
                            && diesel::update(
                                refresh_tokens::table
                                    .filter(refresh_tokens::token_hash.eq(&hash))
                                    .filter(refresh_tokens::successor_sealed.is_not_null()),
                            )
                            .set(refresh_tokens::successor_sealed.eq(None::<String>))
                            .execute(conn)
                            .await?
                                == 1;
                        match (&state.successor_sealed, taken) {
                            (Some(sealed), true) => {
                                audited = false;
                                let token = String::from_utf8(self.sealer.open(sealed)?)
                                    .map_err(|e| AuthError::Crypto(e.to_string()))?;
                                (
                                    RotatedRow {
                                        family_id: state.family_id,
                                        user_id: state.user_id,
                                        session_id: state.session_id,
                                        scope: state.scope,
                                        auth_time: state.auth_time,
                                        email: None,
                                        display_name: None,
                                        role: None,
                                        totp_enabled: None,
                                    },
                                    token,
                                )
                            }
                            _ => {
                                revoke_families(conn, &self.revocations, [state.family_id]).await?;
                                append(
                                    conn,
                                    call.tenant_id,
                                    &call
                                        .event(
                                            "refresh_reuse",
                                            "family_revoked",
                                            Some(state.user_id),
                                        )
                                        .detail(serde_json::json!({"family": state.family_id})),
                                )
                                .await?;
                                return Ok(Err(AuthError::InvalidGrant(
                                    "refresh token reused; family revoked".into(),
                                )));
                            }
                        }
                    }
                };
                let user = match row.active_user() {
                    Some(user) => user,
                    None => load_user(conn, row.user_id).await?,
                };
                let scope = match call.req.scope.as_deref() {
                    Some(s) if !s.trim().is_empty() => {
                        let granted: Vec<&str> = row.scope.split(' ').collect();
                        if s.split_whitespace().any(|x| !granted.contains(&x)) {
                            return Ok(Err(AuthError::InvalidScope(s.to_owned())));
                        }
                        s.split_whitespace().collect::<Vec<_>>().join(" ")
                    }
                    _ => row.scope.clone(),
                };
                let grant =
                    Grant::to_user(&user, scope, (row.session_id, row.auth_time), row.family_id);
                let response = self.mint(call, grant, Some(token))?;
                if !audited {
                    let event = call.event("token_refresh", "success", Some(user.id));
                    append(conn, call.tenant_id, &event).await?;
                }
                Ok::<_, AuthError>(Ok(response))
            })
            .await?
    }

    async fn client_credentials(&self, call: TokenCall<'_>) -> Result<TokenResponse, AuthError> {
        if call.client.auth_method() == ClientAuthMethod::None {
            return Err(AuthError::UnauthorizedClient(
                "public clients cannot use client_credentials".into(),
            ));
        }
        let scope = grant_scope(call.req.scope.as_deref(), &call.client.allowed_scopes)?;
        let scope = scope
            .split(' ')
            .filter(|s| !matches!(*s, "openid" | "offline_access" | "profile" | "email"))
            .collect::<Vec<_>>()
            .join(" ");
        self.pool
            .with_tenant(call.tenant, async |conn| {
                let r = self.mint(call, Grant::to_client(scope), None)?;
                append(
                    conn,
                    call.tenant_id,
                    &call
                        .event("token_issue", "success", None)
                        .detail(serde_json::json!({"grant": "client_credentials"})),
                )
                .await?;
                Ok(r)
            })
            .await
    }

    /// Verifies a bearer access token for this tenant (signature, issuer,
    /// audience, expiry, and that its encrypted tenant is this tenant).
    /// Uses the verified-token cache; revocation is seen by introspection.
    pub async fn authenticate_bearer(
        &self,
        tenant: &TenantSlug,
        token: &str,
    ) -> Result<Principal, AuthError> {
        let verified = self.tokens.verify_access_token_shared(
            token,
            &self.issuer(tenant),
            &self.config.access_token_audience,
        )?;
        self.authenticate_verified_bearer(tenant, &verified).await
    }

    /// [`AuthServer::authenticate_bearer`] for a token this server's
    /// [`TokenService`](crate::TokenService) verified moments ago (the same
    /// request, e.g. in a rate limiter): its issuer and audience are checked
    /// again, then its tenant, revocation and the role's permissions now.
    pub async fn authenticate_verified_bearer(
        &self,
        tenant: &TenantSlug,
        verified: &VerifiedAccessToken,
    ) -> Result<Principal, AuthError> {
        let c = &verified.claims;
        if c.iss != self.issuer(tenant) || !c.aud.contains(&self.config.access_token_audience) {
            return Err(AuthError::InvalidToken("token of another issuer".into()));
        }
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        if verified.tenant_id != tenant_id {
            return Err(AuthError::InvalidToken("token of another tenant".into()));
        }
        if self.revocations.revoked(tenant_id, c).await? {
            return Err(AuthError::InvalidToken("token revoked".into()));
        }
        let role = c
            .roles
            .iter()
            .find_map(|r| Role::parse(r))
            .unwrap_or(Role::Viewer);
        // The role's permissions now, not when the token was issued.
        let permissions = self.roles.permissions(tenant, role).await?.to_vec();
        Ok(Principal {
            tenant_id,
            user_id: c.sub.parse().ok(),
            client_id: Some(c.client_id.clone()),
            role,
            permissions,
            scopes: Some(
                c.scope
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        })
    }

    /// Read the revocation feed on the next check, whatever its age: call
    /// after another process revoked tokens in this database, so this one
    /// sees them on its next request.
    pub fn access_tokens_revoked_elsewhere(&self) {
        self.revocations.stale();
    }

    /// RFC 7662 introspection. The caller must be a confidential client
    /// authenticated with its secret (a public client, which has none, gets
    /// [`AuthError::InvalidClient`]); it sees tokens of its own tenant only.
    pub async fn introspect(
        &self,
        tenant: &TenantSlug,
        creds: &ClientCredentials,
        token: &str,
    ) -> Result<serde_json::Value, AuthError> {
        if creds.secret.is_none() || creds.method == ClientAuthMethod::None {
            return Err(AuthError::InvalidClient);
        }
        let inactive = serde_json::json!({"active": false});
        if token.split('.').count() == 3 {
            // The token is verified once, with no I/O on a verified-token
            // cache hit (the tenant id comes from the tenancy cache). A
            // client that authenticated with the same secret within
            // `CLIENT_CACHE_TTL` is not read again, and the revocation
            // check reads this replica's feed, so the hot path has no
            // statement at all.
            let verified = self
                .tokens
                .verify_access_token(
                    token,
                    &self.issuer(tenant),
                    &self.config.access_token_audience,
                )
                .ok();
            let tenant_id = tenant_id(&self.pool, tenant).await?;
            let verified = verified.filter(|v| v.tenant_id == tenant_id);
            let cache_key = creds.secret.as_ref().map(|secret| {
                let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
                (tenant.to_string(), creds.client_id.clone(), digest)
            });
            let cached = cache_key
                .as_ref()
                .and_then(|k| self.client_cache.get(k))
                .filter(|c| credentials_match(c, creds));
            if cached.is_none() {
                let client =
                    check_client_credentials(self.client(tenant, &creds.client_id).await?, creds)?;
                if let Some(key) = cache_key
                    && client.secret_hash.is_some()
                {
                    self.client_cache.insert(key, Arc::new(client));
                }
            }
            let live = match &verified {
                Some(v) => !self.revocations.revoked(tenant_id, &v.claims).await?,
                None => false,
            };
            let Some(v) = verified.filter(|_| live) else {
                return Ok(inactive);
            };
            let c = v.claims;
            let username = Uuid::parse_str(&c.sub).ok();
            return Ok(serde_json::json!({
                "active": true, "scope": c.scope, "client_id": c.client_id, "sub": c.sub, "exp": c.exp,
                "iat": c.iat, "iss": c.iss, "aud": c.aud, "jti": c.jti, "token_type": "Bearer",
                "roles": c.roles, "username": username,
            }));
        }
        let _client = self.authenticate_client(tenant, creds).await?;
        let hash = sha256(token.as_bytes());
        let state: Option<RefreshState> = self
            .pool
            .with_tenant(tenant, async |conn| refresh_state(conn, &hash).await)
            .await?;
        Ok(match state {
            Some(s)
                if s.revoked_at.is_none()
                    && s.rotated_at.is_none()
                    && s.expires_at > Utc::now() =>
            {
                serde_json::json!({
                    "active": true, "scope": s.scope, "client_id": s.client_id, "sub": s.user_id.to_string(),
                    "exp": s.expires_at.timestamp(), "token_type": "refresh_token", "iss": self.issuer(tenant),
                })
            }
            _ => inactive,
        })
    }

    /// RFC 7009 revocation: a refresh token revokes its family; an access
    /// token is marked revoked. Unknown tokens are not an error.
    pub async fn revoke(
        &self,
        tenant: &TenantSlug,
        creds: &ClientCredentials,
        token: &str,
        ctx: &ClientContext,
    ) -> Result<(), AuthError> {
        let client = self.authenticate_client(tenant, creds).await?;
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        let jti = if token.split('.').count() == 3 {
            self.tokens
                .verify_access_token(
                    token,
                    &self.issuer(tenant),
                    &self.config.access_token_audience,
                )
                .ok()
                .filter(|v| v.claims.client_id == client.client_id)
                .map(|v| v.claims.jti)
        } else {
            None
        };
        let hash = sha256(token.as_bytes());
        self.pool
            .with_tenant(tenant, async |conn| {
                if let Some(jti) = &jti {
                    revoke_tokens(conn, &self.revocations, Holder::AccessToken(jti)).await?;
                } else {
                    let fams: Vec<Uuid> = refresh_tokens::table
                        .filter(refresh_tokens::token_hash.eq(&hash))
                        .filter(refresh_tokens::client_id.eq(&client.client_id))
                        .select(refresh_tokens::family_id)
                        .load(conn)
                        .await?;
                    revoke_families(conn, &self.revocations, fams).await?;
                }
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::new("token_revoke", "success")
                        .client(ctx)
                        .actor(&client.client_id),
                )
                .await?;
                Ok::<_, AuthError>(())
            })
            .await
    }

    /// OpenID Connect userinfo for a bearer token with `openid`.
    pub async fn userinfo(
        &self,
        tenant: &TenantSlug,
        bearer: &str,
    ) -> Result<serde_json::Value, AuthError> {
        let p = self.authenticate_bearer(tenant, bearer).await?;
        let scopes = p.scopes.clone().unwrap_or_default();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(AuthError::Forbidden("openid scope required".into()));
        }
        let user_id = p
            .user_id
            .ok_or_else(|| AuthError::Forbidden("no user".into()))?;
        let user = self
            .pool
            .with_tenant(tenant, async |conn| users::find(conn, user_id).await)
            .await?
            .ok_or_else(|| AuthError::NotFound("user".into()))?;
        let mut out = serde_json::json!({"sub": user.id.to_string()});
        if scopes.iter().any(|s| s == "email") {
            out["email"] = user.email.clone().into();
            out["email_verified"] = false.into();
        }
        if scopes.iter().any(|s| s == "profile") {
            out["name"] = user.display_name.clone().into();
        }
        Ok(out)
    }

    /// Discovery document (RFC 8414 / OpenID Connect Discovery).
    pub fn discovery(&self, tenant: &TenantSlug) -> serde_json::Value {
        let iss = self.issuer(tenant);
        serde_json::json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/oauth/authorize"),
            "token_endpoint": format!("{iss}/oauth/token"),
            "revocation_endpoint": format!("{iss}/oauth/revoke"),
            "introspection_endpoint": format!("{iss}/oauth/introspect"),
            "userinfo_endpoint": format!("{iss}/oauth/userinfo"),
            "jwks_uri": format!("{iss}/jwks.json"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "subject_types_supported": ["public"],
            "scopes_supported": KNOWN_SCOPES,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "email", "name", "sid"],
            "authorization_response_iss_parameter_supported": true,
        })
    }

    /// The JWKS (same platform keys for every tenant).
    pub fn jwks(&self) -> serde_json::Value {
        self.tokens.key_ring().jwks()
    }
}
