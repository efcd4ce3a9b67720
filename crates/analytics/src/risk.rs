//! Value at risk and expected shortfall: historical, Gaussian,
//! Cornish–Fisher and Monte Carlo.
//!
//! All of them report a *return quantile*: a negative number for a loss,
//! as empyrical (and PerformanceAnalytics since 1.0) report it. `cutoff` is
//! the tail probability, e.g. 0.05 for 95% VaR; a cutoff outside `[0, 1]`
//! gives NaN.

use chacha20::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::conventions::{Conventions, CornishFisherMoments, QuantileMethod};
use crate::moments::{CentralMoments, NeumaierSum};
use crate::normal;

/// numpy's percentile by selection instead of sorting: O(n), reorders `values`
/// (which must hold no NaN).
pub(crate) fn percentile_select(values: &mut [f64], q_percent: f64, method: QuantileMethod) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let q = q_percent / 100.0;
    if !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let virtual_index = (n - 1) as f64 * q;
    let last = n - 1;
    if virtual_index >= last as f64 {
        let (_, max, _) = values.select_nth_unstable_by(last, f64::total_cmp);
        return *max;
    }
    let prev = virtual_index.floor();
    let i = prev as usize;
    let (_, a, right) = values.select_nth_unstable_by(i, f64::total_cmp);
    let a = *a;
    // Everything right of the i-th order statistic is >= it; its minimum is the next one.
    let b = right.iter().copied().fold(f64::INFINITY, f64::min);
    match method {
        QuantileMethod::Lower => a,
        QuantileMethod::Higher => {
            if virtual_index > prev {
                b
            } else {
                a
            }
        }
        QuantileMethod::Linear => {
            let t = virtual_index - prev;
            let diff = b - a;
            if t >= 0.5 {
                b - diff * (1.0 - t)
            } else {
                a + diff * t
            }
        }
    }
}

/// Historical value at risk: the `cutoff` quantile of the returns.
///
/// empyrical `value_at_risk`: `np.percentile(returns, 100·cutoff)` with linear
/// interpolation; NaN for an empty series and — as numpy propagates NaN —
/// whenever any return is NaN.
pub fn value_at_risk(returns: &[f64], cutoff: f64) -> f64 {
    value_at_risk_with(returns, cutoff, &Conventions::EMPYRICAL)
}

/// [`value_at_risk`] with an explicit quantile interpolation.
pub fn value_at_risk_with(returns: &[f64], cutoff: f64, conventions: &Conventions) -> f64 {
    let mut scratch = Vec::new();
    value_at_risk_in(returns, cutoff, conventions.quantile, &mut scratch)
}

pub(crate) fn value_at_risk_in(
    returns: &[f64],
    cutoff: f64,
    method: QuantileMethod,
    scratch: &mut Vec<f64>,
) -> f64 {
    if returns.is_empty() || returns.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    scratch.clear();
    scratch.extend_from_slice(returns);
    percentile_select(scratch, 100.0 * cutoff, method)
}

/// Historical conditional value at risk (expected shortfall).
///
/// empyrical `conditional_value_at_risk`: NaN values dropped; the mean of the
/// `⌊(n − 1)·cutoff⌋ + 1` smallest returns; NaN if nothing is left.
pub fn conditional_value_at_risk(returns: &[f64], cutoff: f64) -> f64 {
    let mut scratch = Vec::new();
    conditional_value_at_risk_in(returns, cutoff, &mut scratch)
}

pub(crate) fn conditional_value_at_risk_in(
    returns: &[f64],
    cutoff: f64,
    scratch: &mut Vec<f64>,
) -> f64 {
    scratch.clear();
    scratch.extend(returns.iter().copied().filter(|x| !x.is_nan()));
    tail_mean_unsorted(scratch, cutoff)
}

/// Mean of the `⌊(n − 1)·cutoff⌋ + 1` smallest values; reorders `values`.
pub(crate) fn tail_mean_unsorted(values: &mut [f64], cutoff: f64) -> f64 {
    let n = values.len();
    if n == 0 || !(0.0..=1.0).contains(&cutoff) {
        return f64::NAN;
    }
    // In [0, n-1] because cutoff is in [0, 1].
    let k = ((n - 1) as f64 * cutoff) as usize;
    values.select_nth_unstable_by(k, f64::total_cmp);
    mean_of(&values[..=k])
}

fn mean_of(values: &[f64]) -> f64 {
    let mut s = NeumaierSum::default();
    for &x in values {
        s.add(x);
    }
    s.value() / values.len() as f64
}

/// Parametric (Gaussian) value at risk: `mean + Φ⁻¹(cutoff)·s`.
///
/// Not in empyrical. Mean and sample s.d. (ddof 1) of the non-NaN returns,
/// as quantstats and PerformanceAnalytics `VaR(method = "gaussian")` compute it.
pub fn gaussian_value_at_risk(returns: &[f64], cutoff: f64) -> f64 {
    let m = CentralMoments::of(returns);
    m.mean + normal::quantile(cutoff) * m.sample_std()
}

