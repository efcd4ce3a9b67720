//! Token issue and verify (`rampart-auth`), in memory, plus the refresh
//! grant and bearer authentication at the library level against a real
//! PostgreSQL started by the test kit.
//!
//! - `tokens/mint`: a full access token (JWE `tid` + ES256 signature);
//! - `tokens/verify_cold`: full verification without the cache (header
//!   policy + ES256 + `tid` decryption + claims);
//! - `tokens/verify_cached`: a repeated token (SHA-256 → moka hit);
//! - `tokens/bare_es256_verify`: josekit's signature check alone, same token;
//! - `tokens/tid_encrypt`, `tokens/tid_decrypt`: the `tid` JWE (`dir` + A256GCM);
//! - `tokens/claims_decode`: payload base64 + claims JSON;
//! - `tokens/mint_and_verify_cold`;
//! - `argon2id/hash`: one password hash with the default cost;
//! - `oauth/refresh_grant`: `AuthServer::token` with `grant_type=refresh_token`
//!   (client lookup, one rotation statement, a new access token);
//! - `oauth/authenticate_bearer`: cached verification + tenant check.
//!
//! Run: `cargo bench -p rampart-benches --bench auth`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_testkit::acme;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use rampart_auth::accounts::LoginOutcome;
use rampart_auth::oauth::{
    AuthorizeRequest, ClientAuthMethod, ClientCredentials, ClientRegistration, TokenRequest,
};
use rampart_auth::{
    AccessTokenRequest, AuthConfig, AuthServer, ClientContext, KeyEncryptionKey, KeyRing,
    MemoryKeyStore, Role, RotationPolicy, SigningAlg, TokenService,
};
use sha2::{Digest, Sha256};

fn token_request(config: &AuthConfig) -> AccessTokenRequest {
    AccessTokenRequest {
        tenant_id: uuid::Uuid::new_v4(),
        issuer: config.issuer("acme"),
        audience: config.access_token_audience.clone(),
        subject: uuid::Uuid::new_v4().to_string(),
        client_id: "web".into(),
        scope: "openid portfolio:read trade".into(),
        roles: vec!["trader".into()],
        session_id: Some(uuid::Uuid::new_v4()),
        family_id: None,
        auth_time: Some(1_700_000_000),
        alg: SigningAlg::ES256,
    }
}

