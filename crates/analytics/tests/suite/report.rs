//! The CSV → JSON report behind `rampart analytics`.

use std::fs::File;

use rampart_analytics::AnalyticsError;
use rampart_analytics::Period;
use rampart_analytics::metrics::MetricOptions;
use rampart_analytics::report::{InputKind, ReportOptions, run_csv};
use serde_json::Value;

use super::{assert_close, data_path, json_f64};

const METRICS: [&str; 23] = [
    "cum_returns_final",
    "annual_return",
    "annual_volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "downside_risk",
    "max_drawdown",
    "calmar_ratio",
    "omega_ratio",
    "tail_ratio",
    "stability_of_timeseries",
    "alpha",
    "beta",
    "excess_sharpe",
    "value_at_risk",
    "conditional_value_at_risk",
    "gaussian_value_at_risk",
    "gaussian_conditional_value_at_risk",
    "cornish_fisher_value_at_risk",
    "monte_carlo_value_at_risk",
    "monte_carlo_conditional_value_at_risk",
    "skew",
    "kurtosis",
];

/// The metrics of [`METRICS`] the reference file has no value for.
const NOT_IN_REFERENCE: [&str; 4] = [
    "omega_ratio",
    "gaussian_conditional_value_at_risk",
    "monte_carlo_value_at_risk",
    "monte_carlo_conditional_value_at_risk",
];

#[test]
fn report_on_real_prices_matches_the_reference_values() {
    let options = ReportOptions {
        input: InputKind::Prices,
        benchmark: Some("IBM".into()),
        metrics: MetricOptions {
            period: Period::Monthly,
            ..MetricOptions::default()
        },
    };
    let json = run_csv(
        File::open(data_path("stocks_monthly.csv")).unwrap(),
        &options,
    )
    .unwrap();
    let reference: Value =
        serde_json::from_reader(File::open(data_path("empyrical_reference.json")).unwrap())
            .unwrap();
    let expected = &reference["datasets"][0]["series"];
    let series = json["series"].as_object().unwrap();
    assert_eq!(series.len(), 5);
    for (name, entry) in series {
        let metrics = entry["metrics"].as_object().unwrap();
        // serde_json's key order depends on its features (the workspace
        // may enable `preserve_order`): compare as sets.
        let mut keys: Vec<&str> = metrics.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = METRICS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want, "{name}: metric names");
        for key in METRICS
            .into_iter()
            .filter(|key| !NOT_IN_REFERENCE.contains(key))
        {
            let e = json_f64(&expected[name]["metrics"][key]);
            assert_close(&format!("{name}.{key}"), json_f64(&metrics[key]), e);
        }
        // Monte Carlo is off by default: null.
        assert!(metrics["monte_carlo_value_at_risk"].is_null());
    }
    // GOOG has leading gaps: VaR is NaN (numpy propagates), reported as null.
    assert!(json["series"]["GOOG"]["metrics"]["value_at_risk"].is_null());
    assert!(json["series"]["IBM"]["metrics"]["excess_sharpe"].is_null());
}

#[test]
fn report_reads_returns_and_handles_gaps() {
    let csv = "date,a,b\n2024-01-31,0.01,\n2024-02-29,-0.02,0.01\n2024-03-31,0.03,NaN\n2024-04-30,0.005,-0.01\n";
    let options = ReportOptions {
        input: InputKind::Returns,
        benchmark: None,
        metrics: MetricOptions {
            period: Period::Monthly,
            ..MetricOptions::default()
        },
    };
    let json = run_csv(csv.as_bytes(), &options).unwrap();
    let a = &json["series"]["a"]["metrics"];
    let expected = 1.01 * 0.98 * 1.03 * 1.005 - 1.0;
    assert_close(
        "a.cum_returns_final",
        a["cum_returns_final"].as_f64().unwrap(),
        expected,
    );
    assert!(a["alpha"].is_null(), "no benchmark, no alpha");
    assert!(json["series"]["b"]["metrics"]["value_at_risk"].is_null());
    assert!(json["series"]["b"]["metrics"]["max_drawdown"].is_number());
}

