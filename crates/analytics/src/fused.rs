//! The fast path of the fused metric set, for series without NaN or
//! infinities (the common case): three passes over the data, two of them
//! written in fixed-width lanes so that the compiler vectorizes them (no
//! `unsafe`, no target-specific code), and no per-series allocation.
//!
//! * Pass 1: `ln(1 + r)` per return with [`ln_1p_small`] (a vectorizable
//!   series; returns with |r| > 1/8 are recomputed with libm `ln_1p`), then,
//!   in lanes, sums, extremes, downside, Omega and active returns.
//! * Pass 2 (serial): the running sums of the logs (stability), wealth and
//!   drawdown, and a branch-free filter that keeps the two tails of the
//!   distribution for the quantiles.
//! * Pass 3 (lanes): central moments, the stability regression sums, the
//!   benchmark covariance and the tracking-error sum of squares.
//!
//! The quantiles (VaR, CVaR, tail ratio) are then selections in the two small
//! tail buffers instead of the whole series; when the filter's thresholds
//! turn out not to contain the needed order statistics (a very skewed or
//! heavy-tailed sample), the caller falls back to selecting on a full copy.
//!
//! Sums are plain within runs of [`RUN`] elements (in [`LANES`] interleaved
//! partial sums) and Neumaier-compensated across runs (lane-wise, folded
//! once at the end), like the general path.

use crate::drawdown::DrawdownTracker;
use crate::moments::NeumaierSum;

/// Interleaved partial sums per accumulator (a multiple of every SIMD width
/// the compiler may pick for `f64`).
const LANES: usize = 4;
/// Accumulator width: the [`LANES`] SIMD lanes plus one for the last
/// `n mod LANES` values (kept apart so that the lanes stay isomorphic, which
/// is what lets the compiler vectorize them).
const WIDTH: usize = LANES + 1;
type Acc = [f64; WIDTH];
/// Run length of the plain partial sums (a multiple of [`LANES`]).
const RUN: usize = 256;
/// Shortest series handled by the fast path.
pub(crate) const MIN_LEN: usize = 16;
/// Largest |r| for which [`ln_1p_small`] is used.
const LN_1P_DOMAIN: f64 = 0.125;
/// The tail filter keeps returns beyond `mean ± TAIL_Z · sd` (about 11.5 %
/// of a normal sample on each side; 5 % + 2 order statistics are needed).
const TAIL_Z: f64 = 1.2;

/// `ln(1 + r)` for |r| ≤ [`LN_1P_DOMAIN`], within 2 ulp, branch-free so
/// that it vectorizes.
///
/// `ln(1 + r) = 2 atanh(s)` with `s = r / (2 + r)`: with `z = 2s` and
/// `v = z²`, `ln(1 + r) = z + z·Σₖ₌₁ vᵏ / (4ᵏ (2k + 1))`, summed to `k = 6`
/// (|s| ≤ 1/15, so the first omitted term is below `s¹⁴/15 < 3e-18` relative).
#[inline(always)]
pub(crate) fn ln_1p_small(r: f64) -> f64 {
    const C: [f64; 6] = [
        1.0 / 12.0,
        1.0 / 80.0,
        1.0 / 448.0,
        1.0 / 2304.0,
        1.0 / 11264.0,
        1.0 / 53248.0,
    ];
    let z = (r + r) / (2.0 + r);
    let v = z * z;
    let q = C[0] + v * (C[1] + v * (C[2] + v * (C[3] + v * (C[4] + v * C[5]))));
    z + z * (v * q)
}

/// Series-independent benchmark statistics, computed once per batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BenchStats {
    /// Mean of the benchmark (every value finite).
    pub mean: f64,
    /// `Σ (b − mean)²`.
    pub centred_squares: f64,
}

impl BenchStats {
    /// `None` if the benchmark has a NaN or an infinity (the general path
    /// then pairs the observations).
    pub(crate) fn of(b: &[f64]) -> Option<Self> {
        if b.is_empty() {
            return None;
        }
        let mut sum = NeumaierSum::default();
        for run in b.chunks(RUN) {
            sum.add(lane_sum(run, |x| x));
        }
        let sum = sum.value();
        // A NaN or an infinity makes the sum NaN or infinite.
        if !sum.is_finite() {
            return None;
        }
        let mean = sum / b.len() as f64;
        let mut ss = NeumaierSum::default();
        for run in b.chunks(RUN) {
            ss.add(lane_sum(run, |x| (x - mean) * (x - mean)));
        }
        Some(BenchStats {
            mean,
            centred_squares: ss.value(),
        })
    }
}

