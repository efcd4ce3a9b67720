//! Small cases: documented values for degenerate input, errors, helpers.

use chrono::NaiveDate;
use rampart_analytics::conventions::{Conventions, DownsideDenominator};
use rampart_analytics::risk::{MonteCarlo, MonteCarloModel};
use rampart_analytics::*;

#[test]
fn normal_quantile_matches_scipy() {
    for (p, z) in [
        (0.05, -1.6448536269514729),
        (0.01, -2.3263478740408408),
        (1e-10, -6.361340902404056),
        (0.975, 1.959963984540054),
        (0.3, -0.5244005127080409),
        (1e-300, -37.0470962993612),
    ] {
        let got = normal::quantile(p);
        assert!((got - z).abs() <= 2e-15 * z.abs(), "{p}: {got} vs {z}");
    }
    assert_eq!(normal::quantile(0.5), 0.0);
    assert!(normal::quantile(-0.1).is_nan());
    assert_eq!(normal::quantile(0.0), f64::NEG_INFINITY);
}

#[test]
fn empty_and_all_nan_inputs_give_empyricals_values() {
    let empty: [f64; 0] = [];
    let nan = [f64::NAN, f64::NAN, f64::NAN];
    let p = Period::Daily;
    for (name, x) in [
        ("cum_returns_final", cum_returns_final(&empty)),
        ("annual_return", annual_return(&empty, p)),
        ("annual_volatility", annual_volatility(&empty, p)),
        ("sharpe", sharpe_ratio(&empty, 0.0, p)),
        ("sortino", sortino_ratio(&empty, 0.0, p)),
        ("downside", downside_risk(&empty, 0.0, p)),
        ("mdd", max_drawdown(&empty)),
        ("calmar", calmar_ratio(&empty, p)),
        ("omega", omega_ratio(&empty, 0.0, 0.0, p)),
        ("tail", tail_ratio(&empty)),
        ("stability", stability_of_timeseries(&empty)),
        ("var", value_at_risk(&empty, 0.05)),
        ("cvar", conditional_value_at_risk(&empty, 0.05)),
        ("gaussian", gaussian_value_at_risk(&empty, 0.05)),
        ("cf", cornish_fisher_value_at_risk(&empty, 0.05)),
        ("sharpe nan", sharpe_ratio(&nan, 0.0, p)),
        ("vol nan", annual_volatility(&nan, p)),
        ("tail nan", tail_ratio(&nan)),
        ("var nan", value_at_risk(&nan, 0.05)),
        ("cvar nan", conditional_value_at_risk(&nan, 0.05)),
        ("stability nan", stability_of_timeseries(&nan)),
    ] {
        assert!(x.is_nan(), "{name} = {x}");
    }
    // empyrical's nanprod: all-NaN compounds to zero return, not NaN.
    assert_eq!(cum_returns_final(&nan), 0.0);
    assert_eq!(annual_return(&nan, p), 0.0);
    assert_eq!(max_drawdown(&nan), 0.0);
    assert!(cum_returns(&empty).is_empty());
    assert!(simple_returns(&[1.0]).is_empty());
    assert_eq!(max_drawdown_details(&empty), Err(AnalyticsError::Empty));
}

#[test]
fn zero_volatility_follows_empyrical() {
    let flat = [0.001; 10];
    // Constant series: s.d. is exactly 0, so Sharpe is +inf.
    assert_eq!(sharpe_ratio(&flat, 0.0, Period::Daily), f64::INFINITY);
    assert!(sharpe_ratio(&[0.0; 10], 0.0, Period::Daily).is_nan());
    assert_eq!(annual_volatility(&flat, Period::Daily), 0.0);
    // Nothing below target: Sortino is +inf, Omega NaN.
    assert_eq!(sortino_ratio(&flat, 0.0, Period::Daily), f64::INFINITY);
    assert!(omega_ratio(&flat, 0.0, 0.0, Period::Daily).is_nan());
    // No drawdown: Calmar NaN.
    assert!(calmar_ratio(&flat, Period::Daily).is_nan());
    // Constant benchmark: beta NaN.
    assert!(beta(&[0.01, 0.02, 0.03], &[0.01; 3]).unwrap().is_nan());
    let details = max_drawdown_details(&flat).unwrap();
    assert_eq!(
        (details.peak, details.trough, details.recovery),
        (None, None, None)
    );
}

#[test]
fn infinities_do_not_panic() {
    let r = [0.01, f64::INFINITY, -0.02, f64::NEG_INFINITY];
    let _ = sharpe_ratio(&r, 0.0, Period::Daily);
    let _ = max_drawdown(&r);
    let _ = value_at_risk(&r, 0.05);
    let _ = stability_of_timeseries(&r);
    let _ = cornish_fisher_value_at_risk(&r, 0.05);
}

