//! The admin web page end to end: the real server over TLS, then headless
//! Chromium (Debian's `chromium`) driven by playwright-core through
//! `admin_page.e2e.mjs` — OAuth login with PKCE, refusal of a non-admin,
//! health, one member added, a CSV with a broken row previewed, fixed and
//! committed, a paper broker key refused, attached and detached, a
//! trader's portfolio listed and its two SVG charts shown — and the
//! result checked in the database. Plus the page's
//! headers and the health route's refusals over plain HTTPS.

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_auth::Role;
use rampart_server::app::AppState;
use serde_json::Value;
use uuid::Uuid;

use crate::common::{
    PASSWORD, Pki, client_builder, config, get_status, mint_token, start_with_transit,
};

const TENANT: &str = "e2eadmin";

/// An access token for `user`, minted as the token endpoint would.
async fn token(state: &AppState, user: Uuid, role: Role) -> String {
    mint_token(state, TENANT, user, role, "admin-console").await
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Chromium, node and playwright-core must be installed: a missing one is a
/// failure with the command that installs it, never a skip.
pub(crate) fn browser_tooling() -> PathBuf {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: install it with `apt-get install -y chromium` (./scripts/test does)"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is missing: install it with `apt-get install -y nodejs npm` (./scripts/test does)"
    );
    let modules = workspace_root().join(".cache/node/node_modules");
    assert!(
        modules.join("playwright-core/package.json").exists(),
        "playwright-core is missing: `npm install --prefix .cache/node playwright-core@1.65.1` (./scripts/test does)"
    );
    modules
}

/// A free port for the public listener: the OAuth redirect URI of the page
/// is `{public_base_url}/t/{tenant}/admin/callback`, so the base URL must
/// name the port the browser will use.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `tests/{script}` in node (Playwright driving headless Chromium)
/// with `env`, the node modules and an artifacts folder (kept on failure,
/// for its screenshot); fails unless it exits 0 having passed every step.
pub(crate) async fn run_browser_script(script: &str, modules: &Path, env: &[(&str, String)]) {
    let artifacts = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RAMPART_NODE_MODULES", modules)
        .env("RAMPART_ARTIFACTS", artifacts.path());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    if !out.status.success() {
        // Keep the failure screenshot.
        let _ = artifacts.keep();
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "the browser script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all steps passed"));
}

