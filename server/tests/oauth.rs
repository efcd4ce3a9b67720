//! The browser-style OAuth flow over HTTP against real PostgreSQL:
//! authorize → login form → code → token → refresh → revoke, plus refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../src/routes/oauth.rs"]
mod oauth;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use base64::Engine;
use rampart_auth::oauth::{ClientAuthMethod, ClientRegistration};
use rampart_auth::{
    AuthConfig, AuthServer, KeyEncryptionKey, KeyRing, MemoryKeyStore, Role, RotationPolicy,
    SigningAlg,
};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "https://app.example.com/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9eSB5kbhGOrnxrTpwvrEUpBRP2LqGmmw";
const PASSWORD: &str = "correct-horse-battery-42";

async fn auth_server() -> AuthServer {
    auth_server_at("http://127.0.0.1:8080").await
}

/// An AuthServer whose issuers are under `base_url`.
async fn auth_server_at(base_url: &str) -> AuthServer {
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::postgres()
        .unwrap()
        .fresh_database()
        .await
        .unwrap();
    let pool = rampart_tenancy::TenantPool::connect(rampart_tenancy::TenancyConfig {
        database_url: db.url.clone(),
        max_connections: 8,
        ..Default::default()
    })
    .await
    .unwrap();
    pool.provision("acme", "Acme").await.unwrap();
    pool.provision("globex", "Globex").await.unwrap();
    let config = AuthConfig {
        public_base_url: base_url.to_owned(),
        argon2_m_kib: 1024,
        argon2_t: 1,
        backoff_base_ms: 5,
        backoff_cap_ms: 40,
        ..AuthConfig::default()
    };
    let kek = KeyEncryptionKey::generate();
    let ring = KeyRing::open(
        Arc::new(MemoryKeyStore::new()),
        kek.clone(),
        RotationPolicy::from_config(&config),
    )
    .await
    .unwrap();
    let auth = AuthServer::new(pool, config, ring, kek).unwrap();
    auth.register_client(
        "acme",
        &ClientRegistration {
            client_id: "web".into(),
            name: "Web App".into(),
            redirect_uris: vec![REDIRECT.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            allowed_scopes: vec!["openid".into(), "email".into(), "portfolio:read".into()],
            auth_method: ClientAuthMethod::None,
            signing_alg: SigningAlg::ES256,
        },
    )
    .await
    .unwrap();
    auth.register("acme", "ada@example.com", "Ada", PASSWORD, Role::Trader)
        .await
        .unwrap();
    auth
}

fn authorize_uri(tenant: &str, challenge: Option<&str>) -> String {
    let mut u = url::Url::parse(&format!("http://x/t/{tenant}/oauth/authorize")).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", "web")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid email portfolio:read")
            .append_pair("state", "xyz")
            .append_pair("nonce", "n-1");
        if let Some(c) = challenge {
            q.append_pair("code_challenge", c)
                .append_pair("code_challenge_method", "S256");
        }
    }
    format!("{}?{}", u.path(), u.query().unwrap())
}

