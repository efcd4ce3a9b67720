//! Members, broker credentials, the snapshot job and the leaderboard over
//! real HTTPS against real PostgreSQL and OpenBao (transit), with the broker
//! (the Alpaca paper-trading API shape) replayed by a local HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use rampart_auth::oauth::{ClientAuthMethod, ClientRegistration};
use rampart_auth::{AccessTokenRequest, Role, SigningAlg};
use rampart_server::app::{AppState, RunningServer};
use rampart_server::config::ServerConfig;
use rampart_server::tls::{DevCa, IssuedCert, TlsFiles};
use rampart_vault::{SecretStore, VaultConfig};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PASSWORD: &str = "correct-horse-battery-42";
const GOOD1: (&str, &str) = (
    "PKGOOD1AAAAAAAAAAAAA",
    "s3cretGood1s3cretGood1s3cretGood1s3cret1",
);
const GOOD2: (&str, &str) = (
    "PKGOOD2AAAAAAAAAAAAA",
    "s3cretGood2s3cretGood2s3cretGood2s3cret2",
);
const GOOD3: (&str, &str) = (
    "PKGOOD3AAAAAAAAAAAAA",
    "s3cretGood3s3cretGood3s3cretGood3s3cret3",
);
const BAD: (&str, &str) = (
    "PKBROKENAAAAAAAAAAAA",
    "s3cretBrokens3cretBrokens3cretBrokens3cr",
);

// ------------------------------------------------------------ helpers (from tests/server.rs)

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub files: TlsFiles,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
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

/// Starts the server with Vault transit (OpenBao) for broker credentials.
pub async fn start(config: ServerConfig) -> (RunningServer, AppState) {
    let mut state = rampart_server::serve::build_state(config).await.unwrap();
    let bao = rampart_testkit::openbao().unwrap();
    let store = SecretStore::connect(VaultConfig::dev(bao.addr(), bao.token()))
        .await
        .unwrap();
    store.ensure_transit_key().await.unwrap();
    state.vault = Some(Arc::new(store));
    let server = rampart_server::serve::start(state.clone()).await.unwrap();
    (server, state)
}

