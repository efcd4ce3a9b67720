//! Returns of an account with external cash flows: time-weighted (TWR,
//! Modified Dietz) and money-weighted (XIRR).

use chrono::NaiveDate;

use crate::AnalyticsError;

/// An external cash flow: positive into the account (contribution), negative out.
///
/// For [`xirr`] the sign is the investor's: money paid in is negative, money
/// received positive (Excel's convention). Either way, what matters is that
/// both signs occur.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CashFlow {
    /// Date of the flow.
    pub date: NaiveDate,
    /// Amount.
    pub amount: f64,
}

/// A valuation of the account, with the external flow that happened that day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Valuation {
    /// Valuation date.
    pub date: NaiveDate,
    /// Market value at the end of the day.
    pub value: f64,
    /// Net external flow on that day (positive = contribution). Ignored on
    /// the first valuation, which is the opening value.
    pub flow: f64,
}

/// When, within a day, an external flow is assumed to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlowTiming {
    /// At the end of the day: it earns nothing that day; the day's return is
    /// `(V_t − F_t) / V_{t−1} − 1` (the usual convention for daily-valued accounts).
    #[default]
    EndOfDay,
    /// At the start of the day: it earns the day's return;
    /// `V_t / (V_{t−1} + F_t) − 1`.
    StartOfDay,
}

fn check_finite(index: usize, x: f64) -> Result<(), AnalyticsError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(AnalyticsError::NonFinite { index })
    }
}

/// Sub-period returns between consecutive valuations (daily-linked TWR pieces).
///
/// Errors: fewer than 2 valuations, non-increasing dates, non-finite values,
/// or a non-positive capital base for some sub-period.
pub fn sub_period_returns(
    valuations: &[Valuation],
    timing: FlowTiming,
) -> Result<Vec<f64>, AnalyticsError> {
    if valuations.len() < 2 {
        return Err(AnalyticsError::TooShort {
            needed: 2,
            got: valuations.len(),
        });
    }
    let mut out = Vec::with_capacity(valuations.len() - 1);
    for (i, w) in valuations.windows(2).enumerate() {
        let (prev, cur) = (w[0], w[1]);
        let index = i + 1;
        if cur.date <= prev.date {
            return Err(AnalyticsError::NonIncreasingDates { index });
        }
        check_finite(i, prev.value)?;
        check_finite(index, cur.value)?;
        check_finite(index, cur.flow)?;
        let (gain_base, end) = match timing {
            FlowTiming::EndOfDay => (prev.value, cur.value - cur.flow),
            FlowTiming::StartOfDay => (prev.value + cur.flow, cur.value),
        };
        if gain_base <= 0.0 {
            return Err(AnalyticsError::NonPositiveCapital { index });
        }
        out.push(end / gain_base - 1.0);
    }
    Ok(out)
}

/// Time-weighted return: sub-period returns linked geometrically,
/// `∏(1 + r_t) − 1`. Without flows this is `V_end / V_start − 1`.
///
/// ```
/// use chrono::NaiveDate;
/// use rampart_analytics::cash_flow::{time_weighted_return, FlowTiming, Valuation};
/// let d = |m, day| NaiveDate::from_ymd_opt(2024, m, day).unwrap();
/// let vals = [
///     Valuation { date: d(1, 1), value: 100.0, flow: 0.0 },
///     Valuation { date: d(1, 2), value: 110.0, flow: 0.0 },   // +10%
///     Valuation { date: d(1, 3), value: 160.0, flow: 50.0 },  // 50 deposited, flat day
///     Valuation { date: d(1, 4), value: 176.0, flow: 0.0 },   // +10%
/// ];
/// let twr = time_weighted_return(&vals, FlowTiming::EndOfDay).unwrap();
/// assert!((twr - 0.21).abs() < 1e-12);
/// ```
pub fn time_weighted_return(
    valuations: &[Valuation],
    timing: FlowTiming,
) -> Result<f64, AnalyticsError> {
    let subs = sub_period_returns(valuations, timing)?;
    Ok(subs.iter().fold(1.0, |g, r| g * (1.0 + r)) - 1.0)
}

