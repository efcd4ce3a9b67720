//! The full metric set for one series, and for many at once.

use rayon::prelude::*;

use crate::conventions::{
    AlphaAnnualization, Conventions, DownsideDenominator, QuantileMethod, RatioScale,
    SharpeNumerator,
};
use crate::drawdown::DrawdownTracker;
use crate::fused::{self, BenchStats};
use crate::moments::{CentralMoments, NeumaierSum};
use crate::performance::{
    calmar_from, r_squared, stability_of_cumulative_logs, tail_ratio_of_finite,
};
use crate::risk::{self, MonteCarlo, percentile_select, tail_mean_unsorted};
use crate::{AnalyticsError, Period};

/// Parameters shared by every metric in a [`MetricSet`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricOptions {
    /// Sampling frequency of the returns.
    pub period: Period,
    /// Risk-free rate (per period unless `conventions.risk_free` says otherwise).
    pub risk_free: f64,
    /// Per-period required return for Sortino and downside risk; annual for
    /// Omega under the empyrical conventions.
    pub required_return: f64,
    /// Tail probability for the VaR family (0.05 = 95% VaR).
    pub var_cutoff: f64,
    /// Convention profile.
    pub conventions: Conventions,
    /// Monte Carlo VaR settings; `None` skips it (the values are NaN).
    pub monte_carlo: Option<MonteCarlo>,
}

impl Default for MetricOptions {
    fn default() -> Self {
        MetricOptions {
            period: Period::Daily,
            risk_free: 0.0,
            required_return: 0.0,
            var_cutoff: 0.05,
            conventions: Conventions::EMPYRICAL,
            monte_carlo: None,
        }
    }
}

impl MetricOptions {
    /// Checks the parameters' domains.
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        let ann = self.period.annualization();
        if !(ann.is_finite() && ann > 0.0) {
            return Err(AnalyticsError::InvalidParameter {
                name: "period",
                reason: format!("annualization factor must be positive, got {ann}"),
            });
        }
        if !(self.var_cutoff > 0.0 && self.var_cutoff < 1.0) {
            return Err(AnalyticsError::InvalidParameter {
                name: "var_cutoff",
                reason: format!("must be in (0, 1), got {}", self.var_cutoff),
            });
        }
        for (name, v) in [
            ("risk_free", self.risk_free),
            ("required_return", self.required_return),
        ] {
            if !v.is_finite() {
                return Err(AnalyticsError::InvalidParameter {
                    name,
                    reason: "must be finite".into(),
                });
            }
        }
        Ok(())
    }
}

/// Every scalar metric of one series. NaN where the metric is undefined
/// (including the benchmark metrics when there is no benchmark).
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)] // each field is the function of the same name
pub struct MetricSet {
    pub cum_returns_final: f64,
    pub annual_return: f64,
    pub annual_volatility: f64,
    pub sharpe_ratio: f64,
    pub sortino_ratio: f64,
    pub downside_risk: f64,
    pub max_drawdown: f64,
    pub calmar_ratio: f64,
    pub omega_ratio: f64,
    pub tail_ratio: f64,
    pub stability_of_timeseries: f64,
    pub alpha: f64,
    pub beta: f64,
    pub excess_sharpe: f64,
    pub value_at_risk: f64,
    pub conditional_value_at_risk: f64,
    pub gaussian_value_at_risk: f64,
    pub gaussian_conditional_value_at_risk: f64,
    pub cornish_fisher_value_at_risk: f64,
    pub monte_carlo_value_at_risk: f64,
    pub monte_carlo_conditional_value_at_risk: f64,
    pub skew: f64,
    pub kurtosis: f64,
}

