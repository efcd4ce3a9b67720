//! Access token throughput: issue, full verification (ES256 + `tid` JWE
//! decryption + claim checks), the bare ES256 signature check of the same
//! token, and the cached verification of a repeated token.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_auth::{
    AccessTokenRequest, AuthConfig, KeyEncryptionKey, KeyRing, MemoryKeyStore, RotationPolicy,
    SigningAlg, TokenService,
};

fn setup() -> (TokenService, AuthConfig, AccessTokenRequest, Arc<KeyRing>) {
    let config = AuthConfig::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ring = rt
        .block_on(KeyRing::open(
            Arc::new(MemoryKeyStore::new()),
            KeyEncryptionKey::generate(),
            RotationPolicy::from_config(&config),
        ))
        .unwrap();
    let tokens = TokenService::new(ring.clone(), &config);
    let req = AccessTokenRequest {
        tenant_id: uuid::Uuid::new_v4(),
        issuer: config.issuer("acme"),
        audience: config.access_token_audience.clone(),
        subject: uuid::Uuid::new_v4().to_string(),
        client_id: "web".into(),
        scope: "openid portfolio:read trade".into(),
        roles: vec!["trader".into()],
        session_id: Some(uuid::Uuid::new_v4()),
        auth_time: Some(1_700_000_000),
        alg: SigningAlg::ES256,
    };
    (tokens, config, req, ring)
}

fn bench(c: &mut Criterion) {
    let (tokens, config, req, ring) = setup();
    let iss = config.issuer("acme");
    let (token, _) = tokens.issue_access_token(&req).unwrap();
    let now = chrono::Utc::now().timestamp();

    c.bench_function("issue (JWE tid + ES256 sign)", |b| {
        b.iter(|| tokens.issue_access_token(&req).unwrap())
    });
    c.bench_function(
        "verify full, uncached (ES256 + JWE decrypt + claims)",
        |b| b.iter(|| tokens.verify_uncached(&token, now).unwrap()),
    );
    c.bench_function("issue + verify full", |b| {
        b.iter(|| {
            let (t, _) = tokens.issue_access_token(&req).unwrap();
            tokens.verify_uncached(&t, now).unwrap()
        })
    });
    // The bare signature check of the same token with josekit's verifier.
    let jwks = ring.jwks();
    let kid = ring.active_kid(rampart_auth::KeyKind::Es256).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let jwk = josekit::jwk::Jwk::from_bytes(jwk.to_string().as_bytes()).unwrap();
    let verifier = josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap();
    let (signed, sig) = token.rsplit_once('.').unwrap();
    use base64::Engine;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    c.bench_function("bare ES256 verify", |b| {
        b.iter(|| josekit::jws::JwsVerifier::verify(&verifier, signed.as_bytes(), &sig).unwrap())
    });
    // The parts the full check adds to the signature check.
    let (_, claims) = tokens.issue_access_token(&req).unwrap();
    c.bench_function("tid JWE decrypt alone", |b| {
        b.iter(|| tokens.decrypt_tenant(&claims.tid).unwrap())
    });
    let payload64 = token.split('.').nth(1).unwrap().to_owned();
    c.bench_function("payload base64 + claims JSON alone", |b| {
        b.iter(|| {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&payload64)
                .unwrap();
            serde_json::from_slice::<rampart_auth::AccessTokenClaims>(&bytes).unwrap()
        })
    });
    tokens.verify_access_token(&token, &iss, "rampart").unwrap();
    c.bench_function("verify cached (repeated token)", |b| {
        b.iter(|| tokens.verify_access_token(&token, &iss, "rampart").unwrap())
    });
    let hasher = rampart_auth::password::PasswordHasher::new(&config).unwrap();
    let mut g = c.benchmark_group("argon2id");
    g.sample_size(10);
    g.bench_function("hash (m=19 MiB, t=2, p=1)", |b| {
        b.iter(|| hasher.hash_blocking("correct-horse-battery-42").unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
