//! Starts a throwaway PostgreSQL server and prints its URL until Ctrl-C, for
//! trying the other crates' examples (`DATABASE_URL=<printed url> cargo run
//! -p rampart-tenancy --example provision`).
//!
//! `cargo run -p rampart-testkit --example postgres`

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rampart_testkit::TestkitError> {
    let server = rampart_testkit::PgServer::start()?;
    let database = server.fresh_database().await?;
    println!("DATABASE_URL={}", database.url);
    println!("(data in a temporary directory; Ctrl-C stops the server and removes it)");
    tokio::signal::ctrl_c().await?;
    server.shutdown()
}
