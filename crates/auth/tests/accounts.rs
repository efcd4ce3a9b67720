//! Accounts, brute-force defence, MFA, sessions, roles, API keys, audit, cleanup.
use rampart_testkit::{acme, globex};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rampart_auth::accounts::LoginOutcome;
use rampart_auth::{AuthError, AuthServer, Permission, Principal, Role, authorize};

use crate::common::{PASSWORD, ctx, server};

fn logged_in(o: LoginOutcome) -> rampart_auth::accounts::NewSession {
    match o {
        LoginOutcome::LoggedIn(s) => s,
        LoginOutcome::MfaRequired { .. } => panic!("unexpected MFA"),
    }
}

#[test]
fn password_policy() {
    use rampart_auth::password::check_password_policy;
    assert!(check_password_policy("short", None).is_err());
    assert!(check_password_policy("password1234", None).is_err());
    assert!(check_password_policy("PassWord1234", None).is_err());
    assert!(
        check_password_policy("ada.lovelace@example.com", Some("ada.lovelace@example.com"))
            .is_err()
    );
    assert!(check_password_policy(PASSWORD, Some("ada@example.com")).is_ok());
}

#[test]
fn progressive_delay_doubles_and_caps() {
    use rampart_auth::throttle::progressive_delay;
    let b = Duration::from_millis(100);
    let cap = Duration::from_secs(3);
    assert_eq!(progressive_delay(0, b, cap), Duration::ZERO);
    assert_eq!(progressive_delay(1, b, cap), b);
    assert_eq!(progressive_delay(3, b, cap), Duration::from_millis(400));
    assert_eq!(progressive_delay(50, b, cap), cap);
}

