//! `rampart clients …` and `rampart invitations …`: a tenant's OAuth
//! clients and invitations from the command line, straight on the database
//! (no running server needed). Secrets and invitation links are printed
//! once; invitations are mailed instead when SMTP is configured.
use rampart_tenancy::TenantSlug;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use rampart_auth::AuthServer;
use rampart_auth::clients::{ClientInfo, ClientUpdate};
use rampart_auth::invitation::NewInvitation;
use rampart_tenancy::{TenancyConfig, TenantPool};
use uuid::Uuid;

use crate::config::ServerConfig;
use crate::onboarding::{self, Delivered, link_config, print_delivered};
use crate::routes::clients::CreateClientBody;
use crate::tenants_cmd::DbArgs;

/// Where the database is, which tenant, and the configuration that says
/// where links point and whether they are mailed.
#[derive(Debug, Args)]
pub struct TenantArgs {
    /// The platform database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Tenant slug.
    #[arg(long)]
    pub tenant: TenantSlug,
    /// The server's configuration file (`public_base_url`, `[notify]`).
    #[arg(long, short, env = "RAMPART_CONFIG")]
    pub config: Option<PathBuf>,
    /// The public URL links point to, when no configuration file is given.
    #[arg(long, env = "RAMPART_PUBLIC_BASE_URL")]
    pub public_url: Option<String>,
}

/// Connects to the platform database.
pub async fn connect(db: &DbArgs) -> anyhow::Result<TenantPool> {
    Ok(TenantPool::connect(TenancyConfig {
        database_url: db.database_url.clone(),
        ..TenancyConfig::default()
    })
    .await?)
}

impl TenantArgs {
    async fn open(&self) -> anyhow::Result<(Arc<AuthServer>, ServerConfig)> {
        let config = link_config(self.config.as_deref(), self.public_url.as_deref())?;
        let pool = connect(&self.db).await?;
        Ok((onboarding::row_admin(pool, &config).await?, config))
    }
}

/// One OAuth client of a tenant.
#[derive(Debug, Args)]
pub struct ClientRef {
    /// Database, tenant, configuration.
    #[command(flatten)]
    pub at: TenantArgs,
    /// Client id.
    pub client_id: String,
}

/// OAuth client commands.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client (a confidential one's secret is printed once).
    Create {
        /// Database, tenant, configuration.
        #[command(flatten)]
        at: TenantArgs,
        /// Client id, unique in the tenant.
        client_id: String,
        /// Display name (default: the client id).
        #[arg(long)]
        name: Option<String>,
        /// A redirect URI (repeat for more).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Allowed scopes, space-separated.
        #[arg(long, default_value = "openid profile email offline_access")]
        scopes: String,
        /// A confidential client (gets a secret); default public (PKCE).
        #[arg(long)]
        confidential: bool,
        /// Grant types, space-separated (default `authorization_code refresh_token`).
        #[arg(long)]
        grant_types: Option<String>,
    },
    /// List the tenant's clients.
    List {
        /// Database, tenant, configuration.
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Show one client.
    Show(ClientRef),
    /// Change a client's name, redirect URIs or scopes.
    Update {
        /// The client.
        #[command(flatten)]
        client: ClientRef,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Replace the redirect URIs (repeat for more).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Replace the allowed scopes (space-separated).
        #[arg(long)]
        scopes: Option<String>,
    },
    /// A new secret for a confidential client (printed once).
    RotateSecret(ClientRef),
    /// Disable a client (no new tokens; its tokens are revoked).
    Disable(ClientRef),
    /// Delete a client (its tokens are revoked).
    Delete(ClientRef),
}

/// The words of `s` (a space-separated list argument).
pub(crate) fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn print_client(c: &ClientInfo) {
    println!(
        "{:<24} {:<20} {:<8} {:<9} redirect={} scopes={}",
        c.client_id,
        c.auth_method,
        if c.disabled_at.is_some() {
            "disabled"
        } else {
            "enabled"
        },
        c.signing_alg,
        c.redirect_uris.join(","),
        c.allowed_scopes.join(" "),
    );
}

