//! Criterion benchmarks of the Rampart crates; the benches themselves live in
//! `benches/benches/` (`tenancy`, `auth`, `audit`, `market`, `analytics`) and all run
//! with one command:
//!
//! ```sh
//! CARGO_TARGET_DIR=/root/.cache/rampart-target cargo bench -p rampart-benches
//! ```
//!
//! This small library holds what the bench targets share: the quick mode
//! (`RAMPART_BENCH_QUICK=1`, short measurements for a smoke run) and the
//! criterion settings that follow from it. See `benches/README.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion};

/// The runtime the async benches drive their futures on: two worker
/// threads, I/O and timers on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Environment variable that turns the quick mode on (`1`).
pub const QUICK_ENV: &str = "RAMPART_BENCH_QUICK";

/// Whether the quick mode is on: short warm-up and measurement, 10 samples,
/// and the long one-shot parts (the 1,000-tenant fleet) skipped.
pub fn quick() -> bool {
    std::env::var(QUICK_ENV).is_ok_and(|v| v == "1")
}

/// The criterion configuration every bench target starts from: criterion's
/// defaults (3 s warm-up, 5 s measurement, 100 samples), or the quick ones.
/// Command-line arguments (`cargo bench -p rampart-benches -- <filter>
/// --measurement-time 2`) still apply on top.
pub fn criterion() -> Criterion {
    let c = Criterion::default();
    if quick() {
        c.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(10)
    } else {
        c
    }
}

/// Applies a group's own sample size and measurement time, unless the quick
/// mode is on (then the quick settings of [`criterion`] win).
pub fn tune<M: Measurement>(group: &mut BenchmarkGroup<'_, M>, samples: usize, measure: Duration) {
    if quick() {
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
    } else {
        group.sample_size(samples).measurement_time(measure);
    }
}
