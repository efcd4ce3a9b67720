//! TLS to PostgreSQL and Redis: the server as `rampart serve` starts it, with
//! PostgreSQL over `sslmode=verify-full` and Redis over `rediss://` (both
//! from the test kit's CA), serves an authenticated API request, and every
//! one of its database connections is encrypted.
use rampart_auth::Role;
use rampart_dbtls::RedisTlsConfig;

use crate::common::{CLIENT_SCOPES, env_with, scoped_token};

#[tokio::test(flavor = "multi_thread")]
async fn the_server_runs_on_postgres_verify_full_and_rediss() {
    let ca = rampart_testkit::test_ca().unwrap();
    let db = rampart_testkit::postgres_tls()
        .unwrap()
        .fresh_database()
        .await
        .unwrap();
    let redis = rampart_testkit::redis_tls().unwrap();
    let env = env_with(|config| {
        config.database.database_url = ca.verify_full_url(&db.url);
        config.redis_url = Some(redis.url());
        config.redis_tls = RedisTlsConfig {
            root_cert_file: Some(ca.ca_file()),
            client_cert_file: Some(ca.client_cert_file()),
            client_key_file: Some(ca.client_key_file()),
        };
    })
    .await;

    let auth = env.auth();
    let (_, access) =
        scoped_token(&auth, "acme", "ada@acme.test", Role::Trader, CLIENT_SCOPES).await;
    let me = env.expect_get(200, "/api/v1/t/acme/me", &access).await;
    assert_eq!(me["data"]["user"]["email"], "ada@acme.test", "{me}");

    // Every connection the server holds to its database is TLS.
    #[derive(diesel::QueryableByName)]
    struct Tls {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        plain: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        encrypted: i64,
    }
    let mut conn = env.state.tenants.raw_pool().get().await.unwrap();
    // raw SQL: pg_stat_ssl / pg_stat_activity are catalog views.
    let tls: Tls = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) FILTER (WHERE NOT s.ssl) AS plain, \
                    count(*) FILTER (WHERE s.ssl) AS encrypted \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = current_database()",
        ),
        &mut *conn,
    )
    .await
    .unwrap();
    drop(conn);
    assert_eq!(tls.plain, 0, "plaintext connections to the database");
    assert!(tls.encrypted >= 1);

    // The server's Redis client (rediss://, client certificate) answers.
    let ready = env.state.ready_report().await;
    assert!(ready.redis.configured && ready.redis.ok, "{ready:?}");
    assert!(ready.postgres.ok, "{ready:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_refuses_a_database_certificate_from_another_ca() {
    let other = rampart_testkit::TestCa::new("Not the database's CA").unwrap();
    let db = rampart_testkit::postgres_tls()
        .unwrap()
        .fresh_database()
        .await
        .unwrap();
    let pki = crate::common::Pki::new();
    let mut config = crate::common::config(&pki).await;
    config.database.database_url = other.verify_full_url(&db.url);
    config.database.pool_wait_timeout_ms = 5_000;
    let err = match rampart_server::serve::build_state(config).await {
        Ok(_) => panic!("started on a database whose certificate another CA signed"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("UnknownIssuer"), "unclear error: {err}");
}