impl MetricSet {
    /// The metrics as `(name, value)` pairs; names are the function names.
    pub fn entries(&self) -> [(&'static str, f64); 23] {
        [
            ("cum_returns_final", self.cum_returns_final),
            ("annual_return", self.annual_return),
            ("annual_volatility", self.annual_volatility),
            ("sharpe_ratio", self.sharpe_ratio),
            ("sortino_ratio", self.sortino_ratio),
            ("downside_risk", self.downside_risk),
            ("max_drawdown", self.max_drawdown),
            ("calmar_ratio", self.calmar_ratio),
            ("omega_ratio", self.omega_ratio),
            ("tail_ratio", self.tail_ratio),
            ("stability_of_timeseries", self.stability_of_timeseries),
            ("alpha", self.alpha),
            ("beta", self.beta),
            ("excess_sharpe", self.excess_sharpe),
            ("value_at_risk", self.value_at_risk),
            ("conditional_value_at_risk", self.conditional_value_at_risk),
            ("gaussian_value_at_risk", self.gaussian_value_at_risk),
            (
                "gaussian_conditional_value_at_risk",
                self.gaussian_conditional_value_at_risk,
            ),
            (
                "cornish_fisher_value_at_risk",
                self.cornish_fisher_value_at_risk,
            ),
            ("monte_carlo_value_at_risk", self.monte_carlo_value_at_risk),
            (
                "monte_carlo_conditional_value_at_risk",
                self.monte_carlo_conditional_value_at_risk,
            ),
            ("skew", self.skew),
            ("kurtosis", self.kurtosis),
        ]
    }
}

/// Reusable buffers so that computing many metric sets allocates nothing per series.
#[derive(Debug, Default)]
pub struct Scratch {
    a: Vec<f64>,
    b: Vec<f64>,
    fused: fused::Buffers,
}

/// Computes the full [`MetricSet`] of one series.
///
/// Errors if the options are invalid or the benchmark's length differs.
pub fn compute_metrics(
    returns: &[f64],
    benchmark: Option<&[f64]>,
    options: &MetricOptions,
) -> Result<MetricSet, AnalyticsError> {
    options.validate()?;
    compute_metrics_in(returns, benchmark, options, &mut Scratch::default())
}

/// [`compute_metrics`] reusing `scratch` buffers.
///
/// The metrics are fused into a few passes over the data (plus O(n)
/// selections for the quantiles); each value agrees with the corresponding
/// single-metric function to rounding (the tests hold them to 1e-9).
pub fn compute_metrics_in(
    returns: &[f64],
    benchmark: Option<&[f64]>,
    options: &MetricOptions,
    scratch: &mut Scratch,
) -> Result<MetricSet, AnalyticsError> {
    check_benchmark(returns, benchmark)?;
    let shared = Shared::of(benchmark, options);
    compute_with(returns, benchmark, &shared, options, scratch)
}

/// What every series of a batch shares: the benchmark's own statistics and
/// the normal quantile of the VaR cutoff.
struct Shared {
    stats: Option<BenchStats>,
    z: f64,
}

impl Shared {
    fn of(benchmark: Option<&[f64]>, options: &MetricOptions) -> Self {
        Shared {
            stats: benchmark.and_then(BenchStats::of),
            z: crate::normal::quantile(options.var_cutoff),
        }
    }
}

fn check_benchmark(returns: &[f64], benchmark: Option<&[f64]>) -> Result<(), AnalyticsError> {
    match benchmark {
        Some(b) if b.len() != returns.len() => Err(AnalyticsError::LengthMismatch {
            left: returns.len(),
            right: b.len(),
        }),
        _ => Ok(()),
    }
}

/// What the metric set needs from the data, from either path.
struct Core {
    /// Non-NaN observations.
    n: usize,
    mean: f64,
    lo: f64,
    hi: f64,
    s2: f64,
    s3: f64,
    s4: f64,
    growth: f64,
    mdd: f64,
    down: f64,
    below: usize,
    gains: f64,
    losses: f64,
    stability: f64,
    alpha_beta_excess: (f64, f64, f64),
    /// VaR (before the any-NaN rule), CVaR, tail ratio.
    quantiles: (f64, f64, f64),
}

/// The metric set with the batch's shared values precomputed.
fn compute_with(
    returns: &[f64],
    benchmark: Option<&[f64]>,
    shared: &Shared,
    options: &MetricOptions,
    scratch: &mut Scratch,
) -> Result<MetricSet, AnalyticsError> {
    check_benchmark(returns, benchmark)?;
    let o = options;
    let c = &o.conventions;
    let len = returns.len();
    let (ann, rf) = c.rates(o.risk_free, o.period);
    let req = o.required_return;
    let omega_threshold = c.omega_threshold(req, ann);
    let rates = Rates {
        req,
        omega_cut: rf + omega_threshold.unwrap_or(f64::NAN),
        rf,
        ann,
    };

    let stats = shared.stats;
    let fast = match (benchmark, stats) {
        (Some(_), None) => None,
        _ => fast_core(returns, benchmark.zip(stats), rates, o, scratch),
    };
    let core = match fast {
        Some(core) => core,
        None => general_core(returns, benchmark, rates, o, scratch),
    };
    let Core {
        n,
        mean,
        lo,
        hi,
        s2,
        s3,
        s4,
        growth,
        mdd,
        down,
        below,
        gains,
        losses,
        stability,
        alpha_beta_excess: (alpha, beta, excess_sharpe),
        quantiles: (var, cvar, tail_ratio),
    } = core;
    let any_nan = n != len;

    let nf = n as f64;
    let moments = CentralMoments {
        count: n,
        mean,
        m2: s2 / nf,
        m3: s3 / nf,
        m4: s4 / nf,
    };
    let sd = if n < 2 {
        f64::NAN
    } else {
        (s2 / (n - 1) as f64).sqrt()
    };
    let constant = n > 0 && lo == hi && sd.is_finite();
    let annual_return = if len == 0 {
        f64::NAN
    } else {
        growth.powf(1.0 / (len as f64 / ann)) - 1.0
    };
    let annual_volatility = if len < 2 {
        f64::NAN
    } else {
        sd * ann.powf(0.5)
    };
    let sharpe_ratio = if len < 2 {
        f64::NAN
    } else {
        match c.sharpe_numerator {
            SharpeNumerator::Arithmetic => {
                let std = if constant { 0.0 } else { sd };
                (mean - rf) / std * ann.sqrt()
            }
            SharpeNumerator::Geometric => {
                crate::performance::sharpe_ratio_with(returns, o.risk_free, o.period, c)
            }
        }
    };
    let downside_per_period = if len == 0 {
        f64::NAN
    } else {
        let denom = match c.downside_denominator {
            DownsideDenominator::AllObservations => n,
            DownsideDenominator::BelowTarget => below,
        };
        (down / denom as f64).sqrt()
    };
    let (downside_risk, sortino_ratio) = match c.sortino_scale {
        RatioScale::Annualized => {
            let dr = downside_per_period * ann.sqrt();
            let s = if len < 2 {
                f64::NAN
            } else {
                (mean - req) * ann / dr
            };
            (dr, s)
        }
        RatioScale::PerPeriod => {
            let s = if len < 2 {
                f64::NAN
            } else {
                (mean - req) / downside_per_period
            };
            (downside_per_period, s)
        }
    };
    let omega_ratio = if len < 2 || omega_threshold.is_none() {
        f64::NAN
    } else {
        let denom = -losses;
        if denom > 0.0 { gains / denom } else { f64::NAN }
    };
    let stability_of_timeseries = if len < 2 { f64::NAN } else { stability };
    let (skew, kurtosis) = if len < 2 || any_nan || moments.m2 == 0.0 {
        (f64::NAN, f64::NAN)
    } else {
        (
            moments.population_skew(),
            moments.population_excess_kurtosis(),
        )
    };
    let var = if any_nan { f64::NAN } else { var };

    let z = shared.z;
    let (mc_var, mc_cvar) = match &o.monte_carlo {
        Some(mc) => risk::monte_carlo_in(returns, o.var_cutoff, mc, &mut scratch.a, &mut scratch.b),
        None => (f64::NAN, f64::NAN),
    };
    Ok(MetricSet {
        cum_returns_final: if len == 0 { f64::NAN } else { growth - 1.0 },
        annual_return,
        annual_volatility,
        sharpe_ratio,
        sortino_ratio,
        downside_risk,
        max_drawdown: if len == 0 { f64::NAN } else { mdd },
        calmar_ratio: calmar_from(annual_return, mdd),
        omega_ratio,
        tail_ratio,
        stability_of_timeseries,
        alpha,
        beta,
        excess_sharpe,
        value_at_risk: var,
        conditional_value_at_risk: cvar,
        gaussian_value_at_risk: mean + z * sd,
        gaussian_conditional_value_at_risk: mean - sd * crate::normal::density(z) / o.var_cutoff,
        cornish_fisher_value_at_risk: risk::cornish_fisher_from(&moments, z, c.cornish_fisher),
        monte_carlo_value_at_risk: mc_var,
        monte_carlo_conditional_value_at_risk: mc_cvar,
        skew,
        kurtosis,
    })
}

/// What both paths take from the options, per period: the required return,
/// the omega cut (risk-free rate plus omega threshold; NaN when there is no
/// threshold), the risk-free rate, and the annualization factor.
#[derive(Clone, Copy)]
struct Rates {
    req: f64,
    omega_cut: f64,
    rf: f64,
    ann: f64,
}

/// The NaN-free fast path ([`crate::fused`]); `None` if it does not apply.
fn fast_core(
    returns: &[f64],
    benchmark: Option<(&[f64], BenchStats)>,
    rates: Rates,
    o: &MetricOptions,
    scratch: &mut Scratch,
) -> Option<Core> {
    let c = &o.conventions;
    let tails = o.var_cutoff == 0.05 && c.quantile == QuantileMethod::Linear;
    let inputs = fused::Inputs {
        returns,
        benchmark,
        required: rates.req,
        omega_cut: rates.omega_cut,
        tails,
    };
    let (s, t) = fused::sums(&inputs, &mut scratch.fused)?;
    let n = returns.len();
    let quantiles = match if tails { fused::quantiles(t) } else { None } {
        Some(q) => q,
        None => {
            let values = &mut scratch.a;
            values.clear();
            values.extend_from_slice(returns);
            quantile_metrics(values, o.var_cutoff, c.quantile)
        }
    };
    let alpha_beta_excess = match s.bench {
        Some(b) => bench_finish(
            &BenchTotals {
                len: n,
                n_pair: n,
                n_active: n,
                mean_r: s.mean,
                mean_b: b.mean_b,
                mean_a: b.mean_active,
                active_lo: b.active_lo,
                active_hi: b.active_hi,
                active_squares: b.active_squares,
                covariance: b.covariance,
                variance: b.variance,
            },
            rates.rf,
            rates.ann,
            c,
        ),
        None => (f64::NAN, f64::NAN, f64::NAN),
    };
    Some(Core {
        n,
        mean: s.mean,
        lo: s.lo,
        hi: s.hi,
        s2: s.s2,
        s3: s.s3,
        s4: s.s4,
        growth: s.growth,
        mdd: s.max_drawdown,
        down: s.downside_squares,
        below: s.below,
        gains: s.gains,
        losses: s.losses,
        stability: r_squared(s.sxx, s.sxy, s.syy),
        alpha_beta_excess,
        quantiles,
    })
}

/// The general path: any input (NaN, infinities, short series).
fn general_core(
    returns: &[f64],
    benchmark: Option<&[f64]>,
    rates: Rates,
    o: &MetricOptions,
    scratch: &mut Scratch,
) -> Core {
    let Rates {
        req,
        omega_cut,
        rf,
        ann,
    } = rates;
    let len = returns.len();
    // Pass 1: sums, extremes, wealth and drawdown, downside, omega, logs.
    // Sums are plain within CHUNK-sized runs (cheap, pipelined) and the run
    // totals are added with Neumaier compensation: pairwise-class accuracy.
    let values = &mut scratch.a;
    let logs = &mut scratch.b;
    values.clear();
    logs.clear();
    let (mut sum, mut down, mut gains, mut losses) = (
        NeumaierSum::default(),
        NeumaierSum::default(),
        NeumaierSum::default(),
        NeumaierSum::default(),
    );
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut growth = 1.0f64;
    let mut below = 0usize;
    let mut log_acc = 0.0;
    // Drawdown: within one peak epoch (M fixed), (W − M)/M is monotone in W,
    // so only the epoch's lowest wealth needs the division.
    let mut drawdown = DrawdownTracker::new();
    for chunk in returns.chunks(CHUNK) {
        let (mut s, mut dn, mut g, mut l) = (0.0, 0.0, 0.0, 0.0);
        for &r in chunk {
            if r.is_nan() {
                // Wealth and drawdown treat NaN as a zero return.
                drawdown.observe(growth * 100.0);
                continue;
            }
            values.push(r);
            s += r;
            lo = lo.min(r);
            hi = hi.max(r);
            growth *= 1.0 + r;
            drawdown.observe(growth * 100.0);
            let d = r - req;
            if d < 0.0 {
                dn += d * d;
                below += 1;
            }
            let x = r - omega_cut;
            if x > 0.0 {
                g += x;
            } else if x < 0.0 {
                l += x;
            }
            log_acc += r.ln_1p();
            logs.push(log_acc);
        }
        sum.add(s);
        down.add(dn);
        gains.add(g);
        losses.add(l);
    }
    let mdd = drawdown.finish();
    let n = values.len();
    let mean = if n == 0 {
        f64::NAN
    } else {
        sum.value() / n as f64
    };

    // Pass 2: central moments.
    let (mut s2, mut s3, mut s4) = (
        NeumaierSum::default(),
        NeumaierSum::default(),
        NeumaierSum::default(),
    );
    for chunk in values.chunks(CHUNK) {
        let (mut p2, mut p3, mut p4) = (0.0, 0.0, 0.0);
        for &x in chunk {
            let d = x - mean;
            let d2 = d * d;
            p2 += d2;
            p3 += d2 * d;
            p4 += d2 * d2;
        }
        s2.add(p2);
        s3.add(p3);
        s4.add(p4);
    }
    let stability = if len < 2 {
        f64::NAN
    } else {
        stability_of_cumulative_logs(logs)
    };
    let alpha_beta_excess = match benchmark {
        Some(b) => benchmark_metrics(returns, b, rf, ann, &o.conventions),
        None => (f64::NAN, f64::NAN, f64::NAN),
    };
    // Quantiles by selection on the NaN-free copy (reordered in place); the
    // later selections find the data already partly partitioned.
    let quantiles = quantile_metrics(values, o.var_cutoff, o.conventions.quantile);
    Core {
        n,
        mean,
        lo,
        hi,
        s2: s2.value(),
        s3: s3.value(),
        s4: s4.value(),
        growth,
        mdd,
        down: down.value(),
        below,
        gains: gains.value(),
        losses: losses.value(),
        stability,
        alpha_beta_excess,
        quantiles,
    }
}

/// VaR, CVaR and tail ratio of NaN-free values with two selections: one at
/// the cutoff's order statistic (which also leaves the CVaR tail on its
/// left), one for the 95th percentile inside the right part. Falls back to
/// the general functions when the shortcuts do not apply.
fn quantile_metrics(values: &mut [f64], cutoff: f64, method: QuantileMethod) -> (f64, f64, f64) {
    let n = values.len();
    if n == 0 || !(0.0..=1.0).contains(&cutoff) {
        return (f64::NAN, tail_mean_unsorted(values, cutoff), f64::NAN);
    }
    let k = ((n - 1) as f64 * cutoff) as usize;
    let q = 100.0 * cutoff / 100.0;
    let virtual_index = (n - 1) as f64 * q;
    let k95 = (n - 1) as f64 * 0.95;
    let shortcut = virtual_index.floor() as usize == k
        && k + 1 < n
        && method == QuantileMethod::Linear
        && cutoff == 0.05
        && (k95.floor() as usize) > k + 1;
    if !shortcut {
        let cvar = tail_mean_unsorted(values, cutoff);
        let var = percentile_select(values, 100.0 * cutoff, method);
        return (var, cvar, tail_ratio_of_finite(values));
    }
    let (var, cvar, right) = fused::lower_tail(values, k, virtual_index - k as f64);
    // 95th percentile: order statistics j and j+1 live in `right`.
    let j = k95.floor() as usize;
    let p95 = fused::upper_lerp(right, j - k - 1, k95 - j as f64);
    // With cutoff 0.05 and linear interpolation, VaR is the 5th percentile.
    (var, cvar, p95.abs() / var.abs())
}

/// Run length of the plain partial sums in the fused passes.
const CHUNK: usize = 32;

/// Alpha, beta and excess Sharpe in two fused passes over the pairs, with
/// empyrical's rules (see [`crate::alpha_beta`] and [`crate::excess_sharpe`]).
fn benchmark_metrics(
    returns: &[f64],
    benchmark: &[f64],
    rf: f64,
    ann: f64,
    c: &Conventions,
) -> (f64, f64, f64) {
    let len = returns.len();
    let (mut sr, mut sb, mut sa) = (
        NeumaierSum::default(),
        NeumaierSum::default(),
        NeumaierSum::default(),
    );
    let (mut n_pair, mut n_active) = (0usize, 0usize);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (rc, bc) in returns.chunks(CHUNK).zip(benchmark.chunks(CHUNK)) {
        let (mut pr, mut pb, mut pa) = (0.0, 0.0, 0.0);
        for (&r, &b) in rc.iter().zip(bc) {
            if !r.is_nan() && !b.is_nan() {
                n_pair += 1;
                pr += r;
                pb += b;
            }
            let a = r - b;
            if !a.is_nan() {
                n_active += 1;
                pa += a;
                lo = lo.min(a);
                hi = hi.max(a);
            }
        }
        sr.add(pr);
        sb.add(pb);
        sa.add(pa);
    }
    let mean_r = sr.value() / n_pair as f64;
    let mean_b = sb.value() / n_pair as f64;
    let mean_a = sa.value() / n_active as f64;
    let (mut cov, mut var, mut ss_a) = (
        NeumaierSum::default(),
        NeumaierSum::default(),
        NeumaierSum::default(),
    );
    for (rc, bc) in returns.chunks(CHUNK).zip(benchmark.chunks(CHUNK)) {
        let (mut pc, mut pv, mut ps) = (0.0, 0.0, 0.0);
        for (&r, &b) in rc.iter().zip(bc) {
            if !r.is_nan() && !b.is_nan() {
                let d = b - mean_b;
                pc += d * r;
                pv += d * d;
            }
            let a = r - b;
            if !a.is_nan() {
                let d = a - mean_a;
                ps += d * d;
            }
        }
        cov.add(pc);
        var.add(pv);
        ss_a.add(ps);
    }
    bench_finish(
        &BenchTotals {
            len,
            n_pair,
            n_active,
            mean_r,
            mean_b,
            mean_a,
            active_lo: lo,
            active_hi: hi,
            active_squares: ss_a.value(),
            covariance: cov.value(),
            variance: var.value(),
        },
        rf,
        ann,
        c,
    )
}

/// The sums behind alpha, beta and excess Sharpe.
struct BenchTotals {
    len: usize,
    /// Rows where both are non-NaN, and rows where `r − b` is non-NaN.
    n_pair: usize,
    n_active: usize,
    /// Means over the pairs.
    mean_r: f64,
    mean_b: f64,
    /// Mean, extremes and centred squares of the active return `r − b`.
    mean_a: f64,
    active_lo: f64,
    active_hi: f64,
    active_squares: f64,
    /// `Σ (b − b̄) r` and `Σ (b − b̄)²` over the pairs.
    covariance: f64,
    variance: f64,
}

/// Alpha, beta and excess Sharpe from their sums, with empyrical's rules.
fn bench_finish(t: &BenchTotals, rf: f64, ann: f64, c: &Conventions) -> (f64, f64, f64) {
    let (len, n_pair, n_active) = (t.len, t.n_pair, t.n_active);
    let beta = if len < 2 || n_pair == 0 {
        f64::NAN
    } else {
        let v = t.variance / n_pair as f64;
        if v < 1.0e-30 {
            f64::NAN
        } else {
            (t.covariance / n_pair as f64) / v
        }
    };
    let alpha = if len < 2 || n_pair == 0 {
        f64::NAN
    } else {
        // mean((r - rf) - beta (b - rf)) over the valid pairs.
        let mean = (t.mean_r - rf) - beta * (t.mean_b - rf);
        match c.alpha {
            AlphaAnnualization::Compounded => (mean + 1.0).powf(ann) - 1.0,
            AlphaAnnualization::Linear => mean * ann,
            AlphaAnnualization::PerPeriod => mean,
        }
    };
    let excess_sharpe = if len < 2 {
        f64::NAN
    } else {
        let sd = if n_active < 2 {
            f64::NAN
        } else {
            (t.active_squares / (n_active - 1) as f64).sqrt()
        };
        let sd = if n_active > 0 && t.active_lo == t.active_hi && sd.is_finite() {
            0.0
        } else {
            sd
        };
        t.mean_a / sd
    };
    (alpha, beta, excess_sharpe)
}

/// Computes the full [`MetricSet`] of many series in parallel (rayon, all
/// cores), each against the same optional benchmark. Results are in input order.
///
/// ```
/// use rampart_analytics::metrics::{compute_metrics_batch, MetricOptions};
/// let a = vec![0.01, -0.02, 0.015, 0.003];
/// let b = vec![0.002, 0.001, -0.004, 0.01];
/// let sets = compute_metrics_batch(&[a, b], None, &MetricOptions::default()).unwrap();
/// assert_eq!(sets.len(), 2);
/// assert!(sets[0].max_drawdown <= 0.0);
/// ```
pub fn compute_metrics_batch<S: AsRef<[f64]> + Sync>(
    series: &[S],
    benchmark: Option<&[f64]>,
    options: &MetricOptions,
) -> Result<Vec<MetricSet>, AnalyticsError> {
    options.validate()?;
    // The benchmark's own statistics are the same for every series.
    let shared = Shared::of(benchmark, options);
    series
        .par_iter()
        .map_init(Scratch::default, |scratch, s| {
            compute_with(s.as_ref(), benchmark, &shared, options, scratch)
        })
        .collect()
}
