//! Returns from prices, and cumulative returns.

/// Simple returns `(p[t] − p[t−1]) / p[t−1]`, one fewer than the prices.
///
/// empyrical `simple_returns` on an ndarray: the difference is taken first,
/// then divided, so the results are bit-for-bit numpy's. A NaN price gives NaN
/// returns on both sides of it (pandas `pct_change` without filling); a zero
/// price gives ±inf or NaN, exactly as numpy does. Fewer than two prices give
/// an empty vector.
pub fn simple_returns(prices: &[f64]) -> Vec<f64> {
    prices.windows(2).map(|w| (w[1] - w[0]) / w[0]).collect()
}

/// Log returns `ln(p[t] / p[t−1])`, one fewer than the prices.
///
/// Not in empyrical; computed as numpy's `np.log(p[1:] / p[:-1])`.
pub fn log_returns(prices: &[f64]) -> Vec<f64> {
    prices.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

/// Cumulative returns `∏(1 + r) − 1` at each step.
///
/// empyrical `cum_returns(starting_value=0)`: NaN returns count as 0 (no
/// change), the product is a plain running product (numpy `cumprod`).
pub fn cum_returns(returns: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; returns.len()];
    cum_returns_into(returns, &mut out);
    out
}

/// [`cum_returns`] into a caller-provided buffer (no allocation).
///
/// Only `min(returns.len(), out.len())` values are written.
pub fn cum_returns_into(returns: &[f64], out: &mut [f64]) {
    let mut wealth = 1.0;
    for (o, &r) in out.iter_mut().zip(returns) {
        wealth *= if r.is_nan() { 1.0 } else { 1.0 + r };
        *o = wealth - 1.0;
    }
}

/// Total compounded return `∏(1 + r) − 1`.
///
/// empyrical `cum_returns_final`: NaN for an empty series; NaN returns are
/// skipped (numpy `nanprod`), so an all-NaN series gives 0.
pub fn cum_returns_final(returns: &[f64]) -> f64 {
    if returns.is_empty() {
        return f64::NAN;
    }
    growth(returns) - 1.0
}

/// `∏(1 + r)` over the non-NaN returns (numpy `nanprod(1 + r)`).
#[inline]
pub(crate) fn growth(returns: &[f64]) -> f64 {
    let mut g = 1.0;
    for &r in returns {
        if !r.is_nan() {
            g *= 1.0 + r;
        }
    }
    g
}
