//! What every server test shares: a development PKI, the server started as
//! `rampart serve` starts it (over TLS, on free ports, with real
//! PostgreSQL), HTTPS clients, a JSON client, tokens (minted by the server's
//! own token service, or through the authorization code flow with PKCE) and
//! the login form's helpers.
#![allow(dead_code)]

use rampart_testkit::valid_slug;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rampart_auth::accounts::{LoginOutcome, NewSession, SessionInfo};
use rampart_auth::oauth::{
    AuthorizeRequest, ClientAuthMethod, ClientCredentials, ClientRegistration, TokenRequest,
};
use rampart_auth::{AccessTokenRequest, AuthServer, ClientContext, Role, SigningAlg};
use rampart_notify::{NotifyConfig, SmtpTls};
use rampart_ratelimit::Quota;
use rampart_server::app::{AppState, RunningServer};
use rampart_server::config::ServerConfig;
use rampart_server::tls::{DevCa, IssuedCert, TlsFiles};
use rampart_vault::{SecretStore, VaultConfig};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use uuid::Uuid;

pub const PASSWORD: &str = "correct-horse-battery-42";
pub const REDIRECT: &str = "https://app.example.com/cb";
/// The PKCE verifier of RFC 7636's example.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9eSB5kbhGOrnxrTpwvrEUpBRP2LqGmmw";
/// Every scope the tests' public client `web` may ask for.
pub const CLIENT_SCOPES: &str = "portfolio:read portfolio:write analytics:read market:read users:manage tenant:admin \
     account:manage";

// ------------------------------------------------------------ PKI and clients

/// Two distinct free ports: (public, admin).
pub fn free_ports() -> (u16, u16) {
    let public = rampart_testkit::free_port().unwrap();
    let mut admin = rampart_testkit::free_port().unwrap();
    while admin == public {
        admin = rampart_testkit::free_port().unwrap();
    }
    (public, admin)
}

/// A dev-mode configuration file for a `rampart serve` child process:
/// listeners on [`free_ports`], `pki`'s TLS files, `database_url`, dev
/// secrets in `pki`'s `secrets_dir`, one worker; `top` adds top-level keys
/// and `tables` further tables. The ports and the TOML text.
pub fn serve_toml(
    pki: &Pki,
    database_url: &str,
    secrets_dir: &str,
    top: &str,
    tables: &str,
) -> ((u16, u16), String) {
    let (public, admin) = free_ports();
    let files = &pki.files;
    let toml = format!(
        "mode = \"dev\"\npublic_addr = \"127.0.0.1:{public}\"\nadmin_addr = \"127.0.0.1:{admin}\"\n\
         public_base_url = \"https://localhost:{public}\"\ndev_secrets_dir = {:?}\n{top}\n\
         [tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\n\
         [database]\ndatabase_url = {database_url:?}\nmax_connections = 4\n\
         [http]\nworkers = 1\nshutdown_timeout_secs = 1\n{tables}",
        pki.path(secrets_dir),
        files.cert_file,
        files.key_file,
        files.client_ca_file,
    );
    ((public, admin), toml)
}

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

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The operator's client certificate, for the admin listener.
    pub fn operator(&self) -> IssuedCert {
        self.ca
            .issue_client("ops", (2025, 1, 1), (2035, 1, 1))
            .unwrap()
    }

    /// An HTTPS client trusting this CA, optionally presenting `identity`.
    pub fn client(&self, identity: Option<&IssuedCert>) -> reqwest::Client {
        client(&self.ca.cert_pem(), identity)
    }
}

/// A client builder trusting only `ca_pem`, with `localhost` on loopback.
pub fn client_builder(ca_pem: &str) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
}

