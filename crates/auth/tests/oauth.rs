//! The OAuth 2.1 service layer against real PostgreSQL.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rampart_auth::accounts::LoginOutcome;
use rampart_auth::oauth::{
    AuthorizeError, AuthorizeRequest, ClientAuthMethod, ClientCredentials, ClientRegistration,
    TokenRequest, TokenResponse, redirect_uri_matches,
};
use rampart_auth::{AuthError, AuthServer, Role, SigningAlg};
use rampart_testkit::{acme, globex, valid_slug};
use sha2::{Digest, Sha256};

use crate::common::{PASSWORD, ctx, server};

pub(crate) const REDIRECT: &str = "https://app.example.com/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9eSB5kbhGOrnxrTpwvrEUpBRP2LqGmmw";

fn challenge(v: &str) -> String {
    B64.encode(Sha256::digest(v.as_bytes()))
}

pub(crate) fn public(client: &str) -> ClientCredentials {
    ClientCredentials {
        client_id: client.into(),
        secret: None,
        method: ClientAuthMethod::None,
    }
}

pub(crate) async fn setup(a: &AuthServer, tenant: &str) -> (uuid::Uuid, String) {
    a.register_client(
        &valid_slug(tenant),
        &ClientRegistration {
            client_id: "web".into(),
            name: "Web".into(),
            redirect_uris: vec![REDIRECT.into(), "http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            allowed_scopes: vec![
                "openid".into(),
                "profile".into(),
                "email".into(),
                "portfolio:read".into(),
                "trade".into(),
            ],
            auth_method: ClientAuthMethod::None,
            signing_alg: SigningAlg::ES256,
        },
    )
    .await
    .unwrap();
    let user = a
        .register(
            &valid_slug(tenant),
            "ada@example.com",
            "Ada",
            PASSWORD,
            Role::Trader,
        )
        .await
        .unwrap();
    let LoginOutcome::LoggedIn(s) = a
        .login(
            &valid_slug(tenant),
            "ada@example.com",
            PASSWORD,
            &ctx("10.9.0.1"),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    (user.id.into(), s.token)
}

pub(crate) fn authorize_req(redirect: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        response_type: Some("code".into()),
        client_id: Some("web".into()),
        redirect_uri: Some(redirect.into()),
        scope: Some("openid email portfolio:read".into()),
        state: Some("st-1".into()),
        code_challenge: Some(challenge(VERIFIER)),
        code_challenge_method: Some("S256".into()),
        nonce: Some("nonce-1".into()),
        ..Default::default()
    }
}

pub(crate) async fn code_for(
    a: &AuthServer,
    tenant: &str,
    session: &str,
    req: &AuthorizeRequest,
) -> String {
    let v = a
        .validate_authorize(&valid_slug(tenant), req)
        .await
        .unwrap();
    let (s, _) = a
        .authenticate_session(&valid_slug(tenant), session)
        .await
        .unwrap();
    let location = a
        .issue_authorization_code(&valid_slug(tenant), &v, &s)
        .await
        .unwrap();
    let url = url::Url::parse(&location).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], a.issuer(&valid_slug(tenant)));
    q["code"].clone()
}

/// Exchanges `code` (issued to the public client "web" with [`VERIFIER`]) at the token endpoint.
pub(crate) async fn exchange_code(a: &AuthServer, code: &str) -> Result<TokenResponse, AuthError> {
    a.token(
        &acme(),
        &public("web"),
        &code_grant(code, Some(VERIFIER)),
        &ctx("x"),
    )
    .await
}

/// A user of `tenant` `acme` signed in, and the tokens of one code of client
/// `web`: (user id, session, tokens).
pub(crate) async fn signed_in_tokens(a: &AuthServer) -> (uuid::Uuid, String, TokenResponse) {
    let (user_id, session) = setup(a, "acme").await;
    let code = code_for(a, "acme", &session, &authorize_req(REDIRECT)).await;
    (user_id, session, exchange_code(a, &code).await.unwrap())
}

fn code_grant(code: &str, verifier: Option<&str>) -> TokenRequest {
    TokenRequest {
        grant_type: Some("authorization_code".into()),
        code: Some(code.into()),
        redirect_uri: Some(REDIRECT.into()),
        code_verifier: verifier.map(str::to_owned),
        ..Default::default()
    }
}

pub(crate) fn refresh_grant(rt: &str) -> TokenRequest {
    TokenRequest {
        grant_type: Some("refresh_token".into()),
        refresh_token: Some(rt.into()),
        ..Default::default()
    }
}

