//! Upstream identity providers per tenant, end to end against a real
//! oidc-provider: registered on the admin listener, by a tenant admin and
//! with the `rampart idps` CLI, then used to sign in over HTTP; client
//! secrets in the secret store only (never in the database or an answer);
//! a bad issuer refused with `idp_check_failed`; tenants isolated; a
//! disabled provider stops logins; e-mail linking follows the tenant
//! setting; `[[upstream_providers]]` applied at start.
use rampart_testkit::{acme, valid_slug};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use rampart_auth::{AuthError, ClientContext, Role};
use rampart_testkit::OidcProvider;
use rampart_vault::{SecretStore, VaultConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{CLIENT_SCOPES, PASSWORD, scoped_token, url};
use crate::oauth::{Browser, IDP_CALLBACK as CALLBACK, cookies, idp_sign_in, oauth_env, test_idp};

const SECRET: &str = "idp-secret-4b1d-never-shown";

fn pq(u: &url::Url) -> String {
    format!("{}?{}", u.path(), u.query().unwrap_or(""))
}

/// Signs in at `tenant`'s `provider` as upstream account `who`, through the
/// server's login routes: the last status, and whether a session cookie of
/// the tenant was set (no `return_to`: the "signed in" page, 200).
pub(crate) async fn sign_in(
    b: &Browser,
    tenant: &str,
    provider: &str,
    who: &str,
) -> (StatusCode, bool) {
    let r = b
        .get(&format!("/t/{tenant}/login/upstream/{provider}"))
        .send()
        .await
        .unwrap();
    if r.status() != StatusCode::FOUND {
        return (r.status(), false);
    }
    let pending = cookies(&r).into_iter().next().unwrap().into_owned();
    let back = idp_sign_in(r.headers()["location"].to_str().unwrap(), who).await;
    let r = b
        .get(&pq(&back))
        .header("cookie", pending.stripped().to_string())
        .send()
        .await
        .unwrap();
    let session = cookies(&r)
        .iter()
        .any(|c| c.name() == format!("rampart_session_{tenant}") && !c.value().is_empty());
    (r.status(), session)
}

pub(crate) const SIGNED_IN: (StatusCode, bool) = (StatusCode::OK, true);

/// Every row of every table of `tenant`'s schema as text.
pub(crate) async fn schema_text(env: &crate::common::Env, tenant: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        row: String,
    }
    env.state
        .tenants
        .with_tenant(&valid_slug(tenant), async |conn| {
            // raw SQL: catalog query and whole-row dumps of every table.
            let tables: Vec<Row> = diesel_async::RunQueryDsl::load(
                diesel::sql_query(
                    "SELECT tablename::text AS row FROM pg_tables WHERE schemaname = current_schema()",
                ),
                conn,
            )
            .await?;
            let mut all = String::new();
            for t in tables {
                let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
                    diesel::sql_query(format!("SELECT t::text AS row FROM \"{}\" t", t.row)),
                    conn,
                )
                .await?;
                for r in rows {
                    all.push_str(&r.row);
                    all.push('\n');
                }
            }
            Ok::<_, rampart_tenancy::TenancyError>(all)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_from_the_admin_api_sign_users_in_and_keep_their_secret_out_of_sight() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    // Clients `web` with every scope (admin tokens), in acme and globex.
    let b = Browser::new(crate::common::env_with(crate::common::roomy_limits).await);
    let env = &b.env;
    let ops = env.pki.client(Some(&env.pki.operator()));
    let admin = |path: &str| url(env.server.admin_addr, path);

    // A bad issuer is refused with a typed error, nothing is stored.
    let r = ops
        .post(admin("/admin/t/acme/idps"))
        .json(&json!({"name": "idp", "displayName": "Test IdP",
                      "issuer": format!("{}/nowhere", idp.issuer()),
                      "clientId": OidcProvider::CLIENT_ID, "redirectUri": CALLBACK}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "idp_check_failed", "{body}");

    // The operator registers it with a secret: the answer only says so.
    let r = ops
        .post(admin("/admin/t/acme/idps"))
        .json(
            &json!({"name": "idp", "displayName": "Test IdP", "issuer": idp.issuer(),
                      "clientId": OidcProvider::CLIENT_ID, "clientSecret": SECRET,
                      "redirectUri": CALLBACK, "scopes": ["email", "profile"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created = r.text().await.unwrap();
    assert!(!created.contains(SECRET));
    let created: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["data"]["hasClientSecret"], true, "{created}");
    // In the dev secret store (0600), nowhere in the database.
    let file = env.pki.path("dev-secrets/upstream/acme/idp");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), SECRET);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let dump = schema_text(env, "acme").await;
    assert!(dump.contains("Test IdP") && !dump.contains(SECRET));
    // The provider's client is public (PKCE only): drop the secret again.
    let r = ops
        .patch(admin("/admin/t/acme/idps/idp"))
        .json(&json!({"removeClientSecret": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!file.exists());

    // The tenant admin sees it (no secret); globex's admin does not.
    let auth = env.auth();
    let (_, acme_admin) =
        scoped_token(&auth, "acme", "root@acme.test", Role::Admin, CLIENT_SCOPES).await;
    let (_, globex_admin) = scoped_token(
        &auth,
        "globex",
        "root@globex.test",
        Role::Admin,
        CLIENT_SCOPES,
    )
    .await;
    let listed = env.with(&acme_admin).get(200, "/api/v1/t/acme/idps").await;
    assert_eq!(listed["data"][0]["name"], "idp");
    assert_eq!(listed["data"][0]["hasClientSecret"], false);
    env.with(&globex_admin)
        .get(401, "/api/v1/t/acme/idps")
        .await;
    let theirs = env
        .with(&globex_admin)
        .get(200, "/api/v1/t/globex/idps")
        .await;
    assert_eq!(theirs["data"], json!([]));
    env.with(&globex_admin)
        .get(404, "/api/v1/t/globex/idps/idp")
        .await;

    // Sign in through it over HTTP; globex cannot use acme's provider.
    assert_eq!(sign_in(&b, "acme", "idp", "grace").await, SIGNED_IN);
    assert_eq!(
        b.get("/t/globex/login/upstream/idp")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // Disabled by the tenant admin: not offered, logins refused.
    let off = env
        .with(&acme_admin)
        .patch(200, "/api/v1/t/acme/idps/idp", json!({"enabled": false}))
        .await;
    assert_eq!(off["data"]["enabled"], false);
    assert_eq!(
        sign_in(&b, "acme", "idp", "grace").await,
        (StatusCode::NOT_FOUND, false)
    );
    assert!(auth.upstream_providers(&acme()).await.unwrap().is_empty());

    // Deleted by the operator; every change is audited without the secret.
    let r = ops
        .delete(admin("/admin/t/acme/idps/idp"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = auth.audit_log(&acme(), 100).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    for action in ["idp_create", "idp_update", "idp_delete"] {
        assert!(actions.contains(&action), "{actions:?}");
    }
    assert!(!format!("{log:?}").contains(SECRET));
}

/// Runs `rampart idps ARGS…` in `dir` (its default dev secret store is
/// `dir/.rampart/dev-secrets`), `stdin` on standard input; stdout.
fn rampart_idps(dir: &std::path::Path, args: &[&str], database_url: &str, stdin: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("idps")
        .args(args)
        .args(["--database-url", database_url])
        .env("RAMPART_LOG", "warn")
        .env_remove("RAMPART_CONFIG")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    crate::common::stdout_of(out, &format!("rampart idps {args:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_added_with_the_cli_sign_users_in() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let b = Browser::new(oauth_env(|_| {}).await);
    let db = b.env.state.config.database.database_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let issuer = idp.issuer();
    let added = rampart_idps(
        dir.path(),
        &[
            "add",
            "acme",
            "idp",
            "--display-name",
            "CLI IdP",
            "--issuer",
            &issuer,
            "--client-id",
            OidcProvider::CLIENT_ID,
            "--redirect-uri",
            CALLBACK,
        ],
        &db,
        "",
    );
    assert!(
        added.contains("idp") && added.contains("enabled"),
        "{added}"
    );
    // The running server reads it from the table.
    assert_eq!(sign_in(&b, "acme", "idp", "hedy").await, SIGNED_IN);

    // A second provider with a secret read from standard input: stored in
    // the dev store (0600), never printed, not in the database.
    let out = rampart_idps(
        dir.path(),
        &[
            "add",
            "acme",
            "sso",
            "--issuer",
            &issuer,
            "--client-id",
            "other",
            "--redirect-uri",
            "http://127.0.0.1:9/callback",
            "--client-secret-stdin",
        ],
        &db,
        &format!("{SECRET}\n"),
    );
    assert!(
        out.contains("secret=stored") && !out.contains(SECRET),
        "{out}"
    );
    let file = dir.path().join(".rampart/dev-secrets/upstream/acme/sso");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), SECRET);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let shown = rampart_idps(dir.path(), &["show", "acme", "sso"], &db, "");
    assert!(shown.contains("\"hasClientSecret\": true") && !shown.contains(SECRET));
    assert!(!schema_text(&b.env, "acme").await.contains(SECRET));

    let disabled = rampart_idps(dir.path(), &["disable", "acme", "sso"], &db, "");
    assert!(disabled.contains("disabled"), "{disabled}");
    rampart_idps(dir.path(), &["enable", "acme", "sso"], &db, "");
    let updated = rampart_idps(
        dir.path(),
        &[
            "update",
            "acme",
            "sso",
            "--scopes",
            "email",
            "--new-user-role",
            "trader",
        ],
        &db,
        "",
    );
    assert!(
        updated.contains("trader") && updated.contains("scopes=email"),
        "{updated}"
    );
    let list = rampart_idps(dir.path(), &["list", "acme"], &db, "");
    assert_eq!(list.lines().count(), 2, "{list}");
    rampart_idps(dir.path(), &["remove", "acme", "sso"], &db, "");
    assert!(!file.exists());
    let list = rampart_idps(dir.path(), &["list", "acme"], &db, "");
    assert_eq!(list.lines().count(), 1, "{list}");
    // The tenant must exist.
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["idps", "list", "nosuch", "--database-url", &db])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Completes a library-level upstream login at acme's `idp` as `who`.
async fn login_as(
    auth: &rampart_auth::AuthServer,
    who: &str,
) -> Result<rampart_auth::UpstreamOutcome, AuthError> {
    let start = auth.begin_login(&acme(), "idp", None).await.unwrap();
    let back = idp_sign_in(&start.authorization_url, who).await;
    let q: HashMap<String, String> = back.query_pairs().into_owned().collect();
    auth.complete_login(
        &acme(),
        "idp",
        &q["code"],
        &q["state"],
        q.get("iss").map(String::as_str),
        &start.pending,
        &ClientContext::ip("127.0.0.1"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn linking_by_email_follows_the_tenant_setting() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let env = oauth_env(|_| {}).await;
    let auth = env.auth();
    auth.add_upstream_provider(&acme(), test_idp(idp, true))
        .await
        .unwrap();
    // Local accounts with verified addresses (the operator's path).
    let ida = auth
        .register(
            &acme(),
            "ida@upstream.example",
            "Ida",
            PASSWORD,
            Role::Trader,
        )
        .await
        .unwrap();
    let joe = auth
        .register(
            &acme(),
            "joe@upstream.example",
            "Joe",
            PASSWORD,
            Role::Trader,
        )
        .await
        .unwrap();

    // `none`: never linked by e-mail, even with the provider's flag on.
    env.state
        .tenants
        .update_tenant_settings(&acme(), &json!({"upstreamLinking": "none"}))
        .await
        .unwrap();
    let first = login_as(&auth, "ida").await.unwrap();
    assert!(first.created);
    assert_ne!(first.user.id, ida.id);
    assert!(
        first.user.email.ends_with(".upstream.invalid"),
        "{}",
        first.user.email
    );

    // `verified_email` (the default) with the flag on: linked.
    env.state
        .tenants
        .update_tenant_settings(&acme(), &json!({"upstreamLinking": "verified_email"}))
        .await
        .unwrap();
    let linked = login_as(&auth, "joe").await.unwrap();
    assert!(!linked.created);
    assert_eq!(linked.user.id, joe.id);

    // The provider's flag off: not linked, whatever the setting.
    auth.upstream()
        .update_provider(
            &acme(),
            "idp",
            &rampart_auth::UpstreamProviderUpdate {
                link_verified_email: Some(false),
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    let kim = auth
        .register(
            &acme(),
            "kim@upstream.example",
            "Kim",
            PASSWORD,
            Role::Trader,
        )
        .await
        .unwrap();
    let fresh = login_as(&auth, "kim").await.unwrap();
    assert!(fresh.created);
    assert_ne!(fresh.user.id, kim.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_providers_are_applied_at_start() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let env = oauth_env(|_| {}).await;
    let pki = &env.pki;
    // The section as a deployer writes it.
    let file = pki.path("rampart.toml");
    std::fs::write(
        &file,
        format!(
            r#"
public_base_url = "https://localhost:8443"
[tls]
cert_file = "{}"
key_file = "{}"
client_ca_file = "{}"
[database]
database_url = "postgres://unused"

[[upstream_providers]]
tenant = "acme"
name = "idp"
display_name = "Declared IdP"
issuer = "{}"
client_id = "{}"
redirect_uri = "{CALLBACK}"
client_secret_env = "RAMPART_TEST_IDP_SECRET"
scopes = ["email"]
"#,
            pki.files.cert_file.display(),
            pki.files.key_file.display(),
            pki.files.client_ca_file.display(),
            idp.issuer(),
            OidcProvider::CLIENT_ID,
        ),
    )
    .unwrap();
    let config = rampart_server::config::ServerConfig::load(Some(&file)).unwrap();
    assert_eq!(config.upstream_providers.len(), 1);
    let auth = env.auth();
    let apply = async |declared: &[rampart_server::idp_config::DeclaredProvider],
                       vault: Option<&SecretStore>| {
        rampart_server::idp_config::apply(declared, &config.public_base_url, &auth, vault).await
    };
    // Its secret's variable is not set: the start stops, nothing stored.
    assert!(apply(&config.upstream_providers, None).await.is_err());
    assert!(
        auth.upstream()
            .list_providers(&acme())
            .await
            .unwrap()
            .is_empty()
    );

    // The same declaration with its secret in Vault (the kit's OpenBao).
    let bao = rampart_testkit::openbao().unwrap();
    let store = SecretStore::connect(VaultConfig::dev(bao.addr(), bao.token()))
        .await
        .unwrap();
    let path = format!("idp-test/{}", uuid::Uuid::new_v4().simple());
    let mut fields = serde_json::Map::new();
    fields.insert("client_secret".into(), SECRET.into());
    store.write_kv(&path, &fields).await.unwrap();
    let mut declared = config.upstream_providers.clone();
    declared[0].client_secret_env = None;
    declared[0].client_secret_vault_path = Some(path);
    apply(&declared, Some(&store)).await.unwrap();
    let info = auth.upstream().provider_info(&acme(), "idp").await.unwrap();
    assert_eq!(info.display_name, "Declared IdP");
    assert!(info.has_client_secret);
    // Kept in the server's secret store (here the dev one).
    assert_eq!(
        std::fs::read_to_string(pki.path("dev-secrets/upstream/acme/idp")).unwrap(),
        SECRET
    );
    // Applying it again (a restart) changes nothing and audits nothing.
    let before = auth.audit_log(&acme(), 100).await.unwrap().len();
    apply(&declared, Some(&store)).await.unwrap();
    assert_eq!(auth.audit_log(&acme(), 100).await.unwrap().len(), before);
}
