//! `rampart idps …`: a tenant's upstream identity providers from the
//! command line, straight on the database (no running server needed),
//! through the same service as the admin API. A client secret is read from
//! standard input (`--client-secret-stdin`) or an environment variable
//! (`--client-secret-env NAME`), never from an argument, and kept in the
//! secret store the configuration names (Vault, or the dev store); output
//! shows only whether one is stored.
use rampart_tenancy::TenantSlug;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use rampart_auth::{
    AuthServer, Role, UpstreamProvider, UpstreamProviderInfo, UpstreamProviderUpdate,
};
use rampart_vault::SecretStore;
use secrecy::SecretString;

use crate::config::ServerConfig;
use crate::idp_config::{default_redirect_uri, env_secret};
use crate::onboard_cmd::words;
use crate::onboarding::{self, link_config};
use crate::tenants_cmd::DbArgs;

/// Where the database is and the configuration that names the secret store.
#[derive(Debug, Args)]
pub struct IdpArgs {
    /// The platform database.
    #[command(flatten)]
    pub db: DbArgs,
    /// The server's configuration file (`[vault]`, `mode`,
    /// `dev_secrets_dir`, `public_base_url`).
    #[arg(long, short, env = "RAMPART_CONFIG")]
    pub config: Option<PathBuf>,
    /// The public URL the default callback points to, when no
    /// configuration file is given.
    #[arg(long, env = "RAMPART_PUBLIC_BASE_URL")]
    pub public_url: Option<String>,
    /// Tenant slug.
    pub tenant: TenantSlug,
}

impl IdpArgs {
    async fn open(&self) -> anyhow::Result<(Arc<AuthServer>, ServerConfig)> {
        let config = link_config(self.config.as_deref(), self.public_url.as_deref())?;
        let pool = crate::onboard_cmd::connect(&self.db).await?;
        let vault = match &config.vault {
            Some(v) => Some(Arc::new(SecretStore::connect(v.clone()).await?)),
            None => None,
        };
        let secrets = crate::idp_secrets::upstream_secrets(&config, vault.as_ref());
        let auth = onboarding::row_admin(pool, &config).await?;
        let auth = Arc::into_inner(auth)
            .ok_or_else(|| anyhow::anyhow!("auth server shared"))?
            .with_upstream_secrets(secrets);
        Ok((Arc::new(auth), config))
    }
}

/// Where a client secret comes from (never a plain argument).
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// Read the client secret from the first line of standard input.
    #[arg(long, conflicts_with = "client_secret_env")]
    pub client_secret_stdin: bool,
    /// Read the client secret from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
}

impl SecretArgs {
    fn read(&self) -> anyhow::Result<Option<SecretString>> {
        if self.client_secret_stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            anyhow::ensure!(!line.is_empty(), "no client secret on standard input");
            return Ok(Some(SecretString::from(line)));
        }
        if let Some(var) = &self.client_secret_env {
            return Ok(Some(env_secret(var)?));
        }
        Ok(None)
    }
}

/// Explicit endpoints (all three, or none for discovery).
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Authorization endpoint (skips discovery with the other two).
    #[arg(long)]
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    #[arg(long)]
    pub token_endpoint: Option<String>,
    /// JWKS URL.
    #[arg(long)]
    pub jwks_uri: Option<String>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "the name of one of the tenant's roles".to_owned())
}

/// One provider of a tenant.
#[derive(Debug, Args)]
pub struct IdpRef {
    /// Database, configuration, tenant.
    #[command(flatten)]
    pub at: IdpArgs,
    /// Provider name.
    pub name: String,
}

