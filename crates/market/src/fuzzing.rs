//! Entry points for the cargo-fuzz targets in `fuzz/` (cargo feature
//! `fuzzing`, not part of the supported API): every vendor response parser
//! run on one arbitrary body, with no HTTP in between.
//!
//! The parsers are the same functions the adapters call after a successful
//! request, so what the fuzzer finds here is what a hostile or broken vendor
//! answer would trigger in production.

use chrono::NaiveDate;

use crate::error::{MarketError, Result};
use crate::model::{Bar, Fundamentals, NewsItem, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;
use crate::vendor::{
    AlpacaProvider, AlphaVantageProvider, FinnhubProvider, StooqProvider, VendorSettings,
    YahooProvider,
};

/// The vendors whose parsers can be fuzzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// Alpaca Market Data v2 JSON.
    Alpaca,
    /// Alpha Vantage JSON.
    AlphaVantage,
    /// Finnhub JSON.
    Finnhub,
    /// Yahoo chart v8 and search JSON.
    Yahoo,
    /// Stooq CSV.
    Stooq,
}

impl Vendor {
    /// Every vendor, in a fixed order.
    pub const ALL: [Vendor; 5] = [
        Vendor::Alpaca,
        Vendor::AlphaVantage,
        Vendor::Finnhub,
        Vendor::Yahoo,
        Vendor::Stooq,
    ];

    /// Whether the adapter itself keeps bars inside the requested range
    /// (Finnhub and Stooq trust the range they asked the vendor for).
    pub fn filters_bar_range(self) -> bool {
        matches!(self, Vendor::Alpaca | Vendor::AlphaVantage | Vendor::Yahoo)
    }
}

/// What the adapter was asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Symbols of a quote call (the first one for single-symbol calls).
    pub symbols: Vec<String>,
    /// First day of a bars call.
    pub from: NaiveDate,
    /// Last day of a bars call.
    pub to: NaiveDate,
    /// Search text.
    pub query: String,
    /// Most news items wanted.
    pub limit: usize,
}

/// What every parser of one vendor made of one body (`None`: the vendor has
/// no such call).
#[derive(Debug, Default)]
pub struct Parsed {
    /// Quotes for [`Request::symbols`].
    pub quotes: Option<Result<Vec<Quote>>>,
    /// Daily bars.
    pub bars: Option<Result<Vec<Bar>>>,
    /// Symbol search.
    pub search: Option<Result<Vec<SymbolMatch>>>,
    /// Fundamentals of the first symbol.
    pub fundamentals: Option<Result<Fundamentals>>,
    /// News.
    pub news: Option<Result<Vec<NewsItem>>>,
    /// The error the body maps to when it comes with a 4xx (Alpaca) or as a
    /// 200 error text (Stooq).
    pub error: Option<MarketError>,
}

/// One adapter of every vendor, built once (no network is used).
#[derive(Debug)]
pub struct Parsers {
    alpaca: AlpacaProvider,
    alpha_vantage: AlphaVantageProvider,
    finnhub: FinnhubProvider,
    yahoo: YahooProvider,
    stooq: StooqProvider,
}

impl Parsers {
    /// Builds the adapters. Their HTTP client is never used, but building it
    /// needs a rustls crypto provider installed, as everywhere else.
    pub fn new() -> Result<Self> {
        let settings = |name: &str| VendorSettings::new(name, None);
        Ok(Self {
            alpaca: AlpacaProvider::new(settings("alpaca"))?,
            alpha_vantage: AlphaVantageProvider::new(settings("alpha_vantage"))?,
            finnhub: FinnhubProvider::new(settings("finnhub"))?,
            yahoo: YahooProvider::new(settings("yahoo"))?,
            stooq: StooqProvider::new(settings("stooq"))?,
        })
    }

    /// Runs every parser of `vendor` on `body`.
    pub fn parse(&self, vendor: Vendor, body: &str, request: &Request) -> Parsed {
        match vendor {
            Vendor::Alpaca => self.alpaca(body, request),
            Vendor::AlphaVantage => self.alpha_vantage(body, request),
            Vendor::Finnhub => self.finnhub(body, request),
            Vendor::Yahoo => self.yahoo(body, request),
            Vendor::Stooq => self.stooq(body, request),
        }
    }