// ------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread")]
async fn admin_page_end_to_end_in_headless_chromium() {
    let modules = browser_tooling();
    let pki = Pki::new();
    let mut config = config(&pki).await;
    let port = free_port();
    config.public_addr = format!("127.0.0.1:{port}").parse().unwrap();
    config.public_base_url = format!("https://localhost:{port}");
    let (server, state) = start_with_transit(config).await;
    let auth = crate::common::auth(&state);
    state.tenants.provision(TENANT, "E2E Admin").await.unwrap();
    rampart_server::admin_console::ensure_client(&auth, TENANT)
        .await
        .unwrap();
    let admin_email = format!("ada@{TENANT}.example");
    let viewer_email = format!("vera@{TENANT}.example");
    let admin = auth
        .register(TENANT, &admin_email, "Ada Admin", PASSWORD, Role::Admin)
        .await
        .unwrap();
    let viewer = auth
        .register(TENANT, &viewer_email, "Vera Viewer", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    let trader_email = format!("tom@{TENANT}.example");
    let trader = auth
        .register(TENANT, &trader_email, "Tom Trader", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let base = format!("https://localhost:{}", server.public_addr.port());
    let http = client_builder(&pki.ca.cert_pem())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The page, its headers and assets, before the browser.
    let r = http
        .get(format!("{base}/t/{TENANT}/admin/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    // Charts are shown as <img> from blob: URLs, nothing else is allowed.
    assert!(csp.contains("img-src 'self' blob:;"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!(
        "data-redirect-uri=\"{base}/t/{TENANT}/admin/callback\""
    )));
    assert!(!html.contains("<script>"), "no inline script");
    let client_row = auth.client(TENANT, "admin-console").await.unwrap();
    assert_eq!(
        client_row.redirect_uris,
        vec![format!("{base}/t/{TENANT}/admin/callback")]
    );
    for (asset, kind) in [("admin.js", "text/javascript"), ("admin.css", "text/css")] {
        let r = http
            .get(format!("{base}/t/{TENANT}/admin/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
    let r = http
        .get(format!("{base}/t/{TENANT}/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    let r = http
        .get(format!("{base}/t/nosuchtenant/admin/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The health route: admin only.
    let health = format!("{base}/api/v1/t/{TENANT}/admin/health");
    assert_eq!(get_status(&http, &health).await, 401);
    let viewer_token = token(&state, viewer.id, Role::Viewer).await;
    let r = http
        .get(&health)
        .bearer_auth(&viewer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let admin_token = token(&state, admin.id, Role::Admin).await;
    let r = http
        .get(&health)
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["health"]["reachable"], true);
    assert_eq!(body["data"]["health"]["status"], "active");

    // A portfolio with positions owned by the trader, for the Portfolios
    // panel; its charts over the API with the admin's token.
    let trader_token = token(&state, trader.id, Role::Trader).await;
    let portfolios = format!("{base}/api/v1/t/{TENANT}/portfolios");
    let r = http
        .post(&portfolios)
        .bearer_auth(&trader_token)
        .json(&serde_json::json!({
            "name": "Tom's Tech",
            "positions": [
                {"symbol": "AAPL", "quantity": 100, "sector": "Technology"},
                {"symbol": "MSFT", "quantity": 200, "sector": "Technology"},
                {"symbol": "IBM", "quantity": 10, "sector": "Services"}
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let portfolio_id = body["data"]["id"].as_str().unwrap().to_owned();
    let window = "from=2005-01-01&to=2009-12-31";
    for chart in ["equity.svg", "returns.svg"] {
        let url = format!("{portfolios}/{portfolio_id}/charts/{chart}?{window}");
        assert_eq!(get_status(&http, &url).await, 401);
        let r = http
            .get(&url)
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{chart}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("image/svg+xml")
        );
        assert!(r.text().await.unwrap().contains("<svg"));
    }

    // The browser.
    run_browser_script(
        "admin_page.e2e.mjs",
        &modules,
        &[
            ("RAMPART_BASE_URL", base.clone()),
            ("RAMPART_TENANT", TENANT.into()),
            ("RAMPART_ADMIN_EMAIL", admin_email.clone()),
            ("RAMPART_VIEWER_EMAIL", viewer_email.clone()),
            ("RAMPART_PASSWORD", PASSWORD.into()),
            ("RAMPART_PORTFOLIO_ID", portfolio_id.clone()),
            ("RAMPART_PORTFOLIO_NAME", "Tom's Tech".into()),
            ("RAMPART_PORTFOLIO_OWNER", trader_email.clone()),
        ],
    )
    .await;

    // What the browser did, as the database has it.
    let members = rampart_members::Members::new(state.tenants.clone());
    let (list, _) = members.list_members(TENANT, None, 200).await.unwrap();
    let role = |email: &str| {
        list.iter()
            .find(|m| m.email == email)
            .map(|m| m.role.clone())
    };
    assert_eq!(role("grace@e2e.example").as_deref(), Some("trader"));
    assert_eq!(role("alan@e2e.example").as_deref(), Some("viewer"));
    assert_eq!(role("linus@e2e.example").as_deref(), Some("admin"));
    assert!(role("not-an-email").is_none());
    assert_eq!(list.len(), 6, "{list:?}");
    // Alan's key was attached then detached; Grace's stays attached.
    let attached = |email: &str| list.iter().any(|m| m.email == email && m.broker_attached);
    assert!(attached("grace@e2e.example"));
    assert!(!attached("alan@e2e.example"));

    // The same through the API.
    let r: Value = http
        .get(format!("{base}/api/v1/t/{TENANT}/admin/members"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["email"].as_str())
        .collect();
    assert!(emails.contains(&"grace@e2e.example") && emails.contains(&"alan@e2e.example"));

    server.stop().await;
}
