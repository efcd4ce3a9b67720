//! The PostgreSQL store: migrations, upserts, coverage, validation.

use chrono::{Days, Utc};
use rampart_market::store::subtract_ranges;
use rampart_market::validate::validate_bars;
use rampart_market::{Bar, MarketDataProvider, StoreProvider};

use crate::support::{date, fresh_database};

fn bar(d: chrono::NaiveDate, close: f64) -> Bar {
    Bar {
        date: d,
        open: close,
        high: close + 1.0,
        low: close - 1.0,
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
    changed[1].close = 11.5;
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
        (11.5, "other")
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
        Some(10.0)
    );
    // The store as a provider.
    assert_eq!(store.quote("ABC").await.unwrap().price, 13.0);
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

#[tokio::test(flavor = "multi_thread")]
async fn database_constraints_back_the_validation() {
    let db = fresh_database().await;
    let store = StoreProvider::connect(&db.url, 2).await.unwrap();
    let mut bad = bar(date(2024, 1, 2), 10.0);
    bad.low = 20.0;
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
    let mut nan = bar(date(2024, 1, 3), 10.0);
    nan.close = f64::NAN;
    let mut inf = bar(date(2024, 1, 3), 10.0);
    inf.adj_close = Some(f64::INFINITY);
    let mut negative = bar(date(2024, 1, 4), 10.0);
    negative.low = -1.0;
    let zero = Bar {
        open: 0.0,
        ..bar(date(2024, 1, 5), 10.0)
    };
    let mut inverted = bar(date(2024, 1, 8), 10.0);
    inverted.high = 5.0;
    let future = bar(today.checked_add_days(Days::new(2)).unwrap(), 10.0);
    let duplicate = bar(date(2024, 1, 2), 99.0);
    let earlier = bar(date(2023, 12, 29), 9.0);
    let (kept, rejected) = validate_bars(
        vec![
            good.clone(),
            nan,
            inf,
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
        (2, 2, 1, 1, 1)
    );
    assert_eq!(rejected.total(), 7);
}
