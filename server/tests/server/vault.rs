use rampart_server::vault::VaultConfig;

use crate::{Pki, client, config, start, url};

async fn write_secret(addr: &str, path: &str, body: serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("{addr}/v1/secret/data/rampart/{path}"))
        .header("X-Vault-Token", "root")
        .json(&serde_json::json!({ "data": body }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_come_from_vault_and_an_outage_only_degrades_readiness() {
    let bao = rampart_testkit::BaoServer::start().unwrap();
    let pki = Pki::new();
    let mut config = config(&pki).await;
    // The database URL and the key-encryption key come from Vault only.
    let database_url = std::mem::take(&mut config.database.database_url);
    write_secret(&bao.addr(), "database", serde_json::json!({"url": database_url})).await;
    write_secret(&bao.addr(), "auth", serde_json::json!({"kek": "11".repeat(32)})).await;
    let mut vault = VaultConfig::dev(bao.addr(), bao.token());
    vault.secrets = vec!["database".into(), "auth".into()];
    vault.refresh_interval_ms = 200;
    config.vault = Some(vault);
    let (server, state) = start(config).await;
    let http = client(&pki.ca.cert_pem(), None);
    let ready: serde_json::Value = http.get(url(server.public_addr, "/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["data"]["status"], "ready", "{ready}");
    assert_eq!(ready["data"]["vault"]["configured"], true);
    // Signing keys are stored in Vault.
    state.tenants.provision("vlt", "Vault").await.unwrap();
    let jwks: serde_json::Value = http.get(url(server.public_addr, "/t/vlt/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());

    bao.stop().unwrap();
    let mut degraded = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let res = http.get(url(server.public_addr, "/ready")).send().await.unwrap();
        assert_eq!(res.status(), 200, "Vault down must not make the server unready");
        let body: serde_json::Value = res.json().await.unwrap();
        if body["data"]["status"] == "degraded" {
            assert_eq!(body["data"]["degraded"], serde_json::json!(["vault"]));
            degraded = true;
            break;
        }
    }
    assert!(degraded, "readiness never reported the Vault outage");
    // Still serving with the secrets it holds.
    assert_eq!(http.get(url(server.public_addr, "/t/vlt/jwks.json")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(url(server.public_addr, "/health")).send().await.unwrap().status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_refuses_to_start_without_its_secrets() {
    let bao = rampart_testkit::openbao().unwrap();
    let pki = Pki::new();
    let mut config = config(&pki).await;
    config.database.database_url.clear();
    let mut vault = VaultConfig::dev(bao.addr(), bao.token());
    vault.secrets = vec!["missing-database-secret".into()];
    config.vault = Some(vault);
    let err = rampart_server::serve::build_state(config).await.err().expect("started without secrets");
    assert!(err.to_string().contains("missing-database-secret"), "{err}");
}
