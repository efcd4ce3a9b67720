//! The admin web page end to end: the real server over TLS, then headless
//! Chromium (Debian's `chromium`) driven by playwright-core through
//! `admin_page.e2e.mjs` — OAuth login with PKCE, refusal of a non-admin,
//! health, one member added, a CSV with a broken row previewed, fixed and
//! committed, a paper broker key refused, attached and detached, a
//! trader's portfolio listed and its two SVG charts shown — and the
//! result checked in the database. Plus the page's
//! headers and the health route's refusals over plain HTTPS.
use rampart_auth::Role;
use rampart_server::app::AppState;
use rampart_testkit::valid_slug;
use serde_json::Value;
use uuid::Uuid;

use crate::common::{get_status, mint_token};
use crate::pages::{PageServer, Transit};

const TENANT: &str = "e2eadmin";

/// An access token for `user`, minted as the token endpoint would.
async fn token(state: &AppState, user: Uuid, role: Role) -> String {
    mint_token(state, TENANT, user, role, "admin-console").await
}

/// `GET url` with `bearer`: the response.
async fn get_with(http: &reqwest::Client, url: &str, bearer: &str) -> reqwest::Response {
    http.get(url).bearer_auth(bearer).send().await.unwrap()
}

// ------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread")]
async fn admin_page_end_to_end_in_headless_chromium() {
    let page = PageServer::start(TENANT, "E2E Admin", Transit::Vault).await;
    let (state, http, base) = (&page.state, &page.http, &page.base);
    let (admin_email, admin) = page.register("ada", "Ada Admin", Role::Admin).await;
    let (viewer_email, viewer) = page.register("vera", "Vera Viewer", Role::Viewer).await;
    let (trader_email, trader) = page.register("tom", "Tom Trader", Role::Trader).await;

    // The page, its headers and assets, before the browser.
    let (csp, _) = page.check_page("admin").await;
    assert!(csp.contains("default-src 'none'"));
    // Charts are shown as <img> from blob: URLs, nothing else is allowed.
    assert!(csp.contains("img-src 'self' blob:;"), "{csp}");
    let client_row = page
        .auth
        .client(&valid_slug(TENANT), "admin-console")
        .await
        .unwrap();
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

    // The health route: admin only.
    let health = format!("{base}/api/v1/t/{TENANT}/admin/health");
    assert_eq!(get_status(http, &health).await, 401);
    let viewer_token = token(state, viewer.id.into(), Role::Viewer).await;
    let r = get_with(http, &health, &viewer_token).await;
    assert_eq!(r.status(), 403);
    let admin_token = token(state, admin.id.into(), Role::Admin).await;
    let r = get_with(http, &health, &admin_token).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["health"]["reachable"], true);
    assert_eq!(body["data"]["health"]["status"], "active");

    // A portfolio with positions owned by the trader, for the Portfolios
    // panel; its charts over the API with the admin's token.
    let trader_token = token(state, trader.id.into(), Role::Trader).await;
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
        assert_eq!(get_status(http, &url).await, 401);
        let r = get_with(http, &url, &admin_token).await;
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
    page.run_browser_script(
        "admin_page.e2e.mjs",
        &[
            ("RAMPART_ADMIN_EMAIL", admin_email.clone()),
            ("RAMPART_VIEWER_EMAIL", viewer_email.clone()),
            ("RAMPART_PORTFOLIO_ID", portfolio_id.clone()),
            ("RAMPART_PORTFOLIO_NAME", "Tom's Tech".into()),
            ("RAMPART_PORTFOLIO_OWNER", trader_email.clone()),
        ],
    )
    .await;

    // What the browser did, as the database has it.
    let members = rampart_members::Members::new(state.tenants.clone());
    let (list, _) = members
        .list_members(&valid_slug(TENANT), None, 200)
        .await
        .unwrap();
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
    let members_url = format!("{base}/api/v1/t/{TENANT}/admin/members");
    let r: Value = get_with(http, &members_url, &admin_token)
        .await
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

    page.server.stop().await;
}
