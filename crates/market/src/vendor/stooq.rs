//! Stooq CSV downloads (`https://stooq.com`).
//!
//! * bars: `/q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD` →
//!   `Date,Open,High,Low,Close,Volume` (indices have no volume column);
//! * quotes (batched with `+`): `/q/l/?s=aapl.us+msft.us&f=sd2t2ohlcv&h&e=csv`
//!   → `Symbol,Date,Time,Open,High,Low,Close,Volume`, with `N/D` in every
//!   field of a symbol Stooq does not know.
//!
//! An unknown symbol in a bar download is HTTP 200 with the body `No data`;
//! the daily quota is HTTP 200 with `Exceeded the daily hits limit`. US
//! symbols take a `.us` suffix here (`AAPL` → `aapl.us`); `^GSPC` maps to
//! Stooq's `^spx`. No search, fundamentals or news.

use async_trait::async_trait;
use chrono::{Duration as ChronoDuration, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::VendorSettings;
use super::http::{Http, join, looks_like_html, parse_price, snippet};
use crate::error::{MarketError, Result};
use crate::model::{Bar, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;

/// Stooq's URL.
pub const DEFAULT_BASE_URL: &str = "https://stooq.com";

/// The Stooq adapter.
#[derive(Debug, Clone)]
pub struct StooqProvider {
    http: Http,
    base_url: String,
    api_key: Option<String>,
}

/// Our symbol → Stooq's.
pub fn stooq_symbol(symbol: &str) -> String {
    match symbol {
        "^GSPC" => "^spx".into(),
        "^IXIC" => "^ndq".into(),
        "^DJI" => "^dji".into(),
        s if s.contains('.') || s.starts_with('^') => s.to_ascii_lowercase(),
        s => format!("{}.us", s.to_ascii_lowercase()),
    }
}

impl StooqProvider {
    /// Builds the adapter (`api_key`, when set, is sent as `apikey`).
    pub fn new(settings: VendorSettings) -> Result<Self> {
        Ok(Self {
            http: Http::new(&settings.name, settings.client)?,
            base_url: settings.base_url.unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            api_key: settings.api_key,
        })
    }

    async fn csv(
        &self,
        path: &str,
        mut query: Vec<(&str, String)>,
        symbol: &str,
    ) -> Result<String> {
        if let Some(key) = &self.api_key {
            query.push(("apikey", key.clone()));
        }
        let reply = self
            .http
            .get(&join(&self.base_url, path), &query, &[])
            .await?;
        if !reply.status.is_success() {
            return Err(self.http.unexpected(&reply));
        }
        self.check_csv(&reply.body, symbol)?;
        Ok(reply.body)
    }

    /// Maps the errors Stooq sends as HTTP 200 text bodies.
    pub(crate) fn check_csv(&self, body: &str, symbol: &str) -> Result<()> {
        let body = body.trim();
        let lower = body.to_ascii_lowercase();
        if lower.starts_with("no data") {
            return Err(MarketError::unknown(self.name(), symbol));
        }
        if lower.contains("exceeded the daily hits limit") {
            return Err(MarketError::RateLimited {
                provider: self.name().to_owned(),
                retry_after: None,
            });
        }
        if looks_like_html(body) {
            return Err(MarketError::malformed(
                self.name(),
                format!("HTML instead of CSV: {}", snippet(body)),
            ));
        }
        Ok(())
    }

    fn reader<'a>(&self, body: &'a str) -> csv::Reader<&'a [u8]> {
        csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(body.as_bytes())
    }

    pub(crate) fn parse_quotes(&self, body: &str, wanted: &[String]) -> Result<Vec<Quote>> {
        let mut reader = self.reader(body);
        let headers = reader
            .headers()
            .map_err(|e| MarketError::malformed(self.name(), e.to_string()))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(c_sym), Some(c_date), Some(c_close)) = (col("Symbol"), col("Date"), col("Close"))
        else {
            return Err(MarketError::malformed(
                self.name(),
                format!(
                    "unexpected header `{}`",
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            ));
        };
        let (c_time, c_volume) = (col("Time"), col("Volume"));
        let mut out = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| MarketError::malformed(self.name(), e.to_string()))?;
            let get = |i: usize| record.get(i).unwrap_or("");
            if get(c_close) == "N/D" {
                continue;
            }
            let stooq_sym = get(c_sym).to_ascii_lowercase();
            let Some(symbol) = wanted.iter().find(|w| stooq_symbol(w) == stooq_sym) else {
                continue;
            };
            let date = NaiveDate::parse_from_str(get(c_date), "%Y-%m-%d").map_err(|_| {
                MarketError::malformed(self.name(), format!("bad date `{}`", get(c_date)))
            })?;
            let time = c_time
                .and_then(|i| {
                    NaiveTime::parse_from_str(record.get(i).unwrap_or(""), "%H:%M:%S").ok()
                })
                .unwrap_or(NaiveTime::MIN);
            // Stooq prints Warsaw time; CET is the earlier bound of CET/CEST.
            let as_of = NaiveDateTime::new(date, time)
                .and_utc()
                .checked_sub_signed(ChronoDuration::hours(1))
                .ok_or_else(|| {
                    MarketError::malformed(self.name(), format!("bad date `{}`", get(c_date)))
                })?
                .min(Utc::now());
            out.push(Quote {
                symbol: symbol.clone(),
                price: parse_price(self.name(), "Close", get(c_close))?,
                previous_close: None,
                bid: None,
                ask: None,
                volume: c_volume
                    .and_then(|i| record.get(i))
                    .and_then(|v| v.parse::<f64>().ok())
                    .map(|v| v.max(0.0) as u64),
                currency: None,
                as_of,
            });
        }
        Ok(out)
    }

    /// Parses a daily-bars CSV download.
    pub(crate) fn parse_bars(&self, body: &str) -> Result<Vec<Bar>> {
        let mut reader = self.reader(body);
        let headers = reader
            .headers()
            .map_err(|e| MarketError::malformed(self.name(), e.to_string()))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(c_date), Some(c_open), Some(c_high), Some(c_low), Some(c_close)) = (
            col("Date"),
            col("Open"),
            col("High"),
            col("Low"),
            col("Close"),
        ) else {
            return Err(MarketError::malformed(
                self.name(),
                format!(
                    "unexpected header `{}`",
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            ));
        };
        let c_volume = col("Volume");
        let mut bars = Vec::new();
        for record in reader.records() {
            let record = record
                .map_err(|e| MarketError::malformed(self.name(), format!("bad CSV row: {e}")))?;
            let get = |i: usize| record.get(i).unwrap_or("");
            let date = NaiveDate::parse_from_str(get(c_date), "%Y-%m-%d").map_err(|_| {
                MarketError::malformed(self.name(), format!("bad date `{}`", get(c_date)))
            })?;
            bars.push(Bar {
                date,
                open: parse_price(self.name(), "Open", get(c_open))?,
                high: parse_price(self.name(), "High", get(c_high))?,
                low: parse_price(self.name(), "Low", get(c_low))?,
                close: parse_price(self.name(), "Close", get(c_close))?,
                adj_close: None,
                volume: c_volume
                    .and_then(|i| record.get(i))
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    .max(0.0) as u64,
            });
        }
        Ok(bars)
    }
}

