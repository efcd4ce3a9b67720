//! Each adapter against a local server replaying the vendor's documented
//! responses (fixtures/), including the errors vendors hide in 200 bodies.

use std::time::Duration;

use rampart_market::vendor::{
    AlpacaProvider, AlphaVantageProvider, FinnhubProvider, StooqProvider, VendorSettings,
    YahooProvider,
};
use rampart_market::{MarketDataProvider, MarketError};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    YAHOO_CHART, YAHOO_NOT_FOUND, aapl_bars_jan_2_to_4, date, init, px, raw_http_server, settings,
};

fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

fn unknown(e: &MarketError) -> bool {
    matches!(e, MarketError::UnknownSymbol { .. })
}

// ------------------------------------------------------------------ Alpaca

async fn alpaca() -> (MockServer, AlpacaProvider) {
    init();
    let server = MockServer::start().await;
    let mut s = settings("alpaca", &server.uri());
    s.trading_url = Some(server.uri());
    (server, AlpacaProvider::new(s).unwrap())
}

#[tokio::test]
async fn alpaca_quotes_bars_search_news() {
    let (server, p) = alpaca().await;
    Mock::given(method("GET"))
        .and(path("/v2/stocks/snapshots"))
        .and(header("APCA-API-KEY-ID", "test-key"))
        .and(header("APCA-API-SECRET-KEY", "test-secret"))
        .respond_with(json(include_str!("fixtures/alpaca_snapshots.json")))
        .mount(&server)
        .await;
    let q = p.quote("AAPL").await.unwrap();
    assert_eq!(q.price, px(170.73));
    assert_eq!(q.previous_close, Some(px(169.0)));
    assert_eq!((q.bid, q.ask), (Some(px(170.71)), Some(px(170.75))));
    assert_eq!(q.volume, Some(1_187_352));
    assert_eq!(q.as_of.to_rfc3339(), "2024-03-08T20:59:59.936+00:00");
    let qs = p
        .quotes(&["AAPL".into(), "MSFT".into(), "ZZZZ".into()])
        .await
        .unwrap();
    assert_eq!(
        qs.iter().map(|q| q.symbol.as_str()).collect::<Vec<_>>(),
        ["AAPL", "MSFT"],
        "one batched call, unknown left out"
    );
    let batch_calls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v2/stocks/snapshots")
        .count();
    assert_eq!(batch_calls, 2);

    Mock::given(path("/v2/stocks/AAPL/bars"))
        .and(query_param("adjustment", "raw"))
        .and(query_param("timeframe", "1Day"))
        .and(query_param_is_missing("page_token"))
        .respond_with(json(include_str!("fixtures/alpaca_bars_raw_p1.json")))
        .mount(&server)
        .await;
    Mock::given(path("/v2/stocks/AAPL/bars"))
        .and(query_param("adjustment", "raw"))
        .and(query_param(
            "page_token",
            "QUFQTHxEfDIwMjQtMDEtMDNUMDU6MDA6MDAuMDAwMDAwMDAwWg==",
        ))
        .respond_with(json(include_str!("fixtures/alpaca_bars_raw_p2.json")))
        .mount(&server)
        .await;
    Mock::given(path("/v2/stocks/AAPL/bars"))
        .and(query_param("adjustment", "all"))
        .respond_with(json(include_str!("fixtures/alpaca_bars_all.json")))
        .mount(&server)
        .await;
    let bars = aapl_bars_jan_2_to_4(&p).await.unwrap();
    assert_eq!(bars.len(), 3, "two pages");
    assert_eq!(bars[0].date, date(2024, 1, 2));
    assert_eq!(
        (bars[0].open, bars[0].close, bars[0].adj_close),
        (px(187.15), px(185.64), Some(px(184.76)))
    );
    assert_eq!(bars[2].volume, 71_983_570);

    Mock::given(path("/v2/assets"))
        .respond_with(json(include_str!("fixtures/alpaca_assets.json")))
        .mount(&server)
        .await;
    let hits = p.search("apple").await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.symbol.as_str()).collect::<Vec<_>>(),
        ["AAPL", "APLE"]
    );
    let exact = p.search("msft").await.unwrap();
    assert_eq!(exact[0].symbol, "MSFT");

    Mock::given(path("/v1beta1/news"))
        .and(query_param("symbols", "AAPL"))
        .respond_with(json(include_str!("fixtures/alpaca_news.json")))
        .mount(&server)
        .await;
    let news = p.news("AAPL", 5).await.unwrap();
    assert_eq!(news[0].source.as_deref(), Some("benzinga"));
    assert_eq!(news[0].summary, None, "empty summary dropped");
    assert!(matches!(
        p.fundamentals("AAPL").await,
        Err(MarketError::Unsupported { .. })
    ));
}

