//! Hand-worked time- and money-weighted return cases.

use chrono::NaiveDate;
use rampart_analytics::AnalyticsError;
use rampart_analytics::cash_flow::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn v(date: NaiveDate, value: f64, flow: f64) -> Valuation {
    Valuation { date, value, flow }
}

fn cf(date: NaiveDate, amount: f64) -> CashFlow {
    CashFlow { date, amount }
}

#[test]
fn twr_links_daily_sub_periods_around_flows() {
    // 100 -> 110 (+10%); 50 deposited, closes at 168; -> 176.4.
    let vals = [
        v(d(2024, 1, 1), 100.0, 0.0),
        v(d(2024, 1, 2), 110.0, 0.0),
        v(d(2024, 1, 3), 168.0, 50.0),
        v(d(2024, 1, 4), 176.4, 0.0),
    ];
    // Flow at the start of day 3: 168 / (110 + 50) = +5%; then +5%.
    let start = time_weighted_return(&vals, FlowTiming::StartOfDay).unwrap();
    assert!((start - (1.1 * 1.05 * 1.05 - 1.0)).abs() < 1e-12);
    // Flow at the end of day 3: (168 - 50) / 110 - 1 = 7.2727...%; then +5%.
    let end = time_weighted_return(&vals, FlowTiming::EndOfDay).unwrap();
    assert!((end - (1.1 * (118.0 / 110.0) * 1.05 - 1.0)).abs() < 1e-12);
    let subs = sub_period_returns(&vals, FlowTiming::EndOfDay).unwrap();
    assert_eq!(subs.len(), 3);
}

#[test]
fn twr_rejects_bad_input() {
    let one = [v(d(2024, 1, 1), 100.0, 0.0)];
    assert!(matches!(
        time_weighted_return(&one, FlowTiming::EndOfDay),
        Err(AnalyticsError::TooShort { .. })
    ));
    let backwards = [v(d(2024, 1, 2), 100.0, 0.0), v(d(2024, 1, 1), 100.0, 0.0)];
    assert!(matches!(
        time_weighted_return(&backwards, FlowTiming::EndOfDay),
        Err(AnalyticsError::NonIncreasingDates { index: 1 })
    ));
    let wiped = [v(d(2024, 1, 1), 0.0, 0.0), v(d(2024, 1, 2), 10.0, 10.0)];
    assert!(matches!(
        time_weighted_return(&wiped, FlowTiming::EndOfDay),
        Err(AnalyticsError::NonPositiveCapital { index: 1 })
    ));
    let nan = [v(d(2024, 1, 1), 1.0, 0.0), v(d(2024, 1, 2), f64::NAN, 0.0)];
    assert!(matches!(
        time_weighted_return(&nan, FlowTiming::EndOfDay),
        Err(AnalyticsError::NonFinite { index: 1 })
    ));
}

#[test]
fn modified_dietz_weights_flows_by_days_remaining() {
    // 30-day period, +20 on day 15: weight 0.5. (130 - 100 - 20) / (100 + 10).
    let r = modified_dietz(
        d(2024, 1, 1),
        100.0,
        d(2024, 1, 31),
        130.0,
        &[cf(d(2024, 1, 16), 20.0)],
    )
    .unwrap();
    assert!((r - 10.0 / 110.0).abs() < 1e-15);
    // No flows: simple return.
    let r = modified_dietz(d(2024, 1, 1), 100.0, d(2024, 12, 31), 90.0, &[]).unwrap();
    assert!((r - -0.1).abs() < 1e-15);
    // A flow outside the period is an error.
    assert!(
        modified_dietz(
            d(2024, 1, 1),
            100.0,
            d(2024, 1, 31),
            1.0,
            &[cf(d(2024, 2, 1), 1.0)]
        )
        .is_err()
    );
    // Withdrawing everything on day one leaves no capital.
    assert!(matches!(
        modified_dietz(
            d(2024, 1, 1),
            100.0,
            d(2024, 1, 31),
            0.0,
            &[cf(d(2024, 1, 1), -100.0)]
        ),
        Err(AnalyticsError::NonPositiveCapital { .. })
    ));
}

#[test]
fn xirr_matches_excel_documentation_example() {
    // Microsoft's XIRR help page example: Excel shows 0.373362535, within its
    // iteration tolerance; the exact root (scipy brentq at 1e-16) is
    // 0.37336253351883153.
    let flows = [
        cf(d(2008, 1, 1), -10000.0),
        cf(d(2008, 3, 1), 2750.0),
        cf(d(2008, 10, 30), 4250.0),
        cf(d(2009, 2, 15), 3250.0),
        cf(d(2009, 4, 1), 2750.0),
    ];
    let r = xirr(&flows).unwrap();
    assert!((r - 0.373362535).abs() < 5e-9, "{r}");
    assert!((r - 0.37336253351883153).abs() < 1e-14, "{r}");
    assert!(xnpv(r, &flows).abs() < 1e-8);
}

#[test]
fn xirr_hand_worked_cases() {
    // One year that is 366 days long: (1.1)^(365/366) - 1.
    let flows = [cf(d(2020, 1, 1), -1000.0), cf(d(2021, 1, 1), 1100.0)];
    let r = xirr(&flows).unwrap();
    assert!((r - (1.1f64.powf(365.0 / 366.0) - 1.0)).abs() < 1e-13);
    // Losing 99% in a year.
    let flows = [cf(d(2023, 1, 1), -100.0), cf(d(2024, 1, 1), 1.0)];
    assert!((xirr(&flows).unwrap() - -0.99).abs() < 1e-12);
    // Order of flows does not matter; the earliest date is the origin.
    let flows = [cf(d(2024, 1, 1), 1100.0), cf(d(2023, 1, 1), -1000.0)];
    assert!((xirr(&flows).unwrap() - 0.1).abs() < 1e-13);
}

#[test]
fn xirr_falls_back_to_bracketing_when_newton_fails() {
    let flows = [cf(d(2023, 1, 1), -1000.0), cf(d(2024, 1, 1), 1100.0)];
    let options = XirrOptions {
        guess: 5000.0,
        max_newton_iterations: 2,
        ..XirrOptions::default()
    };
    let r = xirr_with(&flows, &options).unwrap();
    assert!((r - 0.1).abs() < 1e-12, "{r}");
}

#[test]
fn xirr_reports_missing_roots() {
    let same_sign = [cf(d(2023, 1, 1), 100.0), cf(d(2024, 1, 1), 100.0)];
    assert_eq!(xirr(&same_sign), Err(AnalyticsError::NoSignChange));
    // NPV = 100 - 50y + 100y^2 with y = (1+r)^-1 has no real root.
    let no_root = [
        cf(d(2023, 1, 1), 100.0),
        cf(d(2024, 1, 1), -50.0),
        cf(d(2025, 1, 1), 100.0),
    ];
    assert_eq!(xirr(&no_root), Err(AnalyticsError::NoRoot));
    assert!(matches!(
        xirr(&[cf(d(2023, 1, 1), -1.0)]),
        Err(AnalyticsError::TooShort { .. })
    ));
}
