//! An upstream OpenID Connect provider as a tenant registers it: the input
//! ([`UpstreamProvider`]), a partial change ([`UpstreamProviderUpdate`]),
//! what an administrator sees ([`UpstreamProviderInfo`], never the secret)
//! and the checks every value passes before it reaches the
//! `upstream_providers` table. The services are in [`crate::upstream`].

use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::AuthError;
use crate::roles::Role;
use crate::schema::upstream_providers;

/// An upstream OpenID Connect provider to register (or to replace one of
/// the same name). Its client secret goes to the secret store
/// ([`crate::upstream_secrets::UpstreamSecrets`]), never to the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamProvider {
    /// A known provider whose documented settings fill every field left
    /// out (see [`UpstreamPreset`]); any of them may still be given to
    /// override it.
    #[serde(default)]
    pub preset: Option<UpstreamPreset>,
    /// Our name for it, used in URLs (`[A-Za-z0-9_-]`, 1–64, e.g. `google`;
    /// a preset's own name when left out).
    #[serde(default)]
    pub name: String,
    /// Shown on the login page (1–200 characters).
    #[serde(default)]
    pub display_name: String,
    /// The provider's issuer: an `https://` URL (or `http://` on a loopback
    /// address, for development). Its discovery document must name exactly
    /// this issuer, and so must its ID tokens.
    #[serde(default)]
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret, for a confidential registration; `None` for a
    /// public one (PKCE alone). Kept in the secret store.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// Our callback URL as registered at the provider
    /// (`…/t/{tenant}/login/upstream/{name}/callback`).
    pub redirect_uri: String,
    /// Scopes besides `openid` (e.g. `email`, `profile`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Allows linking a first login to an existing local account with the
    /// same e-mail. Linking happens only when this is on **and** the
    /// tenant's `upstreamLinking` setting is `verified_email` **and** the
    /// provider says the address is verified **and** the local account's
    /// address is verified. Off by default: turn it on only for providers
    /// trusted to verify addresses.
    #[serde(default)]
    pub link_verified_email: bool,
    /// The role of users created by a first login (default `viewer`).
    #[serde(default = "default_role")]
    pub new_user_role: Role,
    /// Explicit authorization endpoint. When it, `token_endpoint` and
    /// `jwks_uri` are all given, discovery is skipped; give all three or none.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Explicit token endpoint (see `authorization_endpoint`).
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Explicit JWKS URL (see `authorization_endpoint`).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The `audience` parameter sent on the authorization request (Auth0
    /// providers such as TradeStation: the API the tokens are for).
    #[serde(default)]
    pub audience: Option<String>,
    /// The `prompt` parameter sent on the authorization request (space
    /// separated `none`, `login`, `consent`, `select_account`): strict
    /// OpenID Connect providers issue a refresh token for `offline_access`
    /// only with `consent`; Auth0 (TradeStation) needs none.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The provider's userinfo endpoint (recorded; the ID token's claims
    /// are what a login uses).
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The provider's token revocation endpoint (RFC 7009): a user's
    /// refresh token is revoked there, best effort, when they disconnect.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// Offered on the login page and usable (default on).
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// A provider whose documented settings Rampart knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpstreamPreset {
    /// TradeStation's sign-in (Auth0 at `signin.tradestation.com`): its
    /// authorize, token, userinfo, JWKS and revocation endpoints, the scopes
    /// `offline_access profile MarketData ReadAccount` (and `openid`), and
    /// the audience `https://api.tradestation.com`, so that the access
    /// token it returns calls TradeStation's API for the user.
    #[serde(rename = "tradestation")]
    TradeStation,
}

/// TradeStation's documented sign-in settings (Auth0).
pub mod tradestation {
    /// Our default name for the provider.
    pub const NAME: &str = "tradestation";
    /// Shown on the login page.
    pub const DISPLAY_NAME: &str = "TradeStation";
    /// The issuer (with Auth0's trailing slash).
    pub const ISSUER: &str = "https://signin.tradestation.com/";
    /// Authorization endpoint.
    pub const AUTHORIZATION_ENDPOINT: &str = "https://signin.tradestation.com/authorize";
    /// Token endpoint.
    pub const TOKEN_ENDPOINT: &str = "https://signin.tradestation.com/oauth/token";
    /// Userinfo endpoint.
    pub const USERINFO_ENDPOINT: &str = "https://signin.tradestation.com/userinfo";
    /// JWKS.
    pub const JWKS_URI: &str = "https://signin.tradestation.com/.well-known/jwks.json";
    /// Revocation endpoint.
    pub const REVOCATION_ENDPOINT: &str = "https://signin.tradestation.com/oauth/revoke";
    /// The API the access tokens are for.
    pub const AUDIENCE: &str = "https://api.tradestation.com";
    /// Default scopes (besides `openid`).
    pub const SCOPES: [&str; 4] = ["offline_access", "profile", "MarketData", "ReadAccount"];
}

