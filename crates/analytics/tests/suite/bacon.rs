//! Published reference values: the Bacon (2008) portfolio and a 7-point
//! sample, from quantstats' tests/data/reference_values.json (R
//! PerformanceAnalytics 2.1.0 where an R call exists). See tests/data/README.md.

use std::fs::File;

use rampart_analytics::conventions::Conventions;
use rampart_analytics::moments::CentralMoments;
use rampart_analytics::*;
use serde_json::Value;

use super::{assert_close, data_path, json_f64, json_vec};

#[test]
fn bacon_and_tiny_sample_reproduce_the_published_values() {
    let data: Value =
        serde_json::from_reader(File::open(data_path("bacon_reference.json")).unwrap()).unwrap();
    let mut checked = 0;
    for (fixture, spec) in data["fixtures"].as_object().unwrap() {
        let r = json_vec(&spec["returns"]);
        let p = Period::Custom(spec["periods"].as_f64().unwrap());
        let pa = Conventions::performance_analytics();
        for (metric, m) in data["metrics"].as_object().unwrap() {
            let expected = json_f64(&m["values"][fixture]);
            let actual = match metric.as_str() {
                "annual_volatility" => annual_volatility(&r, p),
                "annual_return" => annual_return(&r, p),
                "sharpe_ratio" => sharpe_ratio(&r, 0.0, p),
                "sortino_ratio" => sortino_ratio(&r, 0.0, p),
                "max_drawdown" => max_drawdown(&r),
                "calmar_ratio" => calmar_ratio(&r, p),
                "gaussian_value_at_risk" => gaussian_value_at_risk(&r, 0.05),
                "gaussian_conditional_value_at_risk" => {
                    gaussian_conditional_value_at_risk(&r, 0.05)
                }
                // PerformanceAnalytics' Omega takes a per-period threshold L.
                "omega_ratio" => performance::omega_ratio_with(&r, 0.0, 0.0, p, &pa),
                "skew_sample" => CentralMoments::of(&r).sample_skew(),
                "kurtosis_sample" => CentralMoments::of(&r).sample_excess_kurtosis(),
                other => panic!("no check for {other}"),
            };
            assert_close(&format!("{fixture}.{metric}"), actual, expected);
            checked += 1;
        }
    }
    assert_eq!(checked, 22);
}

#[test]
fn performance_analytics_profile_differs_where_documented() {
    let r = [
        0.003, 0.026, 0.011, -0.01, 0.015, 0.025, 0.016, 0.067, -0.014, 0.04, -0.005, 0.081,
    ];
    let p = Period::Monthly;
    let pa = Conventions::performance_analytics();
    // SortinoRatio is per period: empyrical's value over sqrt(12).
    let emp = sortino_ratio(&r, 0.0, p);
    let per_period = performance::sortino_ratio_with(&r, 0.0, p, &pa);
    assert_close("sortino", per_period, emp / 12f64.sqrt());
    // SharpeRatio.annualized(geometric = TRUE): CAGR / annualized sd.
    let geo = performance::sharpe_ratio_with(&r, 0.0, p, &pa);
    assert_close(
        "sharpe geometric",
        geo,
        annual_return(&r, p) / annual_volatility(&r, p),
    );
    // CAPM.alpha is the per-period intercept.
    let b = [
        0.002, 0.025, 0.018, -0.011, 0.014, 0.018, 0.014, 0.065, -0.015, 0.042, -0.006, 0.083,
    ];
    let (a_pp, beta_pa) = performance::alpha_beta_with(&r, &b, 0.0, p, &pa).unwrap();
    let (a_emp, beta_emp) = alpha_beta(&r, &b, 0.0, p).unwrap();
    assert_eq!(beta_pa, beta_emp);
    assert_close("alpha", (1.0 + a_pp).powi(12) - 1.0, a_emp);
    // Omega: L per period vs an annual required return.
    let annual = omega_ratio(&r, 0.0, 0.1, p);
    let per_period = performance::omega_ratio_with(&r, 0.0, 1.1f64.powf(1.0 / 12.0) - 1.0, p, &pa);
    assert_close("omega", per_period, annual);
}
