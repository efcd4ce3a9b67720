//! The embedded data set: real prices, all of them valid.

use chrono::Utc;
use rampart_market::embedded::INSTRUMENTS;
use rampart_market::{EmbeddedProvider, MarketDataProvider, MarketError, validate_bars};

use crate::support::{date, px};

#[tokio::test]
async fn real_prices_are_served() {
    let p = EmbeddedProvider::new();
    let q = p.quote("^GSPC").await.unwrap();
    assert_eq!(
        (q.price, q.previous_close),
        (px(2506.85), Some(px(2485.74)))
    );
    assert_eq!(q.as_of.date_naive(), date(2018, 12, 31));
    let lehman = p
        .daily_bars("^GSPC", date(2008, 9, 15), date(2008, 9, 15))
        .await
        .unwrap();
    assert_eq!(lehman[0].close, px(1192.70));
    let nasdaq = p
        .daily_bars("^IXIC", date(2000, 3, 10), date(2000, 3, 10))
        .await
        .unwrap();
    assert!(nasdaq[0].close > px(5000.0), "dot-com peak");
    let aapl = p
        .daily_bars("AAPL", date(2010, 1, 1), date(2010, 12, 31))
        .await
        .unwrap();
    assert_eq!(
        aapl.iter().map(|b| b.close).collect::<Vec<_>>(),
        [px(192.06), px(204.62), px(223.02)]
    );
    assert_eq!(p.quote("MSFT").await.unwrap().price, px(28.8));
    assert!(matches!(
        p.quote("TSLA").await.unwrap_err(),
        MarketError::UnknownSymbol { .. }
    ));
    assert_eq!(p.search("apple").await.unwrap()[0].symbol, "AAPL");
    assert_eq!(p.search("nasdaq").await.unwrap()[0].symbol, "^IXIC");
}

#[tokio::test]
async fn every_embedded_row_passes_validation() {
    let p = EmbeddedProvider::new();
    let today = Utc::now().date_naive();
    let mut total = 0;
    for (symbol, _, _) in INSTRUMENTS {
        let bars = p.daily_bars(symbol, date(1990, 1, 1), today).await.unwrap();
        let n = bars.len();
        let (kept, rejected) = validate_bars(bars, today);
        assert_eq!((kept.len(), rejected.total()), (n, 0), "{symbol}");
        total += n;
    }
    assert_eq!(total, 5031 * 2 + 123 * 4 + 68);
}