/// Plain sum of `f(x)` over a run in [`LANES`] partial sums.
#[inline(always)]
fn lane_sum(run: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0; WIDTH];
    each(run, |k, x| acc[k] += f(x));
    acc.iter().sum()
}

/// Calls `f(k, x)` for every value of `x`, with `k` the lane: `i mod LANES`
/// in the full quads, `LANES` for the remainder. Every accumulator is an
/// [`Acc`] updated lane-wise and reduced across lanes only at the end, so the
/// compiler turns each quad into SIMD operations; bodies are kept small (few
/// accumulators) so that they stay in registers.
#[inline(always)]
fn each(x: &[f64], mut f: impl FnMut(usize, f64)) {
    let (quads, rest) = x.as_chunks::<LANES>();
    for q in quads {
        for (k, &v) in q.iter().enumerate() {
            f(k, v);
        }
    }
    for &v in rest {
        f(LANES, v);
    }
}

/// [`each`] over pairs of equally long slices.
#[inline(always)]
fn each2(x: &[f64], y: &[f64], mut f: impl FnMut(usize, f64, f64)) {
    let (qx, rx) = x.as_chunks::<LANES>();
    let (qy, ry) = y.as_chunks::<LANES>();
    for (a, b) in qx.iter().zip(qy) {
        for k in 0..LANES {
            f(k, a[k], b[k]);
        }
    }
    for (&a, &b) in rx.iter().zip(ry) {
        f(LANES, a, b);
    }
}

/// Lane-wise Neumaier sums of the runs' plain partial sums.
#[derive(Clone, Copy)]
struct LaneSum {
    sum: Acc,
    compensation: Acc,
}

impl LaneSum {
    fn new() -> Self {
        LaneSum {
            sum: [0.0; WIDTH],
            compensation: [0.0; WIDTH],
        }
    }

    #[inline(always)]
    fn add(&mut self, x: &Acc) {
        for (k, &v) in x.iter().enumerate() {
            let s = self.sum[k];
            let t = s + v;
            let (big, small) = if s.abs() >= v.abs() { (s, v) } else { (v, s) };
            self.compensation[k] += (big - t) + small;
            self.sum[k] = t;
        }
    }

    fn value(&self) -> f64 {
        let mut total = NeumaierSum::default();
        for k in 0..WIDTH {
            total.add(self.sum[k]);
            total.add(self.compensation[k]);
        }
        total.value()
    }
}

#[inline(always)]
fn fold_min(a: Acc) -> f64 {
    a.iter().copied().fold(f64::INFINITY, f64::min)
}

#[inline(always)]
fn fold_max(a: Acc) -> f64 {
    a.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Inputs of the fast path.
pub(crate) struct Inputs<'a> {
    pub returns: &'a [f64],
    pub benchmark: Option<(&'a [f64], BenchStats)>,
    pub required: f64,
    pub omega_cut: f64,
    /// Whether to filter the tails for VaR at 5 % / tail ratio.
    pub tails: bool,
}

/// Buffers of the fast path (reused across series).
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    logs: Vec<f64>,
    tails: Vec<f64>,
}

/// Everything the metric set needs from one NaN-free series.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sums {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    /// Central moment sums `Σ d²`, `Σ d³`, `Σ d⁴`.
    pub s2: f64,
    pub s3: f64,
    pub s4: f64,
    pub growth: f64,
    pub max_drawdown: f64,
    pub downside_squares: f64,
    pub below: usize,
    pub gains: f64,
    pub losses: f64,
    /// `Σ (x − x̄)(y − ȳ) / n`, `Σ (y − ȳ)² / n`, `Σ (x − x̄)² / n` of the
    /// stability regression.
    pub sxy: f64,
    pub syy: f64,
    pub sxx: f64,
    /// Benchmark sums: mean of `r − b`, its extremes and centred squares,
    /// `Σ (b − b̄) r`.
    pub bench: Option<BenchSums>,
}

