//! Return and risk-adjusted performance ratios.
//!
//! Each function documents the empyrical convention it follows; the `*_with`
//! variants take a [`Conventions`] to follow another library instead.
//! Degenerate input (too short, all NaN, zero dispersion) gives the value
//! empyrical gives — usually NaN, sometimes ±inf — and never panics.

use crate::conventions::{
    AlphaAnnualization, Conventions, DownsideDenominator, RatioScale, SharpeNumerator,
};
use crate::moments::{NeumaierSum, Summary};
use crate::returns::growth;
use crate::{AnalyticsError, Period};

/// Compound annual growth rate.
///
/// empyrical `annual_return`: `(∏(1 + r))^(p / n) − 1` where `n` counts every
/// observation, NaN included, and NaN returns are skipped in the product; NaN
/// for an empty series. A negative total wealth gives NaN (fractional power).
pub fn annual_return(returns: &[f64], period: Period) -> f64 {
    if returns.is_empty() {
        return f64::NAN;
    }
    let years = returns.len() as f64 / period.annualization();
    growth(returns).powf(1.0 / years) - 1.0
}

/// Annualized volatility: sample standard deviation (ddof = 1) × √p.
///
/// empyrical `annual_volatility`: NaN with fewer than 2 observations (NaN
/// included in that count) or fewer than 2 non-NaN values.
pub fn annual_volatility(returns: &[f64], period: Period) -> f64 {
    if returns.len() < 2 {
        return f64::NAN;
    }
    let s = Summary::of(returns.iter().copied());
    s.sample_std * period.annualization().powf(0.5)
}

/// Annualized Sharpe ratio with a per-period risk-free rate.
///
/// empyrical `sharpe_ratio`: `mean(r − rf) / sd(r − rf, ddof 1) × √p` over
/// non-NaN values; NaN for fewer than 2 observations; a constant series has
/// s.d. exactly 0, so its Sharpe is ±inf (or NaN when the mean is 0).
pub fn sharpe_ratio(returns: &[f64], risk_free: f64, period: Period) -> f64 {
    sharpe_ratio_with(returns, risk_free, period, &Conventions::EMPYRICAL)
}

/// [`sharpe_ratio`] under explicit conventions (risk-free interpretation,
/// arithmetic or geometric numerator).
pub fn sharpe_ratio_with(
    returns: &[f64],
    risk_free: f64,
    period: Period,
    conventions: &Conventions,
) -> f64 {
    if returns.len() < 2 {
        return f64::NAN;
    }
    let (ann, rf) = conventions.rates(risk_free, period);
    let s = Summary::of(returns.iter().map(|&r| r - rf));
    let std = s.zero_dispersion_std();
    match conventions.sharpe_numerator {
        SharpeNumerator::Arithmetic => s.mean / std * ann.sqrt(),
        SharpeNumerator::Geometric => {
            // PerformanceAnalytics drops NaN before counting observations.
            let years = s.count as f64 / ann;
            let excess_growth: f64 = returns
                .iter()
                .filter(|r| !r.is_nan())
                .map(|&r| 1.0 + (r - rf))
                .product();
            (excess_growth.powf(1.0 / years) - 1.0) / (std * ann.sqrt())
        }
    }
}

/// Annualized downside deviation below a per-period required return.
///
/// empyrical `downside_risk`: `√(mean(min(r − req, 0)²)) × √p`, the mean over
/// all non-NaN observations (returns above the target count as zero shortfall);
/// NaN for an empty series.
pub fn downside_risk(returns: &[f64], required_return: f64, period: Period) -> f64 {
    downside_risk_with(returns, required_return, period, &Conventions::EMPYRICAL)
}

/// [`downside_risk`] under explicit conventions (denominator; the result is
/// per period when `sortino_scale` is [`RatioScale::PerPeriod`]).
pub fn downside_risk_with(
    returns: &[f64],
    required_return: f64,
    period: Period,
    conventions: &Conventions,
) -> f64 {
    if returns.is_empty() {
        return f64::NAN;
    }
    let mut ss = NeumaierSum::default();
    let (mut all, mut below) = (0usize, 0usize);
    for &r in returns {
        let d = r - required_return;
        if d.is_nan() {
            continue;
        }
        all += 1;
        if d < 0.0 {
            below += 1;
            ss.add(d * d);
        }
    }
    let n = match conventions.downside_denominator {
        DownsideDenominator::AllObservations => all,
        DownsideDenominator::BelowTarget => below,
    };
    let per_period = (ss.value() / n as f64).sqrt();
    match conventions.sortino_scale {
        RatioScale::Annualized => per_period * period.annualization().sqrt(),
        RatioScale::PerPeriod => per_period,
    }
}

