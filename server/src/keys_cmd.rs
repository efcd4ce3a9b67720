//! `rampart keys …`: rotate or revoke the auth server's keys in their store
//! (Vault). Running servers pick the change up within `key_check_secs`.
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use rampart_auth::{KeyKind, KeyRing, RotationPolicy};

use crate::config::ServerConfig;
use rampart_vault::SecretStore;

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate a key chain now: the published next key starts signing and a
    /// new next key is published.
    Rotate(KeysArgs),
    /// Emergency revoke: the key stops verifying at once.
    Revoke {
        /// Shared options.
        #[command(flatten)]
        args: KeysArgs,
        /// The key id (`kid`) to revoke.
        kid: String,
    },
    /// List the published keys (JWKS).
    List(KeysArgs),
}

/// Which chain.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// ECDSA P-256 signing keys.
    Es256,
    /// RSA signing keys.
    Rs256,
    /// The key encrypting the tenant id in tokens.
    TenantEncryption,
}

/// Options shared by the key commands.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The server's configuration (its `[vault]` section names the store).
    #[arg(long, short, env = "RAMPART_CONFIG")]
    pub config: Option<PathBuf>,
    /// Which chain (rotate only).
    #[arg(long, value_enum, default_value = "es256")]
    pub kind: KindArg,
}

async fn open(args: &KeysArgs) -> anyhow::Result<Arc<KeyRing>> {
    vault_key_ring(&ServerConfig::load(args.config.as_deref())?).await
}

/// The key ring the server of `config` keeps in Vault (an error without
/// `[vault]`).
pub(crate) async fn vault_key_ring(config: &ServerConfig) -> anyhow::Result<Arc<KeyRing>> {
    let vault_cfg = config
        .vault
        .clone()
        .ok_or_else(|| anyhow::anyhow!("keys live in Vault: configure [vault] (a dev server keeps its keys in memory; use POST /admin/keys/rotate on its admin listener)"))?;
    let mut vault_cfg = vault_cfg;
    if !vault_cfg
        .secrets
        .iter()
        .any(|s| s == crate::serve::AUTH_SECRET)
    {
        vault_cfg.secrets.push(crate::serve::AUTH_SECRET.to_owned());
    }
    let store = SecretStore::connect(vault_cfg).await?;
    let (keys, kek) = crate::serve::key_store(config, Some(&store))?;
    Ok(KeyRing::open(keys, kek, RotationPolicy::from_config(&config.auth)).await?)
}

fn print_kids(ring: &KeyRing) {
    let jwks = ring.jwks();
    for key in jwks["keys"].as_array().into_iter().flatten() {
        println!(
            "{}  {}",
            key["kid"].as_str().unwrap_or("?"),
            key["alg"].as_str().unwrap_or("?")
        );
    }
}

/// Runs the command.
pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate(args) => {
            let ring = open(&args).await?;
            let kind = match args.kind {
                KindArg::Es256 => KeyKind::Es256,
                KindArg::Rs256 => KeyKind::Rs256,
                KindArg::TenantEncryption => KeyKind::TenantEncryption,
            };
            ring.rotate_now(kind).await?;
            println!("rotated {kind:?}; published keys:");
            print_kids(&ring);
        }
        KeysCommand::Revoke { args, kid } => {
            let ring = open(&args).await?;
            ring.revoke(&kid).await?;
            println!("revoked {kid}; published keys:");
            print_kids(&ring);
        }
        KeysCommand::List(args) => print_kids(&*open(&args).await?),
    }
    Ok(())
}