/// Parametric (Gaussian) expected shortfall: `mean − s·φ(z)/cutoff`, `z = Φ⁻¹(cutoff)`.
pub fn gaussian_conditional_value_at_risk(returns: &[f64], cutoff: f64) -> f64 {
    let m = CentralMoments::of(returns);
    let z = normal::quantile(cutoff);
    m.mean - m.sample_std() * normal::density(z) / cutoff
}

/// Cornish–Fisher (modified) value at risk.
///
/// `mean + z_cf·s` with `z_cf = z + (z² − 1)S/6 + (z³ − 3z)K/24 − (2z³ − 5z)S²/36`,
/// `z = Φ⁻¹(cutoff)`, `s` the sample s.d. (ddof 1), and skewness `S` /
/// excess kurtosis `K` from population moments (the empyrical profile; see
/// [`CornishFisherMoments`] for the others). NaN values are dropped.
pub fn cornish_fisher_value_at_risk(returns: &[f64], cutoff: f64) -> f64 {
    cornish_fisher_value_at_risk_with(returns, cutoff, &Conventions::EMPYRICAL)
}

/// [`cornish_fisher_value_at_risk`] with an explicit choice of moments.
pub fn cornish_fisher_value_at_risk_with(
    returns: &[f64],
    cutoff: f64,
    conventions: &Conventions,
) -> f64 {
    let m = CentralMoments::of(returns);
    cornish_fisher_from(&m, normal::quantile(cutoff), conventions.cornish_fisher)
}

/// Cornish–Fisher VaR from the moments and `z = Φ⁻¹(cutoff)`.
pub(crate) fn cornish_fisher_from(
    m: &CentralMoments,
    z: f64,
    moments: CornishFisherMoments,
) -> f64 {
    let s = m.sample_std();
    let (skew, kurt) = match moments {
        CornishFisherMoments::Population => (m.population_skew(), m.population_excess_kurtosis()),
        CornishFisherMoments::PerformanceAnalytics => {
            (m.m3 / (s * s * s), m.m4 / (s * s * s * s) - 3.0)
        }
        CornishFisherMoments::Sample => (m.sample_skew(), m.sample_excess_kurtosis()),
    };
    let z2 = z * z;
    let z3 = z2 * z;
    let zcf = z + (z2 - 1.0) * skew / 6.0 + (z3 - 3.0 * z) * kurt / 24.0
        - (2.0 * z3 - 5.0 * z) * skew * skew / 36.0;
    m.mean + zcf * s
}

/// How Monte Carlo scenarios are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MonteCarloModel {
    /// Normal with the sample mean and s.d. (ddof 1) of the returns.
    #[default]
    Normal,
    /// Resample the observed (non-NaN) returns with replacement.
    Bootstrap,
}

/// Monte Carlo settings. The generator is ChaCha8 seeded with `seed`, so a
/// given seed gives the same numbers on every platform and release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonteCarlo {
    /// Number of simulated one-period returns.
    pub simulations: usize,
    /// RNG seed.
    pub seed: u64,
    /// Scenario model.
    pub model: MonteCarloModel,
}

impl Default for MonteCarlo {
    fn default() -> Self {
        MonteCarlo {
            simulations: 10_000,
            seed: 42,
            model: MonteCarloModel::Normal,
        }
    }
}

/// Monte Carlo value at risk and expected shortfall, `(VaR, CVaR)`.
///
/// Simulates `simulations` one-period returns and applies the historical
/// estimators ([`value_at_risk`] and [`conditional_value_at_risk`]) to them.
/// NaN for fewer than 2 non-NaN returns or zero simulations.
pub fn monte_carlo_value_at_risk(
    returns: &[f64],
    cutoff: f64,
    settings: &MonteCarlo,
) -> (f64, f64) {
    let (mut sims, mut sorted) = (Vec::new(), Vec::new());
    monte_carlo_in(returns, cutoff, settings, &mut sims, &mut sorted)
}

pub(crate) fn monte_carlo_in(
    returns: &[f64],
    cutoff: f64,
    settings: &MonteCarlo,
    sims: &mut Vec<f64>,
    observed: &mut Vec<f64>,
) -> (f64, f64) {
    observed.clear();
    observed.extend(returns.iter().copied().filter(|x| !x.is_nan()));
    if observed.len() < 2 || settings.simulations == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut sampler = Sampler::new(observed, settings);
    sims.clear();
    sims.extend((0..settings.simulations).map(|_| sampler.draw()));
    let var = percentile_select(sims, 100.0 * cutoff, QuantileMethod::Linear);
    let cvar = tail_mean_unsorted(sims, cutoff);
    (var, cvar)
}

/// Draws one-period returns for a Monte Carlo model from a seeded ChaCha8.
struct Sampler<'a> {
    rng: ChaCha8Rng,
    observed: &'a [f64],
    /// Mean and sample s.d. for the normal model; `None` for the bootstrap.
    normal: Option<(f64, f64)>,
}