/// See [`Sums::bench`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct BenchSums {
    pub mean_b: f64,
    pub mean_active: f64,
    pub active_lo: f64,
    pub active_hi: f64,
    pub active_squares: f64,
    pub covariance: f64,
    pub variance: f64,
}

struct Means {
    r: f64,
    y: f64,
    b: f64,
    a: f64,
}

/// The tails kept by pass 2, for [`quantiles`]: the values with
/// `fl(x − mean) ≤ −gap` and those with `fl(x − mean) ≥ gap` (`gap > 0`);
/// rounding is monotone, so these are the smallest and the largest values.
pub(crate) struct Tails<'a> {
    low: &'a mut [f64],
    high: &'a mut [f64],
    usable: bool,
    n: usize,
}

/// Runs the three passes. `None` if the series does not qualify (shorter than
/// [`MIN_LEN`], a NaN or an infinity, a return ≤ −1, or a sum overflows):
/// the caller then uses the general path.
pub(crate) fn sums<'b>(inp: &Inputs<'_>, buf: &'b mut Buffers) -> Option<(Sums, Tails<'b>)> {
    match inp.benchmark {
        Some(_) => sums_impl::<true>(inp, buf),
        None => sums_impl::<false>(inp, buf),
    }
}

fn sums_impl<'b, const B: bool>(
    inp: &Inputs<'_>,
    buf: &'b mut Buffers,
) -> Option<(Sums, Tails<'b>)> {
    let r = inp.returns;
    let n = r.len();
    if n < MIN_LEN {
        return None;
    }
    let (bench, bstats) = match inp.benchmark {
        Some((b, s)) if b.len() == n => (b, Some(s)),
        // `B` is false: the benchmark slice is never read.
        _ => (r, None),
    };
    let (req, cut) = (inp.required, inp.omega_cut);
    let logs = &mut buf.logs;
    if logs.len() < n {
        logs.resize(n, 0.0);
    }
    let logs = &mut logs[..n];

    // Pass 1: logs (a plain map, vectorized by the loop vectorizer), then
    // sums and extremes in lanes.
    for (l, &x) in logs.iter_mut().zip(r) {
        *l = ln_1p_small(x);
    }
    let (mut sum, mut sq, mut dn, mut below, mut gains, mut losses, mut sa) = (
        LaneSum::new(),
        [0.0; WIDTH],
        LaneSum::new(),
        [0.0; WIDTH],
        LaneSum::new(),
        LaneSum::new(),
        LaneSum::new(),
    );
    let (mut lo, mut hi, mut big) = (
        [f64::INFINITY; WIDTH],
        [f64::NEG_INFINITY; WIDTH],
        [0.0; WIDTH],
    );
    let (mut alo, mut ahi) = ([f64::INFINITY; WIDTH], [f64::NEG_INFINITY; WIDTH]);
    for (rr, bb) in r.chunks(RUN).zip(bench.chunks(RUN)) {
        let bb = &bb[..rr.len()];
        let mut s1 = [0.0; WIDTH];
        each(rr, |k, x| {
            s1[k] += x;
            sq[k] += x * x;
            lo[k] = if x < lo[k] { x } else { lo[k] };
            hi[k] = if x > hi[k] { x } else { hi[k] };
            let ax = x.abs();
            big[k] = if ax > big[k] { ax } else { big[k] };
        });
        sum.add(&s1);
        let (mut d2, mut g, mut l) = ([0.0; WIDTH], [0.0; WIDTH], [0.0; WIDTH]);
        each(rr, |k, x| {
            let d = x - req;
            let under = d < 0.0;
            d2[k] += if under { d * d } else { 0.0 };
            below[k] += if under { 1.0 } else { 0.0 };
            let e = x - cut;
            g[k] += if e > 0.0 { e } else { 0.0 };
            l[k] += if e < 0.0 { e } else { 0.0 };
        });
        dn.add(&d2);
        gains.add(&g);
        losses.add(&l);
        if B {
            let mut s3 = [0.0; WIDTH];
            each2(rr, bb, |k, x, b| {
                let a = x - b;
                s3[k] += a;
                alo[k] = if a < alo[k] { a } else { alo[k] };
                ahi[k] = if a > ahi[k] { a } else { ahi[k] };
            });
            sa.add(&s3);
        }
    }
    let total = sum.value();
    let sq: f64 = sq.iter().sum();
    let lo = fold_min(lo);
    // A NaN or an infinity makes the plain sum of squares non-finite.
    if !(total.is_finite() && sq.is_finite() && lo > -1.0) {
        return None;
    }
    if fold_max(big) > LN_1P_DOMAIN {
        for (l, &x) in logs.iter_mut().zip(r) {
            if x.abs() > LN_1P_DOMAIN {
                *l = x.ln_1p();
            }
        }
    }
    let nf = n as f64;
    let mean = total / nf;
    let mean_a = if B { sa.value() / nf } else { 0.0 };

    // Pass 2: running log sums, wealth and drawdown, tail filter.
    let spread = (sq / nf - mean * mean).max(0.0).sqrt();
    let gap = TAIL_Z * spread;
    let filter = inp.tails && gap > 0.0 && gap.is_finite();
    let gap = if filter { gap } else { f64::INFINITY };
    if buf.tails.len() < n {
        buf.tails.resize(n, 0.0);
    }
    let kept = &mut buf.tails[..n];
    // Low tail from the front, high tail from the back: before value i at
    // most i are kept, so both write positions are free slots (possibly the
    // same one, which then receives the value either way).
    let (mut n_low, mut top) = (0usize, n);
    let mut acc = 0.0;
    // The mean of the running sums only centres them: a plain sum suffices
    // (an error δ in it changes the centred sum of squares by n·δ²).
    let mut ysum = 0.0;
    let mut growth = 1.0f64;
    // Drawdown of the growth of 1 (empyrical's starting capital, rescaled).
    let mut drawdown = DrawdownTracker::starting_at(1.0);
    for (&x, l) in r.iter().zip(logs.iter_mut()) {
        acc += *l;
        *l = acc;
        ysum += acc;
        growth *= 1.0 + x;
        drawdown.observe(growth);
        // Branch-free: always write, advance when kept.
        let d = x - mean;
        if let Some(slot) = kept.get_mut(n_low) {
            *slot = x;
        }
        if let Some(slot) = kept.get_mut(top.wrapping_sub(1)) {
            *slot = x;
        }
        n_low += usize::from(d <= -gap);
        top -= usize::from(d >= gap);
    }
    let max_drawdown = drawdown.finish();
    let means = Means {
        r: mean,
        y: ysum / nf,
        b: bstats.map_or(0.0, |s| s.mean),
        a: mean_a,
    };

    // Pass 3: centred sums.
    let x_mean = (nf - 1.0) / 2.0;
    let (mut s2, mut s3, mut s4, mut sxy, mut syy, mut cov, mut ssa) = (
        LaneSum::new(),
        LaneSum::new(),
        LaneSum::new(),
        LaneSum::new(),
        LaneSum::new(),
        LaneSum::new(),
        LaneSum::new(),
    );
    for (c, ((rr, bb), yy)) in r
        .chunks(RUN)
        .zip(bench.chunks(RUN))
        .zip(logs.chunks(RUN))
        .enumerate()
    {
        let (bb, yy) = (&bb[..rr.len()], &yy[..rr.len()]);
        let (mut p2, mut p3, mut p4) = ([0.0; WIDTH], [0.0; WIDTH], [0.0; WIDTH]);
        each(rr, |k, x| {
            let d = x - means.r;
            let dd = d * d;
            p2[k] += dd;
            p3[k] += dd * d;
            p4[k] += dd * dd;
        });
        s2.add(&p2);
        s3.add(&p3);
        s4.add(&p4);
        // x − x̄ for the lanes of the first quad; the remainder's are set below.
        let base = (c * RUN) as f64 - x_mean;
        let mut dx: Acc = std::array::from_fn(|k| base + k as f64);
        dx[LANES] = base + (yy.len() / LANES * LANES) as f64;
        let (mut pxy, mut pyy) = ([0.0; WIDTH], [0.0; WIDTH]);
        each(yy, |k, y| {
            let dy = y - means.y;
            pxy[k] += dx[k] * dy;
            pyy[k] += dy * dy;
            dx[k] += if k < LANES { LANES as f64 } else { 1.0 };
        });
        sxy.add(&pxy);
        syy.add(&pyy);
        if B {
            let (mut pc, mut ps) = ([0.0; WIDTH], [0.0; WIDTH]);
            each2(rr, bb, |k, x, b| {
                pc[k] += (b - means.b) * x;
                let da = (x - b) - means.a;
                ps[k] += da * da;
            });
            cov.add(&pc);
            ssa.add(&ps);
        }
    }
    // Σ (i − x̄)² over i = 0..n is n (n² − 1) / 12, exact in integers.
    let n128 = n as u128;
    let sxx = (n128 * (n128 * n128 - 1)) as f64 / 12.0;
    let bench = bstats.map(|s| BenchSums {
        mean_b: s.mean,
        mean_active: mean_a,
        active_lo: fold_min(alo),
        active_hi: fold_max(ahi),
        active_squares: ssa.value(),
        covariance: cov.value(),
        variance: s.centred_squares,
    });
    let sums = Sums {
        mean,
        lo,
        hi: fold_max(hi),
        s2: s2.value(),
        s3: s3.value(),
        s4: s4.value(),
        growth,
        max_drawdown,
        downside_squares: dn.value(),
        below: below.iter().sum::<f64>() as usize,
        gains: gains.value(),
        losses: losses.value(),
        sxy: sxy.value() / nf,
        syy: syy.value() / nf,
        sxx: sxx / nf,
        bench,
    };
    let (low, high) = kept.split_at_mut(top.max(n_low));
    let tails = Tails {
        low: &mut low[..n_low],
        high,
        usable: filter,
        n,
    };
    Some((sums, tails))
}

