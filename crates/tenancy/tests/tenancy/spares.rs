use rampart_tenancy::{MigrationSet, SpareReport, TemplateMigration, TenancyError, TenantPool};
use rampart_testkit::{acme, valid_slug};

use super::{admin_count, database_url, pool_with, tenant_count};

/// Whether `slug`'s provisioning took a spare (its `provisioned` event).
async fn took_spare(pool: &TenantPool, slug: &str) -> bool {
    let events = pool.events(&valid_slug(slug)).await.unwrap();
    let provisioned = events.iter().find(|e| e.event == "provisioned").unwrap();
    provisioned.detail["spare"].as_bool().unwrap()
}

async fn spare_schemas(url: &str) -> i64 {
    admin_count(
        url,
        "SELECT count(*) AS n FROM pg_namespace WHERE nspname LIKE 'spare\\_%'",
    )
    .await
}

async fn spare_roles(url: &str) -> i64 {
    // Roles are the cluster's: this database's carry its prefix.
    admin_count(
        url,
        "SELECT count(*) AS n FROM pg_roles WHERE rolname LIKE \
           'r' || left(encode(sha256(current_database()::bytea), 'hex'), 8) || '\\_spare\\_%'",
    )
    .await
}

/// The shape of a tenant schema: every relation with its kind and whether
/// the tenant's role owns it, and the tenant role's rights on the
/// append-only audit log.
async fn shape(url: &str, slug: &str, role: &str) -> String {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Shape {
        #[diesel(sql_type = diesel::sql_types::Text)]
        s: String,
    }
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let sql = format!(
        "SELECT string_agg(c.relname || ':' || c.relkind::text || ':' || (pg_get_userbyid(c.relowner) = '{role}'), ',' ORDER BY c.relname) \
           || ' insert=' || has_table_privilege('{role}', 'tenant_{slug}.audit_log', 'INSERT') \
           || ' delete=' || has_table_privilege('{role}', 'tenant_{slug}.audit_log', 'DELETE') \
           || ' schema_owner=' || (SELECT pg_get_userbyid(nspowner) = '{role}' FROM pg_namespace WHERE nspname = 'tenant_{slug}') AS s \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tenant_{slug}'"
    );
    diesel::sql_query(sql)
        .get_result::<Shape>(&mut conn)
        .await
        .unwrap()
        .s
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provisioning_takes_a_spare_and_the_tenant_is_as_if_built_then() {
    let url = database_url().await;
    let pool = pool_with(&url, MigrationSet::embedded_tenant()).await;
    assert_eq!(pool.config().spare_schemas, 2);
    assert_eq!(
        pool.replenish_spares().await.unwrap(),
        SpareReport {
            created: 2,
            dropped: 0,
            ready: 2
        }
    );
    assert_eq!(
        pool.replenish_spares().await.unwrap(),
        SpareReport {
            created: 0,
            dropped: 0,
            ready: 2
        }
    );
    assert_eq!((spare_schemas(&url).await, spare_roles(&url).await), (2, 2));

    // The spares' prefix is not a slug anyone can take (nor provision).
    assert!(matches!(
        rampart_tenancy::TenantSlug::parse("spare_acme"),
        Err(TenancyError::InvalidSlug { .. })
    ));

    let acme = pool.provision(&acme(), "Acme").await.unwrap();
    assert!(took_spare(&pool, "acme").await);
    let second = pool
        .provision(&valid_slug("second"), "Second")
        .await
        .unwrap();
    assert!(took_spare(&pool, "second").await);
    assert_eq!((spare_schemas(&url).await, spare_roles(&url).await), (0, 0));
    // None left: this one is built while the caller waits, as before.
    let built = pool.provision(&valid_slug("built"), "Built").await.unwrap();
    assert!(!took_spare(&pool, "built").await);

    // The same relations, owners and rights as a schema built for its
    // tenant; the renamed role is the tenant's and owns its tables.
    let built_shape = shape(&url, "built", &built.role_name).await;
    assert!(built_shape.contains("users:r:true"), "{built_shape}");
    assert!(built_shape.contains("audit_log:r:false"), "{built_shape}");
    assert!(
        built_shape.ends_with("insert=true delete=false schema_owner=false"),
        "{built_shape}"
    );
    assert_eq!(shape(&url, "acme", &acme.role_name).await, built_shape);
    assert_eq!(shape(&url, "second", &second.role_name).await, built_shape);
    // Seed rows and the ledger came along.
    let versions = pool.template().migrations().len() as i64;
    for slug in ["acme", "built"] {
        assert_eq!(
            tenant_count(&pool, slug, "SELECT count(*) AS n FROM roles").await,
            7
        );
        assert_eq!(
            tenant_count(
                &pool,
                slug,
                "SELECT count(*) AS n FROM __diesel_schema_migrations"
            )
            .await,
            versions
        );
    }
    // Requests run as the tenant's role, which reaches no other schema.
    let user = pool
        .with_tenant(&valid_slug("acme"), async |conn| {
            use diesel_async::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Me {
                #[diesel(sql_type = diesel::sql_types::Text)]
                me: String,
            }
            let me: Me = diesel::sql_query("SELECT current_user::text AS me")
                .get_result(conn)
                .await?;
            Ok::<_, TenancyError>(me.me)
        })
        .await
        .unwrap();
    assert_eq!(user, acme.role_name);
    let cross = pool
        .with_tenant(&valid_slug("acme"), async |conn| {
            use diesel_async::RunQueryDsl;
            diesel::sql_query("SELECT 1 FROM tenant_built.users")
                .execute(conn)
                .await?;
            Ok::<_, TenancyError>(())
        })
        .await;
    assert!(cross.is_err(), "acme's role read another tenant's table");

    // Replenishing builds them again.
    assert_eq!(pool.replenish_spares().await.unwrap().created, 2);
}

/// Makes every registered spare `by` older (plus a minute).
async fn age_spares(url: &str, by: std::time::Duration) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    diesel::sql_query(format!(
        "UPDATE platform.tenant_spares SET created_at = created_at - interval '{} seconds'",
        by.as_secs() + 60
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

fn with_notes() -> MigrationSet {
    MigrationSet::embedded_tenant()
        .with([TemplateMigration::new(
            "99990101000001",
            "notes",
            "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL);",
        )])
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn spares_of_another_template_are_never_taken_and_are_dropped() {
    let url = database_url().await;
    let v1 = pool_with(&url, MigrationSet::embedded_tenant()).await;
    assert_eq!(v1.replenish_spares().await.unwrap().created, 2);
    // A build with one more template migration.
    let v2 = pool_with(&url, with_notes()).await;
    v2.provision(&acme(), "Acme").await.unwrap();
    assert!(!took_spare(&v2, "acme").await);
    assert_eq!(
        tenant_count(&v2, "acme", "SELECT count(*) AS n FROM notes").await,
        0
    );
    // While the upgrade rolls (the older build's spares are fresh), the
    // newer build leaves them to the older replicas, and the older build
    // leaves the newer one's alone.
    assert_eq!(
        v2.replenish_spares().await.unwrap(),
        SpareReport {
            created: 2,
            dropped: 0,
            ready: 2
        }
    );
    assert_eq!(
        v1.replenish_spares().await.unwrap(),
        SpareReport {
            created: 0,
            dropped: 0,
            ready: 2
        }
    );
    assert_eq!((spare_schemas(&url).await, spare_roles(&url).await), (4, 4));
    // An older build's spare is still taken by the older build.
    v1.provision(&valid_slug("old"), "Old").await.unwrap();
    assert!(took_spare(&v1, "old").await);
    // Once the older build's spares are older than the upgrade takes, the
    // newer build drops them.
    age_spares(&url, rampart_tenancy::SPARE_STALE_AFTER).await;
    assert_eq!(
        v2.replenish_spares().await.unwrap(),
        SpareReport {
            created: 0,
            dropped: 1,
            ready: 2
        }
    );
    assert_eq!((spare_schemas(&url).await, spare_roles(&url).await), (2, 2));
    v2.provision(&valid_slug("beta"), "Beta").await.unwrap();
    assert!(took_spare(&v2, "beta").await);
    assert_eq!(
        tenant_count(&v2, "beta", "SELECT count(*) AS n FROM notes").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_provisionings_take_each_spare_once() {
    let url = database_url().await;
    let pool = pool_with(&url, MigrationSet::embedded_tenant()).await;
    pool.replenish_spares().await.unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.provision(&valid_slug(&format!("racer{i}")), "Racer")
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut spared = 0;
    for i in 0..6 {
        spared += usize::from(took_spare(&pool, &format!("racer{i}")).await);
    }
    assert_eq!(spared, 2);
    assert_eq!(spare_schemas(&url).await, 0);
    assert_eq!(
        admin_count(
            &url,
            "SELECT count(*) AS n FROM pg_namespace WHERE nspname LIKE 'tenant\\_racer%'"
        )
        .await,
        6
    );
}
