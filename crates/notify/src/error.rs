//! [`NotifyError`]: everything this crate can fail with.

use rampart_auth::AuthError;
use rampart_tenancy::TenancyError;

/// Errors of the notification services.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The configuration cannot work (bad `from` address, relay name).
    #[error("invalid notification configuration: {0}")]
    Config(String),
    /// Input refused (symbol, threshold, address).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A token that is unknown, expired, already used or for another purpose.
    #[error("the link is invalid or has expired")]
    InvalidToken,
    /// No such thing (or not the caller's).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Too many of something (price alerts per user).
    #[error("limit reached: {0}")]
    Limit(String),
    /// The SMTP relay refused or could not be reached.
    #[error("mail delivery failed: {0}")]
    Smtp(String),
    /// From the auth crate (password policy, hashing, sessions).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Tenant routing (unknown or suspended tenant) or pool.
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    /// A database error.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
}
