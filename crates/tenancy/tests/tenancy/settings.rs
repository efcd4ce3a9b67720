use rampart_testkit::valid_slug;
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
    pool.provision(&valid_slug("conf"), "Conf").await.unwrap();

    assert_eq!(
        pool.typed_settings::<Limits>(&valid_slug("conf"))
            .await
            .unwrap(),
        Limits::default()
    );
    assert_eq!(
        pool.setting_or(&valid_slug("conf"), "max_portfolios", 10u32)
            .await
            .unwrap(),
        10
    );
    pool.set_setting(&valid_slug("conf"), "max_portfolios", &25u32)
        .await
        .unwrap();
    assert_eq!(
        pool.setting_or(&valid_slug("conf"), "max_portfolios", 10u32)
            .await
            .unwrap(),
        25
    );
    assert_eq!(
        pool.typed_settings::<Limits>(&valid_slug("conf"))
            .await
            .unwrap()
            .max_portfolios,
        25
    );
    // A value of the wrong type is a typed error, not a panic or a default.
    pool.set_setting(&valid_slug("conf"), "base_currency", &42)
        .await
        .unwrap();
    assert!(
        pool.setting_or(&valid_slug("conf"), "base_currency", String::new())
            .await
            .is_err()
    );
    assert!(
        pool.set_setting(&valid_slug("conf"), "bad key!", &1)
            .await
            .is_err()
    );

    assert!(
        pool.feature_enabled(&valid_slug("conf"), "live_prices")
            .await
            .unwrap()
    );
    assert!(
        !pool
            .feature_enabled(&valid_slug("conf"), "beta_charts")
            .await
            .unwrap()
    );
    pool.set_feature(&valid_slug("conf"), "beta_charts", true)
        .await
        .unwrap();
    pool.set_feature(&valid_slug("conf"), "live_prices", false)
        .await
        .unwrap();
    assert!(
        pool.feature_enabled(&valid_slug("conf"), "beta_charts")
            .await
            .unwrap()
    );
    assert!(
        !pool
            .feature_enabled(&valid_slug("conf"), "live_prices")
            .await
            .unwrap()
    );

    let usage = pool.usage(&valid_slug("conf")).await.unwrap();
    assert!(usage.schema_bytes > 0);
    // Checkouts are counted, survive a flush, and add up across flushes.
    for _ in 0..3 {
        pool.with_tenant(&valid_slug("conf"), async |_c| {
            Ok::<_, rampart_tenancy::TenancyError>(())
        })
        .await
        .unwrap();
    }
    let before = pool.usage(&valid_slug("conf")).await.unwrap().checkouts;
    assert!(before >= 3);
    assert_eq!(pool.flush_usage().await.unwrap(), 1);
    assert_eq!(
        pool.usage(&valid_slug("conf")).await.unwrap().checkouts,
        before
    );
    pool.with_tenant(&valid_slug("conf"), async |_c| {
        Ok::<_, rampart_tenancy::TenancyError>(())
    })
    .await
    .unwrap();
    pool.flush_usage().await.unwrap();
    assert_eq!(
        pool.usage(&valid_slug("conf")).await.unwrap().checkouts,
        before + 1
    );
    assert!(usage.tables.iter().any(|t| t.table == "users"));
    assert!(pool.settings(&valid_slug("nobody")).await.is_err());
}