impl UpstreamPreset {
    /// The name stored in the `preset` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TradeStation => "tradestation",
        }
    }

    /// The preset stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "tradestation" => Some(Self::TradeStation),
            _ => None,
        }
    }

    /// Fills what `p` leaves out with the preset's documented values.
    fn fill(self, p: &mut UpstreamProvider) {
        match self {
            Self::TradeStation => {
                use tradestation as ts;
                let fill = |field: &mut String, value: &str| {
                    if field.trim().is_empty() {
                        *field = value.to_owned();
                    }
                };
                let fill_opt = |field: &mut Option<String>, value: &str| {
                    field.get_or_insert_with(|| value.to_owned());
                };
                fill(&mut p.name, ts::NAME);
                fill(&mut p.display_name, ts::DISPLAY_NAME);
                fill(&mut p.issuer, ts::ISSUER);
                fill_opt(&mut p.authorization_endpoint, ts::AUTHORIZATION_ENDPOINT);
                fill_opt(&mut p.token_endpoint, ts::TOKEN_ENDPOINT);
                fill_opt(&mut p.jwks_uri, ts::JWKS_URI);
                fill_opt(&mut p.userinfo_endpoint, ts::USERINFO_ENDPOINT);
                fill_opt(&mut p.revocation_endpoint, ts::REVOCATION_ENDPOINT);
                fill_opt(&mut p.audience, ts::AUDIENCE);
                if p.scopes.is_empty() {
                    p.scopes = ts::SCOPES.iter().map(|s| (*s).to_owned()).collect();
                }
            }
        }
    }
}

fn default_role() -> Role {
    Role::Viewer
}

fn yes() -> bool {
    true
}

impl Default for UpstreamProvider {
    fn default() -> Self {
        Self {
            preset: None,
            name: String::new(),
            display_name: String::new(),
            issuer: String::new(),
            client_id: String::new(),
            client_secret: None,
            redirect_uri: String::new(),
            scopes: Vec::new(),
            link_verified_email: false,
            new_user_role: default_role(),
            authorization_endpoint: None,
            token_endpoint: None,
            jwks_uri: None,
            audience: None,
            prompt: None,
            userinfo_endpoint: None,
            revocation_endpoint: None,
            enabled: true,
        }
    }
}

/// A change to a provider; absent fields are kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamProviderUpdate {
    /// New display name.
    pub display_name: Option<String>,
    /// New issuer (the provider's existing identity links are dropped:
    /// subjects are only unique per issuer).
    pub issuer: Option<String>,
    /// New client id.
    pub client_id: Option<String>,
    /// New client secret (replaces the stored one).
    pub client_secret: Option<SecretString>,
    /// Removes the stored client secret (the registration becomes public).
    #[serde(default)]
    pub remove_client_secret: bool,
    /// New callback URL.
    pub redirect_uri: Option<String>,
    /// New scopes (replace the old ones).
    pub scopes: Option<Vec<String>>,
    /// New e-mail linking flag.
    pub link_verified_email: Option<bool>,
    /// New role for users created by a first login.
    pub new_user_role: Option<Role>,
    /// New explicit endpoints: all three together.
    pub authorization_endpoint: Option<String>,
    /// See `authorization_endpoint`.
    pub token_endpoint: Option<String>,
    /// See `authorization_endpoint`.
    pub jwks_uri: Option<String>,
    /// Drops the explicit endpoints: discovery is used again.
    #[serde(default)]
    pub use_discovery: bool,
    /// New `audience` authorization parameter.
    pub audience: Option<String>,
    /// New `prompt` authorization parameter.
    pub prompt: Option<String>,
    /// New userinfo endpoint.
    pub userinfo_endpoint: Option<String>,
    /// New revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// Enables or disables the provider.
    pub enabled: Option<bool>,
}

