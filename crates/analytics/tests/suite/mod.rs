//! Test modules.

mod bacon;
mod cash_flow;
mod properties;
mod reference;
mod report;
mod unit;

use std::path::PathBuf;

/// Path of a file under `tests/data`.
pub fn data_path(name: &str) -> PathBuf {
    // At run time (see `rampart_testkit::package_dir`, not a dependency here).
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests")
        .join("data")
        .join(name)
}

/// Relative tolerance of every reference comparison.
pub const REL_TOL: f64 = 1e-9;
/// Absolute floor, for expected values that are zero up to rounding
/// (e.g. the alpha of a series against itself).
pub const ABS_TOL: f64 = 1e-14;

/// Compares at `REL_TOL`; NaN matches NaN and infinities match by sign.
pub fn close(actual: f64, expected: f64) -> bool {
    if expected.is_nan() || actual.is_nan() {
        return expected.is_nan() && actual.is_nan();
    }
    if expected.is_infinite() || actual.is_infinite() {
        return expected == actual;
    }
    (actual - expected).abs() <= REL_TOL * expected.abs().max(actual.abs()) + ABS_TOL
}

/// Asserts [`close`] with a readable message.
#[track_caller]
pub fn assert_close(what: &str, actual: f64, expected: f64) {
    assert!(
        close(actual, expected),
        "{what}: actual {actual:e} vs expected {expected:e} (rel err {:e})",
        ((actual - expected) / expected).abs()
    );
}

/// A JSON number, `null` (NaN) or `"inf"`/`"-inf"` as f64.
pub fn json_f64(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::Null => f64::NAN,
        serde_json::Value::String(s) if s == "inf" => f64::INFINITY,
        serde_json::Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => other.as_f64().expect("number"),
    }
}

/// A JSON array of numbers/nulls as f64s.
pub fn json_vec(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(json_f64).collect()
}
