//! Building the server's state from configuration, and `rampart serve`.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rampart_auth::{
    AuthServer, KeyEncryptionKey, KeyRing, KeyStore, MemoryKeyStore, RotationPolicy,
};
use rampart_tenancy::TenantPool;

use crate::app::{self, RunningServer};
use crate::config::{Mode, ServerConfig};
use crate::metrics::Metrics;
use crate::state::AppState;
use rampart_ratelimit::RateLimiter;
use rampart_vault::SecretStore;

/// Options of `rampart serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file; `RAMPART_…` variables override it
    /// (`__` between levels, e.g. `RAMPART_DATABASE__MAX_CONNECTIONS`).
    #[arg(long, short, env = "RAMPART_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Secrets the server reads from Vault (KV v2 under the configured prefix).
pub const DATABASE_SECRET: &str = "database";
/// Market vendor keys: `<provider>_api_key`, `<provider>_api_secret`.
pub const MARKET_SECRET: &str = "market";
/// Auth secrets: `kek` (hex key-encryption key for signing keys).
pub const AUTH_SECRET: &str = "auth";

/// A dev key-encryption key, generated once and kept (0600) so tokens and
/// keys survive restarts of `rampart demo`.
fn dev_kek(dir: &Path) -> anyhow::Result<KeyEncryptionKey> {
    let path = dir.join("kek.hex");
    if let Ok(hex) = std::fs::read_to_string(&path) {
        return Ok(KeyEncryptionKey::from_hex("dev-kek", hex.trim())?);
    }
    std::fs::create_dir_all(dir)?;
    let bytes: [u8; 32] = rand::random();
    let hex = hex::encode(bytes);
    std::fs::write(&path, &hex)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(KeyEncryptionKey::from_hex("dev-kek", &hex)?)
}

/// Logs the tenants behind this binary's template: their requests fail on
/// tables the code expects until `rampart tenants migrate` runs (README,
/// "Upgrading"). The server still starts: the other tenants are served.
async fn warn_of_tenants_behind(tenants: &TenantPool) -> anyhow::Result<()> {
    let behind = tenants.tenants_behind().await?;
    if !behind.is_empty() {
        let first: Vec<&str> = behind.iter().take(5).map(String::as_str).collect();
        tracing::warn!(
            count = behind.len(),
            first = %first.join(", "),
            "tenants are behind this release's template: run `rampart tenants migrate`"
        );
    }
    Ok(())
}

/// Connects everything the configuration names and returns the shared state.
/// Refuses to start without the secrets it needs.
pub async fn build_state(mut config: ServerConfig) -> anyhow::Result<AppState> {
    let metrics = Metrics::new()?;
    let vault = match &config.vault {
        Some(v) => {
            // The secrets the server itself needs are always loaded (and so
            // required at start, and watched for rotation).
            let mut v = v.clone();
            let mut required = vec![AUTH_SECRET];
            if config.database.database_url.is_empty() {
                required.push(DATABASE_SECRET);
            }
            for name in required {
                if !v.secrets.iter().any(|s| s == name) {
                    v.secrets.push(name.to_owned());
                }
            }
            Some(Arc::new(SecretStore::connect(v).await?))
        }
        None => None,
    };
    if let Some(store) = &vault
        && config.database.database_url.is_empty()
    {
        let secret = store.secret(DATABASE_SECRET).ok_or_else(|| {
            anyhow::anyhow!("Vault secret `{DATABASE_SECRET}` is missing (field `url`)")
        })?;
        config.database.database_url = secret
            .get_str("url")
            .ok_or_else(|| anyhow::anyhow!("Vault secret `{DATABASE_SECRET}` has no field `url`"))?
            .to_owned();
    }
    let mut database = config.database.clone();
    crate::extract::with_built_in_flags(&mut database.default_feature_flags);
    let tenants = TenantPool::connect(database).await?;
    warn_of_tenants_behind(&tenants).await?;
    let mut rl = config.rate_limit.clone();
    if rl.redis_url.is_none() {
        rl.redis_url = config.redis_url.clone();
        rl.redis_tls = config.redis_tls.clone();
    }
    let limiter = Arc::new(RateLimiter::new(rl)?);
    let redis = match &config.redis_url {
        Some(url) => Some(rampart_dbtls::redis_client(url, &config.redis_tls)?),
        None => None,
    };

    // Signing keys: in Vault when it is configured, in memory in dev mode.
    // One source of truth for the public URL: the issuer is derived from it.
    let mut auth_config = config.auth.clone();
    auth_config.public_base_url = config.public_base_url.trim_end_matches('/').to_owned();
    let (store, kek) = key_store(&config, vault.as_deref())?;
    // Market data: vendor keys from Vault, Redis shared with the server,
    // the daily-bar store in the same database, metrics in our registry.
    let mut market = config.market.clone();
    if market.cache.redis_url.is_none() {
        market.cache.redis_url = config.redis_url.clone();
        market.cache.redis_tls = config.redis_tls.clone();
    }
    if let Some(secret) = vault.as_ref().and_then(|v| v.secret(MARKET_SECRET)) {
        for p in &mut market.providers {
            let name = p
                .name
                .clone()
                .unwrap_or_else(|| format!("{:?}", p.kind).to_lowercase());
            if let Some(key) = secret.get_str(&format!("{name}_api_key")) {
                p.api_key = Some(key.to_owned());
            }
            if let Some(s) = secret.get_str(&format!("{name}_api_secret")) {
                p.api_secret = Some(s.to_owned());
            }
        }
    }
    let market = Arc::new(
        rampart_market::ProviderChain::from_config(
            &market,
            Some(&metrics.registry),
            Some(tenants.raw_pool().clone()),
        )
        .await?,
    );

    let ring = KeyRing::open(
        store,
        kek.clone(),
        RotationPolicy::from_config(&auth_config),
    )
    .await?;
    ring.spawn_rotation(Duration::from_secs(config.key_check_secs.max(1)));
    let upstream_secrets = crate::idp_secrets::upstream_secrets(&config, vault.as_ref());
    let broker_crypto = Arc::new(crate::broker_crypto::BrokerSealer::for_config(
        &config,
        vault.clone(),
    )?);
    let mut auth = AuthServer::new(tenants.clone(), auth_config, ring.clone(), kek)?
        .with_upstream_secrets(upstream_secrets);
    // Users' upstream tokens are sealed like members' broker keys.
    if crate::upstream_sealer::available(&broker_crypto) {
        auth = auth.with_upstream_token_sealer(broker_crypto.clone());
    }
    let auth = Arc::new(auth);
    crate::idp_config::apply(
        &config.upstream_providers,
        &config.public_base_url,
        &auth,
        vault.as_deref(),
    )
    .await?;
    auth.spawn_cleanup(Duration::from_secs(3600));
    let readiness = Arc::new(crate::readiness::ProbeCache::new(&metrics.registry)?);
    Ok(AppState {
        broker_crypto,
        readiness,
        tenants,
        metrics,
        limiter,
        vault,
        redis,
        auth,
        keys: ring,
        market,
        config: Arc::new(config),
        started: Instant::now(),
    })
}

