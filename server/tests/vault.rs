use rampart_testkit::valid_slug;
use rampart_vault::VaultConfig;

use crate::common::{
    Pki, client, config, get_json, get_status, start, url, vault_with_secrets, write_secret,
};

#[tokio::test(flavor = "multi_thread")]
async fn secrets_come_from_vault_and_an_outage_only_degrades_readiness() {
    let (bao, _) = own_bao();
    let pki = Pki::new();
    let mut config = config(&pki).await;
    // The database URL and the key-encryption key come from Vault only.
    let database_url = std::mem::take(&mut config.database.database_url);
    let mut vault = vault_with_secrets(
        &bao,
        &[
            ("database", serde_json::json!({"url": database_url})),
            ("auth", serde_json::json!({"kek": "11".repeat(32)})),
        ],
    )
    .await;
    vault.refresh_interval_ms = 200;
    config.vault = Some(vault);
    config.key_check_secs = 1;
    let (server, state) = start(config.clone()).await;
    let (replica, _) = start(config).await;
    let http = client(&pki.ca.cert_pem(), None);
    // Readiness in full is the admin listener's.
    let admin = client(&pki.ca.cert_pem(), Some(&pki.operator()));
    let ready = get_json(&admin, &url(server.admin_addr, "/ready")).await;
    assert_eq!(ready["data"]["status"], "ready", "{ready}");
    assert_eq!(ready["data"]["vault"]["configured"], true);
    // Signing keys are stored in Vault.
    state
        .tenants
        .provision(&valid_slug("vlt"), "Vault")
        .await
        .unwrap();
    let jwks = get_json(&http, &url(server.public_addr, "/t/vlt/jwks.json")).await;
    assert!(!jwks["keys"].as_array().unwrap().is_empty());

    // A signing-key rotation on one replica is picked up by the other
    // through Vault.
    let kids = |jwks: &serde_json::Value| -> std::collections::BTreeSet<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let operator = pki.operator();
    let rotated = crate::common::send_json(
        client(&pki.ca.cert_pem(), Some(&operator))
            .post(url(server.admin_addr, "/admin/keys/rotate"))
            .json(&serde_json::json!({"kind": "es256"})),
    )
    .await;
    let after = kids(&rotated["data"]);
    assert_ne!(after, kids(&jwks), "rotation published no new key");
    // The replica reloads every second (`key_check_secs = 1`); 30 s of
    // polling leaves room for a loaded machine (it failed once at 10 s
    // while two builds ran beside the suite).
    let mut seen = false;
    for _ in 0..120 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let theirs = get_json(&http, &url(replica.public_addr, "/t/vlt/jwks.json")).await;
        if kids(&theirs) == after {
            seen = true;
            break;
        }
    }
    assert!(seen, "the replica did not pick up the rotation");
    replica.stop().await;

    bao.stop().unwrap();
    let mut degraded = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let res = admin
            .get(url(server.admin_addr, "/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "Vault down must not make the server unready"
        );
        let body: serde_json::Value = res.json().await.unwrap();
        if body["data"]["status"] == "degraded" {
            assert_eq!(body["data"]["degraded"], serde_json::json!(["vault"]));
            degraded = true;
            break;
        }
    }
    assert!(degraded, "readiness never reported the Vault outage");
    // Still serving with the secrets it holds.
    assert_eq!(
        get_status(&http, &url(server.public_addr, "/t/vlt/jwks.json")).await,
        200
    );
    assert_eq!(
        get_status(&http, &url(server.public_addr, "/health")).await,
        200
    );
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
    let err = rampart_server::serve::build_state(config)
        .await
        .err()
        .expect("started without secrets");
    assert!(err.to_string().contains("missing-database-secret"), "{err}");
}

/// Listener certificates for `localhost` from the `pki` mount's `server`
/// role, living `ttl`, kept in `runtime`; no operator subjects.
pub(crate) fn vault_pki_tls(
    runtime: std::path::PathBuf,
    ttl: &str,
    client_ca_file: Option<std::path::PathBuf>,
) -> rampart_server::tls::VaultTls {
    rampart_server::tls::VaultTls {
        request: rampart_vault::PkiRequest {
            mount: "pki".into(),
            role: "server".into(),
            common_name: "localhost".into(),
            alt_names: vec![],
            ip_sans: vec!["127.0.0.1".into()],
            ttl: ttl.into(),
        },
        runtime_dir: runtime,
        client_ca_file,
        operator_subjects: vec![],
    }
}

