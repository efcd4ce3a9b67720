//! Creates a versioned portfolio for a member, adds a position, and walks
//! its version history.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/rampart \
//!     cargo run -p rampart-portfolio --example portfolio -- acme
//! ```
//!
//! The tenant is provisioned if it does not exist yet (the URL's role must be
//! allowed to create roles and schemas); the owner is added through
//! `rampart-members`.

use rampart_members::{MemberInput, Members};
use rampart_portfolio::{
    Actor, Collaborative, Decimal, NewPortfolio, PortfolioService, PositionInput,
};
use rampart_tenancy::{TenancyConfig, TenantPool};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let slug: rampart_tenancy::TenantSlug = arg.as_deref().unwrap_or("example").parse()?;
    let database_url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let pool = TenantPool::connect(TenancyConfig {
        database_url,
        ..TenancyConfig::default()
    })
    .await?;
    if pool.tenant(&slug).await.is_err() {
        pool.provision(&slug, "Example tenant").await?;
    }
    let owner = Members::new(pool.clone())
        .upsert_member(
            &slug,
            &MemberInput {
                name: "Ada Lovelace".into(),
                email: format!("ada@{slug}.test"),
                role: "trader".into(),
            },
        )
        .await?
        .member;
    let ada = Actor::user(owner.id);

    let portfolios = PortfolioService::new(pool);
    let created = portfolios
        .create(
            &slug,
            &ada,
            NewPortfolio {
                name: "Core".into(),
                description: Some("Broad market, held for the long run".into()),
                ..NewPortfolio::default()
            },
        )
        .await?;
    let id = created.portfolio.id;
    println!(
        "created {} (version {})",
        created.portfolio.name, created.portfolio.version
    );

    let detail = portfolios
        .add_position(
            &slug,
            &ada,
            id,
            PositionInput {
                symbol: "MSFT".into(),
                quantity: Some(Decimal::new(10, 0)),
                purchase_price: Some(Decimal::new(41025, 2)),
                ..PositionInput::default()
            },
        )
        .await?;
    for position in &detail.positions {
        println!("  {} x {:?}", position.symbol, position.quantity);
    }

    // Every change is a stored version.
    let history = portfolios.versions(&slug, &ada, id, None, 10).await?;
    for version in &history.items {
        println!(
            "  v{} {} at {}",
            version.version, version.change, version.created_at
        );
    }
    Ok(())
}
