//! Rolling-window metrics in O(n) per series.
//!
//! Window semantics follow empyrical's `roll_*` functions: with `n` returns
//! and window `w`, the output has `n − w + 1` values (the window ending at
//! each position from `w − 1` on); if `n < w`, one value over the whole
//! series; an empty series gives an empty output. A window of 0 is an error.
//!
//! Means and variances use Welford updates (add the entering value, remove
//! the leaving one). Removal accumulates rounding error, so the moments are
//! recomputed exactly from the window once every `w` steps (amortized O(1)),
//! and also whenever a running error bound exceeds 1e-12 of the current
//! spread — which happens when a value that dominated the spread leaves and
//! the remaining ones are nearly equal (catastrophic cancellation). On market
//! data that is rare, so the cost stays O(n). Drawdowns use a
//! block-decomposed prefix/suffix scan of an associative drawdown summary,
//! exact and O(n).

use crate::moments::NeumaierSum;
use crate::{AnalyticsError, Period};

fn effective_window(n: usize, window: usize) -> Result<usize, AnalyticsError> {
    if window == 0 {
        return Err(AnalyticsError::InvalidParameter {
            name: "window",
            reason: "must be at least 1".into(),
        });
    }
    Ok(window.min(n))
}

/// Rounding-error allowance per update, and the relative error at which a
/// window's moments are recomputed exactly.
const UPDATE_EPS: f64 = 4.0 * f64::EPSILON;
const REFRESH_REL_ERR: f64 = 1e-12;

/// Welford accumulator for one variable that supports removal.
///
/// `err` bounds the absolute rounding error accumulated in `m2`. Removing a
/// value that dominated the spread leaves an error relative to the *old*
/// spread, which can swamp a much smaller new one (catastrophic
/// cancellation); when the bound exceeds `REFRESH_REL_ERR · m2`, the caller
/// recomputes the window exactly.
#[derive(Debug, Clone, Copy, Default)]
struct Welford {
    n: usize,
    mean: f64,
    m2: f64,
    err: f64,
}

impl Welford {
    #[inline]
    fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        let inc = d * (x - self.mean);
        self.m2 += inc;
        self.err += UPDATE_EPS * (inc.abs() + self.m2.abs());
    }

    #[inline]
    fn remove(&mut self, x: f64) {
        if self.n <= 1 {
            *self = Welford::default();
            return;
        }
        let n1 = (self.n - 1) as f64;
        let d = x - self.mean;
        let mean_new = self.mean - d / n1;
        let dec = (x - mean_new) * d;
        self.err += UPDATE_EPS * (dec.abs() + self.m2.abs());
        self.m2 -= dec;
        self.mean = mean_new;
        self.n -= 1;
        if self.n == 1 {
            // One value has no spread; drop the rounding residue.
            self.m2 = 0.0;
            self.err = 0.0;
        }
    }

    /// True when accumulated rounding could exceed the refresh tolerance.
    #[inline]
    fn needs_refresh(&self) -> bool {
        self.err > REFRESH_REL_ERR * self.m2.abs()
    }

    /// Exact two-pass recomputation over the non-NaN values of a window.
    fn recompute(values: impl Iterator<Item = f64> + Clone) -> Self {
        let mut s = NeumaierSum::default();
        let mut n = 0usize;
        for x in values.clone().filter(|x| !x.is_nan()) {
            s.add(x);
            n += 1;
        }
        if n == 0 {
            return Welford::default();
        }
        let mean = s.value() / n as f64;
        let mut ss = NeumaierSum::default();
        for x in values.filter(|x| !x.is_nan()) {
            ss.add((x - mean) * (x - mean));
        }
        let m2 = ss.value();
        Welford {
            n,
            mean,
            m2,
            err: UPDATE_EPS * m2,
        }
    }

    fn sample_std(&self) -> f64 {
        if self.n < 2 {
            f64::NAN
        } else {
            (self.m2.max(0.0) / (self.n - 1) as f64).sqrt()
        }
    }
}

/// Tracks whether the non-NaN values seen in a sliding window are all equal,
/// in O(1) per step: remember the position of the value before the most
/// recent change; the window starting at `s` is constant iff that position
/// lies before `s`.
#[derive(Debug, Default)]
struct ConstancyTracker {
    last_change_prev: Option<usize>,
    prev_valid: Option<(usize, f64)>,
}

