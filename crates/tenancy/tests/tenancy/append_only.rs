use diesel_async::SimpleAsyncConnection;
use rampart_tenancy::{MigrationSet, TemplateMigration, TenancyError, TenantPool};
use rampart_testkit::valid_slug;

use super::{admin_count, config, database_url, pool_with};

/// Runs `sql` as the tenant role of `slug` (the role every request uses).
async fn as_tenant(pool: &TenantPool, slug: &str, sql: &str) -> Result<(), TenancyError> {
    let sql = sql.to_owned();
    pool.with_tenant(&valid_slug(slug), async |conn| {
        conn.batch_execute(&sql).await?;
        Ok::<_, TenancyError>(())
    })
    .await
}

const INSERT: &str = "INSERT INTO audit_log (action, result) VALUES ('login', 'failure')";

/// Every way the tenant role could rewrite its audit log fails.
async fn assert_insert_only(pool: &TenantPool, url: &str, slug: &str) {
    as_tenant(pool, slug, INSERT).await.unwrap();
    as_tenant(pool, slug, "SELECT count(*) FROM audit_log")
        .await
        .unwrap();
    for attack in [
        "UPDATE audit_log SET result = 'success'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger \
         LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "ALTER TABLE audit_log OWNER TO CURRENT_USER",
        // The schema's owner could drop or swap any table in it.
        "DROP TABLE audit_log",
        "DROP TABLE audit_log CASCADE",
        "ALTER TABLE audit_log RENAME TO audit_log_old",
        "ALTER TABLE audit_log SET SCHEMA public",
        format!("DROP SCHEMA tenant_{slug} CASCADE").as_str(),
        format!("ALTER SCHEMA tenant_{slug} RENAME TO gone").as_str(),
        format!("ALTER SCHEMA tenant_{slug} OWNER TO CURRENT_USER").as_str(),
    ] {
        assert!(
            as_tenant(pool, slug, attack).await.is_err(),
            "the tenant role could: {attack}"
        );
    }
    let schema = format!("tenant_{slug}");
    assert_eq!(
        admin_count(
            url,
            &format!("SELECT count(*) AS n FROM {schema}.audit_log WHERE result = 'failure'")
        )
        .await,
        1,
        "the row is there, unchanged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tenant_role_can_only_append_to_its_audit_log() {
    let url = database_url().await;
    let pool = TenantPool::connect(config(&url)).await.unwrap();
    pool.provision(&valid_slug("aud"), "Audit").await.unwrap();
    assert_insert_only(&pool, &url, "aud").await;
}

/// A schema provisioned before the platform role owned tenant schemas (its
/// tenant role the owner) is taken over by the platform migration.
#[tokio::test(flavor = "multi_thread")]
async fn a_schema_owned_by_its_tenant_role_is_taken_over() {
    let url = database_url().await;
    let pool = TenantPool::connect(config(&url)).await.unwrap();
    pool.provision(&valid_slug("legacy"), "Legacy")
        .await
        .unwrap();
    // As it was provisioned before: the tenant role owns the schema.
    super::admin_exec(
        &url,
        "DO $$ BEGIN EXECUTE format('ALTER SCHEMA tenant_legacy OWNER TO %I', \
           (SELECT role_name FROM platform.tenants WHERE slug = 'legacy')); END $$; \
         DELETE FROM platform.__diesel_schema_migrations WHERE version = '20261203000002'",
    )
    .await;
    let owned_by_tenant = "SELECT count(*) AS n FROM pg_namespace n \
         JOIN platform.tenants t ON t.schema_name = n.nspname \
         WHERE t.slug = 'legacy' AND n.nspowner = to_regrole(t.role_name)";
    assert_eq!(admin_count(&url, owned_by_tenant).await, 1);
    drop(pool);
    // Starting again applies the platform migration.
    let pool = TenantPool::connect(config(&url)).await.unwrap();
    assert_eq!(admin_count(&url, owned_by_tenant).await, 0);
    assert_insert_only(&pool, &url, "legacy").await;
}

/// A migration that names the audit log gets it for the migration and
/// gives it back; one that does not never unlocks it. Either way the tenant
/// role can only append afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_migration_gets_the_audit_log_only_when_it_names_it() {
    for (slug, sql, audit_note) in [
        ("plain", "ALTER TABLE portfolios ADD COLUMN note text", 0),
        ("noted", "ALTER TABLE audit_log ADD COLUMN note text", 1),
    ] {
        let url = database_url().await;
        TenantPool::connect(config(&url))
            .await
            .unwrap()
            .provision(&valid_slug(slug), slug)
            .await
            .unwrap();
        let next = MigrationSet::embedded_tenant()
            .with([TemplateMigration::new("99990101000001", "note", sql)])
            .unwrap();
        let newer = pool_with(&url, next).await;
        let report = newer.migrate_all().await.unwrap();
        assert!(report.failed.is_empty() && report.behind == 1, "{report:?}");
        let noted = format!(
            "SELECT count(*) AS n FROM information_schema.columns WHERE table_schema = \
             'tenant_{slug}' AND table_name = 'audit_log' AND column_name = 'note'"
        );
        assert_eq!(admin_count(&url, &noted).await, audit_note, "{slug}");
        assert_insert_only(&newer, &url, slug).await;
    }
}