/// An OpenBao server of the test's own (to configure or stop) and its address.
pub(crate) fn own_bao() -> (rampart_testkit::BaoServer, String) {
    rampart_testkit::install_crypto_provider();
    let bao = rampart_testkit::BaoServer::start().unwrap();
    let addr = bao.addr();
    (bao, addr)
}

pub(crate) async fn bao_post(addr: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let res = reqwest::Client::new()
        .post(format!("{addr}/v1/{path}"))
        .header("X-Vault-Token", "root")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap_or(serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn listener_certificates_can_come_from_vault_pki_and_are_renewed() {
    let (bao, addr) = own_bao();
    bao_post(
        &addr,
        "sys/mounts/pki",
        serde_json::json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
    )
    .await;
    let root = bao_post(
        &addr,
        "pki/root/generate/internal",
        serde_json::json!({"common_name": "Rampart Vault Root", "ttl": "8760h"}),
    )
    .await;
    let root_pem = root["data"]["certificate"].as_str().unwrap().to_owned();
    bao_post(
        &addr,
        "pki/roles/server",
        serde_json::json!({"allowed_domains": "localhost", "allow_bare_domains": true, "allow_localhost": true, "allow_ip_sans": true, "max_ttl": "72h"}),
    )
    .await;

    let pki = Pki::new();
    let mut config = config(&pki).await;
    config.tls = None;
    let runtime = pki.path("vault-tls");
    let client_ca = Some(pki.files.client_ca_file.clone());
    config.tls_vault_pki = Some(vault_pki_tls(runtime.clone(), "6s", client_ca));
    write_secret(&addr, "auth", serde_json::json!({"kek": "22".repeat(32)})).await;
    config.vault = Some(VaultConfig::dev(addr.clone(), bao.token()));
    let (server, _state) = start(config).await;
    // The public listener presents the Vault-issued certificate.
    let http = client(&root_pem, None);
    assert_eq!(
        get_status(&http, &url(server.public_addr, "/health")).await,
        200
    );
    // A client trusting only the dev CA refuses it.
    assert!(
        client(&pki.ca.cert_pem(), None)
            .get(url(server.public_addr, "/health"))
            .send()
            .await
            .is_err()
    );
    // Admin still requires the operator CA's client certificates.
    let operator = pki.operator();
    let res = client(&root_pem, Some(&operator))
        .get(url(server.admin_addr, "/admin/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Renewed at two thirds of its 6 s lifetime: a new certificate on disk,
    // and fresh connections keep working after the old one expired.
    let first = std::fs::read_to_string(runtime.join("server.pem")).unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let second = std::fs::read_to_string(runtime.join("server.pem")).unwrap();
    assert_ne!(first, second, "certificate was not renewed");
    let fresh = client(&root_pem, None);
    assert_eq!(
        get_status(&fresh, &url(server.public_addr, "/health")).await,
        200
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_command_rotates_the_keys_in_vault() {
    let (bao, _) = own_bao();
    write_secret(
        &bao.addr(),
        "auth",
        serde_json::json!({"kek": "33".repeat(32)}),
    )
    .await;
    let pki = Pki::new();
    let db = rampart_testkit::fresh_database().await.unwrap();
    let toml = format!(
        "public_base_url = \"https://localhost:8443\"\n\
         [tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\n\
         [database]\ndatabase_url = {:?}\n\
         [vault]\naddress = {:?}\n[vault.auth]\nmethod = \"token\"\ntoken = \"root\"\n",
        pki.files.cert_file,
        pki.files.key_file,
        pki.files.client_ca_file,
        db.url,
        bao.addr()
    );
    let file = pki.path("rampart.toml");
    std::fs::write(&file, toml).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(args)
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        crate::common::stdout_of(out, &format!("{args:?}"))
    };
    let kids = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|k| k.len() > 8)
            .map(str::to_owned)
            .collect()
    };
    let before = kids(&run(&["keys", "list"]));
    assert!(!before.is_empty());
    let rotated = run(&["keys", "rotate", "--kind", "es256"]);
    assert!(rotated.starts_with("rotated"));
    let after = kids(&run(&["keys", "list"]));
    assert!(
        after.difference(&before).count() >= 1,
        "no new key published: {before:?} → {after:?}"
    );
}