impl ConstancyTracker {
    #[inline]
    fn observe(&mut self, i: usize, x: f64) {
        if let Some((pi, pv)) = self.prev_valid
            && pv != x
        {
            self.last_change_prev = Some(pi);
        }
        self.prev_valid = Some((i, x));
    }

    #[inline]
    fn constant_since(&self, s: usize) -> bool {
        self.last_change_prev.is_none_or(|p| p < s)
    }
}

/// Drives a Welford window over `values − shift`, calling `emit` with the
/// accumulator and whether the window's non-NaN values are all equal.
fn roll_welford(values: &[f64], w: usize, shift: f64, mut emit: impl FnMut(&Welford, bool)) {
    let n = values.len();
    let v = |i: usize| values[i] - shift;
    let mut acc = Welford::default();
    let mut tracker = ConstancyTracker::default();
    for e in 0..n {
        let x = v(e);
        if !x.is_nan() {
            acc.add(x);
            tracker.observe(e, x);
        }
        if e + 1 > w {
            let old = v(e - w);
            if !old.is_nan() {
                acc.remove(old);
            }
        }
        if e + 1 >= w {
            let s = e + 1 - w;
            if (s.is_multiple_of(w) && s > 0) || acc.needs_refresh() {
                acc = Welford::recompute((s..=e).map(v));
            }
            let constant = acc.n > 0 && tracker.constant_since(s);
            emit(&acc, constant);
        }
    }
}

/// Rolling annualized volatility (empyrical `roll_annual_volatility`).
///
/// Each window is [`annual_volatility`](crate::annual_volatility): ddof 1,
/// NaN skipped, NaN when the window has fewer than 2 values.
pub fn rolling_volatility(
    returns: &[f64],
    window: usize,
    period: Period,
) -> Result<Vec<f64>, AnalyticsError> {
    let w = effective_window(returns.len(), window)?;
    let mut out = Vec::with_capacity(returns.len().saturating_sub(w) + 1);
    if returns.is_empty() {
        return Ok(Vec::new());
    }
    let scale = period.annualization().powf(0.5);
    roll_welford(returns, w, 0.0, |acc, constant| {
        let std = acc.sample_std();
        // A constant window has no spread; don't report the Welford residue.
        let std = if constant && std.is_finite() {
            0.0
        } else {
            std
        };
        out.push(if w < 2 { f64::NAN } else { std * scale })
    });
    Ok(out)
}

/// Rolling Sharpe ratio (empyrical `roll_sharpe_ratio`), per-period risk-free rate.
///
/// Each window is [`sharpe_ratio`](crate::sharpe_ratio), including the rule
/// that a constant window has s.d. exactly 0.
pub fn rolling_sharpe(
    returns: &[f64],
    window: usize,
    risk_free: f64,
    period: Period,
) -> Result<Vec<f64>, AnalyticsError> {
    let w = effective_window(returns.len(), window)?;
    if returns.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(returns.len() - w + 1);
    let scale = period.annualization().sqrt();
    roll_welford(returns, w, risk_free, |acc, constant| {
        if w < 2 {
            out.push(f64::NAN);
            return;
        }
        let std = acc.sample_std();
        let std = if constant && std.is_finite() {
            0.0
        } else {
            std
        };
        let mean = if acc.n == 0 { f64::NAN } else { acc.mean };
        out.push(mean / std * scale);
    });
    Ok(out)
}

/// Bivariate Welford accumulator (benchmark `x`, returns `y`), with error
/// bounds as in [`Welford`]; the co-moment's error is judged against
/// `√(m2_x·m2_y)`, i.e. the correlation is kept accurate to ~1e-12.
#[derive(Debug, Clone, Copy, Default)]
struct Comoments {
    n: usize,
    mean_x: f64,
    mean_y: f64,
    m2_x: f64,
    m2_y: f64,
    c_xy: f64,
    err_x: f64,
    err_c: f64,
}

