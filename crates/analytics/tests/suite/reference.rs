//! Every metric against empyrical (and scipy/pandas) on real prices:
//! see tests/data/README.md for how the expected values were produced.

use std::fs::File;

use rampart_analytics::conventions::{Conventions, CornishFisherMoments};
use rampart_analytics::report::read_table;
use rampart_analytics::rolling::{
    rolling_beta, rolling_max_drawdown, rolling_sharpe, rolling_volatility,
};
use rampart_analytics::*;
use serde_json::Value;

use super::{assert_close, data_path, json_f64, json_vec};

fn reference() -> Value {
    let file = File::open(data_path("empyrical_reference.json")).unwrap();
    serde_json::from_reader(file).unwrap()
}

fn assert_all_close(what: &str, actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert_close(&format!("{what}[{i}]"), a, e);
    }
}

struct Dataset {
    period: Period,
    risk_free: f64,
    required_return: f64,
    window: usize,
    series: Vec<(String, Series, Vec<f64>)>,
    expected: Value,
}

fn datasets() -> Vec<Dataset> {
    let reference = reference();
    reference["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ds| {
            let table =
                read_table(File::open(data_path(ds["file"].as_str().unwrap())).unwrap()).unwrap();
            let series = table
                .names
                .iter()
                .zip(&table.columns)
                .map(|(name, prices)| {
                    let prices = Series::new(table.dates.clone(), prices.clone()).unwrap();
                    let log = log_returns(prices.values());
                    (name.clone(), prices.simple_returns(), log)
                })
                .collect();
            Dataset {
                period: ds["period"].as_str().unwrap().parse().unwrap(),
                risk_free: ds["risk_free"].as_f64().unwrap(),
                required_return: ds["required_return"].as_f64().unwrap(),
                window: ds["window"].as_u64().unwrap() as usize,
                series,
                expected: ds.clone(),
            }
        })
        .collect()
}

#[test]
fn every_metric_matches_empyrical() {
    let mut checked = 0usize;
    for ds in datasets() {
        let bench_name = ds.expected["benchmark"].as_str().unwrap();
        let bench = ds
            .series
            .iter()
            .find(|(n, _, _)| n == bench_name)
            .unwrap()
            .1
            .clone();
        let b = bench.values();
        let (p, rf, req, w) = (ds.period, ds.risk_free, ds.required_return, ds.window);
        for (name, returns, log) in &ds.series {
            let exp = &ds.expected["series"][name];
            let m = &exp["metrics"];
            let r = returns.values();
            let e = |k: &str| json_f64(&m[k]);
            let c = |k: &str, actual: f64| {
                assert_close(&format!("{name}.{k}"), actual, e(k));
            };
            assert_all_close(
                &format!("{name}.simple_returns"),
                r,
                &json_vec(&exp["simple_returns"]),
            );
            assert_all_close(
                &format!("{name}.log_returns"),
                log,
                &json_vec(&exp["log_returns"]),
            );
            assert_all_close(
                &format!("{name}.cum_returns"),
                &cum_returns(r),
                &json_vec(&m["cum_returns"]),
            );
            c("cum_returns_final", cum_returns_final(r));
            c("annual_return", annual_return(r, p));
            c("annual_volatility", annual_volatility(r, p));
            c("sharpe_ratio", sharpe_ratio(r, 0.0, p));
            c("sharpe_ratio_rf", sharpe_ratio(r, rf, p));
            c("sortino_ratio", sortino_ratio(r, 0.0, p));
            c("sortino_ratio_req", sortino_ratio(r, req, p));
            c("downside_risk", downside_risk(r, 0.0, p));
            c("downside_risk_req", downside_risk(r, req, p));
            c("max_drawdown", max_drawdown(r));
            c("calmar_ratio", calmar_ratio(r, p));
            c("omega_ratio", omega_ratio(r, 0.0, 0.0, p));
            c("omega_ratio_req", omega_ratio(r, rf, 0.05, p));
            c("tail_ratio", tail_ratio(r));
            c("stability_of_timeseries", stability_of_timeseries(r));
            let (a, be) = alpha_beta(r, b, 0.0, p).unwrap();
            c("alpha", a);
            c("beta", be);
            let (a, be) = alpha_beta(r, b, rf, p).unwrap();
            c("alpha_rf", a);
            c("beta_rf", be);
            c("excess_sharpe", excess_sharpe(r, b).unwrap());
            c("value_at_risk", value_at_risk(r, 0.05));
            c("value_at_risk_01", value_at_risk(r, 0.01));
            c(
                "conditional_value_at_risk",
                conditional_value_at_risk(r, 0.05),
            );
            c(
                "conditional_value_at_risk_01",
                conditional_value_at_risk(r, 0.01),
            );
            c("skew", skew(r));
            c("kurtosis", kurtosis(r));
            c("gaussian_value_at_risk", gaussian_value_at_risk(r, 0.05));
            c(
                "gaussian_conditional_value_at_risk",
                gaussian_conditional_value_at_risk(r, 0.05),
            );
            c(
                "cornish_fisher_value_at_risk",
                cornish_fisher_value_at_risk(r, 0.05),
            );
            let pa = Conventions::performance_analytics();
            c(
                "cornish_fisher_value_at_risk_pa",
                risk::cornish_fisher_value_at_risk_with(r, 0.05, &pa),
            );
            let sample = Conventions {
                cornish_fisher: CornishFisherMoments::Sample,
                ..Conventions::empyrical()
            };
            c(
                "cornish_fisher_value_at_risk_sample",
                risk::cornish_fisher_value_at_risk_with(r, 0.05, &sample),
            );
            assert_all_close(
                &format!("{name}.rolling_volatility"),
                &rolling_volatility(r, w, p).unwrap(),
                &json_vec(&m["rolling_volatility"]),
            );
            assert_all_close(
                &format!("{name}.rolling_sharpe"),
                &rolling_sharpe(r, w, 0.0, p).unwrap(),
                &json_vec(&m["rolling_sharpe"]),
            );
            assert_all_close(
                &format!("{name}.rolling_beta"),
                &rolling_beta(r, b, w).unwrap(),
                &json_vec(&m["rolling_beta"]),
            );
            assert_all_close(
                &format!("{name}.rolling_max_drawdown"),
                &rolling_max_drawdown(r, w).unwrap(),
                &json_vec(&m["rolling_max_drawdown"]),
            );
            for (key, f) in [
                ("aggregate_weekly", Frequency::Weekly),
                ("aggregate_monthly", Frequency::Monthly),
                ("aggregate_quarterly", Frequency::Quarterly),
                ("aggregate_yearly", Frequency::Yearly),
            ] {
                assert_all_close(
                    &format!("{name}.{key}"),
                    returns.aggregate_returns(f).values(),
                    &json_vec(&m[key]),
                );
            }
            let dd = max_drawdown_details(r).unwrap();
            let idx = |k: &str| exp["drawdown_details"][k].as_u64().map(|v| v as usize);
            assert_eq!(dd.peak, idx("peak"), "{name} peak");
            assert_eq!(dd.trough, idx("trough"), "{name} trough");
            assert_eq!(dd.recovery, idx("recovery"), "{name} recovery");
            checked += 1;
        }
        // Correlation matrix (pandas DataFrame.corr, pairwise complete).
        let cols: Vec<&[f64]> = ds.series.iter().map(|(_, s, _)| s.values()).collect();
        let names: Vec<&str> = ds.series.iter().map(|(n, _, _)| n.as_str()).collect();
        let expected_names: Vec<&str> = ds.expected["correlation"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names, expected_names);
        assert_all_close(
            "correlation",
            &correlation_matrix(&cols).unwrap(),
            &json_vec(&ds.expected["correlation"]["matrix"]),
        );
    }
    assert_eq!(checked, 7, "five monthly stocks and two daily indices");
}

