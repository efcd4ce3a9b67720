//! `SecretStore` against real OpenBao dev servers from `rampart-testkit`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

use rampart_vault::{
    Sealed, SecretStore, SecretString, VaultAuth, VaultConfig, VaultError, VaultHealth,
};

fn root_client(addr: &str) -> VaultClient {
    VaultClient::new(
        VaultClientSettingsBuilder::default()
            .address(addr)
            .token("root")
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

/// A prefix of the test's own so tests sharing one OpenBao do not meet.
fn unique_prefix(test: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "rampart-test/{test}-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

async fn put(addr: &str, prefix: &str, path: &str, value: Value) -> u64 {
    let meta = vaultrs::kv2::set(
        &root_client(addr),
        "secret",
        &format!("{prefix}/{path}"),
        &value,
    )
    .await
    .unwrap();
    meta.version
}

fn fast_config(addr: &str, prefix: &str, secrets: &[&str]) -> VaultConfig {
    VaultConfig {
        path_prefix: prefix.to_owned(),
        secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
        request_timeout_ms: 1_000,
        refresh_interval_ms: 150,
        retry_min_backoff_ms: 100,
        retry_max_backoff_ms: 400,
        ..VaultConfig::dev(addr, "root")
    }
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

#[derive(Debug, Deserialize)]
struct JwtKeys {
    signing_key: String,
    kid: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn loads_secrets_and_picks_up_rotation() {
    rampart_testkit::install_crypto_provider();
    let bao = rampart_testkit::openbao().unwrap();
    let prefix = unique_prefix("rotation");
    put(
        &bao.addr(),
        &prefix,
        "jwt",
        json!({"signing_key": "k1-super-secret", "kid": "k1"}),
    )
    .await;
    put(
        &bao.addr(),
        &prefix,
        "database",
        json!({"url": "postgres://app:pw-secret@db/rampart"}),
    )
    .await;

    let store = SecretStore::connect(fast_config(&bao.addr(), &prefix, &["jwt", "database"]))
        .await
        .unwrap();
    assert!(store.health().is_ok());
    let jwt: JwtKeys = store.typed("jwt").unwrap();
    assert_eq!(
        (jwt.signing_key.as_str(), jwt.kid.as_str()),
        ("k1-super-secret", "k1")
    );
    assert_eq!(store.version("jwt"), Some(1));
    assert_eq!(
        store.secret("database").unwrap().get_str("url"),
        Some("postgres://app:pw-secret@db/rampart")
    );

    // Nothing secret in Debug output.
    let debug = format!(
        "{store:?} {:?} {:?}",
        store.secret("jwt").unwrap(),
        store.config()
    );
    assert!(
        !debug.contains("k1-super-secret")
            && !debug.contains("pw-secret")
            && !debug.contains("\"root\""),
        "{debug}"
    );
    assert!(
        debug.contains("signing_key"),
        "field names are shown: {debug}"
    );

    // Wrong shape: the error names the field, never the value.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        signing_key: u64,
    }
    let err = store.typed::<Wrong>("jwt").unwrap_err().to_string();
    assert!(!err.contains("k1-super-secret"), "{err}");

    // Rotation written to Vault is picked up by the background task.
    let mut rx = store.subscribe();
    let v2 = put(
        &bao.addr(),
        &prefix,
        "jwt",
        json!({"signing_key": "k2-super-secret", "kid": "k2"}),
    )
    .await;
    assert_eq!(v2, 2);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            rx.changed().await.unwrap();
            if rx.borrow().get("jwt").map(|s| s.version()) == Some(2) {
                break;
            }
        }
    })
    .await
    .expect("rotation seen through subscribe()");
    let jwt: JwtKeys = store.typed("jwt").unwrap();
    assert_eq!(jwt.kid, "k2");
    // The untouched secret keeps its version.
    assert_eq!(store.version("database"), Some(1));

    // An explicit refresh with nothing new changes nothing.
    assert!(store.refresh().await.unwrap().changed.is_empty());

    // write_kv + refresh: the same path the `keys rotate` command would take.
    let v3 = store
        .write_kv(
            "jwt",
            &fields(json!({"signing_key": "k3-super-secret", "kid": "k3"})),
        )
        .await
        .unwrap();
    assert_eq!(v3, 3);
    let outcome = store.refresh().await.unwrap();
    assert!(outcome.changed.contains(&("jwt".to_owned(), 3)) || store.version("jwt") == Some(3));
    assert_eq!(store.typed::<JwtKeys>("jwt").unwrap().kid, "k3");
    // read_kv reads Vault directly.
    assert_eq!(store.read_kv("jwt").await.unwrap().version(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_to_start_without_required_secrets() {
    rampart_testkit::install_crypto_provider();
    let bao = rampart_testkit::openbao().unwrap();
    let prefix = unique_prefix("missing");
    put(&bao.addr(), &prefix, "jwt", json!({"signing_key": "x"})).await;
    let err = SecretStore::connect(fast_config(&bao.addr(), &prefix, &["jwt", "database"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VaultError::Startup { path, .. } if path == "database"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("database"), "{message}");

    // Bad token: a clear error, no token in it.
    let mut cfg = fast_config(&bao.addr(), &prefix, &["jwt"]);
    cfg.auth = VaultAuth::Token {
        token: SecretString::from("not-the-token"),
    };
    let err = SecretStore::connect(cfg).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Startup { source, .. } if matches!(**source, VaultError::Api { status: 403, .. })),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("not-the-token"));

    // Nothing listening: unreachable, quickly.
    let port = rampart_testkit::free_port().unwrap();
    let started = Instant::now();
    let err = SecretStore::connect(fast_config(
        &format!("http://127.0.0.1:{port}"),
        &prefix,
        &["jwt"],
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, VaultError::Startup { source, .. } if source.is_unreachable()),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // Config validation names the field.
    let mut cfg = VaultConfig::dev("not a url", "root");
    assert!(matches!(cfg.validate(), Err(VaultError::Config(m)) if m.contains("address")));
    cfg = VaultConfig::dev("http://127.0.0.1:1", "");
    assert!(matches!(cfg.validate(), Err(VaultError::Config(m)) if m.contains("token")));
}

#[tokio::test(flavor = "multi_thread")]
async fn transit_envelope_round_trip() {
    rampart_testkit::install_crypto_provider();
    let bao = rampart_testkit::openbao().unwrap();
    let prefix = unique_prefix("transit");
    let mut cfg = fast_config(&bao.addr(), &prefix, &[]);
    cfg.transit_key = "rampart-test-envelope".to_owned();
    let store = SecretStore::connect(cfg).await.unwrap();
    store.ensure_transit_key().await.unwrap();
    store.ensure_transit_key().await.unwrap(); // idempotent

    let plaintext = b"broker-api-secret: sk_live_0123456789abcdef";
    let context = b"tenant=acme;purpose=broker-credential;id=42";
    let sealed = store.encrypt(plaintext, context).await.unwrap();
    let stored = sealed.to_json();
    assert!(!stored.contains("sk_live"), "{stored}");
    assert!(!stored.as_bytes().windows(10).any(|w| w == &plaintext[..10]));
    assert!(
        sealed.wrapped_key.starts_with("vault:v1:"),
        "{}",
        sealed.wrapped_key
    );
    // A fresh data key and nonce every time.
    let again = store.encrypt(plaintext, context).await.unwrap();
    assert_ne!(again.wrapped_key, sealed.wrapped_key);
    assert_ne!(again.ciphertext, sealed.ciphertext);

    let parsed = Sealed::from_json(&stored).unwrap();
    let opened = store.decrypt(&parsed, context).await.unwrap();
    assert_eq!(opened.as_slice(), plaintext);

    // Wrong context fails.
    assert!(matches!(
        store.decrypt(&parsed, b"tenant=other").await,
        Err(VaultError::Decrypt)
    ));
    // Tampered ciphertext fails.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64.decode(&parsed.ciphertext).unwrap();
    bytes[3] ^= 0x01;
    let tampered = Sealed {
        ciphertext: b64.encode(&bytes),
        ..parsed.clone()
    };
    assert!(matches!(
        store.decrypt(&tampered, context).await,
        Err(VaultError::Decrypt)
    ));
    // Swapped data key (from another value) fails.
    let swapped = Sealed {
        wrapped_key: again.wrapped_key.clone(),
        ..parsed.clone()
    };
    assert!(matches!(
        store.decrypt(&swapped, context).await,
        Err(VaultError::Decrypt)
    ));
    // Tampered wrapped key is refused by Vault.
    let mut wrapped = parsed.wrapped_key.clone();
    wrapped.replace_range(12..14, if &wrapped[12..14] == "AA" { "BB" } else { "AA" });
    let bad_key = Sealed {
        wrapped_key: wrapped,
        ..parsed.clone()
    };
    let err = store.decrypt(&bad_key, context).await.unwrap_err();
    assert!(matches!(err, VaultError::Decrypt), "{err:?}");
    // Garbage is malformed, not a panic.
    assert!(Sealed::from_json("{}").is_err());
    let short_nonce = Sealed {
        nonce: b64.encode([0u8; 4]),
        ..parsed.clone()
    };
    assert!(matches!(
        store.decrypt(&short_nonce, context).await,
        Err(VaultError::Malformed(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn keeps_serving_when_vault_goes_away_and_recovers() {
    rampart_testkit::install_crypto_provider();
    let bao = rampart_testkit::BaoServer::start().unwrap();
    let addr = bao.addr();
    let prefix = "rampart";
    put(
        &addr,
        prefix,
        "jwt",
        json!({"signing_key": "held-secret", "kid": "k1"}),
    )
    .await;
    put(
        &addr,
        prefix,
        "jwt",
        json!({"signing_key": "held-secret-2", "kid": "k2"}),
    )
    .await;
    let store = SecretStore::connect(fast_config(&addr, prefix, &["jwt"]))
        .await
        .unwrap();
    assert_eq!(store.version("jwt"), Some(2));
    // A store that watches no secrets (transit only) still tracks reachability.
    let transit_only = SecretStore::connect(fast_config(&addr, prefix, &[]))
        .await
        .unwrap();
    assert!(transit_only.refresh().await.is_ok());

    bao.stop().unwrap();
    let t = transit_only.clone();
    wait_for(
        "degraded (no secrets)",
        Duration::from_secs(10),
        async || !t.health().is_ok(),
    )
    .await;
    let s = store.clone();
    wait_for("degraded health", Duration::from_secs(10), async || {
        !s.health().is_ok()
    })
    .await;
    let VaultHealth::Degraded { since, last_error } = store.health() else {
        unreachable!()
    };
    assert!(since <= chrono::Utc::now());
    assert!(last_error.contains("unreachable"), "{last_error}");
    assert!(!last_error.contains("held-secret"));
    // Still serving what it holds, for a while.
    for _ in 0..5 {
        assert_eq!(
            store.typed::<JwtKeys>("jwt").unwrap().signing_key,
            "held-secret-2"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The outage start does not move while it lasts.
    let VaultHealth::Degraded {
        since: later_since, ..
    } = store.health()
    else {
        panic!("recovered early")
    };
    assert_eq!(since, later_since);

    // A restarted dev server is empty: reachable, but the secret is missing,
    // so the store stays degraded and keeps the held value.
    bao.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!store.health().is_ok());
    assert_eq!(store.typed::<JwtKeys>("jwt").unwrap().kid, "k2");

    // Secrets written again: recovered, new value (version 1 on the new server).
    put(
        &addr,
        prefix,
        "jwt",
        json!({"signing_key": "after-restart", "kid": "k3"}),
    )
    .await;
    let s = store.clone();
    wait_for("health ok", Duration::from_secs(10), async || {
        s.health().is_ok()
    })
    .await;
    assert_eq!(store.typed::<JwtKeys>("jwt").unwrap().kid, "k3");
    assert_eq!(store.version("jwt"), Some(1));
    assert_eq!(store.health(), VaultHealth::Ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn approle_login() {
    rampart_testkit::install_crypto_provider();
    let bao = rampart_testkit::openbao().unwrap();
    let addr = bao.addr();
    let root = root_client(&addr);
    let prefix = unique_prefix("approle");

    // Enable AppRole (once per shared server), a policy, a role.
    match vaultrs::sys::auth::enable(&root, "approle", "approle", None).await {
        Ok(()) => {}
        Err(vaultrs::error::ClientError::APIError { code: 400, errors })
            if errors.iter().any(|e| e.contains("already in use")) => {}
        Err(e) => panic!("enable approle: {e:?}"),
    }
    let policy = format!(
        r#"path "secret/data/{prefix}/*" {{ capabilities = ["read"] }}
path "secret/metadata/{prefix}/*" {{ capabilities = ["read"] }}"#
    );
    vaultrs::sys::policy::set(&root, "rampart-approle-test", &policy)
        .await
        .unwrap();
    let role = prefix.replace('/', "-");
    vaultrs::auth::approle::role::set(
        &root,
        "approle",
        &role,
        Some(
            vaultrs::api::auth::approle::requests::SetAppRoleRequest::builder()
                .token_policies(vec!["rampart-approle-test".to_owned()])
                .token_ttl("1h"),
        ),
    )
    .await
    .unwrap();
    let role_id = vaultrs::auth::approle::role::read_id(&root, "approle", &role)
        .await
        .unwrap()
        .role_id;
    let secret_id = vaultrs::auth::approle::role::secret::generate(&root, "approle", &role, None)
        .await
        .unwrap()
        .secret_id;

    put(
        &addr,
        &prefix,
        "jwt",
        json!({"signing_key": "approle-secret", "kid": "a1"}),
    )
    .await;

    // secret_id from a file, as deployments mount it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    std::fs::write(&file, format!("{secret_id}\n")).unwrap();
    let cfg = VaultConfig {
        auth: VaultAuth::AppRole {
            mount: "approle".to_owned(),
            role_id: SecretString::from(role_id.clone()),
            secret_id: None,
            secret_id_file: Some(file),
        },
        ..fast_config(&addr, &prefix, &["jwt"])
    };
    assert!(!format!("{cfg:?}").contains(&secret_id));
    let store = SecretStore::connect(cfg.clone()).await.unwrap();
    assert_eq!(
        store.typed::<JwtKeys>("jwt").unwrap().signing_key,
        "approle-secret"
    );
    // The policy is enforced: the AppRole token cannot write.
    let err = store
        .write_kv("jwt", &fields(json!({"signing_key": "x"})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::Api { status: 403, .. }),
        "{err:?}"
    );

    // A wrong secret id: a login error, without the secret.
    let bad = VaultConfig {
        auth: VaultAuth::AppRole {
            mount: "approle".to_owned(),
            role_id: SecretString::from(role_id),
            secret_id: Some(SecretString::from("wrong-secret-id")),
            secret_id_file: None,
        },
        ..cfg
    };
    let err = SecretStore::connect(bad).await.unwrap_err();
    assert!(matches!(err, VaultError::Auth(_)), "{err:?}");
    assert!(!err.to_string().contains("wrong-secret-id"));
}

#[test]
fn config_from_toml_like_json() {
    let cfg: VaultConfig = serde_json::from_value(json!({
        "address": "https://vault.internal:8200",
        "auth": {"method": "approle", "role_id": "r", "secret_id_file": "/run/secrets/vault-secret-id"},
        "secrets": ["jwt", "database"],
        "transit_key": "broker-creds"
    }))
    .unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.kv_mount, "secret");
    assert_eq!(cfg.path_prefix, "rampart");
    assert!(matches!(cfg.auth, VaultAuth::AppRole { ref mount, .. } if mount == "approle"));
    let err = serde_json::from_value::<VaultConfig>(json!({"adress": "x"})).unwrap_err();
    assert!(err.to_string().contains("adress"));
    let err = serde_json::from_value::<VaultConfig>(
        json!({"auth": {"method": "token", "token": "t", "extra": 1}}),
    );
    assert!(err.is_err());
    let cfg: VaultConfig =
        serde_json::from_value(json!({"auth": {"method": "token", "token": "s3cr3t"}})).unwrap();
    assert!(!format!("{cfg:?}").contains("s3cr3t"));
    let printed = serde_json::to_string(&cfg).unwrap();
    assert!(
        !printed.contains("s3cr3t") && printed.contains("[redacted]"),
        "{printed}"
    );
}
