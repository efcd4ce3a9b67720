//! Adds members to a tenant one by one and from CSV (preview, then commit
//! exactly the previewed plan), then lists them.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/rampart \
//!     cargo run -p rampart-members --example roster -- acme
//! ```
//!
//! The tenant is provisioned if it does not exist yet (the URL's role must be
//! allowed to create roles and schemas).

use rampart_members::{MemberInput, Members};
use rampart_tenancy::{TenancyConfig, TenantPool};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let slug: rampart_tenancy::TenantSlug = arg.as_deref().unwrap_or("example").parse()?;
    let config = TenancyConfig {
        database_url: std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?,
        ..TenancyConfig::default()
    };
    let members = Members::new(TenantPool::connect(config).await?);
    if members.pool().tenant(&slug).await.is_err() {
        members.pool().provision(&slug, "Example tenant").await?;
    }

    let ada = MemberInput {
        name: "Ada Lovelace".into(),
        email: format!("ada@{slug}.test"),
        role: "trader".into(),
    };
    let outcome = members.upsert_member(&slug, &ada).await?;
    let verb = if outcome.created {
        "created"
    } else {
        "updated"
    };
    println!("{verb} {} <{}>", outcome.member.name, outcome.member.email);

    let csv = format!(
        "name,email,role\nGrace Hopper,grace@{slug}.test,viewer\nAlan Turing,alan@{slug}.test,trader\n"
    );
    let preview = members.preview_import(&slug, &csv, "example").await?;
    println!(
        "import preview: {} to create, {} to update, {} unchanged, {} refused",
        preview.created, preview.updated, preview.unchanged, preview.refused
    );
    // A plan with refused rows is never applied: fix the file and preview again.
    if preview.refused == 0 {
        let done = members
            .commit_import(&slug, preview.id, &preview.digest)
            .await?;
        println!(
            "imported: {} created, {} updated",
            done.created, done.updated
        );
    }

    let (listed, more) = members.list_members(&slug, None, 50).await?;
    for member in &listed {
        println!("  {:<20} {:<28} {}", member.name, member.email, member.role);
    }
    if more {
        println!("  …");
    }
    Ok(())
}
