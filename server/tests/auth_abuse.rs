//! Abuse paths of issue 13 (auth side) over HTTP and with a real upstream
//! provider: parallel password guessing answered 429 with `Retry-After`,
//! e-mail linking only to verified local accounts, RFC 9207 `iss`.
use rampart_testkit::acme;
use std::collections::HashMap;

use rampart_auth::upstream::UpstreamOutcome;
use rampart_auth::{AuthError, AuthServer, ClientContext, Role, UpstreamProvider};
use rampart_testkit::OidcProvider;
use reqwest::StatusCode;

use crate::common::{PASSWORD, hidden};
use crate::oauth::{Browser, authorize_uri, cookies, idp_sign_in, oauth_env, test_idp};

#[tokio::test(flavor = "multi_thread")]
async fn parallel_wrong_logins_get_429_with_retry_after() {
    let b = std::sync::Arc::new(Browser::new(
        oauth_env(|c| c.public_base_url = "http://127.0.0.1:8080".into()).await,
    ));
    let challenge = crate::common::challenge(crate::common::VERIFIER);
    let r = b
        .get(&authorize_uri("acme", Some(&challenge)))
        .send()
        .await
        .unwrap();
    let csrf_cookie = cookies(&r)
        .into_iter()
        .find(|c| c.name() == "rampart_csrf")
        .unwrap()
        .into_owned();
    let html = r.text().await.unwrap();
    let return_to = hidden(&html, "return_to");
    let csrf = hidden(&html, "csrf");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (b, return_to, csrf) = (b.clone(), return_to.clone(), csrf.clone());
            let cookie = csrf_cookie.clone();
            tokio::spawn(async move {
                let r = b
                    .sign_in("wrong-password-1", &return_to, &csrf, Some(&cookie))
                    .await;
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
                (r.status(), retry_after)
            })
        })
        .collect();
    let mut refused = 0;
    let mut answered = 0;
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::TOO_MANY_REQUESTS, Some(secs)) if secs >= 1 => refused += 1,
            (StatusCode::OK, None) => answered += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let allowed = b.env.auth().config().rate_limit_attempts as usize;
    assert!(
        answered <= allowed,
        "{answered} wrong passwords were checked"
    );
    assert_eq!(refused + answered, 20);
}

/// Registers the test provider for `tenant` with e-mail linking on.
async fn add_linking_provider(auth: &AuthServer, idp: &OidcProvider) {
    let provider = UpstreamProvider {
        new_user_role: Role::Viewer,
        ..test_idp(idp, true)
    };
    auth.add_upstream_provider(&acme(), provider).await.unwrap();
}

/// Signs in at the provider as `name`: (code, state, iss, pending).
async fn upstream_response(auth: &AuthServer, name: &str) -> (HashMap<String, String>, String) {
    let start = auth.begin_login(&acme(), "idp", None).await.unwrap();
    let back = idp_sign_in(&start.authorization_url, name).await;
    (back.query_pairs().into_owned().collect(), start.pending)
}

/// Signs in at the provider as `name` and completes the login at `acme`
/// with what it sent back (`iss` included).
async fn upstream_login(
    auth: &AuthServer,
    name: &str,
    ctx: &ClientContext,
) -> Result<UpstreamOutcome, AuthError> {
    let (q, pending) = upstream_response(auth, name).await;
    let iss = q.get("iss").map(String::as_str);
    auth.complete_login(&acme(), "idp", &q["code"], &q["state"], iss, &pending, ctx)
        .await
}

/// Sets `users.email_verified` for `email` in tenant `acme`.
async fn set_email_verified(env: &crate::common::Env, email: &str, verified: bool) {
    env.state
        .tenants
        .with_tenant(&acme(), async |conn| {
            diesel_async::RunQueryDsl::execute(
                diesel::sql_query("UPDATE users SET email_verified = $1 WHERE email = $2")
                    .bind::<diesel::sql_types::Bool, _>(verified)
                    .bind::<diesel::sql_types::Text, _>(email),
                conn,
            )
            .await
            .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_email_links_only_to_a_verified_local_account() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let env = oauth_env(|_| {}).await;
    let auth = env.auth();
    add_linking_provider(&auth, idp).await;
    let ctx = ClientContext::ip("127.0.0.1");
    // An attacker pre-registers the victim's address (never verified).
    let squatted = auth
        .register(
            &acme(),
            "victim@upstream.example",
            "Squatter",
            PASSWORD,
            Role::Trader,
        )
        .await
        .unwrap();
    // register() is the operator's path and counts as verified; the
    // squatter's self-made account never proved the address.
    set_email_verified(&env, "victim@upstream.example", false).await;
    let r = upstream_login(&auth, "victim", &ctx).await;
    assert!(matches!(r, Err(AuthError::LinkRefused(_))), "{r:?}");
    // Once the local address is verified, the identity links to it.
    set_email_verified(&env, "victim@upstream.example", true).await;
    let done = upstream_login(&auth, "victim", &ctx).await.unwrap();
    assert_eq!(done.user.id, squatted.id);
    assert!(!done.created);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_response_without_or_with_a_wrong_iss_is_refused() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let env = oauth_env(|_| {}).await;
    let auth = env.auth();
    add_linking_provider(&auth, idp).await;
    let ctx = ClientContext::ip("127.0.0.1");
    let (q, pending) = upstream_response(&auth, "iris").await;
    // The provider advertises RFC 9207 and sent iss.
    assert_eq!(q["iss"], idp.issuer());
    for iss in [None, Some("https://evil.example")] {
        let r = auth
            .complete_login(&acme(), "idp", &q["code"], &q["state"], iss, &pending, &ctx)
            .await;
        assert!(
            matches!(r, Err(AuthError::AccessDenied(_))),
            "{iss:?}: {r:?}"
        );
    }
    // The code was not spent by the refusals: with the right iss it works.
    auth.complete_login(
        &acme(),
        "idp",
        &q["code"],
        &q["state"],
        Some(&idp.issuer()),
        &pending,
        &ctx,
    )
    .await
    .unwrap();
}