/// An HTTPS client trusting only `ca_pem`, optionally presenting `identity`.
pub fn client(ca_pem: &str, identity: Option<&IssuedCert>) -> reqwest::Client {
    let mut b = client_builder(ca_pem);
    if let Some(id) = identity {
        let pem = format!("{}{}", id.cert_pem, id.key_pem);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

// ------------------------------------------------------------ the server

/// The test configuration: free ports, TLS from `pki`, a fresh database,
/// cheap Argon2id, one worker.
pub async fn config(pki: &Pki) -> ServerConfig {
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::fresh_database().await.unwrap();
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

/// A valuation case's body (`POST …/cases`) for `ticker`, worked by hand:
/// margin 10 % of 1000 (years 12 % and 8 %), tax 25 %: NOPAT 75; WACC
/// 4 % + 1 × 6 % = 10 %: EPV 750; + 50 cash − 200 debt = 600 over 10
/// shares: 60 a share; at a price of 50 the margin of safety is 1/6.
pub fn epv_case(ticker: &str) -> Value {
    json!({
        "ticker": ticker,
        "name": format!("{ticker} EPV"),
        "inputs": {
            "currency": "USD",
            "fiscal_years": [
                {"year": 2023, "revenue": "1000", "operating_income": "120",
                 "depreciation_amortization": "40", "maintenance_capex": "40"},
                {"year": 2024, "revenue": "1000", "operating_income": "80",
                 "depreciation_amortization": "40", "maintenance_capex": "40"}
            ],
            "adjustments": {"tax_rate": "0.25"},
            "cost_of_capital": {"risk_free_rate": "0.04", "beta": "1",
                "equity_risk_premium": "0.06", "pre_tax_cost_of_debt": "0.05",
                "debt_weight": "0"},
            "claims": {"excess_cash": "50", "debt": "200", "diluted_shares": "10"},
            "current_price": "50"
        }
    })
}

/// Notifications through the kit's SMTP server, links to
/// `https://rampart.test`; the background jobs are slowed down so the tests
/// drive them with `run_*_once`.
pub fn kit_smtp() -> NotifyConfig {
    let smtp = rampart_testkit::smtp_server().unwrap();
    NotifyConfig {
        smtp_host: smtp.host().into(),
        smtp_port: smtp.port(),
        tls: SmtpTls::None,
        from: "Rampart <no-reply@rampart.test>".into(),
        public_base_url: "https://rampart.test".into(),
        price_check_secs: 3600,
        login_check_secs: 3600,
        ..NotifyConfig::default()
    }
}

/// Rate limits stay on, with quotas a test cannot reach from one IP.
pub fn roomy_limits(config: &mut ServerConfig) {
    config.rate_limit.per_ip = Quota::new(1_000_000, Duration::from_secs(60), 100_000);
    config.rate_limit.per_tenant = Quota::new(1_000_000, Duration::from_secs(60), 100_000);
    config.rate_limit.per_tenant_authenticated =
        Quota::new(1_000_000, Duration::from_secs(60), 100_000);
}

/// The server as `rampart serve` builds and starts it.
pub async fn start(config: ServerConfig) -> (RunningServer, AppState) {
    let state = rampart_server::serve::build_state(config).await.unwrap();
    let server = rampart_server::serve::start(state.clone()).await.unwrap();
    (server, state)
}

/// [`start`] with Vault transit (the kit's OpenBao) for broker credentials.
pub async fn start_with_transit(config: ServerConfig) -> (RunningServer, AppState) {
    let mut state = rampart_server::serve::build_state(config).await.unwrap();
    let bao = rampart_testkit::openbao().unwrap();
    let store = SecretStore::connect(VaultConfig::dev(bao.addr(), bao.token()))
        .await
        .unwrap();
    store.ensure_transit_key().await.unwrap();
    let store = Arc::new(store);
    state.broker_crypto = Arc::new(rampart_server::broker_crypto::BrokerSealer::Vault(
        store.clone(),
    ));
    state.vault = Some(store);
    let server = rampart_server::serve::start(state.clone()).await.unwrap();
    (server, state)
}

/// The auth server of a running server.
pub fn auth(state: &AppState) -> Arc<AuthServer> {
    state.auth.clone()
}

/// A running server with its PKI and a client trusting it (the [`Api`] of
/// its public listener).
pub struct Env {
    pub pki: Pki,
    pub server: RunningServer,
    pub state: AppState,
    api: Api,
}

impl std::ops::Deref for Env {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The public client `web` of the tests: PKCE, [`REDIRECT`], every scope of
/// [`CLIENT_SCOPES`].
pub fn web_client(grant_types: &[&str]) -> ClientRegistration {
    ClientRegistration {
        client_id: "web".into(),
        name: "Web".into(),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: grant_types.iter().map(|&g| g.to_owned()).collect(),
        allowed_scopes: CLIENT_SCOPES.split(' ').map(str::to_owned).collect(),
        auth_method: ClientAuthMethod::None,
        signing_alg: SigningAlg::ES256,
    }
}

/// A confidential machine client (`client_credentials` only) allowed `scopes`.
pub fn machine_client(
    client_id: &str,
    name: &str,
    scopes: &[&str],
    auth_method: ClientAuthMethod,
) -> ClientRegistration {
    ClientRegistration {
        client_id: client_id.into(),
        name: name.into(),
        redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        allowed_scopes: scopes.iter().map(|&s| s.to_owned()).collect(),
        auth_method,
        signing_alg: SigningAlg::ES256,
    }
}

/// A running server with two tenants, `acme` and `globex`, each with a
/// public OAuth client `web`.
pub async fn env() -> Env {
    env_with(|_| {}).await
}

/// [`env`] with a configuration adjusted first (e.g. rate limits).
pub async fn env_with(adjust: impl FnOnce(&mut ServerConfig)) -> Env {
    let pki = Pki::new();
    let mut config = config(&pki).await;
    adjust(&mut config);
    let env = Env::start(pki, config).await;
    let auth = env.auth();
    for slug in ["acme", "globex"] {
        env.state
            .tenants
            .provision(&valid_slug(slug), slug)
            .await
            .unwrap();
        auth.register_client(&valid_slug(slug), &web_client(&["authorization_code"]))
            .await
            .unwrap();
    }
    env
}

impl Env {
    /// The server on `config` (made by [`config`] from `pki`); nothing
    /// provisioned.
    pub async fn start(pki: Pki, config: ServerConfig) -> Env {
        let (server, state) = start(config).await;
        Env::running(pki, server, state)
    }

    /// A server started by the caller.
    pub fn running(pki: Pki, server: RunningServer, state: AppState) -> Env {
        let api = Api {
            http: pki.client(None),
            addr: server.public_addr,
        };
        Env {
            pki,
            server,
            state,
            api,
        }
    }

    pub fn auth(&self) -> Arc<AuthServer> {
        auth(&self.state)
    }

    pub fn api(&self) -> Api {
        self.api.clone()
    }

    /// [`run_job`] `job` on this server, without a body.
    pub async fn run_job(&self, job: &str) -> Value {
        run_job(&self.pki, self.server.admin_addr, job, None).await
    }
}

/// Runs the job trigger `/admin/jobs/{job}` of the admin listener at
/// `admin` (with the operator's certificate of `pki`, and `body` as JSON if
/// any), answered 200: its report (the answer's `data`).
pub async fn run_job(pki: &Pki, admin: SocketAddr, job: &str, body: Option<Value>) -> Value {
    let ops = pki.client(Some(&pki.operator()));
    let mut request = ops.post(url(admin, &format!("/admin/jobs/{job}")));
    if let Some(b) = body {
        request = request.json(&b);
    }
    let res = request.send().await.unwrap();
    let status = res.status().as_u16();
    let body = json_or_text(res.text().await.unwrap());
    assert_eq!(status, 200, "{job}: {body}");
    body["data"].clone()
}

/// A JSON client of one listener.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub addr: SocketAddr,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        url(self.addr, path)
    }

    /// Status and body text; `body` is sent as JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut r = self.http.request(method, self.url(path));
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// Status and JSON body: `null` when empty, a string when not JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.send(method, path, bearer, body).await;
        (status, json_or_text(text))
    }

    /// `GET path` with `bearer`: [`Api::call`].
    pub async fn get(&self, path: &str, bearer: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(bearer), None).await
    }

    /// `GET path` with `bearer` answered `status`: [`Api::expect`].
    pub async fn expect_get(&self, status: u16, path: &str, bearer: &str) -> Value {
        self.with(bearer).get(status, path).await
    }

    /// `GET path` with `bearer` answered `status`: the response itself
    /// (headers and body still to read).
    pub async fn expect_response(
        &self,
        status: u16,
        path: &str,
        bearer: &str,
    ) -> reqwest::Response {
        let res = self
            .http
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "GET {path}");
        res
    }

    /// `GET path` with `bearer` answered 200 with `text/csv`: the body.
    pub async fn expect_csv(&self, path: &str, bearer: &str) -> String {
        let res = self.expect_response(200, path, bearer).await;
        let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/csv"), "GET {path}: {kind}");
        res.text().await.unwrap()
    }

    /// `PATCH path` of `body` with `bearer` answered 200: [`Api::expect`].
    pub async fn expect_patch(&self, path: &str, bearer: &str, body: Value) -> Value {
        self.with(bearer).patch(200, path, body).await
    }

    /// Posts `body` to `path` with `bearer` (any status, as [`Api::call`]);
    /// the answer's `data.id`.
    pub async fn create(&self, path: &str, bearer: &str, body: Value) -> String {
        let (_, res) = self
            .call(Method::POST, path, Some(bearer), Some(body))
            .await;
        res["data"]["id"].as_str().unwrap().to_owned()
    }

    /// The requests of `bearer`, each asserting its answer's status.
    pub fn with<'a>(&'a self, bearer: &'a str) -> Bearer<'a> {
        Bearer { api: self, bearer }
    }

    /// [`Api::call`] that asserts the status; the body.
    pub async fn expect(
        &self,
        status: u16,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let what = format!("{method} {path}");
        let (s, body) = self.call(method, path, bearer, body).await;
        assert_eq!(s, status, "{what}: {body}");
        body
    }

    /// [`Api::call`] refused with `status` and the error `code`: the body.
    pub async fn expect_error(
        &self,
        (status, code): (u16, &str),
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let body = self.expect(status, method, path, bearer, body).await;
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        body
    }

    /// `GET path` with `bearer` refused with `status` and the error `code`:
    /// [`Api::expect_error`].
    pub async fn expect_get_error(
        &self,
        status: u16,
        code: &str,
        path: &str,
        bearer: &str,
    ) -> Value {
        let refusal = (status, code);
        self.expect_error(refusal, Method::GET, path, Some(bearer), None)
            .await
    }

    /// Status and body text of a request with a body of `content_type`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut r = self
            .http
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        let res = r.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// A CSV upload; the answer must be JSON.
    pub async fn csv(&self, path: &str, bearer: &str, csv: &str) -> (u16, Value) {
        let (status, text) = self
            .raw(
                Method::POST,
                path,
                Some(bearer),
                "text/csv",
                csv.as_bytes().to_vec(),
            )
            .await;
        (status, serde_json::from_str(&text).unwrap())
    }

    /// A form post (the OAuth endpoints).
    pub async fn form(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
        let (status, text) = self
            .raw(
                Method::POST,
                path,
                None,
                "application/x-www-form-urlencoded",
                form(pairs).into_bytes(),
            )
            .await;
        (status, json_or_text(text))
    }
}