#[test]
fn report_rejects_bad_input() {
    let csv = "date,a\n2024-01-02,1\n2024-01-01,2\n";
    let err = run_csv(csv.as_bytes(), &ReportOptions::default()).unwrap_err();
    assert_eq!(err, AnalyticsError::NonIncreasingDates { index: 1 });

    let csv = "date,a\n2024-01-01,x\n";
    assert!(matches!(
        run_csv(csv.as_bytes(), &ReportOptions::default()),
        Err(AnalyticsError::Parse { .. })
    ));

    let csv = "date,a\n2024-01-01,1\n2024-01-02,2\n";
    let options = ReportOptions {
        benchmark: Some("nope".into()),
        ..ReportOptions::default()
    };
    assert_eq!(
        run_csv(csv.as_bytes(), &options).unwrap_err(),
        AnalyticsError::UnknownColumn("nope".into())
    );

    let options = ReportOptions {
        metrics: MetricOptions {
            var_cutoff: 1.5,
            ..MetricOptions::default()
        },
        ..ReportOptions::default()
    };
    assert!(matches!(
        run_csv(csv.as_bytes(), &options),
        Err(AnalyticsError::InvalidParameter {
            name: "var_cutoff",
            ..
        })
    ));

    assert!(run_csv("date\n2024-01-01\n".as_bytes(), &ReportOptions::default()).is_err());
}

/// One account over 2024 (366 days): 1000 at the start, 100 paid in on
/// 1 July (day 182) with the value at 1150 after it, 1265 at the end.
const ACCOUNT: &str = "date,value,flow\n2024-01-01,1000,\n2024-07-01,1150,100\n2025-01-01,1265,\n";

#[test]
fn cash_flow_report_twr_dietz_and_xirr_by_hand() {
    use rampart_analytics::cash_flow::{CashFlow, FlowTiming, xnpv};
    use rampart_analytics::report::run_cash_flow_csv;

    let json = run_cash_flow_csv(ACCOUNT.as_bytes(), FlowTiming::EndOfDay).unwrap();
    // End of day: (1150 − 100)/1000 − 1 = 5 %, then 1265/1150 − 1 = 10 %: 1.05 × 1.10 − 1.
    assert_close("twr", json_f64(&json["twr"]), 0.155);
    // (1265 − 1000 − 100) / (1000 + 100 × 184/366).
    assert_close(
        "modified_dietz",
        json_f64(&json["modified_dietz"]),
        165.0 / (1000.0 + 100.0 * 184.0 / 366.0),
    );
    assert_eq!(json["start"], "2024-01-01");
    assert_eq!(json["end"], "2025-01-01");
    assert_eq!(json_f64(&json["net_flows"]), 100.0);
    // The XIRR is the rate at which the investor's flows are worth nothing today.
    let rate = json_f64(&json["xirr"]);
    let d = |y, m| chrono::NaiveDate::from_ymd_opt(y, m, 1).unwrap();
    let investor = [
        CashFlow {
            date: d(2024, 1),
            amount: -1000.0,
        },
        CashFlow {
            date: d(2024, 7),
            amount: -100.0,
        },
        CashFlow {
            date: d(2025, 1),
            amount: 1265.0,
        },
    ];
    assert!(xnpv(rate, &investor).abs() < 1e-6, "xnpv at {rate}");
    assert!(rate > 0.15 && rate < 0.17, "{rate}");

    // Start of day: the 100 earns the first leg: 1150/1100 × 1.10 − 1 = 15 %.
    let json = run_cash_flow_csv(ACCOUNT.as_bytes(), FlowTiming::StartOfDay).unwrap();
    assert_close("twr start of day", json_f64(&json["twr"]), 0.15);
}

#[test]
fn cash_flow_report_refuses_bad_accounts() {
    use rampart_analytics::cash_flow::FlowTiming;
    use rampart_analytics::report::run_cash_flow_csv;

    let err = run_cash_flow_csv(
        "date,nav\n2024-01-01,1\n2024-01-02,2\n".as_bytes(),
        FlowTiming::EndOfDay,
    )
    .unwrap_err();
    assert!(
        matches!(err, AnalyticsError::UnknownColumn(ref c) if c == "value"),
        "{err}"
    );
    let err = run_cash_flow_csv(
        "date,value\n2024-01-01,1\n".as_bytes(),
        FlowTiming::EndOfDay,
    )
    .unwrap_err();
    assert!(matches!(err, AnalyticsError::TooShort { .. }), "{err}");
    // Everything withdrawn before the end: no capital left to measure against.
    let err = run_cash_flow_csv(
        "date,value,flow\n2024-01-01,100,\n2024-01-02,0,-100\n2024-01-03,5,\n".as_bytes(),
        FlowTiming::EndOfDay,
    )
    .unwrap_err();
    assert!(
        matches!(err, AnalyticsError::NonPositiveCapital { .. }),
        "{err}"
    );
}
