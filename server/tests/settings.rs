//! Tenant settings, feature flags, registration policy, the login policy,
//! API keys as credentials and the tenant audit log over HTTPS against the
//! real server and PostgreSQL (and the kit's SMTP server for registration).
use rampart_testkit::{acme, valid_slug};
use std::time::Duration;

use rampart_auth::{AuthError, ClientContext, Permission, Role, authorize};
use rampart_ratelimit::Quota;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, Env, PASSWORD, count, env, env_with, mint_token};
use crate::notify::{link_path, mail_to, notify_env, unique_email, wait_for_mail};

/// A client of the admin listener with the operator's certificate.
pub(crate) fn operator(env: &Env) -> Api {
    let op = env.pki.operator();
    Api {
        http: env.pki.client(Some(&op)),
        addr: env.server.admin_addr,
    }
}

/// A user of `role` and a token with the role's scopes.
pub(crate) async fn user_token(
    env: &Env,
    tenant: &str,
    email: &str,
    role: Role,
) -> (uuid::Uuid, String) {
    let user = env
        .auth()
        .register(&valid_slug(tenant), email, "Test", PASSWORD, role)
        .await
        .unwrap();
    (
        user.id.into(),
        mint_token(&env.state, tenant, user.id.into(), role, "web").await,
    )
}

pub(crate) fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

/// Sends a request with an API key header; status and JSON body.
/// `GET path` with the header `(name, value)` (an API key) answered
/// `status`: the body (`null` when it is not JSON).
async fn with_key(env: &Env, path: &str, (name, value): (&str, &str), status: u16) -> Value {
    let r = env
        .http
        .get(env.url(path))
        .header(name, value)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    assert_eq!(s, status, "GET {path}: {body}");
    body
}

