//! The caller's account over the bearer API (`/api/v1/t/{tenant}/account/…`)
//! against the real server over HTTPS and real PostgreSQL: password change,
//! TOTP setup / confirm / disable, revoke other sessions, API keys, logout,
//! and the refusals (no token, another tenant's token, wrong and reused codes).
use rampart_auth::accounts::{LoginOutcome, User};
use rampart_auth::{ClientContext, Permission, Role, authorize};
use rampart_server::app::AppState;
use rampart_testkit::{acme, globex, valid_slug};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::common::{Env, PASSWORD, Pki, config, mint_token_with};

/// The account's TOTP endpoints.
const TOTP: &str = "/api/v1/t/acme/account/mfa/totp";
const CHANGE_PASSWORD: &str = "/api/v1/t/acme/account/password";
const API_KEYS: &str = "/api/v1/t/acme/account/api-keys";
const REVOKE_OTHERS: &str = "/api/v1/t/acme/account/sessions/revoke-others";
const NEW_PASSWORD: &str = "staple-orbit-lantern-77";

/// An access token as the token endpoint mints it, bound to `session`.
async fn token(
    state: &AppState,
    tenant: &str,
    user: Uuid,
    role: Role,
    session: Option<Uuid>,
) -> String {
    let scope = "openid account:manage";
    mint_token_with(state, tenant, user, role, "web", scope, session).await
}

/// Session id and handle of a password login.
async fn login(state: &AppState, tenant: &str, email: &str, password: &str) -> (Uuid, String) {
    let s = crate::common::login(&crate::common::auth(state), tenant, email, password).await;
    (s.session_id, s.token)
}

/// The server with `acme` provisioned and Ada, a trader, registered in it.
async fn acme_with_ada() -> (Env, User) {
    let pki = Pki::new();
    let config = config(&pki).await;
    let env = Env::start(pki, config).await;
    env.state.tenants.provision(&acme(), "Acme").await.unwrap();
    let ada = register(&env, "acme", "ada@example.com", "Ada", Role::Trader).await;
    (env, ada)
}