/// Modified Dietz return for one period:
/// `(V_end − V_start − ΣF) / (V_start + Σ w_i F_i)`, `w_i = (D − d_i) / D`,
/// with `D` the calendar days in the period and `d_i` the days from the start
/// to flow `i` (a flow on the start date has full weight).
///
/// Errors: end not after start, a flow outside the period, non-finite
/// inputs, or a non-positive average capital.
pub fn modified_dietz(
    start: NaiveDate,
    start_value: f64,
    end: NaiveDate,
    end_value: f64,
    flows: &[CashFlow],
) -> Result<f64, AnalyticsError> {
    if end <= start {
        return Err(AnalyticsError::NonIncreasingDates { index: 1 });
    }
    check_finite(0, start_value)?;
    check_finite(1, end_value)?;
    let days = (end - start).num_days() as f64;
    let (mut net, mut weighted) = (0.0, 0.0);
    for (i, f) in flows.iter().enumerate() {
        check_finite(i, f.amount)?;
        if f.date < start || f.date > end {
            return Err(AnalyticsError::InvalidParameter {
                name: "flows",
                reason: format!("flow {i} on {} is outside {start}..={end}", f.date),
            });
        }
        let weight = (days - (f.date - start).num_days() as f64) / days;
        net += f.amount;
        weighted += weight * f.amount;
    }
    let capital = start_value + weighted;
    if capital <= 0.0 {
        return Err(AnalyticsError::NonPositiveCapital { index: 0 });
    }
    Ok((end_value - start_value - net) / capital)
}

/// Settings of the XIRR solver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XirrOptions {
    /// Starting rate for Newton's method (Excel's default is 0.1).
    pub guess: f64,
    /// Convergence tolerance on the rate.
    pub tolerance: f64,
    /// Newton iterations before falling back to bracketing.
    pub max_newton_iterations: usize,
    /// Day count of a year (Excel uses 365).
    pub days_per_year: f64,
}

impl Default for XirrOptions {
    fn default() -> Self {
        XirrOptions {
            guess: 0.1,
            tolerance: 1e-12,
            max_newton_iterations: 50,
            days_per_year: 365.0,
        }
    }
}

/// Net present value of dated flows at an annual `rate`, discounting to the
/// earliest date with `(1 + rate)^(days / 365)` (Excel `XNPV`).
pub fn xnpv(rate: f64, flows: &[CashFlow]) -> f64 {
    let Some(t0) = flows.iter().map(|f| f.date).min() else {
        return 0.0;
    };
    let x = rate.ln_1p();
    flows
        .iter()
        .map(|f| f.amount * (-(f.date - t0).num_days() as f64 / 365.0 * x).exp())
        .sum()
}

/// Money-weighted return: the annual rate that makes the flows' NPV zero
/// (Excel `XIRR`, 365-day years, discounted to the earliest date).
///
/// Newton's method from 10%; if it fails to converge or leaves (−100%, ∞),
/// the rate is bracketed on a grid of `ln(1 + r)` and bisected, so a root is
/// found whenever one exists in (−100%, e^10 − 1). With several roots, the
/// one Newton reaches from the guess (or the bracketed one nearest to it) is
/// returned.
///
/// Errors: fewer than 2 flows, non-finite amounts, all flows of one sign
/// ([`AnalyticsError::NoSignChange`]), or no root
/// ([`AnalyticsError::NoRoot`]).
///
/// ```
/// use chrono::NaiveDate;
/// use rampart_analytics::cash_flow::{xirr, CashFlow};
/// let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
/// let flows = [
///     CashFlow { date: d(2023, 1, 1), amount: -1000.0 },
///     CashFlow { date: d(2024, 1, 1), amount: 1100.0 },
/// ];
/// assert!((xirr(&flows).unwrap() - 0.10).abs() < 1e-12);
/// ```
pub fn xirr(flows: &[CashFlow]) -> Result<f64, AnalyticsError> {
    xirr_with(flows, &XirrOptions::default())
}

