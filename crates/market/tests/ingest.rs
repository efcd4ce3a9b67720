//! Backfill and daily update into the real PostgreSQL store.

use chrono::{Days, Utc};
use rampart_market::{Bar, Decimal, MarketError, ProviderChain, StoreProvider};

use crate::support::{ScriptedProvider, date, fast_policy, fresh_database, init, px};

async fn setup() -> (std::sync::Arc<ScriptedProvider>, ProviderChain) {
    let db = fresh_database().await;
    let store = StoreProvider::connect(&db.url, 4).await.unwrap();
    let vendor = ScriptedProvider::new("vendor", vec![]);
    let chain = ProviderChain::builder()
        .provider(vendor.clone(), fast_policy())
        .store(store)
        .update_lookback_days(10)
        .build()
        .unwrap();
    (vendor, chain)
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_reports_inserted_updated_rejected() {
    let (vendor, chain) = setup().await;
    let weekend = |d| Bar {
        date: d,
        open: px(1.0),
        high: px(2.0),
        low: px(0.5),
        close: px(1.5),
        adj_close: None,
        volume: 0,
    };
    *vendor.extra_bars.lock().unwrap() = vec![
        // A NaN cannot reach a bar any more (prices are exact decimals); a
        // zero close stands where this test had one.
        Bar {
            close: Decimal::ZERO,
            ..weekend(date(2018, 3, 3))
        },
        Bar {
            low: px(3.0),
            ..weekend(date(2018, 3, 4))
        },
        Bar {
            open: px(-1.0),
            ..weekend(date(2018, 3, 10))
        },
        Bar {
            close: px(9999.0),
            ..weekend(date(2018, 3, 1))
        }, // a second 2018-03-01
    ];
    let report = chain
        .backfill("^gspc", date(2018, 3, 1), date(2018, 3, 31))
        .await
        .unwrap();
    assert_eq!(report.symbol, "^GSPC");
    assert_eq!(
        (
            report.fetched,
            report.inserted,
            report.updated,
            report.rejected_total()
        ),
        (21 + 4, 21, 0, 4)
    );
    assert_eq!(
        (
            report.rejected.not_finite,
            report.rejected.high_below_low,
            report.rejected.not_positive,
            report.rejected.duplicate
        ),
        (0, 1, 2, 1)
    );
    assert_eq!(report.provider.as_deref(), Some("vendor"));
    let stored = chain
        .store()
        .unwrap()
        .bars("^GSPC", date(2018, 3, 1), date(2018, 3, 1))
        .await
        .unwrap();
    assert_eq!(
        stored[0].bar.close,
        px(2677.67),
        "the real bar, not the duplicate"
    );

    let again = chain
        .backfill("^GSPC", date(2018, 3, 1), date(2018, 3, 31))
        .await
        .unwrap();
    assert_eq!(
        (again.ranges_fetched, again.fetched, again.inserted),
        (0, 0, 0),
        "stored ranges are not fetched again"
    );
    assert_eq!(vendor.bar_requests.lock().unwrap().len(), 1);

    let mut chunks = Vec::new();
    let total = chain
        .backfill_with_progress("^GSPC", date(2016, 6, 1), date(2018, 3, 31), |r| {
            chunks.push(r.inserted)
        })
        .await
        .unwrap();
    assert_eq!(chunks.len(), 3, "2016, 2017, 2018");
    assert_eq!(total.inserted, *chunks.last().unwrap());
    assert!(total.inserted > 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn update_daily_brings_symbols_up_to_today() {
    let (vendor, chain) = setup().await;
    let today = Utc::now().date_naive();
    let day = |n: u64| today.checked_sub_days(Days::new(n)).unwrap();
    let recent = |d| Bar {
        date: d,
        open: px(10.0),
        high: px(11.0),
        low: px(9.0),
        close: px(10.5),
        adj_close: None,
        volume: 100,
    };
    *vendor.extra_bars.lock().unwrap() = vec![recent(day(5)), recent(day(4)), recent(day(3))];
    let reports = chain
        .update_daily(&["NEW".into(), "bad symbol!".into()])
        .await;
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (
            reports[0].symbol.as_str(),
            reports[0].inserted,
            reports[0].error.as_deref()
        ),
        ("NEW", 3, None)
    );
    assert!(reports[1].error.as_deref().unwrap().contains("bad symbol"));
    assert_eq!(
        vendor.bar_requests.lock().unwrap()[0],
        (day(10), today),
        "lookback for a new symbol"
    );

    // Days up to yesterday are final and known; today is asked again.
    vendor.extra_bars.lock().unwrap().push(recent(today));
    let next = chain.update_daily(&["NEW".into()]).await;
    assert_eq!((next[0].inserted, next[0].ranges_fetched), (1, 1));
    assert_eq!(
        vendor.bar_requests.lock().unwrap()[1],
        (today, today),
        "only what was never fetched"
    );
}

#[tokio::test]
async fn ingestion_needs_the_store() {
    init();
    let chain = ProviderChain::builder()
        .provider(ScriptedProvider::new("v", vec![]), fast_policy())
        .build()
        .unwrap();
    assert!(matches!(
        chain
            .backfill("X", date(2020, 1, 1), date(2020, 1, 2))
            .await
            .unwrap_err(),
        MarketError::Config(_)
    ));
    assert!(matches!(
        chain
            .backfill("X", date(2020, 1, 2), date(2020, 1, 1))
            .await
            .unwrap_err(),
        MarketError::InvalidInput(_)
    ));
}
