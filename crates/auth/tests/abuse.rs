//! Abuse paths of issue 13: parallel guessing, lockout abuse, login timing,
//! backup-code double spend, code replay, introspection, refresh grace and
//! revocation rows.
use rampart_testkit::{acme, globex, valid_slug};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rampart_auth::accounts::LoginOutcome;
use rampart_auth::oauth::{ClientAuthMethod, ClientCredentials, ClientRegistration, TokenRequest};
use rampart_auth::{AuthConfig, AuthError, AuthServer, Role, SigningAlg};

use crate::common::{PASSWORD, config, ctx, server, server_with};
use crate::oauth::{
    REDIRECT, authorize_req, code_for, exchange_code, public, refresh_grant, setup,
    signed_in_tokens,
};

/// What a login answered, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    LoggedIn,
    Mfa,
    Invalid,
    Limited,
}

fn answer(r: &Result<LoginOutcome, AuthError>) -> Answer {
    match r {
        Ok(LoginOutcome::LoggedIn(_)) => Answer::LoggedIn,
        Ok(LoginOutcome::MfaRequired { .. }) => Answer::Mfa,
        Err(AuthError::InvalidCredentials) => Answer::Invalid,
        Err(AuthError::RateLimited { retry_after }) => {
            assert!(*retry_after >= Duration::from_secs(1), "{retry_after:?}");
            Answer::Limited
        }
        Err(e) => panic!("unexpected login error: {e:?}"),
    }
}

async fn login(a: &AuthServer, email: &str, password: &str, ip: &str) -> Answer {
    answer(&a.login(&acme(), email, password, &ctx(ip)).await)
}

async fn sql(db_url: &str, statements: &str) {
    let mut conn = AsyncPgConnection::establish(db_url).await.unwrap();
    conn.batch_execute(statements).await.unwrap();
}

async fn count(db_url: &str, query: &str) -> i64 {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(db_url).await.unwrap();
    diesel::sql_query(query)
        .get_result::<N>(&mut conn)
        .await
        .unwrap()
        .n
}

