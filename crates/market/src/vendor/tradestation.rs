//! TradeStation (`https://api.tradestation.com`, v3), called **as a signed-in
//! user**: every call carries `Authorization: Bearer <access token>` from a
//! [`BearerSource`] (in the reference server, the user's upstream TradeStation
//! connection, refreshed when it expires), so this crate knows nothing of
//! how the token was obtained.
//!
//! * bars: `GET /v3/marketdata/barcharts/{symbol}?interval=1&unit=Daily&firstdate=&lastdate=`
//!   → `{"Bars":[{"High":"…","Low":"…","Open":"…","Close":"…","TimeStamp":"2024-01-02T21:00:00Z","TotalVolume":"…",…}]}`
//!   (numbers as strings; the time stamp is the session's close in UTC);
//! * symbols: `GET /v3/marketdata/symbols/{symbols}` (comma-separated) →
//!   `{"Symbols":[{"Symbol","Description","Exchange","AssetType",…}],"Errors":[{"Symbol","Message"}]}`
//!   (an unknown symbol is in `Errors`, not an error status);
//! * errors: `{"Error":"…","Message":"…"}` with 400 (bad request:
//!   [`MarketError::InvalidInput`]), 401/403 (the token:
//!   [`MarketError::Unauthorized`]), 404 ([`MarketError::UnknownSymbol`]),
//!   429 ([`MarketError::RateLimited`], with `Retry-After`).
//!
//! There is no free-text search in v3: [`MarketDataProvider::search`] looks
//! the query up as symbols.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use reqwest::StatusCode;
use serde::Deserialize;

use super::VendorSettings;
use super::http::{Http, Reply, parse_f64, parse_price};
use crate::error::{MarketError, Result};
use crate::model::{Bar, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;

/// TradeStation's documented API URL.
pub const DEFAULT_BASE_URL: &str = "https://api.tradestation.com";

/// `[tradestation]` of the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TradeStationConfig {
    /// The API's base URL (default [`DEFAULT_BASE_URL`]; the simulator is
    /// `https://sim-api.tradestation.com`).
    pub api_url: String,
}

impl Default for TradeStationConfig {
    fn default() -> Self {
        Self {
            api_url: DEFAULT_BASE_URL.into(),
        }
    }
}

/// Most symbols of one `/v3/marketdata/symbols` call (TradeStation's limit).
pub const MAX_SYMBOLS: usize = 50;

/// Where the bearer token of a call comes from (the signed-in user's
/// TradeStation access token). Called once per vendor call; an error stops
/// the call before anything is sent.
#[async_trait]
pub trait BearerSource: Send + Sync {
    /// A valid access token.
    async fn bearer(&self) -> Result<String>;
}

/// The TradeStation adapter, for one user (its [`BearerSource`]).
#[derive(Clone)]
pub struct TradeStationProvider {
    http: Http,
    base_url: String,
    tokens: Arc<dyn BearerSource>,
}