/// A provider as an administrator sees it: never its client secret, only
/// whether one is stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = upstream_providers, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct UpstreamProviderInfo {
    /// Name (in URLs).
    pub name: String,
    /// Shown on the login page.
    pub display_name: String,
    /// Issuer.
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Whether a client secret is kept in the secret store.
    pub has_client_secret: bool,
    /// Our callback URL.
    pub redirect_uri: String,
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    /// Whether e-mail linking is allowed for this provider (see
    /// [`UpstreamProvider::link_verified_email`]).
    pub link_verified_email: bool,
    /// Role of users created by a first login.
    pub new_user_role: String,
    /// Explicit authorization endpoint (discovery when absent).
    pub authorization_endpoint: Option<String>,
    /// Explicit token endpoint.
    pub token_endpoint: Option<String>,
    /// Explicit JWKS URL.
    pub jwks_uri: Option<String>,
    /// Usable and offered on the login page.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed (a cached copy older than this is reloaded).
    pub updated_at: DateTime<Utc>,
    /// Preset, audience, userinfo and revocation endpoints (the `options`
    /// column; flattened into the JSON answer).
    #[serde(flatten)]
    pub options: ProviderOptions,
}

/// What a provider has besides the core OpenID fields, kept as one JSON
/// object in the `options` column.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, diesel::deserialize::FromSqlRow,
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderOptions {
    /// The preset it was made from (`tradestation`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The `audience` parameter of the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The `prompt` parameter of the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// Revocation endpoint (RFC 7009), used on disconnect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
}

impl diesel::deserialize::FromSql<diesel::sql_types::Jsonb, diesel::pg::Pg> for ProviderOptions {
    fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let value = <serde_json::Value as diesel::deserialize::FromSql<
            diesel::sql_types::Jsonb,
            diesel::pg::Pg,
        >>::from_sql(bytes)?;
        Ok(serde_json::from_value(value)?)
    }
}

impl ProviderOptions {
    /// As stored in the `options` column.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}))
    }
}

impl UpstreamProviderInfo {
    /// The explicit endpoints, when all three are set.
    pub(crate) fn explicit_endpoints(&self) -> Option<(&str, &str, &str)> {
        match (
            &self.authorization_endpoint,
            &self.token_endpoint,
            &self.jwks_uri,
        ) {
            (Some(a), Some(t), Some(j)) => Some((a, t, j)),
            _ => None,
        }
    }

    /// The role of new users (a stored name that no longer parses falls
    /// back to the least privileged one).
    pub(crate) fn role(&self) -> Role {
        Role::parse(&self.new_user_role).unwrap_or(Role::Viewer)
    }
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::InvalidRequest(msg.into())
}

/// `[A-Za-z0-9_-]`, 1 to 64 bytes: the provider's name goes into URLs,
/// cookie paths and secret-store paths.
pub(crate) fn valid_provider_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn check_name(name: &str) -> Result<(), AuthError> {
    if valid_provider_name(name) {
        Ok(())
    } else {
        Err(invalid(
            "name: 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
        ))
    }
}

/// An `https://` URL, or `http://` on a loopback host (development, tests);
/// no fragment, no credentials.
pub(crate) fn check_url(field: &str, value: &str) -> Result<(), AuthError> {
    let bad = || {
        invalid(format!(
            "{field}: an https:// URL (http:// only on a loopback address)"
        ))
    };
    let url = url::Url::parse(value).map_err(|_| bad())?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err(bad()),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad()),
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), AuthError> {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control)
    {
        return Err(invalid(format!("{field}: 1 to {max} characters")));
    }
    Ok(())
}

/// Scope tokens (RFC 6749 §3.3), at most 20; `openid` is always asked
/// for and so dropped here.
pub(crate) fn normalize_scopes(scopes: &[String]) -> Result<Vec<String>, AuthError> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        if s.is_empty()
            || s.len() > 100
            || !s
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(invalid(format!("scopes: {s:?} is not a scope token")));
        }
        if s != "openid" && !out.contains(s) {
            out.push(s.clone());
        }
    }
    if out.len() > 20 {
        return Err(invalid("scopes: at most 20"));
    }
    Ok(out)
}

fn check_secret(secret: &SecretString) -> Result<(), AuthError> {
    let s = secret.expose_secret();
    if s.is_empty() || s.len() > 1024 {
        return Err(invalid("clientSecret: 1 to 1024 bytes"));
    }
    Ok(())
}

