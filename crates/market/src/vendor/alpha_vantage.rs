//! Alpha Vantage (`https://www.alphavantage.co/query?function=…&apikey=…`).
//!
//! * quote: `GLOBAL_QUOTE` → `{"Global Quote": {"01. symbol": …, "05. price": …}}`,
//!   an empty object for an unknown symbol;
//! * bars: `TIME_SERIES_DAILY_ADJUSTED` (`"5. adjusted close"`, `"6. volume"`)
//!   or `TIME_SERIES_DAILY` (`"5. volume"`, no adjusted close), `outputsize=full`;
//! * search: `SYMBOL_SEARCH` → `{"bestMatches": [{"1. symbol": …}]}`;
//! * fundamentals: `OVERVIEW`; news: `NEWS_SENTIMENT`.
//!
//! Alpha Vantage answers almost every error with HTTP 200: `{"Note": …}` or
//! `{"Information": …}` for the call-frequency quota (and for premium-only
//! endpoints or a refused key), `{"Error Message": …}` for an invalid call,
//! which in practice means an unknown symbol.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::Value;

use super::VendorSettings;
use super::http::{Http, join, opt_f64, opt_price, parse_f64, parse_price};
use crate::error::{MarketError, Result};
use crate::model::{Bar, Fundamentals, NewsItem, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;

/// Alpha Vantage's documented URL.
pub const DEFAULT_BASE_URL: &str = "https://www.alphavantage.co";

/// The Alpha Vantage adapter.
#[derive(Debug, Clone)]
pub struct AlphaVantageProvider {
    http: Http,
    base_url: String,
    key: String,
    adjusted: bool,
}

impl AlphaVantageProvider {
    /// Builds the adapter; bars come from the adjusted series (a premium
    /// endpoint today) unless [`AlphaVantageProvider::unadjusted`] is used.
    pub fn new(settings: VendorSettings) -> Result<Self> {
        Ok(Self {
            http: Http::new(&settings.name, settings.client)?,
            base_url: settings.base_url.unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            key: settings.api_key.unwrap_or_else(|| "demo".into()),
            adjusted: true,
        })
    }

    /// Uses the free `TIME_SERIES_DAILY` endpoint (no adjusted close).
    pub fn unadjusted(mut self) -> Self {
        self.adjusted = false;
        self
    }

    /// Calls one function and returns the JSON object, with 200-body errors mapped.
    async fn call(
        &self,
        function: &str,
        params: &[(&str, String)],
        symbol: Option<&str>,
    ) -> Result<serde_json::Map<String, Value>> {
        let mut query = vec![("function", function.to_owned())];
        query.extend(params.iter().cloned());
        query.push(("apikey", self.key.clone()));
        let reply = self
            .http
            .get(&join(&self.base_url, "/query"), &query, &[])
            .await?;
        if !reply.status.is_success() {
            return Err(self.http.unexpected(&reply));
        }
        self.parse_body(&reply.body, symbol)
    }

    /// The JSON object of a 200 answer, with the errors hidden in it mapped.
    pub(crate) fn parse_body(
        &self,
        body: &str,
        symbol: Option<&str>,
    ) -> Result<serde_json::Map<String, Value>> {
        let value: Value = self.http.json(body)?;
        let Value::Object(map) = value else {
            return Err(MarketError::malformed(
                self.name(),
                "expected a JSON object",
            ));
        };
        self.check_body(&map, symbol)?;
        Ok(map)
    }

    fn check_body(&self, map: &serde_json::Map<String, Value>, symbol: Option<&str>) -> Result<()> {
        let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
        if let Some(msg) = text("Error Message") {
            return Err(match symbol {
                Some(s) => MarketError::unknown(self.name(), s),
                None => MarketError::InvalidInput(format!("{}: {msg}", self.name())),
            });
        }
        for key in ["Note", "Information"] {
            if let Some(msg) = text(key) {
                let lower = msg.to_ascii_lowercase();
                if lower.contains("api key")
                    && (lower.contains("invalid") || lower.contains("demo"))
                {
                    return Err(MarketError::Unauthorized {
                        provider: self.name().to_owned(),
                        detail: msg,
                    });
                }
                if lower.contains("premium")
                    && !lower.contains("rate limit")
                    && !lower.contains("frequency")
                {
                    return Err(MarketError::Unauthorized {
                        provider: self.name().to_owned(),
                        detail: msg,
                    });
                }
                // The free quota is per minute and per day: a minute is the
                // soonest a new call can succeed.
                return Err(MarketError::RateLimited {
                    provider: self.name().to_owned(),
                    retry_after: Some(std::time::Duration::from_secs(60)),
                });
            }
        }
        Ok(())
    }

    fn field<'a>(&self, obj: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str> {
        obj.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| MarketError::malformed(self.name(), format!("missing `{key}`")))
    }

    pub(crate) fn parse_quote(
        &self,
        map: &serde_json::Map<String, Value>,
        symbol: &str,
    ) -> Result<Quote> {
        let Some(Value::Object(q)) = map.get("Global Quote") else {
            return Err(MarketError::malformed(
                self.name(),
                "missing `Global Quote`",
            ));
        };
        if q.is_empty() {
            return Err(MarketError::unknown(self.name(), symbol));
        }
        let price = parse_price(self.name(), "05. price", self.field(q, "05. price")?)?;
        let day = self.field(q, "07. latest trading day")?;
        let date = NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|_| MarketError::malformed(self.name(), format!("bad date `{day}`")))?;
        // The quote is the day's last price; US close is 16:00 New York, 21:00 UTC at the latest.
        let as_of = Utc
            .from_utc_datetime(&NaiveDateTime::new(
                date,
                NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
            ))
            .min(Utc::now());
        Ok(Quote {
            symbol: symbol.to_owned(),
            price,
            previous_close: opt_price(q.get("08. previous close").and_then(Value::as_str)),
            bid: None,
            ask: None,
            volume: q
                .get("06. volume")
                .and_then(Value::as_str)
                .and_then(|v| v.parse().ok()),
            currency: None,
            as_of,
        })
    }

    pub(crate) fn parse_bars(
        &self,
        map: &serde_json::Map<String, Value>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Bar>> {
        let Some(Value::Object(series)) = map.get("Time Series (Daily)") else {
            return Err(MarketError::malformed(
                self.name(),
                "missing `Time Series (Daily)`",
            ));
        };
        let mut bars = BTreeMap::new();
        for (day, row) in series {
            let Ok(date) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
                return Err(MarketError::malformed(
                    self.name(),
                    format!("bad date `{day}`"),
                ));
            };
            if date < from || date > to {
                continue;
            }
            let Value::Object(row) = row else {
                return Err(MarketError::malformed(
                    self.name(),
                    "series row is not an object",
                ));
            };
            let num = |k: &str| -> Result<f64> { parse_f64(self.name(), k, self.field(row, k)?) };
            let price = |k: &str| parse_price(self.name(), k, self.field(row, k)?);
            let (adj_close, volume_key) = if row.contains_key("5. adjusted close") {
                (Some(price("5. adjusted close")?), "6. volume")
            } else {
                (None, "5. volume")
            };
            bars.insert(
                date,
                Bar {
                    date,
                    open: price("1. open")?,
                    high: price("2. high")?,
                    low: price("3. low")?,
                    close: price("4. close")?,
                    adj_close,
                    volume: num(volume_key)?.max(0.0) as u64,
                },
            );
        }
        Ok(bars.into_values().collect())
    }

    pub(crate) fn parse_search(
        &self,
        map: &serde_json::Map<String, Value>,
    ) -> Result<Vec<SymbolMatch>> {
        let Some(Value::Array(matches)) = map.get("bestMatches") else {
            return Err(MarketError::malformed(self.name(), "missing `bestMatches`"));
        };
        matches
            .iter()
            .map(|m| {
                let Value::Object(m) = m else {
                    return Err(MarketError::malformed(
                        self.name(),
                        "match is not an object",
                    ));
                };
                Ok(SymbolMatch {
                    symbol: self.field(m, "1. symbol")?.to_owned(),
                    name: self.field(m, "2. name")?.to_owned(),
                    exchange: m
                        .get("4. region")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    kind: m.get("3. type").and_then(Value::as_str).map(str::to_owned),
                })
            })
            .collect()
    }

    pub(crate) fn parse_fundamentals(
        &self,
        map: &serde_json::Map<String, Value>,
        symbol: &str,
    ) -> Result<Fundamentals> {
        if map.is_empty() {
            return Err(MarketError::unknown(self.name(), symbol));
        }
        let text = |k: &str| {
            map.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && *s != "None")
                .map(str::to_owned)
        };
        Ok(Fundamentals {
            symbol: text("Symbol").unwrap_or_else(|| symbol.to_owned()),
            name: text("Name").unwrap_or_default(),
            exchange: text("Exchange"),
            currency: text("Currency"),
            sector: text("Sector"),
            market_cap: opt_f64(map.get("MarketCapitalization").and_then(Value::as_str)),
            pe_ratio: opt_f64(map.get("PERatio").and_then(Value::as_str)),
            eps: opt_f64(map.get("EPS").and_then(Value::as_str)),
            dividend_yield: opt_f64(map.get("DividendYield").and_then(Value::as_str)),
        })
    }

    pub(crate) fn parse_news(
        &self,
        map: &serde_json::Map<String, Value>,
        limit: usize,
    ) -> Result<Vec<NewsItem>> {
        let Some(Value::Array(feed)) = map.get("feed") else {
            return Err(MarketError::malformed(self.name(), "missing `feed`"));
        };
        let mut out = Vec::new();
        for item in feed.iter().take(limit) {
            let Value::Object(item) = item else { continue };
            let published = self.field(item, "time_published")?;
            let published_at = NaiveDateTime::parse_from_str(published, "%Y%m%dT%H%M%S")
                .map_err(|_| {
                    MarketError::malformed(self.name(), format!("bad time `{published}`"))
                })?
                .and_utc();
            out.push(NewsItem {
                headline: self.field(item, "title")?.to_owned(),
                url: self.field(item, "url")?.to_owned(),
                source: item
                    .get("source")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                summary: item
                    .get("summary")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                published_at,
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl MarketDataProvider for AlphaVantageProvider {
    fn name(&self) -> &str {
        self.http.provider()
    }

    async fn quote(&self, symbol: &str) -> Result<Quote> {
        let map = self
            .call(
                "GLOBAL_QUOTE",
                &[("symbol", symbol.to_owned())],
                Some(symbol),
            )
            .await?;
        self.parse_quote(&map, symbol)
    }

    async fn daily_bars(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Bar>> {
        let function = if self.adjusted {
            "TIME_SERIES_DAILY_ADJUSTED"
        } else {
            "TIME_SERIES_DAILY"
        };
        // `compact` is the last 100 points; older ranges need `full`.
        let outputsize = if (Utc::now().date_naive() - from).num_days() > 140 {
            "full"
        } else {
            "compact"
        };
        let map = self
            .call(
                function,
                &[
                    ("symbol", symbol.to_owned()),
                    ("outputsize", outputsize.to_owned()),
                ],
                Some(symbol),
            )
            .await?;
        self.parse_bars(&map, from, to)
    }

    async fn search(&self, query: &str) -> Result<Vec<SymbolMatch>> {
        let map = self
            .call("SYMBOL_SEARCH", &[("keywords", query.to_owned())], None)
            .await?;
        self.parse_search(&map)
    }

    async fn fundamentals(&self, symbol: &str) -> Result<Fundamentals> {
        let map = self
            .call("OVERVIEW", &[("symbol", symbol.to_owned())], Some(symbol))
            .await?;
        self.parse_fundamentals(&map, symbol)
    }

    async fn news(&self, symbol: &str, limit: usize) -> Result<Vec<NewsItem>> {
        let map = self
            .call(
                "NEWS_SENTIMENT",
                &[
                    ("tickers", symbol.to_owned()),
                    ("limit", limit.clamp(1, 1000).to_string()),
                ],
                Some(symbol),
            )
            .await?;
        self.parse_news(&map, limit)
    }
}