/// Annualized Sortino ratio against a per-period required return.
///
/// empyrical `sortino_ratio`: `mean(r − req) × p / downside_risk(r, req)`;
/// NaN for fewer than 2 observations; ±inf when nothing falls below the target.
pub fn sortino_ratio(returns: &[f64], required_return: f64, period: Period) -> f64 {
    sortino_ratio_with(returns, required_return, period, &Conventions::EMPYRICAL)
}

/// [`sortino_ratio`] under explicit conventions (denominator, annualization).
pub fn sortino_ratio_with(
    returns: &[f64],
    required_return: f64,
    period: Period,
    conventions: &Conventions,
) -> f64 {
    if returns.len() < 2 {
        return f64::NAN;
    }
    let mean = crate::moments::nan_mean_shifted(returns, required_return);
    let dr = downside_risk_with(returns, required_return, period, conventions);
    match conventions.sortino_scale {
        RatioScale::Annualized => mean * period.annualization() / dr,
        RatioScale::PerPeriod => mean / dr,
    }
}

/// Calmar ratio: CAGR over the magnitude of the maximum drawdown.
///
/// empyrical `calmar_ratio`: NaN unless the maximum drawdown is negative, and
/// NaN instead of ±inf.
pub fn calmar_ratio(returns: &[f64], period: Period) -> f64 {
    calmar_from(
        annual_return(returns, period),
        crate::drawdown::max_drawdown(returns),
    )
}

pub(crate) fn calmar_from(annual_return: f64, max_drawdown: f64) -> f64 {
    if max_drawdown < 0.0 {
        let c = annual_return / max_drawdown.abs();
        if c.is_infinite() { f64::NAN } else { c }
    } else {
        f64::NAN
    }
}

/// Omega ratio: gains above the threshold over losses below it.
///
/// empyrical `omega_ratio`: the threshold is `rf + (1 + required)^(1/p) − 1`
/// (the required return is annual; with `p == 1` it is used as is); NaN for
/// fewer than 2 observations, for `required <= −1`, and when nothing falls
/// below the threshold. NaN returns are ignored. Note that empyrical's own
/// default is `annualization=252` whatever the data frequency; here the
/// factor comes from `period`.
pub fn omega_ratio(returns: &[f64], risk_free: f64, required_return: f64, period: Period) -> f64 {
    omega_ratio_with(
        returns,
        risk_free,
        required_return,
        period,
        &Conventions::EMPYRICAL,
    )
}

/// [`omega_ratio`] under explicit conventions (annual or per-period threshold).
pub fn omega_ratio_with(
    returns: &[f64],
    risk_free: f64,
    required_return: f64,
    period: Period,
    conventions: &Conventions,
) -> f64 {
    if returns.len() < 2 {
        return f64::NAN;
    }
    let (ann, risk_free) = conventions.rates(risk_free, period);
    let Some(threshold) = conventions.omega_threshold(required_return, ann) else {
        return f64::NAN;
    };
    let (mut gains, mut losses) = (NeumaierSum::default(), NeumaierSum::default());
    for &r in returns {
        let d = r - risk_free - threshold;
        if d > 0.0 {
            gains.add(d);
        } else if d < 0.0 {
            losses.add(d);
        }
    }
    let denom = -losses.value();
    if denom > 0.0 {
        gains.value() / denom
    } else {
        f64::NAN
    }
}

/// Tail ratio: |95th percentile| / |5th percentile|.
///
/// empyrical `tail_ratio`: NaN values dropped, linear percentile interpolation
/// (numpy default); NaN for an empty or all-NaN series.
pub fn tail_ratio(returns: &[f64]) -> f64 {
    let mut scratch = Vec::new();
    tail_ratio_in(returns, &mut scratch)
}

