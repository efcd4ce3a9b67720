//! The crate's one error type.

use rust_decimal::Decimal;

/// Why a valuation could not be computed. Every variant names the input at
/// fault, so a caller can show it next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValuationError {
    /// An input is outside the range the method defines it for.
    #[error("invalid input `{field}`: {reason}")]
    InvalidInput {
        /// The input's path, e.g. `fiscal_years[2].revenue`.
        field: String,
        /// What the input must satisfy.
        reason: &'static str,
    },
    /// The growth formula needs a growth rate strictly below the cost of capital.
    #[error("growth rate {growth} must be below the cost of capital {wacc}")]
    GrowthNotBelowWacc {
        /// The growth rate given.
        growth: Decimal,
        /// The cost of capital it was compared with.
        wacc: Decimal,
    },
    /// An intermediate figure left the range of a 96-bit decimal.
    #[error("arithmetic overflow while computing {0}")]
    Overflow(&'static str),
}

impl ValuationError {
    pub(crate) fn invalid(field: impl Into<String>, reason: &'static str) -> Self {
        Self::InvalidInput {
            field: field.into(),
            reason,
        }
    }
}
