//! Sampling frequency of a return series and its annualization factor.

use std::fmt;
use std::str::FromStr;

use crate::AnalyticsError;

/// How often returns are observed; fixes the annualization factor.
///
/// The factors are empyrical's `ANNUALIZATION_FACTORS`: 252 trading days,
/// 52 weeks, 12 months. `Custom` is empyrical's `annualization=` override.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Period {
    /// Daily returns, 252 periods a year.
    #[default]
    Daily,
    /// Weekly returns, 52 periods a year.
    Weekly,
    /// Monthly returns, 12 periods a year.
    Monthly,
    /// Any other frequency, given as periods per year.
    Custom(f64),
}

impl Period {
    /// Number of periods in a year.
    pub fn annualization(self) -> f64 {
        match self {
            Period::Daily => 252.0,
            Period::Weekly => 52.0,
            Period::Monthly => 12.0,
            Period::Custom(f) => f,
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Daily => f.write_str("daily"),
            Period::Weekly => f.write_str("weekly"),
            Period::Monthly => f.write_str("monthly"),
            Period::Custom(x) => write!(f, "{x}"),
        }
    }
}

impl FromStr for Period {
    type Err = AnalyticsError;

    /// Parses `daily`, `weekly`, `monthly` or a positive number of periods per year.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "daily" => Ok(Period::Daily),
            "weekly" => Ok(Period::Weekly),
            "monthly" => Ok(Period::Monthly),
            other => match other.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 => Ok(Period::Custom(x)),
                _ => Err(AnalyticsError::InvalidParameter {
                    name: "period",
                    reason: format!(
                        "expected daily, weekly, monthly or a positive number, got `{s}`"
                    ),
                }),
            },
        }
    }
}