/// VaR, CVaR (both at 5 %, linear interpolation) and tail ratio from the
/// filtered tails, as `quantile_metrics` computes them on the whole series.
/// `None` if the tails do not contain the needed order statistics.
pub(crate) fn quantiles(t: Tails<'_>) -> Option<(f64, f64, f64)> {
    if !t.usable {
        return None;
    }
    let (low, high) = (t.low, t.high);
    let n = t.n;
    let cutoff = 0.05;
    let k = ((n - 1) as f64 * cutoff) as usize;
    let q = 100.0 * cutoff / 100.0;
    let virtual_index = (n - 1) as f64 * q;
    let k95 = (n - 1) as f64 * 0.95;
    let j = k95.floor() as usize;
    let usable = virtual_index.floor() as usize == k
        && k + 1 < n
        && j > k + 1
        && low.len() >= k + 2
        && high.len() >= n - j;
    if !usable {
        return None;
    }
    // The k + 2 smallest values are all in `low`, at the same ranks.
    let (var, cvar, _) = lower_tail(low, k, virtual_index - k as f64);
    // `high` holds the largest values: rank j overall is rank j − (n − len).
    let offset = n - high.len();
    let p95 = upper_lerp(high, j - offset, k95 - j as f64);
    Some((var, cvar, p95.abs() / var.abs()))
}

