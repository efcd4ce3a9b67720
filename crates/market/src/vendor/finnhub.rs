//! Finnhub (`https://finnhub.io/api/v1`, key in the `token` query parameter).
//!
//! * quote: `/quote?symbol=` → `{"c","d","dp","h","l","o","pc","t"}`; an
//!   unknown symbol is **not** an error status but an all-zero quote
//!   (`{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}`);
//! * bars: `/stock/candle?resolution=D&from=&to=` (unix seconds) →
//!   `{"s":"ok","t":[…],"o":[…],"h":[…],"l":[…],"c":[…],"v":[…]}` or
//!   `{"s":"no_data"}`; no adjusted close;
//! * search: `/search?q=` → `{"count","result":[{"symbol","description","type",…}]}`;
//! * fundamentals: `/stock/profile2?symbol=` (`{}` when unknown);
//! * news: `/company-news?symbol=&from=&to=`.
//!
//! Errors are `{"error": "…"}` with 401 (bad key), 403 (plan) or 429 (quota).

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::VendorSettings;
use super::http::{Http, join, json_price, opt_json_price};
use crate::error::{MarketError, Result};
use crate::model::{Bar, Fundamentals, NewsItem, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;

/// Finnhub's documented URL.
pub const DEFAULT_BASE_URL: &str = "https://finnhub.io/api/v1";

/// The Finnhub adapter.
#[derive(Debug, Clone)]
pub struct FinnhubProvider {
    http: Http,
    base_url: String,
    token: String,
}

#[derive(Deserialize)]
pub(crate) struct RawQuote {
    c: Option<f64>,
    h: Option<f64>,
    l: Option<f64>,
    o: Option<f64>,
    pc: Option<f64>,
    t: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct Candles {
    s: String,
    #[serde(default)]
    t: Vec<i64>,
    #[serde(default)]
    o: Vec<f64>,
    #[serde(default)]
    h: Vec<f64>,
    #[serde(default)]
    l: Vec<f64>,
    #[serde(default)]
    c: Vec<f64>,
    #[serde(default)]
    v: Vec<f64>,
}

#[derive(Deserialize)]
pub(crate) struct SearchResult {
    result: Vec<SearchHit>,
}

#[derive(Deserialize)]
struct SearchHit {
    symbol: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Profile {
    #[serde(default)]
    ticker: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    exchange: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    finnhub_industry: Option<String>,
    /// Millions of the currency.
    #[serde(default)]
    market_capitalization: Option<f64>,
}

#[derive(Deserialize)]
pub(crate) struct Article {
    headline: String,
    url: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    datetime: i64,
}

impl FinnhubProvider {
    /// Builds the adapter.
    pub fn new(settings: VendorSettings) -> Result<Self> {
        Ok(Self {
            http: Http::new(&settings.name, settings.client)?,
            base_url: settings.base_url.unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            token: settings.api_key.unwrap_or_default(),
        })
    }

    async fn call<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Result<T> {
        let body = self.fetch(path, params).await?;
        self.decode(&body)
    }

    async fn fetch(&self, path: &str, params: &[(&str, String)]) -> Result<String> {
        let mut query = params.to_vec();
        query.push(("token", self.token.clone()));
        let reply = self
            .http
            .get(&join(&self.base_url, path), &query, &[])
            .await?;
        if !reply.status.is_success() {
            return Err(self.http.unexpected(&reply));
        }
        Ok(reply.body)
    }

    /// Decodes a 200 body, which can still carry `{"error": …}`.
    pub(crate) fn decode<T: DeserializeOwned>(&self, body: &str) -> Result<T> {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body)
            && let Some(serde_json::Value::String(msg)) = map.get("error")
        {
            let lower = msg.to_ascii_lowercase();
            return Err(if lower.contains("limit") {
                MarketError::RateLimited {
                    provider: self.name().to_owned(),
                    retry_after: None,
                }
            } else if lower.contains("key") || lower.contains("access") {
                MarketError::Unauthorized {
                    provider: self.name().to_owned(),
                    detail: msg.clone(),
                }
            } else {
                MarketError::malformed(self.name(), msg.clone())
            });
        }
        self.http.json(body)
    }

    pub(crate) fn parse_quote(&self, q: RawQuote, symbol: &str) -> Result<Quote> {
        let zero = |v: Option<f64>| v.is_none_or(|x| x == 0.0);
        if zero(q.c)
            && zero(q.h)
            && zero(q.l)
            && zero(q.o)
            && zero(q.pc)
            && q.t.is_none_or(|t| t == 0)
        {
            return Err(MarketError::unknown(self.name(), symbol));
        }
        let price =
            q.c.ok_or_else(|| MarketError::malformed(self.name(), "missing `c`"))?;
        Ok(Quote {
            symbol: symbol.to_owned(),
            price: json_price(self.name(), "c", price)?,
            previous_close: opt_json_price(self.name(), "pc", q.pc.filter(|p| *p != 0.0))?,
            bid: None,
            ask: None,
            volume: None,
            currency: None,
            as_of: unix(self.name(), q.t.unwrap_or_default())?,
        })
    }

    pub(crate) fn parse_candles(&self, candles: Candles) -> Result<Vec<Bar>> {
        match candles.s.as_str() {
            "no_data" => return Ok(Vec::new()),
            "ok" => {}
            other => {
                return Err(MarketError::malformed(
                    self.name(),
                    format!("candle status `{other}`"),
                ));
            }
        }
        let n = candles.t.len();
        if [
            candles.o.len(),
            candles.h.len(),
            candles.l.len(),
            candles.c.len(),
        ]
        .iter()
        .any(|len| *len != n)
        {
            return Err(MarketError::malformed(
                self.name(),
                "candle arrays differ in length",
            ));
        }
        let mut bars = Vec::with_capacity(n);
        for i in 0..n {
            let date = unix(self.name(), candles.t[i])?.date_naive();
            let price = |field: &str, values: &[f64]| json_price(self.name(), field, values[i]);
            bars.push(Bar {
                date,
                open: price("o", &candles.o)?,
                high: price("h", &candles.h)?,
                low: price("l", &candles.l)?,
                close: price("c", &candles.c)?,
                adj_close: None,
                volume: candles.v.get(i).copied().unwrap_or(0.0).max(0.0) as u64,
            });
        }
        Ok(bars)
    }

    pub(crate) fn parse_search(found: SearchResult) -> Vec<SymbolMatch> {
        found
            .result
            .into_iter()
            .map(|h| SymbolMatch {
                symbol: h.symbol,
                name: h.description,
                exchange: None,
                kind: h.kind.filter(|k| !k.is_empty()),
            })
            .collect()
    }

    pub(crate) fn parse_profile(&self, p: Profile, symbol: &str) -> Result<Fundamentals> {
        let Some(name) = p.name.filter(|n| !n.is_empty()) else {
            return Err(MarketError::unknown(self.name(), symbol));
        };
        Ok(Fundamentals {
            symbol: p.ticker.unwrap_or_else(|| symbol.to_owned()),
            name,
            exchange: p.exchange,
            currency: p.currency,
            sector: p.finnhub_industry,
            market_cap: p.market_capitalization.map(|m| m * 1e6),
            pe_ratio: None,
            eps: None,
            dividend_yield: None,
        })
    }

    pub(crate) fn parse_news(&self, articles: Vec<Article>, limit: usize) -> Result<Vec<NewsItem>> {
        articles
            .into_iter()
            .take(limit)
            .map(|a| {
                Ok(NewsItem {
                    headline: a.headline,
                    url: a.url,
                    source: a.source,
                    summary: a.summary.filter(|s| !s.is_empty()),
                    published_at: unix(self.name(), a.datetime)?,
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
impl MarketDataProvider for FinnhubProvider {
    fn name(&self) -> &str {
        self.http.provider()
    }

    async fn quote(&self, symbol: &str) -> Result<Quote> {
        let q: RawQuote = self
            .call("/quote", &[("symbol", symbol.to_owned())])
            .await?;
        self.parse_quote(q, symbol)
    }

    async fn daily_bars(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Bar>> {
        let start = from.and_time(NaiveTime::MIN).and_utc().timestamp();
        let end = to
            .checked_add_days(Days::new(1))
            .unwrap_or(to)
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp()
            - 1;
        let query = [
            ("symbol", symbol.to_owned()),
            ("resolution", "D".to_owned()),
            ("from", start.to_string()),
            ("to", end.to_string()),
        ];
        let candles: Candles = self.call("/stock/candle", &query).await?;
        self.parse_candles(candles)
    }

    async fn search(&self, query: &str) -> Result<Vec<SymbolMatch>> {
        let found: SearchResult = self.call("/search", &[("q", query.to_owned())]).await?;
        Ok(Self::parse_search(found))
    }

    async fn fundamentals(&self, symbol: &str) -> Result<Fundamentals> {
        let p: Profile = self
            .call("/stock/profile2", &[("symbol", symbol.to_owned())])
            .await?;
        self.parse_profile(p, symbol)
    }

    async fn news(&self, symbol: &str, limit: usize) -> Result<Vec<NewsItem>> {
        let to = Utc::now().date_naive();
        let from = to.checked_sub_days(Days::new(30)).unwrap_or(to);
        let query = [
            ("symbol", symbol.to_owned()),
            ("from", from.to_string()),
            ("to", to.to_string()),
        ];
        let articles: Vec<Article> = self.call("/company-news", &query).await?;
        self.parse_news(articles, limit)
    }
}
