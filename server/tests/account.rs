//! The caller's account over the bearer API (`/api/v1/t/{tenant}/account/…`)
//! against the real server over HTTPS and real PostgreSQL: password change,
//! TOTP setup / confirm / disable, revoke other sessions, API keys, logout,
//! and the refusals (no token, another tenant's token, wrong and reused codes).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::new_without_default,
    missing_docs
)]

use std::path::PathBuf;

use rampart_auth::accounts::LoginOutcome;
use rampart_auth::{AccessTokenRequest, ClientContext, Role, SigningAlg};
use rampart_server::app::{AppState, RunningServer};
use rampart_server::config::ServerConfig;
use rampart_server::tls::{DevCa, TlsFiles};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "correct-horse-battery-42";
const NEW_PASSWORD: &str = "staple-orbit-lantern-77";

// ------------------------------------------------------------ helpers (from tests/server.rs)

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub files: TlsFiles,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::new("Test CA").unwrap();
        let server = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        let files = TlsFiles {
            cert_file: dir.path().join("server.pem"),
            key_file: dir.path().join("server-key.pem"),
            client_ca_file: dir.path().join("ca.pem"),
        };
        std::fs::write(&files.cert_file, &server.cert_pem).unwrap();
        std::fs::write(&files.key_file, &server.key_pem).unwrap();
        std::fs::write(&files.client_ca_file, ca.cert_pem()).unwrap();
        Pki { dir, ca, files }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub async fn config(pki: &Pki) -> ServerConfig {
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::postgres()
        .unwrap()
        .fresh_database()
        .await
        .unwrap();
    let mut config = ServerConfig {
        public_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        tls: Some(pki.files.clone()),
        tls_reload_secs: 1,
        dev_secrets_dir: pki.path("dev-secrets"),
        ..ServerConfig::default()
    };
    config.database.database_url = db.url;
    config.database.max_connections = 6;
    config.auth.argon2_m_kib = 1024;
    config.auth.argon2_t = 1;
    config.http.workers = 1;
    config.http.shutdown_timeout_secs = 1;
    config
}

pub async fn start(config: ServerConfig) -> (RunningServer, AppState) {
    let state = rampart_server::serve::build_state(config).await.unwrap();
    let server = rampart_server::serve::start(state.clone()).await.unwrap();
    (server, state)
}

pub fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap()
}

