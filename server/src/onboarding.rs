//! Onboarding shared by the command line, the admin listener and the tenant
//! API: where an invitation's accept page is, whether it is mailed (SMTP
//! configured) or handed back, and an auth server for commands that only
//! manage rows (invitations, OAuth clients) and sign nothing.
use rampart_tenancy::TenantSlug;
use std::sync::Arc;

use rampart_auth::invitation::{Invitation, IssuedInvitation, NewInvitation};
use rampart_auth::{AuthError, AuthServer};
use rampart_notify::{Notifier, NotifyConfig, NotifyError};
use rampart_tenancy::TenantPool;
use serde::Serialize;

use crate::config::{Mode, ServerConfig};

/// The accept page of an invitation link.
pub fn accept_url(public_base_url: &str, tenant: &str, token: &str) -> String {
    format!(
        "{}/t/{tenant}/invite/{token}",
        public_base_url.trim_end_matches('/')
    )
}

/// Whether invitations are mailed: in production mode, or whenever a relay
/// other than the default `localhost` is configured (`[notify] smtp_host`).
/// Otherwise the link is handed to whoever invited (printed by the CLI).
pub fn mails_invitations(config: &ServerConfig) -> bool {
    config.mode == Mode::Production || config.notify.smtp_host != NotifyConfig::default().smtp_host
}

/// An invitation issued or re-sent, as answered to the inviter.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivered {
    /// The invitation.
    pub invitation: Invitation,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: &'static str,
    /// Whether the link went out by e-mail.
    pub mailed: bool,
    /// The link, when it was not mailed (shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_url: Option<String>,
}

impl Delivered {
    /// An invitation as listed (no link).
    pub fn listed(invitation: Invitation) -> Self {
        Delivered {
            status: invitation.status(),
            invitation,
            mailed: false,
            accept_url: None,
        }
    }
}

/// Mails the link of `issued` when SMTP is configured, else returns it.
pub async fn deliver(
    config: &ServerConfig,
    pool: &TenantPool,
    tenant: &TenantSlug,
    issued: IssuedInvitation,
) -> Result<Delivered, NotifyError> {
    let link = accept_url(&config.public_base_url, tenant, &issued.token);
    let mailed = mails_invitations(config);
    if mailed {
        let name = pool.tenant(tenant).await?.display_name;
        let inv = &issued.invitation;
        Notifier::new(pool.clone(), config.notify.clone())?
            .send_invitation(
                tenant,
                &name,
                inv.user_id,
                &inv.email,
                &link,
                inv.expires_at,
            )
            .await?;
    }
    Ok(Delivered {
        status: issued.invitation.status(),
        invitation: issued.invitation,
        mailed,
        accept_url: (!mailed).then_some(link),
    })
}

/// Invites a tenant's first administrator (`rampart tenants provision
/// --admin-email`, `POST /admin/tenants` with `admin_email`); deliver the
/// link with [`deliver`].
pub async fn invite_first_admin(
    auth: &AuthServer,
    tenant: &TenantSlug,
    email: &str,
    by: &str,
) -> Result<IssuedInvitation, AuthError> {
    let who = NewInvitation {
        email: email.to_owned(),
        display_name: String::new(),
        role: rampart_auth::Role::Admin,
        ttl_hours: None,
    };
    auth.invitations().invite(tenant, &who, by).await
}

/// An auth server for commands that manage rows only (invitations, OAuth
/// clients): its keys live in memory and sign nothing.
pub async fn row_admin(pool: TenantPool, config: &ServerConfig) -> anyhow::Result<Arc<AuthServer>> {
    Ok(Arc::new(
        AuthServer::with_memory_keys(pool, config.auth.clone()).await?,
    ))
}

/// The server configuration a command uses for links and mail.
pub fn link_config(
    config: Option<&std::path::Path>,
    public_url: Option<&str>,
) -> anyhow::Result<ServerConfig> {
    let mut out = match config {
        Some(path) => ServerConfig::load(Some(path))?,
        None => ServerConfig::default(),
    };
    if let Some(url) = public_url {
        out.public_base_url = url.trim_end_matches('/').to_owned();
    }
    Ok(out)
}

/// Prints what happened to an invitation's link.
pub fn print_delivered(d: &Delivered) {
    let inv = &d.invitation;
    println!(
        "invitation {} for {} ({}) {} until {}",
        inv.id,
        inv.email,
        inv.role,
        d.status,
        inv.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    match &d.accept_url {
        Some(url) => println!("accept URL (single use; SMTP not configured): {url}"),
        None if d.mailed => println!("the link was mailed to {}", inv.email),
        None => {}
    }
}
