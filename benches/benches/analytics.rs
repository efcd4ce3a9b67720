//! Analytics batch (`rampart-analytics`): the full metric set, rolling
//! windows and the VaR methods over 1,000 synthetic daily series, of 252
//! returns (one year) and of 2,520 returns (ten years).
//!
//! - `metric_set_1000x{252,2520}`: `compute_metrics_batch` (rayon), the same
//!   sequentially on one core with a reused `Scratch`, and the batch with
//!   Monte Carlo VaR (10,000 normal draws per series);
//! - `var_1000x252`: each VaR method alone over the 1,000 series;
//! - `rolling_63d_1000x{252,2520}`: rolling volatility + Sharpe + beta + max
//!   drawdown over every series.
//!
//! The data are reproducible: SplitMix64(42) uniforms mapped to normals with
//! the AS 241 quantile; `benches/empyrical_bench.py` builds the same data in
//! numpy to time empyrical on it (`--len 252` or the default 2,520).
//!
//! Run: `cargo bench -p rampart-benches --bench analytics`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_analytics::metrics::{
    MetricOptions, Scratch, compute_metrics_batch, compute_metrics_in,
};
use rampart_analytics::risk::{MonteCarlo, MonteCarloModel};
use rampart_analytics::rolling::{
    rolling_beta, rolling_max_drawdown, rolling_sharpe, rolling_volatility,
};
use rampart_analytics::{
    Period, conditional_value_at_risk, cornish_fisher_value_at_risk,
    gaussian_conditional_value_at_risk, gaussian_value_at_risk, monte_carlo_value_at_risk, normal,
    value_at_risk,
};

const SERIES: usize = 1_000;
const CUTOFF: f64 = 0.05;

/// A closed-form or historical VaR estimator: `(returns, cutoff) -> VaR`.
type VarMethod = fn(&[f64], f64) -> f64;

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1): 53 bits, offset by half a step.
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// `SERIES` series of `len` returns plus a benchmark (generated last):
/// mean 3 bp a day, volatility from 0.5% to 2% a day.
fn data(len: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = SplitMix64(42);
    let mut all: Vec<Vec<f64>> = (0..=SERIES)
        .map(|k| {
            let sigma = 0.005 + 0.015 * k as f64 / SERIES as f64;
            (0..len)
                .map(|_| 0.0003 + sigma * normal::quantile(rng.uniform()))
                .collect()
        })
        .collect();
    let bench = all.pop().expect("benchmark");
    (all, bench)
}

fn options() -> MetricOptions {
    MetricOptions {
        period: Period::Daily,
        risk_free: 0.0001,
        required_return: 0.0,
        var_cutoff: CUTOFF,
        ..MetricOptions::default()
    }
}

fn metric_set(c: &mut Criterion, len: usize) {
    let (series, benchmark) = data(len);
    let options = options();
    let mut group = c.benchmark_group(format!("metric_set_1000x{len}"));
    rampart_benches::tune(&mut group, 10, Duration::from_secs(5));
    group.throughput(Throughput::Elements(SERIES as u64));
    group.bench_function("batch_rayon", |b| {
        b.iter(|| compute_metrics_batch(black_box(&series), Some(&benchmark), &options).unwrap())
    });
    group.bench_function("sequential_one_core", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            series
                .iter()
                .map(|s| {
                    compute_metrics_in(black_box(s), Some(&benchmark), &options, &mut scratch)
                        .unwrap()
                })
                .fold(0.0, |acc, m| acc + m.sharpe_ratio)
        })
    });
    let with_mc = MetricOptions {
        monte_carlo: Some(MonteCarlo::default()),
        ..options
    };
    group.bench_function("batch_rayon_with_monte_carlo_10k", |b| {
        b.iter(|| compute_metrics_batch(black_box(&series), Some(&benchmark), &with_mc).unwrap())
    });
    group.finish();
}

fn metric_sets(c: &mut Criterion) {
    metric_set(c, 252);
    metric_set(c, 2_520);
}

fn var_methods(c: &mut Criterion) {
    let (series, _) = data(252);
    let mut group = c.benchmark_group("var_1000x252");
    rampart_benches::tune(&mut group, 20, Duration::from_secs(3));
    group.throughput(Throughput::Elements(SERIES as u64));
    let methods: [(&str, VarMethod); 5] = [
        ("historical", value_at_risk),
        ("historical_cvar", conditional_value_at_risk),
        ("gaussian", gaussian_value_at_risk),
        ("gaussian_cvar", gaussian_conditional_value_at_risk),
        ("cornish_fisher", cornish_fisher_value_at_risk),
    ];
    for (name, method) in methods {
        group.bench_function(name, |b| {
            b.iter(|| {
                series
                    .iter()
                    .map(|s| method(black_box(s), CUTOFF))
                    .sum::<f64>()
            })
        });
    }
    for (name, model) in [
        ("monte_carlo_normal_10k", MonteCarloModel::Normal),
        ("monte_carlo_bootstrap_10k", MonteCarloModel::Bootstrap),
    ] {
        let settings = MonteCarlo {
            model,
            ..MonteCarlo::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                series
                    .iter()
                    .map(|s| monte_carlo_value_at_risk(black_box(s), CUTOFF, &settings).0)
                    .sum::<f64>()
            })
        });
    }
    group.finish();
}

fn rolling(c: &mut Criterion) {
    for len in [252, 2_520] {
        let (series, benchmark) = data(len);
        let mut group = c.benchmark_group(format!("rolling_63d_1000x{len}"));
        rampart_benches::tune(&mut group, 10, Duration::from_secs(5));
        group.throughput(Throughput::Elements(SERIES as u64));
        group.bench_function("vol_sharpe_beta_maxdd", |b| {
            b.iter(|| {
                for s in &series {
                    black_box(rolling_volatility(s, 63, Period::Daily).unwrap());
                    black_box(rolling_sharpe(s, 63, 0.0, Period::Daily).unwrap());
                    black_box(rolling_beta(s, &benchmark, 63).unwrap());
                    black_box(rolling_max_drawdown(s, 63).unwrap());
                }
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = rampart_benches::criterion();
    targets = metric_sets, var_methods, rolling
}
criterion_main!(benches);
