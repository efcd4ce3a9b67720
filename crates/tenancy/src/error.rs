use std::time::SystemTime;

/// Every error the tenancy crate returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenancyError {
    /// The slug is not a valid tenant identifier.
    #[error("invalid tenant slug {slug:?}: {reason}")]
    InvalidSlug {
        /// A printable prefix of the rejected input.
        slug: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A tenant with this slug exists already.
    #[error("tenant {0} already exists")]
    AlreadyExists(String),
    /// No tenant has this slug.
    #[error("tenant {0} not found")]
    NotFound(String),
    /// The tenant is suspended: no work may run for it.
    #[error("tenant {0} is suspended")]
    Suspended(String),
    /// The tenant is deactivated (data kept until its retention deadline).
    #[error("tenant {0} is deactivated")]
    Deactivated(String),
    /// The tenant was purged; only its tombstone remains.
    #[error("tenant {0} was purged")]
    Purged(String),
    /// A lifecycle transition that the state machine forbids.
    #[error("tenant {slug}: cannot go from {from} to {to}")]
    InvalidTransition {
        /// The tenant.
        slug: String,
        /// Its current status.
        from: String,
        /// The status asked for.
        to: String,
    },
    /// Purging before the retention deadline without `force`.
    #[error("tenant {slug}: retention lasts until {deadline:?}")]
    RetentionNotElapsed {
        /// The tenant.
        slug: String,
        /// Until when its data must be kept.
        deadline: SystemTime,
    },
    /// Another process holds this tenant's migration lock.
    #[error("tenant {0} is being migrated by another process")]
    Busy(String),
    /// A migration failed.
    #[error("migration {version} failed: {message}")]
    Migration {
        /// The migration version.
        version: String,
        /// The database's message.
        message: String,
    },
    /// A database error.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// Could not get a connection.
    #[error("connection pool error: {0}")]
    Pool(String),
    /// Invalid configuration.
    #[error("invalid tenancy configuration: {0}")]
    Config(String),
    /// A setting could not be (de)serialized to the requested type.
    #[error("setting {key}: {message}")]
    Setting {
        /// The key.
        key: String,
        /// What went wrong.
        message: String,
    },
}

impl TenancyError {
    /// A stable machine-readable code for this error (used in API envelopes).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSlug { .. } => "tenant_invalid_slug",
            Self::AlreadyExists(_) => "tenant_already_exists",
            Self::NotFound(_) => "tenant_not_found",
            Self::Suspended(_) => "tenant_suspended",
            Self::Deactivated(_) => "tenant_deactivated",
            Self::Purged(_) => "tenant_purged",
            Self::InvalidTransition { .. } => "tenant_invalid_transition",
            Self::RetentionNotElapsed { .. } => "tenant_retention_not_elapsed",
            Self::Busy(_) => "tenant_busy",
            Self::Migration { .. } => "tenant_migration_failed",
            Self::Database(_) => "database_error",
            Self::Pool(_) => "database_unavailable",
            Self::Config(_) => "config_invalid",
            Self::Setting { .. } => "tenant_setting_invalid",
        }
    }

    /// True when the database reported a permission error (SQLSTATE 42501).
    pub fn is_permission_denied(&self) -> bool {
        match self {
            Self::Database(e) => is_permission_denied(e),
            _ => false,
        }
    }
}

/// True when a diesel error is PostgreSQL's "insufficient privilege".
pub fn is_permission_denied(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info) if info.message().contains("permission denied"))
}
