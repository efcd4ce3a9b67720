//! What market data looks like once it leaves a vendor's format.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rampart_amount::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{MarketError, Result};

/// The latest price of a symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// Symbol, upper case (`AAPL`, `^GSPC`).
    pub symbol: String,
    /// Last traded (or closing) price.
    #[serde(with = "rampart_amount")]
    pub price: Decimal,
    /// Previous close, when known.
    #[serde(default, with = "rampart_amount::option")]
    pub previous_close: Option<Decimal>,
    /// Best bid, when known.
    #[serde(default, with = "rampart_amount::option")]
    pub bid: Option<Decimal>,
    /// Best ask, when known.
    #[serde(default, with = "rampart_amount::option")]
    pub ask: Option<Decimal>,
    /// Volume of the session or of the last trade, when known.
    pub volume: Option<u64>,
    /// Currency, when the vendor says.
    pub currency: Option<String>,
    /// When the vendor says the price was observed.
    pub as_of: DateTime<Utc>,
}

impl Quote {
    /// A quote of `symbol` at `price` observed now, nothing else known (a
    /// fake provider's, a test's).
    pub fn at(symbol: &str, price: Decimal) -> Self {
        Quote {
            symbol: symbol.to_owned(),
            price,
            previous_close: None,
            bid: None,
            ask: None,
            volume: None,
            currency: None,
            as_of: Utc::now(),
        }
    }
}

/// One daily OHLCV bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// Trading day.
    pub date: NaiveDate,
    /// Opening price.
    #[serde(with = "rampart_amount")]
    pub open: Decimal,
    /// Highest price.
    #[serde(with = "rampart_amount")]
    pub high: Decimal,
    /// Lowest price.
    #[serde(with = "rampart_amount")]
    pub low: Decimal,
    /// Closing price.
    #[serde(with = "rampart_amount")]
    pub close: Decimal,
    /// Close adjusted for splits and dividends, where the vendor gives it.
    #[serde(default, with = "rampart_amount::option")]
    pub adj_close: Option<Decimal>,
    /// Shares traded (0 when unknown).
    pub volume: u64,
}

/// A search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolMatch {
    /// Symbol as the vendor spells it.
    pub symbol: String,
    /// Instrument name.
    pub name: String,
    /// Exchange or region, when given.
    pub exchange: Option<String>,
    /// Instrument type (`Equity`, `ETF`, `Index`…), when given.
    pub kind: Option<String>,
}

/// Company fundamentals (the common subset vendors offer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fundamentals {
    /// Symbol.
    pub symbol: String,
    /// Company name.
    pub name: String,
    /// Exchange.
    pub exchange: Option<String>,
    /// Currency of the figures.
    pub currency: Option<String>,
    /// Sector or industry.
    pub sector: Option<String>,
    /// Market capitalisation in units of the currency.
    pub market_cap: Option<f64>,
    /// Price/earnings ratio.
    pub pe_ratio: Option<f64>,
    /// Earnings per share.
    pub eps: Option<f64>,
    /// Dividend yield as a fraction (0.005 = 0.5 %).
    pub dividend_yield: Option<f64>,
}

/// A news article about a symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewsItem {
    /// Headline.
    pub headline: String,
    /// Link to the article.
    pub url: String,
    /// Publisher.
    pub source: Option<String>,
    /// Summary, when given.
    pub summary: Option<String>,
    /// Publication time.
    pub published_at: DateTime<Utc>,
}

/// Who answered a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "layer", content = "provider", rename_all = "snake_case")]
pub enum Source {
    /// A provider, by its configured name (`yahoo`, `alpaca`, `embedded`…).
    Provider(String),
    /// The in-process cache.
    L1,
    /// The shared Redis cache.
    L2,
    /// The PostgreSQL store.
    L3,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Provider(name) => write!(f, "provider:{name}"),
            Source::L1 => f.write_str("cache:l1"),
            Source::L2 => f.write_str("cache:l2"),
            Source::L3 => f.write_str("store:l3"),
        }
    }
}

/// A value with where it came from and how old it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Served<T> {
    /// The data.
    pub value: T,
    /// Who served it.
    pub source: Source,
    /// The provider that originally fetched it (the same as `source` for a
    /// fresh answer; the upstream provider for a cached one, when known).
    pub origin: Option<String>,
    /// Time since it was fetched from a provider (zero for a fresh answer).
    pub age: Duration,
    /// True when it is a cached value served because every provider failed.
    pub stale: bool,
}

impl<T> Served<T> {
    /// Transforms the value, keeping provenance.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Served<U> {
        Served {
            value: f(self.value),
            source: self.source,
            origin: self.origin,
            age: self.age,
            stale: self.stale,
        }
    }
}

/// How much staleness a caller accepts when every provider fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Staleness {
    /// Serve the newest cached value, however old, marked stale.
    #[default]
    AllowStale,
    /// Serve a cached value only if it is younger than this.
    AtMost(Duration),
    /// Never: fail instead.
    Forbid,
}

impl Staleness {
    pub(crate) fn accepts(&self, age: Duration) -> bool {
        match self {
            Staleness::AllowStale => true,
            Staleness::AtMost(max) => age <= *max,
            Staleness::Forbid => false,
        }
    }
}

/// Normalizes a symbol (trimmed, upper case) and rejects empty or odd ones.
pub fn normalize_symbol(symbol: &str) -> Result<String> {
    let s = symbol.trim();
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '^' | '=' | '_'));
    if ok {
        Ok(s.to_ascii_uppercase())
    } else {
        Err(MarketError::InvalidInput(format!("bad symbol `{symbol}`")))
    }
}

/// Checks that `from <= to`.
pub(crate) fn check_range(from: NaiveDate, to: NaiveDate) -> Result<()> {
    if from > to {
        return Err(MarketError::InvalidInput(format!(
            "`from` {from} is after `to` {to}"
        )));
    }
    Ok(())
}
