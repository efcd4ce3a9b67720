use rampart_auth::AuthError;
use rampart_tenancy::TenancyError;

use crate::import_report::ImportReport;

/// Every error the portfolio crate returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortfolioError {
    /// No such portfolio (or one the caller may not see: the two look alike).
    #[error("not found")]
    NotFound,
    /// The caller sees the portfolio but lacks the access level needed.
    #[error("needs {needed} access")]
    Forbidden {
        /// The access level the operation needs.
        needed: &'static str,
    },
    /// The input is invalid.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A CSV upload had broken rows; nothing was applied.
    #[error("{} of {} rows are invalid; nothing was applied", .0.errors.len(), .0.rows)]
    CsvRejected(Box<ImportReport>),
    /// An upload is larger than allowed.
    #[error("upload exceeds {limit} {unit}")]
    TooLarge {
        /// The limit.
        limit: usize,
        /// `bytes` or `rows`.
        unit: &'static str,
    },
    /// No prices for a symbol of the portfolio in the window.
    #[error("no prices for {symbol} in the window")]
    MissingPrices {
        /// The symbol.
        symbol: String,
    },
    /// A chart could not be drawn.
    #[error("chart: {0}")]
    Chart(String),
    /// A valuation case's inputs cannot be valued (the field at fault is named).
    #[error(transparent)]
    Valuation(#[from] rampart_valuation::ValuationError),
    /// Tenancy (routing, pool) failed.
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    /// A database error.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
}

/// Users belong to the auth crate; its refusals read as this crate's.
pub(crate) fn from_auth(e: AuthError) -> PortfolioError {
    match e {
        AuthError::NotFound(_) => PortfolioError::NotFound,
        AuthError::InvalidRequest(m) => PortfolioError::Invalid(m),
        e @ AuthError::UnknownRole(_) => PortfolioError::Invalid(e.to_string()),
        AuthError::Tenancy(t) => PortfolioError::Tenancy(t),
        AuthError::Database(d) => PortfolioError::Database(d),
        // Nothing else is expected from the user calls; keep it a server error.
        other => PortfolioError::Database(diesel::result::Error::QueryBuilderError(
            other.to_string().into(),
        )),
    }
}
