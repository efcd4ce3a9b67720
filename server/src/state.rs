//! What every handler and job shares. Parts that are always there are not
//! `Option`s; Vault and Redis are optional (dev mode runs without them).
use std::sync::Arc;
use std::time::Instant;

use rampart_auth::{AuthServer, KeyRing};
use rampart_tenancy::TenantPool;

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use rampart_ratelimit::RateLimiter;
use rampart_vault::SecretStore;

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Tenancy (PostgreSQL).
    pub tenants: TenantPool,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Rate limiter (Redis-backed or in memory).
    pub limiter: Arc<RateLimiter>,
    /// Vault, when configured.
    pub vault: Option<Arc<SecretStore>>,
    /// Seals members' broker credentials (Vault transit, or the dev key).
    pub broker_crypto: Arc<crate::broker_crypto::BrokerSealer>,
    /// Redis client for readiness probes, when configured.
    pub redis: Option<redis::Client>,
    /// The OAuth authorization server.
    pub auth: Arc<AuthServer>,
    /// Signing and encryption keys of the auth server (rotation, revoke).
    pub keys: Arc<KeyRing>,
    /// The market-data provider chain.
    pub market: Arc<rampart_market::ProviderChain>,
    /// Configuration.
    pub config: Arc<ServerConfig>,
    /// When the server started.
    pub started: Instant,
    /// The latest dependency probe, reused for a second.
    pub readiness: Arc<crate::readiness::ProbeCache>,
}

impl AppState {
    /// The dependencies' readiness, probed at most once a second.
    pub async fn ready_report(&self) -> crate::readiness::Readiness {
        let probed = crate::readiness::Probed {
            tenants: &self.tenants,
            redis: self.redis.as_ref(),
            vault: self.vault.as_deref(),
            metrics: &self.metrics,
            started: self.started,
        };
        self.readiness.get(crate::readiness::probe(probed)).await
    }
}
