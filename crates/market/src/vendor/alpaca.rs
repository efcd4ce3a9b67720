//! Alpaca Market Data API v2 (`https://data.alpaca.markets`).
//!
//! * quotes: `GET /v2/stocks/snapshots?symbols=A,B` (batched): latest trade,
//!   latest quote, daily bar and previous daily bar per symbol; a symbol
//!   Alpaca does not know is absent from the object;
//! * bars: `GET /v2/stocks/{symbol}/bars?timeframe=1Day&adjustment=raw|all`,
//!   paginated by `next_page_token`; the adjusted close comes from a second
//!   pass with `adjustment=all`;
//! * search: `GET {trading}/v2/assets?status=active` (Trading API), filtered here;
//! * news: `GET /v1beta1/news?symbols=…`.
//!
//! Authentication: `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY` headers. Errors
//! are JSON `{"message": "…"}` with 403 (bad key), 422 (invalid symbol) or 429.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rampart_amount::Decimal;
use serde::Deserialize;

use super::VendorSettings;
use super::http::{Http, join};
use crate::error::{MarketError, Result};
use crate::model::{Bar, NewsItem, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;

/// Alpaca's documented production data URL.
pub const DEFAULT_BASE_URL: &str = "https://data.alpaca.markets";
/// Alpaca's documented paper-trading API URL (for asset search).
pub const DEFAULT_TRADING_URL: &str = "https://paper-api.alpaca.markets";

/// The Alpaca adapter.
#[derive(Debug, Clone)]
pub struct AlpacaProvider {
    http: Http,
    base_url: String,
    trading_url: String,
    feed: Option<String>,
    key_id: String,
    secret: String,
}

#[derive(Deserialize)]
struct Trade {
    t: DateTime<Utc>,
    #[serde(deserialize_with = "rampart_amount::deserialize")]
    p: Decimal,
}

#[derive(Deserialize)]
struct LatestQuote {
    #[serde(default, deserialize_with = "rampart_amount::option::deserialize")]
    ap: Option<Decimal>,
    #[serde(default, deserialize_with = "rampart_amount::option::deserialize")]
    bp: Option<Decimal>,
}

#[derive(Deserialize)]
pub(crate) struct RawBar {
    t: DateTime<Utc>,
    #[serde(deserialize_with = "rampart_amount::deserialize")]
    o: Decimal,
    #[serde(deserialize_with = "rampart_amount::deserialize")]
    h: Decimal,
    #[serde(deserialize_with = "rampart_amount::deserialize")]
    l: Decimal,
    #[serde(deserialize_with = "rampart_amount::deserialize")]
    c: Decimal,
    #[serde(default)]
    v: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Snapshot {
    latest_trade: Option<Trade>,
    latest_quote: Option<LatestQuote>,
    daily_bar: Option<RawBar>,
    prev_daily_bar: Option<RawBar>,
}

#[derive(Deserialize)]
struct BarsPage {
    #[serde(default)]
    bars: Option<Vec<RawBar>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Asset {
    symbol: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    exchange: Option<String>,
    #[serde(default)]
    class: Option<String>,
}

#[derive(Deserialize)]
struct NewsPage {
    news: Vec<Article>,
}

#[derive(Deserialize)]
struct Article {
    headline: String,
    url: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

impl AlpacaProvider {
    /// Builds the adapter. `settings.api_key` is the key id, `api_secret` the secret.
    pub fn new(settings: VendorSettings) -> Result<Self> {
        let http = Http::new(&settings.name, settings.client)?;
        Ok(Self {
            http,
            base_url: settings.base_url.unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            trading_url: settings
                .trading_url
                .unwrap_or_else(|| DEFAULT_TRADING_URL.into()),
            feed: settings.feed,
            key_id: settings.api_key.unwrap_or_default(),
            secret: settings.api_secret.unwrap_or_default(),
        })
    }

    fn headers(&self) -> [(&'static str, String); 2] {
        [
            ("APCA-API-KEY-ID", self.key_id.clone()),
            ("APCA-API-SECRET-KEY", self.secret.clone()),
        ]
    }

    async fn fetch(&self, base: &str, path: &str, query: &[(&str, String)]) -> Result<String> {
        let reply = self
            .http
            .get(&join(base, path), query, &self.headers())
            .await?;
        if reply.status.is_success() {
            return Ok(reply.body);
        }
        Err(self
            .unknown_symbol(reply.status.as_u16(), &reply.body)
            .unwrap_or_else(|| self.http.unexpected(&reply)))
    }

    /// The 404/422 answers that mean "no such symbol".
    pub(crate) fn unknown_symbol(&self, status: u16, body: &str) -> Option<MarketError> {
        if status == 422 || status == 404 {
            let message = self
                .http
                .json::<ErrorBody>(body)
                .map(|e| e.message)
                .unwrap_or_default();
            if message.to_ascii_lowercase().contains("symbol") || status == 404 {
                return Some(MarketError::unknown(self.name(), &message));
            }
        }
        None
    }

    async fn snapshots(&self, symbols: &[String]) -> Result<HashMap<String, Snapshot>> {
        let mut query = vec![("symbols", symbols.join(","))];
        if let Some(feed) = &self.feed {
            query.push(("feed", feed.clone()));
        }
        let body = self
            .fetch(&self.base_url, "/v2/stocks/snapshots", &query)
            .await?;
        self.parse_snapshots(&body)
    }

    pub(crate) fn parse_snapshots(&self, body: &str) -> Result<HashMap<String, Snapshot>> {
        // An unknown symbol maps to null or is left out.
        let map: HashMap<String, Option<Snapshot>> = self.http.json(body)?;
        Ok(map
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_ascii_uppercase(), v)))
            .collect())
    }

    pub(crate) fn to_quote(&self, symbol: &str, snap: Snapshot) -> Option<Quote> {
        let trade = snap.latest_trade?;
        Some(Quote {
            symbol: symbol.to_owned(),
            price: trade.p,
            previous_close: snap.prev_daily_bar.map(|b| b.c),
            bid: snap
                .latest_quote
                .as_ref()
                .and_then(|q| q.bp)
                .filter(|p| *p > Decimal::ZERO),
            ask: snap
                .latest_quote
                .as_ref()
                .and_then(|q| q.ap)
                .filter(|p| *p > Decimal::ZERO),
            volume: snap.daily_bar.map(|b| b.v as u64),
            currency: Some("USD".into()),
            as_of: trade.t,
        })
    }

    async fn bars_pass(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
        adjustment: &str,
    ) -> Result<Vec<RawBar>> {
        let path = format!("/v2/stocks/{symbol}/bars");
        let mut out = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut query = vec![
                ("timeframe", "1Day".to_owned()),
                ("start", from.to_string()),
                ("end", to.to_string()),
                ("adjustment", adjustment.to_owned()),
                ("limit", "10000".to_owned()),
            ];
            if let Some(feed) = &self.feed {
                query.push(("feed", feed.clone()));
            }
            if let Some(token) = &page_token {
                query.push(("page_token", token.clone()));
            }
            let body = self.fetch(&self.base_url, &path, &query).await?;
            let (bars, next) = self.parse_bars_page(&body)?;
            out.extend(bars);
            match next {
                Some(t) => page_token = Some(t),
                None => break,
            }
        }
        Ok(out)
    }

    /// One page of bars and the token of the next page, if any.
    pub(crate) fn parse_bars_page(&self, body: &str) -> Result<(Vec<RawBar>, Option<String>)> {
        let page: BarsPage = self.http.json(body)?;
        Ok((
            page.bars.unwrap_or_default(),
            page.next_page_token.filter(|t| !t.is_empty()),
        ))
    }

    /// Raw bars with the adjusted close of the `all` pass, inside `from..=to`.
    pub(crate) fn merge_bars(
        raw: Vec<RawBar>,
        adjusted: Vec<RawBar>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<Bar> {
        let adjusted: BTreeMap<NaiveDate, Decimal> = adjusted
            .into_iter()
            .map(|b| (b.t.date_naive(), b.c))
            .collect();
        raw.into_iter()
            .map(|b| {
                let date = b.t.date_naive();
                Bar {
                    date,
                    open: b.o,
                    high: b.h,
                    low: b.l,
                    close: b.c,
                    adj_close: adjusted.get(&date).copied(),
                    volume: b.v.max(0.0) as u64,
                }
            })
            .filter(|b| b.date >= from && b.date <= to)
            .collect()
    }

    /// Assets matching `query`: exact symbol, then symbol prefix, then name.
    pub(crate) fn parse_search(&self, body: &str, query: &str) -> Result<Vec<SymbolMatch>> {
        let assets: Vec<Asset> = self.http.json(body)?;
        let needle = query.trim().to_ascii_lowercase();
        let mut hits: Vec<(u8, SymbolMatch)> = assets
            .into_iter()
            .filter_map(|a| {
                let sym = a.symbol.to_ascii_lowercase();
                let rank = if sym == needle {
                    0
                } else if sym.starts_with(&needle) {
                    1
                } else if a.name.to_ascii_lowercase().contains(&needle) {
                    2
                } else {
                    return None;
                };
                Some((
                    rank,
                    SymbolMatch {
                        symbol: a.symbol,
                        name: a.name,
                        exchange: a.exchange,
                        kind: a.class,
                    },
                ))
            })
            .collect();
        hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.symbol.cmp(&b.1.symbol)));
        Ok(hits.into_iter().take(20).map(|(_, m)| m).collect())
    }

    pub(crate) fn parse_news(&self, body: &str) -> Result<Vec<NewsItem>> {
        let page: NewsPage = self.http.json(body)?;
        Ok(page
            .news
            .into_iter()
            .map(|a| NewsItem {
                headline: a.headline,
                url: a.url,
                source: a.source,
                summary: a.summary.filter(|s| !s.is_empty()),
                published_at: a.created_at,
            })
            .collect())
    }
}

