//! The TradeStation adapter against a local server replaying its documented
//! v3 answers: bars (numbers as strings) and symbols with the user's bearer
//! token, the error bodies mapped to typed errors, and the instruments its
//! symbol answers describe recorded in `market.instruments`.

use std::sync::Arc;
use std::time::Duration;

use rampart_market::vendor::{BearerSource, TradeStationProvider, VendorSettings};
use rampart_market::{MarketDataProvider, MarketError, ProviderChain, StoreProvider, SymbolMatch};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{aapl_bars_jan_2_to_4, date, fast_policy, fresh_database, init, px};

struct Token(&'static str);

#[async_trait::async_trait]
impl BearerSource for Token {
    async fn bearer(&self) -> rampart_market::Result<String> {
        Ok(self.0.to_owned())
    }
}

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

async fn tradestation() -> (MockServer, TradeStationProvider) {
    init();
    let server = MockServer::start().await;
    let p = TradeStationProvider::new(
        VendorSettings::new("tradestation", Some(server.uri())),
        Arc::new(Token("user-access-token")),
    )
    .unwrap();
    (server, p)
}

#[tokio::test]
async fn bars_and_symbols_with_the_users_bearer_token() {
    let (server, p) = tradestation().await;
    Mock::given(method("GET"))
        .and(path("/v3/marketdata/barcharts/AAPL"))
        .and(header("authorization", "Bearer user-access-token"))
        .and(query_param("interval", "1"))
        .and(query_param("unit", "Daily"))
        .and(query_param("firstdate", "2024-01-02"))
        .and(query_param("lastdate", "2024-01-04"))
        .respond_with(json(200, include_str!("fixtures/tradestation_bars.json")))
        .mount(&server)
        .await;
    let bars = aapl_bars_jan_2_to_4(&p).await.unwrap();
    assert_eq!(bars.len(), 3);
    assert_eq!(bars[0].date, date(2024, 1, 2));
    assert_eq!(
        (bars[0].open, bars[0].high, bars[0].low, bars[0].close),
        (px(187.15), px(188.44), px(183.89), px(185.64))
    );
    assert_eq!(bars[0].adj_close, None);
    assert_eq!(bars[2].volume, 71_983_570);
    assert_eq!(bars[2].high, px(183.0872));

    Mock::given(method("GET"))
        .and(path("/v3/marketdata/symbols/AAPL,MSFT,ZZZZ"))
        .and(header("authorization", "Bearer user-access-token"))
        .respond_with(json(
            200,
            include_str!("fixtures/tradestation_symbols.json"),
        ))
        .mount(&server)
        .await;
    let found = p
        .symbols(&["AAPL".into(), "MSFT".into(), "ZZZZ".into()])
        .await
        .unwrap();
    assert_eq!(
        found[0],
        SymbolMatch {
            symbol: "AAPL".into(),
            name: "Apple Inc".into(),
            exchange: Some("NASDAQ".into()),
            kind: Some("STOCK".into()),
        }
    );
    assert_eq!(found.len(), 2, "the unknown symbol is left out");
    assert!(matches!(
        p.symbols(&[]).await,
        Err(MarketError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn error_bodies_become_typed_errors() {
    let (server, p) = tradestation().await;
    let body = |e: &str, m: &str| format!(r#"{{"Error":"{e}","Message":"{m}"}}"#);
    for (symbol, status, text) in [
        ("BAD", 400, body("BadRequest", "Invalid date range")),
        ("UNAUTH", 401, body("Unauthorized", "Access token expired")),
        (
            "FORBID",
            403,
            body("Forbidden", "Not entitled to MarketData"),
        ),
        ("NONE", 404, body("NotFound", "Symbol not found")),
        ("SLOW", 429, body("TooManyRequests", "Quota exceeded")),
    ] {
        let mut reply = json(status, &text);
        if status == 429 {
            reply = reply.insert_header("retry-after", "7");
        }
        Mock::given(path(format!("/v3/marketdata/barcharts/{symbol}")))
            .respond_with(reply)
            .mount(&server)
            .await;
    }
    let bars = |s: &'static str| {
        let p = p.clone();
        async move { p.daily_bars(s, date(2024, 1, 2), date(2024, 1, 4)).await }
    };
    match bars("BAD").await {
        Err(MarketError::InvalidInput(m)) => assert!(m.contains("Invalid date range"), "{m}"),
        other => panic!("{other:?}"),
    }
    for s in ["UNAUTH", "FORBID"] {
        match bars(s).await {
            Err(MarketError::Unauthorized { provider, detail }) => {
                assert_eq!(provider, "tradestation");
                assert!(!detail.contains("user-access-token"), "{detail}");
            }
            other => panic!("{s}: {other:?}"),
        }
    }
    assert!(matches!(
        bars("NONE").await,
        Err(MarketError::UnknownSymbol { .. })
    ));
    assert_eq!(
        bars("SLOW").await.unwrap_err(),
        MarketError::RateLimited {
            provider: "tradestation".into(),
            retry_after: Some(Duration::from_secs(7)),
        }
    );
    // A token that cannot be had stops the call before anything is sent.
    struct NoToken;
    #[async_trait::async_trait]
    impl BearerSource for NoToken {
        async fn bearer(&self) -> rampart_market::Result<String> {
            Err(MarketError::Unauthorized {
                provider: "tradestation".into(),
                detail: "not connected".into(),
            })
        }
    }
    let before = server.received_requests().await.unwrap().len();
    let none = TradeStationProvider::new(
        VendorSettings::new("tradestation", Some(server.uri())),
        Arc::new(NoToken),
    )
    .unwrap();
    assert!(aapl_bars_jan_2_to_4(&none).await.is_err());
    assert_eq!(server.received_requests().await.unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn vendor_symbol_answers_are_recorded_as_instruments() {
    let (server, p) = tradestation().await;
    Mock::given(path("/v3/marketdata/symbols/AAPL"))
        .respond_with(json(
            200,
            include_str!("fixtures/tradestation_symbols.json"),
        ))
        .mount(&server)
        .await;
    let db = fresh_database().await;
    let store = StoreProvider::connect(&db.url, 2).await.unwrap();
    let chain = ProviderChain::builder()
        .provider(Arc::new(p), fast_policy())
        .store(store.clone())
        .build()
        .unwrap();
    assert_eq!(store.instrument("AAPL").await.unwrap(), None);
    // The ingestion job's call: every symbol the vendor described is kept.
    assert_eq!(chain.record_instruments(&["AAPL".into()]).await, 1);
    let apple = store.instrument("AAPL").await.unwrap().unwrap();
    assert_eq!(
        (
            apple.name.as_str(),
            apple.exchange.as_deref(),
            apple.asset_type.as_deref()
        ),
        ("Apple Inc", Some("NASDAQ"), Some("STOCK"))
    );
    assert_eq!(apple.source, "tradestation");
    let msft = store.instrument("msft").await.unwrap().unwrap();
    assert_eq!(msft.name, "Microsoft Corp");
    // An answer without a name or exchange does not erase what is known.
    let bare = SymbolMatch {
        symbol: "AAPL".into(),
        name: String::new(),
        exchange: None,
        kind: Some("Equity".into()),
    };
    store.upsert_instruments(&[bare], "other").await.unwrap();
    let apple = store.instrument("AAPL").await.unwrap().unwrap();
    assert_eq!(
        (apple.name.as_str(), apple.exchange.as_deref()),
        ("Apple Inc", Some("NASDAQ"))
    );
    // A symbol already described is not looked up again.
    let calls = server.received_requests().await.unwrap().len();
    assert_eq!(chain.record_instruments(&["AAPL".into()]).await, 1);
    assert_eq!(server.received_requests().await.unwrap().len(), calls);
}
