//! Yahoo Finance chart API v8 (`https://query1.finance.yahoo.com`).
//!
//! * bars: `/v8/finance/chart/{symbol}?period1=&period2=&interval=1d` →
//!   `{"chart":{"result":[{"meta":{…,"gmtoffset"},"timestamp":[…],
//!   "indicators":{"quote":[{"open":[…],"high":[…],"low":[…],"close":[…],
//!   "volume":[…]}],"adjclose":[{"adjclose":[…]}]}}],"error":null}}`;
//!   entries may be `null` (halted days) and are skipped;
//! * quote: the same endpoint with `range=1d`, from `meta.regularMarketPrice`;
//! * search and news: `/v1/finance/search?q=` (`quotes`, `news`).
//!
//! An unknown symbol is a 404 whose body is
//! `{"chart":{"result":null,"error":{"code":"Not Found","description":…}}}`.
//! Unofficial API: no key.

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;

use super::VendorSettings;
use super::http::{Http, join, json_price, opt_json_price};
use crate::error::{MarketError, Result};
use crate::model::{Bar, NewsItem, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;

/// Yahoo's chart host.
pub const DEFAULT_BASE_URL: &str = "https://query1.finance.yahoo.com";

/// The Yahoo chart adapter.
#[derive(Debug, Clone)]
pub struct YahooProvider {
    http: Http,
    base_url: String,
}

#[derive(Deserialize)]
struct ChartEnvelope {
    chart: Chart,
}

#[derive(Deserialize)]
struct Chart {
    result: Option<Vec<ChartResult>>,
    error: Option<ChartError>,
}

#[derive(Deserialize)]
struct ChartError {
    code: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
pub(crate) struct ChartResult {
    meta: Meta,
    #[serde(default)]
    timestamp: Vec<i64>,
    indicators: Indicators,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    regular_market_price: Option<f64>,
    #[serde(default)]
    regular_market_time: Option<i64>,
    #[serde(default)]
    regular_market_volume: Option<u64>,
    #[serde(default)]
    chart_previous_close: Option<f64>,
    #[serde(default)]
    previous_close: Option<f64>,
    #[serde(default)]
    gmtoffset: i64,
}

#[derive(Deserialize)]
struct Indicators {
    quote: Vec<QuoteSeries>,
    #[serde(default)]
    adjclose: Option<Vec<AdjSeries>>,
}

#[derive(Deserialize)]
struct QuoteSeries {
    #[serde(default)]
    open: Vec<Option<f64>>,
    #[serde(default)]
    high: Vec<Option<f64>>,
    #[serde(default)]
    low: Vec<Option<f64>>,
    #[serde(default)]
    close: Vec<Option<f64>>,
    #[serde(default)]
    volume: Vec<Option<f64>>,
}

#[derive(Deserialize)]
struct AdjSeries {
    #[serde(default)]
    adjclose: Vec<Option<f64>>,
}

#[derive(Deserialize)]
pub(crate) struct SearchReply {
    #[serde(default)]
    quotes: Vec<SearchQuote>,
    #[serde(default)]
    news: Vec<SearchNews>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchQuote {
    symbol: String,
    #[serde(default)]
    shortname: Option<String>,
    #[serde(default)]
    longname: Option<String>,
    #[serde(default)]
    exch_disp: Option<String>,
    #[serde(default)]
    exchange: Option<String>,
    #[serde(default)]
    quote_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchNews {
    title: String,
    link: String,
    #[serde(default)]
    publisher: Option<String>,
    provider_publish_time: i64,
}

impl YahooProvider {
    /// Builds the adapter.
    pub fn new(settings: VendorSettings) -> Result<Self> {
        Ok(Self {
            http: Http::new(&settings.name, settings.client)?,
            base_url: settings.base_url.unwrap_or_else(|| DEFAULT_BASE_URL.into()),
        })
    }

    async fn chart(&self, symbol: &str, query: &[(&str, String)]) -> Result<Option<ChartResult>> {
        let url = join(&self.base_url, &format!("/v8/finance/chart/{symbol}"));
        let reply = self.http.get(&url, query, &[]).await?;
        if !reply.status.is_success()
            && reply.status.as_u16() != 404
            && reply.status.as_u16() != 400
        {
            return Err(self.http.unexpected(&reply));
        }
        self.parse_chart(&reply.body, symbol)
    }

    /// The first chart result, `None` for an empty range.
    pub(crate) fn parse_chart(&self, body: &str, symbol: &str) -> Result<Option<ChartResult>> {
        let envelope: ChartEnvelope = self.http.json(body)?;
        if let Some(error) = envelope.chart.error {
            return match error.code.as_str() {
                "Not Found" => Err(MarketError::unknown(self.name(), symbol)),
                // "Data doesn't exist for startDate…": an empty range.
                "Bad Request" if error.description.contains("Data doesn't exist") => Ok(None),
                _ => Err(MarketError::malformed(
                    self.name(),
                    format!("{}: {}", error.code, error.description),
                )),
            };
        }
        Ok(envelope.chart.result.and_then(|mut r| {
            if r.is_empty() {
                None
            } else {
                Some(r.swap_remove(0))
            }
        }))
    }

    async fn search_raw(&self, query: &str, quotes: usize, news: usize) -> Result<SearchReply> {
        let params = [
            ("q", query.to_owned()),
            ("quotesCount", quotes.to_string()),
            ("newsCount", news.to_string()),
        ];
        let reply = self
            .http
            .get(&join(&self.base_url, "/v1/finance/search"), &params, &[])
            .await?;
        if !reply.status.is_success() {
            return Err(self.http.unexpected(&reply));
        }
        self.parse_search_reply(&reply.body)
    }

    pub(crate) fn parse_search_reply(&self, body: &str) -> Result<SearchReply> {
        self.http.json(body)
    }

    pub(crate) fn parse_quote(&self, result: ChartResult, symbol: &str) -> Result<Quote> {
        let meta = result.meta;
        let price = meta
            .regular_market_price
            .ok_or_else(|| MarketError::malformed(self.name(), "missing `regularMarketPrice`"))?;
        let time = meta
            .regular_market_time
            .ok_or_else(|| MarketError::malformed(self.name(), "missing `regularMarketTime`"))?;
        Ok(Quote {
            symbol: symbol.to_owned(),
            price: json_price(self.name(), "regularMarketPrice", price)?,
            previous_close: opt_json_price(
                self.name(),
                "previousClose",
                meta.previous_close.or(meta.chart_previous_close),
            )?,
            bid: None,
            ask: None,
            volume: meta.regular_market_volume,
            currency: meta.currency,
            as_of: unix(self.name(), time)?,
        })
    }

    pub(crate) fn parse_bars(
        &self,
        result: ChartResult,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Bar>> {
        let series = result
            .indicators
            .quote
            .into_iter()
            .next()
            .ok_or_else(|| MarketError::malformed(self.name(), "no quote indicators"))?;
        let adj = result
            .indicators
            .adjclose
            .and_then(|a| a.into_iter().next())
            .map(|a| a.adjclose)
            .unwrap_or_default();
        let offset = result.meta.gmtoffset;
        let mut bars = Vec::with_capacity(result.timestamp.len());
        for (i, t) in result.timestamp.iter().enumerate() {
            let at = |v: &Vec<Option<f64>>| v.get(i).copied().flatten();
            let (Some(open), Some(high), Some(low), Some(close)) = (
                at(&series.open),
                at(&series.high),
                at(&series.low),
                at(&series.close),
            ) else {
                continue;
            };
            // Timestamps are the session open in UTC; the exchange's offset gives the trading day.
            let local = t.checked_add(offset).ok_or_else(|| {
                MarketError::malformed(self.name(), format!("bad timestamp {t} + {offset}"))
            })?;
            let date = unix(self.name(), local)?.date_naive();
            if date < from || date > to {
                continue;
            }
            let price = |field: &str, v: f64| json_price(self.name(), field, v);
            bars.push(Bar {
                date,
                open: price("open", open)?,
                high: price("high", high)?,
                low: price("low", low)?,
                close: price("close", close)?,
                adj_close: opt_json_price(self.name(), "adjclose", at(&adj))?,
                volume: at(&series.volume).unwrap_or(0.0).max(0.0) as u64,
            });
        }
        Ok(bars)
    }

    pub(crate) fn parse_search(reply: SearchReply) -> Vec<SymbolMatch> {
        reply
            .quotes
            .into_iter()
            .map(|q| SymbolMatch {
                name: q
                    .longname
                    .or(q.shortname)
                    .unwrap_or_else(|| q.symbol.clone()),
                symbol: q.symbol,
                exchange: q.exch_disp.or(q.exchange),
                kind: q.quote_type,
            })
            .collect()
    }

    pub(crate) fn parse_news(&self, reply: SearchReply, limit: usize) -> Result<Vec<NewsItem>> {
        reply
            .news
            .into_iter()
            .take(limit)
            .map(|n| {
                Ok(NewsItem {
                    headline: n.title,
                    url: n.link,
                    source: n.publisher,
                    summary: None,
                    published_at: unix(self.name(), n.provider_publish_time)?,
                })
            })
            .collect()
    }
}

fn unix(provider: &str, t: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(t, 0)
        .ok_or_else(|| MarketError::malformed(provider, format!("bad timestamp {t}")))
}

#[async_trait]
impl MarketDataProvider for YahooProvider {
    fn name(&self) -> &str {
        self.http.provider()
    }

    async fn quote(&self, symbol: &str) -> Result<Quote> {
        let query = [("range", "1d".to_owned()), ("interval", "1d".to_owned())];
        let result = self
            .chart(symbol, &query)
            .await?
            .ok_or_else(|| MarketError::unknown(self.name(), symbol))?;
        self.parse_quote(result, symbol)
    }

    async fn daily_bars(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Bar>> {
        let start = from.and_time(NaiveTime::MIN).and_utc().timestamp();
        let end = to
            .checked_add_days(Days::new(1))
            .unwrap_or(to)
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp();
        let query = [
            ("period1", start.to_string()),
            ("period2", end.to_string()),
            ("interval", "1d".to_owned()),
            ("events", "div|split".to_owned()),
            ("includeAdjustedClose", "true".to_owned()),
        ];
        let Some(result) = self.chart(symbol, &query).await? else {
            return Ok(Vec::new());
        };
        self.parse_bars(result, from, to)
    }

    async fn search(&self, query: &str) -> Result<Vec<SymbolMatch>> {
        let reply = self.search_raw(query, 10, 0).await?;
        Ok(Self::parse_search(reply))
    }

    async fn news(&self, symbol: &str, limit: usize) -> Result<Vec<NewsItem>> {
        let reply = self.search_raw(symbol, 0, limit.clamp(1, 50)).await?;
        self.parse_news(reply, limit)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn provider() -> YahooProvider {
        rampart_testkit::install_crypto_provider();
        YahooProvider::new(VendorSettings::new("yahoo", None)).unwrap()
    }

    /// Found while writing the `vendor_parsers` fuzz target (and reproduced
    /// with it): a timestamp plus `gmtoffset` beyond `i64` overflowed, a panic
    /// with overflow checks (a "bad timestamp" of the wrapped sum without).
    #[test]
    fn huge_gmtoffset_is_malformed_not_a_panic() {
        let p = provider();
        let body = r#"{"chart":{"result":[{"meta":{"gmtoffset":9223372036854775807},
            "timestamp":[1],"indicators":{"quote":[{"open":[1.0],"high":[1.0],
            "low":[1.0],"close":[1.0],"volume":[1]}]}}],"error":null}}"#;
        let result = p.parse_chart(body, "AAPL").unwrap().unwrap();
        let from = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let to = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap();
        let err = p.parse_bars(result, from, to).unwrap_err();
        assert!(matches!(err, MarketError::Malformed { .. }), "{err:?}");
    }
}
