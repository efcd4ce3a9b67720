//! Abuse paths of issue 13 (server side): rate limits one source cannot turn
//! against a tenant, client addresses from trusted proxies only, `/ready`
//! without internals, the admin listener refusing the server's own
//! certificate, and the audit log the tenant role cannot rewrite.
use rampart_testkit::{acme, valid_slug};
use std::net::IpAddr;
use std::time::Duration;

use rampart_auth::Role;
use rampart_ratelimit::Quota;

use rampart_server::tls::IssuedCert;

use crate::common::{Env, PASSWORD, env_with, map_items, mint_token};

/// A client of `env`'s server whose connections come from `local`.
fn client_from(env: &Env, local: &str) -> reqwest::Client {
    crate::common::client_builder(&env.pki.ca.cert_pem())
        .local_address(Some(local.parse::<IpAddr>().unwrap()))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_anonymous_flood_from_one_address_does_not_starve_the_tenants_users() {
    let env = env_with(|c| {
        c.rate_limit.key_prefix = format!("rl-flood-{}", std::process::id());
        c.rate_limit.per_ip = Quota::new(10, Duration::from_secs(600), 10);
        c.rate_limit.per_tenant = Quota::new(20, Duration::from_secs(600), 20);
    })
    .await;
    let user = env
        .auth()
        .register(&acme(), "ann@acme.test", "Ann", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let token = mint_token(&env.state, "acme", user.id.into(), Role::Trader, "web").await;

    // One source floods a public route of the tenant until it is refused,
    // and keeps going.
    let flooder = client_from(&env, "127.0.0.1");
    let mut statuses = Vec::new();
    for _ in 0..60 {
        let res = flooder
            .get(env.url("/t/acme/jwks.json"))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        50,
        "{statuses:?}"
    );

    // A user of the tenant from elsewhere is served.
    let user_client = client_from(&env, "127.0.0.2");
    let res = user_client
        .get(env.url("/api/v1/t/acme/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    // So is another anonymous source: the flooder's refused requests spent
    // nothing of the tenant's anonymous budget.
    let other = client_from(&env, "127.0.0.3");
    let res = other
        .get(env.url("/t/acme/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A forged bearer token does not reach the authenticated budget: it is
    // anonymous traffic, limited per IP like the rest.
    let res = flooder
        .get(env.url("/api/v1/t/acme/me"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    env.server.stop().await;
}

async fn status_with(http: &reqwest::Client, env: &Env, header: Option<(&str, &str)>) -> u16 {
    let mut r = http.get(env.url("/openapi.json"));
    if let Some((name, value)) = header {
        r = r.header(name, value);
    }
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_client_addresses_count_only_from_trusted_proxies() {
    let env = env_with(|c| {
        c.rate_limit.key_prefix = format!("rl-proxy-{}", std::process::id());
        c.rate_limit.per_ip = Quota::new(3, Duration::from_secs(600), 3);
        c.http.trusted_proxies = vec!["127.0.0.2/32".to_owned().try_into().unwrap()];
    })
    .await;

    // Not a trusted proxy: the headers are ignored, the peer is limited.
    let direct = client_from(&env, "127.0.0.1");
    let mut statuses = Vec::new();
    for i in 0..4 {
        let spoofed = format!("203.0.113.{i}");
        statuses.push(status_with(&direct, &env, Some(("x-forwarded-for", &spoofed))).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);

    // The trusted proxy: each forwarded client has its own budget.
    let proxy = client_from(&env, "127.0.0.2");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status_with(&proxy, &env, Some(("x-forwarded-for", "198.51.100.1"))).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(
        status_with(&proxy, &env, Some(("x-forwarded-for", "198.51.100.2"))).await,
        200,
        "another client behind the proxy"
    );
    assert_eq!(
        status_with(
            &proxy,
            &env,
            Some(("forwarded", "for=\"198.51.100.3:4711\";proto=https"))
        )
        .await,
        200,
        "RFC 7239 Forwarded"
    );
    // A client prepending its own entry is still counted by its real one.
    assert_eq!(
        status_with(
            &proxy,
            &env,
            Some(("x-forwarded-for", "192.0.2.77, 198.51.100.1"))
        )
        .await,
        429
    );
    env.server.stop().await;
}

/// The value of the counter `name` in the server's registry.
fn counter(env: &Env, name: &str) -> f64 {
    env.state
        .metrics
        .registry
        .gather()
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("{name} is not registered"))
        .get_metric()[0]
        .get_counter()
        .value()
}

#[tokio::test(flavor = "multi_thread")]
async fn public_ready_says_only_ready_or_not_and_probes_are_shared() {
    // Redis configured but unreachable: a degraded dependency with an
    // error string that names its address.
    let port = rampart_testkit::free_port().unwrap();
    let env = env_with(|c| {
        c.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    })
    .await;
    let (status, body) = env.call(reqwest::Method::GET, "/ready", None, None).await;
    assert_eq!(status, 200, "degraded still serves: {body}");
    assert_eq!(
        body["data"],
        serde_json::json!({"status": "ready"}),
        "{body}"
    );
    let text = body.to_string();
    for internal in ["redis", "postgres", "vault", &port.to_string(), "degraded"] {
        assert!(
            !text.contains(internal),
            "{internal} in the public /ready: {text}"
        );
    }
    // The admin listener has the details.
    let admin = crate::common::Api {
        http: env.pki.client(Some(&env.pki.operator())),
        addr: env.server.admin_addr,
    };
    let details = admin
        .expect(200, reqwest::Method::GET, "/ready", None, None)
        .await;
    assert_eq!(details["data"]["status"], "degraded", "{details}");
    assert_eq!(details["data"]["degraded"], serde_json::json!(["redis"]));
    assert!(details["data"]["redis"]["detail"].is_string(), "{details}");

    // Many callers at once: one probe between them (two if a second
    // boundary falls in between), not one each.
    let before = counter(&env, "rampart_readiness_probes_total");
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let http = env.http.clone();
            let url = env.url("/ready");
            tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    let probes = counter(&env, "rampart_readiness_probes_total") - before;
    assert!(probes <= 2.0, "{probes} probes for 20 calls");
    env.server.stop().await;
}

/// An OpenBao with a PKI whose role `server` issues the listeners'
/// certificates (client auth included, Vault's default) and whose role
/// `operators` issues operators' certificates for `*.rampart.local`, and the
/// KEK secret; the root CA's PEM.
async fn bao_with_pki(addr: &str) -> String {
    use crate::vault::bao_post;
    bao_post(
        addr,
        "sys/mounts/pki",
        serde_json::json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
    )
    .await;
    let root = bao_post(
        addr,
        "pki/root/generate/internal",
        serde_json::json!({"common_name": "Rampart Vault Root", "ttl": "8760h"}),
    )
    .await;
    bao_post(
        addr,
        "pki/roles/server",
        serde_json::json!({"allowed_domains": "localhost", "allow_bare_domains": true, "allow_localhost": true, "allow_ip_sans": true, "max_ttl": "72h", "key_type": "ec", "key_bits": 256}),
    )
    .await;
    bao_post(
        addr,
        "pki/roles/operators",
        serde_json::json!({"allowed_domains": "rampart.local", "allow_subdomains": true, "max_ttl": "72h", "key_type": "ec", "key_bits": 256}),
    )
    .await;
    crate::common::write_secret(addr, "auth", serde_json::json!({"kek": "44".repeat(32)})).await;
    root["data"]["certificate"].as_str().unwrap().to_owned()
}

fn vault_tls(runtime: std::path::PathBuf, operators: &[&str]) -> rampart_server::tls::VaultTls {
    let mut tls = crate::vault::vault_pki_tls(runtime, "1h", None);
    tls.operator_subjects = operators.iter().map(|s| (*s).to_owned()).collect();
    tls
}

/// Status of `/admin/whoami` with `identity`, or `None` when the TLS
/// handshake refused it.
async fn whoami_as(
    root_pem: &str,
    admin: std::net::SocketAddr,
    identity: &IssuedCert,
) -> Option<u16> {
    crate::common::client(root_pem, Some(identity))
        .get(crate::common::url(admin, "/admin/whoami"))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_refuses_the_servers_own_vault_certificate() {
    let (bao, addr) = crate::vault::own_bao();
    let root_pem = bao_with_pki(&addr).await;
    let pki = crate::common::Pki::new();
    let mut config = crate::common::config(&pki).await;
    config.tls = None;
    config.vault = Some(rampart_vault::VaultConfig::dev(addr.clone(), bao.token()));
    let runtime = pki.path("vault-tls");
    config.tls_vault_pki = Some(vault_tls(runtime.clone(), &["DNS:ops.rampart.local"]));
    let (server, _) = crate::common::start(config.clone()).await;

    // The server's own certificate: same issuing CA, client auth allowed
    // by the PKI role — and refused.
    let own = IssuedCert {
        cert_pem: std::fs::read_to_string(runtime.join("server.pem")).unwrap(),
        key_pem: std::fs::read_to_string(runtime.join("server-key.pem")).unwrap(),
    };
    assert_eq!(whoami_as(&root_pem, server.admin_addr, &own).await, None);
    // An operator on the allow-list gets in.
    let operator = issue_operator_cert(&addr, "ops.rampart.local").await;
    assert_eq!(
        whoami_as(&root_pem, server.admin_addr, &operator).await,
        Some(200)
    );
    // Another certificate of the same PKI is not an operator.
    let intruder = issue_operator_cert(&addr, "intruder.rampart.local").await;
    assert_eq!(
        whoami_as(&root_pem, server.admin_addr, &intruder).await,
        None
    );
    server.stop().await;

    // Neither an operator CA nor an allow-list: production refuses to
    // start; dev mode uses a separate self-signed operator CA, which the
    // server's certificate is not from.
    let mut neither = config.clone();
    neither.tls_vault_pki = Some(vault_tls(pki.path("vault-tls-dev"), &[]));
    let mut production = neither.clone();
    production.mode = rampart_server::config::Mode::Production;
    let problems = production.validate().unwrap_err().0;
    assert!(
        problems.iter().any(|p| p.contains("operator_subjects")),
        "{problems:?}"
    );
    let (dev, _) = crate::common::start(neither).await;
    let dev_runtime = pki.path("vault-tls-dev");
    let own = IssuedCert {
        cert_pem: std::fs::read_to_string(dev_runtime.join("server.pem")).unwrap(),
        key_pem: std::fs::read_to_string(dev_runtime.join("server-key.pem")).unwrap(),
    };
    assert_eq!(whoami_as(&root_pem, dev.admin_addr, &own).await, None);
    let dev_operator = IssuedCert {
        cert_pem: std::fs::read_to_string(dev_runtime.join("operator.pem")).unwrap(),
        key_pem: std::fs::read_to_string(dev_runtime.join("operator-key.pem")).unwrap(),
    };
    assert_eq!(
        whoami_as(&root_pem, dev.admin_addr, &dev_operator).await,
        Some(200)
    );
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_keys_in_vault_use_the_approle_login_not_a_static_token() {
    use crate::vault::{bao_post, own_bao};
    let (bao, addr) = own_bao();
    bao_post(
        &addr,
        "sys/auth/approle",
        serde_json::json!({"type": "approle"}),
    )
    .await;
    bao_post(
        &addr,
        "sys/policies/acl/rampart",
        serde_json::json!({"policy": "path \"secret/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }"}),
    )
    .await;
    bao_post(
        &addr,
        "auth/approle/role/rampart",
        serde_json::json!({"token_policies": ["rampart"], "token_ttl": "1h"}),
    )
    .await;
    bao_post(
        &addr,
        "auth/approle/role/rampart/role-id",
        serde_json::json!({"role_id": "rampart-server"}),
    )
    .await;
    let secret_id = bao_post(
        &addr,
        "auth/approle/role/rampart/secret-id",
        serde_json::json!({}),
    )
    .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::common::write_secret(&addr, "auth", serde_json::json!({"kek": "55".repeat(32)})).await;
    assert!(std::env::var_os("RAMPART_KEYSTORE_VAULT_TOKEN").is_none());

    let pki = crate::common::Pki::new();
    let mut config = crate::common::config(&pki).await;
    config.vault = Some(rampart_vault::VaultConfig {
        auth: rampart_vault::VaultAuth::AppRole {
            mount: "approle".into(),
            role_id: rampart_vault::SecretString::from("rampart-server".to_owned()),
            secret_id: Some(rampart_vault::SecretString::from(secret_id)),
            secret_id_file: None,
        },
        ..rampart_vault::VaultConfig::dev(addr.clone(), "unused")
    });
    let env = Env::start(pki, config).await;
    env.state
        .tenants
        .provision(&valid_slug("vlt"), "Vault")
        .await
        .unwrap();
    let jwks = crate::common::get_json(&env.http, &env.url("/t/vlt/jwks.json")).await;
    let mut kids: Vec<String> = map_items(&jwks["keys"], |k| k["kid"].as_str().unwrap().to_owned());
    assert!(!kids.is_empty(), "{jwks}");
    // They are stored in Vault (written with the AppRole's token).
    let listed = crate::common::send_json(
        reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(b"LIST").unwrap(),
                format!("{addr}/v1/secret/metadata/rampart/auth/keys"),
            )
            .header("X-Vault-Token", bao.token()),
    )
    .await;
    let mut stored: Vec<String> = listed["data"]["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no keys in Vault: {listed}"))
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    stored.sort();
    assert!(
        kids.iter().all(|k| stored.contains(k)),
        "{kids:?} vs {stored:?}"
    );
    env.server.stop().await;
}

/// A client certificate Vault's PKI issues under its `operators` role.
async fn issue_operator_cert(addr: &str, common_name: &str) -> IssuedCert {
    let body = serde_json::json!({"common_name": common_name});
    let issued = crate::vault::bao_post(addr, "pki/issue/operators", body).await;
    IssuedCert {
        // Vault's PEM has no final newline.
        cert_pem: format!("{}\n", issued["data"]["certificate"].as_str().unwrap()),
        key_pem: issued["data"]["private_key"].as_str().unwrap().to_owned(),
    }
}