#[test]
fn batch_metric_set_matches_the_single_functions() {
    use rampart_analytics::metrics::{MetricOptions, compute_metrics, compute_metrics_batch};
    for ds in datasets() {
        let cols: Vec<Vec<f64>> = ds
            .series
            .iter()
            .map(|(_, s, _)| s.values().to_vec())
            .collect();
        let bench = cols[0].clone();
        let options = MetricOptions {
            period: ds.period,
            risk_free: ds.risk_free,
            required_return: ds.required_return,
            ..MetricOptions::default()
        };
        let batch = compute_metrics_batch(&cols, Some(&bench), &options).unwrap();
        for (r, set) in cols.iter().zip(&batch) {
            let single = compute_metrics(r, Some(&bench), &options).unwrap();
            for ((k, a), (_, b)) in set.entries().iter().zip(single.entries()) {
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "{k}"
                );
            }
            let p = ds.period;
            assert_close("sharpe", set.sharpe_ratio, sharpe_ratio(r, ds.risk_free, p));
            assert_close(
                "sortino",
                set.sortino_ratio,
                sortino_ratio(r, ds.required_return, p),
            );
            assert_close("tail", set.tail_ratio, tail_ratio(r));
            assert_close("var", set.value_at_risk, value_at_risk(r, 0.05));
            assert_close(
                "cvar",
                set.conditional_value_at_risk,
                conditional_value_at_risk(r, 0.05),
            );
            assert_close(
                "stability",
                set.stability_of_timeseries,
                stability_of_timeseries(r),
            );
            assert_close("calmar", set.calmar_ratio, calmar_ratio(r, p));
            assert_close(
                "omega",
                set.omega_ratio,
                omega_ratio(r, ds.risk_free, ds.required_return, p),
            );
            assert_close("beta", set.beta, beta(r, &bench).unwrap());
            assert_close("skew", set.skew, skew(r));
            assert_close("kurtosis", set.kurtosis, kurtosis(r));
            assert_close("cum", set.cum_returns_final, cum_returns_final(r));
            assert_close("cagr", set.annual_return, annual_return(r, p));
            assert_close("vol", set.annual_volatility, annual_volatility(r, p));
            assert_close(
                "downside",
                set.downside_risk,
                downside_risk(r, ds.required_return, p),
            );
            assert_close("mdd", set.max_drawdown, max_drawdown(r));
            let (a, _) = alpha_beta(r, &bench, ds.risk_free, p).unwrap();
            assert_close("alpha", set.alpha, a);
            assert_close(
                "excess",
                set.excess_sharpe,
                excess_sharpe(r, &bench).unwrap(),
            );
            assert_close(
                "gaussian",
                set.gaussian_value_at_risk,
                gaussian_value_at_risk(r, 0.05),
            );
            assert_close(
                "gaussian es",
                set.gaussian_conditional_value_at_risk,
                gaussian_conditional_value_at_risk(r, 0.05),
            );
            assert_close(
                "cf",
                set.cornish_fisher_value_at_risk,
                cornish_fisher_value_at_risk(r, 0.05),
            );
        }
    }
}