/// Registers a user with [`PASSWORD`].
async fn register(env: &Env, tenant: &str, email: &str, name: &str, role: Role) -> User {
    let auth = env.auth();
    auth.register(&valid_slug(tenant), email, name, PASSWORD, role)
        .await
        .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn account_password_totp_sessions_api_keys_and_logout() {
    let (env, ada) = acme_with_ada().await;
    let (state, auth, api) = (&env.state, env.auth(), env.api());
    state.tenants.provision(&globex(), "Globex").await.unwrap();
    let bot = register(&env, "acme", "bot@example.com", "Bot", Role::ApiUser).await;
    let bot2 = register(&env, "acme", "bot2@example.com", "Bot 2", Role::ApiUser).await;
    let eve = register(&env, "globex", "eve@example.com", "Eve", Role::Trader).await;
    let (session_a, _) = login(state, "acme", "ada@example.com", PASSWORD).await;
    let (_session_b, handle_b) = login(state, "acme", "ada@example.com", PASSWORD).await;
    let ada_token = token(state, "acme", ada.id.into(), Role::Trader, Some(session_a)).await;
    let as_ada = api.with(&ada_token);
    let eve_token = token(state, "globex", eve.id.into(), Role::Trader, None).await;

    // Refusals: no token, another tenant's token (same answer as no token).
    for bearer in [None, Some(eve_token.as_str())] {
        for (method, path) in [
            (Method::POST, CHANGE_PASSWORD),
            (Method::POST, TOTP),
            (Method::POST, &format!("{TOTP}/confirm")),
            (Method::POST, &format!("{TOTP}/disable")),
            (Method::POST, REVOKE_OTHERS),
            (Method::POST, API_KEYS),
            (Method::GET, API_KEYS),
            (Method::DELETE, "/api/v1/t/acme/account/api-keys/abc"),
            (Method::POST, "/api/v1/t/acme/account/logout"),
        ] {
            let body = json!({"code": "123456", "current_password": PASSWORD,
                "new_password": NEW_PASSWORD, "name": "k"});
            let refusal = (401, "unauthorized");
            api.expect_error(refusal, method, path, bearer, Some(body))
                .await;
        }
    }

    // TOTP: begin shows the secret once; a wrong code is refused.
    let body = api
        .expect(200, Method::POST, TOTP, Some(&ada_token), None)
        .await;
    let secret = body["data"]["secret"].as_str().unwrap().to_owned();
    assert!(
        body["data"]["otpauthUrl"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let code = rampart_auth::mfa::current_totp_code(&secret, now()).unwrap();
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    as_ada
        .post(400, &format!("{TOTP}/confirm"), json!({"code": wrong}))
        .await;
    // The right code enables it and shows 10 backup codes once.
    let body = as_ada
        .post(200, &format!("{TOTP}/confirm"), json!({"code": code}))
        .await;
    let backup: Vec<String> = serde_json::from_value(body["data"]["backupCodes"].clone()).unwrap();
    assert_eq!(backup.len(), 10);
    // Setting up again while enabled is a conflict.
    api.expect(409, Method::POST, TOTP, Some(&ada_token), None)
        .await;
    // The code that confirmed cannot be used again within its step.
    as_ada
        .post(400, &format!("{TOTP}/disable"), json!({"code": code}))
        .await;
    // Login now needs the second factor.
    assert!(matches!(
        auth.login(
            &acme(),
            "ada@example.com",
            PASSWORD,
            &ClientContext::ip("127.0.0.2")
        )
        .await
        .unwrap(),
        LoginOutcome::MfaRequired { .. }
    ));
    // A backup code disables it (single use).
    as_ada
        .post(200, &format!("{TOTP}/disable"), json!({"code": backup[0]}))
        .await;

    // Revoke the other sessions: needs a token bound to a session.
    let no_session = token(state, "acme", ada.id.into(), Role::Trader, None).await;
    api.expect(403, Method::POST, REVOKE_OTHERS, Some(&no_session), None)
        .await;
    let body = api
        .expect(200, Method::POST, REVOKE_OTHERS, Some(&ada_token), None)
        .await;
    assert!(body["data"]["revoked"].as_u64().unwrap() >= 1);
    assert!(auth.authenticate_session(&acme(), &handle_b).await.is_err());
    let live = auth.list_sessions(&acme(), ada.id).await.unwrap();
    assert_eq!(
        live.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![session_a]
    );

    // Change password: wrong current and weak new are refused.
    as_ada
        .post(
            400,
            CHANGE_PASSWORD,
            json!({"current_password": "not-the-password-1", "new_password": NEW_PASSWORD}),
        )
        .await;
    as_ada
        .post(
            400,
            CHANGE_PASSWORD,
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    as_ada
        .post(
            200,
            CHANGE_PASSWORD,
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    login(state, "acme", "ada@example.com", NEW_PASSWORD).await;
    // The token's own session survived the change.
    assert_eq!(
        auth.list_sessions(&acme(), ada.id)
            .await
            .unwrap()
            .iter()
            .filter(|s| s.id == session_a)
            .count(),
        1
    );

    // API keys: any user, with scopes within the role only.
    as_ada
        .post(
            403,
            API_KEYS,
            json!({"name": "k", "scopes": ["market:read", "users:manage"]}),
        )
        .await;
    as_ada
        .post(400, API_KEYS, json!({"name": "k", "scopes": []}))
        .await;
    let body = as_ada
        .post(
            201,
            API_KEYS,
            json!({"name": "laptop", "scopes": ["market:read", "portfolio:write"]}),
        )
        .await;
    let ada_key = body["data"]["key"].as_str().unwrap().to_owned();
    let p = auth.authenticate_api_key(&acme(), &ada_key).await.unwrap();
    assert_eq!((p.user_id, p.role), (Some(ada.id), Role::Trader));
    assert!(authorize(&p, Permission::PortfolioWrite).is_ok());
    assert!(authorize(&p, Permission::PortfolioRead).is_err());
    // The owner's role bounds the key on every use: a trader turned viewer
    // keeps no write access through an older key.
    auth.set_role(&acme(), ada.id, Role::Viewer).await.unwrap();
    let p = auth.authenticate_api_key(&acme(), &ada_key).await.unwrap();
    assert!(authorize(&p, Permission::PortfolioWrite).is_err());
    assert!(authorize(&p, Permission::MarketRead).is_ok());
    auth.set_role(&acme(), ada.id, Role::Trader).await.unwrap();
    let bot_token = token(state, "acme", bot.id.into(), Role::ApiUser, None).await;
    let bot2_token = token(state, "acme", bot2.id.into(), Role::ApiUser, None).await;
    api.with(&bot_token)
        .post(400, API_KEYS, json!({"name": "k", "scopes": ["nope"]}))
        .await;
    let body = api
        .with(&bot_token)
        .post(
            201,
            API_KEYS,
            json!({"name": "ci", "scopes": ["market:read"]}),
        )
        .await;
    let key = body["data"]["key"].as_str().unwrap().to_owned();
    let prefix = body["data"]["prefix"].as_str().unwrap().to_owned();
    assert!(key.contains(&prefix));
    let p = auth.authenticate_api_key(&acme(), &key).await.unwrap();
    assert_eq!(p.user_id, Some(bot.id));
    let body = api.expect_get(200, API_KEYS, &bot_token).await;
    let listed = body["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["prefix"], prefix.as_str());
    assert!(!body.to_string().contains(&key), "the key is shown once");
    // Another api_user cannot revoke it.
    let path = format!("{API_KEYS}/{prefix}");
    api.with(&bot2_token).delete(404, &path).await;
    api.with(&bot_token).delete(200, &path).await;
    assert!(auth.authenticate_api_key(&acme(), &key).await.is_err());
    api.with(&bot_token).delete(404, &path).await;

    // Logout revokes the token's session.
    let logout = "/api/v1/t/acme/account/logout";
    api.expect(200, Method::POST, logout, Some(&ada_token), None)
        .await;
    assert!(
        auth.list_sessions(&acme(), ada.id)
            .await
            .unwrap()
            .iter()
            .all(|s| s.id != session_a)
    );
    env.server.stop().await;
}

/// An access token for Ada with `scope`, signed in at `auth_time`.
async fn token_signed_in_at(
    state: &AppState,
    user: Uuid,
    session: Uuid,
    scope: &str,
    auth_time: Option<i64>,
) -> String {
    let auth = crate::common::auth(state);
    let t = state.tenants.tenant(&acme()).await.unwrap();
    auth.tokens()
        .issue_access_token(&rampart_auth::AccessTokenRequest {
            tenant_id: t.id,
            issuer: auth.issuer(&acme()),
            audience: auth.config().access_token_audience.clone(),
            subject: user.to_string(),
            client_id: "web".into(),
            scope: scope.into(),
            roles: vec!["trader".into()],
            session_id: Some(session),
            family_id: None,
            auth_time,
            alg: rampart_auth::SigningAlg::ES256,
        })
        .unwrap()
        .0
}

#[tokio::test]
async fn account_changes_need_the_account_scope_and_a_recent_sign_in() {
    let (env, ada) = acme_with_ada().await;
    let (state, auth, api) = (&env.state, env.auth(), env.api());
    let (session, _) = login(state, "acme", "ada@example.com", PASSWORD).await;
    let now = chrono::Utc::now().timestamp();
    let key_body = json!({"name": "k", "scopes": ["portfolio:read"]});
    let password_body =
        json!({"current_password": PASSWORD, "new_password": "a-different-passphrase-9"});

    // A token that did not ask for `account:manage` (e.g. `scope=openid`)
    // manages nothing, however fresh its sign-in.
    let narrow = token_signed_in_at(
        state,
        ada.id.into(),
        session,
        "openid portfolio:read",
        Some(now),
    )
    .await;
    for (method, path, body) in [
        (Method::POST, TOTP, None),
        (Method::POST, API_KEYS, Some(key_body.clone())),
        (Method::GET, API_KEYS, None),
        (Method::POST, CHANGE_PASSWORD, Some(password_body.clone())),
        (Method::POST, REVOKE_OTHERS, None),
    ] {
        let refusal = (403, "forbidden");
        api.expect_error(refusal, method, path, Some(&narrow), body)
            .await;
    }

    // With the scope but a sign-in older than `reauth_max_age_secs` (or
    // none on record): the changes that take no password are refused
    // until the user signs in again.
    let max_age = auth.config().reauth_max_age_secs as i64;
    for auth_time in [Some(now - max_age - 60), None] {
        let stale = token_signed_in_at(
            state,
            ada.id.into(),
            session,
            "openid account:manage",
            auth_time,
        )
        .await;
        for (path, body) in [
            (TOTP, None),
            (&format!("{TOTP}/confirm"), Some(json!({"code": "123456"}))),
            (&format!("{TOTP}/disable"), Some(json!({"code": "123456"}))),
            (API_KEYS, Some(key_body.clone())),
            (REVOKE_OTHERS, None),
        ] {
            let refusal = (403, "reauthentication_required");
            api.expect_error(refusal, Method::POST, path, Some(&stale), body)
                .await;
        }
        // Listing keys changes nothing: allowed.
        api.expect_get(200, API_KEYS, &stale).await;
    }
    // The password change proves the user with the current password.
    let stale = token_signed_in_at(
        state,
        ada.id.into(),
        session,
        "openid account:manage",
        Some(now - max_age - 60),
    )
    .await;
    api.with(&stale)
        .post(200, CHANGE_PASSWORD, password_body)
        .await;
    // A fresh sign-in may.
    let fresh = token_signed_in_at(
        state,
        ada.id.into(),
        session,
        "openid account:manage",
        Some(now),
    )
    .await;
    api.expect(200, Method::POST, TOTP, Some(&fresh), None)
        .await;
    env.server.stop().await;
}