/// VaR and CVaR at order statistic `k` of `values` (partly reordered in
/// place): the value `frac` of the way from rank `k` to the next, and the
/// compensated mean of the `k + 1` smallest. The values above rank `k` come
/// back for further ranks.
pub(crate) fn lower_tail(values: &mut [f64], k: usize, frac: f64) -> (f64, f64, &mut [f64]) {
    let (left, a, right) = values.select_nth_unstable_by(k, f64::total_cmp);
    let a = *a;
    let mut tail = NeumaierSum::default();
    for &x in left.iter() {
        tail.add(x);
    }
    tail.add(a);
    let cvar = tail.value() / (k + 1) as f64;
    let b = right.iter().copied().fold(f64::INFINITY, f64::min);
    (lerp(a, b, frac), cvar, right)
}

/// The value `frac` of the way from the order statistic at index `k` of
/// `values` (partly reordered in place) to the next one. `values` are the
/// largest of the series, so the next one is among them; when `k` is the
/// last index there is none and the order statistic itself is returned.
pub(crate) fn upper_lerp(values: &mut [f64], k: usize, frac: f64) -> f64 {
    let (_, a, right) = values.select_nth_unstable_by(k, f64::total_cmp);
    let a = *a;
    let b = if right.is_empty() {
        a
    } else {
        right.iter().copied().fold(f64::INFINITY, f64::min)
    };
    lerp(a, b, frac)
}

/// numpy's linear interpolation between neighbouring order statistics.
#[inline]
pub(crate) fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}