    fn alpaca(&self, body: &str, r: &Request) -> Parsed {
        let p = &self.alpaca;
        let quotes = p.parse_snapshots(body).map(|mut snaps| {
            r.symbols
                .iter()
                .filter_map(|s| snaps.remove(s).and_then(|snap| p.to_quote(s, snap)))
                .collect()
        });
        // The same page as the raw and the adjusted pass.
        let bars = p.parse_bars_page(body).and_then(|(raw, _)| {
            let (adjusted, _) = p.parse_bars_page(body)?;
            Ok(AlpacaProvider::merge_bars(raw, adjusted, r.from, r.to))
        });
        Parsed {
            quotes: Some(quotes),
            bars: Some(bars),
            search: Some(p.parse_search(body, &r.query)),
            fundamentals: None,
            news: Some(p.parse_news(body)),
            error: p
                .unknown_symbol(404, body)
                .or_else(|| p.unknown_symbol(422, body)),
        }
    }

    fn alpha_vantage(&self, body: &str, r: &Request) -> Parsed {
        let p = &self.alpha_vantage;
        let first = r.symbols.first().map(String::as_str).unwrap_or("");
        let error = p.parse_body(body, None).err();
        match p.parse_body(body, Some(first)) {
            Err(e) => Parsed {
                quotes: Some(Err(e)),
                error,
                ..Parsed::default()
            },
            Ok(map) => Parsed {
                quotes: Some(p.parse_quote(&map, first).map(|q| vec![q])),
                bars: Some(p.parse_bars(&map, r.from, r.to)),
                search: Some(p.parse_search(&map)),
                fundamentals: Some(p.parse_fundamentals(&map, first)),
                news: Some(p.parse_news(&map, r.limit)),
                error,
            },
        }
    }

    fn finnhub(&self, body: &str, r: &Request) -> Parsed {
        let p = &self.finnhub;
        let first = r.symbols.first().map(String::as_str).unwrap_or("");
        Parsed {
            quotes: Some(
                p.decode(body)
                    .and_then(|q| p.parse_quote(q, first))
                    .map(|q| vec![q]),
            ),
            bars: Some(p.decode(body).and_then(|c| p.parse_candles(c))),
            search: Some(p.decode(body).map(FinnhubProvider::parse_search)),
            fundamentals: Some(p.decode(body).and_then(|f| p.parse_profile(f, first))),
            news: Some(p.decode(body).and_then(|a| p.parse_news(a, r.limit))),
            error: None,
        }
    }

    fn yahoo(&self, body: &str, r: &Request) -> Parsed {
        let p = &self.yahoo;
        let first = r.symbols.first().map(String::as_str).unwrap_or("");
        let quote = p.parse_chart(body, first).and_then(|result| {
            let result = result.ok_or_else(|| MarketError::unknown(p.name(), first))?;
            p.parse_quote(result, first)
        });
        let bars = p.parse_chart(body, first).and_then(|result| match result {
            Some(result) => p.parse_bars(result, r.from, r.to),
            None => Ok(Vec::new()),
        });
        Parsed {
            quotes: Some(quote.map(|q| vec![q])),
            bars: Some(bars),
            search: Some(p.parse_search_reply(body).map(YahooProvider::parse_search)),
            fundamentals: None,
            news: Some(
                p.parse_search_reply(body)
                    .and_then(|reply| p.parse_news(reply, r.limit)),
            ),
            error: None,
        }
    }

    fn stooq(&self, body: &str, r: &Request) -> Parsed {
        let p = &self.stooq;
        let first = r.symbols.first().map(String::as_str).unwrap_or("");
        Parsed {
            quotes: Some(p.parse_quotes(body, &r.symbols)),
            bars: Some(p.parse_bars(body)),
            search: None,
            fundamentals: None,
            news: None,
            error: p.check_csv(body, first).err(),
        }
    }
}