#[test]
fn mismatched_lengths_are_errors() {
    let e = AnalyticsError::LengthMismatch { left: 2, right: 3 };
    assert_eq!(beta(&[0.1, 0.2], &[0.1, 0.2, 0.3]), Err(e.clone()));
    assert_eq!(
        alpha_beta(&[0.1, 0.2], &[0.1, 0.2, 0.3], 0.0, Period::Daily),
        Err(e.clone())
    );
    assert_eq!(excess_sharpe(&[0.1, 0.2], &[0.1, 0.2, 0.3]), Err(e.clone()));
    assert_eq!(
        rolling::rolling_beta(&[0.1, 0.2], &[0.1, 0.2, 0.3], 2),
        Err(e.clone())
    );
    assert_eq!(correlation_matrix(&[&[0.1, 0.2], &[0.1, 0.2, 0.3]]), Err(e));
    assert!(matches!(
        rolling::rolling_volatility(&[0.1], 0, Period::Daily),
        Err(AnalyticsError::InvalidParameter { name: "window", .. })
    ));
}

#[test]
fn series_checks_dates() {
    let d = |day| NaiveDate::from_ymd_opt(2024, 1, day).unwrap();
    assert_eq!(
        Series::new(vec![d(1), d(1)], vec![1.0, 2.0]),
        Err(AnalyticsError::NonIncreasingDates { index: 1 })
    );
    assert_eq!(
        Series::new(vec![d(1)], vec![1.0, 2.0]),
        Err(AnalyticsError::LengthMismatch { left: 1, right: 2 })
    );
    let returns = Series::new(vec![d(2), d(3), d(4), d(5)], vec![0.1, -0.5, 0.2, 0.9]).unwrap();
    let dd = returns.max_drawdown_details().unwrap();
    assert_eq!(dd.peak, Some(d(2)));
    assert_eq!(dd.trough, Some(d(3)));
    assert_eq!(dd.recovery, Some(d(5)));
    assert!((dd.max_drawdown - -0.5).abs() < 1e-15);
    let calendar = Conventions {
        cagr_years: conventions::CagrYears::CalendarDays(365.0),
        ..Conventions::empyrical()
    };
    let cagr = returns.annual_return(Period::Daily, &calendar);
    let growth: f64 = 1.1 * 0.5 * 1.2 * 1.9;
    assert!((cagr - (growth.powf(365.0 / 3.0) - 1.0)).abs() < 1e-9 * cagr.abs());
}

#[test]
fn period_parsing() {
    assert_eq!("monthly".parse::<Period>().unwrap(), Period::Monthly);
    assert_eq!("252".parse::<Period>().unwrap(), Period::Custom(252.0));
    assert!("-1".parse::<Period>().is_err());
    assert!("hourly".parse::<Period>().is_err());
}

/// A deterministic, roughly normal sample: mean 0.05 %, s.d. 1 %.
fn normal_sample() -> Vec<f64> {
    (1..=999)
        .map(|i| 0.0005 + 0.01 * normal::quantile(i as f64 / 1000.0))
        .collect()
}

/// `simulations` paths of the normal model, seed 7.
fn normal_model(simulations: usize) -> MonteCarlo {
    MonteCarlo {
        simulations,
        seed: 7,
        model: MonteCarloModel::Normal,
    }
}

#[test]
fn monte_carlo_is_reproducible_and_converges() {
    let r = normal_sample();
    let mc = normal_model(200_000);
    let a = monte_carlo_value_at_risk(&r, 0.05, &mc);
    let b = monte_carlo_value_at_risk(&r, 0.05, &mc);
    assert_eq!(a.0.to_bits(), b.0.to_bits());
    assert_eq!(a.1.to_bits(), b.1.to_bits());
    let other = monte_carlo_value_at_risk(&r, 0.05, &MonteCarlo { seed: 8, ..mc });
    assert_ne!(a.0.to_bits(), other.0.to_bits());
    let g = gaussian_value_at_risk(&r, 0.05);
    assert!((a.0 - g).abs() < 0.01 * g.abs(), "{} vs {g}", a.0);
    let es = gaussian_conditional_value_at_risk(&r, 0.05);
    assert!((a.1 - es).abs() < 0.01 * es.abs(), "{} vs {es}", a.1);
    let boot = monte_carlo_value_at_risk(
        &r,
        0.05,
        &MonteCarlo {
            model: MonteCarloModel::Bootstrap,
            ..mc
        },
    );
    let hist = value_at_risk(&r, 0.05);
    assert!(
        (boot.0 - hist).abs() < 0.02 * hist.abs(),
        "{} vs {hist}",
        boot.0
    );
    assert!(monte_carlo_value_at_risk(&[0.1], 0.05, &mc).0.is_nan());
}

