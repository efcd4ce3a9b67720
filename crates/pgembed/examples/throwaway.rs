//! Starts a throwaway PostgreSQL, prints its URL, and stops it on Enter.
//!
//! `cargo run -p rampart-pgembed --example throwaway` (as root it runs the
//! server as the `postgres` account; needs the PostgreSQL server binaries).
use rampart_pgembed::{PgError, PgOptions, PgServer};

fn main() -> Result<(), PgError> {
    let pg = PgServer::start_with(PgOptions::default())?;
    println!("PostgreSQL on {}", pg.url("postgres"));
    println!("press Enter to stop");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    pg.shutdown()?;
    Ok(())
}
