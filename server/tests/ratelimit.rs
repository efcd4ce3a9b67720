use rampart_ratelimit::Quota;

use crate::common::{Pki, client, config, get_status, start, url};

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_shared_by_two_instances_through_redis() {
    let redis = rampart_testkit::redis().unwrap();
    let pki = Pki::new();
    let mut a_config = config(&pki).await;
    a_config.redis_url = Some(redis.url());
    a_config.rate_limit.key_prefix = format!("rl-test-{}", std::process::id());
    a_config.rate_limit.per_ip = Quota::new(6, std::time::Duration::from_secs(60), 6);
    let mut b_config = a_config.clone();
    b_config.database.database_url = a_config.database.database_url.clone();
    let (a, _) = start(a_config).await;
    let (b, _) = start(b_config).await;
    let http = client(&pki.ca.cert_pem(), None);
    let mut statuses = Vec::new();
    for i in 0..8 {
        let addr = if i % 2 == 0 {
            a.public_addr
        } else {
            b.public_addr
        };
        let res = http.get(url(addr, "/openapi.json")).send().await.unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            assert_eq!(res.headers()["ratelimit-remaining"], "0");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    // Six allowed in all — not six per instance.
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 429, 429]);
    // Health stays reachable when limited.
    assert_eq!(get_status(&http, &url(a.public_addr, "/health")).await, 200);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tenant_limit_counts_api_and_oauth_paths_of_that_tenant_only() {
    let pki = Pki::new();
    let mut config = config(&pki).await;
    config.rate_limit.key_prefix = format!("rl-tenant-{}", std::process::id());
    config.rate_limit.per_ip = Quota::new(1_000, std::time::Duration::from_secs(60), 1_000);
    config.rate_limit.per_tenant = Quota::new(4, std::time::Duration::from_secs(60), 4);
    let (server, _) = start(config).await;
    let http = client(&pki.ca.cert_pem(), None);
    let mut statuses = Vec::new();
    // Both tenant-scoped path families draw from the same tenant budget.
    for path in [
        "/api/v1/t/acme/portfolios",
        "/t/acme/.well-known/openid-configuration",
        "/api/v1/t/acme/me",
        "/t/acme/jwks.json",
        "/api/v1/t/acme/portfolios",
    ] {
        let res = http
            .get(url(server.public_addr, path))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("tenant"),
                "{body}"
            );
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses[..4].iter().all(|s| *s != 429), "{statuses:?}");
    // Another tenant has its own budget.
    let res = http
        .get(url(server.public_addr, "/api/v1/t/globex/portfolios"))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 429);
    server.stop().await;
}
