use std::collections::BTreeMap;

use super::database_url;

#[derive(serde::Deserialize, Debug, PartialEq)]
#[serde(default)]
struct Limits {
    max_portfolios: u32,
    base_currency: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_portfolios: 10,
            base_currency: "USD".into(),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_flags_usage() {
    let url = database_url().await;
    let mut config = super::config(&url);
    config.default_feature_flags = BTreeMap::from([("live_prices".to_owned(), true)]);
    let pool = rampart_tenancy::TenantPool::connect(config).await.unwrap();
    pool.provision("conf", "Conf").await.unwrap();

    assert_eq!(
        pool.typed_settings::<Limits>("conf").await.unwrap(),
        Limits::default()
    );
    assert_eq!(
        pool.setting_or("conf", "max_portfolios", 10u32)
            .await
            .unwrap(),
        10
    );
    pool.set_setting("conf", "max_portfolios", &25u32)
        .await
        .unwrap();
    assert_eq!(
        pool.setting_or("conf", "max_portfolios", 10u32)
            .await
            .unwrap(),
        25
    );
    assert_eq!(
        pool.typed_settings::<Limits>("conf")
            .await
            .unwrap()
            .max_portfolios,
        25
    );
    // A value of the wrong type is a typed error, not a panic or a default.
    pool.set_setting("conf", "base_currency", &42)
        .await
        .unwrap();
    assert!(
        pool.setting_or("conf", "base_currency", String::new())
            .await
            .is_err()
    );
    assert!(pool.set_setting("conf", "bad key!", &1).await.is_err());

    assert!(pool.feature_enabled("conf", "live_prices").await.unwrap());
    assert!(!pool.feature_enabled("conf", "beta_charts").await.unwrap());
    pool.set_feature("conf", "beta_charts", true).await.unwrap();
    pool.set_feature("conf", "live_prices", false)
        .await
        .unwrap();
    assert!(pool.feature_enabled("conf", "beta_charts").await.unwrap());
    assert!(!pool.feature_enabled("conf", "live_prices").await.unwrap());

    let usage = pool.usage("conf").await.unwrap();
    assert!(usage.schema_bytes > 0);
    // Checkouts are counted, survive a flush, and add up across flushes.
    for _ in 0..3 {
        pool.with_tenant(
            "conf",
            async |_c| Ok::<_, rampart_tenancy::TenancyError>(()),
        )
        .await
        .unwrap();
    }
    let before = pool.usage("conf").await.unwrap().checkouts;
    assert!(before >= 3);
    assert_eq!(pool.flush_usage().await.unwrap(), 1);
    assert_eq!(pool.usage("conf").await.unwrap().checkouts, before);
    pool.with_tenant(
        "conf",
        async |_c| Ok::<_, rampart_tenancy::TenancyError>(()),
    )
    .await
    .unwrap();
    pool.flush_usage().await.unwrap();
    assert_eq!(pool.usage("conf").await.unwrap().checkouts, before + 1);
    assert!(usage.tables.iter().any(|t| t.table == "users"));
    assert!(pool.settings("nobody").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_settings_defaults_bounds_patches_and_cache() {
    use rampart_tenancy::{RegistrationMode, TenancyError, TenantSettings, UpstreamLinking};
    use serde_json::json;

    let url = database_url().await;
    let mut config = super::config(&url);
    // Long enough that a stale read would show; changes through the pool
    // must invalidate it.
    config.settings_cache_ttl_ms = 60_000;
    let pool = rampart_tenancy::TenantPool::connect(config.clone())
        .await
        .unwrap();
    pool.provision("typed", "Typed").await.unwrap();
    pool.set_setting("typed", "locale", &"de-CH").await.unwrap();

    let s = pool.tenant_settings("typed").await.unwrap();
    assert_eq!(*s, TenantSettings::default());
    assert_eq!(s.registration.mode, RegistrationMode::InvitationOnly);
    assert!(s.email_verification_required);
    assert_eq!(s.upstream_linking, UpstreamLinking::VerifiedEmail);
    assert_eq!(s.refresh_grace_seconds, 0);

    // Out of bounds (the platform's), unknown keys and bad types: refused
    // with the key named, nothing stored.
    for (patch, key) in [
        (json!({"sessionLifetimeSecs": 1}), "sessionLifetimeSecs"),
        (json!({"refreshGraceSeconds": 61}), "refreshGraceSeconds"),
        (
            json!({"passwordPolicy": {"minLength": 8}}),
            "passwordPolicy.minLength",
        ),
        (json!({"bogus": 1}), "bogus"),
        (json!({"registration": {"mode": "maybe"}}), "*"),
    ] {
        match pool.update_tenant_settings("typed", &patch).await {
            Err(TenancyError::Setting { key: k, .. }) => assert_eq!(k, key, "{patch}"),
            other => panic!("{patch}: {other:?}"),
        }
    }
    assert_eq!(
        *pool.tenant_settings("typed").await.unwrap(),
        TenantSettings::default()
    );

    // A patch: before and after; seen at once through the cache; untyped
    // keys kept.
    let (before, after) = pool
        .update_tenant_settings(
            "typed",
            &json!({"registration": {"mode": "open", "allowedDomains": ["typed.test"]},
                    "sessionLifetimeSecs": 600}),
        )
        .await
        .unwrap();
    assert_eq!(before, TenantSettings::default());
    assert_eq!(after.session_lifetime_secs, 600);
    assert!(after.registration.domain_allowed("Ann@Typed.Test"));
    assert!(!after.registration.domain_allowed("ann@other.test"));
    assert_eq!(*pool.tenant_settings("typed").await.unwrap(), after);
    assert_eq!(
        pool.setting_or("typed", "locale", String::new())
            .await
            .unwrap(),
        "de-CH"
    );

    // Another replica (pool) caches for its TTL; a fresh one reads the change.
    let other = rampart_tenancy::TenantPool::connect(config).await.unwrap();
    assert_eq!(
        other
            .tenant_settings("typed")
            .await
            .unwrap()
            .session_lifetime_secs,
        600
    );
    pool.update_tenant_settings("typed", &json!({"sessionLifetimeSecs": null}))
        .await
        .unwrap();
    assert_eq!(
        other
            .tenant_settings("typed")
            .await
            .unwrap()
            .session_lifetime_secs,
        600,
        "cached within the TTL"
    );
    other.forget_tenant_settings("typed").await;
    assert_eq!(
        other
            .tenant_settings("typed")
            .await
            .unwrap()
            .session_lifetime_secs,
        TenantSettings::default().session_lifetime_secs
    );
    assert!(pool.tenant_settings("nobody").await.is_err());
}
