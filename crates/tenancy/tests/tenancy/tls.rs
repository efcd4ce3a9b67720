//! TLS to PostgreSQL: the pool (and the backup's COPY connections) connect
//! with `sslmode=verify-full` to the kit's TLS server, and a server whose
//! certificate comes from another CA is refused with a clear error.
use diesel_async::RunQueryDsl;
use rampart_dbtls::{PgTlsConfig, SslMode};
use rampart_tenancy::{TenancyConfig, TenantPool};
use rampart_testkit::acme;

use super::config;

#[derive(diesel::QueryableByName)]
struct Ssl {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
}

/// Whether the pool's own connection is encrypted, as the server sees it.
async fn pool_uses_tls(pool: &TenantPool) -> bool {
    let mut conn = pool.raw_pool().get().await.unwrap();
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut *conn)
        .await
        .unwrap();
    row.ssl
}

async fn tls_database() -> String {
    rampart_testkit::postgres_tls()
        .unwrap()
        .fresh_database()
        .await
        .unwrap()
        .url
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_connects_with_verify_full_and_serves_tenants() {
    let ca = rampart_testkit::test_ca().unwrap();
    let url = tls_database().await;
    let pool = TenantPool::connect(config(&ca.verify_full_url(&url)))
        .await
        .unwrap();
    assert!(
        pool_uses_tls(&pool).await,
        "the pool's connection is not TLS"
    );
    pool.provision(&acme(), "Acme").await.unwrap();
    // The backup's COPY client connects the same way.
    let dir = tempfile::tempdir().unwrap();
    let export = pool
        .export_tenant(&acme(), dir.path().join("acme"))
        .await
        .unwrap();
    assert_eq!(export.manifest.source_slug, "acme");

    // The same through typed configuration instead of URL parameters, with
    // a client certificate.
    let typed = TenancyConfig {
        tls: PgTlsConfig {
            sslmode: Some(SslMode::VerifyFull),
            root_cert_file: Some(ca.ca_file()),
            client_cert_file: Some(ca.client_cert_file()),
            client_key_file: Some(ca.client_key_file()),
        },
        ..config(&url)
    };
    let pool = TenantPool::connect(typed).await.unwrap();
    assert!(pool_uses_tls(&pool).await);

    // Without sslmode the connection stays plaintext, as before.
    let plain = TenantPool::connect(config(&url)).await.unwrap();
    assert!(
        !pool_uses_tls(&plain).await,
        "no sslmode must mean plaintext"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_refuses_a_server_certificate_from_another_ca() {
    let other = rampart_testkit::TestCa::new("Some other CA").unwrap();
    let url = tls_database().await;
    let config = TenancyConfig {
        pool_wait_timeout_ms: 5_000,
        ..config(&other.verify_full_url(&url))
    };
    let err = TenantPool::connect(config).await.unwrap_err().to_string();
    assert!(
        err.contains("sslmode=verify-full") && err.contains("UnknownIssuer"),
        "unclear error: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_needs_a_root_certificate() {
    let url = tls_database().await;
    let err = TenantPool::connect(config(&format!("{url}?sslmode=verify-full")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a root certificate"), "{err}");
}
