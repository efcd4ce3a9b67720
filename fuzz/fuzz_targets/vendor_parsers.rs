//! Every vendor response parser of `rampart-market` (Alpaca, Alpha Vantage,
//! Finnhub, Yahoo chart/search, Stooq CSV) on the same arbitrary body, through
//! the `fuzzing` feature's entry points (the functions the adapters call
//! after a successful HTTP request; no network).
//!
//! Beyond "no panic": bars of the adapters that filter by date stay inside
//! the requested range (Alpha Vantage's also sorted and unique), quotes are
//! only for requested symbols, news never exceeds the requested limit, Alpaca
//! search gives at most 20 matches, and every error formats.
#![no_main]

use std::sync::LazyLock;

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use rampart_market::fuzzing::{Parsed, Parsers, Request, Vendor};

static PARSERS: LazyLock<Parsers> = LazyLock::new(|| {
    // reqwest is built with `rustls-no-provider`, as in the server.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Parsers::new().expect("vendor adapters build without network")
});

fn check(vendor: Vendor, request: &Request, parsed: &Parsed) {
    if let Some(Ok(quotes)) = &parsed.quotes {
        for q in quotes {
            assert!(
                request.symbols.contains(&q.symbol),
                "{vendor:?}: quote for unrequested {:?}",
                q.symbol
            );
        }
        if vendor == Vendor::Stooq {
            let now = chrono::Utc::now();
            assert!(
                quotes.iter().all(|q| q.as_of <= now),
                "quote from the future"
            );
        }
    }
    if let Some(Ok(bars)) = &parsed.bars {
        if vendor.filters_bar_range() {
            for b in bars {
                assert!(
                    b.date >= request.from && b.date <= request.to,
                    "{vendor:?}: bar of {} outside {}..={}",
                    b.date,
                    request.from,
                    request.to
                );
            }
        }
        if vendor == Vendor::AlphaVantage {
            assert!(
                bars.windows(2).all(|w| w[0].date < w[1].date),
                "unsorted bars"
            );
        }
    }
    if let Some(Ok(news)) = &parsed.news
        && vendor != Vendor::Alpaca
    {
        // Alpaca is asked for at most `limit`; the others are cut here.
        assert!(
            news.len() <= request.limit,
            "{vendor:?}: {} news",
            news.len()
        );
    }
    if vendor == Vendor::Alpaca
        && let Some(Ok(hits)) = &parsed.search
    {
        assert!(hits.len() <= 20);
    }
    // Every error must format (it ends up in logs and API problems).
    let errors = [
        parsed.quotes.as_ref().and_then(|r| r.as_ref().err()),
        parsed.bars.as_ref().and_then(|r| r.as_ref().err()),
        parsed.search.as_ref().and_then(|r| r.as_ref().err()),
        parsed.fundamentals.as_ref().and_then(|r| r.as_ref().err()),
        parsed.news.as_ref().and_then(|r| r.as_ref().err()),
        parsed.error.as_ref(),
    ];
    for e in errors.into_iter().flatten() {
        assert!(!e.to_string().is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let parsers = &*PARSERS;
    let body = String::from_utf8_lossy(data);
    let (Some(from), Some(to)) = (
        NaiveDate::from_ymd_opt(2024, 1, 2),
        NaiveDate::from_ymd_opt(2024, 12, 31),
    ) else {
        return;
    };
    let request = Request {
        symbols: vec!["AAPL".into(), "MSFT".into(), "^GSPC".into()],
        from,
        to,
        query: "apple".into(),
        limit: 1 + data.len() % 50,
    };
    for vendor in Vendor::ALL {
        let parsed = parsers.parse(vendor, &body, &request);
        check(vendor, &request, &parsed);
    }
});
