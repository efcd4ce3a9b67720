//! Checks a deployment's database URLs the way Rampart will open them: the
//! TLS settings resolved (libpq's `sslmode`, `sslrootcert`, `sslcert`,
//! `sslkey`), the certificate files read, then one round trip to each
//! server (PostgreSQL: whether the session is encrypted; Redis: `PING`).
//!
//! ```sh
//! cargo run -p rampart-dbtls --example check -- \
//!     'postgres://app@db.internal/rampart?sslmode=verify-full&sslrootcert=/etc/rampart/db-ca.pem' \
//!     'rediss://cache.internal:6380'
//! ```
//!
//! Without arguments it shows, offline, which settings are refused before
//! any connection is made.
use rampart_dbtls::{DbTlsError, PgConnector, PgTlsConfig, RedisTlsConfig, redis_client};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        explain();
        return Ok(());
    }
    for url in &args {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            let client = redis_client(url, &RedisTlsConfig::default())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
            println!("redis: {pong}");
        } else {
            let pg = PgConnector::new(url, &PgTlsConfig::default())?;
            let client = pg.connect().await?;
            let row = client
                .query_one("select coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false)", &[])
                .await
                .map_err(|e| DbTlsError::Connect(e.to_string()))?;
            let encrypted: bool = row.get(0);
            println!("postgres: sslmode={}, encrypted={encrypted}", pg.mode());
        }
    }
    Ok(())
}

/// What is accepted and refused, without a server.
fn explain() {
    let base = "postgres://app@localhost/rampart";
    for url in [
        base.to_owned(),
        format!("{base}?sslmode=require"),
        format!("{base}?sslmode=verify-full&sslrootcert=system"),
        format!("{base}?sslmode=disable&sslrootcert=/etc/ca.pem"),
        format!("{base}?sslmode=sometimes"),
    ] {
        match PgConnector::new(&url, &PgTlsConfig::default()) {
            Ok(pg) => println!("accepted  {url}  (sslmode={})", pg.mode()),
            Err(e) => println!("refused   {url}  ({e})"),
        }
    }
    for url in [
        "redis://localhost:6379",
        "rediss://localhost:6380/#insecure",
    ] {
        match redis_client(url, &RedisTlsConfig::default()) {
            Ok(_) => println!("accepted  {url}"),
            Err(e) => println!("refused   {url}  ({e})"),
        }
    }
}
