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

/// One of a tenant's browser pages that signs in with a public OAuth
/// client of its own (code flow with PKCE from the browser).
#[derive(Debug, Clone, Copy)]
pub struct Console {
    /// The client id.
    pub client_id: &'static str,
    /// What the page is called (`admin page`); its client is named
    /// `Rampart <page>`.
    pub page: &'static str,
    /// The scopes the page asks for.
    pub scope: &'static str,
    /// The redirect URI of the client of a tenant, from the public base URL.
    pub redirect_uri: fn(&str, &str) -> String,
}

/// The tenant admin page (`routes::admin_page`).
pub const ADMIN: Console = Console {
    client_id: CLIENT_ID,
    page: "admin page",
    scope: SCOPE,
    redirect_uri,
};

/// The member page (`routes::member_page`).
pub const MEMBER: Console = Console {
    client_id: MEMBER_CLIENT_ID,
    page: "member page",
    scope: MEMBER_SCOPE,
    redirect_uri: member_redirect_uri,
};

/// What a page hands its script to sign in.
#[derive(Debug)]
pub struct SignIn {
    client_id: &'static str,
    scope: &'static str,
    redirect_uri: String,
    issuer: String,
}

impl SignIn {
    /// As the page frame takes it.
    pub fn login(&self) -> crate::pages::AdminLogin<'_> {
        crate::pages::AdminLogin {
            client_id: self.client_id,
            redirect_uri: &self.redirect_uri,
            issuer: &self.issuer,
            scope: self.scope,
        }
    }
}

/// Why a page is not served: what its problem page says.
#[derive(Debug)]
pub struct Unavailable {
    /// The status.
    pub status: actix_web::http::StatusCode,
    /// The heading.
    pub title: &'static str,
    /// The explanation.
    pub text: String,
}

/// The sign-in of `console` on `tenant`: refused when the tenant is not
/// active, or when the page's client is missing (it is registered at
/// provisioning, never by an anonymous request for the page: only checked
/// here, with the reason in the server log).
pub async fn sign_in(
    state: &crate::state::AppState,
    tenant: &TenantSlug,
    console: Console,
) -> Result<SignIn, Unavailable> {
    use actix_web::http::StatusCode;
    if state.tenants.active_tenant(tenant).await.is_err() {
        return Err(Unavailable {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            text: "No such tenant, or it is not active.".into(),
        });
    }
    let auth = &state.auth;
    let redirect = (console.redirect_uri)(&auth.config().public_base_url, tenant);
    if let Err(e) = check(auth, tenant, console.client_id, &redirect).await {
        tracing::error!(%tenant, page = console.page, error = %e, "OAuth client unavailable");
        return Err(Unavailable {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Sign-in unavailable",
            text: format!(
                "The {}'s OAuth client is not set up for this tenant; the server log says why.",
                console.page
            ),
        });
    }
    Ok(SignIn {
        client_id: console.client_id,
        scope: console.scope,
        redirect_uri: redirect,
        issuer: auth.issuer(tenant),
    })
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
    for console in [ADMIN, MEMBER] {
        ensure(auth, tenant, console).await?;
    }
    Ok(())
}

/// Registers one page's client, with the redirect URI of the configured
/// base URL.
async fn ensure(auth: &AuthServer, tenant: &TenantSlug, console: Console) -> Result<(), String> {
    let Console {
        client_id,
        page,
        scope,
        ..
    } = console;
    let redirect = (console.redirect_uri)(&auth.config().public_base_url, tenant);
    if registered_client(auth, tenant, client_id, &redirect).await? {
        return Ok(());
    }
    let reg = ClientRegistration {
        client_id: client_id.into(),
        name: format!("Rampart {page}"),
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