/// A token of the same shape as `token` but different.
fn new_token_like(token: &str) -> String {
    let mut t: Vec<char> = token.chars().collect();
    t[0] = if t[0] == 'A' { 'B' } else { 'A' };
    t.into_iter().collect()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

#[actix_web::test]
async fn browser_flow_authorize_login_code_token_refresh_revoke() {
    let auth = web::Data::new(auth_server().await);
    let app = test::init_service(
        App::new()
            .app_data(auth.clone())
            .configure(oauth::configure),
    )
    .await;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(VERIFIER.as_bytes()));

    // Discovery and JWKS.
    let d: serde_json::Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/t/acme/.well-known/openid-configuration")
            .to_request(),
    )
    .await;
    assert_eq!(d["issuer"], auth.issuer("acme"));
    let d2: serde_json::Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/t/acme/.well-known/oauth-authorization-server")
            .to_request(),
    )
    .await;
    assert_eq!(d, d2);
    let jwks: serde_json::Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/t/acme/jwks.json")
            .to_request(),
    )
    .await;
    assert!(jwks["keys"].as_array().unwrap().len() >= 4);
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/t/nosuch/.well-known/openid-configuration")
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Missing PKCE → redirect back with invalid_request; wrong redirect → page.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&authorize_uri("acme", None))
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        loc.starts_with(REDIRECT)
            && loc.contains("error=invalid_request")
            && loc.contains("state=xyz"),
        "{loc}"
    );
    let bad =
        authorize_uri("acme", Some(&challenge)).replace("app.example.com", "evil.example.com");
    let r = test::call_service(&app, test::TestRequest::get().uri(&bad).to_request()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // 1. Authorize without a session: the login page.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&authorize_uri("acme", Some(&challenge)))
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csrf_cookie = r
        .response()
        .cookies()
        .find(|c| c.name() == "rampart_csrf")
        .unwrap()
        .into_owned();
    assert!(csrf_cookie.http_only().unwrap_or(false));
    assert_eq!(
        csrf_cookie.same_site(),
        Some(actix_web::cookie::SameSite::Strict)
    );
    assert_eq!(csrf_cookie.path(), Some("/t/acme/oauth"));
    let html = String::from_utf8(test::read_body(r).await.to_vec()).unwrap();
    assert!(html.contains("Web App") && html.contains("name=\"password\""));
    let return_to = hidden(&html, "return_to");
    let csrf = hidden(&html, "csrf");
    assert_eq!(csrf, csrf_cookie.value());

    // 2a. No CSRF cookie, or a token that is not the cookie's: refused with
    // the form again (400), no session.
    for (cookie, token) in [
        (None, csrf.clone()),
        (Some(csrf_cookie.clone()), String::new()),
        (Some(csrf_cookie.clone()), new_token_like(&csrf)),
    ] {
        let mut req = test::TestRequest::post().uri("/t/acme/oauth/login");
        if let Some(c) = cookie {
            req = req.cookie(c);
        }
        let r = test::call_service(
            &app,
            req.set_form([
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("return_to", return_to.as_str()),
                ("csrf", token.as_str()),
            ])
            .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(
            r.response()
                .cookies()
                .all(|c| c.name() != "rampart_session_acme")
        );
        let html = String::from_utf8(test::read_body(r).await.to_vec()).unwrap();
        assert!(html.contains("name=\"password\"") && html.contains("expired"));
    }
    // And the MFA form the same way.
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/mfa")
            .set_form([
                ("challenge", "x"),
                ("code", "123456"),
                ("return_to", return_to.as_str()),
                ("csrf", csrf.as_str()),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // 2. Wrong password: the form again, no cookie.
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/login")
            .cookie(csrf_cookie.clone())
            .set_form([
                ("email", "ada@example.com"),
                ("password", "wrong-password-1"),
                ("return_to", return_to.as_str()),
                ("csrf", csrf.as_str()),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.response().cookies().next().is_none());
    // Open redirect attempt is refused.
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/login")
            .set_form([
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("return_to", "https://evil.example.com/"),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // 3. Right password: session cookie and back to authorize.
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/login")
            .cookie(csrf_cookie.clone())
            .set_form([
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("return_to", return_to.as_str()),
                ("csrf", csrf.as_str()),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.response().cookies().next().unwrap().into_owned();
    assert!(cookie.http_only().unwrap_or(false));
    let back = r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(back, return_to);

    // 4. Authorize with the session: redirect with code, state and iss.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&back)
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = url::Url::parse(r.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    let q: HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], auth.issuer("acme"));
    let code = q["code"].clone();

    // 5. Token with a wrong verifier fails; the right one works.
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/token")
            .set_form([
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("client_id", "web"),
                ("code_verifier", &"z".repeat(43)),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: serde_json::Value = test::read_body_json(r).await;
    assert_eq!(e["error"], "invalid_grant");
    // The code was consumed by that attempt; get a new one.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&back)
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    let loc = url::Url::parse(r.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    let code: String = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/token")
            .set_form([
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("client_id", "web"),
                ("code_verifier", VERIFIER),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let t: serde_json::Value = test::read_body_json(r).await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    assert!(t["id_token"].is_string());

    // Userinfo with the bearer; the same token at another tenant is refused.
    let info: serde_json::Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/t/acme/oauth/userinfo")
            .insert_header(("Authorization", format!("Bearer {access}")))
            .to_request(),
    )
    .await;
    assert_eq!(info["email"], "ada@example.com");
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/t/globex/oauth/userinfo")
            .insert_header(("Authorization", format!("Bearer {access}")))
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // 6. Refresh (rotation).
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/token")
            .set_form([
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", "web"),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: serde_json::Value = test::read_body_json(r).await;
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh, refresh2);

    // 7. Revoke the new refresh token: the family is gone.
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/revoke")
            .set_form([("token", refresh2.as_str()), ("client_id", "web")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/token")
            .set_form([
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh2.as_str()),
                ("client_id", "web"),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: serde_json::Value = test::read_body_json(r).await;
    assert_eq!(e["error"], "invalid_grant");

    // Unsupported grant, unknown client.
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/token")
            .set_form([("grant_type", "password"), ("client_id", "web")])
            .to_request(),
    )
    .await;
    let e: serde_json::Value = test::read_body_json(r).await;
    assert_eq!(e["error"], "unsupported_grant_type");
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/token")
            .insert_header(("Authorization", "Basic bm9wZTpub3Bl"))
            .set_form([("grant_type", "client_credentials")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// Drives oidc-provider's development login like a browser (any name, then
/// consent) and returns the redirect to our callback.
async fn idp_sign_in(authorization_url: &str, name: &str) -> url::Url {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut cookies: HashMap<String, String> = HashMap::new();
    let mut url = url::Url::parse(authorization_url).unwrap();
    let idp_port = url.port();
    let mut form: Option<String> = None;
    for _ in 0..20 {
        let jar = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match form.take() {
            Some(body) => http
                .post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            None => http.get(url.clone()),
        };
        let resp = req.header("cookie", jar).send().await.unwrap();
        for set in resp.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                cookies.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        if resp.status().is_redirection() {
            let next = url
                .join(resp.headers()["location"].to_str().unwrap())
                .unwrap();
            if next.port() != idp_port {
                return next;
            }
            url = next;
            continue;
        }
        let status = resp.status();
        let html = resp.text().await.unwrap();
        assert_eq!(status, 200, "{html}");
        let start = html.find("action=\"").expect("a form") + 8;
        let action = &html[start..start + html[start..].find('"').unwrap()];
        url = url.join(action).unwrap();
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        if html.contains("name=\"login\"") {
            body.append_pair("prompt", "login")
                .append_pair("login", name)
                .append_pair("password", "any");
        } else {
            assert!(html.contains("value=\"consent\""), "{html}");
            body.append_pair("prompt", "consent");
        }
        form = Some(body.finish());
    }
    panic!("no redirect to the callback");
}

fn path_and_query(u: &url::Url) -> String {
    format!("{}?{}", u.path(), u.query().unwrap_or(""))
}

#[actix_web::test]
async fn upstream_openid_login_links_the_identity_and_continues_the_flow() {
    use rampart_auth::UpstreamProvider;
    use rampart_testkit::OidcProvider;
    let idp = rampart_testkit::oidc_provider().unwrap();
    let auth = web::Data::new(auth_server().await);
    // The port of a loopback redirect may vary (native client); the test
    // service never listens, so any port will do.
    let callback = "http://127.0.0.1:9/t/acme/login/upstream/idp/callback".to_owned();
    auth.add_upstream_provider(
        "acme",
        UpstreamProvider {
            name: "idp".into(),
            display_name: "Test IdP".into(),
            issuer: idp.issuer(),
            client_id: OidcProvider::CLIENT_ID.into(),
            client_secret: None,
            redirect_uri: callback.clone(),
            scopes: vec!["email".into(), "profile".into()],
            link_verified_email: false,
            new_user_role: Role::Viewer,
        },
    )
    .await
    .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(auth.clone())
            .configure(oauth::configure),
    )
    .await;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(VERIFIER.as_bytes()));

    // The login page offers the provider, carrying the authorize request.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&authorize_uri("acme", Some(&challenge)))
            .to_request(),
    )
    .await;
    let html = String::from_utf8(test::read_body(r).await.to_vec()).unwrap();
    assert!(html.contains("Sign in with Test IdP"), "{html}");
    let return_to = hidden(&html, "return_to");
    let start_uri = format!(
        "/t/acme/login/upstream/idp?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &return_to)
            .finish()
    );
    // An open redirect through return_to is refused.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/t/acme/login/upstream/idp?return_to=https%3A%2F%2Fevil.example%2F")
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/t/acme/login/upstream/nosuch")
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let begin = |app_uri: String| test::TestRequest::get().uri(&app_uri).to_request();
    let r = test::call_service(&app, begin(start_uri.clone())).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let pending = r.response().cookies().next().unwrap().into_owned();
    assert!(pending.http_only().unwrap_or(false));
    let to_idp = url::Url::parse(r.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    let q: HashMap<_, _> = to_idp.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], callback);
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    assert!(q["state"].len() >= 32 && q["nonce"].len() >= 32);

    // The provider's login page (any name) and consent, then our callback.
    let back = idp_sign_in(to_idp.as_str(), "grace").await;
    let bq: HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(bq["state"], q["state"]);
    assert_eq!(bq["iss"], idp.issuer());

    // Refusals first (none consumes the code): no pending cookie, wrong state,
    // a response claiming another issuer.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&path_and_query(&back))
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let wrong_state =
        path_and_query(&back).replace(&format!("state={}", bq["state"]), "state=forged");
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&wrong_state)
            .cookie(pending.clone())
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut other_iss = back.clone();
    other_iss
        .query_pairs_mut()
        .clear()
        .extend_pairs(bq.iter().map(|(k, v)| {
            (
                k.as_str(),
                if k == "iss" {
                    "https://evil.example"
                } else {
                    v.as_str()
                },
            )
        }));
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&path_and_query(&other_iss))
            .cookie(pending.clone())
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The real callback: session cookie, back to the authorize request.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&path_and_query(&back))
            .cookie(pending.clone())
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers().get("location").unwrap().to_str().unwrap(),
        return_to
    );
    let session = r
        .response()
        .cookies()
        .find(|c| c.name() == "rampart_session_acme")
        .unwrap()
        .into_owned();
    // The same code again: the provider refuses it.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&path_and_query(&back))
            .cookie(pending.clone())
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The authorize request goes on with the upstream session: code → tokens
    // for the linked local user.
    let r = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&return_to)
            .cookie(session)
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = url::Url::parse(r.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    let code: String = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let r = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/t/acme/oauth/token")
            .set_form([
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("client_id", "web"),
                ("code_verifier", VERIFIER),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: serde_json::Value = test::read_body_json(r).await;
    let info: serde_json::Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/t/acme/oauth/userinfo")
            .insert_header((
                "Authorization",
                format!("Bearer {}", t["access_token"].as_str().unwrap()),
            ))
            .to_request(),
    )
    .await;
    assert_eq!(info["email"], "grace@upstream.example");
    let first_user = info["sub"].clone();

    // A second login with the same upstream account finds the same user.
    let r = test::call_service(&app, begin(start_uri.clone())).await;
    let pending = r.response().cookies().next().unwrap().into_owned();
    let back = idp_sign_in(
        r.headers().get("location").unwrap().to_str().unwrap(),
        "grace",
    )
    .await;
    let ctx = rampart_auth::ClientContext::ip("127.0.0.1");
    let q: HashMap<_, _> = back.query_pairs().into_owned().collect();
    let done = auth
        .complete_login(
            "acme",
            "idp",
            &q["code"],
            &q["state"],
            Some(&idp.issuer()),
            pending.value(),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!done.created);
    assert_eq!(serde_json::json!(done.user.id.to_string()), first_user);
    // Another upstream account is another local user; a pending login of
    // one provider cannot finish at another tenant.
    let r = test::call_service(&app, begin(start_uri)).await;
    let pending = r.response().cookies().next().unwrap().into_owned();
    let back = idp_sign_in(
        r.headers().get("location").unwrap().to_str().unwrap(),
        "alan",
    )
    .await;
    let q: HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert!(matches!(
        auth.complete_login(
            "globex",
            "idp",
            &q["code"],
            &q["state"],
            None,
            pending.value(),
            &ctx
        )
        .await,
        Err(rampart_auth::AuthError::AccessDenied(_))
    ));
    let done = auth
        .complete_login(
            "acme",
            "idp",
            &q["code"],
            &q["state"],
            None,
            pending.value(),
            &ctx,
        )
        .await
        .unwrap();
    assert!(done.created);
    assert_eq!(done.user.email, "alan@upstream.example");
    assert_ne!(serde_json::json!(done.user.id.to_string()), first_user);
}

/// The project venv's Python with Authlib, or an error saying how to get it.
fn authlib_python() -> std::path::PathBuf {
    let python = rampart_testkit::repo_root().join(".venv/bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import authlib, joserfc, requests"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "Python with Authlib is missing: `python3 -m venv .venv && .venv/bin/pip install authlib requests`, or run ./scripts/test, which does"
    );
    python
}

/// A real third-party client (Python Authlib) against the server on a real
/// port: discovery, PKCE S256 through the login form, code exchange,
/// refresh, revocation, and the access token checked against our JWKS.
#[actix_web::test]
async fn authlib_client_drives_the_code_flow() {
    let python = authlib_python();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let auth = web::Data::new(auth_server_at(&base).await);
    auth.register_client(
        "acme",
        &ClientRegistration {
            client_id: "authlib".into(),
            name: "Authlib".into(),
            // A loopback redirect: the port may vary (RFC 8252).
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            allowed_scopes: vec!["openid".into(), "email".into()],
            auth_method: ClientAuthMethod::None,
            signing_alg: SigningAlg::ES256,
        },
    )
    .await
    .unwrap();
    let served = auth.clone();
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .app_data(served.clone())
            .configure(oauth::configure)
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authlib_client.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(auth.issuer("acme"))
        .args([
            "authlib",
            "http://127.0.0.1:53117/cb",
            "ada@example.com",
            PASSWORD,
        ])
        .output()
        .await
        .unwrap();
    handle.stop(true).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "authlib client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(result["alg"], "ES256");
}

const REFRESH_LUA: &str = r#"
-- Each thread rotates its own refresh tokens: pop one, send it, push the
-- successor from the response.
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  queue = {}
  local per, first, i = tonumber(args[2]), id * tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if i >= first and i < first + per then table.insert(queue, line) end
    i = i + 1
  end
end
function request()
  local t = table.remove(queue, 1)
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"},
    "grant_type=refresh_token&client_id=web&refresh_token=" .. t)
end
function response(status, headers, body)
  local t = body:match('"refresh_token":"([^"]+)"')
  if t then table.insert(queue, t) end
end
"#;

fn post_lua(body: &str, extra_header: Option<(&str, &str)>) -> String {
    let extra = extra_header
        .map(|(k, v)| format!("wrk.headers[\"{k}\"] = \"{v}\"\n"))
        .unwrap_or_default();
    format!(
        "wrk.method = \"POST\"\nwrk.body = \"{body}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n{extra}"
    )
}

/// Runs wrk and returns (requests/s, full output).
async fn wrk(
    url: &str,
    script: &std::path::Path,
    connections: u32,
    seconds: u32,
    args: &[&str],
) -> (f64, String) {
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
        "-s",
    ])
    .arg(script)
    .arg(url);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    let out = cmd
        .output()
        .await
        .expect("wrk is missing: `apt-get install -y wrk`");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk output:\n{text}"));
    (rps, text)
}

/// HTTP throughput of the token endpoint (refresh grant), introspection and
/// login (Argon2id with the production parameters) against this server on a
/// real port, measured with wrk. A measurement, not a pass/fail test:
/// `cargo test --release -p rampart-server --test oauth -- --ignored --nocapture http_throughput`
#[actix_web::test]
#[ignore = "load measurement: run with --release, needs wrk (apt-get install -y wrk)"]
async fn http_throughput() {
    assert!(
        std::process::Command::new("wrk").arg("-v").output().is_ok(),
        "wrk is missing: `apt-get install -y wrk`"
    );
    rampart_testkit::install_crypto_provider();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let db = rampart_testkit::postgres()
        .unwrap()
        .fresh_database()
        .await
        .unwrap();
    let pool = rampart_tenancy::TenantPool::connect(rampart_tenancy::TenancyConfig {
        database_url: db.url.clone(),
        max_connections: 16,
        ..Default::default()
    })
    .await
    .unwrap();
    pool.provision("acme", "Acme").await.unwrap();
    // Production Argon2id parameters (m = 19 MiB, t = 2, p = 1).
    let config = AuthConfig {
        public_base_url: base.clone(),
        ..AuthConfig::default()
    };
    let kek = KeyEncryptionKey::generate();
    let ring = KeyRing::open(
        Arc::new(MemoryKeyStore::new()),
        kek.clone(),
        RotationPolicy::from_config(&config),
    )
    .await
    .unwrap();
    let auth = web::Data::new(AuthServer::new(pool, config, ring, kek).unwrap());
    auth.register_client(
        "acme",
        &ClientRegistration {
            client_id: "web".into(),
            name: "Web App".into(),
            redirect_uris: vec![REDIRECT.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            allowed_scopes: vec!["openid".into(), "email".into(), "portfolio:read".into()],
            auth_method: ClientAuthMethod::None,
            signing_alg: SigningAlg::ES256,
        },
    )
    .await
    .unwrap();
    let rs_secret = auth
        .register_client(
            "acme",
            &ClientRegistration {
                client_id: "rs".into(),
                name: "Resource server".into(),
                redirect_uris: vec![],
                grant_types: vec!["client_credentials".into()],
                allowed_scopes: vec![],
                auth_method: ClientAuthMethod::ClientSecretBasic,
                signing_alg: SigningAlg::ES256,
            },
        )
        .await
        .unwrap()
        .unwrap();
    auth.register("acme", "ada@example.com", "Ada", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let served = auth.clone();
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .app_data(served.clone())
            .configure(oauth::configure)
    })
    .workers(cores)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    // Refresh tokens to rotate: code flows through HTTP.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = match auth
        .login(
            "acme",
            "ada@example.com",
            PASSWORD,
            &rampart_auth::ClientContext::ip("127.0.0.1"),
        )
        .await
        .unwrap()
    {
        rampart_auth::accounts::LoginOutcome::LoggedIn(s) => s.token,
        other => panic!("{other:?}"),
    };
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(VERIFIER.as_bytes()));
    let authorize = format!("{base}{}", authorize_uri("acme", Some(&challenge)));
    let connections = 32;
    let mut refresh_tokens = Vec::new();
    let mut access = String::new();
    for _ in 0..connections * 2 {
        let r = http
            .get(&authorize)
            .header("cookie", format!("rampart_session_acme={session}"))
            .send()
            .await
            .unwrap();
        let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        let code = loc
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", &code)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("client_id", "web")
            .append_pair("code_verifier", VERIFIER)
            .finish();
        let t: serde_json::Value = http
            .post(format!("{base}/t/acme/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        refresh_tokens.push(t["refresh_token"].as_str().unwrap().to_owned());
        access = t["access_token"].as_str().unwrap().to_owned();
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens_file = dir.path().join("refresh_tokens.txt");
    std::fs::write(&tokens_file, refresh_tokens.join("\n") + "\n").unwrap();
    let refresh_lua = dir.path().join("refresh.lua");
    std::fs::write(&refresh_lua, REFRESH_LUA).unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("rs:{rs_secret}"));
    let introspect_lua = dir.path().join("introspect.lua");
    std::fs::write(
        &introspect_lua,
        post_lua(
            &format!("token={access}"),
            Some(("Authorization", &format!("Basic {basic}"))),
        ),
    )
    .unwrap();
    let return_to = authorize_uri("acme", Some(&challenge));
    let login_body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("email", "ada@example.com")
        .append_pair("password", PASSWORD)
        .append_pair("return_to", &return_to)
        .append_pair("csrf", "load-test-csrf-token")
        .finish();
    let login_lua = dir.path().join("login.lua");
    // Double submit: the form field and the cookie carry the same value.
    std::fs::write(
        &login_lua,
        post_lua(
            &login_body,
            Some(("Cookie", "rampart_csrf=load-test-csrf-token")),
        ),
    )
    .unwrap();

    let per_thread = (connections * 2).to_string();
    let (refresh_rps, refresh_out) = wrk(
        &format!("{base}/t/acme/oauth/token"),
        &refresh_lua,
        connections,
        10,
        &[tokens_file.to_str().unwrap(), &per_thread],
    )
    .await;
    let (introspect_rps, introspect_out) = wrk(
        &format!("{base}/t/acme/oauth/introspect"),
        &introspect_lua,
        connections,
        10,
        &[],
    )
    .await;
    // Argon2id bound: one hash per login, `cores` hashes at a time, so the
    // bound is the rate of `cores` threads doing nothing but hashing (single
    // hash time reported too).
    let hasher = auth.hasher().clone();
    let (hash_ms, bound) = tokio::task::spawn_blocking(move || {
        hasher.hash_blocking(PASSWORD).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..10 {
            hasher.hash_blocking(PASSWORD).unwrap();
        }
        let one = start.elapsed().as_secs_f64() * 1000.0 / 10.0;
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..cores {
                s.spawn(|| {
                    for _ in 0..20 {
                        hasher.hash_blocking(PASSWORD).unwrap();
                    }
                });
            }
        });
        (one, (cores * 20) as f64 / start.elapsed().as_secs_f64())
    })
    .await
    .unwrap();
    let (login_rps, login_out) = wrk(
        &format!("{base}/t/acme/oauth/login"),
        &login_lua,
        8,
        10,
        &[],
    )
    .await;
    handle.stop(true).await;
    println!(
        "--- refresh grant\n{refresh_out}\n--- introspection\n{introspect_out}\n--- login\n{login_out}"
    );
    println!(
        "RESULT refresh {refresh_rps:.0}/s, introspection {introspect_rps:.0}/s, login {login_rps:.0}/s; \
         Argon2id {hash_ms:.1} ms/hash, {cores} threads hashing {bound:.0}/s ({:.0} % of that bound)",
        login_rps * 100.0 / bound
    );
    for out in [&refresh_out, &introspect_out, &login_out] {
        assert!(!out.contains("Non-2xx"), "errors under load:\n{out}");
    }
}