pub(crate) fn tail_ratio_in(returns: &[f64], scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(returns.iter().copied().filter(|x| !x.is_nan()));
    tail_ratio_of_finite(scratch)
}

/// Tail ratio of NaN-free values (reorders them).
pub(crate) fn tail_ratio_of_finite(values: &mut [f64]) -> f64 {
    use crate::risk::percentile_select;
    if values.is_empty() {
        return f64::NAN;
    }
    let method = crate::conventions::QuantileMethod::Linear;
    let p95 = percentile_select(values, 95.0, method);
    let p5 = percentile_select(values, 5.0, method);
    p95.abs() / p5.abs()
}

/// Stability: R² of a straight-line fit to cumulative log returns.
///
/// empyrical `stability_of_timeseries`: NaN for fewer than 2 observations;
/// NaN values dropped; `y = cumsum(log1p(r))` regressed on `0..n` (scipy
/// `linregress`); NaN when `y` is constant.
pub fn stability_of_timeseries(returns: &[f64]) -> f64 {
    let mut scratch = Vec::new();
    stability_in(returns, &mut scratch)
}

pub(crate) fn stability_in(returns: &[f64], y: &mut Vec<f64>) -> f64 {
    if returns.len() < 2 {
        return f64::NAN;
    }
    y.clear();
    let mut acc = 0.0;
    for &r in returns {
        if !r.is_nan() {
            acc += r.ln_1p();
            y.push(acc);
        }
    }
    stability_of_cumulative_logs(y)
}

/// R² of `y` (cumulative log returns, NaN-free) against `0..len`.
pub(crate) fn stability_of_cumulative_logs(y: &[f64]) -> f64 {
    let m = y.len();
    if m < 2 {
        return f64::NAN;
    }
    let n = m as f64;
    let x_mean = (n - 1.0) / 2.0;
    const CHUNK: usize = 32;
    let mut y_sum = NeumaierSum::default();
    for chunk in y.chunks(CHUNK) {
        y_sum.add(chunk.iter().sum());
    }
    let y_mean = y_sum.value() / n;
    let (mut sxx, mut sxy, mut syy) = (
        NeumaierSum::default(),
        NeumaierSum::default(),
        NeumaierSum::default(),
    );
    // Plain sums over short runs, compensated across runs.
    for (c, chunk) in y.chunks(CHUNK).enumerate() {
        let (mut pxx, mut pxy, mut pyy) = (0.0, 0.0, 0.0);
        let base = (c * CHUNK) as f64 - x_mean;
        for (j, &yi) in chunk.iter().enumerate() {
            let dx = base + j as f64;
            let dy = yi - y_mean;
            pxx += dx * dx;
            pxy += dx * dy;
            pyy += dy * dy;
        }
        sxx.add(pxx);
        sxy.add(pxy);
        syy.add(pyy);
    }
    r_squared(sxx.value() / n, sxy.value() / n, syy.value() / n)
}

/// R² of a straight-line fit from the centred sums (scipy `linregress`).
pub(crate) fn r_squared(sxx: f64, sxy: f64, syy: f64) -> f64 {
    let r = if sxx == 0.0 || syy == 0.0 {
        if sxy == 0.0 { f64::NAN } else { 0.0 }
    } else {
        (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0)
    };
    r * r
}

fn check_lengths(a: &[f64], b: &[f64]) -> Result<(), AnalyticsError> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(AnalyticsError::LengthMismatch {
            left: a.len(),
            right: b.len(),
        })
    }
}

/// Beta of `returns` against `benchmark`: `Cov(r, b) / Var(b)`.
///
/// empyrical `beta`: only rows where both are non-NaN count; population
/// moments (they cancel); a benchmark variance below 1e-30 gives NaN; NaN for
/// fewer than 2 observations. The risk-free rate does not change beta.
pub fn beta(returns: &[f64], benchmark: &[f64]) -> Result<f64, AnalyticsError> {
    check_lengths(returns, benchmark)?;
    Ok(beta_unchecked(returns, benchmark))
}

