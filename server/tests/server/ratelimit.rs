use rampart_server::ratelimit::Quota;

use crate::{Pki, client, config, start, url};

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
    assert_eq!(
        http.get(url(a.public_addr, "/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    a.stop().await;
    b.stop().await;
}
