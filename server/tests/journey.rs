//! An operator's first day, through the `rampart` binary and HTTP only (no
//! call into the Rust libraries): provision a tenant with its first
//! administrator's e-mail (CLI), accept the invitation (the page the link
//! opens), register a public client (CLI), sign in as the administrator
//! (authorization code flow with PKCE), invite a trader (tenant API), the
//! trader accepts (JSON) and signs in, then calls `/api/v1`; an API key of
//! the trader reads the same data; the administrator sees and revokes the
//! key, changes a setting and exports the audit log, in which every step
//! above is found. Each refusal on the way is checked as well.
//!
//! [`Journey`] holds what the steps share; each step is a method.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, BrowserLogin, Pki, browser_code_flow, client, serve_toml};

const TENANT: &str = "orbit";
const ADMIN: &str = "boss@orbit.test";
const TRADER: &str = "tess@orbit.test";
const CLIENT: &str = "orbit-web";
const REDIRECT: &str = "https://app.orbit.test/cb";
const ADMIN_PASSWORD: &str = "orbit-admin-passphrase-1";
const TRADER_PASSWORD: &str = "orbit-trader-passphrase-2";

/// `rampart serve` as a child process; killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the steps share.
struct Journey {
    pki: Pki,
    database_url: String,
    config: PathBuf,
    public_port: u16,
    _server: Option<Server>,
    log: PathBuf,
    admin_token: String,
    trader_token: String,
}

/// Runs `rampart ARGS… --database-url URL`; stdout on success, panics with
/// stderr otherwise.
fn rampart(args: &[&str], database_url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .args(["--database-url", database_url])
        .env("RAMPART_LOG", "warn")
        .output()
        .unwrap();
    crate::common::stdout_of(out, &format!("rampart {args:?}"))
}

/// The accept URL a command printed.
fn printed_accept_url(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            l.split("accept URL (single use; SMTP not configured): ")
                .nth(1)
        })
        .unwrap_or_else(|| panic!("no accept URL printed: {stdout}"))
        .trim()
        .to_owned()
}