pub(crate) fn beta_unchecked(returns: &[f64], benchmark: &[f64]) -> f64 {
    if returns.is_empty() || benchmark.len() < 2 {
        return f64::NAN;
    }
    let mut s = NeumaierSum::default();
    let mut n = 0usize;
    for (&r, &b) in returns.iter().zip(benchmark) {
        if !r.is_nan() && !b.is_nan() {
            s.add(b);
            n += 1;
        }
    }
    if n == 0 {
        return f64::NAN;
    }
    let n_f = n as f64;
    let b_mean = s.value() / n_f;
    let (mut cov, mut var) = (NeumaierSum::default(), NeumaierSum::default());
    for (&r, &b) in returns.iter().zip(benchmark) {
        if !r.is_nan() && !b.is_nan() {
            let d = b - b_mean;
            cov.add(d * r);
            var.add(d * d);
        }
    }
    let var = var.value() / n_f;
    if var < 1.0e-30 {
        return f64::NAN;
    }
    (cov.value() / n_f) / var
}

/// Annualized alpha and beta against a benchmark, with a per-period risk-free rate.
///
/// empyrical `alpha_beta`: beta as [`beta`]; alpha is the mean over rows where
/// both are non-NaN of `(r − rf) − β(b − rf)`, compounded: `(1 + ᾱ)^p − 1`.
/// NaN for fewer than 2 observations.
pub fn alpha_beta(
    returns: &[f64],
    benchmark: &[f64],
    risk_free: f64,
    period: Period,
) -> Result<(f64, f64), AnalyticsError> {
    alpha_beta_with(
        returns,
        benchmark,
        risk_free,
        period,
        &Conventions::EMPYRICAL,
    )
}

/// Annualized alpha alone (see [`alpha_beta`]).
pub fn alpha(
    returns: &[f64],
    benchmark: &[f64],
    risk_free: f64,
    period: Period,
) -> Result<f64, AnalyticsError> {
    alpha_beta(returns, benchmark, risk_free, period).map(|(a, _)| a)
}

/// [`alpha_beta`] under explicit conventions (alpha reporting, risk-free rate).
pub fn alpha_beta_with(
    returns: &[f64],
    benchmark: &[f64],
    risk_free: f64,
    period: Period,
    conventions: &Conventions,
) -> Result<(f64, f64), AnalyticsError> {
    check_lengths(returns, benchmark)?;
    Ok(alpha_beta_unchecked(
        returns,
        benchmark,
        risk_free,
        period,
        conventions,
    ))
}

pub(crate) fn alpha_beta_unchecked(
    returns: &[f64],
    benchmark: &[f64],
    risk_free: f64,
    period: Period,
    conventions: &Conventions,
) -> (f64, f64) {
    let b = beta_unchecked(returns, benchmark);
    if returns.len() < 2 {
        return (f64::NAN, b);
    }
    let (ann, rf) = conventions.rates(risk_free, period);
    let mut s = NeumaierSum::default();
    let mut n = 0usize;
    for (&r, &f) in returns.iter().zip(benchmark) {
        let a = (r - rf) - b * (f - rf);
        if !a.is_nan() {
            s.add(a);
            n += 1;
        }
    }
    let mean = if n == 0 {
        f64::NAN
    } else {
        s.value() / n as f64
    };
    let alpha = match conventions.alpha {
        AlphaAnnualization::Compounded => (mean + 1.0).powf(ann) - 1.0,
        AlphaAnnualization::Linear => mean * ann,
        AlphaAnnualization::PerPeriod => mean,
    };
    (alpha, b)
}

/// Excess Sharpe (information ratio, not annualized): `mean(r − b) / sd(r − b)`.
///
/// empyrical `excess_sharpe`: ddof 1; NaN for fewer than 2 observations; a
/// constant active return has tracking error exactly 0 (±inf or NaN).
pub fn excess_sharpe(returns: &[f64], benchmark: &[f64]) -> Result<f64, AnalyticsError> {
    check_lengths(returns, benchmark)?;
    Ok(excess_sharpe_unchecked(returns, benchmark))
}

pub(crate) fn excess_sharpe_unchecked(returns: &[f64], benchmark: &[f64]) -> f64 {
    if returns.len() < 2 {
        return f64::NAN;
    }
    let s = Summary::of(returns.iter().zip(benchmark).map(|(&r, &b)| r - b));
    s.mean / s.zero_dispersion_std()
}
