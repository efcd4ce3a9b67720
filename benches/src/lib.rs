//! Criterion benchmarks for Rampart live under `benches/benches/`; run them with `cargo bench -p rampart-benches`.