impl<'a> Sampler<'a> {
    /// `observed` holds at least two non-NaN returns.
    fn new(observed: &'a [f64], settings: &MonteCarlo) -> Self {
        let normal = match settings.model {
            MonteCarloModel::Normal => {
                let m = CentralMoments::of(observed);
                Some((m.mean, m.sample_std()))
            }
            MonteCarloModel::Bootstrap => None,
        };
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(settings.seed),
            observed,
            normal,
        }
    }

    fn draw(&mut self) -> f64 {
        match self.normal {
            Some((mu, sd)) => {
                // 53 random bits mapped to the open interval (0, 1).
                let u = ((self.rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
                mu + sd * normal::quantile(u)
            }
            None => {
                // Lemire's multiply-shift; the bias is below 2^-40 for any realistic n.
                let n = self.observed.len() as u64;
                let i = ((u128::from(self.rng.next_u64()) * u128::from(n)) >> 64) as usize;
                self.observed[i]
            }
        }
    }
}

/// The percentiles of simulated cumulative returns after one step of a
/// Monte Carlo horizon (a fan chart's slice).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct OutcomeBand {
    /// Periods from now (1 = after the first simulated period).
    pub step: usize,
    /// 5th percentile of the cumulative return.
    pub p5: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// Simulated outcomes over a horizon: `paths` paths of `horizon` periods
/// each, drawn like [`monte_carlo_value_at_risk`] (same model and seeded
/// generator, so the same settings give the same bands everywhere), and
/// compounded; returns the percentiles of the cumulative return at every
/// step, plus the VaR and CVaR of the cumulative return at the horizon.
///
/// Errors: fewer than 2 non-NaN returns, `horizon` or `paths` zero, or more
/// than 5 million draws in all.
///
/// ```
/// use rampart_analytics::risk::{monte_carlo_bands, MonteCarlo};
/// let returns = [0.01, -0.02, 0.015, 0.003, -0.007, 0.012, -0.001, 0.004];
/// let settings = MonteCarlo { simulations: 2_000, ..MonteCarlo::default() };
/// let out = monte_carlo_bands(&returns, 0.05, 21, &settings).unwrap();
/// assert_eq!(out.bands.len(), 21);
/// let last = out.bands[20];
/// assert!(last.p5 < last.p50 && last.p50 < last.p95);
/// assert!(out.horizon_cvar <= out.horizon_var);
/// ```
pub fn monte_carlo_bands(
    returns: &[f64],
    cutoff: f64,
    horizon: usize,
    settings: &MonteCarlo,
) -> Result<MonteCarloOutcomes, crate::AnalyticsError> {
    let observed: Vec<f64> = returns.iter().copied().filter(|x| !x.is_nan()).collect();
    if observed.len() < 2 {
        return Err(crate::AnalyticsError::TooShort {
            needed: 2,
            got: observed.len(),
        });
    }
    let paths = settings.simulations;
    if horizon == 0 || paths == 0 || horizon.saturating_mul(paths) > 5_000_000 {
        return Err(crate::AnalyticsError::InvalidParameter {
            name: "horizon",
            reason: "horizon and paths must be positive, at most 5 million draws in all".into(),
        });
    }
    if !(cutoff > 0.0 && cutoff < 1.0) {
        return Err(crate::AnalyticsError::InvalidParameter {
            name: "cutoff",
            reason: "must be between 0 and 1".into(),
        });
    }
    let mut sampler = Sampler::new(&observed, settings);
    // Path-major: path p's cumulative return after step t at [t * paths + p].
    let mut cumulative = vec![0.0; horizon * paths];
    for p in 0..paths {
        let mut wealth = 1.0;
        for t in 0..horizon {
            wealth *= 1.0 + sampler.draw();
            cumulative[t * paths + p] = wealth - 1.0;
        }
    }
    let mut bands = Vec::with_capacity(horizon);
    for (t, step) in cumulative.chunks_mut(paths).enumerate() {
        let mut q = |pct| percentile_select(step, pct, QuantileMethod::Linear);
        bands.push(OutcomeBand {
            step: t + 1,
            p5: q(5.0),
            p25: q(25.0),
            p50: q(50.0),
            p75: q(75.0),
            p95: q(95.0),
        });
    }
    let terminal = &mut cumulative[(horizon - 1) * paths..];
    let horizon_var = percentile_select(terminal, 100.0 * cutoff, QuantileMethod::Linear);
    let horizon_cvar = tail_mean_unsorted(terminal, cutoff);
    Ok(MonteCarloOutcomes {
        bands,
        horizon_var,
        horizon_cvar,
    })
}

/// What [`monte_carlo_bands`] returns.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MonteCarloOutcomes {
    /// One band per step of the horizon.
    pub bands: Vec<OutcomeBand>,
    /// VaR of the cumulative return at the horizon (a loss is negative).
    pub horizon_var: f64,
    /// CVaR (expected shortfall) of the cumulative return at the horizon.
    pub horizon_cvar: f64,
}
