//! The crate's one error type.

/// Everything that can go wrong in `rampart-analytics`.
///
/// Metrics whose only failure mode is "the data do not define this number"
/// return `f64::NAN` (as empyrical does) rather than an error; this enum is for
/// structural problems: inputs that cannot be paired, ordered, parsed or solved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyticsError {
    /// The input has no observations.
    #[error("the series is empty")]
    Empty,
    /// The input has fewer observations than the computation needs.
    #[error("need at least {needed} observations, got {got}")]
    TooShort {
        /// Minimum number of observations.
        needed: usize,
        /// Number of observations supplied.
        got: usize,
    },
    /// Two inputs that must be aligned have different lengths.
    #[error("lengths differ: {left} vs {right}")]
    LengthMismatch {
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// Dates must be strictly increasing.
    #[error("dates must be strictly increasing (violated at index {index})")]
    NonIncreasingDates {
        /// Index of the first date that is not after its predecessor.
        index: usize,
    },
    /// A value that must be finite is NaN or infinite.
    #[error("value at index {index} is not finite")]
    NonFinite {
        /// Index of the offending value.
        index: usize,
    },
    /// A parameter is out of its domain.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The capital a return is measured against is zero or negative.
    #[error("capital base is not positive at index {index}")]
    NonPositiveCapital {
        /// Index of the sub-period (or 0 for a single period).
        index: usize,
    },
    /// The cash flows are all of one sign, so no rate makes their value zero.
    #[error("cash flows have no sign change: no internal rate of return exists")]
    NoSignChange,
    /// The solver found no rate in (-100%, +inf) that makes the value zero.
    #[error("no internal rate of return found in the searched range")]
    NoRoot,
    /// CSV input could not be read.
    #[error("csv: {0}")]
    Csv(String),
    /// A CSV cell could not be parsed.
    #[error("csv row {row}, column `{column}`: {reason}")]
    Parse {
        /// 1-based data row (header excluded).
        row: usize,
        /// Column name.
        column: String,
        /// What was wrong.
        reason: String,
    },
    /// A named column does not exist.
    #[error("no column named `{0}`")]
    UnknownColumn(String),
}

impl From<csv::Error> for AnalyticsError {
    fn from(e: csv::Error) -> Self {
        AnalyticsError::Csv(e.to_string())
    }
}
