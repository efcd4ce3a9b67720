//! Compensated summation and NaN-skipping sample moments.
//!
//! Every sum in the crate goes through [`NeumaierSum`], so a long series of
//! small returns loses no more than a couple of ulps however it is ordered.
//! Means and standard deviations skip NaN like numpy's/bottleneck's
//! `nanmean`/`nanstd`, which empyrical uses; the standard deviation is
//! two-pass (mean first, then centred squares), as bottleneck computes it.

/// Neumaier's improved Kahan–Babuška summation.
///
/// ```
/// use rampart_analytics::moments::NeumaierSum;
/// let mut s = NeumaierSum::default();
/// for x in [1.0, 1e100, 1.0, -1e100] {
///     s.add(x);
/// }
/// assert_eq!(s.value(), 2.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NeumaierSum {
    sum: f64,
    compensation: f64,
}

impl NeumaierSum {
    /// Adds one term.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        // Branch-free: the compiler turns the selects into blends.
        let (big, small) = if self.sum.abs() >= x.abs() {
            (self.sum, x)
        } else {
            (x, self.sum)
        };
        self.compensation += (big - t) + small;
        self.sum = t;
    }

    /// The compensated total.
    #[inline]
    pub fn value(&self) -> f64 {
        let v = self.sum + self.compensation;
        // Infinite terms make the compensation NaN; the plain sum is right then.
        if v.is_nan() && !self.sum.is_nan() {
            self.sum
        } else {
            v
        }
    }
}

/// Compensated sum of all values (NaN propagates).
pub fn sum(values: &[f64]) -> f64 {
    let mut s = NeumaierSum::default();
    for &x in values {
        s.add(x);
    }
    s.value()
}

/// Sum and count of the non-NaN values.
#[inline]
pub fn nan_sum_count(values: &[f64]) -> (f64, usize) {
    let mut s = NeumaierSum::default();
    let mut n = 0usize;
    for &x in values {
        if !x.is_nan() {
            s.add(x);
            n += 1;
        }
    }
    (s.value(), n)
}

/// Mean of the non-NaN values; NaN if there are none (numpy `nanmean`).
pub fn nan_mean(values: &[f64]) -> f64 {
    let (s, n) = nan_sum_count(values);
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// Standard deviation of the non-NaN values with `ddof` delta degrees of
/// freedom; NaN when `count <= ddof` (bottleneck `nanstd`).
pub fn nan_std(values: &[f64], ddof: usize) -> f64 {
    let (s, n) = nan_sum_count(values);
    if n <= ddof {
        return f64::NAN;
    }
    let mean = s / n as f64;
    let mut ss = NeumaierSum::default();
    for &x in values {
        if !x.is_nan() {
            let d = x - mean;
            ss.add(d * d);
        }
    }
    (ss.value() / (n - ddof) as f64).sqrt()
}

/// Minimum and maximum of the non-NaN values (`None` if there are none).
pub fn nan_min_max(values: &[f64]) -> Option<(f64, f64)> {
    let mut it = values.iter().copied().filter(|x| !x.is_nan());
    let first = it.next()?;
    Some(it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x))))
}

/// Central moments of the non-NaN values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CentralMoments {
    /// Number of non-NaN observations.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Second central moment, divided by n.
    pub m2: f64,
    /// Third central moment, divided by n.
    pub m3: f64,
    /// Fourth central moment, divided by n.
    pub m4: f64,
}

impl CentralMoments {
    /// Two-pass central moments of the non-NaN values.
    pub fn of(values: &[f64]) -> Self {
        let (s, count) = nan_sum_count(values);
        let n = count as f64;
        let mean = if count == 0 { f64::NAN } else { s / n };
        let (mut s2, mut s3, mut s4) = (
            NeumaierSum::default(),
            NeumaierSum::default(),
            NeumaierSum::default(),
        );
        for &x in values {
            if !x.is_nan() {
                let d = x - mean;
                let d2 = d * d;
                s2.add(d2);
                s3.add(d2 * d);
                s4.add(d2 * d2);
            }
        }
        CentralMoments {
            count,
            mean,
            m2: s2.value() / n,
            m3: s3.value() / n,
            m4: s4.value() / n,
        }
    }

