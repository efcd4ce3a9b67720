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
use rampart_auth::{AuthConfig, AuthServer, KeyEncryptionKey, KeyRing, MemoryKeyStore, Role, RotationPolicy, SigningAlg};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "https://app.example.com/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9eSB5kbhGOrnxrTpwvrEUpBRP2LqGmmw";
const PASSWORD: &str = "correct-horse-battery-42";

async fn auth_server() -> AuthServer {
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::postgres().unwrap().fresh_database().await.unwrap();
    let pool = rampart_tenancy::TenantPool::connect(rampart_tenancy::TenancyConfig {
        database_url: db.url.clone(),
        max_connections: 8,
        ..Default::default()
    })
    .await
    .unwrap();
    pool.provision("acme", "Acme").await.unwrap();
    pool.provision("globex", "Globex").await.unwrap();
    let config = AuthConfig { argon2_m_kib: 1024, argon2_t: 1, backoff_base_ms: 5, backoff_cap_ms: 40, ..AuthConfig::default() };
    let kek = KeyEncryptionKey::generate();
    let ring = KeyRing::open(Arc::new(MemoryKeyStore::new()), kek.clone(), RotationPolicy::from_config(&config)).await.unwrap();
    let auth = AuthServer::new(pool, config, ring, kek).unwrap();
    auth.register_client("acme", &ClientRegistration {
        client_id: "web".into(),
        name: "Web App".into(),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        allowed_scopes: vec!["openid".into(), "email".into(), "portfolio:read".into()],
        auth_method: ClientAuthMethod::None,
        signing_alg: SigningAlg::ES256,
    })
    .await
    .unwrap();
    auth.register("acme", "ada@example.com", "Ada", PASSWORD, Role::Trader).await.unwrap();
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
            q.append_pair("code_challenge", c).append_pair("code_challenge_method", "S256");
        }
    }
    format!("{}?{}", u.path(), u.query().unwrap())
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&amp;", "&").replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
}

#[actix_web::test]
async fn browser_flow_authorize_login_code_token_refresh_revoke() {
    let auth = web::Data::new(auth_server().await);
    let app = test::init_service(App::new().app_data(auth.clone()).configure(oauth::configure)).await;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));

    // Discovery and JWKS.
    let d: serde_json::Value = test::call_and_read_body_json(&app, test::TestRequest::get().uri("/t/acme/.well-known/openid-configuration").to_request()).await;
    assert_eq!(d["issuer"], auth.issuer("acme"));
    let d2: serde_json::Value = test::call_and_read_body_json(&app, test::TestRequest::get().uri("/t/acme/.well-known/oauth-authorization-server").to_request()).await;
    assert_eq!(d, d2);
    let jwks: serde_json::Value = test::call_and_read_body_json(&app, test::TestRequest::get().uri("/t/acme/jwks.json").to_request()).await;
    assert!(jwks["keys"].as_array().unwrap().len() >= 4);
    let r = test::call_service(&app, test::TestRequest::get().uri("/t/nosuch/.well-known/openid-configuration").to_request()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Missing PKCE → redirect back with invalid_request; wrong redirect → page.
    let r = test::call_service(&app, test::TestRequest::get().uri(&authorize_uri("acme", None)).to_request()).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = r.headers().get("location").unwrap().to_str().unwrap().to_owned();
    assert!(loc.starts_with(REDIRECT) && loc.contains("error=invalid_request") && loc.contains("state=xyz"), "{loc}");
    let bad = authorize_uri("acme", Some(&challenge)).replace("app.example.com", "evil.example.com");
    let r = test::call_service(&app, test::TestRequest::get().uri(&bad).to_request()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // 1. Authorize without a session: the login page.
    let r = test::call_service(&app, test::TestRequest::get().uri(&authorize_uri("acme", Some(&challenge))).to_request()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = String::from_utf8(test::read_body(r).await.to_vec()).unwrap();
    assert!(html.contains("Web App") && html.contains("name=\"password\""));
    let return_to = hidden(&html, "return_to");

    // 2. Wrong password: the form again, no cookie.
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/login")
        .set_form([("email", "ada@example.com"), ("password", "wrong-password-1"), ("return_to", return_to.as_str())]).to_request()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.response().cookies().next().is_none());
    // Open redirect attempt is refused.
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/login")
        .set_form([("email", "ada@example.com"), ("password", PASSWORD), ("return_to", "https://evil.example.com/")]).to_request()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // 3. Right password: session cookie and back to authorize.
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/login")
        .set_form([("email", "ada@example.com"), ("password", PASSWORD), ("return_to", return_to.as_str())]).to_request()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.response().cookies().next().unwrap().into_owned();
    assert!(cookie.http_only().unwrap_or(false));
    let back = r.headers().get("location").unwrap().to_str().unwrap().to_owned();
    assert_eq!(back, return_to);

    // 4. Authorize with the session: redirect with code, state and iss.
    let r = test::call_service(&app, test::TestRequest::get().uri(&back).cookie(cookie.clone()).to_request()).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = url::Url::parse(r.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    let q: HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], auth.issuer("acme"));
    let code = q["code"].clone();

    // 5. Token with a wrong verifier fails; the right one works.
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/token").set_form([
        ("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT),
        ("client_id", "web"), ("code_verifier", &"z".repeat(43)),
    ]).to_request()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: serde_json::Value = test::read_body_json(r).await;
    assert_eq!(e["error"], "invalid_grant");
    // The code was consumed by that attempt; get a new one.
    let r = test::call_service(&app, test::TestRequest::get().uri(&back).cookie(cookie.clone()).to_request()).await;
    let loc = url::Url::parse(r.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    let code: String = loc.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/token").set_form([
        ("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT),
        ("client_id", "web"), ("code_verifier", VERIFIER),
    ]).to_request()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let t: serde_json::Value = test::read_body_json(r).await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    assert!(t["id_token"].is_string());

    // Userinfo with the bearer; the same token at another tenant is refused.
    let info: serde_json::Value = test::call_and_read_body_json(&app, test::TestRequest::get().uri("/t/acme/oauth/userinfo")
        .insert_header(("Authorization", format!("Bearer {access}"))).to_request()).await;
    assert_eq!(info["email"], "ada@example.com");
    let r = test::call_service(&app, test::TestRequest::get().uri("/t/globex/oauth/userinfo")
        .insert_header(("Authorization", format!("Bearer {access}"))).to_request()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // 6. Refresh (rotation).
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/token").set_form([
        ("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("client_id", "web"),
    ]).to_request()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: serde_json::Value = test::read_body_json(r).await;
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh, refresh2);

    // 7. Revoke the new refresh token: the family is gone.
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/revoke")
        .set_form([("token", refresh2.as_str()), ("client_id", "web")]).to_request()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/token").set_form([
        ("grant_type", "refresh_token"), ("refresh_token", refresh2.as_str()), ("client_id", "web"),
    ]).to_request()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: serde_json::Value = test::read_body_json(r).await;
    assert_eq!(e["error"], "invalid_grant");

    // Unsupported grant, unknown client.
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/token")
        .set_form([("grant_type", "password"), ("client_id", "web")]).to_request()).await;
    let e: serde_json::Value = test::read_body_json(r).await;
    assert_eq!(e["error"], "unsupported_grant_type");
    let r = test::call_service(&app, test::TestRequest::post().uri("/t/acme/oauth/token")
        .insert_header(("Authorization", "Basic bm9wZTpub3Bl"))
        .set_form([("grant_type", "client_credentials")]).to_request()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