/// `idps add`: a provider to register.
#[derive(Debug, Args)]
pub struct AddIdp {
    /// Database, configuration, tenant.
    #[command(flatten)]
    pub at: IdpArgs,
    /// Provider name (in URLs): `[A-Za-z0-9_-]`.
    pub name: String,
    /// Shown on the login page (default: the name).
    #[arg(long)]
    pub display_name: Option<String>,
    /// Issuer URL.
    #[arg(long)]
    pub issuer: String,
    /// Our client id at the provider.
    #[arg(long)]
    pub client_id: String,
    /// Client secret source.
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Our callback URL (default
    /// `{public_base_url}/t/{tenant}/login/upstream/{name}/callback`).
    #[arg(long)]
    pub redirect_uri: Option<String>,
    /// Scopes besides `openid`, space-separated.
    #[arg(long, default_value = "email profile")]
    pub scopes: String,
    /// Allow linking to a local account by verified e-mail (also needs
    /// the tenant setting `upstreamLinking = verified_email`).
    #[arg(long)]
    pub link_verified_email: bool,
    /// Role of users created by a first login.
    #[arg(long, default_value = "viewer", value_parser = parse_role)]
    pub new_user_role: Role,
    /// Explicit endpoints.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// Register it disabled.
    #[arg(long)]
    pub disabled: bool,
    /// Replace a provider of the same name.
    #[arg(long)]
    pub replace: bool,
}

/// `idps update`: the fields of a provider to change.
#[derive(Debug, Args)]
pub struct UpdateIdp {
    /// The provider.
    #[command(flatten)]
    pub idp: IdpRef,
    /// New display name.
    #[arg(long)]
    pub display_name: Option<String>,
    /// New issuer (its identity links are dropped).
    #[arg(long)]
    pub issuer: Option<String>,
    /// New client id.
    #[arg(long)]
    pub client_id: Option<String>,
    /// New client secret source.
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Remove the stored client secret.
    #[arg(long, conflicts_with_all = ["client_secret_stdin", "client_secret_env"])]
    pub remove_client_secret: bool,
    /// New callback URL.
    #[arg(long)]
    pub redirect_uri: Option<String>,
    /// New scopes, space-separated.
    #[arg(long)]
    pub scopes: Option<String>,
    /// E-mail linking on or off.
    #[arg(long)]
    pub link_verified_email: Option<bool>,
    /// New role for users created by a first login.
    #[arg(long, value_parser = parse_role)]
    pub new_user_role: Option<Role>,
    /// New explicit endpoints.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// Drop the explicit endpoints (discovery again).
    #[arg(long)]
    pub use_discovery: bool,
}

/// Upstream identity provider commands.
#[derive(Debug, Subcommand)]
pub enum IdpsCommand {
    /// List the tenant's providers.
    List {
        /// Database, configuration, tenant.
        #[command(flatten)]
        at: IdpArgs,
    },
    /// Show one provider (JSON; never the secret).
    Show(IdpRef),
    /// Register a provider (checked through its discovery document, or its
    /// explicit endpoints and JWKS, first).
    Add(AddIdp),
    /// Change some of a provider's fields.
    Update(UpdateIdp),
    /// Disable a provider (not offered, its logins refused).
    Disable(IdpRef),
    /// Enable a provider.
    Enable(IdpRef),
    /// Delete a provider, its identity links and its client secret.
    Remove(IdpRef),
}

fn print_idp(p: &UpstreamProviderInfo) {
    println!(
        "{:<16} {:<8} {:<9} issuer={} client_id={} secret={} scopes={} link_verified_email={} endpoints={}",
        p.name,
        if p.enabled { "enabled" } else { "disabled" },
        p.new_user_role,
        p.issuer,
        p.client_id,
        if p.has_client_secret {
            "stored"
        } else {
            "none"
        },
        p.scopes.join(" "),
        p.link_verified_email,
        if p.jwks_uri.is_some() {
            "explicit"
        } else {
            "discovery"
        },
    );
}

/// The actor the audit trail records for these commands.
const ACTOR: &str = "cli";

/// Runs an upstream identity provider command.
pub async fn run(cmd: IdpsCommand) -> anyhow::Result<()> {
    match cmd {
        IdpsCommand::List { at } => {
            let (auth, _) = at.open().await?;
            for p in auth.upstream().list_providers(&at.tenant).await? {
                print_idp(&p);
            }
        }
        IdpsCommand::Show(IdpRef { at, name }) => {
            let (auth, _) = at.open().await?;
            let p = auth.upstream().provider_info(&at.tenant, &name).await?;
            println!("{}", serde_json::to_string_pretty(&p)?);
        }
        IdpsCommand::Add(add) => {
            let client_secret = add.secret.read()?;
            let (auth, config) = add.at.open().await?;
            let provider = UpstreamProvider {
                display_name: add.display_name.unwrap_or_else(|| add.name.clone()),
                redirect_uri: add.redirect_uri.unwrap_or_else(|| {
                    default_redirect_uri(&config.public_base_url, &add.at.tenant, &add.name)
                }),
                name: add.name,
                issuer: add.issuer,
                client_id: add.client_id,
                client_secret,
                scopes: words(&add.scopes),
                link_verified_email: add.link_verified_email,
                new_user_role: add.new_user_role,
                authorization_endpoint: add.endpoints.authorization_endpoint,
                token_endpoint: add.endpoints.token_endpoint,
                jwks_uri: add.endpoints.jwks_uri,
                enabled: !add.disabled,
                ..UpstreamProvider::default()
            };
            print_idp(
                &auth
                    .upstream()
                    .put_provider(&add.at.tenant, provider, add.replace, ACTOR)
                    .await?,
            );
        }
        IdpsCommand::Update(change) => {
            let client_secret = change.secret.read()?;
            let IdpRef { at, name } = &change.idp;
            let (auth, _) = at.open().await?;
            let update = UpstreamProviderUpdate {
                display_name: change.display_name,
                issuer: change.issuer,
                client_id: change.client_id,
                client_secret,
                remove_client_secret: change.remove_client_secret,
                redirect_uri: change.redirect_uri,
                scopes: change.scopes.as_deref().map(words),
                link_verified_email: change.link_verified_email,
                new_user_role: change.new_user_role,
                authorization_endpoint: change.endpoints.authorization_endpoint,
                token_endpoint: change.endpoints.token_endpoint,
                jwks_uri: change.endpoints.jwks_uri,
                use_discovery: change.use_discovery,
                enabled: None,
                ..UpstreamProviderUpdate::default()
            };
            print_idp(
                &auth
                    .upstream()
                    .update_provider(&at.tenant, name, &update, ACTOR)
                    .await?,
            );
        }
        IdpsCommand::Disable(IdpRef { at, name }) => set_enabled(&at, &name, false).await?,
        IdpsCommand::Enable(IdpRef { at, name }) => set_enabled(&at, &name, true).await?,
        IdpsCommand::Remove(IdpRef { at, name }) => {
            let (auth, _) = at.open().await?;
            auth.upstream()
                .delete_provider(&at.tenant, &name, ACTOR)
                .await?;
            println!("removed {name}");
        }
    }
    Ok(())
}

/// `idps enable` / `idps disable`: prints the provider as it now is.
async fn set_enabled(at: &IdpArgs, name: &str, enabled: bool) -> anyhow::Result<()> {
    let (auth, _) = at.open().await?;
    let upstream = auth.upstream();
    print_idp(
        &upstream
            .set_provider_enabled(&at.tenant, name, enabled, ACTOR)
            .await?,
    );
    Ok(())
}