pub fn url(addr: std::net::SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

// ------------------------------------------------------------ this file's helpers

/// An access token as the token endpoint mints it, bound to `session`.
async fn token(
    state: &AppState,
    tenant: &str,
    user: Uuid,
    role: Role,
    session: Option<Uuid>,
) -> String {
    let auth = state.auth.clone();
    let t = state.tenants.tenant(tenant).await.unwrap();
    auth.tokens()
        .issue_access_token(&AccessTokenRequest {
            tenant_id: t.id,
            issuer: auth.issuer(tenant),
            audience: auth.config().access_token_audience.clone(),
            subject: user.to_string(),
            client_id: "web".into(),
            scope: "openid".into(),
            roles: vec![role.as_str().into()],
            session_id: session,
            auth_time: None,
            alg: SigningAlg::ES256,
        })
        .unwrap()
        .0
}

async fn login(state: &AppState, tenant: &str, email: &str, password: &str) -> (Uuid, String) {
    match state
        .auth
        .clone()
        .login(tenant, email, password, &ClientContext::ip("127.0.0.1"))
        .await
        .unwrap()
    {
        LoginOutcome::LoggedIn(s) => (s.session_id, s.token),
        other => panic!("{other:?}"),
    }
}

struct Api {
    http: reqwest::Client,
    addr: std::net::SocketAddr,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, url(self.addr, path));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn account_password_totp_sessions_api_keys_and_logout() {
    let pki = Pki::new();
    let (server, state) = start(config(&pki).await).await;
    let auth = state.auth.clone();
    state.tenants.provision("acme", "Acme").await.unwrap();
    state.tenants.provision("globex", "Globex").await.unwrap();
    let ada = auth
        .register("acme", "ada@example.com", "Ada", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let bot = auth
        .register("acme", "bot@example.com", "Bot", PASSWORD, Role::ApiUser)
        .await
        .unwrap();
    let bot2 = auth
        .register("acme", "bot2@example.com", "Bot 2", PASSWORD, Role::ApiUser)
        .await
        .unwrap();
    let eve = auth
        .register("globex", "eve@example.com", "Eve", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let api = Api {
        http: client(&pki.ca.cert_pem()),
        addr: server.public_addr,
    };
    let (session_a, _) = login(&state, "acme", "ada@example.com", PASSWORD).await;
    let (_session_b, handle_b) = login(&state, "acme", "ada@example.com", PASSWORD).await;
    let ada_token = token(&state, "acme", ada.id, Role::Trader, Some(session_a)).await;
    let eve_token = token(&state, "globex", eve.id, Role::Trader, None).await;

    // Refusals: no token, another tenant's token (same answer as no token).
    for bearer in [None, Some(eve_token.as_str())] {
        for (method, path) in [
            (Method::POST, "/api/v1/t/acme/account/password"),
            (Method::POST, "/api/v1/t/acme/account/mfa/totp"),
            (Method::POST, "/api/v1/t/acme/account/mfa/totp/confirm"),
            (Method::POST, "/api/v1/t/acme/account/mfa/totp/disable"),
            (
                Method::POST,
                "/api/v1/t/acme/account/sessions/revoke-others",
            ),
            (Method::POST, "/api/v1/t/acme/account/api-keys"),
            (Method::GET, "/api/v1/t/acme/account/api-keys"),
            (Method::DELETE, "/api/v1/t/acme/account/api-keys/abc"),
            (Method::POST, "/api/v1/t/acme/account/logout"),
        ] {
            let (s, body) = api
                .call(
                    method.clone(),
                    path,
                    bearer,
                    Some(json!({"code": "123456", "current_password": PASSWORD,
                        "new_password": NEW_PASSWORD, "name": "k"})),
                )
                .await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }

    // TOTP: begin shows the secret once; a wrong code is refused.
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/mfa/totp",
            Some(&ada_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
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
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/mfa/totp/confirm",
            Some(&ada_token),
            Some(json!({"code": wrong})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    // The right code enables it and shows 10 backup codes once.
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/mfa/totp/confirm",
            Some(&ada_token),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let backup: Vec<String> = serde_json::from_value(body["data"]["backupCodes"].clone()).unwrap();
    assert_eq!(backup.len(), 10);
    // Setting up again while enabled is a conflict.
    let (s, _) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/mfa/totp",
            Some(&ada_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The code that confirmed cannot be used again within its step.
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/mfa/totp/disable",
            Some(&ada_token),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    // Login now needs the second factor.
    assert!(matches!(
        auth.login(
            "acme",
            "ada@example.com",
            PASSWORD,
            &ClientContext::ip("127.0.0.2")
        )
        .await
        .unwrap(),
        LoginOutcome::MfaRequired { .. }
    ));
    // A backup code disables it (single use).
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/mfa/totp/disable",
            Some(&ada_token),
            Some(json!({"code": backup[0]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // Revoke the other sessions: needs a token bound to a session.
    let no_session = token(&state, "acme", ada.id, Role::Trader, None).await;
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/sessions/revoke-others",
            Some(&no_session),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/sessions/revoke-others",
            Some(&ada_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["data"]["revoked"].as_u64().unwrap() >= 1);
    assert!(auth.authenticate_session("acme", &handle_b).await.is_err());
    let live = auth.list_sessions("acme", ada.id).await.unwrap();
    assert_eq!(
        live.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![session_a]
    );

    // Change password: wrong current and weak new are refused.
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/password",
            Some(&ada_token),
            Some(json!({"current_password": "not-the-password-1", "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/password",
            Some(&ada_token),
            Some(json!({"current_password": PASSWORD, "new_password": "short"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/password",
            Some(&ada_token),
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    login(&state, "acme", "ada@example.com", NEW_PASSWORD).await;
    // The token's own session survived the change.
    assert_eq!(
        auth.list_sessions("acme", ada.id)
            .await
            .unwrap()
            .iter()
            .filter(|s| s.id == session_a)
            .count(),
        1
    );

    // API keys: only for api_user accounts.
    let (s, _) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/api-keys",
            Some(&ada_token),
            Some(json!({"name": "k", "scopes": ["market:read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let bot_token = token(&state, "acme", bot.id, Role::ApiUser, None).await;
    let bot2_token = token(&state, "acme", bot2.id, Role::ApiUser, None).await;
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/api-keys",
            Some(&bot_token),
            Some(json!({"name": "k", "scopes": ["nope"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/api-keys",
            Some(&bot_token),
            Some(json!({"name": "ci", "scopes": ["market:read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let key = body["data"]["key"].as_str().unwrap().to_owned();
    let prefix = body["data"]["prefix"].as_str().unwrap().to_owned();
    assert!(key.contains(&prefix));
    let p = auth.authenticate_api_key("acme", &key).await.unwrap();
    assert_eq!(p.user_id, Some(bot.id));
    let (s, body) = api
        .call(
            Method::GET,
            "/api/v1/t/acme/account/api-keys",
            Some(&bot_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let listed = body["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["prefix"], prefix.as_str());
    assert!(!body.to_string().contains(&key), "the key is shown once");
    // Another api_user cannot revoke it.
    let path = format!("/api/v1/t/acme/account/api-keys/{prefix}");
    let (s, _) = api
        .call(Method::DELETE, &path, Some(&bot2_token), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = api
        .call(Method::DELETE, &path, Some(&bot_token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(auth.authenticate_api_key("acme", &key).await.is_err());
    let (s, _) = api
        .call(Method::DELETE, &path, Some(&bot_token), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Logout revokes the token's session.
    let (s, body) = api
        .call(
            Method::POST,
            "/api/v1/t/acme/account/logout",
            Some(&ada_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(
        auth.list_sessions("acme", ada.id)
            .await
            .unwrap()
            .iter()
            .all(|s| s.id != session_a)
    );
    server.stop().await;
}
