//! Login through an upstream OpenID Connect provider, per tenant.
//!
//! **Registration.** A tenant's providers live in its `upstream_providers`
//! table ([`UpstreamProvider`]: issuer, client id, callback, scopes, role of
//! new users, optional explicit endpoints, enabled); their client secrets
//! live in a secret store behind [`UpstreamSecrets`] (Vault's KV in the
//! reference server), never in the database. [`UpstreamService::put_provider`],
//! [`UpstreamService::update_provider`], [`UpstreamService::set_provider_enabled`]
//! and [`UpstreamService::delete_provider`] change them (each change
//! audited); they check the provider first — its discovery document
//! (`{issuer}/.well-known/openid-configuration`, which must name exactly
//! that issuer) or, when all three explicit endpoints are given, only its
//! JWKS — so a bad issuer is refused with [`AuthError::UpstreamDiscovery`].
//!
//! **Cache.** Logins read providers through an in-memory cache: loaded from
//! the table on a miss, kept [`PROVIDER_CACHE_TTL`] (so another replica's
//! change is seen within it), dropped at once on a local change. Discovery
//! and the JWKS are fetched again only when the row's `updated_at` changed.
//!
//! **Login.** [`UpstreamService::begin_login`] makes the authorization URL
//! (code flow, PKCE `S256`, random `state` and `nonce`) and a sealed
//! `pending` blob holding the verifier, state and nonce; the caller keeps it
//! in an HttpOnly cookie, so the login is bound to the browser that started
//! it and no table is needed. At the callback,
//! [`UpstreamService::complete_login`] checks the state, exchanges the code
//! with the `oauth2` crate, verifies the ID token's signature against the
//! provider's JWKS (josekit; never `none` or HMAC) and its `iss`, `aud`,
//! `azp`, `exp`, `iat` and `nonce`, then links the external identity
//! (`external_identities`, keyed by provider and `sub`) to a local user —
//! creating one on first login — and opens a session.
//!
//! **Linking.** A first login links to an existing local account with the
//! same e-mail only when all four hold: the tenant setting
//! `upstreamLinking` is `verified_email`, the provider's
//! `link_verified_email` flag is on, the provider says the e-mail is
//! verified, and the local account's e-mail is verified (otherwise
//! [`AuthError::LinkRefused`]: whoever registered it may not own the
//! address). When linking is not allowed, a new local user is made. A
//! provider's links are dropped when it is deleted or its issuer changes
//! (subjects are unique per issuer only).

use rampart_tenancy::TenantSlug;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::{self, JwsVerifier};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use rampart_tenancy::TenantPool;
use rampart_tenancy::UpstreamLinking;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{AuditEvent, append};
use crate::config::AuthConfig;
use crate::context::{ClientContext, ct_eq, random_secret, tenant_id, unix_now};
use crate::error::AuthError;
use crate::keys::KeyEncryptionKey;
use crate::schema::{external_identities, upstream_providers, users};
use crate::session::{LoginOutcome, create_login_challenge, create_session};
use crate::token::Audience;
use crate::upstream_provider::{self as provider_rows, UpstreamProviderInfo};
use crate::upstream_secrets::{IssuedTokens, UpstreamSecrets, UpstreamTokenSealer};
use crate::users::{self as user_rows, User, normalize_email};

pub use crate::upstream_provider::{UpstreamProvider, UpstreamProviderUpdate};
pub use crate::upstream_secrets::{MemoryUpstreamSecrets, NoUpstreamSecrets};

/// How long a started upstream login may take.
const PENDING_TTL_SECS: i64 = 600;
/// Signature algorithms accepted on upstream ID tokens.
const ID_TOKEN_ALGS: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// How long a provider read from the table is used before it is read
/// again (changes made on another replica are seen within this time).
pub const PROVIDER_CACHE_TTL: Duration = Duration::from_secs(30);

/// A started upstream login.
#[derive(Debug, Clone)]
pub struct UpstreamLogin {
    /// Where to send the browser.
    pub authorization_url: String,
    /// Sealed state, nonce and PKCE verifier: keep it in an HttpOnly cookie
    /// and hand it back to [`UpstreamService::complete_login`].
    pub pending: String,
}

/// A finished upstream login.
#[derive(Debug, Clone)]
pub struct UpstreamOutcome {
    /// Logged in, or the local second factor is needed.
    pub login: LoginOutcome,
    /// The local user.
    pub user: User,
    /// Whether this login created the local user.
    pub created: bool,
    /// What `begin_login` was given as `return_to`.
    pub return_to: Option<String>,
}

