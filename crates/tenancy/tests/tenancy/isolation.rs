use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use rampart_tenancy::{TenancyError, TenantPool};
use rampart_testkit::valid_slug;

use super::{Count, pool, tenant_count};

#[derive(diesel::QueryableByName)]
struct Email {
    #[diesel(sql_type = Text)]
    email: String,
}

/// The rows in `slug`'s users table.
async fn user_count(pool: &TenantPool, slug: &str) -> i64 {
    tenant_count(pool, slug, "SELECT count(*) AS n FROM users").await
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_tenants_never_see_each_others_rows() {
    let pool = pool().await;
    let slugs: Vec<String> = (0..8).map(|i| format!("iso{i}")).collect();
    for s in &slugs {
        pool.provision(&valid_slug(s), s).await.unwrap();
    }
    let mut tasks = Vec::new();
    for s in slugs.clone() {
        for i in 0..25 {
            let pool = pool.clone();
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                pool.with_tenant(&valid_slug(&s), async |conn| {
                    diesel::sql_query("INSERT INTO users (email) VALUES ($1)")
                        .bind::<Text, _>(format!("u{i}@{s}.test"))
                        .execute(conn)
                        .await?;
                    let rows: Vec<Email> = diesel::sql_query("SELECT email FROM users")
                        .load(conn)
                        .await?;
                    assert!(
                        rows.iter()
                            .all(|r| r.email.ends_with(&format!("@{s}.test"))),
                        "leak into {s}"
                    );
                    Ok::<_, TenancyError>(())
                })
                .await
            }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for s in &slugs {
        let n = user_count(&pool, s).await;
        assert_eq!(n, 25);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_cross_schema_sql_fails_with_permission_denied() {
    let pool = pool().await;
    pool.provision(&valid_slug("victim"), "Victim")
        .await
        .unwrap();
    pool.provision(&valid_slug("attacker"), "Attacker")
        .await
        .unwrap();
    for sql in [
        "SELECT count(*) AS n FROM tenant_victim.users",
        "SELECT count(*) AS n FROM platform.tenants",
        "SELECT count(*) AS n FROM tenant_template.users",
    ] {
        let err = pool
            .with_tenant(&valid_slug("attacker"), async |conn| {
                let c: Count = diesel::sql_query(sql).get_result(conn).await?;
                Ok::<_, TenancyError>(c.n)
            })
            .await
            .unwrap_err();
        assert!(err.is_permission_denied(), "{sql}: {err}");
    }
    // `public` is not on the path: unqualified names fail closed.
    let err = pool
        .with_tenant(&valid_slug("attacker"), async |conn| {
            let c: Count = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_tables WHERE schemaname = current_schema()",
            )
            .get_result(conn)
            .await?;
            let path: Email = diesel::sql_query("SELECT current_setting('search_path') AS email")
                .get_result(conn)
                .await?;
            assert_eq!(path.email, "tenant_attacker");
            assert!(c.n > 0);
            diesel::sql_query("CREATE TABLE public.sneaky (x int)")
                .execute(conn)
                .await?;
            Ok::<_, TenancyError>(())
        })
        .await
        .unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_settings_end_with_the_transaction() {
    let pool = pool().await;
    pool.provision(&valid_slug("scoped"), "Scoped")
        .await
        .unwrap();
    pool.with_tenant(&valid_slug("scoped"), async |conn| {
        let who: Email = diesel::sql_query("SELECT current_user::text AS email")
            .get_result(conn)
            .await?;
        assert!(who.email.ends_with("_scoped"));
        Ok::<_, TenancyError>(())
    })
    .await
    .unwrap();
    // Every pooled connection is back to the login role and default path.
    let mut conns = Vec::new();
    for _ in 0..pool.pool_status().size {
        conns.push(pool.raw_pool().get().await.unwrap());
    }
    for mut c in conns {
        let who: Email = diesel::sql_query("SELECT current_user::text AS email")
            .get_result(&mut *c)
            .await
            .unwrap();
        assert_eq!(who.email, "postgres");
        let path: Email = diesel::sql_query("SELECT current_setting('search_path') AS email")
            .get_result(&mut *c)
            .await
            .unwrap();
        assert!(!path.email.contains("tenant_"), "{}", path.email);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_in_work_roll_back() {
    let pool = pool().await;
    pool.provision(&valid_slug("atomic"), "Atomic")
        .await
        .unwrap();
    let r = pool
        .with_tenant(&valid_slug("atomic"), async |conn| {
            diesel::sql_query("INSERT INTO users (email) VALUES ('a@b.c')")
                .execute(conn)
                .await?;
            Err::<(), _>(TenancyError::Config("boom".into()))
        })
        .await;
    assert!(r.is_err());
    let n = user_count(&pool, "atomic").await;
    assert_eq!(n, 0);
    assert!(pool.checkouts(pool.tenant(&valid_slug("atomic")).await.unwrap().id) >= 2);
}