/// `METHOD path` with `Authorization: ApiKey KEY`: (status, JSON body).
async fn with_key(
    j: &Journey,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client(&j.pki.ca.cert_pem(), None)
        .request(method, format!("{}{path}", j.base()))
        .header("authorization", format!("ApiKey {key}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The token of an accept URL (its last path segment).
fn token_of(accept_url: &str) -> String {
    accept_url.rsplit('/').next().unwrap().to_owned()
}

impl Journey {
    /// A fresh database and a configuration file for `rampart serve` (dev
    /// mode, TLS from a test CA, cheap Argon2id); nothing runs yet.
    async fn new() -> Journey {
        rampart_testkit::install_crypto_provider();
        let pki = Pki::new();
        let db = rampart_testkit::postgres()
            .unwrap()
            .fresh_database()
            .await
            .unwrap();
        let tables = "[auth]\nargon2_m_kib = 1024\nargon2_t = 1\n";
        let ((public_port, _), toml) = serve_toml(&pki, &db.url, "dev-secrets", "", tables);
        let dir = pki.dir.path().to_owned();
        let config = dir.join("rampart.toml");
        std::fs::write(&config, toml).unwrap();
        Journey {
            log: dir.join("serve.log"),
            database_url: db.url.clone(),
            config,
            public_port,
            pki,
            _server: None,
            admin_token: String::new(),
            trader_token: String::new(),
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--config", self.config.to_str().unwrap()]);
        rampart(&all, &self.database_url)
    }

    fn base(&self) -> String {
        format!("https://localhost:{}", self.public_port)
    }

    fn api(&self) -> Api {
        Api {
            http: client(&self.pki.ca.cert_pem(), None),
            addr: format!("127.0.0.1:{}", self.public_port).parse().unwrap(),
        }
    }

    /// `rampart serve`, once its public listener answers.
    async fn serve(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RAMPART_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&self.log).unwrap())
            .spawn()
            .unwrap();
        self._server = Some(Server(child));
        let http = client(&self.pki.ca.cert_pem(), None);
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{}/health", self.base())).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "rampart serve did not start: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// `rampart tenants provision … --admin-email …`: the accept URL it
    /// printed (SMTP is not configured).
    fn provision(&self) -> String {
        let out = self.cli(&[
            "tenants",
            "provision",
            TENANT,
            "--name",
            "Orbit Trading",
            "--admin-email",
            ADMIN,
        ]);
        assert!(out.contains(&format!("provisioned {TENANT}")), "{out}");
        assert!(out.contains(ADMIN) && out.contains("(admin)"), "{out}");
        let link = printed_accept_url(&out);
        assert!(
            link.starts_with(&format!("{}/t/{TENANT}/invite/", self.base())),
            "{link}"
        );
        link
    }

    /// The page the link opens, then its form: the administrator's password.
    async fn accept_on_page(&self, link: &str, password: &str) {
        let http = client(&self.pki.ca.cert_pem(), None);
        let page = http.get(link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains(ADMIN), "{html}");
        let r = http
            .post(link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(crate::common::form(&[
                ("password", password),
                ("password_again", password),
            ]))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let html = r.text().await.unwrap();
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("is ready"), "{html}");
    }

    /// `rampart clients create`: a public PKCE client.
    fn register_client(&self) {
        let out = self.cli(&[
            "clients",
            "create",
            "--tenant",
            TENANT,
            CLIENT,
            "--name",
            "Orbit web",
            "--redirect-uri",
            REDIRECT,
            "--scopes",
            "openid offline_access users:manage portfolio:read portfolio:write \
             tenant:admin audit:read apikeys:manage account:manage",
        ]);
        assert!(out.contains(CLIENT) && out.contains("none"), "{out}");
        assert!(
            !out.contains("secret"),
            "a public client has no secret: {out}"
        );
        let listed = self.cli(&["clients", "list", "--tenant", TENANT]);
        assert!(
            listed.contains(CLIENT) && listed.contains("enabled"),
            "{listed}"
        );
    }

    /// The authorization code flow with PKCE through the sign-in page.
    async fn sign_in(&self, email: &str, password: &str, scope: &str) -> Value {
        let t = browser_code_flow(
            &self.pki.ca.cert_pem(),
            &self.base(),
            &BrowserLogin {
                tenant: TENANT,
                client_id: CLIENT,
                redirect_uri: REDIRECT,
                scope,
                email,
                password,
            },
        )
        .await;
        assert!(t["access_token"].is_string(), "{t}");
        t
    }

    /// The administrator invites a trader over the tenant API: the link.
    async fn invite_trader(&self) -> String {
        let out = self
            .api()
            .with(&self.admin_token)
            .post(
                201,
                &format!("/api/v1/t/{TENANT}/invitations"),
                json!({"email": TRADER, "name": "Tess Trader", "role": "trader"}),
            )
            .await;
        assert_eq!(out["data"]["status"], "pending", "{out}");
        assert_eq!(out["data"]["mailed"], false, "{out}");
        out["data"]["acceptUrl"].as_str().unwrap().to_owned()
    }

    /// The trader accepts with the JSON route.
    async fn accept_json(&self, link: &str) {
        let out = self
            .api()
            .expect(
                200,
                Method::POST,
                &format!("/api/v1/t/{TENANT}/invitations/accept"),
                None,
                Some(json!({"token": token_of(link), "password": TRADER_PASSWORD})),
            )
            .await;
        assert_eq!(out["data"]["user"]["email"], TRADER, "{out}");
        assert_eq!(out["data"]["user"]["role"], "trader", "{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_first_day() {
    let mut j = Journey::new().await;

    // 1. Provision the tenant with its first administrator (CLI).
    let admin_link = j.provision();
    j.serve().await;

    // 2. The administrator accepts on the page the link opens.
    j.accept_on_page(&admin_link, ADMIN_PASSWORD).await;

    // 3. A public client (CLI).
    j.register_client();

    // 4. The administrator signs in (code flow with PKCE).
    let t = j
        .sign_in(
            ADMIN,
            ADMIN_PASSWORD,
            "openid users:manage tenant:admin audit:read apikeys:manage",
        )
        .await;
    j.admin_token = t["access_token"].as_str().unwrap().to_owned();

    // 5. The administrator invites a trader; the trader accepts.
    let trader_link = j.invite_trader().await;
    j.accept_json(&trader_link).await;
    let listed = j
        .api()
        .with(&j.admin_token)
        .get(200, &format!("/api/v1/t/{TENANT}/invitations"))
        .await;
    let statuses: Vec<(&str, &str)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["invitation"]["email"].as_str().unwrap(),
                i["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [(TRADER, "accepted"), (ADMIN, "accepted")]);

    // 6. The trader signs in (with a refresh token) and calls the API.
    let t = j
        .sign_in(
            TRADER,
            TRADER_PASSWORD,
            "openid offline_access portfolio:read portfolio:write account:manage",
        )
        .await;
    assert!(t["refresh_token"].is_string(), "offline_access: {t}");
    j.trader_token = t["access_token"].as_str().unwrap().to_owned();
    let me = j
        .api()
        .with(&j.trader_token)
        .get(200, &format!("/api/v1/t/{TENANT}/me"))
        .await;
    assert_eq!(me["data"]["user"]["email"], TRADER, "{me}");
    assert_eq!(me["data"]["user"]["role"], "trader", "{me}");

    // 7. The trader makes a portfolio, then an API key of the trader reads
    // the same data.
    let api = j.api();
    let portfolios = format!("/api/v1/t/{TENANT}/portfolios");
    api.with(&j.trader_token)
        .post(201, &portfolios, json!({"name": "Tess core"}))
        .await;
    let by_token = api.with(&j.trader_token).get(200, &portfolios).await;
    assert_eq!(
        by_token["data"].as_array().map(Vec::len),
        Some(1),
        "{by_token}"
    );
    let keys = format!("/api/v1/t/{TENANT}/account/api-keys");
    // Refused: a scope beyond the trader's role.
    api.with(&j.trader_token)
        .post(
            403,
            &keys,
            json!({"name": "too wide", "scopes": ["portfolio:read", "tenant:admin"]}),
        )
        .await;
    let created = api
        .with(&j.trader_token)
        .post(
            201,
            &keys,
            json!({"name": "tess-laptop", "scopes": ["portfolio:read"]}),
        )
        .await;
    let key = created["data"]["key"].as_str().unwrap().to_owned();
    let prefix = created["data"]["prefix"].as_str().unwrap().to_owned();
    let (status, by_key) = with_key(&j, Method::GET, &portfolios, &key, None).await;
    assert_eq!(status, 200, "{by_key}");
    assert_eq!(by_key["data"], by_token["data"]);
    // Refused: beyond the key's own scopes, and the account routes.
    let (status, body) = with_key(
        &j,
        Method::POST,
        &portfolios,
        &key,
        Some(json!({"name": "by key"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = with_key(&j, Method::GET, &keys, &key, None).await;
    assert_eq!(status, 403);

    // 8. The administrator sees the key (last used just now) and revokes
    // it; the key is refused at once.
    let tenant_keys = api
        .with(&j.admin_token)
        .get(200, &format!("/api/v1/t/{TENANT}/api-keys"))
        .await;
    let listed = tenant_keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["prefix"] == prefix.as_str())
        .unwrap_or_else(|| panic!("{tenant_keys}"));
    assert_eq!(listed["name"], "tess-laptop");
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert!(!tenant_keys.to_string().contains(&key), "never the secret");
    api.with(&j.trader_token)
        .get(403, &format!("/api/v1/t/{TENANT}/api-keys"))
        .await;
    api.with(&j.admin_token)
        .delete(200, &format!("/api/v1/t/{TENANT}/api-keys/{prefix}"))
        .await;
    let (status, _) = with_key(&j, Method::GET, &portfolios, &key, None).await;
    assert_eq!(status, 401, "a revoked key");

    // 9. The administrator changes a setting; one outside the platform's
    // bounds is refused and changes nothing.
    let settings = format!("/api/v1/t/{TENANT}/settings");
    let changed = api
        .with(&j.admin_token)
        .patch(200, &settings, json!({"sessionLifetimeSecs": 86_400}))
        .await;
    assert_eq!(changed["data"]["sessionLifetimeSecs"], 86_400);
    let refused = api
        .with(&j.admin_token)
        .patch(
            400,
            &settings,
            json!({"sessionLifetimeSecs": 1, "publicLeaderboard": true}),
        )
        .await;
    assert_eq!(
        refused["error"]["code"], "tenant_setting_invalid",
        "{refused}"
    );
    let now = api.with(&j.admin_token).get(200, &settings).await;
    assert_eq!(now["data"]["sessionLifetimeSecs"], 86_400);
    assert_eq!(now["data"]["publicLeaderboard"], false);
    api.with(&j.trader_token)
        .patch(403, &settings, json!({"publicLeaderboard": true}))
        .await;

    // 10. The administrator exports the audit log: every step above is in
    // it, the export included; the trader may not read it.
    let audit = format!("/api/v1/t/{TENANT}/audit/export?format=jsonl");
    api.with(&j.trader_token).get(403, &audit).await;
    let (status, export) = api
        .send(Method::GET, &audit, Some(&j.admin_token), None)
        .await;
    assert_eq!(status, 200, "{export}");
    let rows: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, rows) = rows.split_last().unwrap();
    assert_eq!(last["verification"]["firstBroken"], Value::Null, "{export}");
    let count = |action: &str| rows.iter().filter(|r| r["action"] == action).count();
    for (action, at_least) in [
        ("invitation_create", 2),
        ("invitation_accept", 2),
        ("client_register", 1),
        ("login", 2),
        ("token_issue", 2),
        ("api_key_create", 1),
        ("api_key_revoke", 1),
        ("tenant_settings_update", 1),
        ("audit_export", 1),
    ] {
        assert!(
            count(action) >= at_least,
            "{action}: {} in the export, want {at_least}:\n{export}",
            count(action)
        );
    }

    // Refused: the same link again, and the trader managing invitations.
    let again = j
        .api()
        .expect(
            409,
            Method::POST,
            &format!("/api/v1/t/{TENANT}/invitations/accept"),
            None,
            Some(json!({"token": token_of(&trader_link), "password": TRADER_PASSWORD})),
        )
        .await;
    assert_eq!(again["error"]["code"], "invitation_used");
    j.api()
        .with(&j.trader_token)
        .get(403, &format!("/api/v1/t/{TENANT}/invitations"))
        .await;

    // Refused: a client of another tenant at this tenant's authorization
    // endpoint, and this tenant's token at the other tenant.
    j.cli(&["tenants", "provision", "nebula", "--name", "Nebula"]);
    j.cli(&[
        "clients",
        "create",
        "--tenant",
        "nebula",
        "nebula-web",
        "--name",
        "Nebula web",
        "--redirect-uri",
        REDIRECT,
        "--scopes",
        "openid portfolio:read",
    ]);
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(j.pki.ca.cert_pem().as_bytes()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let foreign = http
        .get(format!("{}/t/{TENANT}/oauth/authorize", j.base()))
        .query(&[
            ("response_type", "code"),
            ("client_id", "nebula-web"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s1"),
            (
                "code_challenge",
                &crate::common::challenge("a-verifier-of-enough-length-0123456789-abcdef"),
            ),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400, "never a redirect with a code");
    assert!(foreign.headers().get("location").is_none());
    j.api()
        .with(&j.trader_token)
        .get(401, "/api/v1/t/nebula/me")
        .await;
}
