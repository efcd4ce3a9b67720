mod activity;
mod append_only;
mod backup;
mod changes;
mod concurrency;
mod isolation;
mod lifecycle;
mod migrate;
mod provision;
mod settings;
mod tls;

use rampart_tenancy::{MigrationSet, TenancyConfig, TenantPool};
use rampart_testkit::valid_slug;

pub fn config(url: &str) -> TenancyConfig {
    TenancyConfig {
        database_url: url.to_owned(),
        max_connections: 20,
        pool_wait_timeout_ms: 60_000,
        ..TenancyConfig::default()
    }
}

/// A pool on a database of this test's own.
pub async fn pool() -> TenantPool {
    let db = rampart_testkit::fresh_database().await.unwrap();
    TenantPool::connect(config(&db.url)).await.unwrap()
}

/// A fresh database URL (for tests that build several pools on it).
pub async fn database_url() -> String {
    rampart_testkit::fresh_database().await.unwrap().url
}

pub async fn pool_with(url: &str, set: MigrationSet) -> TenantPool {
    TenantPool::connect_with_template(config(url), set)
        .await
        .unwrap()
}

/// Runs one statement as the platform superuser (outside any tenant).
pub async fn admin_exec(url: &str, sql: &str) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    conn.batch_execute(sql).await.unwrap();
}

#[derive(diesel::QueryableByName, Debug)]
pub struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

pub async fn admin_count(url: &str, sql: &str) -> i64 {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let c: Count = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
    c.n
}

/// The `n` of `sql` (`SELECT … AS n`, a bigint) in tenant `slug`'s schema.
pub async fn tenant_count(pool: &TenantPool, slug: &str, sql: &str) -> i64 {
    use diesel_async::RunQueryDsl;
    pool.with_tenant(&valid_slug(slug), async |conn| {
        let c: Count = diesel::sql_query(sql).get_result(conn).await?;
        Ok::<_, rampart_tenancy::TenancyError>(c.n)
    })
    .await
    .unwrap()
}

/// The names of `slug`'s registry events, oldest first.
pub async fn event_names(pool: &TenantPool, slug: &str) -> Vec<String> {
    let events = pool.events(&valid_slug(slug)).await.unwrap().into_iter();
    events.map(|e| e.event).collect()
}
mod spares;