/// [`xirr`] with explicit solver settings.
pub fn xirr_with(flows: &[CashFlow], options: &XirrOptions) -> Result<f64, AnalyticsError> {
    if flows.len() < 2 {
        return Err(AnalyticsError::TooShort {
            needed: 2,
            got: flows.len(),
        });
    }
    for (i, f) in flows.iter().enumerate() {
        check_finite(i, f.amount)?;
    }
    if !(flows.iter().any(|f| f.amount > 0.0) && flows.iter().any(|f| f.amount < 0.0)) {
        return Err(AnalyticsError::NoSignChange);
    }
    let t0 = flows
        .iter()
        .map(|f| f.date)
        .min()
        .ok_or(AnalyticsError::Empty)?;
    let times: Vec<(f64, f64)> = flows
        .iter()
        .map(|f| {
            (
                (f.date - t0).num_days() as f64 / options.days_per_year,
                f.amount,
            )
        })
        .collect();
    // Work in x = ln(1 + r): the domain r > -1 becomes the whole real line.
    let npv = |x: f64| -> (f64, f64) {
        let (mut v, mut dv) = (0.0, 0.0);
        for &(t, c) in &times {
            let term = c * (-t * x).exp();
            v += term;
            dv -= t * term;
        }
        (v, dv)
    };
    let scale: f64 = times.iter().map(|&(_, c)| c.abs()).sum();

    if options.guess > -1.0 {
        let mut x = options.guess.ln_1p();
        for _ in 0..options.max_newton_iterations {
            let (v, dv) = npv(x);
            if !v.is_finite() || !dv.is_finite() || dv == 0.0 {
                break;
            }
            let step = v / dv;
            let next = x - step;
            if !next.is_finite() || next.abs() > 50.0 {
                break;
            }
            x = next;
            if step.abs() <= options.tolerance * (1.0 + x.abs()) {
                if npv(x).0.abs() <= 1e-9 * scale {
                    return Ok(x.exp_m1());
                }
                break;
            }
        }
    }

    // Bracketing fallback: scan x in [-20, 10] outward from the guess.
    let x_guess = if options.guess > -1.0 {
        options.guess.ln_1p().clamp(-20.0, 10.0)
    } else {
        0.0
    };
    const STEP: f64 = 0.01;
    let sign_change = |a: f64, b: f64| -> Option<(f64, f64)> {
        let (va, vb) = (npv(a).0, npv(b).0);
        (va.is_finite() && vb.is_finite() && (va == 0.0 || va.signum() != vb.signum()))
            .then_some((a, b))
    };
    let mut bracket = None;
    for k in 0..3000 {
        let up = x_guess + k as f64 * STEP;
        let down = x_guess - k as f64 * STEP;
        if up < 10.0
            && let Some(b) = sign_change(up, up + STEP)
        {
            bracket = Some(b);
            break;
        }
        if down > -20.0
            && let Some(b) = sign_change(down - STEP, down)
        {
            bracket = Some(b);
            break;
        }
        if up >= 10.0 && down <= -20.0 {
            break;
        }
    }
    let (mut lo, mut hi) = bracket.ok_or(AnalyticsError::NoRoot)?;
    let mut v_lo = npv(lo).0;
    if v_lo == 0.0 {
        return Ok(lo.exp_m1());
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        let v_mid = npv(mid).0;
        if v_mid == 0.0 {
            return Ok(mid.exp_m1());
        }
        if v_mid.signum() == v_lo.signum() {
            lo = mid;
            v_lo = v_mid;
        } else {
            hi = mid;
        }
    }
    Ok((0.5 * (lo + hi)).exp_m1())
}
