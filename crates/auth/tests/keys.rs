//! Key store, sealing and staged rotation, against memory and a real OpenBao.

use std::sync::Arc;
use std::time::Duration;

use rampart_auth::{
    KeyEncryptionKey, KeyKind, KeyRing, KeyState, KeyStore, MemoryKeyStore, RotationPolicy,
    VaultKeyStore,
};

fn policy() -> RotationPolicy {
    RotationPolicy {
        rotate_after: Duration::from_secs(1000),
        publish_lead: Duration::from_secs(100),
        retire_for: Duration::from_secs(960),
    }
}

/// A ring on an empty memory store with [`policy`], and when its first key
/// was made.
async fn fresh_ring() -> (Arc<KeyRing>, i64) {
    let store = Arc::new(MemoryKeyStore::new());
    let ring = KeyRing::open(store, KeyEncryptionKey::generate(), policy())
        .await
        .unwrap();
    let t0 = ring.keys()[0].created_at;
    (ring, t0)
}

fn count(ring: &KeyRing, kind: KeyKind, state: KeyState) -> usize {
    ring.keys()
        .iter()
        .filter(|k| k.kind == kind && k.state == state)
        .count()
}

#[test]
fn kek_seals_and_refuses_another_kek() {
    let kek = KeyEncryptionKey::generate();
    let sealed = kek.seal(b"private").unwrap();
    assert!(!sealed.contains("private"));
    assert_eq!(kek.open(&sealed).unwrap(), b"private");
    let other = KeyEncryptionKey::new("dev", [7u8; 32]);
    assert!(other.open(&sealed).is_err());
    assert!(KeyEncryptionKey::from_hex("k", "zz").is_err());
    assert!(KeyEncryptionKey::from_hex("k", &"ab".repeat(32)).is_ok());
}

#[tokio::test]
async fn first_start_creates_active_and_next_for_every_chain() {
    let store = Arc::new(MemoryKeyStore::new());
    let ring = KeyRing::open(store.clone(), KeyEncryptionKey::generate(), policy())
        .await
        .unwrap();
    for kind in KeyKind::ALL {
        assert_eq!(count(&ring, kind, KeyState::Active), 1, "{kind:?}");
        assert_eq!(count(&ring, kind, KeyState::Next), 1, "{kind:?}");
    }
    // JWKS: both signing chains, active and next, never the symmetric key,
    // never private parts.
    let jwks = ring.jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 4);
    for k in keys {
        assert!(k.get("d").is_none() && k.get("p").is_none() && k.get("k").is_none());
        assert_eq!(k["use"], "sig");
    }
    // Nothing in the store is a clear private key.
    for stored in store.load_all().await.unwrap() {
        assert!(stored.sealed_private.split('.').count() == 5);
        assert!(!stored.sealed_private.contains("\"d\""));
    }
}

#[tokio::test]
async fn staged_rotation_next_then_active_then_retired_then_gone() {
    let (ring, t0) = fresh_ring().await;
    let first_active = ring.active_kid(KeyKind::Es256).unwrap();
    let next = ring
        .keys()
        .into_iter()
        .find(|k| k.kind == KeyKind::Es256 && k.state == KeyState::Next)
        .unwrap()
        .kid;
    // Not due yet: nothing changes.
    assert!(!ring.maintain_at(t0 + 500).await.unwrap());
    // Due: the published next key becomes active, the old one retires, a new next appears.
    assert!(ring.maintain_at(t0 + 1001).await.unwrap());
    assert_eq!(ring.active_kid(KeyKind::Es256).unwrap(), next);
    let retired: Vec<_> = ring
        .keys()
        .into_iter()
        .filter(|k| k.state == KeyState::Retired)
        .map(|k| k.kid)
        .collect();
    assert!(retired.contains(&first_active));
    assert_eq!(count(&ring, KeyKind::Es256, KeyState::Next), 1);
    // The retired key is still in the JWKS until its tokens expire.
    assert!(ring.jwks().to_string().contains(&first_active));
    ring.maintain_at(t0 + 1001 + 959).await.unwrap();
    assert!(ring.jwks().to_string().contains(&first_active));
    ring.maintain_at(t0 + 1001 + 961).await.unwrap();
    assert!(!ring.jwks().to_string().contains(&first_active));
}

