use diesel_async::RunQueryDsl;
use rampart_tenancy::{MigrationSet, TemplateMigration, TenancyError};
use rampart_testkit::valid_slug;

use super::{Count, admin_count, admin_exec, database_url, pool_with};

fn with_notes() -> MigrationSet {
    MigrationSet::embedded_tenant()
        .with([TemplateMigration::new(
            "99990101000001",
            "notes",
            "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL);\
             INSERT INTO notes (body) VALUES ('welcome');",
        )])
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_all_isolates_a_failing_tenant_and_a_rerun_finishes_it() {
    let url = database_url().await;
    let v1 = pool_with(&url, MigrationSet::embedded_tenant()).await;
    for i in 0..6 {
        v1.provision(&valid_slug(&format!("mig{i}")), "Mig")
            .await
            .unwrap();
    }
    v1.set_canary(&valid_slug("mig0"), true).await.unwrap();
    // Sabotage one tenant: the new migration will collide with this table.
    admin_exec(&url, "CREATE TABLE tenant_mig3.notes (x int)").await;

    let v2 = pool_with(&url, with_notes()).await;
    // What a server checks at start: every tenant is behind, canary first.
    let behind = v2.tenants_behind().await.unwrap();
    assert_eq!(behind.len(), 6, "{behind:?}");
    assert_eq!(behind[0], "mig0");
    // The old template's pool sees none behind its own template.
    assert_eq!(v1.tenants_behind().await.unwrap(), Vec::<String>::new());
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicUsize::new(0);
    let report = v2
        .migrate_all_with_progress(|p| match p {
            rampart_tenancy::MigrationProgress::Started { total: t } => {
                total.store(t, std::sync::atomic::Ordering::SeqCst)
            }
            rampart_tenancy::MigrationProgress::TenantDone { .. } => {
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
    assert_eq!(total.into_inner(), 6);
    assert_eq!(done.into_inner(), 6);
    assert_eq!(report.behind, 6);
    assert_eq!(report.succeeded.len(), 5, "{report:?}");
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].slug, "mig3");
    assert!(
        report.failed[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("already exists")
    );
    // The canary went first.
    assert_eq!(report.succeeded[0].slug, "mig0");
    // Migrated tenants have the table and its seed row; the failed one is
    // untouched and recorded as failed.
    let n = v2
        .with_tenant(&valid_slug("mig1"), async |conn| {
            let c: Count = diesel::sql_query("SELECT count(*) AS n FROM notes")
                .get_result(conn)
                .await?;
            Ok::<_, TenancyError>(c.n)
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        admin_count(&url, "SELECT count(*) AS n FROM platform.tenant_migrations m JOIN platform.tenants t ON t.id = m.tenant_id WHERE t.slug = 'mig3' AND m.status = 'failed'").await,
        1
    );
    assert!(
        !v2.health(&valid_slug("mig3"))
            .await
            .unwrap()
            .migrations_current
    );
    assert_eq!(v2.tenants_behind().await.unwrap(), ["mig3"]);

    // Fix the cause and rerun: only the failed tenant is behind.
    admin_exec(&url, "DROP TABLE tenant_mig3.notes").await;
    let rerun = v2.migrate_all().await.unwrap();
    assert_eq!(rerun.behind, 1);
    assert!(rerun.is_complete());
    assert!(
        v2.health(&valid_slug("mig3"))
            .await
            .unwrap()
            .migrations_current
    );
    // A third run has nothing to do.
    assert_eq!(v2.migrate_all().await.unwrap().behind, 0);
    assert!(v2.tenants_behind().await.unwrap().is_empty());
    // New tenants get the new table straight from the baseline.
    v2.provision(&valid_slug("fresh"), "Fresh").await.unwrap();
    assert_eq!(
        admin_count(&url, "SELECT count(*) AS n FROM tenant_fresh.notes").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_canary_stops_the_run() {
    let url = database_url().await;
    let v1 = pool_with(&url, MigrationSet::embedded_tenant()).await;
    for s in ["canary", "later1", "later2"] {
        v1.provision(&valid_slug(s), "x").await.unwrap();
    }
    v1.set_canary(&valid_slug("canary"), true).await.unwrap();
    admin_exec(&url, "CREATE TABLE tenant_canary.notes (x int)").await;
    let v2 = pool_with(&url, with_notes()).await;
    let report = v2.migrate_all().await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.not_attempted.len(), 2);
    assert!(report.succeeded.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_locked_by_another_migrator_is_reported_busy() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let url = database_url().await;
    let v1 = pool_with(&url, MigrationSet::embedded_tenant()).await;
    v1.provision(&valid_slug("locked"), "x").await.unwrap();
    let v2 = pool_with(&url, with_notes()).await;
    let mut holder = AsyncPgConnection::establish(&url).await.unwrap();
    holder
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(hashtext('rampart.migrate'), hashtext('tenant_locked'));")
        .await
        .unwrap();
    let report = v2.migrate_all().await.unwrap();
    assert_eq!(report.busy, vec!["locked".to_owned()]);
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert!(v2.migrate_all().await.unwrap().is_complete());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_merged_with_an_older_version_still_reaches_every_tenant() {
    let url = database_url().await;
    let note = |version: &str, table: &str| {
        TemplateMigration::new(version, table, format!("CREATE TABLE {table} (id int);"))
    };
    let late = note("99990101000002", "late_notes");
    let v1 = pool_with(
        &url,
        MigrationSet::embedded_tenant()
            .with([late.clone()])
            .unwrap(),
    )
    .await;
    v1.provision(&valid_slug("ooo"), "Ooo").await.unwrap();
    // A branch merged afterwards whose migration sorts before the latest one
    // the tenant already has: the latest version is the same, the set is not.
    let early = note("99990101000001", "early_notes");
    let v2 = pool_with(
        &url,
        MigrationSet::embedded_tenant().with([early, late]).unwrap(),
    )
    .await;
    assert_eq!(v2.tenants_behind().await.unwrap(), vec!["ooo".to_owned()]);
    let report = v2.migrate_all().await.unwrap();
    assert_eq!(report.succeeded.len(), 1, "{report:?}");
    let has_early = "SELECT count(*) AS n FROM information_schema.tables \
                     WHERE table_schema = 'tenant_ooo' AND table_name = 'early_notes'";
    assert_eq!(admin_count(&url, has_early).await, 1);
    assert!(v2.tenants_behind().await.unwrap().is_empty());
    assert_eq!(v2.migrate_all().await.unwrap().behind, 0);
}