impl Comoments {
    #[inline]
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1;
        let n = self.n as f64;
        let dx = x - self.mean_x;
        let dy = y - self.mean_y;
        self.mean_x += dx / n;
        self.mean_y += dy / n;
        let ix = dx * (x - self.mean_x);
        let iy = dy * (y - self.mean_y);
        let ic = dx * (y - self.mean_y);
        self.m2_x += ix;
        self.m2_y += iy;
        self.c_xy += ic;
        self.err_x += UPDATE_EPS * (ix.abs() + self.m2_x.abs());
        self.err_c += UPDATE_EPS * (ic.abs() + self.c_xy.abs());
    }

    #[inline]
    fn remove(&mut self, x: f64, y: f64) {
        if self.n <= 1 {
            *self = Comoments::default();
            return;
        }
        let n1 = (self.n - 1) as f64;
        let dx = x - self.mean_x;
        let dy = y - self.mean_y;
        let mean_x_new = self.mean_x - dx / n1;
        let mean_y_new = self.mean_y - dy / n1;
        let dec_x = (x - mean_x_new) * dx;
        let dec_y = (y - mean_y_new) * dy;
        let dec_c = (x - mean_x_new) * dy;
        self.err_x += UPDATE_EPS * (dec_x.abs() + self.m2_x.abs());
        self.err_c += UPDATE_EPS * (dec_c.abs() + self.c_xy.abs());
        self.m2_x -= dec_x;
        self.m2_y -= dec_y;
        self.c_xy -= dec_c;
        self.mean_x = mean_x_new;
        self.mean_y = mean_y_new;
        self.n -= 1;
        if self.n == 1 {
            *self = Comoments {
                n: 1,
                mean_x: self.mean_x,
                mean_y: self.mean_y,
                ..Comoments::default()
            };
        }
    }

    #[inline]
    fn needs_refresh(&self) -> bool {
        self.err_x > REFRESH_REL_ERR * self.m2_x.abs()
            || self.err_c > REFRESH_REL_ERR * (self.m2_x.abs() * self.m2_y.abs()).sqrt()
    }

    fn recompute(pairs: impl Iterator<Item = (f64, f64)> + Clone) -> Self {
        let valid = |&(x, y): &(f64, f64)| !x.is_nan() && !y.is_nan();
        let (mut sx, mut sy) = (NeumaierSum::default(), NeumaierSum::default());
        let mut n = 0usize;
        for (x, y) in pairs.clone().filter(valid) {
            sx.add(x);
            sy.add(y);
            n += 1;
        }
        if n == 0 {
            return Comoments::default();
        }
        let (mean_x, mean_y) = (sx.value() / n as f64, sy.value() / n as f64);
        let (mut m2x, mut m2y, mut c) = (
            NeumaierSum::default(),
            NeumaierSum::default(),
            NeumaierSum::default(),
        );
        for (x, y) in pairs.filter(valid) {
            m2x.add((x - mean_x) * (x - mean_x));
            m2y.add((y - mean_y) * (y - mean_y));
            c.add((x - mean_x) * (y - mean_y));
        }
        let (m2_x, m2_y, c_xy) = (m2x.value(), m2y.value(), c.value());
        Comoments {
            n,
            mean_x,
            mean_y,
            m2_x,
            m2_y,
            c_xy,
            err_x: UPDATE_EPS * m2_x,
            err_c: UPDATE_EPS * c_xy.abs(),
        }
    }
}

/// Rolling beta against a benchmark (empyrical `roll_beta`).
///
/// Each window is [`beta`](crate::beta): rows where both are non-NaN; a
/// benchmark variance below 1e-30 gives NaN; windows shorter than 2 give NaN.
pub fn rolling_beta(
    returns: &[f64],
    benchmark: &[f64],
    window: usize,
) -> Result<Vec<f64>, AnalyticsError> {
    if returns.len() != benchmark.len() {
        return Err(AnalyticsError::LengthMismatch {
            left: returns.len(),
            right: benchmark.len(),
        });
    }
    let n = returns.len();
    let w = effective_window(n, window)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let pair = |i: usize| (benchmark[i], returns[i]);
    let valid = |(x, y): (f64, f64)| !x.is_nan() && !y.is_nan();
    let mut acc = Comoments::default();
    let mut tracker = ConstancyTracker::default();
    let mut out = Vec::with_capacity(n - w + 1);
    for e in 0..n {
        let p = pair(e);
        if valid(p) {
            acc.add(p.0, p.1);
            tracker.observe(e, p.0);
        }
        if e + 1 > w {
            let old = pair(e - w);
            if valid(old) {
                acc.remove(old.0, old.1);
            }
        }
        if e + 1 >= w {
            let s = e + 1 - w;
            if (s.is_multiple_of(w) && s > 0) || acc.needs_refresh() {
                acc = Comoments::recompute((s..=e).map(pair));
            }
            // A constant benchmark has zero variance (empyrical: below 1e-30).
            let beta = if w < 2 || acc.n == 0 || tracker.constant_since(s) {
                f64::NAN
            } else {
                let var = acc.m2_x / acc.n as f64;
                if var < 1.0e-30 {
                    f64::NAN
                } else {
                    (acc.c_xy / acc.n as f64) / var
                }
            };
            out.push(beta);
        }
    }
    Ok(out)
}

