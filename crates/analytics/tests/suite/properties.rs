//! Invariants over random series (proptest).

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use rampart_analytics::cash_flow::{CashFlow, FlowTiming, Valuation, time_weighted_return, xirr};
use rampart_analytics::metrics::{MetricOptions, MetricSet, compute_metrics};
use rampart_analytics::rolling::*;
use rampart_analytics::*;

fn returns_strategy(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-0.99f64..1.0, 0..max_len)
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan())
        || a == b
        || (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
        || (a - b).abs() < 1e-13
}

/// (name, fused, single-function) for the daily metrics that both
/// agreement properties check: each field of `m` (the fused set of `r`
/// against `b` under `o`) next to the function computing it on its own.
fn single_function_pairs(
    m: &MetricSet,
    r: &[f64],
    b: &[f64],
    o: &MetricOptions,
) -> [(&'static str, f64, f64); 14] {
    let p = Period::Daily;
    let (rf, req) = (o.risk_free, o.required_return);
    let (a, be) = alpha_beta(r, b, rf, p).unwrap();
    [
        ("mdd", m.max_drawdown, max_drawdown(r)),
        ("cagr", m.annual_return, annual_return(r, p)),
        ("vol", m.annual_volatility, annual_volatility(r, p)),
        ("sharpe", m.sharpe_ratio, sharpe_ratio(r, rf, p)),
        ("sortino", m.sortino_ratio, sortino_ratio(r, req, p)),
        ("omega", m.omega_ratio, omega_ratio(r, rf, req, p)),
        ("var", m.value_at_risk, value_at_risk(r, 0.05)),
        (
            "cvar",
            m.conditional_value_at_risk,
            conditional_value_at_risk(r, 0.05),
        ),
        ("tail", m.tail_ratio, tail_ratio(r)),
        (
            "stability",
            m.stability_of_timeseries,
            stability_of_timeseries(r),
        ),
        ("alpha", m.alpha, a),
        ("beta", m.beta, be),
        ("excess", m.excess_sharpe, excess_sharpe(r, b).unwrap()),
        ("skew", m.skew, skew(r)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn drawdown_is_between_minus_one_and_zero(r in returns_strategy(300)) {
        let mdd = max_drawdown(&r);
        if r.is_empty() {
            prop_assert!(mdd.is_nan());
        } else {
            prop_assert!((-1.0..=0.0).contains(&mdd), "{mdd}");
        }
        for dd in drawdown_series(&r) {
            prop_assert!((-1.0..=0.0).contains(&dd));
        }
        if let Ok(details) = max_drawdown_details(&r) {
            prop_assert_eq!(details.max_drawdown.to_bits(), mdd.to_bits());
        }
    }

    #[test]
    fn cvar_is_at_most_var(r in prop::collection::vec(-0.5f64..0.5, 1..300), cutoff in 0.001f64..0.999) {
        let var = value_at_risk(&r, cutoff);
        let cvar = conditional_value_at_risk(&r, cutoff);
        prop_assert!(cvar <= var + 1e-15 * var.abs(), "cvar {cvar} > var {var}");
        let (mc_var, mc_cvar) = monte_carlo_value_at_risk(&r, cutoff, &risk::MonteCarlo { simulations: 500, ..Default::default() });
        if r.len() >= 2 {
            prop_assert!(mc_cvar <= mc_var + 1e-15 * mc_var.abs());
        }
    }

    #[test]
    fn twr_without_flows_is_the_compounded_return(values in prop::collection::vec(1.0f64..1000.0, 2..200)) {
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        let vals: Vec<Valuation> = values
            .iter()
            .enumerate()
            .map(|(i, &value)| Valuation { date: start + Days::new(i as u64), value, flow: 0.0 })
            .collect();
        let twr = time_weighted_return(&vals, FlowTiming::EndOfDay).unwrap();
        let compounded = values[values.len() - 1] / values[0] - 1.0;
        prop_assert!(rel_close(twr, compounded, 1e-9), "{twr} vs {compounded}");
        let returns = simple_returns(&values);
        prop_assert!(rel_close(twr, cum_returns_final(&returns), 1e-9));
    }

    #[test]
    fn rolling_windows_match_brute_force(r in prop::collection::vec(prop_oneof![9 => -0.2f64..0.2, 1 => Just(f64::NAN), 1 => Just(0.01)], 1..150),
                                         b in prop::collection::vec(-0.2f64..0.2, 150),
                                         window in 1usize..40) {
        let n = r.len();
        let b = &b[..n];
        let w = window.min(n);
        let vol = rolling_volatility(&r, window, Period::Daily).unwrap();
        let sharpe = rolling_sharpe(&r, window, 0.0, Period::Daily).unwrap();
        let beta_roll = rolling_beta(&r, b, window).unwrap();
        let mdd = rolling_max_drawdown(&r, window).unwrap();
        prop_assert_eq!(vol.len(), n - w + 1);
        for s in 0..=(n - w) {
            let win = &r[s..s + w];
            prop_assert!(rel_close(vol[s], annual_volatility(win, Period::Daily), 1e-9), "vol {} {} {}", s, vol[s], annual_volatility(win, Period::Daily));
            prop_assert!(rel_close(sharpe[s], sharpe_ratio(win, 0.0, Period::Daily), 1e-7), "sharpe {} {} {}", s, sharpe[s], sharpe_ratio(win, 0.0, Period::Daily));
            // empyrical's beta multiplies centred benchmark by *raw* returns, so
            // a constant-return window gives a rounding residue instead of 0.
            let brute = beta(win, &b[s..s + w]).unwrap();
            prop_assert!(rel_close(beta_roll[s], brute, 1e-8) || (beta_roll[s] - brute).abs() < 1e-10,
                "beta {} {} {}", s, beta_roll[s], brute);
            prop_assert!(rel_close(mdd[s], max_drawdown(win), 1e-9), "mdd {} {} {}", s, mdd[s], max_drawdown(win));
        }
    }

    #[test]
    fn metric_set_never_panics(r in prop::collection::vec(prop::num::f64::ANY, 0..60),
                               b in prop::collection::vec(prop::num::f64::ANY, 60)) {
        let options = MetricOptions { monte_carlo: Some(risk::MonteCarlo { simulations: 50, ..Default::default() }), ..MetricOptions::default() };
        let set = compute_metrics(&r, Some(&b[..r.len()]), &options).unwrap();
        let _ = set.entries();
        let _ = rolling_max_drawdown(&r, 5).unwrap();
        let _ = rolling_sharpe(&r, 5, 0.0, Period::Daily).unwrap();
        let _ = rolling_beta(&r, &b[..r.len()], 5).unwrap();
        let _ = correlation_matrix(&[&r, &b[..r.len()]]).unwrap();
        let _ = max_drawdown_details(&r);
    }

    #[test]
    fn xirr_recovers_the_rate_of_a_single_investment(rate in -0.9f64..3.0, days in 30u64..3000) {
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        let years = days as f64 / 365.0;
        let flows = [
            CashFlow { date: start, amount: -1000.0 },
            CashFlow { date: start + Days::new(days), amount: 1000.0 * (1.0 + rate).powf(years) },
        ];
        let r = xirr(&flows).unwrap();
        prop_assert!((r - rate).abs() < 1e-9 * (1.0 + rate.abs()), "{r} vs {rate}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The fused metric set agrees with the single-metric functions.
    #[test]
    fn metric_set_agrees_with_single_functions(
        r in prop::collection::vec(prop_oneof![12 => -0.3f64..0.3, 1 => Just(f64::NAN)], 0..200),
        b in prop::collection::vec(prop_oneof![12 => -0.3f64..0.3, 1 => Just(f64::NAN)], 200),
    ) {
        let b = &b[..r.len()];
        let o = MetricOptions { risk_free: 0.0001, required_return: 0.0002, ..MetricOptions::default() };
        let m = compute_metrics(&r, Some(b), &o).unwrap();
        for (name, got, want) in single_function_pairs(&m, &r, b, &o) {
            prop_assert!(rel_close(got, want, 1e-9) || (got - want).abs() < 1e-12, "{}: {} vs {}", name, got, want);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The NaN-free fast path of the fused metric set (vectorized passes,
    /// polynomial `ln_1p`, tail-filtered quantiles) agrees with the
    /// single-metric functions: daily-like returns with occasional large
    /// moves (beyond the polynomial's domain) and heavy tails (the quantile
    /// filter's fallback), every length around the lane width.
    #[test]
    fn nan_free_metric_set_agrees_with_single_functions(
        r in prop::collection::vec(prop_oneof![20 => -0.03f64..0.03, 2 => -0.12f64..0.12, 1 => -0.6f64..0.9], 0..700),
        b in prop::collection::vec(-0.03f64..0.03, 700),
        rf in 0.0f64..0.0005,
        req in -0.001f64..0.001,
    ) {
        let b = &b[..r.len()];
        let o = MetricOptions { risk_free: rf, required_return: req, ..MetricOptions::default() };
        let m = compute_metrics(&r, Some(b), &o).unwrap();
        let p = Period::Daily;
        let only_here = [
            ("cum", m.cum_returns_final, cum_returns_final(&r)),
            ("calmar", m.calmar_ratio, calmar_ratio(&r, p)),
            ("downside", m.downside_risk, downside_risk(&r, req, p)),
            ("gaussian", m.gaussian_value_at_risk, gaussian_value_at_risk(&r, 0.05)),
            ("cornish-fisher", m.cornish_fisher_value_at_risk, cornish_fisher_value_at_risk(&r, 0.05)),
            ("kurtosis", m.kurtosis, kurtosis(&r)),
        ];
        for (name, got, want) in single_function_pairs(&m, &r, b, &o).into_iter().chain(only_here) {
            prop_assert!(rel_close(got, want, 1e-9), "{} (n = {}): {} vs {}", name, r.len(), got, want);
        }
    }
}
