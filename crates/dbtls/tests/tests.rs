//! rampart-dbtls against the kit's TLS servers: PostgreSQL with
//! `sslmode=verify-full` (and a client certificate), Redis over `rediss://`,
//! and certificates from another CA refused.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use diesel_async::RunQueryDsl;
use rampart_dbtls::{PgConnector, PgTlsConfig, RedisTlsConfig, SslMode, redis_client};
use rampart_testkit::TestCa;

#[derive(diesel::QueryableByName)]
struct SslState {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    client_dn: Option<String>,
}

const SSL_STATE: &str = "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn pg_url() -> String {
    rampart_testkit::postgres_tls().unwrap().url("postgres")
}

async fn ssl_state(connector: &PgConnector) -> SslState {
    let mut conn = connector.establish().await.unwrap();
    diesel::sql_query(SSL_STATE)
        .get_result(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_verify_full_is_encrypted_and_presents_the_client_certificate() {
    let ca = rampart_testkit::test_ca().unwrap();
    let connector =
        PgConnector::new(&ca.verify_full_url(&pg_url()), &PgTlsConfig::default()).unwrap();
    assert_eq!(connector.mode(), SslMode::VerifyFull);
    let state = ssl_state(&connector).await;
    assert!(state.ssl);
    assert_eq!(state.client_dn, None);

    let with_cert = PgConnector::new(
        &pg_url(),
        &PgTlsConfig {
            root_cert_file: Some(ca.ca_file()),
            client_cert_file: Some(ca.client_cert_file()),
            client_key_file: Some(ca.client_key_file()),
            ..PgTlsConfig::default()
        },
    )
    .unwrap();
    // A root certificate alone means verify-full.
    assert_eq!(with_cert.mode(), SslMode::VerifyFull);
    let state = ssl_state(&with_cert).await;
    assert!(state.ssl);
    assert_eq!(state.client_dn.as_deref(), Some("/CN=rampart-test-client"));

    // The tokio-postgres client (COPY) goes the same way.
    let client = connector.connect().await.unwrap();
    let row = client.query_one(SSL_STATE, &[]).await.unwrap();
    assert!(row.get::<_, bool>(0));
}

#[tokio::test]
async fn postgres_verify_ca_and_require_check_the_chain() {
    let ca = rampart_testkit::test_ca().unwrap();
    let other = TestCa::new("Other CA").unwrap();
    for mode in [SslMode::VerifyCa, SslMode::Require] {
        let tls = |root: &TestCa| PgTlsConfig {
            sslmode: Some(mode),
            root_cert_file: Some(root.ca_file()),
            ..PgTlsConfig::default()
        };
        let good = PgConnector::new(&pg_url(), &tls(ca)).unwrap();
        assert!(ssl_state(&good).await.ssl, "{mode}");
        let bad = PgConnector::new(&pg_url(), &tls(&other)).unwrap();
        let err = bad.connect().await.unwrap_err().to_string();
        assert!(err.contains("UnknownIssuer"), "{mode}: {err}");
    }
}

#[tokio::test]
async fn postgres_refuses_a_certificate_from_another_ca() {
    let other = TestCa::new("Other CA").unwrap();
    let connector =
        PgConnector::new(&other.verify_full_url(&pg_url()), &PgTlsConfig::default()).unwrap();
    let err = match connector.establish().await {
        Ok(_) => panic!("connected to a server whose certificate another CA signed"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("sslmode=verify-full")
            && err.contains("invalid peer certificate: UnknownIssuer"),
        "unclear error: {err}"
    );
}

#[tokio::test]
async fn postgres_without_sslmode_stays_plaintext() {
    let connector = PgConnector::new(&pg_url(), &PgTlsConfig::default()).unwrap();
    assert_eq!(connector.mode(), SslMode::Disable);
    assert!(!ssl_state(&connector).await.ssl);
}

async fn ping(client: &redis::Client) -> redis::RedisResult<String> {
    let mut conn = client.get_multiplexed_async_connection().await?;
    redis::cmd("PING").query_async(&mut conn).await
}

fn trusting(ca: &TestCa) -> RedisTlsConfig {
    RedisTlsConfig {
        root_cert_file: Some(ca.ca_file()),
        ..RedisTlsConfig::default()
    }
}

#[tokio::test]
async fn rediss_with_the_test_ca_works() {
    rampart_testkit::install_crypto_provider();
    let ca = rampart_testkit::test_ca().unwrap();
    let server = rampart_testkit::redis_tls().unwrap();
    assert!(server.url().starts_with("rediss://"));
    let client = redis_client(&server.url(), &trusting(ca)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("dbtls:k")
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();
    let v: String = redis::cmd("GET")
        .arg("dbtls:k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, "v");
    // The TLS port does not speak plaintext.
    let plain = redis::Client::open(server.url().replacen("rediss://", "redis://", 1)).unwrap();
    assert!(ping(&plain).await.is_err());
}

#[tokio::test]
async fn rediss_refuses_a_certificate_from_another_ca() {
    rampart_testkit::install_crypto_provider();
    let other = TestCa::new("Other CA").unwrap();
    let server = rampart_testkit::redis_tls().unwrap();
    let client = redis_client(&server.url(), &trusting(&other)).unwrap();
    let err = ping(&client).await.unwrap_err().to_string();
    assert!(err.contains("UnknownIssuer"), "unclear error: {err}");
}

#[tokio::test]
async fn rediss_client_certificate_when_the_server_requires_one() {
    rampart_testkit::install_crypto_provider();
    let ca = rampart_testkit::test_ca().unwrap();
    let server = rampart_testkit::RedisServer::start_tls(ca, true).unwrap();
    let anonymous = redis_client(&server.url(), &trusting(ca)).unwrap();
    assert!(
        ping(&anonymous).await.is_err(),
        "no client certificate, still served"
    );
    let identified = redis_client(
        &server.url(),
        &RedisTlsConfig {
            client_cert_file: Some(ca.client_cert_file()),
            client_key_file: Some(ca.client_key_file()),
            ..trusting(ca)
        },
    )
    .unwrap();
    assert_eq!(ping(&identified).await.unwrap(), "PONG");
}
