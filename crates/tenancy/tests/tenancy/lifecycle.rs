use rampart_tenancy::{TenancyError, TenantStatus};
use rampart_testkit::valid_slug;

use super::{admin_count, database_url, event_names, pool_with};

async fn ok(pool: &rampart_tenancy::TenantPool, slug: &str) -> Result<(), TenancyError> {
    pool.with_tenant(&valid_slug(slug), async |_c| Ok::<_, TenancyError>(()))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_transitions_and_refusals() {
    let url = database_url().await;
    let pool = pool_with(&url, Default::default()).await;
    pool.provision(&valid_slug("life"), "Life").await.unwrap();
    assert!(matches!(
        ok(&pool, "nobody").await,
        Err(TenancyError::NotFound(_))
    ));

    let t = pool
        .suspend(&valid_slug("life"), "unpaid invoice", Some("ops"))
        .await
        .unwrap();
    assert_eq!(t.status, TenantStatus::Suspended);
    assert!(t.suspended_at.is_some());
    assert!(matches!(
        ok(&pool, "life").await,
        Err(TenancyError::Suspended(_))
    ));
    assert!(matches!(
        pool.suspend(&valid_slug("life"), "", None).await,
        Err(TenancyError::InvalidTransition { .. })
    ));
    assert!(matches!(
        pool.purge(&valid_slug("life"), true, None).await,
        Err(TenancyError::InvalidTransition { .. })
    ));

    pool.resume(&valid_slug("life"), None).await.unwrap();
    ok(&pool, "life").await.unwrap();
    assert!(matches!(
        pool.resume(&valid_slug("life"), None).await,
        Err(TenancyError::InvalidTransition { .. })
    ));

    let t = pool
        .deactivate(&valid_slug("life"), Some(chrono::Duration::days(7)), None)
        .await
        .unwrap();
    assert_eq!(t.status, TenantStatus::Deactivated);
    assert!(t.retention_deadline.unwrap() > chrono::Utc::now() + chrono::Duration::days(6));
    assert!(matches!(
        ok(&pool, "life").await,
        Err(TenancyError::Deactivated(_))
    ));
    // Data is kept during retention.
    assert_eq!(
        admin_count(
            &url,
            "SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'tenant_life'"
        )
        .await,
        1
    );
    assert!(matches!(
        pool.purge(&valid_slug("life"), false, None).await,
        Err(TenancyError::RetentionNotElapsed { .. })
    ));
    // Reactivation within retention works; deactivate again and purge.
    pool.reactivate(&valid_slug("life"), None).await.unwrap();
    ok(&pool, "life").await.unwrap();
    pool.deactivate(&valid_slug("life"), Some(chrono::Duration::zero()), None)
        .await
        .unwrap();
    assert_eq!(pool.purge_expired().await.unwrap(), vec!["life".to_owned()]);
    let t = pool.tenant(&valid_slug("life")).await.unwrap();
    assert_eq!(t.status, TenantStatus::Purged);
    assert!(matches!(
        ok(&pool, "life").await,
        Err(TenancyError::Purged(_))
    ));
    assert_eq!(
        admin_count(
            &url,
            "SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'tenant_life'"
        )
        .await,
        0
    );
    assert_eq!(
        admin_count(
            &url,
            &format!(
                "SELECT count(*) AS n FROM pg_roles WHERE rolname = '{}'",
                t.role_name
            )
        )
        .await,
        0
    );
    // The tombstone keeps the slug: it cannot be provisioned again.
    assert!(matches!(
        pool.provision(&valid_slug("life"), "Again").await,
        Err(TenancyError::AlreadyExists(_))
    ));
    assert!(matches!(
        pool.reactivate(&valid_slug("life"), None).await,
        Err(TenancyError::InvalidTransition { .. })
    ));
    let events = event_names(&pool, "life").await;
    assert_eq!(
        events,
        [
            "provisioned",
            "suspended",
            "resumed",
            "deactivated",
            "reactivated",
            "deactivated",
            "purged"
        ]
    );
    let health = pool.health(&valid_slug("life")).await.unwrap();
    assert!(!health.reachable);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_pools_status_change_is_seen_after_the_cache_ttl() {
    let url = database_url().await;
    let a = pool_with(&url, Default::default()).await;
    let b = pool_with(&url, Default::default()).await;
    a.provision(&valid_slug("sharedco"), "Shared")
        .await
        .unwrap();
    ok(&b, "sharedco").await.unwrap();
    a.suspend(&valid_slug("sharedco"), "", None).await.unwrap();
    assert!(matches!(
        ok(&a, "sharedco").await,
        Err(TenancyError::Suspended(_))
    ));
    tokio::time::sleep(std::time::Duration::from_millis(
        a.config().tenant_cache_ttl_ms + 100,
    ))
    .await;
    assert!(matches!(
        ok(&b, "sharedco").await,
        Err(TenancyError::Suspended(_))
    ));
}