/// The provider metadata we use (OpenID Connect Discovery, or the
/// explicit endpoints).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    /// RFC 9207: the provider puts `iss` into every authorization response.
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// An enabled provider ready for logins.
pub(crate) struct Registered {
    pub(crate) provider: UpstreamProviderInfo,
    pub(crate) client_secret: Option<SecretString>,
    metadata: ProviderMetadata,
    jwks: RwLock<Arc<JwkSet>>,
}

type ProviderKey = (String, String);

/// The cache of every tenant's upstream providers and the HTTP client that
/// talks to them.
pub(crate) struct UpstreamRegistry {
    http: OnceLock<reqwest::Client>,
    /// (tenant, name) → the enabled provider, or `None` (absent, disabled),
    /// for [`PROVIDER_CACHE_TTL`].
    providers: moka::sync::Cache<ProviderKey, Option<Arc<Registered>>>,
    /// The last resolved copy of each provider (metadata, JWKS), reused
    /// while the row's `updated_at` is unchanged.
    resolved: moka::sync::Cache<ProviderKey, Arc<Registered>>,
    /// tenant → its enabled providers as (name, display name).
    lists: moka::sync::Cache<String, Arc<Vec<(String, String)>>>,
}

impl Default for UpstreamRegistry {
    fn default() -> Self {
        Self {
            http: OnceLock::new(),
            providers: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(PROVIDER_CACHE_TTL)
                .build(),
            resolved: moka::sync::Cache::builder().max_capacity(10_000).build(),
            lists: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(PROVIDER_CACHE_TTL)
                .build(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Pending {
    tenant: String,
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    return_to: Option<String>,
    exp: i64,
}

/// The ID token next to the OAuth token response fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdTokenField {
    #[serde(default)]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

pub(crate) type OidcTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
pub(crate) type OidcClient = oauth2::Client<
    BasicErrorResponse,
    OidcTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[derive(Deserialize)]
struct UpstreamIdClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    iat: i64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

fn upstream(msg: impl Into<String>) -> AuthError {
    AuthError::Upstream(msg.into())
}

/// The message of an upstream failure without our variant's prefix.
fn detail(e: &AuthError) -> String {
    match e {
        AuthError::Upstream(m) => m.clone(),
        other => other.to_string(),
    }
}

fn denied(msg: &str) -> AuthError {
    AuthError::AccessDenied(msg.to_owned())
}

/// oauth2's HTTP client: a closure adapter over reqwest 0.13 (oauth2's own
/// reqwest feature pulls reqwest 0.12).
pub(crate) async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    let mut out = oauth2::HttpResponse::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

impl UpstreamRegistry {
    pub(crate) fn http(&self) -> Result<&reqwest::Client, AuthError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        // No redirects: a token endpoint that redirects is refused (SSRF).
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| upstream(format!("http client: {e}")))?;
        Ok(self.http.get_or_init(|| client))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, AuthError> {
        let response = self
            .http()?
            .get(url)
            .send()
            .await
            .map_err(|e| upstream(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(upstream(format!("{url}: HTTP {}", response.status())));
        }
        response
            .json()
            .await
            .map_err(|e| upstream(format!("{url}: {e}")))
    }

    /// Forgets what is cached about `tenant`'s provider `name` (after a
    /// local change).
    pub(crate) fn forget(&self, tenant: &TenantSlug, name: &str) {
        let key = (tenant.to_string(), name.to_owned());
        self.providers.invalidate(&key);
        self.resolved.invalidate(&key);
        self.lists.invalidate(tenant.as_str());
    }

    /// The provider's metadata and JWKS: its discovery document (which must
    /// name exactly its issuer), or its explicit endpoints; then the JWKS.
    /// Failures are [`AuthError::UpstreamDiscovery`].
    pub(crate) async fn resolve(
        &self,
        issuer: &str,
        explicit: Option<(&str, &str, &str)>,
    ) -> Result<(ProviderMetadata, JwkSet), AuthError> {
        let discovery = |msg: String| AuthError::UpstreamDiscovery(msg);
        let metadata = match explicit {
            Some((authorization_endpoint, token_endpoint, jwks_uri)) => ProviderMetadata {
                issuer: issuer.to_owned(),
                authorization_endpoint: authorization_endpoint.to_owned(),
                token_endpoint: token_endpoint.to_owned(),
                jwks_uri: jwks_uri.to_owned(),
                id_token_signing_alg_values_supported: Vec::new(),
                authorization_response_iss_parameter_supported: false,
            },
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let metadata: ProviderMetadata = self
                    .get_json(&url)
                    .await
                    .map_err(|e| discovery(format!("discovery document: {}", detail(&e))))?;
                // OpenID Connect Discovery §4.3: the issuer must match exactly.
                if metadata.issuer != issuer {
                    return Err(discovery(format!(
                        "the discovery document names issuer {} instead of {issuer}",
                        metadata.issuer
                    )));
                }
                for (field, value) in [
                    ("authorization_endpoint", &metadata.authorization_endpoint),
                    ("token_endpoint", &metadata.token_endpoint),
                    ("jwks_uri", &metadata.jwks_uri),
                ] {
                    provider_rows::check_url(field, value).map_err(|_| {
                        discovery(format!(
                            "the discovery document's {field} is not an https:// URL"
                        ))
                    })?;
                }
                metadata
            }
        };
        let jwks: serde_json::Value = self
            .get_json(&metadata.jwks_uri)
            .await
            .map_err(|e| discovery(format!("JWKS: {}", detail(&e))))?;
        let jwks = JwkSet::from_bytes(jwks.to_string())
            .map_err(|_| discovery("JWKS: not a JSON Web Key Set".into()))?;
        Ok((metadata, jwks))
    }

    /// `tenant`'s enabled provider `name`, from the cache or the table.
    pub(crate) async fn provider(
        &self,
        pool: &TenantPool,
        secrets: &dyn UpstreamSecrets,
        tenant: &TenantSlug,
        name: &str,
    ) -> Result<Arc<Registered>, AuthError> {
        let not_found = || AuthError::NotFound(format!("upstream provider {name}"));
        if !provider_rows::valid_provider_name(name) {
            return Err(not_found());
        }
        let key = (tenant.to_string(), name.to_owned());
        if let Some(cached) = self.providers.get(&key) {
            return cached.ok_or_else(not_found);
        }
        let row = pool
            .with_tenant(tenant, async |conn| provider_rows::find(conn, name).await)
            .await?;
        let loaded = match row {
            Some(row) if row.enabled => Some(self.registered(secrets, tenant, row).await?),
            _ => None,
        };
        self.providers.insert(key, loaded.clone());
        loaded.ok_or_else(not_found)
    }

    /// A provider ready for logins: the resolved copy when the row did not
    /// change, else resolved anew (with its secret from the store).
    async fn registered(
        &self,
        secrets: &dyn UpstreamSecrets,
        tenant: &TenantSlug,
        row: UpstreamProviderInfo,
    ) -> Result<Arc<Registered>, AuthError> {
        let key = (tenant.to_string(), row.name.clone());
        if let Some(known) = self.resolved.get(&key)
            && known.provider == row
        {
            return Ok(known);
        }
        let (metadata, jwks) = self
            .resolve(&row.issuer, row.explicit_endpoints())
            .await
            .map_err(|e| upstream(e.to_string()))?;
        let client_secret =
            if row.has_client_secret {
                Some(secrets.get(tenant, &row.name).await?.ok_or_else(|| {
                    upstream("the client secret is missing from the secret store")
                })?)
            } else {
                None
            };
        let reg = Arc::new(Registered {
            provider: row,
            client_secret,
            metadata,
            jwks: RwLock::new(Arc::new(jwks)),
        });
        self.resolved.insert(key, reg.clone());
        Ok(reg)
    }

    /// `tenant`'s enabled providers as (name, display name), by name.
    async fn enabled(
        &self,
        pool: &TenantPool,
        tenant: &TenantSlug,
    ) -> Result<Arc<Vec<(String, String)>>, AuthError> {
        if let Some(list) = self.lists.get(tenant.as_str()) {
            return Ok(list);
        }
        let list: Vec<(String, String)> = pool
            .with_tenant(tenant, async |conn| {
                Ok::<_, AuthError>(
                    upstream_providers::table
                        .filter(upstream_providers::enabled.eq(true))
                        .order(upstream_providers::name)
                        .select((upstream_providers::name, upstream_providers::display_name))
                        .load(conn)
                        .await?,
                )
            })
            .await?;
        let list = Arc::new(list);
        self.lists.insert(tenant.to_string(), list.clone());
        Ok(list)
    }

    /// The JWK for `kid`, refetching the provider's JWKS once when it is
    /// unknown (the provider rotated).
    async fn key_for(&self, reg: &Registered, kid: Option<&str>) -> Result<Jwk, AuthError> {
        let pick = |set: &JwkSet| -> Option<Jwk> {
            let usable = |k: &&Jwk| k.key_use().is_none_or(|u| u == "sig");
            match kid {
                Some(kid) => set.get(kid).into_iter().find(usable).cloned(),
                None => {
                    let mut all = set.keys().into_iter().filter(usable);
                    match (all.next(), all.next()) {
                        (Some(only), None) => Some(only.clone()),
                        _ => None,
                    }
                }
            }
        };
        let current = match reg.jwks.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some(key) = pick(&current) {
            return Ok(key);
        }
        let fresh: serde_json::Value = self.get_json(&reg.metadata.jwks_uri).await?;
        let fresh = Arc::new(
            JwkSet::from_bytes(fresh.to_string())
                .map_err(|e| upstream(format!("provider JWKS: {e}")))?,
        );
        let key = pick(&fresh);
        if let Ok(mut slot) = reg.jwks.write() {
            *slot = fresh;
        }
        key.ok_or_else(|| upstream("ID token signed with an unknown key"))
    }

    /// Verifies an upstream ID token: signature against the provider's JWKS
    /// (asymmetric algorithms only), `iss`, `aud`, `azp`, `exp`, `iat`,
    /// `nonce` and `sub`.
    async fn verify_id_token(
        &self,
        reg: &Registered,
        token: &str,
        nonce: &str,
        skew: i64,
    ) -> Result<UpstreamIdClaims, AuthError> {
        #[derive(Deserialize)]
        struct Header {
            alg: String,
            #[serde(default)]
            kid: Option<String>,
        }
        let header: Header = token
            .split('.')
            .next()
            .and_then(|h| B64.decode(h).ok())
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or_else(|| upstream("malformed ID token"))?;
        let supported = &reg.metadata.id_token_signing_alg_values_supported;
        if !ID_TOKEN_ALGS.contains(&header.alg.as_str())
            || !(supported.is_empty() || supported.contains(&header.alg))
        {
            return Err(upstream("ID token algorithm not allowed"));
        }
        let jwk = self.key_for(reg, header.kid.as_deref()).await?;
        let verifier = verifier_for(&header.alg, &jwk)?;
        let (payload, _) = josekit::jwt::decode_with_verifier(token, &*verifier)
            .map_err(|_| upstream("ID token signature does not verify"))?;
        let claims: UpstreamIdClaims =
            serde_json::from_value(serde_json::Value::Object(payload.claims_set().clone()))
                .map_err(|e| upstream(format!("ID token claims: {e}")))?;
        let client_id = &reg.provider.client_id;
        let now = unix_now();
        if claims.iss != reg.metadata.issuer {
            return Err(upstream("ID token from another issuer"));
        }
        if !claims.aud.contains(client_id) {
            return Err(upstream("ID token for another client"));
        }
        let several = matches!(&claims.aud, Audience::Many(all) if all.len() > 1);
        if claims.azp.as_ref().is_some_and(|azp| azp != client_id)
            || (several && claims.azp.is_none())
        {
            return Err(upstream("ID token authorized for another party"));
        }
        if claims.exp + skew <= now || claims.iat > now + skew {
            return Err(upstream("ID token expired or not yet valid"));
        }
        match &claims.nonce {
            Some(n) if ct_eq(n.as_bytes(), nonce.as_bytes()) => {}
            _ => return Err(upstream("ID token nonce does not match")),
        }
        if claims.sub.is_empty() || claims.sub.len() > 255 {
            return Err(upstream("ID token subject"));
        }
        Ok(claims)
    }
}

fn verifier_for(alg: &str, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, AuthError> {
    let bad = |e: josekit::JoseError| upstream(format!("provider key: {e}"));
    Ok(match alg {
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(jwk).map_err(bad)?),
        "RS384" => Box::new(jws::RS384.verifier_from_jwk(jwk).map_err(bad)?),
        "RS512" => Box::new(jws::RS512.verifier_from_jwk(jwk).map_err(bad)?),
        "PS256" => Box::new(jws::PS256.verifier_from_jwk(jwk).map_err(bad)?),
        "PS384" => Box::new(jws::PS384.verifier_from_jwk(jwk).map_err(bad)?),
        "PS512" => Box::new(jws::PS512.verifier_from_jwk(jwk).map_err(bad)?),
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(jwk).map_err(bad)?),
        "ES384" => Box::new(jws::ES384.verifier_from_jwk(jwk).map_err(bad)?),
        "ES512" => Box::new(jws::ES512.verifier_from_jwk(jwk).map_err(bad)?),
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(jwk).map_err(bad)?),
        _ => return Err(upstream("ID token algorithm not allowed")),
    })
}

pub(crate) fn oidc_client(reg: &Registered) -> Result<OidcClient, AuthError> {
    let p = &reg.provider;
    let mut client = oauth2::Client::new(ClientId::new(p.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(reg.metadata.authorization_endpoint.clone())
                .map_err(|e| upstream(format!("authorization_endpoint: {e}")))?,
        )
        .set_token_uri(
            TokenUrl::new(reg.metadata.token_endpoint.clone())
                .map_err(|e| upstream(format!("token_endpoint: {e}")))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(p.redirect_uri.clone())
                .map_err(|e| AuthError::Config(format!("redirect_uri: {e}")))?,
        );
    if let Some(secret) = &reg.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
    }
    Ok(client)
}

/// Login through upstream OpenID Connect providers: registration of a
/// tenant's providers, the code flow, ID token checks, identity linking.
#[derive(Clone)]
pub struct UpstreamService {
    pub(crate) pool: TenantPool,
    pub(crate) config: Arc<AuthConfig>,
    /// Seals the pending-login blob kept in the browser's cookie.
    pub(crate) sealer: KeyEncryptionKey,
    pub(crate) upstreams: Arc<UpstreamRegistry>,
    /// Where client secrets live.
    pub(crate) secrets: Arc<dyn UpstreamSecrets>,
    /// Seals users' upstream tokens; without one they are not kept.
    pub(crate) token_sealer: Option<Arc<dyn UpstreamTokenSealer>>,
}

impl std::fmt::Debug for UpstreamService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamService")
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl UpstreamService {
    /// The enabled upstream providers of `tenant` as `(name, display name)`,
    /// by name (for the login page).
    pub async fn upstream_providers(
        &self,
        tenant: &TenantSlug,
    ) -> Result<Vec<(String, String)>, AuthError> {
        Ok(self
            .upstreams
            .enabled(&self.pool, tenant)
            .await?
            .as_ref()
            .clone())
    }

    /// Starts a login at upstream provider `provider` of `tenant`.
    pub async fn begin_login(
        &self,
        tenant: &TenantSlug,
        provider: &str,
        return_to: Option<&str>,
    ) -> Result<UpstreamLogin, AuthError> {
        let reg = self
            .upstreams
            .provider(&self.pool, &*self.secrets, tenant, provider)
            .await?;
        let client = oidc_client(&reg)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = random_secret(32);
        let nonce = random_secret(32);
        let csrf = state.clone();
        let mut request = client
            .authorize_url(move || CsrfToken::new(csrf))
            .add_scope(Scope::new("openid".into()))
            .add_scopes(reg.provider.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .add_extra_param("nonce", nonce.clone());
        if let Some(audience) = &reg.provider.options.audience {
            request = request.add_extra_param("audience", audience.clone());
        }
        if let Some(prompt) = &reg.provider.options.prompt {
            request = request.add_extra_param("prompt", prompt.clone());
        }
        let (url, _) = request.url();
        let pending = Pending {
            tenant: tenant.to_string(),
            provider: provider.to_owned(),
            state,
            nonce,
            verifier: verifier.into_secret(),
            return_to: return_to.map(str::to_owned),
            exp: unix_now() + PENDING_TTL_SECS,
        };
        let sealed = self
            .sealer
            .seal(&serde_json::to_vec(&pending).map_err(|e| AuthError::Crypto(e.to_string()))?)?;
        Ok(UpstreamLogin {
            authorization_url: url.to_string(),
            pending: sealed,
        })
    }

    /// Finishes an upstream login at the callback: `code`, `state` and
    /// `iss` (RFC 9207, when the provider sends it) from the query, `pending`
    /// from [`UpstreamService::begin_login`] (the cookie).
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_login(
        &self,
        tenant: &TenantSlug,
        provider: &str,
        code: &str,
        state: &str,
        iss: Option<&str>,
        pending: &str,
        ctx: &ClientContext,
    ) -> Result<UpstreamOutcome, AuthError> {
        let pending: Pending = self
            .sealer
            .open(pending)
            .ok()
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or_else(|| denied("no upstream login was started in this browser"))?;
        if pending.tenant != tenant.as_str() || pending.provider != provider {
            return Err(denied("upstream login started for another provider"));
        }
        if pending.exp <= unix_now() {
            return Err(denied("upstream login expired"));
        }
        if !ct_eq(pending.state.as_bytes(), state.as_bytes()) {
            return Err(denied("state does not match"));
        }
        let reg = self
            .upstreams
            .provider(&self.pool, &*self.secrets, tenant, provider)
            .await?;
        // Mix-up defence: the response must come from the provider we sent
        // the browser to.
        match iss {
            Some(iss) if iss != reg.metadata.issuer => {
                return Err(denied("authorization response from another issuer"));
            }
            // RFC 9207 §2.4: a provider that advertises `iss` must send it.
            None if reg.metadata.authorization_response_iss_parameter_supported => {
                return Err(denied("authorization response without iss"));
            }
            _ => {}
        }
        let http = self.upstreams.http()?;
        let http_client = |request| send(http, request);
        let tokens = oidc_client(&reg)?
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&http_client)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    AuthError::AccessDenied(format!("upstream refused the code: {}", r.error()))
                }
                other => upstream(format!("token request: {other}")),
            })?;
        let id_token = tokens
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or_else(|| upstream("no ID token in the token response"))?;
        let skew = i64::try_from(self.config.clock_skew().as_secs()).unwrap_or(60);
        let claims = self
            .upstreams
            .verify_id_token(&reg, id_token, &pending.nonce, skew)
            .await?;
        let (user, created) = self.link_identity(tenant, &reg.provider, &claims).await?;
        // The user's tokens at the provider, sealed, when it gave a refresh
        // token (a failure to keep them does not fail the login: the user
        // is simply not connected).
        if let Err(e) = self
            .keep_login_tokens(
                tenant,
                provider,
                user.id,
                &IssuedTokens::from_response(&tokens),
            )
            .await
        {
            tracing::warn!(%tenant, provider, error = %e, "upstream tokens not kept");
        }
        let login = self.upstream_session(tenant, provider, &user, ctx).await?;
        Ok(UpstreamOutcome {
            login,
            user,
            created,
            return_to: pending.return_to,
        })
    }

    /// The local user of an external identity; links or creates one on the
    /// first login.
    async fn link_identity(
        &self,
        tenant: &TenantSlug,
        provider: &UpstreamProviderInfo,
        claims: &UpstreamIdClaims,
    ) -> Result<(User, bool), AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        // Linking by e-mail needs the tenant's setting and the provider's
        // flag (see the module documentation).
        let may_link = provider.link_verified_email
            && self.pool.tenant_settings(tenant).await?.upstream_linking
                == UpstreamLinking::VerifiedEmail;
        let verified_email = claims
            .email
            .as_deref()
            .filter(|_| claims.email_verified == Some(true))
            .map(normalize_email);
        self.pool
            .with_tenant(tenant, async |conn| {
                let linked: Option<User> = external_identities::table
                    .inner_join(users::table)
                    .filter(external_identities::provider.eq(&provider.name))
                    .filter(external_identities::subject.eq(&claims.sub))
                    .select(User::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                let (user, created) = match linked {
                    Some(user) => (user, false),
                    None => {
                        let existing = match (&verified_email, may_link) {
                            (Some(email), true) => user_rows::by_email(conn, email).await?,
                            _ => None,
                        };
                        // Pre-hijack defence: someone may have registered
                        // the address without owning it; only a verified
                        // local e-mail is linked.
                        if let Some(local) = &existing {
                            let verified: bool = users::table
                                .find(local.id)
                                .select(users::email_verified)
                                .first(conn)
                                .await?;
                            if !verified {
                                append(
                                    conn,
                                    tenant_id,
                                    &AuditEvent::new("link_identity", "refused")
                                        .user(Some(local.id))
                                        .detail(serde_json::json!({
                                            "provider": provider.name,
                                            "reason": "local_email_unverified",
                                        })),
                                )
                                .await?;
                                return Err(AuthError::LinkRefused(
                                    "an account with this e-mail exists but its e-mail is not \
                                     verified; sign in with its password and verify the \
                                     e-mail first"
                                        .into(),
                                ));
                            }
                        }
                        let created = existing.is_none();
                        let user = match existing {
                            Some(user) => user,
                            None => create_user(conn, provider, claims).await?,
                        };
                        let inserted = diesel::insert_into(external_identities::table)
                            .values((
                                external_identities::provider.eq(&provider.name),
                                external_identities::subject.eq(&claims.sub),
                                external_identities::user_id.eq(user.id),
                                // Kept inline (no TOAST table): a longer
                                // claim is no e-mail address anyway.
                                external_identities::email
                                    .eq(claims.email.as_deref().filter(|e| e.len() <= 254)),
                            ))
                            .on_conflict_do_nothing()
                            .execute(conn)
                            .await?;
                        if inserted == 0 {
                            // A concurrent first login linked it; this
                            // transaction rolls back, the retry finds the link.
                            return Err(AuthError::Conflict(
                                "external identity linked concurrently; retry".into(),
                            ));
                        }
                        append(
                            conn,
                            tenant_id,
                            &AuditEvent::new("link_identity", "success")
                                .user(Some(user.id))
                                .detail(serde_json::json!({
                                    "provider": provider.name,
                                    "created_user": created,
                                })),
                        )
                        .await?;
                        (user, created)
                    }
                };
                if user.status != "active" {
                    return Err(denied("account disabled"));
                }
                Ok((user, created))
            })
            .await
    }

    /// A session for `user` (or the second-factor step when TOTP is on).
    async fn upstream_session(
        &self,
        tenant: &TenantSlug,
        provider: &str,
        user: &User,
        ctx: &ClientContext,
    ) -> Result<LoginOutcome, AuthError> {
        let tenant_id = tenant_id(&self.pool, tenant).await?;
        self.pool
            .with_tenant(tenant, async |conn| {
                if user.totp_enabled {
                    let challenge = create_login_challenge(conn, user.id, ctx).await?;
                    append(
                        conn,
                        tenant_id,
                        &AuditEvent::new("login", "mfa_required")
                            .user(Some(user.id))
                            .client(ctx)
                            .detail(serde_json::json!({"upstream": provider})),
                    )
                    .await?;
                    return Ok(LoginOutcome::MfaRequired { challenge });
                }
                let session = create_session(conn, &self.config, user.id, ctx, "fed").await?;
                append(
                    conn,
                    tenant_id,
                    &AuditEvent::new("login", "success")
                        .user(Some(user.id))
                        .client(ctx)
                        .detail(serde_json::json!({
                            "upstream": provider,
                            "session": session.session_id,
                        })),
                )
                .await?;
                Ok(LoginOutcome::LoggedIn(session))
            })
            .await
    }
}