#[test]
fn authorize_checks_role_and_scopes() {
    let p = |role: Role, scopes: Option<Vec<&str>>| Principal {
        tenant_id: uuid::Uuid::nil(),
        user_id: None,
        client_id: None,
        role,
        permissions: role.default_permissions().to_vec(),
        scopes: scopes.map(|s| s.into_iter().map(String::from).collect()),
    };
    assert!(authorize(&p(Role::Admin, None), Permission::UsersManage).is_ok());
    assert!(authorize(&p(Role::Viewer, None), Permission::PortfolioWrite).is_err());
    assert!(authorize(&p(Role::Trader, None), Permission::PortfolioWrite).is_ok());
    assert!(
        authorize(
            &p(Role::Trader, Some(vec!["portfolio:read"])),
            Permission::PortfolioWrite
        )
        .is_err()
    );
    assert!(
        authorize(
            &p(Role::ApiUser, Some(vec!["trade"])),
            Permission::TradeExecute
        )
        .is_ok()
    );
    assert!(authorize(&p(Role::ApiUser, None), Permission::UsersManage).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn hashes_use_owasp_parameters_and_upgrade_on_login() {
    let cfg = rampart_auth::AuthConfig::default();
    let hasher = rampart_auth::password::PasswordHasher::new(&cfg).unwrap();
    let h = hasher.hash(PASSWORD).await.unwrap();
    assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    let check = hasher.verify(PASSWORD, Some(&h)).await.unwrap();
    assert!(check.valid && check.upgraded_hash.is_none());
    assert!(
        !hasher
            .verify("wrong-password-xx", Some(&h))
            .await
            .unwrap()
            .valid
    );
    assert!(!hasher.verify(PASSWORD, None).await.unwrap().valid);
    // A weaker stored hash is upgraded on a successful verify.
    let weak = rampart_auth::password::PasswordHasher::new(&crate::common::config()).unwrap();
    let old = weak.hash(PASSWORD).await.unwrap();
    let up = hasher.verify(PASSWORD, Some(&old)).await.unwrap();
    assert!(up.valid);
    assert!(up.upgraded_hash.unwrap().contains("m=19456,t=2,p=1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn register_login_sessions_logout_and_password_change() {
    let s = server().await;
    let a = &s.auth;
    let user = a
        .register(&acme(), "Ada@Example.com", "Ada", PASSWORD, Role::Trader)
        .await
        .unwrap();
    assert_eq!(user.email, "ada@example.com");
    assert!(matches!(
        a.register(&acme(), "ada@example.com", "Ada", PASSWORD, Role::Trader)
            .await,
        Err(AuthError::Conflict(_))
    ));
    assert!(matches!(
        a.register(&acme(), "bob@example.com", "Bob", "short", Role::Trader)
            .await,
        Err(AuthError::WeakPassword(_))
    ));
    // Same error for unknown user and wrong password.
    assert!(matches!(
        a.login(&acme(), "nobody@example.com", PASSWORD, &ctx("10.0.0.1"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        a.login(
            &acme(),
            "ada@example.com",
            "wrong-password-1",
            &ctx("10.0.0.1")
        )
        .await,
        Err(AuthError::InvalidCredentials)
    ));
    // Users are per tenant.
    assert!(matches!(
        a.login(&globex(), "ada@example.com", PASSWORD, &ctx("10.0.0.1"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    let s1 = logged_in(
        a.login(&acme(), "ADA@example.com", PASSWORD, &ctx("10.0.0.1"))
            .await
            .unwrap(),
    );
    let s2 = logged_in(
        a.login(&acme(), "ada@example.com", PASSWORD, &ctx("10.0.0.2"))
            .await
            .unwrap(),
    );
    let s3 = logged_in(
        a.login(&acme(), "ada@example.com", PASSWORD, &ctx("10.0.0.3"))
            .await
            .unwrap(),
    );
    let (info, u) = a.authenticate_session(&acme(), &s1.token).await.unwrap();
    assert_eq!(u.id, user.id);
    assert_eq!(info.ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(info.user_agent.as_deref(), Some("test-agent"));
    assert_eq!(info.device, "laptop");
    assert_eq!(a.list_sessions(&acme(), user.id).await.unwrap().len(), 3);
    // A session handle of one tenant means nothing in another.
    assert!(a.authenticate_session(&globex(), &s1.token).await.is_err());
    // Tampered secret.
    let forged = format!("{}.AAAA", s1.session_id);
    assert!(a.authenticate_session(&acme(), &forged).await.is_err());
    a.revoke_session(&acme(), user.id, s2.session_id, &ctx("10.0.0.1"))
        .await
        .unwrap();
    assert!(a.authenticate_session(&acme(), &s2.token).await.is_err());
    assert_eq!(
        a.revoke_other_sessions(&acme(), user.id, s1.session_id, &ctx("10.0.0.1"))
            .await
            .unwrap(),
        1
    );
    assert!(a.authenticate_session(&acme(), &s3.token).await.is_err());
    a.authenticate_session(&acme(), &s1.token).await.unwrap();
    // Password change needs the current password, revokes other sessions.
    let s4 = logged_in(
        a.login(&acme(), "ada@example.com", PASSWORD, &ctx("10.0.0.4"))
            .await
            .unwrap(),
    );
    assert!(
        a.change_password(
            &acme(),
            user.id,
            "not-the-password",
            "another-long-pass-77",
            None,
            &ctx("x")
        )
        .await
        .is_err()
    );
    a.change_password(
        &acme(),
        user.id,
        PASSWORD,
        "another-long-pass-77",
        Some(s1.session_id),
        &ctx("x"),
    )
    .await
    .unwrap();
    assert!(a.authenticate_session(&acme(), &s4.token).await.is_err());
    a.authenticate_session(&acme(), &s1.token).await.unwrap();
    logged_in(
        a.login(
            &acme(),
            "ada@example.com",
            "another-long-pass-77",
            &ctx("10.0.0.5"),
        )
        .await
        .unwrap(),
    );
    a.logout(&acme(), &s1.token, &ctx("x")).await.unwrap();
    assert!(a.authenticate_session(&acme(), &s1.token).await.is_err());
    let v = a.verify_audit_chain(&acme()).await.unwrap();
    assert_eq!(v.first_broken, None);
    assert!(v.rows >= 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_per_account_and_ip() {
    let s = server().await;
    let a = &s.auth;
    a.register(&acme(), "eve@example.com", "Eve", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(matches!(
            a.login(
                &acme(),
                "eve@example.com",
                "bad-password-xx",
                &ctx("10.1.0.1")
            )
            .await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    // Sixth from the same IP is refused even with the right password.
    let r = a
        .login(&acme(), "eve@example.com", PASSWORD, &ctx("10.1.0.1"))
        .await;
    let Err(AuthError::RateLimited { retry_after }) = r else {
        panic!("{r:?}")
    };
    assert!(retry_after > Duration::from_secs(800));
    // Unknown accounts are limited the same way.
    for _ in 0..5 {
        let _ = a
            .login(
                &acme(),
                "ghost@example.com",
                "bad-password-xx",
                &ctx("10.1.0.9"),
            )
            .await;
    }
    assert!(matches!(
        a.login(&acme(), "ghost@example.com", "x", &ctx("10.1.0.9"))
            .await,
        Err(AuthError::RateLimited { .. })
    ));
    // Another IP may still log in (the account is not locked after 5).
    logged_in(
        a.login(&acme(), "eve@example.com", PASSWORD, &ctx("10.1.0.2"))
            .await
            .unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lockout_after_ten_failures_and_progressive_backoff() {
    let s = server().await;
    let a = &s.auth;
    a.register(&acme(), "mal@example.com", "Mal", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    let mut timings = Vec::new();
    for i in 0..10 {
        let started = Instant::now();
        // A new IP every two attempts stays under the account+IP rate limit.
        let ip = format!("10.2.0.{}", i / 2);
        assert!(matches!(
            a.login(&acme(), "mal@example.com", "bad-password-xx", &ctx(&ip))
                .await,
            Err(AuthError::InvalidCredentials)
        ));
        timings.push(started.elapsed());
    }
    // Delay grows with consecutive failures (5 ms doubling, capped at 40 ms).
    assert!(timings[6] >= Duration::from_millis(40), "{timings:?}");
    // Locked for a source the account never logged in from: refused before
    // hashing, the right password like a wrong one.
    let r = a
        .login(&acme(), "mal@example.com", PASSWORD, &ctx("10.2.1.1"))
        .await;
    assert!(matches!(r, Err(AuthError::RateLimited { .. })), "{r:?}");
    let log = a.audit_log(&acme(), 50).await.unwrap();
    assert!(log.iter().any(|r| r.action == "lockout"));
    assert!(
        log.iter()
            .any(|r| r.action == "login" && r.detail.contains("locked"))
    );
    // After the lockout window (simulated), the account works again.
    let mut conn = AsyncPgConnection::establish(&s.db_url).await.unwrap();
    conn.batch_execute(
        "UPDATE tenant_acme.login_attempts SET attempted_at = attempted_at - interval '1 hour'",
    )
    .await
    .unwrap();
    logged_in(
        a.login(&acme(), "mal@example.com", PASSWORD, &ctx("10.2.2.2"))
            .await
            .unwrap(),
    );
}

/// Logs tom in from `ip`; his login must stop at an MFA challenge.
async fn mfa_challenge_for_tom(a: &AuthServer, ip: &str) -> String {
    let LoginOutcome::MfaRequired { challenge } = a
        .login(&acme(), "tom@example.com", PASSWORD, &ctx(ip))
        .await
        .unwrap()
    else {
        panic!()
    };
    challenge
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_mfa_setup_login_reuse_backup_codes_and_disable() {
    use rampart_auth::mfa::current_totp_code;
    let s = server().await;
    let a = &s.auth;
    let user = a
        .register(&acme(), "tom@example.com", "Tom", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let setup = a.begin_totp_setup(&acme(), user.id).await.unwrap();
    assert!(setup.otpauth_url.starts_with("otpauth://totp/"));
    let now = chrono::Utc::now().timestamp() as u64;
    assert!(
        a.confirm_totp(&acme(), user.id, "000000", &ctx("x"))
            .await
            .is_err()
            || current_totp_code(&setup.secret_base32, now).unwrap() == "000000"
    );
    let code = current_totp_code(&setup.secret_base32, now).unwrap();
    let backups = a
        .confirm_totp(&acme(), user.id, &code, &ctx("x"))
        .await
        .unwrap();
    assert_eq!(backups.len(), 10);
    // Password alone is not enough now.
    let LoginOutcome::MfaRequired { challenge } = a
        .login(&acme(), "tom@example.com", PASSWORD, &ctx("10.3.0.1"))
        .await
        .unwrap()
    else {
        panic!("MFA expected")
    };
    // The code used to confirm cannot be used again within its step.
    assert!(matches!(
        a.verify_mfa(&acme(), &challenge, &code, &ctx("10.3.0.1"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    // A code of the next step works once (skew 1 accepts it).
    let next = current_totp_code(&setup.secret_base32, now + 30).unwrap();
    let session = a
        .verify_mfa(&acme(), &challenge, &next, &ctx("10.3.0.1"))
        .await
        .unwrap();
    a.authenticate_session(&acme(), &session.token)
        .await
        .unwrap();
    // The challenge is single-use.
    assert!(
        a.verify_mfa(&acme(), &challenge, &backups[0], &ctx("10.3.0.1"))
            .await
            .is_err()
    );
    // Backup code: works once.
    let challenge = mfa_challenge_for_tom(a, "10.3.0.2").await;
    a.verify_mfa(
        &acme(),
        &challenge,
        &backups[0].to_uppercase(),
        &ctx("10.3.0.2"),
    )
    .await
    .unwrap();
    let challenge = mfa_challenge_for_tom(a, "10.3.0.2").await;
    assert!(
        a.verify_mfa(&acme(), &challenge, &backups[0], &ctx("10.3.0.2"))
            .await
            .is_err()
    );
    // TOTP failures are rate-limited on their own counter (password counter untouched).
    for _ in 0..4 {
        let _ = a
            .verify_mfa(&acme(), &challenge, "123456", &ctx("10.3.0.2"))
            .await;
    }
    assert!(matches!(
        a.verify_mfa(&acme(), &challenge, "123456", &ctx("10.3.0.2"))
            .await,
        Err(AuthError::RateLimited { .. })
    ));
    assert!(matches!(
        a.login(&acme(), "tom@example.com", PASSWORD, &ctx("10.3.0.2"))
            .await,
        Ok(LoginOutcome::MfaRequired { .. })
    ));
    // Disable with a backup code.
    a.disable_totp(&acme(), user.id, &backups[1], &ctx("x"))
        .await
        .unwrap();
    logged_in(
        a.login(&acme(), "tom@example.com", PASSWORD, &ctx("10.3.0.3"))
            .await
            .unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_shown_once_hashed_scoped_expiring() {
    let s = server().await;
    let a = &s.auth;
    let bot = a
        .register(&acme(), "bot@example.com", "Bot", PASSWORD, Role::ApiUser)
        .await
        .unwrap();
    let human = a
        .register(&acme(), "hu@example.com", "Hu", PASSWORD, Role::Trader)
        .await
        .unwrap();
    // No scope, or a scope beyond the owner's role, is refused.
    assert!(matches!(
        a.create_api_key(&acme(), human.id, "x", &[], None, &ctx("x"))
            .await,
        Err(AuthError::InvalidRequest(_))
    ));
    assert!(matches!(
        a.create_api_key(
            &acme(),
            human.id,
            "x",
            &["tenant:admin".into()],
            None,
            &ctx("x")
        )
        .await,
        Err(AuthError::Forbidden(_))
    ));
    assert!(matches!(
        a.create_api_key(&acme(), bot.id, "x", &["openid".into()], None, &ctx("x"))
            .await,
        Err(AuthError::Forbidden(_))
    ));
    // A trader's key within the role works as the trader.
    let human_key = a
        .create_api_key(
            &acme(),
            human.id,
            "x",
            &["portfolio:write".into()],
            None,
            &ctx("x"),
        )
        .await
        .unwrap();
    let p = a
        .authenticate_api_key(&acme(), &human_key.key)
        .await
        .unwrap();
    assert_eq!((p.user_id, p.role), (Some(human.id), Role::Trader));
    assert!(authorize(&p, Permission::PortfolioWrite).is_ok());
    let key = a
        .create_api_key(
            &acme(),
            bot.id,
            "ci",
            &["portfolio:read".into()],
            None,
            &ctx("x"),
        )
        .await
        .unwrap();
    assert!(key.key.starts_with(&format!("rk_{}_", key.prefix)));
    let p = a.authenticate_api_key(&acme(), &key.key).await.unwrap();
    assert_eq!(p.role, Role::ApiUser);
    assert!(authorize(&p, Permission::PortfolioRead).is_ok());
    assert!(authorize(&p, Permission::TradeExecute).is_err());
    // Not stored in clear.
    let mut conn = AsyncPgConnection::establish(&s.db_url).await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    // The whole secret (base64url, which may itself contain `_`).
    let secret = key
        .key
        .strip_prefix(&format!("rk_{}_", key.prefix))
        .unwrap()
        .to_owned();
    assert!(secret.len() >= 40, "{secret}");
    let n: N = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM tenant_acme.api_keys WHERE encode(key_hash, 'escape') LIKE '%{secret}%'"
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(n.n, 0);
    // Wrong secret, other tenant, expired, revoked.
    let wrong = format!("rk_{}_{}", key.prefix, "A".repeat(43));
    assert!(a.authenticate_api_key(&acme(), &wrong).await.is_err());
    assert!(a.authenticate_api_key(&globex(), &key.key).await.is_err());
    let expired = a
        .create_api_key(
            &acme(),
            bot.id,
            "old",
            &["market:read".into()],
            Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
            &ctx("x"),
        )
        .await
        .unwrap();
    assert!(a.authenticate_api_key(&acme(), &expired.key).await.is_err());
    a.revoke_api_key(&acme(), &key.prefix, &ctx("x"))
        .await
        .unwrap();
    assert!(a.authenticate_api_key(&acme(), &key.key).await.is_err());
    assert_eq!(a.list_api_keys(&acme(), bot.id).await.unwrap().len(), 2);
}

/// `sql` wrapped so that it runs past the append-only trigger of the audit log.
fn past_the_trigger(sql: &str) -> String {
    format!(
        "ALTER TABLE tenant_acme.audit_log DISABLE TRIGGER audit_log_append_only; {sql}; \
         ALTER TABLE tenant_acme.audit_log ENABLE TRIGGER audit_log_append_only;"
    )
}

/// Runs `sql` on acme's audit log past its append-only trigger.
pub(crate) async fn tamper(conn: &mut AsyncPgConnection, sql: String) {
    conn.batch_execute(&past_the_trigger(&sql)).await.unwrap();
}

/// The first row at which acme's audit chain breaks.
async fn first_broken(a: &AuthServer) -> Option<i64> {
    a.verify_audit_chain(&acme()).await.unwrap().first_broken
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_chain_detects_tampering_and_refuses_updates() {
    let s = server().await;
    let a = &s.auth;
    a.register(&acme(), "aud@example.com", "Aud", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    for i in 0..4 {
        let _ = a
            .login(
                &acme(),
                "aud@example.com",
                "bad-password-xx",
                &ctx(&format!("10.4.0.{i}")),
            )
            .await;
    }
    let log = a.audit_log(&acme(), 100).await.unwrap();
    assert_eq!(log.len(), 5);
    let first = log.iter().find(|r| r.action == "login").unwrap();
    assert_eq!(first.result, "failure");
    assert!(first.tenant_id.is_some() && first.ip.is_some() && first.user_agent.is_some());
    // Rows are checked once sealed (a signed tree head covers them).
    assert_eq!(a.audit_trail().seal(&acme()).await.unwrap().added, 5);
    assert_eq!(first_broken(a).await, None);
    let mut conn = AsyncPgConnection::establish(&s.db_url).await.unwrap();
    // The table refuses updates and deletes.
    assert!(
        conn.batch_execute("UPDATE tenant_acme.audit_log SET result = 'success'")
            .await
            .is_err()
    );
    assert!(
        conn.batch_execute("DELETE FROM tenant_acme.audit_log")
            .await
            .is_err()
    );
    // Tampering past the trigger is detected at the first changed row.
    let ids: Vec<i64> = log.iter().map(|r| r.id).collect();
    let target = ids[2];
    conn.batch_execute(&format!(
        "ALTER TABLE tenant_acme.audit_log DISABLE TRIGGER audit_log_append_only; \
         UPDATE tenant_acme.audit_log SET result = 'success' WHERE id = {target}; \
         ALTER TABLE tenant_acme.audit_log ENABLE TRIGGER audit_log_append_only;"
    ))
    .await
    .unwrap();
    let v = a.verify_audit_chain(&acme()).await.unwrap();
    assert_eq!(v.first_broken, Some(target));
    // Every forgery below is made past the trigger, as a database owner
    // could; each is reported, and undoing it makes the chain whole again.
    tamper(
        &mut conn,
        format!("UPDATE tenant_acme.audit_log SET result = 'failure' WHERE id = {target}"),
    )
    .await;
    assert_eq!(
        first_broken(a).await,
        None,
        "restoring the row restores the chain"
    );
    // A modified detail (jsonb) or timestamp is detected too.
    tamper(&mut conn, format!(
        "UPDATE tenant_acme.audit_log SET detail = detail || '{{\"x\": 1}}'::jsonb WHERE id = {}",
        ids[3]
    )).await;
    assert_eq!(first_broken(a).await, Some(ids[3]));
    tamper(
        &mut conn,
        format!(
            "UPDATE tenant_acme.audit_log SET detail = detail - 'x' WHERE id = {}",
            ids[3]
        ),
    )
    .await;
    tamper(&mut conn, format!(
        "UPDATE tenant_acme.audit_log SET occurred_at = occurred_at + interval '1 second' WHERE id = {}",
        ids[1]
    )).await;
    assert_eq!(first_broken(a).await, Some(ids[1]));
    tamper(&mut conn, format!(
        "UPDATE tenant_acme.audit_log SET occurred_at = occurred_at - interval '1 second' WHERE id = {}",
        ids[1]
    )).await;
    assert_eq!(first_broken(a).await, None);
    // An inserted row (a copy of an earlier row under an unused id before
    // the others) is reported at the inserted row. (One added after the
    // newest tree head is indistinguishable from a new event: unsealed.)
    let forged = 0;
    tamper(&mut conn, format!(
        "INSERT INTO tenant_acme.audit_log (id, occurred_at, tenant_id, user_id, actor, action, result, ip, user_agent, detail, prev_hash, row_hash) \
         OVERRIDING SYSTEM VALUE SELECT {forged}, occurred_at, tenant_id, user_id, actor, action, result, ip, user_agent, detail, prev_hash, row_hash \
         FROM tenant_acme.audit_log WHERE id = {}",
        ids[1]
    )).await;
    assert_eq!(first_broken(a).await, Some(forged));
    tamper(
        &mut conn,
        format!("DELETE FROM tenant_acme.audit_log WHERE id = {forged}"),
    )
    .await;
    assert_eq!(first_broken(a).await, None);
    // Reordering: two rows trade places (their contents swap ids).
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    let (x, y) = (sorted[1], sorted[2]);
    let swap = past_the_trigger(&format!(
        "UPDATE tenant_acme.audit_log t SET occurred_at = s.occurred_at, tenant_id = s.tenant_id, \
         user_id = s.user_id, actor = s.actor, action = s.action, result = s.result, ip = s.ip, \
         user_agent = s.user_agent, detail = s.detail, prev_hash = s.prev_hash, row_hash = s.row_hash \
         FROM tenant_acme.audit_log s WHERE (t.id = {x} AND s.id = {y}) OR (t.id = {y} AND s.id = {x})"
    ));
    conn.batch_execute(&swap).await.unwrap();
    assert_eq!(first_broken(a).await, Some(x));
    conn.batch_execute(&swap).await.unwrap();
    assert_eq!(first_broken(a).await, None);
    // A deleted row in the middle: reported at the row that followed it.
    tamper(
        &mut conn,
        format!("DELETE FROM tenant_acme.audit_log WHERE id = {}", sorted[2]),
    )
    .await;
    assert_eq!(first_broken(a).await, Some(sorted[3]));
    // A deleted first row: the new first row does not start the chain.
    tamper(
        &mut conn,
        format!("DELETE FROM tenant_acme.audit_log WHERE id = {}", sorted[0]),
    )
    .await;
    assert_eq!(first_broken(a).await, Some(sorted[1]));
}

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_removes_expired_rows() {
    let s = server().await;
    let a = &s.auth;
    a.register(&acme(), "cl@example.com", "Cl", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    let _ = a
        .login(
            &acme(),
            "cl@example.com",
            "bad-password-xx",
            &ctx("10.5.0.1"),
        )
        .await;
    logged_in(
        a.login(&acme(), "cl@example.com", PASSWORD, &ctx("10.5.0.1"))
            .await
            .unwrap(),
    );
    let mut conn = AsyncPgConnection::establish(&s.db_url).await.unwrap();
    conn.batch_execute(
        "UPDATE tenant_acme.sessions SET expires_at = now() - interval '1 minute'; \
         UPDATE tenant_acme.login_attempts SET attempted_at = now() - interval '2 days';",
    )
    .await
    .unwrap();
    let r = a.cleanup_expired(&acme()).await.unwrap();
    assert_eq!(r.sessions, 1);
    assert_eq!(r.login_attempts, 2);
    assert_eq!(
        a.cleanup_expired(&acme()).await.unwrap(),
        Default::default()
    );
}

/// Sessions, login challenges and API keys are stored inline (no TOAST
/// table: issue 14's relation budget), so what a client sends is bounded
/// before it is stored: a 20,000-character `User-Agent` still logs in (kept
/// to its first 512 characters, cut on a character boundary), and an API
/// key's name of more than 200 characters or a scope listed twice is refused
/// with a typed error.
#[tokio::test(flavor = "multi_thread")]
async fn what_a_client_sends_is_bounded_before_it_is_stored() {
    let t = server().await;
    let a = &t.auth;
    let user = a
        .register(&acme(), "ua@example.com", "Ua", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let agent = "é".repeat(20_000);
    let client = rampart_auth::ClientContext::from_request("10.0.0.9".into(), Some(&agent));
    let session = logged_in(
        a.login(&acme(), "ua@example.com", PASSWORD, &client)
            .await
            .unwrap(),
    );
    // A context built by hand (an embedder's) is bounded the same way.
    let by_hand = ctx("10.0.0.9").with_user_agent(&agent);
    logged_in(
        a.login(&acme(), "ua@example.com", PASSWORD, &by_hand)
            .await
            .unwrap(),
    );
    let sessions = a.list_sessions(&acme(), user.id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    for s in &sessions {
        let stored = s.user_agent.as_deref().unwrap();
        assert_eq!(stored.chars().count(), rampart_auth::MAX_USER_AGENT_CHARS);
        assert!(agent.starts_with(stored));
        assert!(s.device.chars().count() <= 64);
    }
    assert!(sessions.iter().any(|s| s.id == session.session_id));
    let long_name = "k".repeat(201);
    let scopes = ["portfolio:read".to_owned()];
    assert!(matches!(
        a.create_api_key(&acme(), user.id, &long_name, &scopes, None, &client)
            .await,
        Err(AuthError::InvalidRequest(_))
    ));
    let twice: Vec<String> = vec!["portfolio:read".into(); 40];
    assert!(matches!(
        a.create_api_key(&acme(), user.id, "ok", &twice, None, &client)
            .await,
        Err(AuthError::InvalidRequest(_))
    ));
    a.create_api_key(&acme(), user.id, &"k".repeat(200), &scopes, None, &client)
        .await
        .unwrap();
}
