//! Real historical prices compiled into the crate, so the platform has data
//! with no network. See `data/README.md` for where they come from.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveTime};
use rampart_amount::Decimal;

use crate::error::{MarketError, Result};
use crate::model::{Bar, Fundamentals, NewsItem, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;

const SP500: &str = include_str!("../data/sp500_daily.csv");
const NASDAQ: &str = include_str!("../data/nasdaq_daily.csv");
const MONTHLY: &str = include_str!("../data/stocks_monthly.csv");

/// The embedded instruments: symbol, name, kind.
pub const INSTRUMENTS: &[(&str, &str, &str)] = &[
    ("^GSPC", "S&P 500 Index", "Index"),
    ("^IXIC", "NASDAQ Composite Index", "Index"),
    ("AAPL", "Apple Inc.", "Equity"),
    ("AMZN", "Amazon.com, Inc.", "Equity"),
    ("GOOG", "Alphabet Inc. (Google)", "Equity"),
    (
        "IBM",
        "International Business Machines Corporation",
        "Equity",
    ),
    ("MSFT", "Microsoft Corporation", "Equity"),
];

type Series = HashMap<String, Vec<Bar>>;

static DATA: LazyLock<std::result::Result<Series, String>> = LazyLock::new(load);

fn load() -> std::result::Result<Series, String> {
    let mut series = Series::new();
    series.insert("^GSPC".into(), parse_daily(SP500)?);
    series.insert("^IXIC".into(), parse_daily(NASDAQ)?);
    let mut reader = csv::Reader::from_reader(MONTHLY.as_bytes());
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let (Some(symbol), Some(date), Some(close)) = (record.get(0), record.get(1), record.get(2))
        else {
            return Err("short monthly row".into());
        };
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|e| e.to_string())?;
        let close = rampart_amount::parse(close).ok_or_else(|| format!("bad close `{close}`"))?;
        series.entry(symbol.to_owned()).or_default().push(Bar {
            date,
            open: close,
            high: close,
            low: close,
            close,
            adj_close: None,
            volume: 0,
        });
    }
    for bars in series.values_mut() {
        bars.sort_by_key(|b| b.date);
    }
    Ok(series)
}

fn parse_daily(text: &str) -> std::result::Result<Vec<Bar>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut bars = Vec::with_capacity(5100);
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let text = |i: usize| record.get(i).unwrap_or("");
        let num = |i: usize| -> std::result::Result<Decimal, String> {
            rampart_amount::parse(text(i)).ok_or_else(|| format!("bad number `{}`", text(i)))
        };
        let date = NaiveDate::parse_from_str(record.get(0).unwrap_or(""), "%Y-%m-%d")
            .map_err(|e| e.to_string())?;
        bars.push(Bar {
            date,
            open: num(1)?,
            high: num(2)?,
            low: num(3)?,
            close: num(4)?,
            adj_close: Some(num(5)?),
            volume: text(6).parse::<u64>().map_err(|e| e.to_string())?,
        });
    }
    Ok(bars)
}

/// Serves the embedded data set: the S&P 500 (`^GSPC`) and NASDAQ Composite
/// (`^IXIC`) daily 1999–2018, and monthly closes of AAPL, AMZN, GOOG, IBM and
/// MSFT 2000–2010. A quote is the latest bar, dated at its day's US close.
#[derive(Debug, Clone)]
pub struct EmbeddedProvider {
    name: String,
}

impl Default for EmbeddedProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedProvider {
    /// The provider, named `embedded`.
    pub fn new() -> Self {
        Self::named("embedded")
    }

    /// The provider under another name.
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// The symbols it has.
    pub fn symbols(&self) -> Vec<&'static str> {
        INSTRUMENTS.iter().map(|i| i.0).collect()
    }

    fn series(&self, symbol: &str) -> Result<&'static [Bar]> {
        let data = DATA
            .as_ref()
            .map_err(|e| MarketError::malformed(&self.name, format!("embedded data: {e}")))?;
        data.get(symbol)
            .map(Vec::as_slice)
            .ok_or_else(|| MarketError::unknown(&self.name, symbol))
    }
}

#[async_trait]
impl MarketDataProvider for EmbeddedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn quote(&self, symbol: &str) -> Result<Quote> {
        let bars = self.series(symbol)?;
        let Some(last) = bars.last() else {
            return Err(MarketError::unknown(&self.name, symbol));
        };
        let previous_close = bars
            .len()
            .checked_sub(2)
            .and_then(|i| bars.get(i))
            .map(|b| b.close);
        let close_time = NaiveTime::from_hms_opt(21, 0, 0).unwrap_or(NaiveTime::MIN);
        Ok(Quote {
            symbol: symbol.to_owned(),
            price: last.close,
            previous_close,
            bid: None,
            ask: None,
            volume: Some(last.volume).filter(|v| *v > 0),
            currency: Some("USD".into()),
            as_of: last.date.and_time(close_time).and_utc(),
        })
    }

    async fn daily_bars(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Bar>> {
        let bars = self.series(symbol)?;
        let start = bars.partition_point(|b| b.date < from);
        let end = bars.partition_point(|b| b.date <= to);
        Ok(bars
            .get(start..end)
            .map(<[Bar]>::to_vec)
            .unwrap_or_default())
    }

    /// What the embedded set knows: the instrument's name (in USD); the
    /// ratios are not part of it.
    async fn fundamentals(&self, symbol: &str) -> Result<Fundamentals> {
        let (symbol, name, _) = INSTRUMENTS
            .iter()
            .find(|(s, _, _)| *s == symbol)
            .ok_or_else(|| MarketError::unknown(&self.name, symbol))?;
        Ok(Fundamentals {
            symbol: (*symbol).into(),
            name: (*name).into(),
            exchange: None,
            currency: Some("USD".into()),
            sector: None,
            market_cap: None,
            pe_ratio: None,
            eps: None,
            dividend_yield: None,
        })
    }

    /// The embedded set has no articles: an empty list for a known symbol
    /// (put vendors with news before it in the chain).
    async fn news(&self, symbol: &str, _limit: usize) -> Result<Vec<NewsItem>> {
        self.series(symbol)?;
        Ok(Vec::new())
    }

    async fn search(&self, query: &str) -> Result<Vec<SymbolMatch>> {
        let needle = query.trim().to_ascii_lowercase();
        Ok(INSTRUMENTS
            .iter()
            .filter(|(symbol, name, _)| {
                symbol.to_ascii_lowercase().contains(&needle)
                    || name.to_ascii_lowercase().contains(&needle)
            })
            .map(|(symbol, name, kind)| SymbolMatch {
                symbol: (*symbol).into(),
                name: (*name).into(),
                exchange: None,
                kind: Some((*kind).into()),
            })
            .collect())
    }
}
