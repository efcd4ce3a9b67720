//! Sets a price alert for a member and checks it against the embedded
//! market data, which fires it and mails the member.
//!
//! ```text
//! python3 -m aiosmtpd -n -l 127.0.0.1:1025 &      # or any SMTP relay
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/rampart SMTP_PORT=1025 \
//!     cargo run -p rampart-notify --example price_alert -- acme
//! ```
//!
//! The tenant is provisioned if it does not exist yet; the member is added
//! through `rampart-members`. Every message, sent or not, is in the
//! tenant's `sent_emails` log.

use std::sync::Arc;

use rampart_market::{EmbeddedProvider, ProviderChain, ProviderPolicy};
use rampart_members::{MemberInput, Members};
use rampart_notify::{Direction, NewPriceAlert, Notifier, NotifyConfig, SmtpTls};
use rampart_tenancy::{TenancyConfig, TenantPool};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let slug: rampart_tenancy::TenantSlug = arg.as_deref().unwrap_or("example").parse()?;
    let pool = TenantPool::connect(TenancyConfig {
        database_url: std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?,
        ..TenancyConfig::default()
    })
    .await?;
    if pool.tenant(&slug).await.is_err() {
        pool.provision(&slug, "Example tenant").await?;
    }
    let member = MemberInput {
        name: "Ada Lovelace".into(),
        email: format!("ada@{slug}.test"),
        role: "trader".into(),
    };
    let user = Members::new(pool.clone())
        .upsert_member(&slug, &member)
        .await?
        .member;

    // A relay on loopback without TLS, as in development.
    let notifier = Notifier::new(
        pool,
        NotifyConfig {
            smtp_host: std::env::var("SMTP_HOST").unwrap_or_else(|_| "127.0.0.1".into()),
            smtp_port: std::env::var("SMTP_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(1025),
            tls: SmtpTls::None,
            ..NotifyConfig::default()
        },
    )?;
    let alert = notifier
        .create_price_alert(
            &slug,
            user.id,
            &NewPriceAlert {
                symbol: "^GSPC".into(),
                direction: Direction::Above,
                threshold: rust_decimal::Decimal::from(2000),
                note: "time to rebalance".into(),
            },
        )
        .await?;
    println!(
        "alert {}: {} {} {}",
        alert.id, alert.symbol, alert.direction, alert.threshold
    );

    // The embedded data set quotes the S&P 500 at its 2018 close (2506.85).
    let market = ProviderChain::builder()
        .provider(Arc::new(EmbeddedProvider::new()), ProviderPolicy::default())
        .build()?;
    let fired = notifier.check_price_alerts(&slug, &market).await?;
    println!("{fired} alert(s) fired and mailed to {}", user.email);
    Ok(())
}