/// Where the auth server's signing keys live: in Vault (KV, encrypted with
/// the key-encryption key from the Vault secret `auth`) when Vault is
/// configured; in memory with a dev key-encryption key otherwise.
pub fn key_store(
    config: &ServerConfig,
    vault: Option<&SecretStore>,
) -> anyhow::Result<(Arc<dyn KeyStore>, KeyEncryptionKey)> {
    Ok(match (vault, &config.vault) {
        (Some(store), Some(_)) => {
            let kek_hex = store
                .secret(AUTH_SECRET)
                .and_then(|s| s.get_str("kek").map(str::to_owned))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "Vault secret `{AUTH_SECRET}` needs a field `kek` (64 hex chars)"
                    )
                })?;
            let kek = KeyEncryptionKey::from_hex("vault-kek", &kek_hex)?;
            // Through the server's own store: the same login (AppRole in
            // production, renewed) as every other Vault path.
            (
                Arc::new(crate::vault_keys::SecretStoreKeys::new(Arc::new(
                    store.clone(),
                ))) as Arc<dyn KeyStore>,
                kek,
            )
        }
        _ => {
            if config.mode == Mode::Production {
                anyhow::bail!("production mode needs Vault for signing keys");
            }
            (
                Arc::new(MemoryKeyStore::new()),
                dev_kek(&config.dev_secrets_dir)?,
            )
        }
    })
}

/// Starts the listeners for a built state (certificates from files, or
/// issued by Vault's PKI engine and renewed before they expire).
pub async fn start(state: AppState) -> anyhow::Result<RunningServer> {
    if let (Some(pki), Some(store)) = (&state.config.tls_vault_pki, &state.vault) {
        if state.config.mode == Mode::Production
            && let Some(problem) = pki.operator_problem()
        {
            anyhow::bail!("production mode: {problem}");
        }
        let (files, renew_in) = crate::tls::issue_from_vault(store, pki).await?;
        let mut server = app::start(state.clone(), &files).await?;
        server.add_task(crate::tls::spawn_vault_renewal(
            store.as_ref().clone(),
            pki.clone(),
            renew_in,
        ));
        spawn_jobs(&mut server, &state);
        return Ok(server);
    }
    let tls = state
        .config
        .tls
        .clone()
        .ok_or_else(|| anyhow::anyhow!("tls is required: the server speaks HTTPS only"))?;
    let mut server = app::start(state.clone(), &tls).await?;
    spawn_jobs(&mut server, &state);
    Ok(server)
}

/// Every scheduled job (stopped with the server).
fn spawn_jobs(server: &mut RunningServer, state: &AppState) {
    for task in crate::jobs::spawn_all(state) {
        server.add_task(task);
    }
}

/// `rampart serve`: loads the configuration, starts, runs until SIGINT
/// (Ctrl-C) or SIGTERM, then stops the listeners gracefully and the jobs.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServerConfig::load(args.config.as_deref())?;
    let state = build_state(config).await?;
    let server = start(state).await?;
    tracing::info!(public = %server.public_addr, admin = %server.admin_addr, "listening");
    let signal = crate::app::shutdown_signal().await?;
    tracing::info!(signal, "stopping");
    crate::app::stop_on_request(server).await;
    tracing::info!("stopped");
    Ok(())
}
