//! The PostgreSQL store: migrations, upserts, coverage, validation.

use chrono::{Days, Utc};
use rampart_market::store::subtract_ranges;
use rampart_market::validate::validate_bars;
use rampart_market::{Bar, Decimal, MarketDataProvider, StoreProvider};

use crate::support::{date, fresh_database, px};

fn bar(d: chrono::NaiveDate, close: f64) -> Bar {
    let close = px(close);
    Bar {
        date: d,
        open: close,
        high: close + Decimal::ONE,
        low: close - Decimal::ONE,
        close,
        adj_close: Some(close),
        volume: 1000,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_once_even_concurrently() {
    let db = fresh_database().await;
    let a = StoreProvider::new(rampart_market::connect_pool(&db.url, 2).unwrap());
    let b = StoreProvider::new(rampart_market::connect_pool(&db.url, 2).unwrap());
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let applied = ra.unwrap().len() + rb.unwrap().len();
    assert_eq!(
        applied,
        rampart_market::store::MIGRATIONS.len(),
        "applied exactly once"
    );
    assert!(a.migrate().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_counts_inserted_updated_unchanged() {
    let db = fresh_database().await;
    let store = StoreProvider::connect(&db.url, 2).await.unwrap();
    let bars = vec![
        bar(date(2024, 1, 2), 10.0),
        bar(date(2024, 1, 3), 11.0),
        bar(date(2024, 1, 4), 12.0),
    ];
    let first = store.upsert_bars("ABC", &bars, "test").await.unwrap();
    assert_eq!((first.inserted, first.updated, first.unchanged), (3, 0, 0));
    let same = store.upsert_bars("ABC", &bars, "test").await.unwrap();
    assert_eq!((same.inserted, same.updated, same.unchanged), (0, 0, 3));
    let mut changed = bars.clone();
    changed[1].close = px(11.5);
    changed.push(bar(date(2024, 1, 5), 13.0));
    let next = store.upsert_bars("ABC", &changed, "other").await.unwrap();
    assert_eq!((next.inserted, next.updated, next.unchanged), (1, 1, 2));
    let stored = store
        .bars("ABC", date(2024, 1, 1), date(2024, 1, 31))
        .await
        .unwrap();
    assert_eq!(stored.len(), 4);
    assert_eq!(
        (stored[1].bar.close, stored[1].source.as_str()),
        (px(11.5), "other")
    );
    assert_eq!(
        stored[0].source, "test",
        "unchanged rows keep their provenance"
    );
    // A missing adjusted close does not erase a known one.
    let mut no_adj = bars[..1].to_vec();
    no_adj[0].adj_close = None;
    store.upsert_bars("ABC", &no_adj, "x").await.unwrap();
    assert_eq!(
        store
            .bars("ABC", date(2024, 1, 2), date(2024, 1, 2))
            .await
            .unwrap()[0]
            .bar
            .adj_close,
        Some(px(10.0))
    );
    // The store as a provider.
    assert_eq!(store.quote("ABC").await.unwrap().price, px(13.0));
    assert_eq!(
        store
            .daily_bars("ABC", date(2024, 1, 3), date(2024, 1, 4))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.search("ab").await.unwrap()[0].symbol, "ABC");
    assert!(
        store.search("%").await.unwrap().is_empty(),
        "LIKE wildcards are escaped"
    );
    assert_eq!(
        store.latest_date("ABC").await.unwrap(),
        Some(date(2024, 1, 5))
    );
}

/// Prices go into `numeric` columns and come back with every digit, for
/// bars and for the last quote (the L3 layer, and what L2 writes as JSON).
#[tokio::test(flavor = "multi_thread")]
async fn prices_are_stored_and_read_back_exactly() {
    let db = fresh_database().await;
    let store = StoreProvider::connect(&db.url, 2).await.unwrap();
    let exact = |text: &str| text.parse::<Decimal>().unwrap();
    let mut b = bar(date(2024, 1, 2), 1.0);
    b.open = exact("0.1");
    b.high = exact("12345.6789012345678");
    b.low = exact("0.0000000001");
    b.close = exact("0.2");
    b.adj_close = Some(exact("0.1000000001"));
    store
        .upsert_bars("EXACT", &[b.clone()], "test")
        .await
        .unwrap();
    let stored = store
        .bars("EXACT", date(2024, 1, 2), date(2024, 1, 2))
        .await
        .unwrap();
    assert_eq!(stored[0].bar, b);
    assert_eq!(stored[0].bar.open + stored[0].bar.close, exact("0.3"));
    // The same value at another scale is not a change.
    b.close = exact("0.20");
    let again = store.upsert_bars("EXACT", &[b], "test").await.unwrap();
    assert_eq!(again.unchanged, 1);

    let mut quote = rampart_market::Quote::at("EXACT", exact("187.2300000001"));
    quote.bid = Some(exact("187.23"));
    quote.ask = Some(exact("187.2400000000000001"));
    let cached = rampart_market::CachedQuote {
        quote: quote.clone(),
        origin: "test".into(),
        fetched_at: Utc::now(),
    };
    store.upsert_quote(&cached).await.unwrap();
    let read = store.latest_quote("EXACT").await.unwrap().unwrap().quote;
    assert_eq!(
        (read.price, read.bid, read.ask),
        (quote.price, quote.bid, quote.ask)
    );
    // JSON (the L2 cache, the API) keeps the digits too.
    let json = serde_json::to_string(&quote).unwrap();
    assert!(json.contains(r#""price":187.2300000001"#), "{json}");
    let back: rampart_market::Quote = serde_json::from_str(&json).unwrap();
    assert_eq!(back.price, quote.price);
}

#[tokio::test(flavor = "multi_thread")]
async fn database_constraints_back_the_validation() {
    let db = fresh_database().await;
    let store = StoreProvider::connect(&db.url, 2).await.unwrap();
    let mut bad = bar(date(2024, 1, 2), 10.0);
    bad.low = px(20.0);
    assert!(
        store.upsert_bars("ABC", &[bad], "x").await.is_err(),
        "high < low refused by a CHECK"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn coverage_ranges() {
    let db = fresh_database().await;
    let store = StoreProvider::connect(&db.url, 2).await.unwrap();
    assert_eq!(
        store
            .missing_ranges("X", date(2024, 1, 1), date(2024, 1, 31))
            .await
            .unwrap(),
        vec![(date(2024, 1, 1), date(2024, 1, 31))]
    );
    store
        .record_fetched("X", date(2024, 1, 10), date(2024, 1, 20), "p")
        .await
        .unwrap();
    store
        .record_fetched("X", date(2024, 1, 15), date(2024, 1, 25), "p")
        .await
        .unwrap();
    assert_eq!(
        store
            .missing_ranges("X", date(2024, 1, 1), date(2024, 1, 31))
            .await
            .unwrap(),
        vec![
            (date(2024, 1, 1), date(2024, 1, 9)),
            (date(2024, 1, 26), date(2024, 1, 31))
        ]
    );
    assert!(
        store
            .missing_ranges("X", date(2024, 1, 12), date(2024, 1, 22))
            .await
            .unwrap()
            .is_empty()
    );
}

#[test]
fn range_subtraction() {
    let d = date;
    assert_eq!(
        subtract_ranges(d(2024, 1, 1), d(2024, 1, 10), []),
        vec![(d(2024, 1, 1), d(2024, 1, 10))]
    );
    assert_eq!(
        subtract_ranges(
            d(2024, 1, 1),
            d(2024, 1, 10),
            [(d(2023, 12, 1), d(2024, 1, 31))]
        ),
        vec![]
    );
    assert_eq!(
        subtract_ranges(
            d(2024, 1, 1),
            d(2024, 1, 10),
            [
                (d(2024, 1, 3), d(2024, 1, 4)),
                (d(2024, 1, 5), d(2024, 1, 6))
            ]
        ),
        vec![
            (d(2024, 1, 1), d(2024, 1, 2)),
            (d(2024, 1, 7), d(2024, 1, 10))
        ]
    );
    assert_eq!(
        subtract_ranges(
            d(2024, 1, 5),
            d(2024, 1, 10),
            [(d(2024, 1, 1), d(2024, 1, 5))]
        ),
        vec![(d(2024, 1, 6), d(2024, 1, 10))]
    );
}

#[test]
fn validation_drops_and_counts_bad_rows() {
    let today = Utc::now().date_naive();
    let good = bar(date(2024, 1, 2), 10.0);
    // A bar cannot hold a NaN or an infinity: prices are exact decimals, and
    // neither converts to one (vendors' answers holding them are refused
    // where they are read, see `vendors::non_numbers_are_malformed_answers`).
    assert_eq!(rampart_amount::from_f64(f64::NAN), None);
    assert_eq!(rampart_amount::from_f64(f64::INFINITY), None);
    let mut negative = bar(date(2024, 1, 4), 10.0);
    negative.low = px(-1.0);
    let zero = Bar {
        open: px(0.0),
        ..bar(date(2024, 1, 5), 10.0)
    };
    let mut inverted = bar(date(2024, 1, 8), 10.0);
    inverted.high = px(5.0);
    let future = bar(today.checked_add_days(Days::new(2)).unwrap(), 10.0);
    let duplicate = bar(date(2024, 1, 2), 99.0);
    let earlier = bar(date(2023, 12, 29), 9.0);
    let (kept, rejected) = validate_bars(
        vec![
            good.clone(),
            negative,
            zero,
            inverted,
            future,
            duplicate,
            earlier.clone(),
        ],
        today,
    );
    assert_eq!(
        kept,
        vec![earlier, good],
        "sorted, first of a duplicated date wins"
    );
    assert_eq!(
        (
            rejected.not_finite,
            rejected.not_positive,
            rejected.high_below_low,
            rejected.future,
            rejected.duplicate
        ),
        (0, 2, 1, 1, 1)
    );
    assert_eq!(rejected.total(), 5);
}
