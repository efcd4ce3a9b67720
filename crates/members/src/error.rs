//! The one error type of the crate.
use serde::Serialize;

/// Why one CSV row (or one member input) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RowProblem {
    /// The field at fault (`name`, `email`, `role`, or `row`).
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MembersError {
    /// Invalid input (a member, a key pair, a CSV file, a cursor).
    #[error("invalid input: {}", .problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// Every problem found.
        problems: Vec<RowProblem>,
    },
    /// No such member, broker account or import preview in this tenant.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The import preview was already committed.
    #[error("the import preview was already committed")]
    AlreadyCommitted,
    /// The import preview expired.
    #[error("the import preview expired")]
    Expired,
    /// The preview has refused rows; fix the file and preview again.
    #[error("the import has {0} refused row(s); nothing was applied")]
    HasRefusedRows(usize),
    /// The hash given at commit is not the preview's.
    #[error("the hash does not match the preview")]
    DigestMismatch,
    /// The data changed since the preview; preview again.
    #[error("members changed since the preview: {0}")]
    Stale(String),
    /// Sealing or opening credentials failed (the message never holds secrets).
    #[error("credential encryption failed: {0}")]
    Crypto(String),
    /// The broker answered with an error or something unreadable.
    #[error("broker error: {0}")]
    Broker(String),
    /// Tenancy (routing, pool, database).
    #[error(transparent)]
    Tenancy(#[from] rampart_tenancy::TenancyError),
    /// Accounts (rampart-auth, which owns the users).
    #[error(transparent)]
    Auth(#[from] rampart_auth::AuthError),
}

impl From<diesel::result::Error> for MembersError {
    fn from(e: diesel::result::Error) -> Self {
        MembersError::Tenancy(rampart_tenancy::TenancyError::from(e))
    }
}

impl MembersError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        MembersError::Invalid {
            problems: vec![RowProblem {
                field: field.to_owned(),
                message: message.into(),
            }],
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            MembersError::Invalid { .. } => "invalid_request",
            MembersError::NotFound(_) => "not_found",
            MembersError::AlreadyCommitted => "import_already_committed",
            MembersError::Expired => "import_expired",
            MembersError::HasRefusedRows(_) => "import_has_refused_rows",
            MembersError::DigestMismatch => "import_hash_mismatch",
            MembersError::Stale(_) => "import_stale",
            MembersError::Crypto(_) => "credential_encryption_failed",
            MembersError::Broker(_) => "broker_error",
            MembersError::Tenancy(e) => e.code(),
            MembersError::Auth(e) => e.oauth_code(),
        }
    }
}