/// Runs a client command.
pub async fn run_clients(cmd: ClientsCommand) -> anyhow::Result<()> {
    const ACTOR: &str = "cli";
    match cmd {
        ClientsCommand::Create {
            at,
            client_id,
            name,
            redirect_uris,
            scopes,
            confidential,
            grant_types,
        } => {
            let (auth, _) = at.open().await?;
            let body = CreateClientBody {
                name: name.unwrap_or_else(|| client_id.clone()),
                client_id,
                redirect_uris,
                allowed_scopes: words(&scopes),
                confidential,
                grant_types: grant_types.as_deref().map(words),
                signing_alg: None,
            };
            let reg = body
                .registration()
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let secret = auth.oauth().register_client(&at.tenant, &reg).await?;
            print_client(&auth.oauth().client_info(&at.tenant, &reg.client_id).await?);
            if let Some(secret) = secret {
                println!("client secret (shown once): {secret}");
            }
        }
        ClientsCommand::List { at } => {
            let (auth, _) = at.open().await?;
            for c in auth.oauth().list_clients(&at.tenant).await? {
                print_client(&c);
            }
        }
        ClientsCommand::Show(ClientRef { at, client_id }) => {
            let (auth, _) = at.open().await?;
            let c = auth.oauth().client_info(&at.tenant, &client_id).await?;
            println!("{}", serde_json::to_string_pretty(&c)?);
        }
        ClientsCommand::Update {
            client: ClientRef { at, client_id },
            name,
            redirect_uris,
            scopes,
        } => {
            let (auth, _) = at.open().await?;
            let update = ClientUpdate {
                name,
                redirect_uris: (!redirect_uris.is_empty()).then_some(redirect_uris),
                allowed_scopes: scopes.as_deref().map(words),
            };
            print_client(
                &auth
                    .oauth()
                    .update_client(&at.tenant, &client_id, &update, ACTOR)
                    .await?,
            );
        }
        ClientsCommand::RotateSecret(ClientRef { at, client_id }) => {
            let (auth, _) = at.open().await?;
            let secret = auth
                .oauth()
                .rotate_client_secret(&at.tenant, &client_id, ACTOR)
                .await?;
            println!("client secret of {client_id} (shown once): {secret}");
        }
        ClientsCommand::Disable(ClientRef { at, client_id }) => {
            let (auth, _) = at.open().await?;
            print_client(
                &auth
                    .oauth()
                    .disable_client(&at.tenant, &client_id, ACTOR)
                    .await?,
            );
        }
        ClientsCommand::Delete(ClientRef { at, client_id }) => {
            let (auth, _) = at.open().await?;
            auth.oauth()
                .delete_client(&at.tenant, &client_id, ACTOR)
                .await?;
            println!("deleted {client_id}");
        }
    }
    Ok(())
}

/// Invitation commands.
#[derive(Debug, Subcommand)]
pub enum InvitationsCommand {
    /// Invite a user (or a member added as pending) with a role.
    Create {
        /// Database, tenant, configuration.
        #[command(flatten)]
        at: TenantArgs,
        /// E-mail address.
        email: String,
        /// `admin`, `trader` or `viewer`.
        #[arg(long, default_value = "trader")]
        role: String,
        /// Display name of a new user.
        #[arg(long, default_value = "")]
        name: String,
        /// Lifetime in hours (1–720).
        #[arg(long)]
        expires_in_hours: Option<u32>,
    },
    /// List invitations with their status.
    List {
        /// Database, tenant, configuration.
        #[command(flatten)]
        at: TenantArgs,
    },
    /// A new link for an invitation (the old one stops working).
    Resend(InvitationRef),
    /// Revoke an invitation.
    Revoke(InvitationRef),
}

/// One invitation of a tenant.
#[derive(Debug, Args)]
pub struct InvitationRef {
    /// Database, tenant, configuration.
    #[command(flatten)]
    pub at: TenantArgs,
    /// Invitation id.
    pub id: Uuid,
}

/// Runs an invitation command.
pub async fn run_invitations(cmd: InvitationsCommand) -> anyhow::Result<()> {
    const ACTOR: &str = "cli";
    match cmd {
        InvitationsCommand::Create {
            at,
            email,
            role,
            name,
            expires_in_hours,
        } => {
            let (auth, config) = at.open().await?;
            let role = rampart_auth::Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!("role must be the name of one of the tenant's roles")
            })?;
            let who = NewInvitation {
                email,
                display_name: name,
                role,
                ttl_hours: expires_in_hours,
            };
            let issued = auth.invitations().invite(&at.tenant, &who, ACTOR).await?;
            print_delivered(&onboarding::deliver(&config, auth.pool(), &at.tenant, issued).await?);
        }
        InvitationsCommand::List { at } => {
            let (auth, _) = at.open().await?;
            for inv in auth.invitations().list(&at.tenant).await? {
                print_delivered(&Delivered::listed(inv));
            }
        }
        InvitationsCommand::Resend(InvitationRef { at, id }) => {
            let (auth, config) = at.open().await?;
            let issued = auth
                .invitations()
                .resend(&at.tenant, id, None, ACTOR)
                .await?;
            print_delivered(&onboarding::deliver(&config, auth.pool(), &at.tenant, issued).await?);
        }
        InvitationsCommand::Revoke(InvitationRef { at, id }) => {
            let (auth, _) = at.open().await?;
            let inv = auth.invitations().revoke(&at.tenant, id, ACTOR).await?;
            print_delivered(&Delivered::listed(inv));
        }
    }
    Ok(())
}
