//! Provisions a tenant (if it does not exist yet), writes and reads a row in
//! its schema, and prints its health.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/rampart \
//!     cargo run -p rampart-tenancy --example provision -- acme
//! ```
//!
//! The URL's role must be allowed to create roles and schemas. A throwaway
//! server: `cargo run -p rampart-testkit --example postgres`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rampart_tenancy::{TenancyConfig, TenancyError, TenantPool};

/// The tenant template's `users` table, as far as this reads it.
/// Unqualified: `with_tenant` routes it to the tenant's schema.
mod schema {
    diesel::table! {
        users (id) {
            id -> Uuid,
            email -> Text,
        }
    }
}
use schema::users;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database_url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL to a PostgreSQL URL (see the example's header)")?;
    let arg = std::env::args().nth(1);
    let slug: rampart_tenancy::TenantSlug = arg.as_deref().unwrap_or("example").parse()?;

    let pool = TenantPool::connect(TenancyConfig {
        database_url,
        ..TenancyConfig::default()
    })
    .await?;
    let tenant = match pool.provision(&slug, "Example tenant").await {
        Ok(tenant) => tenant,
        Err(TenancyError::AlreadyExists(_)) => pool.tenant(&slug).await?,
        Err(e) => return Err(e.into()),
    };
    println!(
        "tenant {} ({}) in schema {}",
        tenant.slug, tenant.id, tenant.schema_name
    );

    let email = format!("ada@{slug}.test");
    let emails: Vec<String> = pool
        .with_tenant(&slug, async |conn| {
            diesel::insert_into(users::table)
                .values(users::email.eq(&email))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            let emails = users::table
                .select(users::email)
                .order(users::email)
                .load(conn)
                .await?;
            Ok::<_, TenancyError>(emails)
        })
        .await?;
    println!("users of {slug}: {emails:?}");

    let health = pool.health(&slug).await?;
    println!(
        "health: reachable {}, migrations current {} ({:?} of {}), {:.1} ms",
        health.reachable,
        health.migrations_current,
        health.migration_version,
        health.latest_version,
        health.latency_ms
    );
    Ok(())
}