/// Associative summary of a run of returns for drawdown purposes. Wealth
/// levels are relative to the run's start (1.0 before the first return).
#[derive(Debug, Clone, Copy)]
struct DrawdownSummary {
    /// Product of `1 + r` over the run.
    growth: f64,
    /// Highest wealth level in the run, the starting level included.
    high: f64,
    /// Lowest wealth level in the run, the starting level included.
    low: f64,
    /// Lowest ratio of a later level to an earlier peak (1 + max drawdown).
    worst: f64,
}

impl DrawdownSummary {
    const EMPTY: DrawdownSummary = DrawdownSummary {
        growth: 1.0,
        high: 1.0,
        low: 1.0,
        worst: 1.0,
    };

    fn of(r: f64) -> Self {
        let g = if r.is_nan() { 1.0 } else { 1.0 + r };
        DrawdownSummary {
            growth: g,
            high: g.max(1.0),
            low: g.min(1.0),
            worst: g.min(1.0),
        }
    }

    /// `self` followed by `next`.
    #[inline]
    fn then(self, next: DrawdownSummary) -> Self {
        DrawdownSummary {
            growth: self.growth * next.growth,
            high: self.high.max(self.growth * next.high),
            low: self.low.min(self.growth * next.low),
            worst: self
                .worst
                .min(next.worst)
                .min(self.growth * next.low / self.high),
        }
    }
}

/// Calls `emit` with the summary of every window, in O(n): windows are split
/// at multiples of `w` into a suffix of one block and a prefix of the next.
fn roll_drawdown(returns: &[f64], w: usize, mut emit: impl FnMut(DrawdownSummary)) {
    let n = returns.len();
    let mut prefix = vec![DrawdownSummary::EMPTY; n];
    let mut suffix = vec![DrawdownSummary::EMPTY; n];
    for (i, &r) in returns.iter().enumerate() {
        let cur = DrawdownSummary::of(r);
        prefix[i] = if i.is_multiple_of(w) {
            cur
        } else {
            prefix[i - 1].then(cur)
        };
    }
    for i in (0..n).rev() {
        let cur = DrawdownSummary::of(returns[i]);
        let block_last = i % w == w - 1 || i == n - 1;
        suffix[i] = if block_last {
            cur
        } else {
            cur.then(suffix[i + 1])
        };
    }
    for (e, &pre) in prefix.iter().enumerate().skip(w - 1) {
        let s = e + 1 - w;
        emit(if s.is_multiple_of(w) {
            pre
        } else {
            suffix[s].then(pre)
        });
    }
}

/// Rolling maximum drawdown (empyrical `roll_max_drawdown`): each window's
/// drawdown is measured from the window's own starting capital.
pub fn rolling_max_drawdown(returns: &[f64], window: usize) -> Result<Vec<f64>, AnalyticsError> {
    let w = effective_window(returns.len(), window)?;
    if returns.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(returns.len() - w + 1);
    roll_drawdown(returns, w, |s| out.push(s.worst - 1.0));
    Ok(out)
}

/// Rolling current drawdown: at the end of each window, how far wealth is
/// below the highest level reached inside the window (its starting capital
/// included). Not in empyrical.
pub fn rolling_drawdown(returns: &[f64], window: usize) -> Result<Vec<f64>, AnalyticsError> {
    let w = effective_window(returns.len(), window)?;
    if returns.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(returns.len() - w + 1);
    roll_drawdown(returns, w, |s| out.push(s.growth / s.high - 1.0));
    Ok(out)
}