#[async_trait]
impl MarketDataProvider for AlpacaProvider {
    fn name(&self) -> &str {
        self.http.provider()
    }

    async fn quote(&self, symbol: &str) -> Result<Quote> {
        let mut snaps = self.snapshots(&[symbol.to_owned()]).await?;
        snaps
            .remove(symbol)
            .and_then(|s| self.to_quote(symbol, s))
            .ok_or_else(|| MarketError::unknown(self.name(), symbol))
    }

    async fn quotes(&self, symbols: &[String]) -> Result<Vec<Quote>> {
        let mut snaps = self.snapshots(symbols).await?;
        Ok(symbols
            .iter()
            .filter_map(|s| snaps.remove(s).and_then(|snap| self.to_quote(s, snap)))
            .collect())
    }

    async fn daily_bars(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Bar>> {
        let raw = self.bars_pass(symbol, from, to, "raw").await?;
        let adjusted = self.bars_pass(symbol, from, to, "all").await?;
        Ok(Self::merge_bars(raw, adjusted, from, to))
    }

    async fn search(&self, query: &str) -> Result<Vec<SymbolMatch>> {
        let body = self
            .fetch(
                &self.trading_url,
                "/v2/assets",
                &[("status", "active".to_owned())],
            )
            .await?;
        self.parse_search(&body, query)
    }

    async fn news(&self, symbol: &str, limit: usize) -> Result<Vec<NewsItem>> {
        let query = [
            ("symbols", symbol.to_owned()),
            ("limit", limit.clamp(1, 50).to_string()),
        ];
        let body = self.fetch(&self.base_url, "/v1beta1/news", &query).await?;
        self.parse_news(&body)
    }
}
