//! Issues and verifies an access token whose tenant id is encrypted inside
//! the JWT, with signing keys held in memory.
//!
//! `cargo run -p rampart-auth --example tokens` (no service needed; a
//! deployment keeps its keys in Vault through [`rampart_auth::VaultKeyStore`]).

use std::sync::Arc;

use rampart_auth::{
    AccessTokenRequest, AuthConfig, AuthError, KeyEncryptionKey, KeyRing, MemoryKeyStore,
    RotationPolicy, SigningAlg, TokenService,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), AuthError> {
    let config = AuthConfig::default();
    let ring = KeyRing::open(
        Arc::new(MemoryKeyStore::new()),
        KeyEncryptionKey::generate(),
        RotationPolicy::from_config(&config),
    )
    .await?;
    let tokens = TokenService::new(ring, &config);

    let tenant_id = uuid::Uuid::new_v4();
    let issuer = config.issuer("acme");
    let (jwt, claims) = tokens.issue_access_token(&AccessTokenRequest {
        tenant_id,
        issuer: issuer.clone(),
        audience: config.access_token_audience.clone(),
        subject: "user-1".into(),
        client_id: "example".into(),
        scope: "openid portfolios".into(),
        roles: vec!["trader".into()],
        session_id: None,
        family_id: None,
        auth_time: None,
        alg: SigningAlg::ES256,
    })?;
    println!(
        "access token ({} bytes), expires at {}",
        jwt.len(),
        claims.exp
    );
    // The tenant id travels encrypted: the claim is not the id.
    println!("tid claim: {}", claims.tid);

    let verified = tokens.verify_access_token(&jwt, &issuer, &config.access_token_audience)?;
    println!(
        "verified: subject {}, tenant {}",
        verified.claims.sub, verified.tenant_id
    );
    assert_eq!(verified.tenant_id, tenant_id);

    // Another tenant's issuer refuses it.
    let refused = tokens.verify_access_token(
        &jwt,
        &config.issuer("globex"),
        &config.access_token_audience,
    );
    println!(
        "as globex: {}",
        refused
            .map(|_| "accepted".to_owned())
            .unwrap_or_else(|e| e.to_string())
    );
    Ok(())
}