#[test]
fn redirect_matching_is_exact_except_loopback_port() {
    let reg = vec![
        "https://app.example.com/cb".to_owned(),
        "http://127.0.0.1/cb".to_owned(),
    ];
    assert!(redirect_uri_matches(&reg, "https://app.example.com/cb"));
    assert!(!redirect_uri_matches(&reg, "https://app.example.com/cb/"));
    assert!(!redirect_uri_matches(
        &reg,
        "https://app.example.com/cb?x=1"
    ));
    assert!(!redirect_uri_matches(
        &reg,
        "https://app.example.com:8443/cb"
    ));
    assert!(!redirect_uri_matches(&reg, "https://APP.example.com/cb"));
    assert!(redirect_uri_matches(&reg, "http://127.0.0.1:53123/cb"));
    assert!(!redirect_uri_matches(&reg, "http://127.0.0.1:53123/other"));
    assert!(!redirect_uri_matches(&reg, "http://localhost:53123/cb"));
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_refusals_pkce_redirect_response_type() {
    let s = server().await;
    let a = &s.auth;
    setup(a, "acme").await;
    // Wrong redirect: error page, never a redirect.
    assert!(matches!(
        a.validate_authorize(&acme(), &authorize_req("https://evil.example.com/cb"))
            .await,
        Err(AuthorizeError::Page(_))
    ));
    // Unknown client: page.
    let mut r = authorize_req(REDIRECT);
    r.client_id = Some("nope".into());
    assert!(matches!(
        a.validate_authorize(&acme(), &r).await,
        Err(AuthorizeError::Page(AuthError::InvalidClient))
    ));
    // Missing PKCE and plain PKCE: redirect with invalid_request, state and iss.
    for (c, m) in [
        (None, None),
        (Some(VERIFIER.to_owned()), Some("plain".to_owned())),
        (Some(challenge(VERIFIER)), None),
    ] {
        let mut r = authorize_req(REDIRECT);
        r.code_challenge = c;
        r.code_challenge_method = m;
        match a.validate_authorize(&acme(), &r).await {
            Err(AuthorizeError::Redirect { location, error }) => {
                assert_eq!(error.oauth_code(), "invalid_request");
                assert!(
                    location.starts_with(REDIRECT)
                        && location.contains("state=st-1")
                        && location.contains("iss="),
                    "{location}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // Implicit flow: unsupported_response_type.
    let mut r = authorize_req(REDIRECT);
    r.response_type = Some("token".into());
    assert!(matches!(
        a.validate_authorize(&acme(), &r).await,
        Err(AuthorizeError::Redirect {
            error: AuthError::UnsupportedResponseType(_),
            ..
        })
    ));
    // Scope beyond the client's.
    let mut r = authorize_req(REDIRECT);
    r.scope = Some("users:manage".into());
    assert!(matches!(
        a.validate_authorize(&acme(), &r).await,
        Err(AuthorizeError::Redirect {
            error: AuthError::InvalidScope(_),
            ..
        })
    ));
    // Loopback with another port is accepted.
    assert!(
        a.validate_authorize(&acme(), &authorize_req("http://127.0.0.1:40123/cb"))
            .await
            .is_ok()
    );
    // A nonce is kept inline with the code: at most 512 bytes.
    let mut r = authorize_req(REDIRECT);
    r.nonce = Some("n".repeat(rampart_auth::oauth::MAX_NONCE_BYTES));
    assert!(a.validate_authorize(&acme(), &r).await.is_ok());
    r.nonce = Some("n".repeat(rampart_auth::oauth::MAX_NONCE_BYTES + 1));
    match a.validate_authorize(&acme(), &r).await {
        Err(AuthorizeError::Redirect { location, error }) => {
            assert_eq!(error.oauth_code(), "invalid_request");
            assert!(location.contains("state=st-1"), "{location}");
        }
        other => panic!("{other:?}"),
    }
    // So is a registered redirect URI: at most 2,000 bytes.
    let long = format!(
        "https://app.example.com/{}",
        "p".repeat(rampart_auth::oauth::MAX_REDIRECT_URI_BYTES)
    );
    let refused = a
        .register_client(
            &acme(),
            &ClientRegistration {
                client_id: "long".into(),
                name: "Long".into(),
                redirect_uris: vec![long],
                grant_types: vec!["authorization_code".into()],
                allowed_scopes: vec!["openid".into()],
                auth_method: ClientAuthMethod::None,
                signing_alg: SigningAlg::ES256,
            },
        )
        .await;
    assert!(
        matches!(refused, Err(AuthError::InvalidRequest(_))),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn code_flow_refresh_rotation_reuse_and_revocation() {
    // The grace window is off by default; this test turns it on.
    let s = crate::common::server_with(rampart_auth::AuthConfig {
        refresh_grace_secs: 10,
        ..crate::common::config()
    })
    .await;
    let a = &s.auth;
    let (user_id, session) = setup(a, "acme").await;
    let req = authorize_req(REDIRECT);
    // Wrong verifier, missing verifier, wrong redirect: invalid_grant.
    for (grant, why) in [
        (
            code_grant(
                &code_for(a, "acme", &session, &req).await,
                Some(&"x".repeat(43)),
            ),
            "wrong verifier",
        ),
        (
            code_grant(&code_for(a, "acme", &session, &req).await, None),
            "dropped verifier",
        ),
        (
            TokenRequest {
                redirect_uri: Some("https://app.example.com/other".into()),
                ..code_grant(&code_for(a, "acme", &session, &req).await, Some(VERIFIER))
            },
            "redirect",
        ),
    ] {
        let r = a.token(&acme(), &public("web"), &grant, &ctx("x")).await;
        assert!(matches!(r, Err(AuthError::InvalidGrant(_))), "{why}: {r:?}");
    }
    // The good exchange.
    let code = code_for(a, "acme", &session, &req).await;
    let t = exchange_code(a, &code).await.unwrap();
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, 900);
    let id = a
        .tokens()
        .verify_id_token(t.id_token.as_deref().unwrap())
        .unwrap();
    assert_eq!(id.nonce.as_deref(), Some("nonce-1"));
    assert_eq!(id.sub, user_id.to_string());
    assert_eq!(id.aud, "web");
    let p = a
        .authenticate_bearer(&acme(), &t.access_token)
        .await
        .unwrap();
    assert_eq!(p.user_id, Some(user_id.into()));
    assert_eq!(p.role, Role::Trader);
    // A token of tenant acme is refused by globex.
    assert!(matches!(
        a.authenticate_bearer(&globex(), &t.access_token).await,
        Err(AuthError::InvalidToken(_))
    ));
    let info = a.userinfo(&acme(), &t.access_token).await.unwrap();
    assert_eq!(info["email"], "ada@example.com");
    // Replaying the code fails and revokes what it issued.
    let creds = ClientCredentials {
        client_id: "svc".into(),
        secret: None,
        method: ClientAuthMethod::None,
    };
    let _ = creds;
    let replay = exchange_code(a, &code).await;
    assert!(matches!(replay, Err(AuthError::InvalidGrant(_))));
    let rt0 = t.refresh_token.clone().unwrap();
    assert!(matches!(
        a.token(&acme(), &public("web"), &refresh_grant(&rt0), &ctx("x"))
            .await,
        Err(AuthError::InvalidGrant(_))
    ));

    // A fresh family: rotation, grace retry, reuse.
    let code = code_for(a, "acme", &session, &req).await;
    let t = exchange_code(a, &code).await.unwrap();
    let rt1 = t.refresh_token.unwrap();
    let t2 = a
        .token(&acme(), &public("web"), &refresh_grant(&rt1), &ctx("x"))
        .await
        .unwrap();
    let rt2 = t2.refresh_token.clone().unwrap();
    assert_ne!(rt1, rt2);
    // Retried within the grace window: the same successor.
    let t2b = a
        .token(&acme(), &public("web"), &refresh_grant(&rt1), &ctx("x"))
        .await
        .unwrap();
    assert_eq!(t2b.refresh_token.as_deref(), Some(rt2.as_str()));
    // The successor rotates normally.
    let t3 = a
        .token(&acme(), &public("web"), &refresh_grant(&rt2), &ctx("x"))
        .await
        .unwrap();
    let rt3 = t3.refresh_token.unwrap();
    // Each refresh is audited once (the rotations by their own statement,
    // the grace retry by the grant), with the user, the client and the
    // caller's address.
    let refreshes: Vec<_> = a
        .audit_log(&acme(), 200)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "token_refresh")
        .collect();
    assert_eq!(refreshes.len(), 3, "two rotations and one grace retry");
    for r in &refreshes {
        assert_eq!(r.user_id, Some(user_id.into()));
        assert_eq!(r.actor.as_deref(), Some("web"));
        assert_eq!(r.ip.as_deref(), Some(ctx("x").ip.as_str()));
        assert_eq!(r.result, "success");
        assert_eq!(r.user_agent.as_deref(), Some("test-agent"));
        assert_eq!(r.detail, "{}");
    }
    // After the grace window, reuse revokes the whole family.
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&s.db_url)
            .await
            .unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn,
        "ALTER TABLE tenant_acme.audit_log DISABLE TRIGGER audit_log_append_only; \
         UPDATE tenant_acme.refresh_tokens SET rotated_at = now() - interval '1 minute' WHERE rotated_at IS NOT NULL; \
         ALTER TABLE tenant_acme.audit_log ENABLE TRIGGER audit_log_append_only;").await.unwrap();
    assert!(matches!(
        a.token(&acme(), &public("web"), &refresh_grant(&rt1), &ctx("x"))
            .await,
        Err(AuthError::InvalidGrant(_))
    ));
    assert!(matches!(
        a.token(&acme(), &public("web"), &refresh_grant(&rt3), &ctx("x"))
            .await,
        Err(AuthError::InvalidGrant(_))
    ));
    let log = a.audit_log(&acme(), 100).await.unwrap();
    assert!(log.iter().any(|r| r.action == "refresh_reuse"));
    assert!(log.iter().any(|r| r.action == "code_replay"));
    // The family's access token is revoked (a public client may not
    // introspect, so the bearer check shows it).
    assert!(matches!(
        a.authenticate_bearer(&acme(), &t3.access_token).await,
        Err(AuthError::InvalidToken(_))
    ));
    assert_eq!(
        a.verify_audit_chain(&acme()).await.unwrap().first_broken,
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refreshes_never_fork_a_family() {
    let s = server().await;
    let a = s.auth.clone();
    let (_, session) = setup(&a, "acme").await;
    let code = code_for(&a, "acme", &session, &authorize_req(REDIRECT)).await;
    let t = exchange_code(&a, &code).await.unwrap();
    let rt = t.refresh_token.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let a = a.clone();
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            a.token(&acme(), &public("web"), &refresh_grant(&rt), &ctx("x"))
                .await
        }));
    }
    // Without a grace window (the default) the first refresh wins and the
    // others are reuse: no second successor is ever minted.
    let mut successors = std::collections::HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                successors.insert(r.refresh_token.unwrap());
            }
            Err(e) => assert!(matches!(e, AuthError::InvalidGrant(_)), "{e:?}"),
        }
    }
    assert_eq!(successors.len(), 1, "exactly one successor");
}

