//! Shared helpers.

use rampart_testkit::{acme, globex};
use std::sync::Arc;

use rampart_auth::{
    AuthConfig, KeyEncryptionKey, KeyRing, MemoryKeyStore, RotationPolicy, TokenService,
};

pub fn config() -> AuthConfig {
    AuthConfig {
        // Fast Argon2id for tests that are not about hashing cost.
        argon2_m_kib: 1024,
        argon2_t: 1,
        backoff_base_ms: 5,
        backoff_cap_ms: 40,
        ..AuthConfig::default()
    }
}

pub async fn memory_tokens() -> (Arc<KeyRing>, TokenService, AuthConfig) {
    let config = config();
    let ring = KeyRing::open(
        Arc::new(MemoryKeyStore::new()),
        KeyEncryptionKey::generate(),
        RotationPolicy::from_config(&config),
    )
    .await
    .unwrap();
    let tokens = TokenService::new(ring.clone(), &config);
    (ring, tokens, config)
}

pub struct TestServer {
    pub auth: Arc<rampart_auth::AuthServer>,
    pub db_url: String,
}

/// A fresh database with two tenants (`acme`, `globex`) and an AuthServer.
pub async fn server_with(config: AuthConfig) -> TestServer {
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::fresh_database().await.unwrap();
    let tenancy = rampart_tenancy::TenancyConfig::new(db.url.clone(), 8);
    let pool = rampart_tenancy::TenantPool::connect(tenancy).await.unwrap();
    pool.provision(&acme(), "Acme").await.unwrap();
    pool.provision(&globex(), "Globex").await.unwrap();
    let auth = rampart_auth::AuthServer::with_memory_keys(pool, config)
        .await
        .unwrap();
    TestServer {
        auth: Arc::new(auth),
        db_url: db.url,
    }
}

pub async fn server() -> TestServer {
    server_with(config()).await
}

pub fn ctx(ip: &str) -> rampart_auth::ClientContext {
    rampart_auth::ClientContext {
        ip: ip.into(),
        user_agent: Some("test-agent".into()),
        device: Some("laptop".into()),
    }
}

pub const PASSWORD: &str = "correct-horse-battery-42";
