//! The OAuth client of the tenant admin page (`routes::admin_page`): a
//! public client registered when a tenant is provisioned (admin listener,
//! CLI, demo) — never by an anonymous request for the page.
use rampart_auth::oauth::{ClientAuthMethod, ClientRegistration};
use rampart_auth::{AuthError, AuthServer, SigningAlg};

/// The public OAuth client of the admin page, one per tenant.
pub const CLIENT_ID: &str = "admin-console";
/// The scopes the page asks for.
/// `portfolio:read analytics:read` for the Portfolios panel (the list and
/// the SVG charts).
pub const SCOPE: &str = "openid users:manage tenant:admin portfolio:read analytics:read";

/// The redirect URI of the admin client of `tenant`.
pub fn redirect_uri(public_base_url: &str, tenant: &str) -> String {
    format!(
        "{}/t/{tenant}/admin/callback",
        public_base_url.trim_end_matches('/')
    )
}

/// Whether the tenant has the admin page's client with `redirect`:
/// `Ok(true)` yes, `Ok(false)` not registered, `Err` registered for
/// another redirect URI (or unreadable).
async fn registered(auth: &AuthServer, tenant: &str, redirect: &str) -> Result<bool, String> {
    match auth.client(tenant, CLIENT_ID).await {
        Ok(c) if c.redirect_uris.iter().any(|r| r == redirect) => Ok(true),
        Ok(c) => Err(format!(
            "the OAuth client {CLIENT_ID} of this tenant is registered for {} but the server's public_base_url gives {redirect}",
            c.redirect_uris.join(", ")
        )),
        Err(AuthError::InvalidClient) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Checks that the tenant has the admin page's client (for the page).
pub async fn check_client(auth: &AuthServer, tenant: &str, redirect: &str) -> Result<(), String> {
    if registered(auth, tenant, redirect).await? {
        Ok(())
    } else {
        Err(format!(
            "tenant {tenant} has no OAuth client {CLIENT_ID}: it is registered at provisioning"
        ))
    }
}

/// Registers the admin page's public client for a tenant (idempotent), with
/// the redirect URI of the configured base URL.
pub async fn ensure_client(auth: &AuthServer, tenant: &str) -> Result<(), String> {
    let redirect = redirect_uri(&auth.config().public_base_url, tenant);
    if registered(auth, tenant, &redirect).await? {
        return Ok(());
    }
    let reg = ClientRegistration {
        client_id: CLIENT_ID.into(),
        name: "Rampart admin page".into(),
        redirect_uris: vec![redirect],
        grant_types: vec!["authorization_code".into()],
        allowed_scopes: SCOPE.split(' ').map(str::to_owned).collect(),
        auth_method: ClientAuthMethod::None,
        signing_alg: SigningAlg::ES256,
    };
    match auth.register_client(tenant, &reg).await {
        // Conflict: registered concurrently.
        Ok(_) | Err(AuthError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
