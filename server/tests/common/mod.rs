//! Helpers shared by the server's HTTP test binaries: a development PKI, a
//! server on free ports over TLS with real PostgreSQL, tokens through the
//! authorization code flow, and a JSON client.
#![allow(dead_code)]

use std::net::SocketAddr;

use base64::Engine;
use rampart_auth::oauth::{
    AuthorizeRequest, ClientAuthMethod, ClientCredentials, ClientRegistration, TokenRequest,
};
use rampart_auth::{AuthServer, ClientContext, Role, SigningAlg};
use rampart_server::app::{AppState, RunningServer};
use rampart_server::config::ServerConfig;
use rampart_server::tls::{DevCa, TlsFiles};
use reqwest::Method;
use serde_json::Value;
use sha2::Digest;
use uuid::Uuid;

pub const PASSWORD: &str = "correct-horse-battery-42";
pub const REDIRECT: &str = "https://app.example.com/cb";
/// Every scope the tests' public client `web` may ask for.
pub const CLIENT_SCOPES: &str =
    "portfolio:read portfolio:write analytics:read market:read users:manage tenant:admin";

/// A development PKI written to a temp dir.
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
        dev_secrets_dir: pki.dir.path().join("dev-secrets"),
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

/// A running server with two tenants, each with a public OAuth client.
pub struct Env {
    pub _pki: Pki,
    pub server: RunningServer,
    pub state: AppState,
    pub http: reqwest::Client,
    pub addr: SocketAddr,
}

pub async fn env() -> Env {
    env_with(|_| {}).await
}

/// [`env`] with a configuration adjusted first (e.g. rate limits).
pub async fn env_with(adjust: impl FnOnce(&mut ServerConfig)) -> Env {
    let pki = Pki::new();
    let mut config = config(&pki).await;
    adjust(&mut config);
    let state = rampart_server::serve::build_state(config).await.unwrap();
    let server = rampart_server::serve::start(state.clone()).await.unwrap();
    let auth = state.auth.clone();
    for slug in ["acme", "globex"] {
        state.tenants.provision(slug, slug).await.unwrap();
        auth.register_client(
            slug,
            &ClientRegistration {
                client_id: "web".into(),
                name: "Web".into(),
                redirect_uris: vec![REDIRECT.into()],
                grant_types: vec!["authorization_code".into()],
                allowed_scopes: CLIENT_SCOPES.split(' ').map(str::to_owned).collect(),
                auth_method: ClientAuthMethod::None,
                signing_alg: SigningAlg::ES256,
            },
        )
        .await
        .unwrap();
    }
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca.cert_pem().as_bytes()).unwrap()])
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap();
    let addr = server.public_addr;
    Env {
        _pki: pki,
        server,
        state,
        http,
        addr,
    }
}

/// Registers a user and gets an access token with `scopes` through the
/// authorization code flow with PKCE (login → code → token).
pub async fn scoped_token(
    auth: &AuthServer,
    tenant: &str,
    email: &str,
    role: Role,
    scopes: &str,
) -> (Uuid, String) {
    let user = auth
        .register(tenant, email, "Test", PASSWORD, role)
        .await
        .unwrap();
    let ctx = ClientContext::ip("127.0.0.1");
    let rampart_auth::accounts::LoginOutcome::LoggedIn(session) =
        auth.login(tenant, email, PASSWORD, &ctx).await.unwrap()
    else {
        panic!("no MFA expected")
    };
    let (access, _) = code_flow(auth, tenant, &session.token, scopes).await;
    (user.id, access)
}

/// Access token, and the refresh token when the grant issues one,
/// through the authorization code flow with PKCE (`web` client) for an
/// existing session.
pub async fn code_flow(
    auth: &AuthServer,
    tenant: &str,
    session: &str,
    scopes: &str,
) -> (String, Option<String>) {
    let ctx = ClientContext::ip("127.0.0.1");
    let (session, _) = auth.authenticate_session(tenant, session).await.unwrap();
    let verifier = format!("verifier-{}-{}", Uuid::new_v4(), Uuid::new_v4());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let validated = auth
        .validate_authorize(
            tenant,
            &AuthorizeRequest {
                response_type: Some("code".into()),
                client_id: Some("web".into()),
                redirect_uri: Some(REDIRECT.into()),
                scope: Some(scopes.into()),
                state: Some("s".into()),
                code_challenge: Some(challenge),
                code_challenge_method: Some("S256".into()),
                nonce: None,
            },
        )
        .await
        .map_err(|_| "authorize refused")
        .unwrap();
    let location = auth
        .issue_authorization_code(tenant, &validated, &session)
        .await
        .unwrap();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let token = auth
        .token(
            tenant,
            &ClientCredentials {
                client_id: "web".into(),
                secret: None,
                method: ClientAuthMethod::None,
            },
            &TokenRequest {
                grant_type: Some("authorization_code".into()),
                code: Some(code),
                redirect_uri: Some(REDIRECT.into()),
                code_verifier: Some(verifier),
                refresh_token: None,
                scope: None,
            },
            &ctx,
        )
        .await
        .unwrap();
    (token.access_token, token.refresh_token)
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut r = self
            .http
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let res = r.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
}