    /// Sample standard deviation (ddof = 1).
    pub fn sample_std(&self) -> f64 {
        if self.count < 2 {
            f64::NAN
        } else {
            (self.m2 * self.count as f64 / (self.count - 1) as f64).sqrt()
        }
    }

    /// Population skewness g1 = m3 / m2^1.5 (scipy `skew(bias=True)`).
    pub fn population_skew(&self) -> f64 {
        self.m3 / self.m2.powf(1.5)
    }

    /// Population excess kurtosis g2 = m4 / m2² − 3 (scipy `kurtosis(bias=True)`).
    pub fn population_excess_kurtosis(&self) -> f64 {
        self.m4 / (self.m2 * self.m2) - 3.0
    }

    /// Adjusted Fisher–Pearson skewness G1 (Excel `SKEW`, pandas `.skew()`,
    /// PerformanceAnalytics `skewness(method = "fisher")`).
    pub fn sample_skew(&self) -> f64 {
        let n = self.count as f64;
        if self.count < 3 {
            return f64::NAN;
        }
        self.population_skew() * (n * (n - 1.0)).sqrt() / (n - 2.0)
    }

    /// Adjusted excess kurtosis G2 (Excel `KURT`, pandas `.kurt()`,
    /// PerformanceAnalytics `kurtosis(method = "sample_excess")`).
    pub fn sample_excess_kurtosis(&self) -> f64 {
        let n = self.count as f64;
        if self.count < 4 {
            return f64::NAN;
        }
        let g2 = self.population_excess_kurtosis();
        ((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
    }
}

/// Population skewness of `returns` (scipy `stats.skew` default, which
/// empyrical lists among its stat functions). NaN if any value is NaN
/// (scipy's `nan_policy="propagate"`) or if there are fewer than 2 values.
pub fn skew(returns: &[f64]) -> f64 {
    if returns.len() < 2 || returns.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    let m = CentralMoments::of(returns);
    if m.m2 == 0.0 {
        return f64::NAN;
    }
    m.population_skew()
}

/// Population excess kurtosis of `returns` (scipy `stats.kurtosis` default:
/// Fisher, biased). NaN under the same conditions as [`skew`].
pub fn kurtosis(returns: &[f64]) -> f64 {
    if returns.len() < 2 || returns.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    let m = CentralMoments::of(returns);
    if m.m2 == 0.0 {
        return f64::NAN;
    }
    m.population_excess_kurtosis()
}

/// One-stream summary used by the ratio functions: count, mean, sample
/// standard deviation (two-pass) and range of the non-NaN values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Summary {
    pub count: usize,
    pub mean: f64,
    pub sample_std: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// Summarizes a stream that can be replayed (two passes, no allocation).
    pub(crate) fn of<I: Iterator<Item = f64> + Clone>(values: I) -> Self {
        let mut s = NeumaierSum::default();
        let mut count = 0usize;
        let (mut min, mut max) = (f64::NAN, f64::NAN);
        for x in values.clone() {
            if !x.is_nan() {
                s.add(x);
                count += 1;
                min = if min.is_nan() { x } else { min.min(x) };
                max = if max.is_nan() { x } else { max.max(x) };
            }
        }
        let mean = if count == 0 {
            f64::NAN
        } else {
            s.value() / count as f64
        };
        let sample_std = if count < 2 {
            f64::NAN
        } else {
            let mut ss = NeumaierSum::default();
            for x in values {
                if !x.is_nan() {
                    let d = x - mean;
                    ss.add(d * d);
                }
            }
            (ss.value() / (count - 1) as f64).sqrt()
        };
        Summary {
            count,
            mean,
            sample_std,
            min,
            max,
        }
    }

    /// empyrical's `_zero_dispersion_std`: a window whose values are all equal
    /// has a standard deviation of exactly 0, not a rounding residue.
    pub(crate) fn zero_dispersion_std(&self) -> f64 {
        if self.max == self.min && self.sample_std.is_finite() {
            0.0
        } else {
            self.sample_std
        }
    }
}

/// `nanmean(values − shift)` without allocating.
pub(crate) fn nan_mean_shifted(values: &[f64], shift: f64) -> f64 {
    let mut s = NeumaierSum::default();
    let mut n = 0usize;
    for &x in values {
        let d = x - shift;
        if !d.is_nan() {
            s.add(d);
            n += 1;
        }
    }
    if n == 0 {
        f64::NAN
    } else {
        s.value() / n as f64
    }
}
