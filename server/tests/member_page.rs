//! The member page end to end: the real server over TLS without Vault
//! (broker keys sealed by the development transit key), the demo members
//! seeded through the snapshot job against the built-in Alpaca replay, then
//! headless Chromium through `member_page.e2e.mjs` (the page tests' tooling
//! in `pages`): sign-in with PKCE, the equity chart, the P&L table and the
//! leaderboard; a member without snapshots told so. Plus the page's headers.
use rampart_auth::Role;
use rampart_members::replay::AlpacaReplay;
use rampart_server::demo_members::{DEMO_DAYS, DEMO_MEMBERS, seed};
use rampart_testkit::valid_slug;

use crate::pages::{PageServer, Transit};

const TENANT: &str = "e2emember";

#[tokio::test(flavor = "multi_thread")]
async fn member_page_end_to_end_in_headless_chromium() {
    let page = PageServer::start(TENANT, "E2E Member", Transit::Dev).await;
    let (member_email, _) = page.register("trader", "Tom Trader", Role::Trader).await;
    let (newcomer_email, _) = page.register("nina", "Nina New", Role::Trader).await;
    let replay = AlpacaReplay::start().await.unwrap();
    seed(
        &page.state,
        &replay,
        &valid_slug(TENANT),
        chrono::Utc::now().date_naive(),
    )
    .await
    .unwrap();

    // The page and its headers, before the browser.
    let (_, html) = page.check_page("member").await;
    assert!(html.contains("data-page=\"member\""), "{html}");

    // The browser.
    page.run_browser_script(
        "member_page.e2e.mjs",
        &[
            ("RAMPART_MEMBER_EMAIL", member_email.clone()),
            ("RAMPART_NEWCOMER_EMAIL", newcomer_email.clone()),
            ("RAMPART_DAYS", DEMO_DAYS.to_string()),
            ("RAMPART_MEMBERS", DEMO_MEMBERS.to_string()),
        ],
    )
    .await;
    page.server.stop().await;
}
