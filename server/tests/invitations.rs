//! Invitations and OAuth client management over HTTP against the real
//! server: a member added by an administrator gets in through an
//! invitation; expired, revoked, reused, replaced and unknown links are
//! refused with their own codes; clients are created, rotated, changed,
//! disabled (no more tokens) and deleted by the tenant administrator and the
//! operator; a client of another tenant is unknown here; provisioning on the
//! admin listener invites the first administrator.
use rampart_testkit::acme;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Env, PASSWORD, count, env, get_json, scoped_token, strs, url};

const NEW_PASSWORD: &str = "a-fresh-invited-passphrase";

async fn admin_token(env: &Env, tenant: &str) -> String {
    scoped_token(
        &env.auth(),
        tenant,
        &format!("root@{tenant}.test"),
        rampart_auth::Role::Admin,
        "users:manage tenant:admin",
    )
    .await
    .1
}

/// Invites `email` as `role`: (invitation id, link token).
async fn invite(env: &Env, admin: &str, email: &str, role: &str) -> (String, String) {
    let out = env
        .with(admin)
        .post(
            201,
            "/api/v1/t/acme/invitations",
            json!({"email": email, "role": role}),
        )
        .await;
    let link = out["data"]["acceptUrl"].as_str().unwrap();
    (
        out["data"]["invitation"]["id"].as_str().unwrap().to_owned(),
        link.rsplit('/').next().unwrap().to_owned(),
    )
}

/// Accepting the invitation of `token` on `tenant` with `password` is
/// answered `status`: the body.
async fn accept(env: &Env, tenant: &str, token: &str, password: &str, status: u16) -> Value {
    let path = format!("/api/v1/t/{tenant}/invitations/accept");
    let body = json!({"token": token, "password": password});
    env.expect(status, Method::POST, &path, None, Some(body))
        .await
}

/// Accepting the invitation of `token` on `tenant` (with [`NEW_PASSWORD`])
/// is refused with `status` and the error `code`.
async fn accept_refused(env: &Env, tenant: &str, token: &str, (status, code): (u16, &str)) {
    let body = accept(env, tenant, token, NEW_PASSWORD, status).await;
    assert_eq!(body["error"]["code"], code, "{body}");
}

