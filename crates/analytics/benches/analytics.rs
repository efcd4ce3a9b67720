//! Full metric set for 1,000 daily series of 2,520 returns (10 years).
//!
//! The data are synthetic and reproducible: SplitMix64 uniforms mapped to
//! normals with the AS 241 quantile; `benches/empyrical_bench.py` builds the
//! same data in numpy to time empyrical on it. See the crate README.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_analytics::metrics::{
    MetricOptions, Scratch, compute_metrics_batch, compute_metrics_in,
};
use rampart_analytics::risk::MonteCarlo;
use rampart_analytics::rolling::{
    rolling_beta, rolling_max_drawdown, rolling_sharpe, rolling_volatility,
};
use rampart_analytics::{Period, normal};

const SERIES: usize = 1_000;
const LEN: usize = 2_520;

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

/// Series `k` (0..=SERIES; the last is the benchmark): mean 3 bp a day,
/// volatility from 0.5% to 2% a day.
fn data() -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = SplitMix64(42);
    let mut all: Vec<Vec<f64>> = (0..=SERIES)
        .map(|k| {
            let sigma = 0.005 + 0.015 * k as f64 / SERIES as f64;
            (0..LEN)
                .map(|_| 0.0003 + sigma * normal::quantile(rng.uniform()))
                .collect()
        })
        .collect();
    let bench = all.pop().expect("benchmark");
    (all, bench)
}

fn bench(c: &mut Criterion) {
    let (series, benchmark) = data();
    let options = MetricOptions {
        period: Period::Daily,
        risk_free: 0.0001,
        required_return: 0.0,
        var_cutoff: 0.05,
        ..MetricOptions::default()
    };
    let mut group = c.benchmark_group("full_metric_set_1000x2520");
    group.sample_size(10);
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

    let mut group = c.benchmark_group("rolling_63d_1000x2520");
    group.sample_size(10);
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

criterion_group!(benches, bench);
criterion_main!(benches);