/// Fires `n` wrong-password logins for `email` at once, the i-th from `ip(i)`.
async fn parallel_wrong_logins(
    a: &std::sync::Arc<AuthServer>,
    email: &str,
    n: usize,
    ip: impl Fn(usize) -> String,
) -> Vec<Answer> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let a = a.clone();
            let email = email.to_owned();
            let ip = ip(i);
            tokio::spawn(async move {
                answer(
                    &a.login(&acme(), &email, "wrong-password-xx", &ctx(&ip))
                        .await,
                )
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

// ------------------------------------------------------------------ item 2

#[tokio::test(flavor = "multi_thread")]
async fn parallel_wrong_logins_hash_at_most_the_allowed_number() {
    let s = server().await;
    let a = &s.auth;
    let cfg = a.config().clone();
    a.register(&acme(), "pat@example.com", "Pat", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    // One source: at most `rate_limit_attempts` are even hashed.
    let before = a.hasher().verifications();
    let answers = parallel_wrong_logins(a, "pat@example.com", 40, |_| "10.20.0.1".into()).await;
    let hashed = a.hasher().verifications() - before;
    let invalid = answers.iter().filter(|x| **x == Answer::Invalid).count();
    let limited = answers.iter().filter(|x| **x == Answer::Limited).count();
    assert!(
        hashed <= u64::from(cfg.rate_limit_attempts),
        "{hashed} hashes for 40 parallel attempts"
    );
    assert_eq!(invalid as u64, hashed, "{answers:?}");
    assert_eq!(invalid + limited, 40, "{answers:?}");
    let rows = count(
        &s.db_url,
        "SELECT count(*) AS n FROM tenant_acme.login_attempts WHERE account = 'pat@example.com'",
    )
    .await;
    assert!(
        rows <= i64::from(cfg.rate_limit_attempts),
        "{rows} attempt rows"
    );
    // Forty sources at once: the account's lockout bounds the hashing too.
    a.register(&acme(), "sam@example.com", "Sam", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    let before = a.hasher().verifications();
    let answers = parallel_wrong_logins(a, "sam@example.com", 40, |i| format!("10.21.{i}.1")).await;
    let hashed = a.hasher().verifications() - before;
    assert!(
        hashed <= u64::from(cfg.lockout_threshold),
        "{hashed} hashes for 40 parallel attempts from 40 sources"
    );
    assert_eq!(
        answers.iter().filter(|x| **x == Answer::Invalid).count() as u64,
        hashed
    );
    assert!(
        answers
            .iter()
            .all(|x| matches!(x, Answer::Invalid | Answer::Limited))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn password_spraying_is_limited_per_source() {
    let s = server_with(AuthConfig {
        source_attempts: 8,
        ..config()
    })
    .await;
    let a = &s.auth;
    // One source, a different account each time: the ninth is refused.
    for i in 0..8 {
        let email = format!("user{i}@example.com");
        assert_eq!(
            login(a, &email, "wrong-password-xx", "10.22.0.1").await,
            Answer::Invalid
        );
    }
    assert_eq!(
        login(a, "user9@example.com", "wrong-password-xx", "10.22.0.1").await,
        Answer::Limited
    );
    // Another source is not affected.
    assert_eq!(
        login(a, "user9@example.com", "wrong-password-xx", "10.22.0.2").await,
        Answer::Invalid
    );
}

// ------------------------------------------------------------------ item 3

#[tokio::test(flavor = "multi_thread")]
async fn lockout_window_slides_and_the_owner_gets_in_from_a_known_source() {
    let s = server().await;
    let a = &s.auth;
    let cfg = a.config().clone();
    a.register(&acme(), "oli@example.com", "Oli", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    // The owner logged in from home before.
    assert_eq!(
        login(a, "oli@example.com", PASSWORD, "10.23.9.9").await,
        Answer::LoggedIn
    );
    // An attacker fails `lockout_threshold` times from changing sources.
    for i in 0..cfg.lockout_threshold {
        let ip = format!("10.23.0.{}", i / 2);
        assert_eq!(
            login(a, "oli@example.com", "wrong-password-xx", &ip).await,
            Answer::Invalid
        );
    }
    // Locked for unknown sources, even with the right password ...
    assert_eq!(
        login(a, "oli@example.com", PASSWORD, "10.23.1.1").await,
        Answer::Limited
    );
    // ... but the owner at a known source gets in.
    assert_eq!(
        login(a, "oli@example.com", PASSWORD, "10.23.9.9").await,
        Answer::LoggedIn
    );
    // The window passes (simulated): old failures no longer count, and one
    // more wrong guess does not lock again.
    sql(
        &s.db_url,
        &format!(
            "UPDATE tenant_acme.login_attempts SET attempted_at = attempted_at - interval '{} seconds'; \
             UPDATE tenant_acme.users SET locked_until = now() - interval '1 second'",
            cfg.lockout_secs + 60
        ),
    )
    .await;
    assert_eq!(
        login(a, "oli@example.com", "wrong-password-xx", "10.23.2.1").await,
        Answer::Invalid
    );
    assert_eq!(
        login(a, "oli@example.com", PASSWORD, "10.23.2.2").await,
        Answer::LoggedIn
    );
}

// ----------------------------------------------------------------- item 13

#[tokio::test(flavor = "multi_thread")]
async fn unknown_emails_get_the_same_answers_and_hashing_as_known_ones() {
    let s = server().await;
    let a = &s.auth;
    let cfg = a.config().clone();
    a.register(&acme(), "kim@example.com", "Kim", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    let mut runs = Vec::new();
    for (email, net) in [("kim@example.com", 30), ("nobody@example.com", 31)] {
        let before = a.hasher().verifications();
        let mut answers = Vec::new();
        for i in 0..cfg.lockout_threshold + 2 {
            let ip = format!("10.{net}.0.{}", i / 2);
            answers.push(login(a, email, "wrong-password-xx", &ip).await);
        }
        runs.push((answers, a.hasher().verifications() - before));
    }
    assert_eq!(runs[0], runs[1], "known vs unknown e-mail");
    // Both are locked after the threshold (the same accounting).
    let (answers, hashed) = &runs[0];
    assert_eq!(*hashed, u64::from(cfg.lockout_threshold));
    assert!(
        answers[cfg.lockout_threshold as usize..]
            .iter()
            .all(|x| *x == Answer::Limited)
    );
}

// ----------------------------------------------------------------- item 12

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_code_is_spent_once_under_concurrency() {
    use rampart_auth::mfa::current_totp_code;
    let s = server().await;
    let a = s.auth.clone();
    let user = a
        .register(&acme(), "bea@example.com", "Bea", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let setup = a.begin_totp_setup(&acme(), user.id).await.unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    let code = current_totp_code(&setup.secret_base32, now).unwrap();
    let backups = a
        .confirm_totp(&acme(), user.id, &code, &ctx("x"))
        .await
        .unwrap();
    let mut challenges = Vec::new();
    for i in 0..8 {
        let LoginOutcome::MfaRequired { challenge } = a
            .login(
                &acme(),
                "bea@example.com",
                PASSWORD,
                &ctx(&format!("10.24.0.{i}")),
            )
            .await
            .unwrap()
        else {
            panic!("MFA expected")
        };
        challenges.push((challenge, format!("10.24.0.{i}")));
    }
    let tasks: Vec<_> = challenges
        .into_iter()
        .map(|(challenge, ip)| {
            let a = a.clone();
            let code = backups[0].clone();
            tokio::spawn(async move { a.verify_mfa(&acme(), &challenge, &code, &ctx(&ip)).await })
        })
        .collect();
    let mut sessions = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            sessions += 1;
        }
    }
    assert_eq!(sessions, 1, "one backup code, one session");
}

// ------------------------------------------------------------------ item 8

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_code_revokes_tokens_minted_by_refreshes_of_its_family() {
    let s = server().await;
    let a = &s.auth;
    let (_, session) = setup(a, "acme").await;
    let code = code_for(a, "acme", &session, &authorize_req(REDIRECT)).await;
    let t1 = exchange_code(a, &code).await.unwrap();
    let t2 = a
        .token(
            &acme(),
            &public("web"),
            &refresh_grant(t1.refresh_token.as_deref().unwrap()),
            &ctx("x"),
        )
        .await
        .unwrap();
    a.authenticate_bearer(&acme(), &t2.access_token)
        .await
        .unwrap();
    assert!(matches!(
        exchange_code(a, &code).await,
        Err(AuthError::InvalidGrant(_))
    ));
    for access in [&t1.access_token, &t2.access_token] {
        assert!(matches!(
            a.authenticate_bearer(&acme(), access).await,
            Err(AuthError::InvalidToken(_))
        ));
    }
    assert!(matches!(
        a.token(
            &acme(),
            &public("web"),
            &refresh_grant(t2.refresh_token.as_deref().unwrap()),
            &ctx("x"),
        )
        .await,
        Err(AuthError::InvalidGrant(_))
    ));
}

// ------------------------------------------------------------------ item 9

async fn confidential(a: &AuthServer, tenant: &str) -> ClientCredentials {
    let secret = a
        .register_client(
            &valid_slug(tenant),
            &ClientRegistration {
                client_id: "rs".into(),
                name: "Resource server".into(),
                redirect_uris: vec![],
                grant_types: vec!["client_credentials".into()],
                allowed_scopes: vec!["market:read".into()],
                auth_method: ClientAuthMethod::ClientSecretBasic,
                signing_alg: SigningAlg::ES256,
            },
        )
        .await
        .unwrap()
        .unwrap();
    ClientCredentials {
        client_id: "rs".into(),
        secret: Some(secret),
        method: ClientAuthMethod::ClientSecretBasic,
    }
}

fn client_credentials_grant() -> TokenRequest {
    TokenRequest {
        grant_type: Some("client_credentials".into()),
        scope: Some("market:read".into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_is_for_confidential_clients_of_the_tokens_tenant() {
    let s = server().await;
    let a = &s.auth;
    let (_, _, t) = signed_in_tokens(a).await;
    // A public client (client_id only) may not introspect, not even its own tokens.
    for token in [&t.access_token, t.refresh_token.as_ref().unwrap()] {
        assert!(matches!(
            a.introspect(&acme(), &public("web"), token).await,
            Err(AuthError::InvalidClient)
        ));
    }
    // A confidential client of the tenant may.
    let rs = confidential(a, "acme").await;
    assert_eq!(
        a.introspect(&acme(), &rs, &t.access_token).await.unwrap()["active"],
        true
    );
    // Another tenant's confidential client sees the token as inactive.
    let other = confidential(a, "globex").await;
    assert_eq!(
        a.introspect(&globex(), &other, &t.access_token)
            .await
            .unwrap()["active"],
        false
    );
    let globex_token = a
        .token(&globex(), &other, &client_credentials_grant(), &ctx("x"))
        .await
        .unwrap();
    assert_eq!(
        a.introspect(&acme(), &rs, &globex_token.access_token)
            .await
            .unwrap()["active"],
        false
    );
}

// ----------------------------------------------------------------- item 10

async fn refresh(a: &AuthServer, rt: &str) -> Result<String, AuthError> {
    a.token(&acme(), &public("web"), &refresh_grant(rt), &ctx("x"))
        .await
        .map(|t| t.refresh_token.unwrap())
}

/// `rt` is refused as a reuse (invalid_grant).
async fn assert_reused(a: &AuthServer, rt: &str) {
    let r = refresh(a, rt).await;
    assert!(matches!(r, Err(AuthError::InvalidGrant(_))), "{r:?}");
}

async fn fresh_family(a: &AuthServer, session: &str) -> String {
    let code = code_for(a, "acme", session, &authorize_req(REDIRECT)).await;
    exchange_code(a, &code)
        .await
        .unwrap()
        .refresh_token
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_grace_is_off_by_default() {
    let s = server().await;
    let a = &s.auth;
    assert_eq!(a.config().refresh_grace_secs, 0);
    let (_, session) = setup(a, "acme").await;
    let rt1 = fresh_family(a, &session).await;
    let rt2 = refresh(a, &rt1).await.unwrap();
    // An immediate retry of the rotated token is reuse: the family dies.
    assert_reused(a, &rt1).await;
    assert_reused(a, &rt2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_grace_when_on_is_once_and_only_while_the_successor_is_unused() {
    let s = server_with(AuthConfig {
        refresh_grace_secs: 10,
        ..config()
    })
    .await;
    let a = &s.auth;
    let (_, session) = setup(a, "acme").await;
    // Once: the retry gets the successor, a second retry is reuse.
    let rt1 = fresh_family(a, &session).await;
    let rt2 = refresh(a, &rt1).await.unwrap();
    assert_eq!(refresh(a, &rt1).await.unwrap(), rt2);
    assert_reused(a, &rt1).await;
    assert_reused(a, &rt2).await;
    // Only while unused: once the successor rotated, the old token is reuse.
    let rt1 = fresh_family(a, &session).await;
    let rt2 = refresh(a, &rt1).await.unwrap();
    let rt3 = refresh(a, &rt2).await.unwrap();
    assert_reused(a, &rt1).await;
    assert_reused(a, &rt3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tenants_refresh_lifetime_and_grace_settings_apply() {
    let s = server().await;
    let a = &s.auth;
    let (_, session) = setup(a, "acme").await;
    a.pool()
        .update_tenant_settings(
            &acme(),
            &serde_json::json!({"refreshLifetimeSecs": 600, "refreshGraceSeconds": 10}),
        )
        .await
        .unwrap();
    // The grace window of the tenant, although the platform's is 0.
    assert_eq!(a.config().refresh_grace_secs, 0);
    let rt1 = fresh_family(a, &session).await;
    let rt2 = refresh(a, &rt1).await.unwrap();
    assert_eq!(refresh(a, &rt1).await.unwrap(), rt2);
    assert_reused(a, &rt1).await;
    // Every refresh token of the tenant idles out after its 600 s.
    let longest = count(
        &s.db_url,
        "SELECT max(extract(epoch FROM expires_at - created_at))::bigint AS n \
         FROM tenant_acme.refresh_tokens",
    )
    .await;
    assert!((590..=600).contains(&longest), "{longest}");
}

// ----------------------------------------------------------------- item 18

/// Access tokens have no rows: a revocation is a row of
/// `platform.token_revocations`, kept until the token it names can no longer
/// verify (its lifetime plus the clock skew), and a replica that has seen it
/// keeps refusing the token even when the row is deleted behind its back.
#[tokio::test(flavor = "multi_thread")]
async fn revocations_outlive_expiry_by_the_skew_and_a_deleted_row_is_no_resurrection() {
    let s = server_with(AuthConfig {
        access_token_ttl_secs: 1,
        revocation_check_secs: 0,
        ..config()
    })
    .await;
    let a = &s.auth;
    let rs = confidential(a, "acme").await;
    let revoked = a
        .token(&acme(), &rs, &client_credentials_grant(), &ctx("x"))
        .await
        .unwrap()
        .access_token;
    let live = a
        .token(&acme(), &rs, &client_credentials_grant(), &ctx("x"))
        .await
        .unwrap()
        .access_token;
    a.authenticate_bearer(&acme(), &revoked).await.unwrap();
    a.revoke(&acme(), &rs, &revoked, &ctx("x")).await.unwrap();
    // Past `exp`, still within the clock skew: the tokens still verify.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    a.cleanup_expired(&acme()).await.unwrap();
    let kept = "SELECT count(*) AS n FROM platform.token_revocations r \
                JOIN platform.tenants t ON t.id = r.tenant_id \
                WHERE t.slug = 'acme' AND r.kind = 'jti' \
                  AND r.expires_at >= r.revoked_at + interval '61 seconds'";
    assert_eq!(
        count(&s.db_url, kept).await,
        1,
        "the revocation is kept for the token's lifetime plus the skew"
    );
    assert!(matches!(
        a.authenticate_bearer(&acme(), &revoked).await,
        Err(AuthError::InvalidToken(_))
    ));
    a.authenticate_bearer(&acme(), &live).await.unwrap();
    // The row deleted behind this replica's back: the feed is read again,
    // and the token stays refused.
    sql(&s.db_url, "DELETE FROM platform.token_revocations").await;
    a.access_tokens_revoked_elsewhere();
    assert!(matches!(
        a.authenticate_bearer(&acme(), &revoked).await,
        Err(AuthError::InvalidToken(_))
    ));
    a.authenticate_bearer(&acme(), &live).await.unwrap();
}

/// A token verified once (the reference server's rate limiter does it
/// before the handler) is authenticated again only for its own tenant, and
/// a revocation still refuses it.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_verified_earlier_is_still_checked_for_tenant_and_revocation() {
    let s = server_with(AuthConfig {
        revocation_check_secs: 0,
        ..config()
    })
    .await;
    let a = &s.auth;
    let rs = confidential(a, "acme").await;
    let token = a
        .token(&acme(), &rs, &client_credentials_grant(), &ctx("x"))
        .await
        .unwrap()
        .access_token;
    let audience = &a.config().access_token_audience;
    let verified = a
        .tokens()
        .verify_access_token_shared(&token, &a.issuer(&acme()), audience)
        .unwrap();
    let p = a
        .authenticate_verified_bearer(&acme(), &verified)
        .await
        .unwrap();
    assert_eq!(p, a.authenticate_bearer(&acme(), &token).await.unwrap());
    for other in ["beta", "acme2"] {
        assert!(
            matches!(
                a.authenticate_verified_bearer(&valid_slug(other), &verified)
                    .await,
                Err(AuthError::InvalidToken(_))
            ),
            "accepted for {other}"
        );
    }
    a.revoke(&acme(), &rs, &token, &ctx("x")).await.unwrap();
    assert!(matches!(
        a.authenticate_verified_bearer(&acme(), &verified).await,
        Err(AuthError::InvalidToken(_))
    ));
}

/// Tenant roles cannot write the platform schema; they record revocations
/// through `platform_tenant_api.revoke_access_tokens`, which takes the
/// tenant from the role in effect: a tenant can revoke only its own tokens,
/// and a connection in no tenant's role cannot record any.
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_role_records_revocations_only_for_its_own_tenant() {
    use diesel::sql_types::Uuid as SqlUuid;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: uuid::Uuid,
    }
    let s = server().await;
    let tenant = |slug: &str| {
        let sql = format!("SELECT id FROM platform.tenants WHERE slug = '{slug}'");
        let url = s.db_url.clone();
        async move {
            let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
            diesel::sql_query(sql)
                .get_result::<Id>(&mut conn)
                .await
                .unwrap()
                .id
        }
    };
    let (acme, globex) = (tenant("acme").await, tenant("globex").await);
    let revoke = "SELECT platform_tenant_api.revoke_access_tokens('user', ARRAY['someone'], \
                  now(), now() + interval '1 hour') AS id";
    let mut conn = AsyncPgConnection::establish(&s.db_url).await.unwrap();
    for (slug, id) in [("acme", acme), ("globex", globex)] {
        conn.batch_execute(&format!(
            "BEGIN; DO $$ BEGIN EXECUTE format('SET LOCAL ROLE %I', \
             (SELECT role_name FROM platform.tenants WHERE slug = '{slug}')); END $$;"
        ))
        .await
        .unwrap();
        let recorded = diesel::sql_query(revoke)
            .get_result::<Id>(&mut conn)
            .await
            .unwrap();
        assert_eq!(recorded.id, id, "{slug} records for itself");
        let direct = conn
            .batch_execute(
                "INSERT INTO platform.token_revocations (tenant_id, kind, subject, revoked_at, expires_at) \
                 VALUES (gen_random_uuid(), 'user', 'x', now(), now())",
            )
            .await;
        assert!(direct.is_err(), "{slug} wrote the platform table directly");
        conn.batch_execute("ROLLBACK").await.unwrap();
    }
    let err = diesel::sql_query(revoke)
        .get_result::<Id>(&mut conn)
        .await
        .err()
        .expect("refused outside a tenant role");
    assert!(err.to_string().contains("no tenant"), "{err}");
}

/// Upgrading to access tokens without rows: a token revoked before the
/// migration that drops `access_tokens` stays refused after it (the
/// migration moves unexpired revocations to the feed); others stay valid.
#[tokio::test(flavor = "multi_thread")]
async fn access_tokens_revoked_before_the_upgrade_stay_revoked() {
    use rampart_tenancy::{MigrationSet, TenancyConfig, TenantPool};
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::fresh_database().await.unwrap();
    let previous = MigrationSet::embedded_tenant().up_to("20261203220000");
    let old = TenantPool::connect_with_template(TenancyConfig::new(db.url.clone(), 8), previous)
        .await
        .unwrap();
    old.provision(&acme(), "Acme").await.unwrap();
    let a = AuthServer::with_memory_keys(
        old,
        AuthConfig {
            revocation_check_secs: 0,
            ..config()
        },
    )
    .await
    .unwrap();
    let rs = confidential(&a, "acme").await;
    let mut issued = Vec::new();
    for _ in 0..2 {
        let token = a
            .token(&acme(), &rs, &client_credentials_grant(), &ctx("x"))
            .await
            .unwrap()
            .access_token;
        issued.push(token);
    }
    let info = a.introspect(&acme(), &rs, &issued[0]).await.unwrap();
    let (jti, exp) = (info["jti"].as_str().unwrap(), info["exp"].as_i64().unwrap());
    // What the previous release stored for a revoked token.
    sql(
        &db.url,
        &format!(
            "INSERT INTO tenant_acme.access_tokens (jti, client_id, expires_at, revoked_at) \
             VALUES ('{jti}', '{}', to_timestamp({exp}), now())",
            rs.client_id
        ),
    )
    .await;
    let current = TenantPool::connect_with_template(
        TenancyConfig::new(db.url.clone(), 8),
        MigrationSet::embedded_tenant(),
    )
    .await
    .unwrap();
    let report = current.migrate_all().await.unwrap();
    assert!(report.failed.is_empty() && report.behind == 1, "{report:?}");
    assert!(matches!(
        a.authenticate_bearer(&acme(), &issued[0]).await,
        Err(AuthError::InvalidToken(_))
    ));
    a.authenticate_bearer(&acme(), &issued[1]).await.unwrap();
}