impl UpstreamProvider {
    /// The options column's value for this provider.
    pub(crate) fn options(&self) -> ProviderOptions {
        ProviderOptions {
            preset: self.preset.map(|p| p.as_str().to_owned()),
            audience: self.audience.clone(),
            prompt: self.prompt.clone(),
            userinfo_endpoint: self.userinfo_endpoint.clone(),
            revocation_endpoint: self.revocation_endpoint.clone(),
        }
    }

    /// Checks every field; trims names and drops `openid` from the scopes.
    pub(crate) fn checked(mut self) -> Result<Self, AuthError> {
        if let Some(preset) = self.preset {
            preset.fill(&mut self);
        }
        check_name(&self.name)?;
        self.display_name = self.display_name.trim().to_owned();
        check_text("displayName", &self.display_name, 200)?;
        check_url("issuer", &self.issuer)?;
        if url::Url::parse(&self.issuer).is_ok_and(|u| u.query().is_some()) {
            return Err(invalid("issuer: no query part"));
        }
        check_text("clientId", &self.client_id, 255)?;
        check_url("redirectUri", &self.redirect_uri)?;
        self.scopes = normalize_scopes(&self.scopes)?;
        if let Some(secret) = &self.client_secret {
            check_secret(secret)?;
        }
        if let Some(audience) = &self.audience {
            check_text("audience", audience, 500)?;
        }
        if let Some(prompt) = &self.prompt
            && (prompt
                .split(' ')
                .any(|p| !["none", "login", "consent", "select_account"].contains(&p)))
        {
            return Err(invalid(
                "prompt: space-separated none, login, consent, select_account",
            ));
        }
        if let Some(u) = &self.userinfo_endpoint {
            check_url("userinfoEndpoint", u)?;
        }
        if let Some(u) = &self.revocation_endpoint {
            check_url("revocationEndpoint", u)?;
        }
        if self.new_user_role == Role::ApiUser {
            return Err(invalid(
                "newUserRole: a role of the tenant other than api_user",
            ));
        }
        match (
            &self.authorization_endpoint,
            &self.token_endpoint,
            &self.jwks_uri,
        ) {
            (None, None, None) => {}
            (Some(a), Some(t), Some(j)) => {
                check_url("authorizationEndpoint", a)?;
                check_url("tokenEndpoint", t)?;
                check_url("jwksUri", j)?;
            }
            _ => {
                return Err(invalid(
                    "authorizationEndpoint, tokenEndpoint and jwksUri: all three or none",
                ));
            }
        }
        Ok(self)
    }

    /// The provider after `update` (secret changes are the caller's), with
    /// the current one's values where `update` has none.
    pub(crate) fn updated(current: &UpstreamProviderInfo, update: &UpstreamProviderUpdate) -> Self {
        let pick = |new: &Option<String>, old: &str| new.clone().unwrap_or_else(|| old.to_owned());
        let endpoints_given = update.authorization_endpoint.is_some()
            || update.token_endpoint.is_some()
            || update.jwks_uri.is_some();
        let (authorization_endpoint, token_endpoint, jwks_uri) = if update.use_discovery {
            (None, None, None)
        } else if endpoints_given {
            (
                update.authorization_endpoint.clone(),
                update.token_endpoint.clone(),
                update.jwks_uri.clone(),
            )
        } else {
            (
                current.authorization_endpoint.clone(),
                current.token_endpoint.clone(),
                current.jwks_uri.clone(),
            )
        };
        let keep = |new: &Option<String>, old: &Option<String>| new.clone().or_else(|| old.clone());
        Self {
            preset: current
                .options
                .preset
                .as_deref()
                .and_then(UpstreamPreset::parse),
            name: current.name.clone(),
            display_name: pick(&update.display_name, &current.display_name),
            issuer: pick(&update.issuer, &current.issuer),
            client_id: pick(&update.client_id, &current.client_id),
            client_secret: update.client_secret.clone(),
            redirect_uri: pick(&update.redirect_uri, &current.redirect_uri),
            scopes: update
                .scopes
                .clone()
                .unwrap_or_else(|| current.scopes.clone()),
            link_verified_email: update
                .link_verified_email
                .unwrap_or(current.link_verified_email),
            new_user_role: update.new_user_role.unwrap_or_else(|| current.role()),
            authorization_endpoint,
            token_endpoint,
            jwks_uri,
            audience: keep(&update.audience, &current.options.audience),
            prompt: keep(&update.prompt, &current.options.prompt),
            userinfo_endpoint: keep(
                &update.userinfo_endpoint,
                &current.options.userinfo_endpoint,
            ),
            revocation_endpoint: keep(
                &update.revocation_endpoint,
                &current.options.revocation_endpoint,
            ),
            enabled: update.enabled.unwrap_or(current.enabled),
        }
    }
}

