//! `rampart demo` without Vault: broker keys sealed by the development
//! transit key, and the TigerQuant members seeded through the snapshot job
//! against the built-in Alpaca replay, served by the leaderboard and the
//! members' own portfolio routes.
use rampart_auth::Role;
use rampart_members::replay::AlpacaReplay;
use rampart_server::demo_members::{DEMO_DAYS, DEMO_MEMBERS, seed};
use rampart_testkit::acme;
use serde_json::json;

use crate::common::{PASSWORD, count, env_with, mint_token};

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_seeds_ten_members_with_thirty_days_and_seals_keys_without_vault() {
    let env = env_with(|c| c.dev_transit = true).await;
    assert!(env.state.vault.is_none());
    let auth = env.auth();
    let trader = auth
        .register(
            &acme(),
            "trader@acme.example",
            "Tom Trader",
            PASSWORD,
            Role::Trader,
        )
        .await
        .unwrap();
    let admin = auth
        .register(
            &acme(),
            "admin@acme.example",
            "Ada Admin",
            PASSWORD,
            Role::Admin,
        )
        .await
        .unwrap();
    let replay = AlpacaReplay::start().await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let written = seed(&env.state, &replay, &acme(), today).await.unwrap();
    assert_eq!(written, DEMO_MEMBERS * DEMO_DAYS as usize);
    // Again (a demo restart): nothing more is written.
    assert_eq!(seed(&env.state, &replay, &acme(), today).await.unwrap(), 0);

    // The leaderboard ranks the ten members, for today.
    let token = mint_token(&env.state, "acme", trader.id.into(), Role::Trader, "web").await;
    let board = env
        .with(&token)
        .get(200, "/api/v1/t/acme/leaderboard?period=month")
        .await;
    let entries = board["data"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), DEMO_MEMBERS, "{board}");
    assert_eq!(board["data"]["asOf"], json!(today.to_string()), "{board}");

    // The demo trader's own portfolio: thirty points, oldest first, total
    // P&L the sum of the daily ones.
    let mine = env
        .with(&token)
        .get(200, "/api/v1/t/acme/me/portfolio")
        .await;
    let points = mine["data"]["points"].as_array().unwrap();
    assert_eq!(points.len(), DEMO_DAYS as usize, "{mine}");
    let last = points.last().unwrap();
    assert_eq!(last["date"], json!(today.to_string()));
    assert!(points.iter().all(|p| p["positions"].as_u64().unwrap() >= 2));
    let svg = env
        .expect_response(200, "/api/v1/t/acme/me/portfolio.svg", &token)
        .await;
    assert!(svg.text().await.unwrap().contains("<svg"));

    // An admin attaches a key pair over HTTP: sealed by the development key
    // (no Vault), stored without the secret.
    let admin_token = mint_token(&env.state, "acme", admin.id.into(), Role::Admin, "web").await;
    let secret = "s3cretDemoKeys3cretDemoKeys3cretDemoKey1";
    env.with(&admin_token)
        .put(
            200,
            &format!("/api/v1/t/acme/admin/members/{}/broker", admin.id),
            json!({"keyId": "PKADMINAAAAAAAAAAAAA", "secretKey": secret}),
        )
        .await;
    let sealed = count(
        &env.state,
        "acme",
        &format!(
            "SELECT count(*) AS n FROM broker_accounts WHERE user_id = '{}' \
             AND sealed_credentials LIKE '%\"wrapped_key\":\"dev:v1:%' \
             AND sealed_credentials NOT LIKE '%{secret}%'",
            admin.id
        ),
    )
    .await;
    assert_eq!(sealed, 1);
    env.server.stop().await;
}