#[tokio::test]
async fn a_new_next_key_must_be_published_before_it_signs() {
    let (ring, t0) = fresh_ring().await;
    ring.maintain_at(t0 + 1001).await.unwrap();
    let active = ring.active_kid(KeyKind::Es256).unwrap();
    // The next key made at t0+1001 is not published long enough at t0+2002+50?
    // It is due by age (1001 s later) and was published 1001 s ago: rotates.
    // But a revoke makes a fresh next key, which must wait its publish lead.
    ring.revoke(&active).await.unwrap();
    let promoted = ring.active_kid(KeyKind::Es256).unwrap();
    assert_ne!(promoted, active);
    assert!(
        !ring.jwks().to_string().contains(&active),
        "revoked key gone at once"
    );
}

#[tokio::test]
async fn tokens_signed_by_retired_key_verify_and_revoked_key_fail() {
    let (ring, tokens, config) = crate::common::memory_tokens().await;
    let issuer = config.issuer("acme");
    let req = crate::tokens::request(
        &config,
        uuid::Uuid::new_v4(),
        rampart_auth::SigningAlg::ES256,
    );
    let (old, _) = tokens.issue_access_token(&req).unwrap();
    let old_kid = ring.active_kid(KeyKind::Es256).unwrap();
    ring.rotate_now(KeyKind::Es256).await.unwrap();
    ring.rotate_now(KeyKind::TenantEncryption).await.unwrap();
    assert_ne!(ring.active_kid(KeyKind::Es256).unwrap(), old_kid);
    // Retired keys still verify and decrypt.
    tokens
        .verify_access_token(&old, &issuer, "rampart")
        .unwrap();
    let (new, _) = tokens.issue_access_token(&req).unwrap();
    tokens
        .verify_access_token(&new, &issuer, "rampart")
        .unwrap();
    // Emergency revoke: the old token fails at once, even though it was cached.
    ring.revoke(&old_kid).await.unwrap();
    assert!(
        tokens
            .verify_access_token(&old, &issuer, "rampart")
            .is_err()
    );
    tokens
        .verify_access_token(&new, &issuer, "rampart")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_key_store_round_trips_against_real_openbao() {
    rampart_testkit::install_crypto_provider();
    let bao = rampart_testkit::openbao().unwrap();
    let prefix = format!("rampart/test-{}", uuid::Uuid::new_v4());
    let store: Arc<dyn KeyStore> =
        Arc::new(VaultKeyStore::new(&bao.addr(), bao.token(), "secret", &prefix).unwrap());
    assert!(store.load_all().await.unwrap().is_empty());
    let kek = KeyEncryptionKey::generate();
    let ring = KeyRing::open(store.clone(), kek.clone(), policy())
        .await
        .unwrap();
    let stored = store.load_all().await.unwrap();
    assert_eq!(stored.len(), 6);
    // What Vault holds is sealed: no private JWK members in clear.
    for k in &stored {
        let text = serde_json::to_string(k).unwrap();
        assert!(!text.contains("\"d\":"), "{text}");
    }
    // A second instance with the same KEK loads the same keys and verifies
    // tokens the first one issued.
    let config = crate::common::config();
    let tokens_a = rampart_auth::TokenService::new(ring.clone(), &config);
    let ring_b = KeyRing::open(store.clone(), kek, policy()).await.unwrap();
    let tokens_b = rampart_auth::TokenService::new(ring_b.clone(), &config);
    let tenant = uuid::Uuid::new_v4();
    let req = crate::tokens::request(&config, tenant, rampart_auth::SigningAlg::RS256);
    let (jwt, _) = tokens_a.issue_access_token(&req).unwrap();
    let v = tokens_b
        .verify_access_token(&jwt, &config.issuer("acme"), "rampart")
        .unwrap();
    assert_eq!(v.tenant_id, tenant);
    // A wrong KEK cannot open them.
    assert!(
        KeyRing::open(store.clone(), KeyEncryptionKey::generate(), policy())
            .await
            .is_err()
    );
    // Revocation through Vault reaches the other instance on reload.
    let kid = ring.active_kid(KeyKind::Rs256).unwrap();
    ring.revoke(&kid).await.unwrap();
    ring_b.reload().await.unwrap();
    assert!(
        tokens_b
            .verify_access_token(&jwt, &config.issuer("acme"), "rampart")
            .is_err()
    );
    assert!(store.load_all().await.unwrap().iter().all(|k| k.kid != kid));
}
