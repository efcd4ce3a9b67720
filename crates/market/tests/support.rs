//! Shared helpers: fast policies, a scriptable in-memory provider, a raw HTTP
//! server for faults wiremock cannot produce.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use rampart_market::vendor::VendorSettings;
use rampart_market::{
    Bar, BreakerConfig, Decimal, EmbeddedProvider, MarketDataProvider, MarketError, ProviderPolicy,
    Quote, RetryPolicy, SlidingWindow, SymbolMatch, WaitInOpen,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn init() {
    rampart_testkit::install_crypto_provider();
}

pub const YAHOO_CHART: &str = include_str!("fixtures/yahoo_chart.json");
pub const YAHOO_NOT_FOUND: &str = include_str!("fixtures/yahoo_chart_not_found.json");

/// Breaker: count window 4, opens at 50 % failures after 4 calls, 300 ms open,
/// 2 half-open trials. No retries, 500 ms timeout, no rate limit.
pub fn fast_policy() -> ProviderPolicy {
    ProviderPolicy {
        breaker: BreakerConfig {
            sliding_window: SlidingWindow::Count(4),
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: Duration::from_secs(10),
            minimum_calls: 4,
            wait_in_open: WaitInOpen::Fixed {
                wait: Duration::from_millis(300),
            },
            permitted_calls_in_half_open: 2,
            max_wait_in_half_open: None,
            permit_ttl: Duration::from_secs(5),
            default_retry_after: Duration::from_secs(1),
        },
        retry: RetryPolicy::none(),
        timeout: Duration::from_millis(500),
        rate_limit: None,
    }
}

pub fn settings(name: &str, base: &str) -> VendorSettings {
    VendorSettings::new(name, Some(base.to_owned()))
        .with_key("test-key")
        .with_secret("test-secret")
}

pub fn yahoo(name: &str, base: &str) -> Arc<dyn MarketDataProvider> {
    Arc::new(rampart_market::vendor::YahooProvider::new(settings(name, base)).unwrap())
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The daily bars of AAPL from 2 to 4 January 2024, the range of the
/// vendors' bar fixtures.
pub async fn aapl_bars_jan_2_to_4(p: &impl MarketDataProvider) -> rampart_market::Result<Vec<Bar>> {
    p.daily_bars("AAPL", date(2024, 1, 2), date(2024, 1, 4))
        .await
}

/// The exact decimal a float literal is written as (`px(187.23)` is 187.23).
pub fn px(v: f64) -> Decimal {
    rampart_amount::from_f64(v).unwrap()
}

pub fn quote(symbol: &str, price: f64) -> Quote {
    Quote::at(symbol, px(price))
}

/// What a [`ScriptedProvider`] does on a call.
#[derive(Clone)]
pub enum Step {
    Ok(f64),
    Fail(MarketError),
}

/// An in-memory provider: quotes follow a script (then repeat the last
/// step), bars come from the embedded data set (with extra rows injected),
/// every call is counted and every bar range logged.
pub struct ScriptedProvider {
    pub name: String,
    pub calls: AtomicUsize,
    script: Mutex<VecDeque<Step>>,
    last: Mutex<Step>,
    pub bar_requests: Mutex<Vec<(NaiveDate, NaiveDate)>>,
    pub extra_bars: Mutex<Vec<Bar>>,
    pub bars_fail: Mutex<Option<MarketError>>,
    embedded: EmbeddedProvider,
}

impl ScriptedProvider {
    pub fn new(name: &str, steps: Vec<Step>) -> Arc<Self> {
        let last = steps.last().cloned().unwrap_or(Step::Ok(100.0));
        Arc::new(Self {
            name: name.into(),
            calls: AtomicUsize::new(0),
            script: Mutex::new(steps.into()),
            last: Mutex::new(last),
            bar_requests: Mutex::new(Vec::new()),
            extra_bars: Mutex::new(Vec::new()),
            bars_fail: Mutex::new(None),
            embedded: EmbeddedProvider::named(name),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl MarketDataProvider for ScriptedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn quote(&self, symbol: &str) -> Result<Quote, MarketError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let step = {
            let mut script = self.script.lock().unwrap();
            script
                .pop_front()
                .unwrap_or_else(|| self.last.lock().unwrap().clone())
        };
        match step {
            Step::Ok(p) => Ok(quote(symbol, p)),
            Step::Fail(e) => Err(e),
        }
    }

    async fn daily_bars(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Bar>, MarketError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.bar_requests.lock().unwrap().push((from, to));
        if let Some(e) = self.bars_fail.lock().unwrap().clone() {
            return Err(e);
        }
        let extras: Vec<Bar> = self
            .extra_bars
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.date >= from && b.date <= to)
            .cloned()
            .collect();
        let mut bars = match self.embedded.daily_bars(symbol, from, to).await {
            Ok(b) => b,
            Err(MarketError::UnknownSymbol { .. })
                if !self.extra_bars.lock().unwrap().is_empty() =>
            {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        bars.extend(extras);
        Ok(bars)
    }

    async fn search(&self, query: &str) -> Result<Vec<SymbolMatch>, MarketError> {
        self.embedded.search(query).await
    }
}

/// A one-shot-per-connection HTTP server that writes `response` verbatim
/// (e.g. a body shorter than its Content-Length) and closes. Returns its base URL.
pub async fn raw_http_server(response: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// A fresh database on the shared test server (TLS provider installed first).
pub async fn fresh_database() -> rampart_testkit::TestDatabase {
    init();
    rampart_testkit::fresh_database().await.unwrap()
}