impl std::fmt::Debug for TradeStationProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TradeStationProvider")
            .field("name", &self.http.provider())
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BarsReply {
    #[serde(default)]
    bars: Vec<RawBar>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawBar {
    open: String,
    high: String,
    low: String,
    close: String,
    time_stamp: String,
    #[serde(default)]
    total_volume: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SymbolsReply {
    #[serde(default)]
    symbols: Vec<RawSymbol>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawSymbol {
    symbol: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    exchange: Option<String>,
    #[serde(default)]
    asset_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// One client for every user's adapter (an adapter is made per request).
fn shared_client() -> Result<reqwest::Client> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let c = super::http::default_client()?;
    Ok(CLIENT.get_or_init(|| c).clone())
}

impl TradeStationProvider {
    /// Builds the adapter (sharing one HTTP client between adapters when
    /// `settings.client` is `None`) for the user whose tokens `tokens` hands out.
    pub fn new(settings: VendorSettings, tokens: Arc<dyn BearerSource>) -> Result<Self> {
        let name = if settings.name.is_empty() {
            "tradestation".to_owned()
        } else {
            settings.name
        };
        let client = match settings.client {
            Some(c) => c,
            None => shared_client()?,
        };
        Ok(Self {
            http: Http::new(&name, Some(client))?,
            base_url: settings.base_url.unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            tokens,
        })
    }

    /// `base_url` + the path segments (each percent-encoded: `$SPX.X` and
    /// the like are symbols too).
    fn url(&self, segments: &[&str]) -> Result<String> {
        let mut url = reqwest::Url::parse(&self.base_url)
            .map_err(|e| MarketError::Config(format!("tradestation base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| MarketError::Config("tradestation base URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url.to_string())
    }

    async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Reply> {
        let token = self.tokens.bearer().await?;
        let reply = self
            .http
            .get(
                &self.url(segments)?,
                query,
                &[("authorization", format!("Bearer {token}"))],
            )
            .await?;
        Ok(reply)
    }

    /// A 4xx the shared client did not map: TradeStation's error body.
    pub(crate) fn refusal(&self, reply: &Reply, symbol: &str) -> MarketError {
        let body: Option<ErrorBody> = serde_json::from_str(&reply.body).ok();
        let message = body
            .as_ref()
            .and_then(|b| b.message.clone().or_else(|| b.error.clone()))
            .unwrap_or_default();
        match reply.status {
            StatusCode::NOT_FOUND => MarketError::unknown(self.name(), symbol),
            StatusCode::BAD_REQUEST => {
                MarketError::InvalidInput(format!("{}: {message}", self.name()))
            }
            _ => self.http.unexpected(reply),
        }
    }

    pub(crate) fn parse_bars(
        &self,
        reply: BarsReply,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Bar>> {
        let name = self.name();
        let mut bars = Vec::with_capacity(reply.bars.len());
        for b in reply.bars {
            let date = DateTime::parse_from_rfc3339(&b.time_stamp)
                .map_err(|_| {
                    MarketError::malformed(name, format!("TimeStamp: `{}`", b.time_stamp))
                })?
                .with_timezone(&Utc)
                .date_naive();
            if date < from || date > to {
                continue;
            }
            let volume = match b.total_volume.as_deref() {
                Some(v) => parse_f64(name, "TotalVolume", v)?.max(0.0) as u64,
                None => 0,
            };
            bars.push(Bar {
                date,
                open: parse_price(name, "Open", &b.open)?,
                high: parse_price(name, "High", &b.high)?,
                low: parse_price(name, "Low", &b.low)?,
                close: parse_price(name, "Close", &b.close)?,
                adj_close: None,
                volume,
            });
        }
        bars.sort_by_key(|b| b.date);
        Ok(bars)
    }

    pub(crate) fn parse_symbols(reply: SymbolsReply) -> Vec<SymbolMatch> {
        reply
            .symbols
            .into_iter()
            .map(|s| SymbolMatch {
                symbol: s.symbol,
                name: s.description.unwrap_or_default(),
                exchange: s.exchange.filter(|e| !e.is_empty()),
                kind: s.asset_type.filter(|k| !k.is_empty()),
            })
            .collect()
    }

    /// What TradeStation says about `symbols` (at most [`MAX_SYMBOLS`]):
    /// symbol, description, exchange, asset type. Unknown symbols are left
    /// out.
    pub async fn symbols(&self, symbols: &[String]) -> Result<Vec<SymbolMatch>> {
        if symbols.is_empty() || symbols.len() > MAX_SYMBOLS {
            return Err(MarketError::InvalidInput(format!(
                "1 to {MAX_SYMBOLS} symbols"
            )));
        }
        let list = symbols.join(",");
        let reply = self
            .get(&["v3", "marketdata", "symbols", &list], &[])
            .await?;
        if !reply.status.is_success() {
            return Err(self.refusal(&reply, &list));
        }
        Ok(Self::parse_symbols(self.http.json(&reply.body)?))
    }
}

#[async_trait]
impl MarketDataProvider for TradeStationProvider {
    fn name(&self) -> &str {
        self.http.provider()
    }

    async fn quote(&self, symbol: &str) -> Result<Quote> {
        let _ = symbol;
        Err(MarketError::unsupported(self.name(), "quote"))
    }

    async fn daily_bars(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Bar>> {
        let query = [
            ("interval", "1".to_owned()),
            ("unit", "Daily".to_owned()),
            ("firstdate", from.format("%Y-%m-%d").to_string()),
            ("lastdate", to.format("%Y-%m-%d").to_string()),
        ];
        let reply = self
            .get(&["v3", "marketdata", "barcharts", symbol], &query)
            .await?;
        if !reply.status.is_success() {
            return Err(self.refusal(&reply, symbol));
        }
        self.parse_bars(self.http.json(&reply.body)?, from, to)
    }

    async fn search(&self, query: &str) -> Result<Vec<SymbolMatch>> {
        self.symbols(&[query.trim().to_uppercase()]).await
    }
}