#[tokio::test(flavor = "multi_thread")]
async fn confidential_client_credentials_introspect_revoke_discovery() {
    let s = server().await;
    let a = &s.auth;
    let secret = a
        .register_client(
            &acme(),
            &ClientRegistration {
                client_id: "svc".into(),
                name: "Service".into(),
                redirect_uris: vec![],
                grant_types: vec!["client_credentials".into()],
                allowed_scopes: vec!["market:read".into(), "portfolio:read".into()],
                auth_method: ClientAuthMethod::ClientSecretBasic,
                signing_alg: SigningAlg::RS256,
            },
        )
        .await
        .unwrap()
        .unwrap();
    let basic = ClientCredentials {
        client_id: "svc".into(),
        secret: Some(secret.clone()),
        method: ClientAuthMethod::ClientSecretBasic,
    };
    let cc = TokenRequest {
        grant_type: Some("client_credentials".into()),
        scope: Some("market:read".into()),
        ..Default::default()
    };
    // Wrong secret, wrong method, no secret: invalid_client.
    for bad in [
        ClientCredentials {
            secret: Some("wrong".into()),
            ..basic.clone()
        },
        ClientCredentials {
            method: ClientAuthMethod::ClientSecretPost,
            ..basic.clone()
        },
        ClientCredentials {
            secret: None,
            method: ClientAuthMethod::None,
            ..basic.clone()
        },
    ] {
        let r = a.token(&acme(), &bad, &cc, &ctx("x")).await;
        assert!(matches!(r, Err(AuthError::InvalidClient)), "{r:?}");
        assert_eq!(r.unwrap_err().oauth_code(), "invalid_client");
    }
    let t = a.token(&acme(), &basic, &cc, &ctx("x")).await.unwrap();
    assert!(t.refresh_token.is_none() && t.id_token.is_none());
    assert_eq!(t.scope, "market:read");
    let header: serde_json::Value = serde_json::from_slice(
        &B64.decode(t.access_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    let p = a
        .authenticate_bearer(&acme(), &t.access_token)
        .await
        .unwrap();
    assert_eq!(p.role, Role::ApiUser);
    assert_eq!(p.user_id, None);
    // A request of grant type `g` alone.
    let grant = |g: &str| TokenRequest {
        grant_type: Some(g.into()),
        ..Default::default()
    };
    // Unsupported grants.
    for g in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let r = a.token(&acme(), &basic, &grant(g), &ctx("x")).await;
        assert!(matches!(r, Err(AuthError::UnsupportedGrantType(_))));
    }
    let r = a
        .token(&acme(), &basic, &grant("authorization_code"), &ctx("x"))
        .await;
    assert!(matches!(r, Err(AuthError::UnauthorizedClient(_))));
    // Introspect then revoke.
    let i = a
        .introspect(&acme(), &basic, &t.access_token)
        .await
        .unwrap();
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], "svc");
    assert!(i.get("tid").is_none());
    a.revoke(&acme(), &basic, &t.access_token, &ctx("x"))
        .await
        .unwrap();
    assert_eq!(
        a.introspect(&acme(), &basic, &t.access_token)
            .await
            .unwrap()["active"],
        false
    );
    // The client is now cached for introspection: a wrong secret or another
    // authentication method is still refused, for live and revoked tokens.
    let wrong_secret = ClientCredentials {
        secret: Some("not-the-secret".into()),
        ..basic.clone()
    };
    let wrong_method = ClientCredentials {
        method: ClientAuthMethod::ClientSecretPost,
        ..basic.clone()
    };
    let t2 = a
        .token(&acme(), &basic, &grant("client_credentials"), &ctx("x"))
        .await
        .unwrap();
    assert_eq!(
        a.introspect(&acme(), &basic, &t2.access_token)
            .await
            .unwrap()["active"],
        true
    );
    for creds in [&wrong_secret, &wrong_method] {
        for token in [&t.access_token, &t2.access_token] {
            assert!(matches!(
                a.introspect(&acme(), creds, token).await,
                Err(AuthError::InvalidClient)
            ));
        }
    }
    a.revoke(&acme(), &basic, "unknown-token", &ctx("x"))
        .await
        .unwrap();
    assert_eq!(
        a.introspect(&acme(), &basic, "garbage").await.unwrap()["active"],
        false
    );
    // Discovery and JWKS.
    let d = a.discovery(&acme());
    assert_eq!(d["issuer"], a.issuer(&acme()));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert!(a.jwks()["keys"].as_array().unwrap().len() >= 4);
    // Public client cannot register client_credentials.
    let r = a
        .register_client(
            &acme(),
            &ClientRegistration {
                client_id: "pub".into(),
                name: "p".into(),
                redirect_uris: vec![],
                grant_types: vec!["client_credentials".into()],
                allowed_scopes: vec![],
                auth_method: ClientAuthMethod::None,
                signing_alg: SigningAlg::ES256,
            },
        )
        .await;
    assert!(r.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_session_revokes_its_refresh_tokens_and_expired_codes_fail() {
    let s = server().await;
    let a = &s.auth;
    let (user_id, session, t) = signed_in_tokens(a).await;
    let (info, _) = a.authenticate_session(&acme(), &session).await.unwrap();
    a.revoke_session(&acme(), user_id.into(), info.id, &ctx("x"))
        .await
        .unwrap();
    assert!(matches!(
        a.token(
            &acme(),
            &public("web"),
            &refresh_grant(&t.refresh_token.unwrap()),
            &ctx("x")
        )
        .await,
        Err(AuthError::InvalidGrant(_))
    ));
    // Expired code (61 s).
    let LoginOutcome::LoggedIn(s2) = a
        .login(&acme(), "ada@example.com", PASSWORD, &ctx("10.9.0.2"))
        .await
        .unwrap()
    else {
        panic!()
    };
    let code = code_for(a, "acme", &s2.token, &authorize_req(REDIRECT)).await;
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&s.db_url)
            .await
            .unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "UPDATE tenant_acme.authorization_codes SET expires_at = now() - interval '1 second'",
    )
    .await
    .unwrap();
    assert!(matches!(
        exchange_code(a, &code).await,
        Err(AuthError::InvalidGrant(_))
    ));
}