/// Requests with one bearer token ([`Api::with`]): each asserts the status
/// it is given and answers the body, as [`Api::expect`].
pub struct Bearer<'a> {
    api: &'a Api,
    bearer: &'a str,
}

impl Bearer<'_> {
    pub async fn get(&self, status: u16, path: &str) -> Value {
        self.send(status, Method::GET, path, None).await
    }

    pub async fn delete(&self, status: u16, path: &str) -> Value {
        self.send(status, Method::DELETE, path, None).await
    }

    pub async fn post(&self, status: u16, path: &str, body: Value) -> Value {
        self.send(status, Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, status: u16, path: &str, body: Value) -> Value {
        self.send(status, Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, status: u16, path: &str, body: Value) -> Value {
        self.send(status, Method::PATCH, path, Some(body)).await
    }

    /// `method path` with each of `bodies` (one request each) answered
    /// `status`.
    pub async fn each(
        &self,
        status: u16,
        method: Method,
        path: &str,
        bodies: impl IntoIterator<Item = Value>,
    ) {
        for sent in bodies {
            let what = format!("{method} {path} {sent}");
            let (s, body) = self
                .api
                .call(method.clone(), path, Some(self.bearer), Some(sent))
                .await;
            assert_eq!(s, status, "{what}: {body}");
        }
    }

    async fn send(&self, status: u16, method: Method, path: &str, body: Option<Value>) -> Value {
        let bearer = Some(self.bearer);
        self.api.expect(status, method, path, bearer, body).await
    }
}

/// The string field `field` of every item of the JSON array `list`.
pub fn strs<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    map_items(list, |item| item[field].as_str().unwrap())
}

