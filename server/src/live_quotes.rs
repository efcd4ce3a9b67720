//! Live quotes as the WebSocket streams send them: each symbol priced
//! through the market chain (stale answers allowed, marked), with its
//! provenance and age; the symbols that could not be priced, with a code.
use rampart_market::{MarketError, ProviderChain, Staleness};
use serde_json::{Value, json};

/// (`quotes`, `errors`) for `symbols`: `{"symbol", "price", "previousClose",
/// "asOf", "source", "ageMs", "stale"}` and `{"symbol", "code"}`.
pub async fn priced(market: &ProviderChain, symbols: &[String]) -> (Vec<Value>, Vec<Value>) {
    let mut quotes = Vec::new();
    let mut errors = Vec::new();
    for (symbol, r) in market.quotes(symbols, Staleness::AllowStale).await {
        match r {
            Ok(served) => quotes.push(json!({
                "symbol": symbol,
                "price": served.value.price,
                "previousClose": served.value.previous_close,
                "asOf": served.value.as_of,
                "source": served.source,
                "ageMs": u64::try_from(served.age.as_millis()).unwrap_or(u64::MAX),
                "stale": served.stale,
            })),
            Err(e) => errors.push(json!({
                "symbol": symbol,
                "code": match e {
                    MarketError::UnknownSymbol { .. } => "unknown_symbol",
                    _ => "market_unavailable",
                },
            })),
        }
    }
    (quotes, errors)
}
