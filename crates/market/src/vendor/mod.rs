//! Adapters for real vendor APIs. Each parses its vendor's documented formats
//! and maps vendor errors (including the ones hidden in HTTP 200 bodies) to
//! [`MarketError`](crate::MarketError).

pub mod alpaca;
pub mod alpha_vantage;
pub mod finnhub;
pub(crate) mod http;
pub mod stooq;
pub mod tradestation;
pub mod yahoo;

pub use alpaca::AlpacaProvider;
pub use alpha_vantage::AlphaVantageProvider;
pub use finnhub::FinnhubProvider;
pub use stooq::StooqProvider;
pub use tradestation::{BearerSource, TradeStationProvider};
pub use yahoo::YahooProvider;

/// What a vendor adapter needs: its name, where the API is, and credentials.
#[derive(Clone, Default)]
pub struct VendorSettings {
    /// Name used in provenance, metrics and errors.
    pub name: String,
    /// API base URL; the vendor's documented production URL when `None`.
    pub base_url: Option<String>,
    /// Alpaca only: the Trading API URL (asset search).
    pub trading_url: Option<String>,
    /// API key (Alpaca: key id). Comes from Vault in the server.
    pub api_key: Option<String>,
    /// API secret (Alpaca only).
    pub api_secret: Option<String>,
    /// Alpaca only: data feed (`iex` or `sip`).
    pub feed: Option<String>,
    /// A shared HTTP client; a new one when `None`.
    pub client: Option<reqwest::Client>,
}

impl VendorSettings {
    /// Settings with a name and a base URL, no credentials.
    pub fn new(name: impl Into<String>, base_url: Option<String>) -> Self {
        Self {
            name: name.into(),
            base_url,
            ..Self::default()
        }
    }

    /// Sets the API key.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the API secret.
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.api_secret = Some(secret.into());
        self
    }
}

impl std::fmt::Debug for VendorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never reach logs.
        f.debug_struct("VendorSettings")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("trading_url", &self.trading_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field(
                "api_secret",
                &self.api_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("feed", &self.feed)
            .finish_non_exhaustive()
    }
}