#[tokio::test]
async fn alpaca_errors() {
    let (server, p) = alpaca().await;
    Mock::given(path("/v2/stocks/snapshots"))
        .and(query_param("symbols", "NOPE"))
        .respond_with(json("{}"))
        .mount(&server)
        .await;
    assert!(unknown(&p.quote("NOPE").await.unwrap_err()));
    Mock::given(path("/v2/stocks/snapshots"))
        .and(query_param("symbols", "KEY"))
        .respond_with(ResponseTemplate::new(403).set_body_string(r#"{"message":"forbidden."}"#))
        .mount(&server)
        .await;
    assert!(matches!(
        p.quote("KEY").await.unwrap_err(),
        MarketError::Unauthorized { .. }
    ));
    Mock::given(path("/v2/stocks/snapshots"))
        .and(query_param("symbols", "BUSY"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_string(r#"{"message":"too many requests."}"#),
        )
        .mount(&server)
        .await;
    let e = p.quote("BUSY").await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(e.retryable());
    Mock::given(path("/v2/stocks/XXXX/bars"))
        .respond_with(
            ResponseTemplate::new(422).set_body_string(r#"{"message":"invalid symbol: XXXX"}"#),
        )
        .mount(&server)
        .await;
    assert!(unknown(
        &p.daily_bars("XXXX", date(2024, 1, 1), date(2024, 1, 5))
            .await
            .unwrap_err()
    ));
}

// ------------------------------------------------------------ Alpha Vantage

async fn alpha_vantage() -> (MockServer, AlphaVantageProvider) {
    init();
    let server = MockServer::start().await;
    let p = AlphaVantageProvider::new(settings("alpha_vantage", &server.uri())).unwrap();
    (server, p)
}

fn av(function: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/query"))
        .and(query_param("function", function))
        .and(query_param("apikey", "test-key"))
}

#[tokio::test]
async fn alpha_vantage_formats() {
    let (server, p) = alpha_vantage().await;
    av("GLOBAL_QUOTE")
        .and(query_param("symbol", "IBM"))
        .respond_with(json(include_str!(
            "fixtures/alpha_vantage_global_quote.json"
        )))
        .mount(&server)
        .await;
    let q = p.quote("IBM").await.unwrap();
    assert_eq!(
        (q.price, q.previous_close, q.volume),
        (px(195.95), Some(px(196.54)), Some(3_819_713))
    );
    assert_eq!(q.as_of.date_naive(), date(2024, 3, 8));

    av("TIME_SERIES_DAILY_ADJUSTED")
        .respond_with(json(include_str!(
            "fixtures/alpha_vantage_daily_adjusted.json"
        )))
        .mount(&server)
        .await;
    let bars = p
        .daily_bars("IBM", date(2024, 1, 3), date(2024, 1, 4))
        .await
        .unwrap();
    assert_eq!(
        bars.iter().map(|b| b.date).collect::<Vec<_>>(),
        [date(2024, 1, 3), date(2024, 1, 4)],
        "range applied, oldest first"
    );
    assert_eq!(
        (bars[0].close, bars[0].adj_close, bars[0].volume),
        (px(160.10), Some(px(156.362)), 4_086_065)
    );

    av("TIME_SERIES_DAILY")
        .respond_with(json(include_str!("fixtures/alpha_vantage_daily.json")))
        .mount(&server)
        .await;
    let plain = AlphaVantageProvider::new(settings("av2", &server.uri()))
        .unwrap()
        .unadjusted();
    let bars = plain
        .daily_bars("IBM", date(2024, 1, 1), date(2024, 1, 31))
        .await
        .unwrap();
    assert_eq!(bars.len(), 2);
    assert_eq!((bars[1].adj_close, bars[1].volume), (None, 4_086_065));

    av("SYMBOL_SEARCH")
        .and(query_param("keywords", "tesco"))
        .respond_with(json(include_str!("fixtures/alpha_vantage_search.json")))
        .mount(&server)
        .await;
    let hits = p.search("tesco").await.unwrap();
    assert_eq!(hits[0].symbol, "TSCO.LON");
    assert_eq!(hits[0].exchange.as_deref(), Some("United Kingdom"));

    av("OVERVIEW")
        .respond_with(json(include_str!("fixtures/alpha_vantage_overview.json")))
        .mount(&server)
        .await;
    let f = p.fundamentals("IBM").await.unwrap();
    assert_eq!(f.name, "International Business Machines");
    assert_eq!(
        (f.market_cap, f.pe_ratio, f.eps, f.dividend_yield),
        (
            Some(179_640_877_000.0),
            Some(22.19),
            Some(8.82),
            Some(0.0339)
        )
    );

    av("NEWS_SENTIMENT")
        .respond_with(json(include_str!("fixtures/alpha_vantage_news.json")))
        .mount(&server)
        .await;
    let news = p.news("IBM", 10).await.unwrap();
    assert_eq!(
        news[0].published_at.to_rfc3339(),
        "2024-03-08T14:30:00+00:00"
    );
}

#[tokio::test]
async fn alpha_vantage_errors_hidden_in_200() {
    let (server, p) = alpha_vantage().await;
    av("GLOBAL_QUOTE")
        .and(query_param("symbol", "NOTE"))
        .respond_with(json(include_str!("fixtures/alpha_vantage_note.json")))
        .mount(&server)
        .await;
    av("GLOBAL_QUOTE")
        .and(query_param("symbol", "INFO"))
        .respond_with(json(include_str!(
            "fixtures/alpha_vantage_information.json"
        )))
        .mount(&server)
        .await;
    av("GLOBAL_QUOTE")
        .and(query_param("symbol", "ERR"))
        .respond_with(json(include_str!("fixtures/alpha_vantage_error.json")))
        .mount(&server)
        .await;
    av("GLOBAL_QUOTE")
        .and(query_param("symbol", "EMPTY"))
        .respond_with(json(r#"{"Global Quote": {}}"#))
        .mount(&server)
        .await;
    av("GLOBAL_QUOTE")
        .and(query_param("symbol", "DEMO"))
        .respond_with(json(r#"{"Information": "The **demo** API key is for demo purposes only. Please claim your free API key at (https://www.alphavantage.co/support/#api-key) to explore our full API offerings."}"#))
        .mount(&server)
        .await;
    av("GLOBAL_QUOTE")
        .and(query_param("symbol", "HTML"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("<html><body>Service temporarily unavailable</body></html>"),
        )
        .mount(&server)
        .await;
    let note = p.quote("NOTE").await.unwrap_err();
    assert!(matches!(note, MarketError::RateLimited { .. }), "{note}");
    assert_eq!(note.retry_after(), Some(Duration::from_secs(60)));
    assert!(matches!(
        p.quote("INFO").await.unwrap_err(),
        MarketError::RateLimited { .. }
    ));
    assert!(unknown(&p.quote("ERR").await.unwrap_err()));
    assert!(unknown(&p.quote("EMPTY").await.unwrap_err()));
    assert!(matches!(
        p.quote("DEMO").await.unwrap_err(),
        MarketError::Unauthorized { .. }
    ));
    assert!(matches!(
        p.quote("HTML").await.unwrap_err(),
        MarketError::Malformed { .. }
    ));
}

// ------------------------------------------------------------------ Finnhub

async fn finnhub() -> (MockServer, FinnhubProvider) {
    init();
    let server = MockServer::start().await;
    let p = FinnhubProvider::new(settings("finnhub", &server.uri())).unwrap();
    (server, p)
}

#[tokio::test]
async fn finnhub_formats() {
    let (server, p) = finnhub().await;
    let fh = |p: &str| {
        Mock::given(method("GET"))
            .and(path(p.to_owned()))
            .and(query_param("token", "test-key"))
    };
    fh("/quote")
        .and(query_param("symbol", "AAPL"))
        .respond_with(json(include_str!("fixtures/finnhub_quote.json")))
        .mount(&server)
        .await;
    let q = p.quote("AAPL").await.unwrap();
    assert_eq!((q.price, q.previous_close), (px(261.74), Some(px(262.32))));
    assert_eq!(q.as_of.timestamp(), 1_582_641_000);

    fh("/stock/candle")
        .and(query_param("symbol", "AAPL"))
        .and(query_param("resolution", "D"))
        .respond_with(json(include_str!("fixtures/finnhub_candles.json")))
        .mount(&server)
        .await;
    let bars = p
        .daily_bars("AAPL", date(2019, 9, 24), date(2019, 9, 26))
        .await
        .unwrap();
    assert_eq!(bars.len(), 3);
    assert_eq!(
        (bars[0].date, bars[0].open, bars[0].close, bars[0].volume),
        (date(2019, 9, 24), px(221.03), px(217.68), 33_463_820)
    );
    fh("/stock/candle")
        .and(query_param("symbol", "NONE"))
        .respond_with(json(r#"{"s":"no_data"}"#))
        .mount(&server)
        .await;
    assert!(
        p.daily_bars("NONE", date(2019, 9, 24), date(2019, 9, 26))
            .await
            .unwrap()
            .is_empty()
    );

    fh("/search")
        .respond_with(json(include_str!("fixtures/finnhub_search.json")))
        .mount(&server)
        .await;
    assert_eq!(p.search("apple").await.unwrap()[0].name, "APPLE INC");
    fh("/stock/profile2")
        .and(query_param("symbol", "AAPL"))
        .respond_with(json(include_str!("fixtures/finnhub_profile.json")))
        .mount(&server)
        .await;
    let f = p.fundamentals("AAPL").await.unwrap();
    assert_eq!(
        (f.name.as_str(), f.market_cap, f.sector.as_deref()),
        ("Apple Inc", Some(1_415_993e6), Some("Technology"))
    );
    fh("/stock/profile2")
        .and(query_param("symbol", "NOPE"))
        .respond_with(json("{}"))
        .mount(&server)
        .await;
    assert!(unknown(&p.fundamentals("NOPE").await.unwrap_err()));
    fh("/company-news")
        .respond_with(json(include_str!("fixtures/finnhub_news.json")))
        .mount(&server)
        .await;
    assert_eq!(
        p.news("AAPL", 3).await.unwrap()[0].source.as_deref(),
        Some("The Economic Times")
    );
}

#[tokio::test]
async fn finnhub_errors() {
    let (server, p) = finnhub().await;
    Mock::given(path("/quote"))
        .and(query_param("symbol", "ZZZZ"))
        .respond_with(json(include_str!("fixtures/finnhub_quote_unknown.json")))
        .mount(&server)
        .await;
    assert!(
        unknown(&p.quote("ZZZZ").await.unwrap_err()),
        "all-zero quote = unknown symbol"
    );
    Mock::given(path("/quote"))
        .and(query_param("symbol", "KEY"))
        .respond_with(ResponseTemplate::new(401).set_body_string(r#"{"error":"Invalid API key."}"#))
        .mount(&server)
        .await;
    assert!(matches!(
        p.quote("KEY").await.unwrap_err(),
        MarketError::Unauthorized { .. }
    ));
    Mock::given(path("/quote"))
        .and(query_param("symbol", "BUSY"))
        .respond_with(ResponseTemplate::new(429).set_body_string(
            r#"{"error":"API limit reached. Please try again later. Remaining Limit: 0"}"#,
        ))
        .mount(&server)
        .await;
    assert!(matches!(
        p.quote("BUSY").await.unwrap_err(),
        MarketError::RateLimited {
            retry_after: None,
            ..
        }
    ));
    Mock::given(path("/quote"))
        .and(query_param("symbol", "BUSY200"))
        .respond_with(json(
            r#"{"error":"API limit reached. Please try again later. Remaining Limit: 0"}"#,
        ))
        .mount(&server)
        .await;
    assert!(matches!(
        p.quote("BUSY200").await.unwrap_err(),
        MarketError::RateLimited { .. }
    ));
    Mock::given(path("/quote"))
        .and(query_param("symbol", "TRUNC"))
        .respond_with(json(r#"{"c":261.74,"d":-0.58,"#))
        .mount(&server)
        .await;
    assert!(matches!(
        p.quote("TRUNC").await.unwrap_err(),
        MarketError::Malformed { .. }
    ));
}

// -------------------------------------------------------------------- Yahoo

#[tokio::test]
async fn yahoo_formats() {
    init();
    let server = MockServer::start().await;
    let p = YahooProvider::new(settings("yahoo", &server.uri())).unwrap();
    Mock::given(path("/v8/finance/chart/AAPL"))
        .and(query_param("interval", "1d"))
        .respond_with(json(YAHOO_CHART))
        .mount(&server)
        .await;
    let q = p.quote("AAPL").await.unwrap();
    assert_eq!(
        (q.price, q.previous_close, q.volume, q.currency.as_deref()),
        (px(181.18), Some(px(192.53)), Some(62_379_661), Some("USD"))
    );
    let bars = p
        .daily_bars("AAPL", date(2024, 1, 1), date(2024, 1, 31))
        .await
        .unwrap();
    assert_eq!(
        bars.iter().map(|b| b.date).collect::<Vec<_>>(),
        [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 5)],
        "null row skipped, exchange-local dates"
    );
    assert_eq!(bars[0].adj_close, Some(px(184.7351531982422)));
    assert_eq!(bars[2].volume, 62_379_700);

    Mock::given(path("/v8/finance/chart/GONE"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_raw(YAHOO_NOT_FOUND.as_bytes().to_vec(), "application/json"),
        )
        .mount(&server)
        .await;
    assert!(unknown(&p.quote("GONE").await.unwrap_err()));

    Mock::given(path("/v1/finance/search"))
        .respond_with(json(include_str!("fixtures/yahoo_search.json")))
        .mount(&server)
        .await;
    let hits = p.search("apple").await.unwrap();
    assert_eq!(
        (
            hits[0].symbol.as_str(),
            hits[0].name.as_str(),
            hits[0].exchange.as_deref()
        ),
        ("AAPL", "Apple Inc.", Some("NASDAQ"))
    );
    let news = p.news("AAPL", 5).await.unwrap();
    assert_eq!(news[0].source.as_deref(), Some("Yahoo Finance"));
}

#[tokio::test]
async fn yahoo_faults() {
    init();
    let server = MockServer::start().await;
    let p = YahooProvider::new(settings("yahoo", &server.uri())).unwrap();
    Mock::given(path("/v8/finance/chart/HTML"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<!DOCTYPE html><html><title>Yahoo</title><body>Will be right back…</body></html>",
        ))
        .mount(&server)
        .await;
    assert!(matches!(
        p.quote("HTML").await.unwrap_err(),
        MarketError::Malformed { .. }
    ));
    Mock::given(path("/v8/finance/chart/JUNK"))
        .respond_with(json("{\"chart\": {\"result\": [ {\"meta\": "))
        .mount(&server)
        .await;
    assert!(matches!(
        p.quote("JUNK").await.unwrap_err(),
        MarketError::Malformed { .. }
    ));
    Mock::given(path("/v8/finance/chart/DOWN"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .mount(&server)
        .await;
    let e = p.quote("DOWN").await.unwrap_err();
    assert!(matches!(e, MarketError::Upstream { status: 503, .. }) && e.retryable());
    Mock::given(path("/v8/finance/chart/BUSY"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "Wed, 21 Oct 2099 07:28:00 GMT")
                .set_body_string("Too Many Requests"),
        )
        .mount(&server)
        .await;
    let e = p.quote("BUSY").await.unwrap_err();
    assert!(
        e.retry_after().unwrap() > Duration::from_secs(3600),
        "HTTP-date Retry-After"
    );

    // A body cut short of its Content-Length.
    let base = raw_http_server(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"chart\":{\"result\":[{\"meta\":{").await;
    let cut = YahooProvider::new(VendorSettings::new("yahoo-cut", Some(base))).unwrap();
    let e = cut.quote("AAPL").await.unwrap_err();
    assert!(matches!(e, MarketError::Transport { .. }), "{e:?}");
    // Connection refused.
    let dead = YahooProvider::new(VendorSettings::new(
        "yahoo-dead",
        Some("http://127.0.0.1:9".into()),
    ))
    .unwrap();
    assert!(matches!(
        dead.quote("AAPL").await.unwrap_err(),
        MarketError::Transport { .. }
    ));
}

// -------------------------------------------------------------------- Stooq

/// Prices keep the vendor's digits: text is parsed as a decimal (ten
/// places and beyond), and a non-number (`NaN`, `inf`) is a malformed answer
/// rather than a bar that would hold it.
#[tokio::test]
async fn non_numbers_are_malformed_answers_and_digits_are_kept() {
    init();
    let server = MockServer::start().await;
    let p = StooqProvider::new(settings("stooq", &server.uri())).unwrap();
    Mock::given(path("/q/d/l/"))
        .and(query_param("s", "exact.us"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "Date,Open,High,Low,Close,Volume\n2024-01-02,0.1,0.30000000000000004,0.1,0.2000000001,7\n",
        ))
        .mount(&server)
        .await;
    let bars = p
        .daily_bars("EXACT", date(2024, 1, 1), date(2024, 1, 5))
        .await
        .unwrap();
    assert_eq!(
        bars[0].open + bars[0].close,
        "0.3000000001".parse().unwrap()
    );
    assert_eq!(bars[0].high.to_string(), "0.30000000000000004");
    for (symbol, close) in [("nan.us", "NaN"), ("inf.us", "inf"), ("nd.us", "N/D")] {
        Mock::given(path("/q/d/l/"))
            .and(query_param("s", symbol))
            .respond_with(ResponseTemplate::new(200).set_body_string(format!(
                "Date,Open,High,Low,Close,Volume\n2024-01-02,1,1,1,{close},1\n"
            )))
            .mount(&server)
            .await;
        let err = p
            .daily_bars(
                symbol.trim_end_matches(".us"),
                date(2024, 1, 1),
                date(2024, 1, 5),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, MarketError::Malformed { .. }),
            "{close}: {err}"
        );
    }
}

#[tokio::test]
async fn stooq_csv() {
    init();
    let server = MockServer::start().await;
    let p = StooqProvider::new(settings("stooq", &server.uri())).unwrap();
    Mock::given(path("/q/d/l/"))
        .and(query_param("s", "aapl.us"))
        .and(query_param("i", "d"))
        .and(query_param("d1", "20240101"))
        .and(query_param("d2", "20240105"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(include_str!("fixtures/stooq_daily.csv")),
        )
        .mount(&server)
        .await;
    let bars = p
        .daily_bars("AAPL", date(2024, 1, 1), date(2024, 1, 5))
        .await
        .unwrap();
    assert_eq!(bars.len(), 3);
    assert_eq!(
        (bars[0].date, bars[0].low, bars[0].volume),
        (date(2024, 1, 2), px(183.885), 82_488_674)
    );

    Mock::given(path("/q/l/"))
        .and(query_param("s", "aapl.us+msft.us+zzzz.us"))
        .and(query_param("f", "sd2t2ohlcv"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(include_str!("fixtures/stooq_quotes.csv")),
        )
        .mount(&server)
        .await;
    let qs = p
        .quotes(&["AAPL".into(), "MSFT".into(), "ZZZZ".into()])
        .await
        .unwrap();
    assert_eq!(
        qs.iter()
            .map(|q| (q.symbol.as_str(), q.price))
            .collect::<Vec<_>>(),
        [("AAPL", px(181.18)), ("MSFT", px(367.75))],
        "N/D row dropped"
    );

    Mock::given(path("/q/d/l/"))
        .and(query_param("s", "nope.us"))
        .respond_with(ResponseTemplate::new(200).set_body_string("No data"))
        .mount(&server)
        .await;
    assert!(unknown(
        &p.daily_bars("NOPE", date(2024, 1, 1), date(2024, 1, 5))
            .await
            .unwrap_err()
    ));
    Mock::given(path("/q/d/l/"))
        .and(query_param("s", "busy.us"))
        .respond_with(ResponseTemplate::new(200).set_body_string("Exceeded the daily hits limit"))
        .mount(&server)
        .await;
    assert!(matches!(
        p.daily_bars("BUSY", date(2024, 1, 1), date(2024, 1, 5))
            .await
            .unwrap_err(),
        MarketError::RateLimited { .. }
    ));
    Mock::given(path("/q/d/l/"))
        .and(query_param("s", "bad.us"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("Date,Open,High,Low,Close,Volume\n2024-01-02,abc,1,1,1,1\n"),
        )
        .mount(&server)
        .await;
    assert!(matches!(
        p.daily_bars("BAD", date(2024, 1, 1), date(2024, 1, 5))
            .await
            .unwrap_err(),
        MarketError::Malformed { .. }
    ));
    assert!(matches!(
        p.search("apple").await.unwrap_err(),
        MarketError::Unsupported { .. }
    ));
    assert_eq!(rampart_market::vendor::stooq::stooq_symbol("^GSPC"), "^spx");
}

#[test]
fn settings_debug_redacts_keys() {
    let s = VendorSettings::new("x", None)
        .with_key("super-secret")
        .with_secret("hush");
    let text = format!("{s:?}");
    assert!(
        !text.contains("super-secret") && !text.contains("hush"),
        "{text}"
    );
}
