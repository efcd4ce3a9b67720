use rampart_tenancy::TenancyError;
use rampart_testkit::valid_slug;

use super::{admin_count, database_url, pool_with};

#[tokio::test(flavor = "multi_thread")]
async fn fifty_tasks_provisioning_one_slug_one_wins() {
    let url = database_url().await;
    let pool = pool_with(&url, Default::default()).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.provision(&valid_slug("contested"), "Contested").await })
        })
        .collect();
    let (mut ok, mut exists) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(TenancyError::AlreadyExists(slug)) => {
                assert_eq!(slug, "contested");
                exists += 1
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, exists), (1, 49));
    assert_eq!(
        admin_count(&url, "SELECT count(*) AS n FROM platform.tenants").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_tenants_in_parallel_are_all_present_and_migrated() {
    let url = database_url().await;
    let pool = pool_with(&url, Default::default()).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.provision(&valid_slug(&format!("bulk{i:03}")), "Bulk")
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        admin_count(
            &url,
            "SELECT count(*) AS n FROM platform.tenants WHERE status = 'active'"
        )
        .await,
        200
    );
    assert_eq!(
        admin_count(
            &url,
            "SELECT count(*) AS n FROM pg_namespace WHERE nspname LIKE 'tenant_bulk%'"
        )
        .await,
        200
    );
    let latest = pool.template().latest_version().to_owned();
    assert_eq!(
        admin_count(&url, &format!("SELECT count(*) AS n FROM platform.tenant_migrations WHERE version = '{latest}' AND status = 'ok'")).await,
        200
    );
    // Nothing to do afterwards.
    let report = pool.migrate_all().await.unwrap();
    assert_eq!(report.behind, 0);
    // Every schema has the same number of tables as the template.
    let tables = admin_count(
        &url,
        "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'tenant_template'",
    )
    .await;
    assert_eq!(
        admin_count(
            &url,
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname LIKE 'tenant_bulk%'"
        )
        .await,
        tables * 200
    );
}