/// [`with_key`] with `key` in `X-Api-Key`.
async fn x_api_key(env: &Env, path: &str, key: &str, status: u16) -> Value {
    with_key(env, path, ("x-api-key", key), status).await
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_have_defaults_bounds_admins_only_and_are_audited() {
    let env = env().await;
    let (_, admin) = user_token(&env, "acme", "root@acme.test", Role::Admin).await;
    let (_, trader) = user_token(&env, "acme", "tom@acme.test", Role::Trader).await;
    let path = "/api/v1/t/acme/settings";

    // Defaults.
    let v = env.expect_get(200, path, &admin).await;
    let d = &v["data"];
    assert_eq!(d["registration"]["mode"], "invitation_only");
    assert_eq!(d["emailVerificationRequired"], true);
    assert_eq!(d["mfaRequiredForAdmins"], false);
    assert_eq!(d["publicLeaderboard"], false);
    assert_eq!(d["upstreamLinking"], "verified_email");
    assert_eq!(d["refreshGraceSeconds"], 0);
    assert_eq!(d["passwordPolicy"]["minLength"], 12);

    // Non-admins neither read nor change them.
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"publicLeaderboard": true}))),
    ] {
        let (s, v) = env.call(method, path, Some(&trader), body).await;
        assert_eq!(s, 403, "{v}");
    }

    // Out of bounds, unknown keys and wrong types: 400 with a stable code,
    // nothing changed.
    for bad in [
        json!({"sessionLifetimeSecs": 10}),
        json!({"sessionLifetimeSecs": 365 * 24 * 3600}),
        json!({"refreshLifetimeSecs": 1}),
        json!({"refreshGraceSeconds": 3600}),
        json!({"passwordPolicy": {"minLength": 4}}),
        json!({"registration": {"mode": "open", "allowedDomains": ["Not a domain"]}}),
        json!({"registration": {"mode": "sometimes"}}),
        json!({"noSuchSetting": true}),
        json!({"publicLeaderboard": "yes"}),
    ] {
        let invalid = (400, "tenant_setting_invalid");
        env.expect_error(invalid, Method::PATCH, path, Some(&admin), Some(bad))
            .await;
    }
    let after_refusals = env.expect_get(200, path, &admin).await;
    assert_eq!(after_refusals["data"], v["data"]);

    // A change: the new values back, audited with before and after.
    let v = env
        .expect_patch(
            path,
            &admin,
            json!({"sessionLifetimeSecs": 3600, "publicLeaderboard": true,
                        "registration": {"mode": "open", "allowedDomains": ["acme.test"]}}),
        )
        .await;
    assert_eq!(v["data"]["sessionLifetimeSecs"], 3600);
    assert_eq!(v["data"]["publicLeaderboard"], true);
    assert_eq!(
        v["data"]["registration"]["allowedDomains"],
        json!(["acme.test"])
    );
    // `null` resets one key to its default, the others stay.
    let v = env
        .expect_patch(path, &admin, json!({"publicLeaderboard": null}))
        .await;
    assert_eq!(v["data"]["publicLeaderboard"], false);
    assert_eq!(v["data"]["sessionLifetimeSecs"], 3600);
    let audit = env
        .expect_get(
            200,
            "/api/v1/t/acme/audit?action=tenant_settings_update",
            &admin,
        )
        .await;
    let rows = audit["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{audit}");
    let first: Value = serde_json::from_str(rows[1]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(first["before"]["sessionLifetimeSecs"], 7 * 24 * 3600);
    assert_eq!(first["after"]["sessionLifetimeSecs"], 3600);
    assert!(rows[1]["actor"].as_str().unwrap().starts_with("user:"));

    // The login reads the session lifetime.
    let session = crate::common::login(&env.auth(), "acme", "tom@acme.test", PASSWORD).await;
    let left = (session.expires_at - chrono::Utc::now()).num_seconds();
    assert!((3000..=3600).contains(&left), "{left}");

    // Feature flags: admins only, audited.
    let flag = "/api/v1/t/acme/features/beta_charts";
    let (s, _) = env.get(flag, &trader).await;
    assert_eq!(s, 403);
    let (s, _) = env
        .call(
            Method::PUT,
            flag,
            Some(&trader),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 403);
    let v = env.expect_get(200, flag, &admin).await;
    assert_eq!(v["data"]["enabled"], false);
    env.with(&admin)
        .put(200, flag, json!({"enabled": true}))
        .await;
    let v = env.expect_get(200, "/api/v1/t/acme/features", &admin).await;
    assert_eq!(v["data"]["beta_charts"], true);
    env.expect_error(
        (400, "tenant_setting_invalid"),
        Method::PUT,
        "/api/v1/t/acme/features/bad%20flag",
        Some(&admin),
        Some(json!({"enabled": true})),
    )
    .await;

    // Operators on the admin listener: the same settings, the same bounds,
    // audited in the tenant's log with the certificate's subject.
    let ops = operator(&env);
    let v = ops
        .expect(200, Method::GET, "/admin/tenants/acme/settings", None, None)
        .await;
    assert_eq!(v["data"]["sessionLifetimeSecs"], 3600);
    ops.expect_error(
        (400, "tenant_setting_invalid"),
        Method::PATCH,
        "/admin/tenants/acme/settings",
        None,
        Some(json!({"sessionLifetimeSecs": 1})),
    )
    .await;
    ops.expect(
        200,
        Method::PATCH,
        "/admin/tenants/acme/settings",
        None,
        Some(json!({"mfaRequiredForAdmins": true})),
    )
    .await;
    let v = ops
        .expect(
            200,
            Method::GET,
            "/admin/tenants/acme/features/beta_charts",
            None,
            None,
        )
        .await;
    assert_eq!(v["data"]["enabled"], true);
    let audit = ops
        .expect(
            200,
            Method::GET,
            "/admin/tenants/acme/audit?action=tenant_settings_update&limit=1",
            None,
            None,
        )
        .await;
    assert!(
        audit["data"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("mtls:"),
        "{audit}"
    );
    // The public listener does not route the operator's paths.
    let (s, _) = env.get("/admin/tenants/acme/settings", &admin).await;
    assert_eq!(s, 404);
    // Another tenant is untouched.
    let (_, g_admin) = user_token(&env, "globex", "root@globex.test", Role::Admin).await;
    let v = env
        .expect_get(200, "/api/v1/t/globex/settings", &g_admin)
        .await;
    assert_eq!(v["data"]["sessionLifetimeSecs"], 7 * 24 * 3600);
    // acme's admin token is refused on globex.
    let (s, _) = env.get("/api/v1/t/globex/settings", &admin).await;
    assert_eq!(s, 401);
}

async fn register(env: &Env, email: &str) -> (u16, Value) {
    env.call(
        Method::POST,
        "/api/v1/t/acme/register",
        None,
        Some(json!({"email": email, "displayName": "New", "password": PASSWORD})),
    )
    .await
}

async fn set(env: &Env, patch: Value) {
    env.state
        .tenants
        .update_tenant_settings(&acme(), &patch)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_follows_the_policy_and_login_needs_a_verified_address() {
    let env = notify_env().await;
    let auth = env.auth();
    let users = |env: &Env| {
        let state = env.state.clone();
        async move { count(&state, "acme", "SELECT count(*) AS n FROM users").await }
    };

    // Default: invitation only.
    let email = unique_email("ivy");
    let (s, v) = register(&env, &email).await;
    assert_eq!((s, code(&v)), (403, "invitation_required"), "{v}");
    // Closed.
    set(&env, json!({"registration": {"mode": "closed"}})).await;
    let (s, v) = register(&env, &email).await;
    assert_eq!((s, code(&v)), (403, "registration_closed"), "{v}");
    assert_eq!(users(&env).await, 0);
    assert!(mail_to(&email).is_empty());

    // Open to acme.test only.
    set(
        &env,
        json!({"registration": {"mode": "open", "allowedDomains": ["acme.test"]}}),
    )
    .await;
    let (s, v) = register(&env, "mallory@evil.example").await;
    assert_eq!((s, code(&v)), (403, "email_domain_not_allowed"), "{v}");
    assert_eq!(users(&env).await, 0);
    let (s, first) = register(&env, &email).await;
    assert_eq!(s, 202, "{first}");
    let mails = wait_for_mail(&email, 1).await;
    assert_eq!(mails[0].0, "Confirm your e-mail address");

    // The same address again: the same answer; the address is mailed (a
    // reset link), nothing is created.
    let (s, again) = register(&env, &email).await;
    assert_eq!((s, &again["data"]), (202, &first["data"]));
    let mails = wait_for_mail(&email, 2).await;
    assert_eq!(mails[1].0, "Reset your password");
    assert_eq!(users(&env).await, 1);

    // Unverified: the right password does not log in (and says why).
    let ctx = ClientContext::ip("127.0.0.1");
    let refused = auth.login(&acme(), &email, PASSWORD, &ctx).await;
    assert!(
        matches!(refused, Err(AuthError::EmailNotVerified)),
        "{refused:?}"
    );
    // Verified through the link: it does.
    let r = env
        .http
        .get(env.url(&link_path(&mails[0].1)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    crate::common::login(&auth, "acme", &email, PASSWORD).await;

    // A tenant that does not require verification lets an unverified user in.
    let other = unique_email("otto");
    assert_eq!(register(&env, &other).await.0, 202);
    wait_for_mail(&other, 1).await;
    set(&env, json!({"emailVerificationRequired": false})).await;
    crate::common::login(&auth, "acme", &other, PASSWORD).await;

    // The tenant's password length applies to registration.
    set(&env, json!({"passwordPolicy": {"minLength": 40}})).await;
    let (s, v) = register(&env, &unique_email("pat")).await;
    assert_eq!((s, code(&v)), (400, "invalid_request"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_without_a_second_factor_are_refused_when_the_tenant_requires_one() {
    let env = env().await;
    let auth = env.auth();
    user_token(&env, "acme", "root@acme.test", Role::Admin).await;
    user_token(&env, "acme", "tom@acme.test", Role::Trader).await;
    set(&env, json!({"mfaRequiredForAdmins": true})).await;
    let ctx = ClientContext::ip("127.0.0.1");
    let refused = auth.login(&acme(), "root@acme.test", PASSWORD, &ctx).await;
    assert!(
        matches!(refused, Err(AuthError::MfaEnrollmentRequired)),
        "{refused:?}"
    );
    // Other roles are not concerned; switched off, the admin gets in.
    crate::common::login(&auth, "acme", "tom@acme.test", PASSWORD).await;
    set(&env, json!({"mfaRequiredForAdmins": false})).await;
    crate::common::login(&auth, "acme", "root@acme.test", PASSWORD).await;
}

async fn set_status(env: &Env, user: uuid::Uuid, status: &str) {
    // raw SQL: the test flips the owner's status directly.
    let sql = format!("UPDATE users SET status = '{status}' WHERE id = '{user}'");
    crate::common::exec(&env.state, "acme", sql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_authenticate_with_their_own_scopes_and_are_refused_at_once() {
    let env = env_with(|c| {
        c.rate_limit.per_api_key = Quota::new(1, Duration::from_secs(3600), 8);
    })
    .await;
    let auth = env.auth();
    let (bot, bot_token) = user_token(&env, "acme", "bot@acme.test", Role::ApiUser).await;
    let create = |scopes: Value| {
        let env = &env;
        let bot_token = bot_token.clone();
        async move {
            let v = env
                .with(&bot_token)
                .post(
                    201,
                    "/api/v1/t/acme/account/api-keys",
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            (
                v["data"]["key"].as_str().unwrap().to_owned(),
                v["data"]["prefix"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (key, prefix) = create(json!(["portfolio:read"])).await;
    // Stored hashed (SHA-256 of the secret part), shown once.
    let secret = key.strip_prefix(&format!("rk_{prefix}_")).unwrap();
    assert_eq!(
        count(
            &env.state,
            "acme",
            &format!(
                "SELECT count(*) AS n FROM api_keys WHERE prefix = '{prefix}' \
                 AND key_hash = sha256(convert_to('{secret}', 'UTF8'))"
            ),
        )
        .await,
        1
    );
    let listed = env
        .expect_get(200, "/api/v1/t/acme/account/api-keys", &bot_token)
        .await;
    assert!(!listed.to_string().contains(secret));

    // Reads data, through either header; the last use is recorded.
    let portfolios = "/api/v1/t/acme/portfolios";
    let authorization = format!("ApiKey {key}");
    with_key(&env, portfolios, ("authorization", &authorization), 200).await;
    x_api_key(&env, portfolios, &key, 200).await;
    let v = x_api_key(&env, "/api/v1/t/acme/me", &key, 200).await;
    assert_eq!(v["data"]["user"]["id"], bot.to_string());
    assert_eq!(v["data"]["scopes"], json!(["portfolio:read"]));
    assert_eq!(
        count(
            &env.state,
            "acme",
            "SELECT count(*) AS n FROM api_keys WHERE last_used_at IS NOT NULL"
        )
        .await,
        1
    );

    // Beyond its scopes (its owner's role would allow market:read): 403.
    let v = x_api_key(&env, "/api/v1/t/acme/price-alerts", &key, 403).await;
    assert_eq!(code(&v), "forbidden", "{v}");
    // A key does not manage its owner's account (it could mint wider keys).
    let r = env
        .http
        .post(env.url("/api/v1/t/acme/account/api-keys"))
        .header("x-api-key", key.clone())
        .json(&json!({"name": "wider", "scopes": ["portfolio:read", "market:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Another tenant's path: 401, like an unknown key.
    x_api_key(&env, "/api/v1/t/globex/portfolios", &key, 401).await;
    // A wrong secret with a real prefix: 401.
    let forged = format!("rk_{prefix}_{}", "x".repeat(43));
    x_api_key(&env, portfolios, &forged, 401).await;
    // Two different credentials at once: 401.
    let r = env
        .http
        .get(env.url(portfolios))
        .bearer_auth(&bot_token)
        .header("x-api-key", key.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Revoked: refused on the very next request.
    let (revoked, revoked_prefix) = create(json!(["portfolio:read"])).await;
    x_api_key(&env, portfolios, &revoked, 200).await;
    env.with(&bot_token)
        .delete(
            200,
            &format!("/api/v1/t/acme/account/api-keys/{revoked_prefix}"),
        )
        .await;
    x_api_key(&env, portfolios, &revoked, 401).await;

    // Expired: 401.
    let expired = auth
        .create_api_key(
            &acme(),
            bot.into(),
            "old",
            &["portfolio:read".into()],
            Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
            &ClientContext::ip("127.0.0.1"),
        )
        .await
        .unwrap();
    x_api_key(&env, portfolios, &expired.key, 401).await;

    // The owner's role is read on every request: downgraded, the key loses
    // what the new role lacks (trade), keeps what it has.
    let (trade_key, _) = create(json!(["portfolio:read", "trade"])).await;
    let p = auth
        .authenticate_api_key(&acme(), &trade_key)
        .await
        .unwrap();
    assert!(authorize(&p, Permission::TradeExecute).is_ok());
    auth.set_role(&acme(), bot.into(), Role::Viewer)
        .await
        .unwrap();
    let p = auth
        .authenticate_api_key(&acme(), &trade_key)
        .await
        .unwrap();
    assert!(authorize(&p, Permission::TradeExecute).is_err());
    assert!(authorize(&p, Permission::PortfolioRead).is_ok());
    x_api_key(&env, portfolios, &trade_key, 200).await;
    // Disabled owner: 401 at once.
    auth.set_role(&acme(), bot.into(), Role::ApiUser)
        .await
        .unwrap();
    set_status(&env, bot, "disabled").await;
    x_api_key(&env, portfolios, &trade_key, 401).await;

    set_status(&env, bot, "active").await;

    // Each key has its own limit (burst 8 here): the first key used 5 of
    // its requests above; a few more pass, then 429 with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = env
            .http
            .get(env.url(portfolios))
            .header("authorization", format!("ApiKey {key}"))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_log_pages_filters_exports_and_is_for_admins_only() {
    let env = env().await;
    let auth = env.auth();
    let (_, admin) = user_token(&env, "acme", "root@acme.test", Role::Admin).await;
    let (_, trader) = user_token(&env, "acme", "tom@acme.test", Role::Trader).await;
    let (_, viewer) = user_token(&env, "acme", "vera@acme.test", Role::Viewer).await;
    // Events, one with a user agent a spreadsheet would run.
    let mut ctx = ClientContext::ip("127.0.0.1");
    ctx.user_agent = Some("=HYPERLINK(\"http://evil\")".into());
    auth.login(&acme(), "tom@acme.test", "wrong-password-123", &ctx)
        .await
        .unwrap_err();
    crate::common::login(&auth, "acme", "tom@acme.test", PASSWORD).await;

    // Non-admins: 403 (the trader and viewer roles lack audit:read).
    for token in [&trader, &viewer] {
        for path in ["/api/v1/t/acme/audit", "/api/v1/t/acme/audit/export"] {
            let (s, v) = env.get(path, token).await;
            assert_eq!(s, 403, "{path}: {v}");
        }
    }
    // No token, another tenant's admin: 401.
    let (s, _) = env
        .call(Method::GET, "/api/v1/t/acme/audit", None, None)
        .await;
    assert_eq!(s, 401);
    let (_, g_admin) = user_token(&env, "globex", "root@globex.test", Role::Admin).await;
    let (s, _) = env.get("/api/v1/t/acme/audit", &g_admin).await;
    assert_eq!(s, 401);

    // Pages, newest first, without overlap.
    let p1 = env
        .expect_get(200, "/api/v1/t/acme/audit?limit=2", &admin)
        .await;
    let rows1 = p1["data"].as_array().unwrap();
    assert_eq!(rows1.len(), 2);
    let cursor = p1["meta"]["nextCursor"].as_str().unwrap();
    let p2 = env
        .expect_get(
            200,
            &format!("/api/v1/t/acme/audit?limit=2&cursor={cursor}"),
            &admin,
        )
        .await;
    let ids = |rows: &Value| -> Vec<i64> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };
    let (a, b) = (ids(&p1["data"]), ids(&p2["data"]));
    assert!(a[0] > a[1] && a[1] > b[0], "{a:?} {b:?}");
    // Filters: action and result.
    let v = env
        .expect_get(
            200,
            "/api/v1/t/acme/audit?action=login&result=failure",
            &admin,
        )
        .await;
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["result"], "failure");
    // A time range in the future: nothing.
    let v = env
        .expect_get(
            200,
            "/api/v1/t/acme/audit?from=2999-01-01T00:00:00Z",
            &admin,
        )
        .await;
    assert_eq!(v["data"], json!([]));

    // Export as JSON Lines: every row, then the verification.
    let r = env
        .expect_response(200, "/api/v1/t/acme/audit/export?format=jsonl", &admin)
        .await;
    let chain = r.headers()["x-audit-chain"].to_str().unwrap().to_owned();
    assert!(chain.starts_with("verified rows="), "{chain}");
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = count(&env.state, "acme", "SELECT count(*) AS n FROM audit_log").await;
    assert_eq!(lines.len() as i64, total + 1);
    let last = lines.last().unwrap();
    assert_eq!(last["verification"]["firstBroken"], Value::Null);
    assert_eq!(last["verification"]["rows"], total);
    assert!(lines[0]["detail"].is_object());

    // CSV: the formula is neutralised.
    let csv = env
        .expect_csv(
            "/api/v1/t/acme/audit/export?format=csv&action=login",
            &admin,
        )
        .await;
    assert!(csv.starts_with("id,occurred_at,"));
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{csv}"
    );
    assert!(!csv.contains(",=HYPERLINK"), "{csv}");
    let (s, v) = env
        .get("/api/v1/t/acme/audit/export?format=xlsx", &admin)
        .await;
    assert_eq!(s, 400, "{v}");

    // Operators: the same on the admin listener.
    let ops = operator(&env);
    let (s, text) = ops
        .send(
            Method::GET,
            "/admin/tenants/acme/audit/export?format=csv",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(text.contains("'=HYPERLINK"));
    let v = ops
        .expect(
            200,
            Method::GET,
            "/admin/tenants/acme/audit?limit=1",
            None,
            None,
        )
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
}

/// The built-in flags (`monteCarlo`, `priceStream`) are listed with their
/// defaults and gate their routes: off answers 403 `feature_disabled` to an
/// authenticated caller of that tenant only, after authentication (no token
/// is still 401), and on again opens the route.
#[tokio::test(flavor = "multi_thread")]
async fn built_in_feature_flags_gate_their_routes() {
    let env = env().await;
    let (_, admin) = user_token(&env, "acme", "root@acme.test", Role::Admin).await;
    let (_, other) = user_token(&env, "globex", "gil@globex.test", Role::Admin).await;
    let v = env.expect_get(200, "/api/v1/t/acme/features", &admin).await;
    assert_eq!(v["data"]["monteCarlo"], true, "{v}");
    assert_eq!(v["data"]["priceStream"], true, "{v}");

    let id = uuid::Uuid::new_v4();
    let gated = |t: &str| {
        [
            format!("/api/v1/t/{t}/portfolios/{id}/monte-carlo"),
            format!("/api/v1/t/{t}/portfolios/{id}/charts/fan.svg"),
        ]
    };
    let stream = format!("/api/v1/t/acme/portfolios/{id}/stream");
    // On (the default): the routes answer for the portfolio (none here).
    for path in gated("acme") {
        assert_eq!(env.get(&path, &admin).await.0, 404, "{path}");
    }
    assert_eq!(env.get(&stream, &admin).await.0, 404);

    for flag in ["monteCarlo", "priceStream"] {
        env.with(&admin)
            .put(
                200,
                &format!("/api/v1/t/acme/features/{flag}"),
                json!({"enabled": false}),
            )
            .await;
    }
    for path in gated("acme").iter().chain([&stream]) {
        let v = env
            .expect_get_error(403, "feature_disabled", path, &admin)
            .await;
        assert!(v["meta"]["requestId"].is_string(), "{v}");
        let r = env.http.get(env.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a token");
    }
    // Another tenant keeps its own flags.
    for path in gated("globex") {
        assert_eq!(env.get(&path, &other).await.0, 404, "{path}");
    }
    // On again.
    env.with(&admin)
        .put(
            200,
            "/api/v1/t/acme/features/monteCarlo",
            json!({"enabled": true}),
        )
        .await;
    for path in gated("acme") {
        assert_eq!(env.get(&path, &admin).await.0, 404, "{path}");
    }
    assert_eq!(env.get(&stream, &admin).await.0, 403);
}