#[test]
fn monte_carlo_bands_compound_reproducibly() {
    use rampart_analytics::risk::monte_carlo_bands;
    // Bootstrap from a sample whose every return is 1 %: each path is
    // 1.01^t − 1 exactly, so every percentile is too.
    let flat = MonteCarlo {
        simulations: 200,
        seed: 1,
        model: MonteCarloModel::Bootstrap,
    };
    let out = monte_carlo_bands(&[0.01, 0.01, f64::NAN], 0.05, 12, &flat).unwrap();
    assert_eq!(out.bands.len(), 12);
    for b in &out.bands {
        let exact = 1.01f64.powi(b.step as i32) - 1.0;
        for q in [b.p5, b.p25, b.p50, b.p75, b.p95] {
            assert!((q - exact).abs() < 1e-12, "step {}: {q} vs {exact}", b.step);
        }
    }
    assert!((out.horizon_var - (1.01f64.powi(12) - 1.0)).abs() < 1e-12);

    // Normal model: same seed, same bands; another seed, other bands;
    // percentiles ordered; the median near (1 + mean)^h − 1; spread growing.
    let r = normal_sample();
    let mc = normal_model(20_000);
    let a = monte_carlo_bands(&r, 0.05, 21, &mc).unwrap();
    let b = monte_carlo_bands(&r, 0.05, 21, &mc).unwrap();
    assert_eq!(a, b);
    let c = monte_carlo_bands(&r, 0.05, 21, &MonteCarlo { seed: 8, ..mc }).unwrap();
    assert_ne!(a.bands[20].p50.to_bits(), c.bands[20].p50.to_bits());
    for band in &a.bands {
        assert!(
            band.p5 < band.p25 && band.p25 < band.p50 && band.p50 < band.p75 && band.p75 < band.p95
        );
    }
    assert!(a.bands[20].p95 - a.bands[20].p5 > a.bands[0].p95 - a.bands[0].p5);
    let median = a.bands[20].p50;
    assert!(
        (median - (1.0005f64.powi(21) - 1.0)).abs() < 0.003,
        "{median}"
    );
    // Daily mean 0.05 %, s.d. 1 % over 21 days: the 5 % tail of the
    // cumulative return is near 21 × 0.05 % − 1.645 × √21 × 1 % ≈ −6.5 %.
    let normal_tail = 21.0 * 0.0005 - 1.645 * 21f64.sqrt() * 0.01;
    assert!(
        (a.horizon_var - normal_tail).abs() < 0.005,
        "{} vs {normal_tail}",
        a.horizon_var
    );
    assert!(a.horizon_cvar < a.horizon_var);
    // Refusals.
    assert!(monte_carlo_bands(&[0.1], 0.05, 5, &mc).is_err());
    assert!(monte_carlo_bands(&r, 0.05, 0, &mc).is_err());
    assert!(monte_carlo_bands(&r, 1.5, 5, &mc).is_err());
    assert!(
        monte_carlo_bands(
            &r,
            0.05,
            1_000,
            &MonteCarlo {
                simulations: 10_000,
                ..mc
            }
        )
        .is_err()
    );
}

#[test]
fn downside_subset_denominator() {
    let r = [0.02, -0.01, 0.03, -0.03];
    let subset = Conventions {
        downside_denominator: DownsideDenominator::BelowTarget,
        ..Conventions::empyrical()
    };
    let full = downside_risk(&r, 0.0, Period::Custom(1.0));
    let sub = performance::downside_risk_with(&r, 0.0, Period::Custom(1.0), &subset);
    assert!((full - (0.001f64 / 4.0).sqrt()).abs() < 1e-15);
    assert!((sub - (0.001f64 / 2.0).sqrt()).abs() < 1e-15);
}

#[test]
fn log_and_simple_returns() {
    let p = [100.0, 110.0, 99.0];
    let s = simple_returns(&p);
    let l = log_returns(&p);
    assert!((s[0] - 0.1).abs() < 1e-15 && (s[1] - -0.1).abs() < 1e-15);
    assert!((l[0] - 1.1f64.ln()).abs() < 1e-15);
    let d = |m, day| NaiveDate::from_ymd_opt(2023, m, day).unwrap();
    let r = Series::new(
        vec![
            d(12, 29),
            d(1, 1).with_year_2024(),
            d(1, 2).with_year_2024(),
        ],
        vec![0.1, 0.1, f64::NAN],
    )
    .unwrap();
    let yearly = r.aggregate_returns(Frequency::Yearly);
    assert_eq!(yearly.len(), 2);
    assert!((yearly.values()[1] - 0.1).abs() < 1e-15);
}

trait WithYear {
    fn with_year_2024(self) -> NaiveDate;
}

impl WithYear for NaiveDate {
    fn with_year_2024(self) -> NaiveDate {
        use chrono::Datelike;
        self.with_year(2024).unwrap()
    }
}