/// One provider row of the tenant on the connection's search path.
pub(crate) async fn find(
    conn: &mut AsyncPgConnection,
    name: &str,
) -> Result<Option<UpstreamProviderInfo>, AuthError> {
    Ok(upstream_providers::table
        .find(name)
        .select(UpstreamProviderInfo::as_select())
        .first(conn)
        .await
        .optional()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_are_url_safe() {
        assert!(valid_provider_name("google-workspace_1"));
        for bad in ["", "a/b", "a b", "ä", "..", &"x".repeat(65)] {
            assert!(!valid_provider_name(bad), "{bad}");
        }
    }

    #[test]
    fn urls_are_https_or_loopback_http() {
        for good in [
            "https://accounts.google.com",
            "http://127.0.0.1:8080/x",
            "http://localhost/",
            "http://[::1]:9/",
        ] {
            assert!(check_url("u", good).is_ok(), "{good}");
        }
        for bad in [
            "http://idp.example",
            "ftp://idp.example",
            "https://user:pw@idp.example",
            "https://idp.example/#f",
            "not a url",
            "http://10.0.0.1/",
        ] {
            assert!(check_url("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_tradestation_preset_fills_what_is_left_out() {
        let given: UpstreamProvider = serde_json::from_value(serde_json::json!({
            "preset": "tradestation",
            "clientId": "abc",
            "redirectUri": "https://rp.example/t/acme/login/upstream/tradestation/callback",
        }))
        .unwrap();
        let p = given.clone().checked().unwrap();
        assert_eq!(p.name, "tradestation");
        assert_eq!(p.display_name, "TradeStation");
        assert_eq!(p.issuer, "https://signin.tradestation.com/");
        assert_eq!(
            p.authorization_endpoint.as_deref(),
            Some("https://signin.tradestation.com/authorize")
        );
        assert_eq!(
            p.token_endpoint.as_deref(),
            Some("https://signin.tradestation.com/oauth/token")
        );
        assert_eq!(
            p.jwks_uri.as_deref(),
            Some("https://signin.tradestation.com/.well-known/jwks.json")
        );
        assert_eq!(
            p.userinfo_endpoint.as_deref(),
            Some("https://signin.tradestation.com/userinfo")
        );
        assert_eq!(p.audience.as_deref(), Some("https://api.tradestation.com"));
        assert_eq!(
            p.scopes,
            ["offline_access", "profile", "MarketData", "ReadAccount"]
        );
        assert_eq!(p.options().preset.as_deref(), Some("tradestation"));
        // Every field may be overridden; a bad prompt is refused.
        let mut local = UpstreamProvider {
            token_endpoint: Some("http://127.0.0.1:9/token".into()),
            scopes: vec!["MarketData".into()],
            ..given.clone()
        }
        .checked()
        .unwrap();
        assert_eq!(
            local.token_endpoint.as_deref(),
            Some("http://127.0.0.1:9/token")
        );
        assert_eq!(local.scopes, ["MarketData"]);
        local.prompt = Some("consent login".into());
        assert!(local.clone().checked().is_ok());
        local.prompt = Some("always".into());
        assert!(local.checked().is_err());
        // Without a preset nothing is filled in.
        let bare = UpstreamProvider {
            preset: None,
            ..given
        };
        assert!(bare.checked().is_err());
    }

    #[test]
    fn endpoints_come_all_three_or_none() {
        let base = UpstreamProvider {
            name: "idp".into(),
            display_name: "IdP".into(),
            issuer: "https://idp.example".into(),
            client_id: "c".into(),
            redirect_uri: "https://rp.example/cb".into(),
            scopes: vec!["openid".into(), "email".into(), "email".into()],
            ..UpstreamProvider::default()
        };
        assert_eq!(base.clone().checked().unwrap().scopes, vec!["email"]);
        let partial = UpstreamProvider {
            token_endpoint: Some("https://idp.example/token".into()),
            ..base.clone()
        };
        assert!(partial.checked().is_err());
        let all = UpstreamProvider {
            authorization_endpoint: Some("https://idp.example/auth".into()),
            token_endpoint: Some("https://idp.example/token".into()),
            jwks_uri: Some("https://idp.example/jwks".into()),
            ..base
        };
        assert!(all.checked().is_ok());
    }
}