pub fn client(ca_pem: &str, identity: Option<&IssuedCert>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .resolve("localhost", "127.0.0.1:0".parse().unwrap());
    if let Some(id) = identity {
        let pem = format!("{}{}", id.cert_pem, id.key_pem);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

pub fn url(addr: std::net::SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

/// An access token for `user` in `tenant`, minted by the server's own token
/// service exactly as the token endpoint would (role and its scopes).
async fn token(state: &AppState, tenant: &str, user: Uuid, role: Role) -> String {
    let auth = state.auth.clone();
    let t = state.tenants.tenant(tenant).await.unwrap();
    let scope = role
        .permissions()
        .iter()
        .map(|p| p.scope())
        .collect::<Vec<_>>()
        .join(" ");
    auth.tokens()
        .issue_access_token(&AccessTokenRequest {
            tenant_id: t.id,
            issuer: auth.issuer(tenant),
            audience: auth.config().access_token_audience.clone(),
            subject: user.to_string(),
            client_id: "admin-web".into(),
            scope,
            roles: vec![role.as_str().into()],
            session_id: None,
            auth_time: None,
            alg: SigningAlg::ES256,
        })
        .unwrap()
        .0
}

async fn user(state: &AppState, tenant: &str, email: &str, role: Role) -> (Uuid, String) {
    let auth = state.auth.clone();
    let u = auth
        .register(tenant, email, email, PASSWORD, role)
        .await
        .unwrap();
    let t = token(state, tenant, u.id, role).await;
    (u.id, t)
}

const REDIRECT: &str = "https://admin.example.com/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9eSB5kbhGOrnxrTpwvrEUpBRP2LqGmmw";

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

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// An access token through the browser flow: a public PKCE client, the
/// authorize endpoint, the login form, the code, the token endpoint.
async fn login(
    pki: &Pki,
    server: &RunningServer,
    state: &AppState,
    tenant: &str,
    email: &str,
) -> String {
    use base64::Engine;
    use sha2::Digest;
    let auth = state.auth.clone();
    let _ = auth
        .register_client(
            tenant,
            &ClientRegistration {
                client_id: "admin-web".into(),
                name: "Admin".into(),
                redirect_uris: vec![REDIRECT.into()],
                grant_types: vec!["authorization_code".into()],
                allowed_scopes: vec![
                    "openid".into(),
                    "users:manage".into(),
                    "portfolio:read".into(),
                ],
                auth_method: ClientAuthMethod::None,
                signing_alg: SigningAlg::ES256,
            },
        )
        .await;
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca.cert_pem().as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let mut authorize = url::Url::parse(&url(
        server.public_addr,
        &format!("/t/{tenant}/oauth/authorize"),
    ))
    .unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "admin-web")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid users:manage portfolio:read")
        .append_pair("state", "st")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let page = http.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200);
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
        .post(url(server.public_addr, &format!("/t/{tenant}/oauth/login")))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", csrf_cookie)
        .body(form(&[
            ("email", email),
            ("password", PASSWORD),
            ("return_to", return_to.as_str()),
            ("csrf", csrf.as_str()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
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
        url(server.public_addr, &back)
    };
    let r = http
        .get(back)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let t: Value = http
        .post(url(server.public_addr, &format!("/t/{tenant}/oauth/token")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", "admin-web"),
            ("code_verifier", VERIFIER),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t["access_token"].as_str().expect("access token").to_owned()
}

struct Api {
    http: reqwest::Client,
    addr: std::net::SocketAddr,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut r = self.http.request(method, url(self.addr, path));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        if let Some(body) = body {
            r = r.json(&body);
        }
        let res = r.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.send(method, path, bearer, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn csv(&self, path: &str, bearer: &str, csv: &str) -> (u16, Value) {
        let res = self
            .http
            .post(url(self.addr, path))
            .bearer_auth(bearer)
            .header("content-type", "text/csv")
            .body(csv.to_owned())
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(state: &AppState, tenant: &str, sql: &str) -> i64 {
    let sql = sql.to_owned();
    state
        .tenants
        .with_tenant(tenant, async |conn| {
            diesel::sql_query(sql)
                .get_result::<Count>(conn)
                .await
                .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap()
        .n
}

use reqwest::Method;

// ------------------------------------------------------------ members, import, keys

#[tokio::test(flavor = "multi_thread")]
async fn tenant_admin_manages_members_imports_and_broker_keys() {
    let pki = Pki::new();
    let mut cfg = config(&pki).await;
    cfg.http.upload_limit_bytes = 64 * 1024;
    let (server, state) = start(cfg).await;
    for slug in ["acme", "globex"] {
        state.tenants.provision(slug, slug).await.unwrap();
    }
    // The admin logs in through the browser flow; the others get tokens
    // minted by the same token service.
    user(&state, "acme", "root@acme.test", Role::Admin).await;
    let admin = login(&pki, &server, &state, "acme", "root@acme.test").await;
    let (_, trader) = user(&state, "acme", "tess@acme.test", Role::Trader).await;
    let (_, globex_admin) = user(&state, "globex", "root@globex.test", Role::Admin).await;
    let api = Api {
        http: client(&pki.ca.cert_pem(), None),
        addr: server.public_addr,
    };
    let members = "/api/v1/t/acme/admin/members";
    let ada = json!({"name": "Ada Lovelace", "email": "Ada@Acme.test", "role": "trader"});

    // Refusals: no token, a trader, another tenant's admin (like no token).
    let (s, body) = api
        .json(Method::POST, members, None, Some(ada.clone()))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (s, body) = api
        .json(Method::POST, members, Some(&trader), Some(ada.clone()))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (s, _) = api
        .json(
            Method::POST,
            members,
            Some(&globex_admin),
            Some(ada.clone()),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = api.json(Method::GET, members, Some(&trader), None).await;
    assert_eq!(s, 403);

    // Upsert: created, then updated by the same email in another case.
    let (s, body) = api
        .json(Method::POST, members, Some(&admin), Some(ada.clone()))
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["data"]["created"], true);
    assert_eq!(body["data"]["member"]["email"], "ada@acme.test");
    let ada_id: Uuid = body["data"]["member"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (s, body) = api
        .json(
            Method::POST,
            members,
            Some(&admin),
            Some(json!({"name": "Ada King", "email": "ada@acme.test", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["created"], false);
    assert_eq!(body["data"]["member"]["role"], "viewer");
    assert_eq!(body["data"]["member"]["id"], ada_id.to_string());

    // Malformed bodies.
    let (s, body) = api
        .json(
            Method::POST,
            members,
            Some(&admin),
            Some(json!({"name": "", "email": "nope", "role": "king"})),
        )
        .await;
    assert_eq!(s, 400);
    let fields: Vec<&str> = body["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "email", "role"]);
    let (s, _) = api
        .json(
            Method::POST,
            members,
            Some(&admin),
            Some(json!({"email": "x@y.z"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = api
        .json(
            Method::POST,
            members,
            Some(&admin),
            Some(json!({"name": "X", "email": "x@y.z", "role": "viewer", "extra": 1})),
        )
        .await;
    assert_eq!(s, 400);

    // CSV with broken rows: every row judged, nothing can be committed.
    let before = count(&state, "acme", "SELECT count(*) AS n FROM users").await;
    let (s, pv) = api
        .csv(
            &format!("{members}/import/preview"),
            &admin,
            "name,email,role\nGrace Hopper,grace@acme.test,trader\nNo Mail,,viewer\n\
             Bad Role,bad@acme.test,emperor\nGrace Again,GRACE@acme.test,viewer\nAda King,ada@acme.test,admin\n",
        )
        .await;
    assert_eq!(s, 200, "{pv}");
    let rows = pv["data"]["rows"].as_array().unwrap();
    let verdicts: Vec<(u64, &str)> = rows
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            (2, "create"),
            (3, "refused"),
            (4, "refused"),
            (5, "refused"),
            (6, "update")
        ]
    );
    assert_eq!(rows[1]["problems"][0]["field"], "email");
    assert_eq!(rows[2]["problems"][0]["field"], "role");
    assert!(
        rows[3]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
    assert_eq!(pv["data"]["refused"], 3);
    let (s, body) = api
        .json(
            Method::POST,
            &format!(
                "{members}/import/{}/commit",
                pv["data"]["id"].as_str().unwrap()
            ),
            Some(&admin),
            Some(json!({"digest": pv["data"]["digest"]})),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("import_has_refused_rows"))
    );
    assert_eq!(
        count(&state, "acme", "SELECT count(*) AS n FROM users").await,
        before
    );
    // An oversized file is refused before it is read.
    let big = format!("name,email,role\n{}", "X,x@acme.test,viewer\n".repeat(4000));
    let res = api
        .http
        .post(url(
            server.public_addr,
            &format!("{members}/import/preview"),
        ))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    // A file without the columns is refused as a whole.
    let (s, _) = api
        .csv(
            &format!("{members}/import/preview"),
            &admin,
            "who,what\na,b\n",
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = api
        .csv(
            &format!("{members}/import/preview"),
            &trader,
            "name,email,role\n",
        )
        .await;
    assert_eq!(s, 403);

    // A clean file: preview, wrong hash refused, commit applies exactly it.
    let clean = "email,name,role\ngrace@acme.test,Grace Hopper,trader\nlin@acme.test,Lin,viewer\nada@acme.test,Ada King,admin\n";
    let (s, pv) = api
        .csv(&format!("{members}/import/preview"), &admin, clean)
        .await;
    assert_eq!(s, 200, "{pv}");
    assert_eq!(
        (
            &pv["data"]["created"],
            &pv["data"]["updated"],
            &pv["data"]["refused"]
        ),
        (&json!(2), &json!(1), &json!(0))
    );
    let commit = format!(
        "{members}/import/{}/commit",
        pv["data"]["id"].as_str().unwrap()
    );
    let (s, body) = api
        .json(
            Method::POST,
            &commit,
            Some(&admin),
            Some(json!({"digest": "00"})),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("import_hash_mismatch"))
    );
    let (s, _) = api
        .json(
            Method::POST,
            &commit,
            Some(&admin),
            Some(json!({"hash": "x"})),
        )
        .await;
    assert_eq!(s, 400);
    // Another tenant's admin cannot commit it, and it is not found there.
    let (s, _) = api
        .json(
            Method::POST,
            &commit.replace("/t/acme/", "/t/globex/"),
            Some(&globex_admin),
            Some(json!({"digest": pv["data"]["digest"]})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, body) = api
        .json(
            Method::POST,
            &commit,
            Some(&admin),
            Some(json!({"digest": pv["data"]["digest"]})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["created"], 2);
    assert_eq!(body["data"]["updated"], 1);
    assert_eq!(
        count(&state, "acme", "SELECT count(*) AS n FROM users").await,
        before + 2
    );
    let (s, body) = api
        .json(
            Method::POST,
            &commit,
            Some(&admin),
            Some(json!({"digest": pv["data"]["digest"]})),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("import_already_committed"))
    );

    // Data changed since the preview: refused, nothing applied.
    let (_, pv) = api
        .csv(
            &format!("{members}/import/preview"),
            &admin,
            "name,email,role\nNew Person,new@acme.test,viewer\nLin,lin@acme.test,trader\n",
        )
        .await;
    api.json(
        Method::POST,
        members,
        Some(&admin),
        Some(json!({"name": "Lin Changed", "email": "lin@acme.test", "role": "viewer"})),
    )
    .await;
    let (s, body) = api
        .json(
            Method::POST,
            &format!(
                "{members}/import/{}/commit",
                pv["data"]["id"].as_str().unwrap()
            ),
            Some(&admin),
            Some(json!({"digest": pv["data"]["digest"]})),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("import_stale")),
        "{body}"
    );
    assert_eq!(
        count(
            &state,
            "acme",
            "SELECT count(*) AS n FROM users WHERE email = 'new@acme.test'"
        )
        .await,
        0
    );

    // Member list, paginated.
    let (s, page1) = api
        .json(
            Method::GET,
            &format!("{members}?limit=2"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    let cursor = page1["meta"]["nextCursor"].as_str().unwrap();
    let (_, page2) = api
        .json(
            Method::GET,
            &format!("{members}?limit=50&cursor={cursor}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        page2["data"].as_array().unwrap().len() as i64,
        before + 2 - 2
    );

    // Broker keys: live keys and malformed keys refused without echoing them.
    let broker = format!("{members}/{ada_id}/broker");
    let live = json!({"keyId": "AKLIVEKEYAAAAAAAAAAA", "secretKey": GOOD1.1});
    let (s, text) = api
        .send(Method::PUT, &broker, Some(&admin), Some(live))
        .await;
    assert_eq!(s, 400, "{text}");
    assert!(
        text.contains("live-trading") && !text.contains("AKLIVEKEY") && !text.contains(GOOD1.1)
    );
    let (s, _) = api
        .send(
            Method::PUT,
            &broker,
            Some(&admin),
            Some(json!({"keyId": GOOD1.0, "secretKey": "short"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = api
        .send(
            Method::PUT,
            &broker,
            Some(&admin),
            Some(json!({"keyId": GOOD1.0})),
        )
        .await;
    assert_eq!(s, 400);
    let keys = json!({"keyId": GOOD1.0, "secretKey": GOOD1.1});
    let (s, _) = api
        .send(Method::PUT, &broker, Some(&trader), Some(keys.clone()))
        .await;
    assert_eq!(s, 403);
    let (s, _) = api
        .send(Method::PUT, &broker, None, Some(keys.clone()))
        .await;
    assert_eq!(s, 401);
    // acme's member through globex: not found.
    let (s, _) = api
        .send(
            Method::PUT,
            &broker.replace("/t/acme/", "/t/globex/"),
            Some(&globex_admin),
            Some(keys.clone()),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = api
        .send(
            Method::PUT,
            &format!("{members}/{}/broker", Uuid::new_v4()),
            Some(&admin),
            Some(keys.clone()),
        )
        .await;
    assert_eq!(s, 404);
    let (s, text) = api
        .send(Method::PUT, &broker, Some(&admin), Some(keys.clone()))
        .await;
    assert_eq!(s, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["data"]["paper"], true);
    assert_eq!(body["data"]["broker"], "alpaca");
    assert!(!text.contains(GOOD1.0) && !text.contains(GOOD1.1));
    let (_, text) = api
        .send(
            Method::GET,
            &format!("{members}?limit=200"),
            Some(&admin),
            None,
        )
        .await;
    assert!(text.contains("\"brokerAttached\":true"));
    assert!(!text.contains(GOOD1.0) && !text.contains(GOOD1.1));
    // Stored sealed, bound to the member: no plaintext in the database.
    assert_eq!(
        count(
            &state,
            "acme",
            &format!(
                "SELECT count(*) AS n FROM broker_accounts WHERE sealed_credentials LIKE '%{}%' \
                 OR sealed_credentials LIKE '%{}%'",
                GOOD1.0, GOOD1.1
            )
        )
        .await,
        0
    );

    // Detach, then detach again: not found.
    let (s, body) = api.json(Method::DELETE, &broker, Some(&admin), None).await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = api.json(Method::DELETE, &broker, Some(&admin), None).await;
    assert_eq!(s, 404);
    assert_eq!(
        count(&state, "acme", "SELECT count(*) AS n FROM broker_accounts").await,
        0
    );

    // Every admin action is in the audit log, with no key in it.
    let log = state.auth.clone().audit_log("acme", 200).await.unwrap();
    let actions: Vec<(String, String)> = log
        .iter()
        .map(|r| (r.action.clone(), r.result.clone()))
        .collect();
    for want in [
        ("member.upsert", "success"),
        ("member.upsert", "failure"),
        ("member.import.preview", "success"),
        ("member.import.commit", "success"),
        ("member.import.commit", "failure"),
        ("broker.attach", "success"),
        ("broker.attach", "failure"),
        ("broker.detach", "success"),
    ] {
        assert!(
            actions.iter().any(|(a, r)| a == want.0 && r == want.1),
            "{want:?} not in {actions:?}"
        );
    }
    let dump = serde_json::to_string(&log).unwrap();
    assert!(!dump.contains(GOOD1.0) && !dump.contains(GOOD1.1) && !dump.contains("AKLIVEKEY"));
    server.stop().await;
}

// ------------------------------------------------------------ snapshot job and leaderboard

async fn alpaca(mock: &MockServer, keys: (&str, &str), status: u16, equity: &str, last: &str) {
    if status != 200 {
        Mock::given(method("GET"))
            .and(header("APCA-API-KEY-ID", keys.0))
            .respond_with(ResponseTemplate::new(status).set_body_string("internal"))
            .mount(mock)
            .await;
        return;
    }
    Mock::given(method("GET"))
        .and(path("/v2/account"))
        .and(header("APCA-API-KEY-ID", keys.0))
        .and(header("APCA-API-SECRET-KEY", keys.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "904837e3-3b76-47ec-b432-046db621571b",
            "account_number": "PA1234",
            "status": "ACTIVE",
            "currency": "USD",
            "cash": "25000.5",
            "equity": equity,
            "last_equity": last,
            "buying_power": "50000"
        })))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/positions"))
        .and(header("APCA-API-KEY-ID", keys.0))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
            "symbol": "AAPL", "exchange": "NASDAQ", "asset_class": "us_equity",
            "qty": "10", "side": "long", "market_value": "1900.0",
            "avg_entry_price": "150.0", "current_price": "190.0", "unrealized_pl": "400.0"
        }])))
        .mount(mock)
        .await;
}

async fn attach(api: &Api, tenant: &str, admin: &str, member: Uuid, keys: (&str, &str)) {
    let (s, text) = api
        .send(
            Method::PUT,
            &format!("/api/v1/t/{tenant}/admin/members/{member}/broker"),
            Some(admin),
            Some(json!({"keyId": keys.0, "secretKey": keys.1})),
        )
        .await;
    assert_eq!(s, 200, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_job_survives_failures_reruns_and_feeds_the_leaderboard() {
    let mock = MockServer::start().await;
    alpaca(&mock, GOOD1, 200, "110000", "100000").await;
    alpaca(&mock, GOOD2, 200, "95000", "100000").await;
    alpaca(&mock, GOOD3, 200, "101000", "100000").await;
    alpaca(&mock, BAD, 500, "", "").await;
    let pki = Pki::new();
    let mut config = config(&pki).await;
    config.snapshot = rampart_members::SnapshotConfig {
        broker_base_url: mock.uri(),
        ..Default::default()
    };
    let (server, state) = start(config).await;
    for slug in ["acme", "globex", "initech"] {
        state.tenants.provision(slug, slug).await.unwrap();
    }
    let api = Api {
        http: client(&pki.ca.cert_pem(), None),
        addr: server.public_addr,
    };
    let (_, acme_admin) = user(&state, "acme", "root@acme.test", Role::Admin).await;
    let (_, globex_admin) = user(&state, "globex", "root@globex.test", Role::Admin).await;
    let (_, initech_admin) = user(&state, "initech", "root@initech.test", Role::Admin).await;
    let (winner, winner_token) = user(&state, "acme", "win@acme.test", Role::Trader).await;
    let (loser, _) = user(&state, "acme", "lose@acme.test", Role::Trader).await;
    let (broken, _) = user(&state, "acme", "broken@acme.test", Role::Trader).await;
    let (steady, _) = user(&state, "globex", "steady@globex.test", Role::Trader).await;
    let (initech_member, _) = user(&state, "initech", "m@initech.test", Role::Trader).await;
    attach(&api, "acme", &acme_admin, winner, GOOD1).await;
    attach(&api, "acme", &acme_admin, loser, GOOD2).await;
    attach(&api, "acme", &acme_admin, broken, BAD).await;
    attach(&api, "globex", &globex_admin, steady, GOOD3).await;
    attach(&api, "initech", &initech_admin, initech_member, GOOD3).await;
    // initech's schema breaks: the job cannot even list its accounts.
    state
        .tenants
        .with_tenant("initech", async |conn| {
            diesel::sql_query("DROP TABLE broker_accounts CASCADE")
                .execute(conn)
                .await
                .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap();

    // The trigger lives on the admin listener (client certificate).
    let operator = pki
        .ca
        .issue_client("ops", (2025, 1, 1), (2035, 1, 1))
        .unwrap();
    let ops = client(&pki.ca.cert_pem(), Some(&operator));
    let trigger = |date: &'static str| {
        let ops = ops.clone();
        let addr = server.admin_addr;
        async move {
            let res = ops
                .post(url(addr, "/admin/jobs/snapshot"))
                .json(&json!({"date": date}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, 200, "{body}");
            body["data"].clone()
        }
    };
    let res = ops
        .post(url(server.admin_addr, "/admin/jobs/snapshot"))
        .body("{\"date\": \"yesterday\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let report = trigger("2026-11-20").await;
    assert_eq!(report["ran"], true);
    assert_eq!(report["succeeded"], 3, "{report}");
    assert_eq!(report["failedMembers"], 1, "{report}");
    assert_eq!(report["failedTenants"], 1, "{report}");
    let acme = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "acme")
        .unwrap();
    assert_eq!(acme["failed"][0]["memberId"], broken.to_string());
    assert!(acme["failed"][0]["error"].as_str().unwrap().contains("500"));
    let dump = report.to_string();
    for k in [GOOD1, GOOD2, GOOD3, BAD] {
        assert!(!dump.contains(k.0) && !dump.contains(k.1));
    }

    // Rerun: same day, no duplicates.
    let again = trigger("2026-11-20").await;
    assert_eq!(again["succeeded"], 3);
    assert_eq!(
        count(
            &state,
            "acme",
            "SELECT count(*) AS n FROM portfolio_snapshots"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &state,
            "acme",
            "SELECT count(*) AS n FROM leaderboard_daily"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &state,
            "acme",
            "SELECT count(*) AS n FROM portfolio_snapshots WHERE jsonb_array_length(positions) = 1 AND cash = 25000.5"
        )
        .await,
        2
    );

    // The run is audited per tenant with its counts.
    let log = state.auth.clone().audit_log("acme", 50).await.unwrap();
    let run = log.iter().find(|r| r.action == "snapshot.run").unwrap();
    assert_eq!(run.result, "partial");
    assert!(run.actor.as_deref().unwrap().starts_with("mtls:"));
    let detail: Value = serde_json::from_str(&run.detail).unwrap();
    assert_eq!(
        (&detail["accounts"], &detail["succeeded"], &detail["failed"]),
        (&json!(3), &json!(2), &json!(1))
    );

    // Another replica holding the lock: this one does nothing.
    let mut holder = state.tenants.raw_pool().get().await.unwrap();
    diesel::sql_query("SELECT pg_advisory_lock(8241989122805096816)")
        .execute(&mut holder)
        .await
        .unwrap();
    let skipped = trigger("2026-11-21").await;
    assert_eq!(skipped["ran"], false);
    diesel::sql_query("SELECT pg_advisory_unlock(8241989122805096816)")
        .execute(&mut holder)
        .await
        .unwrap();
    drop(holder);

    // Leaderboard: day, sorted by return, cursor-paginated.
    let lb = "/api/v1/t/acme/leaderboard";
    let (s, _) = api.json(Method::GET, lb, None, None).await;
    assert_eq!(s, 401);
    let (s, body) = api
        .json(
            Method::GET,
            &format!("{lb}?period=day&limit=1"),
            Some(&winner_token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["asOf"], "2026-11-20");
    assert_eq!(body["data"]["entries"][0]["memberId"], winner.to_string());
    assert_eq!(body["data"]["entries"][0]["rank"], 1);
    assert!((body["data"]["entries"][0]["returnPct"].as_f64().unwrap() - 0.1).abs() < 1e-9);
    assert_eq!(body["data"]["entries"][0]["pnl"], 10000.0);
    let cursor = body["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let (_, body) = api
        .json(
            Method::GET,
            &format!("{lb}?period=day&limit=1&cursor={cursor}"),
            Some(&winner_token),
            None,
        )
        .await;
    assert_eq!(body["data"]["entries"][0]["memberId"], loser.to_string());
    assert_eq!(body["data"]["entries"][0]["rank"], 2);
    assert!(body["meta"]["nextCursor"].is_null());
    let (s, _) = api
        .json(
            Method::GET,
            &format!("{lb}?period=year"),
            Some(&winner_token),
            None,
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = api
        .json(
            Method::GET,
            &format!("{lb}?cursor=%%%"),
            Some(&winner_token),
            None,
        )
        .await;
    assert_eq!(s, 400);

    // A second day: the week spans both.
    let day2 = trigger("2026-11-21").await;
    assert_eq!(day2["succeeded"], 3);
    let (_, body) = api
        .json(
            Method::GET,
            &format!("{lb}?period=week&sort=pnl"),
            Some(&winner_token),
            None,
        )
        .await;
    assert_eq!(body["data"]["asOf"], "2026-11-21");
    assert_eq!(body["data"]["entries"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"]["entries"][0]["memberId"], winner.to_string());

    // Opt-out hides the member.
    let (s, _) = api
        .json(
            Method::PUT,
            &format!("{lb}/opt-out"),
            Some(&winner_token),
            Some(json!({"optOut": true})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, body) = api.json(Method::GET, lb, Some(&winner_token), None).await;
    let ids: Vec<&str> = body["data"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["memberId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [loser.to_string()]);

    // Detach removes the key and everything derived from it.
    let (s, body) = api
        .json(
            Method::DELETE,
            &format!("/api/v1/t/acme/admin/members/{loser}/broker"),
            Some(&acme_admin),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["snapshotsRemoved"], 2);
    assert_eq!(
        count(
            &state,
            "acme",
            &format!("SELECT count(*) AS n FROM portfolio_snapshots WHERE user_id = '{loser}'")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &state,
            "acme",
            &format!("SELECT count(*) AS n FROM leaderboard_daily WHERE user_id = '{loser}'")
        )
        .await,
        0
    );
    let (_, body) = api.json(Method::GET, lb, Some(&winner_token), None).await;
    assert_eq!(body["data"]["entries"].as_array().unwrap().len(), 0);
    server.stop().await;
}
