//! The one trait every source of market data implements.

use async_trait::async_trait;
use chrono::NaiveDate;

use crate::error::{MarketError, Result};
use crate::model::{Bar, Fundamentals, NewsItem, Quote, SymbolMatch};

/// A source of market data: a vendor API, the embedded data set or the store.
///
/// Every method is a read, so every call is idempotent and may be retried.
/// Symbols arrive normalized (upper case, trimmed).
#[async_trait]
pub trait MarketDataProvider: Send + Sync {
    /// The configured name (`yahoo`, `alpaca-paper`…), used in provenance,
    /// metrics labels and errors.
    fn name(&self) -> &str;

    /// The latest quote.
    async fn quote(&self, symbol: &str) -> Result<Quote>;

    /// Quotes for several symbols; one vendor call where the vendor batches.
    /// A symbol the vendor does not know is missing from the answer. The
    /// default asks one symbol at a time.
    async fn quotes(&self, symbols: &[String]) -> Result<Vec<Quote>> {
        let mut out = Vec::with_capacity(symbols.len());
        for symbol in symbols {
            match self.quote(symbol).await {
                Ok(q) => out.push(q),
                Err(MarketError::UnknownSymbol { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Daily OHLCV bars for `from..=to`, oldest first, with the adjusted close
    /// where the vendor gives it. Unvalidated: the chain validates.
    async fn daily_bars(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Bar>>;

    /// Instruments matching a free-text query.
    async fn search(&self, query: &str) -> Result<Vec<SymbolMatch>>;

    /// Company fundamentals; [`MarketError::Unsupported`] unless the vendor has them.
    async fn fundamentals(&self, symbol: &str) -> Result<Fundamentals> {
        let _ = symbol;
        Err(MarketError::unsupported(self.name(), "fundamentals"))
    }

    /// Recent news; [`MarketError::Unsupported`] unless the vendor has them.
    async fn news(&self, symbol: &str, limit: usize) -> Result<Vec<NewsItem>> {
        let _ = (symbol, limit);
        Err(MarketError::unsupported(self.name(), "news"))
    }
}
