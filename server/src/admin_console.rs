//! The OAuth client of the tenant admin page (`routes::admin_page`): a
//! public client registered when a tenant is provisioned (admin listener,
//! CLI, demo) — never by an anonymous request for the page.
use rampart_auth::oauth::{ClientAuthMethod, ClientRegistration};
use rampart_auth::{AuthError, AuthServer, SigningAlg};
use rampart_tenancy::TenantSlug;

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

/// The public OAuth client of the member page (`routes::member_page`),
/// registered beside the admin page's.
pub const MEMBER_CLIENT_ID: &str = "member-page";
/// The scopes the member page asks for (its own series, the leaderboard).
pub const MEMBER_SCOPE: &str = "openid portfolio:read";

/// The redirect URI of the member page's client of `tenant`.
pub fn member_redirect_uri(public_base_url: &str, tenant: &str) -> String {
    format!(
        "{}/t/{tenant}/member/callback",
        public_base_url.trim_end_matches('/')
    )
}

/// Whether the tenant has the client `client_id` with `redirect`:
/// `Ok(true)` yes, `Ok(false)` not registered, `Err` registered for
/// another redirect URI (or unreadable).
async fn registered_client(
    auth: &AuthServer,
    tenant: &TenantSlug,
    client_id: &str,
    redirect: &str,
) -> Result<bool, String> {
    match auth.client(tenant, client_id).await {
        Ok(c) if c.redirect_uris.iter().any(|r| r == redirect) => Ok(true),
        Ok(c) => Err(format!(
            "the OAuth client {client_id} of this tenant is registered for {} but the server's public_base_url gives {redirect}",
            c.redirect_uris.join(", ")
        )),
        Err(AuthError::InvalidClient) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Checks that the tenant has the admin page's client (for the page).
pub async fn check_client(
    auth: &AuthServer,
    tenant: &TenantSlug,
    redirect: &str,
) -> Result<(), String> {
    check(auth, tenant, CLIENT_ID, redirect).await
}

/// Checks that the tenant has the member page's client (for the page).
pub async fn check_member_client(
    auth: &AuthServer,
    tenant: &TenantSlug,
    redirect: &str,
) -> Result<(), String> {
    check(auth, tenant, MEMBER_CLIENT_ID, redirect).await
}

async fn check(
    auth: &AuthServer,
    tenant: &TenantSlug,
    client_id: &str,
    redirect: &str,
) -> Result<(), String> {
    if registered_client(auth, tenant, client_id, redirect).await? {
        Ok(())
    } else {
        Err(format!(
            "tenant {tenant} has no OAuth client {client_id}: it is registered at provisioning"
        ))
    }
}

/// Registers the admin page's and the member page's public clients for a
/// tenant (idempotent), with the redirect URIs of the configured base URL.
pub async fn ensure_client(auth: &AuthServer, tenant: &TenantSlug) -> Result<(), String> {
    let base = auth.config().public_base_url.clone();
    ensure(
        auth,
        tenant,
        (CLIENT_ID, "Rampart admin page", SCOPE),
        redirect_uri(&base, tenant),
    )
    .await?;
    ensure(
        auth,
        tenant,
        (MEMBER_CLIENT_ID, "Rampart member page", MEMBER_SCOPE),
        member_redirect_uri(&base, tenant),
    )
    .await
}

/// Registers one page's client: (id, name, scope), with `redirect`.
async fn ensure(
    auth: &AuthServer,
    tenant: &TenantSlug,
    (client_id, name, scope): (&str, &str, &str),
    redirect: String,
) -> Result<(), String> {
    if registered_client(auth, tenant, client_id, &redirect).await? {
        return Ok(());
    }
    let reg = ClientRegistration {
        client_id: client_id.into(),
        name: name.into(),
        redirect_uris: vec![redirect],
        grant_types: vec!["authorization_code".into()],
        allowed_scopes: scope.split(' ').map(str::to_owned).collect(),
        auth_method: ClientAuthMethod::None,
        signing_alg: SigningAlg::ES256,
    };
    match auth.register_client(tenant, &reg).await {
        // Conflict: registered concurrently.
        Ok(_) | Err(AuthError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