fn tokens(c: &mut Criterion) {
    let config = AuthConfig::default();
    let rt = rampart_benches::runtime().unwrap();
    let ring = rt
        .block_on(KeyRing::open(
            Arc::new(MemoryKeyStore::new()),
            KeyEncryptionKey::generate(),
            RotationPolicy::from_config(&config),
        ))
        .unwrap();
    let tokens = TokenService::new(ring.clone(), &config);
    let req = token_request(&config);
    let iss = config.issuer("acme");
    let aud = config.access_token_audience.clone();
    let (token, claims) = tokens.issue_access_token(&req).unwrap();
    let now = chrono::Utc::now().timestamp();

    let mut g = c.benchmark_group("tokens");
    g.bench_function("mint", |b| {
        b.iter(|| tokens.issue_access_token(&req).unwrap())
    });
    g.bench_function("verify_cold", |b| {
        b.iter(|| tokens.verify_uncached(&token, now).unwrap())
    });
    tokens.verify_access_token(&token, &iss, &aud).unwrap();
    g.bench_function("verify_cached", |b| {
        b.iter(|| tokens.verify_access_token(&token, &iss, &aud).unwrap())
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
    let sig = B64.decode(sig).unwrap();
    g.bench_function("bare_es256_verify", |b| {
        b.iter(|| josekit::jws::JwsVerifier::verify(&verifier, signed.as_bytes(), &sig).unwrap())
    });

    // The parts the full check adds to the signature check.
    g.bench_function("tid_encrypt", |b| {
        b.iter(|| tokens.encrypt_tenant(req.tenant_id).unwrap())
    });
    assert_eq!(tokens.decrypt_tenant(&claims.tid).unwrap(), req.tenant_id);
    g.bench_function("tid_decrypt", |b| {
        b.iter(|| tokens.decrypt_tenant(&claims.tid).unwrap())
    });
    let payload64 = token.split('.').nth(1).unwrap().to_owned();
    g.bench_function("claims_decode", |b| {
        b.iter(|| {
            let bytes = B64.decode(&payload64).unwrap();
            serde_json::from_slice::<rampart_auth::AccessTokenClaims>(&bytes).unwrap()
        })
    });
    g.bench_function("mint_and_verify_cold", |b| {
        b.iter(|| {
            let (t, _) = tokens.issue_access_token(&req).unwrap();
            // The clock, not `now`: a token minted later than `now` + skew
            // would be refused as issued in the future.
            tokens
                .verify_uncached(&t, chrono::Utc::now().timestamp())
                .unwrap()
        })
    });
    g.finish();

    let hasher = rampart_auth::password::PasswordHasher::new(&config).unwrap();
    let mut g = c.benchmark_group("argon2id");
    rampart_benches::tune(&mut g, 10, Duration::from_secs(5));
    g.bench_function("hash_m19mib_t2_p1", |b| {
        b.iter(|| hasher.hash_blocking("correct-horse-battery-42").unwrap())
    });
    g.finish();
}

const REDIRECT: &str = "https://app.example.com/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9eSB5kbhGOrnxrTpwvrEUpBRP2LqGmmw";
const PASSWORD: &str = "correct-horse-battery-42";

fn ctx() -> ClientContext {
    ClientContext {
        ip: "10.9.0.1".into(),
        user_agent: Some("bench".into()),
        device: Some("bench".into()),
    }
}

fn public_web() -> ClientCredentials {
    ClientCredentials {
        client_id: "web".into(),
        secret: None,
        method: ClientAuthMethod::None,
    }
}

/// A tenant with a public client, a user with a session, and the first
/// token response of a code flow (access + refresh token).
async fn oauth_setup(
    url: &str,
) -> (
    AuthServer,
    rampart_auth::oauth::TokenResponse,
    rampart_tenancy::TenantPool,
) {
    let pool = rampart_tenancy::TenantPool::connect(rampart_tenancy::TenancyConfig {
        database_url: url.to_owned(),
        max_connections: 8,
        ..Default::default()
    })
    .await
    .unwrap();
    pool.provision(&acme(), "Acme").await.unwrap();
    let config = AuthConfig::default();
    let a = AuthServer::with_memory_keys(pool.clone(), config)
        .await
        .unwrap();
    a.register_client(
        &acme(),
        &ClientRegistration {
            client_id: "web".into(),
            name: "Web".into(),
            redirect_uris: vec![REDIRECT.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            allowed_scopes: vec!["openid".into(), "portfolio:read".into()],
            auth_method: ClientAuthMethod::None,
            signing_alg: SigningAlg::ES256,
        },
    )
    .await
    .unwrap();
    a.register(&acme(), "ada@example.com", "Ada", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let LoginOutcome::LoggedIn(session) = a
        .login(&acme(), "ada@example.com", PASSWORD, &ctx())
        .await
        .unwrap()
    else {
        panic!("login did not complete")
    };
    let authorize = AuthorizeRequest {
        response_type: Some("code".into()),
        client_id: Some("web".into()),
        redirect_uri: Some(REDIRECT.into()),
        scope: Some("openid portfolio:read".into()),
        state: Some("st".into()),
        code_challenge: Some(B64.encode(Sha256::digest(VERIFIER.as_bytes()))),
        code_challenge_method: Some("S256".into()),
        nonce: Some("n".into()),
        ..Default::default()
    };
    let validated = a.validate_authorize(&acme(), &authorize).await.unwrap();
    let (info, _) = a
        .authenticate_session(&acme(), &session.token)
        .await
        .unwrap();
    let location = a
        .issue_authorization_code(&acme(), &validated, &info)
        .await
        .unwrap();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let first = a
        .token(
            &acme(),
            &public_web(),
            &TokenRequest {
                grant_type: Some("authorization_code".into()),
                code: Some(code),
                redirect_uri: Some(REDIRECT.into()),
                code_verifier: Some(VERIFIER.into()),
                ..Default::default()
            },
            &ctx(),
        )
        .await
        .unwrap();
    (a, first, pool)
}

fn oauth(c: &mut Criterion) {
    rampart_testkit::install_crypto_provider();
    let rt = rampart_benches::runtime().unwrap();
    let pg = rampart_testkit::postgres().unwrap();
    let db = rt.block_on(pg.fresh_database()).unwrap();
    let (auth, first, _pool) = rt.block_on(oauth_setup(&db.url));
    let access = first.access_token.clone();
    // Each refresh presents the token the previous one returned (rotation).
    let refresh = std::sync::Mutex::new(first.refresh_token.clone().unwrap());
    let mut g = c.benchmark_group("oauth");
    g.bench_function("refresh_grant", |b| {
        b.to_async(&rt).iter(|| async {
            let presented = refresh.lock().unwrap().clone();
            let t = auth
                .token(
                    &acme(),
                    &public_web(),
                    &TokenRequest {
                        grant_type: Some("refresh_token".into()),
                        refresh_token: Some(presented),
                        ..Default::default()
                    },
                    &ctx(),
                )
                .await
                .unwrap();
            *refresh.lock().unwrap() = t.refresh_token.unwrap();
        })
    });
    g.bench_function("authenticate_bearer", |b| {
        b.to_async(&rt)
            .iter(|| async { auth.authenticate_bearer(&acme(), &access).await.unwrap() })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = rampart_benches::criterion();
    targets = tokens, oauth
}
criterion_main!(benches);