/// Every item of the JSON array `list`, mapped by `f`.
pub fn map_items<'a, T>(list: &'a Value, f: impl FnMut(&'a Value) -> T) -> Vec<T> {
    list.as_array().unwrap().iter().map(f).collect()
}

fn json_or_text(text: String) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// The standard output of a finished command; panics with `what`, its
/// status and both outputs when it failed.
pub fn stdout_of(out: std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what}: {}\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// Runs one statement in `tenant`'s schema (raw SQL: a test sets a state
/// the services do not offer).
pub async fn exec(state: &AppState, tenant: &str, sql: String) {
    state
        .tenants
        .with_tenant(&valid_slug(tenant), async |conn| {
            diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), conn)
                .await
                .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap();
}

/// The `n` of a `SELECT count(*) AS n …` in `tenant`'s schema.
pub async fn count(state: &AppState, tenant: &str, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let sql = sql.to_owned();
    state
        .tenants
        .with_tenant(&valid_slug(tenant), async |conn| {
            // raw SQL: the tests count rows of any table by a query.
            diesel_async::RunQueryDsl::get_result::<Count>(diesel::sql_query(sql), conn)
                .await
                .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap()
        .n
}

/// The status of a GET.
pub async fn get_status(http: &reqwest::Client, url: &str) -> u16 {
    http.get(url).send().await.unwrap().status().as_u16()
}

/// The body text of a GET.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// The JSON body of a GET.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    send_json(http.get(url)).await
}

/// Sends `request`: the JSON body of its answer.
pub async fn send_json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

// ------------------------------------------------------------ tokens

/// The scopes of `role`'s default permissions, space-separated.
pub fn role_scopes(role: Role) -> String {
    role.default_permissions()
        .iter()
        .map(|p| p.scope())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An access token for `user` minted by the server's own token service
/// exactly as the token endpoint would, with the scopes of `role`.
pub async fn mint_token(
    state: &AppState,
    tenant: &str,
    user: Uuid,
    role: Role,
    client_id: &str,
) -> String {
    mint_token_with(
        state,
        tenant,
        user,
        role,
        client_id,
        &role_scopes(role),
        None,
    )
    .await
}

/// [`mint_token`] with its scope and the session it is bound to.
pub async fn mint_token_with(
    state: &AppState,
    tenant: &str,
    user: Uuid,
    role: Role,
    client_id: &str,
    scope: &str,
    session: Option<Uuid>,
) -> String {
    let auth = auth(state);
    let t = state.tenants.tenant(&valid_slug(tenant)).await.unwrap();
    auth.tokens()
        .issue_access_token(&AccessTokenRequest {
            tenant_id: t.id,
            issuer: auth.issuer(&valid_slug(tenant)),
            audience: auth.config().access_token_audience.clone(),
            subject: user.to_string(),
            client_id: client_id.into(),
            scope: scope.into(),
            roles: vec![role.as_str().into()],
            session_id: session,
            family_id: None,
            // As the token endpoint does: the user signed in just now.
            auth_time: Some(chrono::Utc::now().timestamp()),
            alg: SigningAlg::ES256,
        })
        .unwrap()
        .0
}

/// A session through the password login (no MFA).
pub async fn login(auth: &AuthServer, tenant: &str, email: &str, password: &str) -> NewSession {
    match auth
        .login(
            &valid_slug(tenant),
            email,
            password,
            &ClientContext::ip("127.0.0.1"),
        )
        .await
        .unwrap()
    {
        LoginOutcome::LoggedIn(s) => s,
        other => panic!("no MFA expected: {other:?}"),
    }
}

/// [`scoped_token`] with `admin_scopes` for an admin, `scopes` for any
/// other role.
pub async fn role_token(
    auth: &AuthServer,
    tenant: &str,
    email: &str,
    role: Role,
    (scopes, admin_scopes): (&str, &str),
) -> (Uuid, String) {
    let scopes = if role == Role::Admin {
        admin_scopes
    } else {
        scopes
    };
    scoped_token(auth, tenant, email, role, scopes).await
}

/// [`env`] and, in order, a user for each of `users` (`name@{tenant}.test`
/// of `tenant`, a role) with an access token through [`role_token`] with
/// `scopes`: their (id, token).
pub async fn env_with_users<const N: usize>(
    scopes: (&str, &str),
    users: [(&str, Role); N],
) -> (Env, [(Uuid, String); N]) {
    let env = env().await;
    let auth = env.auth();
    let mut tokens = Vec::with_capacity(N);
    for (email, role) in users {
        let (_, domain) = email.split_once('@').unwrap();
        let tenant = domain.strip_suffix(".test").unwrap();
        tokens.push(role_token(&auth, tenant, email, role, scopes).await);
    }
    (env, tokens.try_into().unwrap())
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
        .register(&valid_slug(tenant), email, "Test", PASSWORD, role)
        .await
        .unwrap();
    let session = login(auth, tenant, email, PASSWORD).await;
    let (access, _) = code_flow(auth, tenant, &session.token, scopes).await;
    (user.id.into(), access)
}

/// The S256 challenge of a PKCE verifier.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// The value of `name` in the query of `location`.
pub fn query_param(location: &str, name: &str) -> String {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .unwrap()
        .1
        .into_owned()
}

/// A fresh authorization code for `client_id` with the S256 challenge of
/// `verifier`, issued for an authenticated `session`.
pub async fn authorization_code(
    auth: &AuthServer,
    tenant: &str,
    session: &SessionInfo,
    client_id: &str,
    scopes: &str,
    verifier: &str,
) -> String {
    let validated = auth
        .validate_authorize(
            &valid_slug(tenant),
            &AuthorizeRequest {
                response_type: Some("code".into()),
                client_id: Some(client_id.into()),
                redirect_uri: Some(REDIRECT.into()),
                scope: Some(scopes.into()),
                state: Some("s".into()),
                code_challenge: Some(challenge(verifier)),
                code_challenge_method: Some("S256".into()),
                nonce: None,
                ..Default::default()
            },
        )
        .await
        .map_err(|_| "authorize refused")
        .unwrap();
    let location = auth
        .issue_authorization_code(&valid_slug(tenant), &validated, session)
        .await
        .unwrap();
    query_param(&location, "code")
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
    let (session, _) = auth
        .authenticate_session(&valid_slug(tenant), session)
        .await
        .unwrap();
    let verifier = format!("verifier-{}-{}", Uuid::new_v4(), Uuid::new_v4());
    let code = authorization_code(auth, tenant, &session, "web", scopes, &verifier).await;
    let token = auth
        .token(
            &valid_slug(tenant),
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

// ------------------------------------------------------------ the login form

/// The unescaped value of the hidden field `name` of a form.
pub fn hidden(html: &str, name: &str) -> String {
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

/// An `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Writes the KV secret `rampart/<path>` of the OpenBao at `addr` (a kit
/// server: its root token).
pub async fn write_secret(addr: &str, path: &str, body: serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("{addr}/v1/secret/data/rampart/{path}"))
        .header("X-Vault-Token", rampart_testkit::BaoServer::ROOT_TOKEN)
        .json(&serde_json::json!({ "data": body }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
}

/// Writes each `(path, body)` secret into the kit OpenBao `bao` and returns
/// a dev Vault configuration that loads them all.
pub async fn vault_with_secrets(
    bao: &rampart_testkit::BaoServer,
    secrets: &[(&str, serde_json::Value)],
) -> VaultConfig {
    for (path, body) in secrets {
        write_secret(&bao.addr(), path, body.clone()).await;
    }
    let mut vault = VaultConfig::dev(bao.addr(), bao.token());
    vault.secrets = secrets.iter().map(|(path, _)| (*path).to_owned()).collect();
    vault
}

// ------------------------------------------------------------ measurements

/// The Argon2id bound of logins: (ms for one hash, hashes/s of one thread
/// per core doing nothing but hashing).
pub async fn argon2_bound(auth: &AuthServer) -> (f64, f64) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let hasher = auth.hasher().clone();
    tokio::task::spawn_blocking(move || {
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
    .unwrap()
}

// ------------------------------------------------------------ the browser flow

/// Who signs in where, for [`browser_code_flow`].
pub struct BrowserLogin<'a> {
    pub tenant: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub email: &'a str,
    pub password: &'a str,
}

/// The token endpoint's answer through the browser flow, over HTTP only: a
/// public PKCE client, the authorize endpoint, the login form (with its
/// CSRF cookie), the code, the token endpoint. `base` is the public
/// listener's `https://host:port`.
pub async fn browser_code_flow(ca_pem: &str, base: &str, login: &BrowserLogin<'_>) -> Value {
    let tenant = login.tenant;
    let http = client_builder(ca_pem)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut authorize = url::Url::parse(&format!("{base}/t/{tenant}/oauth/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", login.client_id)
        .append_pair("redirect_uri", login.redirect_uri)
        .append_pair("scope", login.scope)
        .append_pair("state", "st")
        .append_pair("code_challenge", &challenge(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    let page = http.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200, "the sign-in page");
    let csrf_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("csrf="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let return_to = hidden(&html, "return_to");
    let csrf = hidden(&html, "csrf");
    let r = http
        .post(format!("{base}/t/{tenant}/oauth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", csrf_cookie)
        .body(form(&[
            ("email", login.email),
            ("password", login.password),
            ("return_to", return_to.as_str()),
            ("csrf", csrf.as_str()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signed in as {}", login.email);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let back = if back.starts_with("http") {
        back
    } else {
        format!("{base}{back}")
    };
    let r = http
        .get(back)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let code = query_param(r.headers()["location"].to_str().unwrap(), "code");
    send_json(
        http.post(format!("{base}/t/{tenant}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", login.redirect_uri),
                ("client_id", login.client_id),
                ("code_verifier", VERIFIER),
            ])),
    )
    .await
}

// ------------------------------------------------------------ WebSocket

/// A WebSocket client over TLS.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket over TLS (trusting only the test CA), optionally with
/// the token as the `bearer` subprotocol.
pub async fn ws_connect(env: &Env, path: &str, protocol_token: Option<&str>) -> WsOpened {
    let protocols = protocol_token.map(|t| format!("bearer, {t}"));
    ws_connect_with(env, path, protocols.as_deref()).await
}

/// What opening a WebSocket gives: the socket and the handshake's
/// response, or the status of a refused handshake.
pub type WsOpened = Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    u16,
>;

/// Opens a WebSocket over TLS (trusting only the test CA) offering
/// `protocols` (a `Sec-WebSocket-Protocol` value), if any.
pub async fn ws_connect_with(env: &Env, path: &str, protocols: Option<&str>) -> WsOpened {
    use rustls_pki_types::pem::PemObject;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(env.pki.ca.cert_pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    let tls = connector
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let mut req = format!("wss://localhost:{}{path}", env.addr.port())
        .into_client_request()
        .unwrap();
    if let Some(p) = protocols {
        req.headers_mut()
            .insert("sec-websocket-protocol", p.parse().unwrap());
    }
    match tokio_tungstenite::client_async(req, tls).await {
        Ok(ok) => Ok(ok),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("handshake: {e}"),
    }
}

/// The next text message as JSON (`None` when the server closed).
pub async fn next_json(ws: &mut Ws) -> Option<Value> {
    use futures::StreamExt;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(15), ws.next())
            .await
            .expect("no message within 15 s");
        match msg {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                return Some(serde_json::from_str(t.as_str()).unwrap());
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None | Some(Err(_)) => {
                return None;
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Sends a JSON text message.
pub async fn ws_send(ws: &mut Ws, value: Value) {
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        value.to_string(),
    ))
    .await
    .unwrap();
}

/// Each handshake of `cases` (token as `?access_token=`, token as the
/// `bearer` subprotocol) is refused with its status.
pub async fn assert_ws_refused(
    env: &Env,
    stream: &str,
    cases: &[(Option<&str>, Option<&str>, u16)],
) {
    for (query, protocol, status) in cases {
        let path = match query {
            Some(t) => format!("{stream}?access_token={t}"),
            None => stream.to_owned(),
        };
        assert_eq!(
            ws_connect(env, &path, *protocol).await.err(),
            Some(*status),
            "{path}"
        );
    }
}
