//! Drawdowns: the underwater curve, the maximum drawdown and its dates.
//!
//! empyrical's convention: wealth starts at a starting capital (100) that
//! counts as a peak, so a series that loses on day one is already in
//! drawdown; NaN returns count as 0 (no change).

use crate::AnalyticsError;

/// Drawdown after each return, relative to the running peak (≤ 0).
///
/// empyrical `drawdown_series` (ndarray flavour without the anchor row).
pub fn drawdown_series(returns: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(returns.len());
    walk(returns, |_, dd, _| out.push(dd));
    out
}

/// Walks the wealth curve the way empyrical builds it: `W = 100·cumprod(1+r)`,
/// peak `M = max(100, W…)`, drawdown `(W − M) / M`.
#[inline]
fn walk(returns: &[f64], mut visit: impl FnMut(usize, f64, f64)) {
    const START: f64 = 100.0;
    let mut growth = 1.0;
    let mut peak = START;
    for (i, &r) in returns.iter().enumerate() {
        growth *= if r.is_nan() { 1.0 } else { 1.0 + r };
        let wealth = growth * START;
        peak = peak.max(wealth);
        visit(i, (wealth - peak) / peak, wealth);
    }
}

/// Maximum drawdown, a number in `[−1, 0]`.
///
/// empyrical `max_drawdown`: the minimum of [`drawdown_series`] (NaN values
/// skipped); NaN for an empty series.
pub fn max_drawdown(returns: &[f64]) -> f64 {
    let mut worst = f64::NAN;
    walk(returns, |_, dd, _| {
        if !dd.is_nan() && (worst.is_nan() || dd < worst) {
            worst = dd;
        }
    });
    worst
}

/// Where the maximum drawdown happened, as indices into the returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawdownDetails {
    /// The maximum drawdown (≤ 0).
    pub max_drawdown: f64,
    /// Index of the last observation at the peak before the trough; `None`
    /// when the peak is the starting capital (before the first observation),
    /// or when there is no drawdown at all.
    pub peak: Option<usize>,
    /// Index of the trough (first occurrence of the maximum drawdown);
    /// `None` when there is no drawdown.
    pub trough: Option<usize>,
    /// Index of the first observation after the trough whose wealth is back
    /// at or above the peak; `None` if it never recovers.
    pub recovery: Option<usize>,
}

/// Maximum drawdown with its peak, trough and recovery positions.
///
/// Errors with [`AnalyticsError::Empty`] on an empty series.
pub fn max_drawdown_details(returns: &[f64]) -> Result<DrawdownDetails, AnalyticsError> {
    if returns.is_empty() {
        return Err(AnalyticsError::Empty);
    }
    // Pass 1: trough and the peak level and position it is measured from.
    let mut worst = 0.0;
    let mut trough = None;
    let mut peak_level = 100.0;
    let mut peak_at: Option<usize> = None;
    let mut running_peak = 100.0;
    let mut running_peak_at: Option<usize> = None;
    walk(returns, |i, dd, wealth| {
        if wealth >= running_peak {
            running_peak = wealth;
            running_peak_at = Some(i);
        }
        if dd < worst {
            worst = dd;
            trough = Some(i);
            peak_level = running_peak;
            peak_at = running_peak_at;
        }
    });
    let Some(t) = trough else {
        return Ok(DrawdownDetails {
            max_drawdown: max_drawdown(returns),
            peak: None,
            trough: None,
            recovery: None,
        });
    };
    // Pass 2: first return to the peak level after the trough.
    let mut recovery = None;
    walk(returns, |i, _, wealth| {
        if recovery.is_none() && i > t && wealth >= peak_level {
            recovery = Some(i);
        }
    });
    Ok(DrawdownDetails {
        max_drawdown: worst,
        peak: peak_at,
        trough: Some(t),
        recovery,
    })
}

/// Maximum drawdown as empyrical computes it (`(W − M) / M` with starting
/// capital 100 as the first peak), dividing once per peak epoch.
pub(crate) struct DrawdownTracker {
    peak: f64,
    epoch_low: f64,
    worst: f64,
    seen: bool,
}

impl DrawdownTracker {
    pub(crate) fn new() -> Self {
        Self::starting_at(100.0)
    }

    /// A tracker whose first peak is the starting capital `start`.
    pub(crate) fn starting_at(start: f64) -> Self {
        DrawdownTracker {
            peak: start,
            epoch_low: f64::INFINITY,
            worst: f64::NAN,
            seen: false,
        }
    }

    #[inline]
    pub(crate) fn observe(&mut self, wealth: f64) {
        self.seen = true;
        // NaN wealth has NaN drawdown, which empyrical's nanmin skips.
        // The epoch's low is a branch-free minimum (new lows are frequent and
        // unpredictable); a new peak is above the low, so it leaves it alone.
        self.epoch_low = if wealth < self.epoch_low {
            wealth
        } else {
            self.epoch_low
        };
        if wealth >= self.peak {
            self.close_epoch();
            self.peak = wealth;
            self.epoch_low = wealth;
        }
    }

    fn close_epoch(&mut self) {
        if self.epoch_low.is_finite() || self.epoch_low == f64::NEG_INFINITY {
            let dd = (self.epoch_low - self.peak) / self.peak;
            if !dd.is_nan() && (self.worst.is_nan() || dd < self.worst) {
                self.worst = dd;
            }
        }
    }

    pub(crate) fn finish(mut self) -> f64 {
        self.close_epoch();
        if self.seen { self.worst } else { f64::NAN }
    }
}