#[async_trait]
impl MarketDataProvider for StooqProvider {
    fn name(&self) -> &str {
        self.http.provider()
    }

    async fn quote(&self, symbol: &str) -> Result<Quote> {
        self.quotes(&[symbol.to_owned()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| MarketError::unknown(self.name(), symbol))
    }

    async fn quotes(&self, symbols: &[String]) -> Result<Vec<Quote>> {
        let s = symbols
            .iter()
            .map(|s| stooq_symbol(s))
            .collect::<Vec<_>>()
            .join("+");
        let query = vec![
            ("s", s),
            ("f", "sd2t2ohlcv".to_owned()),
            ("h", String::new()),
            ("e", "csv".to_owned()),
        ];
        let body = self
            .csv(
                "/q/l/",
                query,
                symbols.first().map(String::as_str).unwrap_or(""),
            )
            .await?;
        self.parse_quotes(&body, symbols)
    }

    async fn daily_bars(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Bar>> {
        let query = vec![
            ("s", stooq_symbol(symbol)),
            ("i", "d".to_owned()),
            ("d1", from.format("%Y%m%d").to_string()),
            ("d2", to.format("%Y%m%d").to_string()),
        ];
        let body = self.csv("/q/d/l/", query, symbol).await?;
        self.parse_bars(&body)
    }

    async fn search(&self, _query: &str) -> Result<Vec<SymbolMatch>> {
        Err(MarketError::unsupported(self.name(), "search"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Found while writing the `vendor_parsers` fuzz target: a quote dated on
    /// chrono's first representable day overflowed when moved from Warsaw
    /// time to UTC (`DateTime - TimeDelta` panics).
    #[test]
    fn earliest_date_is_malformed_not_a_panic() {
        rampart_testkit::install_crypto_provider();
        let p = StooqProvider::new(VendorSettings::new("stooq", None)).unwrap();
        let body = "Symbol,Date,Time,Open,High,Low,Close,Volume\n\
                    AAPL.US,-262143-01-01,00:00:00,1,1,1,1,1\n";
        let err = p.parse_quotes(body, &["AAPL".to_owned()]).unwrap_err();
        assert!(matches!(err, MarketError::Malformed { .. }), "{err:?}");
    }
}