/// The invitation page of `token` (the link in the mail).
async fn invite_page(env: &Env, token: &str) -> reqwest::Response {
    let page = env.url(&format!("/t/acme/invite/{token}"));
    env.http.get(page).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_added_by_an_admin_gets_in_through_an_invitation() {
    let env = env().await;
    let admin = admin_token(&env, "acme").await;
    env.with(&admin)
        .post(
            201,
            "/api/v1/t/acme/admin/members",
            json!({"name": "Mia Member", "email": "mia@acme.test", "role": "viewer"}),
        )
        .await;
    let auth = env.auth();
    let pending = auth
        .accounts()
        .find_by_email(&acme(), "mia@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.status, "pending");

    // The invitation targets the pending member (no second account) with the chosen role.
    let (_, token) = invite(&env, &admin, "MIA@acme.test", "trader").await;
    let page = invite_page(&env, &token).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("mia@acme.test"));
    // The password policy applies.
    accept(&env, "acme", &token, "short", 400).await;
    let body = accept(&env, "acme", &token, NEW_PASSWORD, 200).await;
    assert_eq!(body["data"]["user"]["role"], "trader");

    let profile = auth.accounts().profile(&acme(), pending.id).await.unwrap();
    assert_eq!(
        (
            profile.status.as_str(),
            profile.role.as_str(),
            profile.email_verified
        ),
        ("active", "trader", true)
    );
    assert_eq!(
        count(
            &env.state,
            "acme",
            "SELECT count(*) AS n FROM users WHERE lower(email) = 'mia@acme.test'"
        )
        .await,
        1
    );
    crate::common::login(&auth, "acme", "mia@acme.test", NEW_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_revoked_reused_replaced_and_unknown_invitations_are_refused() {
    let env = env().await;
    let admin = admin_token(&env, "acme").await;

    // Expired.
    let (id, token) = invite(&env, &admin, "exp@acme.test", "viewer").await;
    env.state
        .tenants
        .with_tenant(&acme(), async |conn| {
            // raw SQL: the test moves an invitation's expiry into the past.
            diesel_async::RunQueryDsl::execute(
                diesel::sql_query(format!(
                    "UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = '{id}'"
                )),
                conn,
            )
            .await
            .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap();
    accept_refused(&env, "acme", &token, (410, "invitation_expired")).await;
    let page = invite_page(&env, &token).await;
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("expired"));

    // Re-sent: a new link works, the old one is dead.
    let out = env
        .expect(
            200,
            Method::POST,
            &format!("/api/v1/t/acme/invitations/{id}/resend"),
            Some(&admin),
            None,
        )
        .await;
    let fresh = out["data"]["acceptUrl"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, token);
    accept_refused(&env, "acme", &token, (404, "invitation_invalid")).await;
    accept(&env, "acme", &fresh, NEW_PASSWORD, 200).await;

    // Reused: the same answer every time, nothing created.
    for _ in 0..2 {
        accept_refused(&env, "acme", &fresh, (409, "invitation_used")).await;
    }
    let resend = format!("/api/v1/t/acme/invitations/{id}/resend");
    let used = (409, "invitation_used");
    env.expect_error(used, Method::POST, &resend, Some(&admin), None)
        .await;

    // Revoked.
    let (id, token) = invite(&env, &admin, "rev@acme.test", "viewer").await;
    let out = env
        .with(&admin)
        .delete(200, &format!("/api/v1/t/acme/invitations/{id}"))
        .await;
    assert_eq!(out["data"]["status"], "revoked");
    accept_refused(&env, "acme", &token, (410, "invitation_revoked")).await;

    // Unknown, malformed, and a token of this tenant used at another one.
    let (_, token) = invite(&env, &admin, "moved@acme.test", "viewer").await;
    let invalid = (404, "invitation_invalid");
    accept_refused(&env, "globex", &token, invalid).await;
    let forged = format!("{}.AAAA", token.split('.').next().unwrap());
    for bad in ["nonsense", forged.as_str()] {
        accept_refused(&env, "acme", bad, invalid).await;
    }

    // An active user's address cannot be invited again.
    let again = json!({"email": "exp@acme.test", "role": "admin"});
    let invitations = "/api/v1/t/acme/invitations";
    env.expect_error(
        (409, "conflict"),
        Method::POST,
        invitations,
        Some(&admin),
        Some(again),
    )
    .await;
    // A non-admin may not invite.
    let (_, viewer) = scoped_token(
        &env.auth(),
        "acme",
        "vic@acme.test",
        rampart_auth::Role::Viewer,
        "portfolio:read",
    )
    .await;
    env.with(&viewer)
        .post(
            403,
            invitations,
            json!({"email": "x@acme.test", "role": "admin"}),
        )
        .await;
}

/// A `client_credentials` token request with HTTP Basic: the status.
async fn client_token(env: &Env, tenant: &str, id: &str, secret: &str) -> u16 {
    env.http
        .post(env.url(&format!("/t/{tenant}/oauth/token")))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=market%3Aread")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_are_managed_over_http_and_a_disabled_client_gets_no_tokens() {
    let env = env().await;
    let admin = admin_token(&env, "acme").await;
    // A trader may not manage clients (token first: the test changes `web` below).
    let (_, trader) = scoped_token(
        &env.auth(),
        "acme",
        "tim@acme.test",
        rampart_auth::Role::Trader,
        "portfolio:read",
    )
    .await;
    let (s, _) = env.get("/api/v1/t/acme/clients", &trader).await;
    assert_eq!(s, 403);
    let created = env
        .with(&admin)
        .post(
            201,
            "/api/v1/t/acme/clients",
            json!({
                "clientId": "batch", "name": "Batch job", "confidential": true,
                "grantTypes": ["client_credentials"], "allowedScopes": ["market:read"]
            }),
        )
        .await;
    let secret = created["data"]["clientSecret"].as_str().unwrap().to_owned();
    assert_eq!(
        created["data"]["client"]["authMethod"],
        "client_secret_basic"
    );
    assert_eq!(client_token(&env, "acme", "batch", &secret).await, 200);
    let shown = env
        .expect_get(200, "/api/v1/t/acme/clients/batch", &admin)
        .await;
    assert!(!shown.to_string().contains(&secret), "never shown again");
    let listed = env.expect_get(200, "/api/v1/t/acme/clients", &admin).await;
    let ids = strs(&listed["data"], "clientId");
    assert_eq!(ids, ["batch", "web"]);

    // Rotation: the old secret stops working at once.
    let rotated = env
        .expect(
            200,
            Method::POST,
            "/api/v1/t/acme/clients/batch/secret",
            Some(&admin),
            None,
        )
        .await;
    let new_secret = rotated["data"]["clientSecret"].as_str().unwrap();
    assert_eq!(client_token(&env, "acme", "batch", &secret).await, 401);
    assert_eq!(client_token(&env, "acme", "batch", new_secret).await, 200);
    let (s, body) = env
        .call(
            Method::POST,
            "/api/v1/t/acme/clients/web/secret",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 400, "a public client has no secret: {body}");

    // Update redirect URIs and scopes; unknown scopes are refused.
    let updated = env
        .with(&admin).patch(200, "/api/v1/t/acme/clients/web", json!({"redirectUris": ["https://new.example.com/cb"], "allowedScopes": ["openid", "offline_access"]}))
        .await;
    assert_eq!(
        updated["data"]["redirectUris"],
        json!(["https://new.example.com/cb"])
    );
    assert_eq!(
        updated["data"]["allowedScopes"],
        json!(["openid", "offline_access"])
    );
    let (s, _) = env
        .call(
            Method::PATCH,
            "/api/v1/t/acme/clients/web",
            Some(&admin),
            Some(json!({"allowedScopes": ["root"]})),
        )
        .await;
    assert_eq!(s, 400);

    // Disabled: no more tokens.
    let disabled = env
        .expect(
            200,
            Method::POST,
            "/api/v1/t/acme/clients/batch/disable",
            Some(&admin),
            None,
        )
        .await;
    assert!(disabled["data"]["disabledAt"].is_string());
    assert_eq!(client_token(&env, "acme", "batch", new_secret).await, 401);

    // The operator sees and deletes it on the admin listener.
    let operator = env.pki.client(Some(&env.pki.operator()));
    let batch = url(env.server.admin_addr, "/admin/t/acme/clients/batch");
    let on_admin = get_json(&operator, &batch).await;
    assert_eq!(on_admin["data"]["clientId"], "batch", "{on_admin}");
    let deleted = operator
        .delete(url(env.server.admin_addr, "/admin/t/acme/clients/batch"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let (s, _) = env.get("/api/v1/t/acme/clients/batch", &admin).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_of_another_tenant_is_unknown_here() {
    let env = env().await;
    let admin = admin_token(&env, "globex").await;
    let created = env
        .with(&admin)
        .post(
            201,
            "/api/v1/t/globex/clients",
            json!({
                "clientId": "globex-only", "name": "Globex app", "confidential": true,
                "grantTypes": ["client_credentials", "authorization_code"],
                "redirectUris": ["https://globex.example.com/cb"],
                "allowedScopes": ["market:read", "openid"]
            }),
        )
        .await;
    let secret = created["data"]["clientSecret"].as_str().unwrap();
    assert_eq!(
        client_token(&env, "globex", "globex-only", secret).await,
        200
    );
    assert_eq!(client_token(&env, "acme", "globex-only", secret).await, 401);
    let authorize = env
        .http
        .get(env.url(
            "/t/acme/oauth/authorize?response_type=code&client_id=globex-only\
             &redirect_uri=https%3A%2F%2Fglobex.example.com%2Fcb&scope=openid&state=s\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        authorize.status(),
        400,
        "no redirect to another tenant's client"
    );
    let admin_acme = admin_token(&env, "acme").await;
    let (s, _) = env
        .get("/api/v1/t/acme/clients/globex-only", &admin_acme)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_on_the_admin_listener_invites_the_first_admin() {
    let env = env().await;
    let operator = env.pki.client(Some(&env.pki.operator()));
    let r = operator
        .post(url(env.server.admin_addr, "/admin/tenants"))
        .json(&json!({"slug": "initech", "display_name": "Initech", "admin_email": "boss@initech.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["slug"], "initech", "{body}");
    assert_eq!(
        body["data"]["invitation"]["invitation"]["role"], "admin",
        "{body}"
    );
    let link = body["data"]["invitation"]["acceptUrl"].as_str().unwrap();
    let token = link.rsplit('/').next().unwrap();
    accept(&env, "initech", token, PASSWORD, 200).await;
    crate::common::login(&env.auth(), "initech", "boss@initech.test", PASSWORD).await;
}
