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
    /// A backup archive could not be read or written.
    #[error("backup archive {path}: {message}")]
    BackupIo {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A backup archive is malformed, incomplete or corrupt.
    #[error("invalid backup archive: {0}")]
    BackupInvalid(String),
    /// The archive was taken from a schema other than the current template.
    #[error("backup archive is for template {archive}, but this build's is {template}")]
    BackupIncompatible {
        /// The archive's template version (and what differs).
        archive: String,
        /// The template (or target schema) it was compared with.
        template: String,
    },
    /// A restore would overwrite an existing tenant and was not asked to.
    #[error(
        "tenant {0} exists; restore with replace_existing (CLI: --replace) to overwrite its data"
    )]
    RestoreTargetExists(String),
    /// Restored data read back differs from the archive (nothing committed).
    #[error("restore of table {table} does not match the archive: {message}")]
    RestoreMismatch {
        /// The table.
        table: String,
        /// How it differs.
        message: String,
    },
    /// A database error on the COPY connection of a backup or restore.
    #[error("database error during backup or restore: {0}")]
    CopyDatabase(String),
}

impl From<rampart_dbtls::DbTlsError> for TenancyError {
    /// Bad TLS settings or files are configuration errors; a failed
    /// connection (including a refused server certificate) is the database
    /// being unavailable.
    fn from(e: rampart_dbtls::DbTlsError) -> Self {
        match e {
            rampart_dbtls::DbTlsError::Connect(m) => Self::Pool(m),
            other => Self::Config(other.to_string()),
        }
    }
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
            Self::Database(e) if is_connection_lost(e) => "database_unavailable",
            Self::Database(_) => "database_error",
            Self::Pool(_) => "database_unavailable",
            Self::Config(_) => "config_invalid",
            Self::Setting { .. } => "tenant_setting_invalid",
            Self::BackupIo { .. } => "backup_io",
            Self::BackupInvalid(_) => "backup_invalid",
            Self::BackupIncompatible { .. } => "backup_incompatible",
            Self::RestoreTargetExists(_) => "restore_target_exists",
            Self::RestoreMismatch { .. } => "restore_mismatch",
            Self::CopyDatabase(_) => "database_error",
        }
    }

    /// True when the database cannot be reached: no connection could be had
    /// from the pool, or the one in use was lost (server restarted or shut
    /// down). Callers should answer "retry shortly", not "internal error".
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(_) => true,
            Self::Database(e) => is_connection_lost(e),
            _ => false,
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

/// True when a diesel error means the connection to PostgreSQL is gone
/// rather than that the statement failed: the socket closed or broke, or
/// the server is terminating sessions (SQLSTATE class 57P: shutdown, crash
/// of another backend, starting up). diesel does not expose the SQLSTATE,
/// so the server's messages for class 57P are matched.
pub fn is_connection_lost(e: &diesel::result::Error) -> bool {
    use diesel::result::DatabaseErrorKind as K;
    match e {
        diesel::result::Error::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _) => {
            true
        }
        diesel::result::Error::DatabaseError(_, info) => {
            let m = info.message();
            m.starts_with("terminating connection")
                || m.starts_with("the database system is")
                || m.contains("server closed the connection")
        }
        _ => false,
    }
}
