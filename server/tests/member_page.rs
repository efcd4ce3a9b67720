//! The member page end to end: the real server over TLS without Vault
//! (broker keys sealed by the development transit key), the demo members
//! seeded through the snapshot job against the built-in Alpaca replay, then
//! headless Chromium through `member_page.e2e.mjs` (the admin page test's
//! tooling): sign-in with PKCE, the equity chart, the P&L table and the
//! leaderboard; a member without snapshots told so. Plus the page's headers.

use rampart_auth::Role;
use rampart_members::replay::AlpacaReplay;
use rampart_server::demo_members::{DEMO_DAYS, DEMO_MEMBERS, seed};

use crate::admin_page::{browser_tooling, free_port, run_browser_script};
use crate::common::{PASSWORD, Pki, client_builder, config, start};

const TENANT: &str = "e2emember";

#[tokio::test(flavor = "multi_thread")]
async fn member_page_end_to_end_in_headless_chromium() {
    let modules = browser_tooling();
    let pki = Pki::new();
    let mut config = config(&pki).await;
    let port = free_port();
    config.public_addr = format!("127.0.0.1:{port}").parse().unwrap();
    config.public_base_url = format!("https://localhost:{port}");
    config.dev_transit = true;
    let (server, state) = start(config).await;
    let auth = crate::common::auth(&state);
    state.tenants.provision(TENANT, "E2E Member").await.unwrap();
    rampart_server::admin_console::ensure_client(&auth, TENANT)
        .await
        .unwrap();
    let member_email = format!("trader@{TENANT}.example");
    auth.register(TENANT, &member_email, "Tom Trader", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let newcomer_email = format!("nina@{TENANT}.example");
    auth.register(TENANT, &newcomer_email, "Nina New", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let replay = AlpacaReplay::start().await.unwrap();
    seed(&state, &replay, TENANT, chrono::Utc::now().date_naive())
        .await
        .unwrap();

    // The page and its headers, before the browser.
    let base = format!("https://localhost:{}", server.public_addr.port());
    let http = client_builder(&pki.ca.cert_pem())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{base}/t/{TENANT}/member/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    let html = r.text().await.unwrap();
    assert!(html.contains("data-page=\"member\""), "{html}");
    assert!(html.contains(&format!(
        "data-redirect-uri=\"{base}/t/{TENANT}/member/callback\""
    )));
    assert!(!html.contains("<script>"), "no inline script");
    let r = http
        .get(format!("{base}/t/{TENANT}/member"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    let r = http
        .get(format!("{base}/t/nosuchtenant/member/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The browser.
    run_browser_script(
        "member_page.e2e.mjs",
        &modules,
        &[
            ("RAMPART_BASE_URL", base.clone()),
            ("RAMPART_TENANT", TENANT.into()),
            ("RAMPART_MEMBER_EMAIL", member_email.clone()),
            ("RAMPART_NEWCOMER_EMAIL", newcomer_email.clone()),
            ("RAMPART_PASSWORD", PASSWORD.into()),
            ("RAMPART_DAYS", DEMO_DAYS.to_string()),
            ("RAMPART_MEMBERS", DEMO_MEMBERS.to_string()),
        ],
    )
    .await;
    server.stop().await;
}
