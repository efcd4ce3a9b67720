//! A provider chain over the embedded historical prices: a quote, a month
//! of daily bars, and which layer answered.
//!
//! `cargo run -p rampart-market --example quotes` (no network, no service).
//! A deployment adds vendor providers before the embedded one, Redis and
//! PostgreSQL caches; see [`rampart_market::MarketConfig`].

use std::sync::Arc;

use chrono::NaiveDate;
use rampart_market::{EmbeddedProvider, MarketError, ProviderChain, ProviderPolicy};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), MarketError> {
    let chain = ProviderChain::builder()
        .provider(Arc::new(EmbeddedProvider::new()), ProviderPolicy::default())
        .build()?;

    for symbol in ["^GSPC", "^IXIC"] {
        let quote = chain.quote(symbol).await?;
        println!(
            "{symbol}: {} (served by {:?})",
            quote.value.price, quote.source
        );
    }
    // The second ask is answered from the in-process cache.
    let again = chain.quote("^GSPC").await?;
    println!("^GSPC again: served by {:?}", again.source);

    let (Some(from), Some(to)) = (
        NaiveDate::from_ymd_opt(2008, 10, 1),
        NaiveDate::from_ymd_opt(2008, 10, 31),
    ) else {
        return Ok(());
    };
    let bars = chain.daily_bars("^GSPC", from, to).await?;
    let closes = || bars.value.iter().map(|b| b.close);
    let (Some(low), Some(high)) = (closes().min(), closes().max()) else {
        return Ok(());
    };
    println!(
        "October 2008: {} trading days, closes between {low} and {high}",
        bars.value.len()
    );
    Ok(())
}