/// A password-less local user for an external identity. Its e-mail is the
/// provider's when free, else a placeholder under `.invalid` (RFC 2606).
async fn create_user(
    conn: &mut AsyncPgConnection,
    provider: &UpstreamProviderInfo,
    claims: &UpstreamIdClaims,
) -> Result<User, AuthError> {
    let placeholder = format!(
        "{}@{}.upstream.invalid",
        hex::encode(&Sha256::digest(claims.sub.as_bytes())[..12]),
        provider.name.to_lowercase()
    );
    let claimed = claims
        .email
        .as_deref()
        .map(normalize_email)
        .filter(|e| e.contains('@') && e.len() <= 254);
    let display_name = claims
        .name
        .as_deref()
        .or(claims.preferred_username.as_deref())
        .unwrap_or(&claims.sub);
    for (email, verified) in [
        (claimed, claims.email_verified == Some(true)),
        (Some(placeholder), false),
    ] {
        let Some(email) = email else { continue };
        let user: Option<User> = diesel::insert_into(users::table)
            .values((
                users::email.eq(&email),
                users::display_name.eq(display_name.chars().take(200).collect::<String>()),
                users::role.eq(provider.role().as_str()),
                users::email_verified.eq(verified),
            ))
            .on_conflict_do_nothing()
            .returning(User::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        if let Some(user) = user {
            return Ok(user);
        }
    }
    Err(AuthError::Conflict(
        "no free e-mail for the new user".into(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;
    use josekit::jwt::JwtPayload;

    const ISS: &str = "https://idp.example";

    /// A provider with one ES256 key; its JWKS URL is unreachable, so an
    /// unknown `kid` fails after the refetch attempt.
    fn provider() -> (Registered, Jwk) {
        let mut key = Jwk::generate_ec_key(josekit::jwk::alg::ec::EcCurve::P256).unwrap();
        key.set_key_id("k1");
        let mut set = JwkSet::new();
        let mut public = key.to_public_key().unwrap();
        public.set_key_id("k1");
        set.push_key(public);
        let reg = Registered {
            provider: UpstreamProviderInfo {
                name: "idp".into(),
                display_name: "IdP".into(),
                issuer: ISS.into(),
                client_id: "rampart".into(),
                has_client_secret: false,
                redirect_uri: "http://127.0.0.1/cb".into(),
                scopes: vec![],
                link_verified_email: false,
                new_user_role: "viewer".into(),
                authorization_endpoint: None,
                token_endpoint: None,
                jwks_uri: None,
                enabled: true,
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
                options: Default::default(),
            },
            client_secret: None,
            metadata: ProviderMetadata {
                issuer: ISS.into(),
                authorization_endpoint: format!("{ISS}/auth"),
                token_endpoint: format!("{ISS}/token"),
                jwks_uri: "http://127.0.0.1:9/jwks".into(),
                id_token_signing_alg_values_supported: vec![],
                authorization_response_iss_parameter_supported: true,
            },
            jwks: RwLock::new(Arc::new(set)),
        };
        (reg, key)
    }

    fn claims(edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> JwtPayload {
        let now = unix_now();
        let mut map = serde_json::json!({
            "iss": ISS, "sub": "u1", "aud": "rampart", "exp": now + 300, "iat": now, "nonce": "n-1",
        })
        .as_object()
        .cloned()
        .unwrap();
        edit(&mut map);
        JwtPayload::from_map(map).unwrap()
    }

    fn sign(key: &Jwk, kid: &str, payload: &JwtPayload) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        header.set_key_id(kid);
        // The signer writes its key's `kid`.
        let mut key = key.clone();
        key.set_key_id(kid);
        josekit::jwt::encode_with_signer(
            payload,
            &header,
            &jws::ES256.signer_from_jwk(&key).unwrap(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn upstream_id_tokens_are_checked() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = UpstreamRegistry::default();
        let (reg, key) = provider();
        let verify = |t: String| {
            let registry = &registry;
            let reg = &reg;
            async move { registry.verify_id_token(reg, &t, "n-1", 60).await }
        };
        let good = verify(sign(&key, "k1", &claims(|_| {}))).await.unwrap();
        assert_eq!(good.sub, "u1");

        let refused: Vec<(&str, String)> = vec![
            (
                "wrong nonce",
                sign(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.insert("nonce".into(), "other".into());
                    }),
                ),
            ),
            (
                "no nonce",
                sign(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.remove("nonce");
                    }),
                ),
            ),
            (
                "wrong aud",
                sign(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.insert("aud".into(), "someone-else".into());
                    }),
                ),
            ),
            (
                "azp missing with several aud",
                sign(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.insert("aud".into(), serde_json::json!(["rampart", "x"]));
                    }),
                ),
            ),
            (
                "wrong azp",
                sign(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.insert("azp".into(), "x".into());
                    }),
                ),
            ),
            (
                "wrong iss",
                sign(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.insert("iss".into(), "https://evil.example".into());
                    }),
                ),
            ),
            (
                "expired",
                sign(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.insert("exp".into(), (unix_now() - 3600).into());
                    }),
                ),
            ),
            (
                "issued in the future",
                sign(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.insert("iat".into(), (unix_now() + 3600).into());
                    }),
                ),
            ),
            (
                "empty sub",
                sign(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.insert("sub".into(), "".into());
                    }),
                ),
            ),
            ("unknown kid", sign(&key, "k2", &claims(|_| {}))),
        ];
        for (what, token) in refused {
            assert!(verify(token).await.is_err(), "{what} accepted");
        }
        // Another key under our kid.
        let mut other = Jwk::generate_ec_key(josekit::jwk::alg::ec::EcCurve::P256).unwrap();
        other.set_key_id("k1");
        assert!(verify(sign(&other, "k1", &claims(|_| {}))).await.is_err());
        // alg none and HS256 keyed with the public key.
        let payload = B64.encode(claims(|_| {}).to_string());
        let none = format!("{}.{payload}.", B64.encode(r#"{"alg":"none","kid":"k1"}"#));
        assert!(verify(none).await.is_err());
        let public = key.to_public_key().unwrap().to_string();
        let mut oct = Jwk::new("oct");
        oct.set_key_value(public.as_bytes());
        let input = format!("{}.{payload}", B64.encode(r#"{"alg":"HS256","kid":"k1"}"#));
        let mac = jws::HS256.signer_from_jwk(&oct).unwrap();
        let mac = josekit::jws::JwsSigner::sign(&mac, input.as_bytes()).unwrap();
        assert!(
            verify(format!("{input}.{}", B64.encode(mac)))
                .await
                .is_err()
        );
        // A tampered payload under a good signature.
        let token = sign(&key, "k1", &claims(|_| {}));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = B64.encode(
            claims(|c| {
                c.insert("sub".into(), "admin".into());
            })
            .to_string(),
        );
        assert!(verify(parts.join(".")).await.is_err());
    }
}
