//! # rampart-members
//!
//! The members of a tenant and what the platform keeps about their broker
//! accounts: upserting members one by one or from a CSV file (a preview that
//! validates every row, then a commit that applies exactly the previewed set
//! in one transaction), attaching a paper-trading broker key pair sealed
//! through a [`BrokerCrypto`] implementation (the server's is Vault transit),
//! the daily snapshot job that reads equity, cash and positions from the
//! broker (the Alpaca paper-trading API shape) and the leaderboard built from
//! those snapshots. Everything runs inside one tenant schema through
//! [`rampart_tenancy::TenantPool::with_tenant`].
//!
//! ```no_run
//! use rampart_members::{MemberInput, Members};
//!
//! # async fn demo(pool: rampart_tenancy::TenantPool) -> Result<(), rampart_members::MembersError> {
//! let acme = rampart_tenancy::TenantSlug::parse("acme")?;
//! let members = Members::new(pool);
//! let outcome = members
//!     .upsert_member(
//!         &acme,
//!         &MemberInput {
//!             name: "Ada Lovelace".into(),
//!             email: "ada@acme.test".into(),
//!             role: "trader".into(),
//!         },
//!     )
//!     .await?;
//! println!("{} {}", outcome.member.id, if outcome.created { "created" } else { "updated" });
//!
//! // Bulk: preview, show the plan, then commit exactly that plan.
//! let preview = members
//!     .preview_import(&acme, "name,email,role\nGrace,grace@acme.test,viewer\n", "admin")
//!     .await?;
//! assert!(preview.refused == 0);
//! members.commit_import(&acme, preview.id, &preview.digest).await?;
//! # Ok(()) }
//! ```
//!
//! Job schedules are five-field cron expressions in UTC, checked when the
//! configuration is read:
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use rampart_members::CronSchedule;
//!
//! // The daily snapshot: 22:00 UTC on weekdays.
//! let snapshots = CronSchedule::parse("0 22 * * 1-5")?;
//! let friday_night = Utc.with_ymd_and_hms(2026, 12, 4, 23, 0, 0).unwrap();
//! let next = snapshots.next_after(friday_night);
//! assert_eq!(next, Some(Utc.with_ymd_and_hms(2026, 12, 7, 22, 0, 0).unwrap()));
//! assert!(CronSchedule::parse("0 25 * * *").is_err());
//! # Ok::<(), rampart_members::MembersError>(())
//! ```
//!
//! Secrets: broker keys are only ever held as [`BrokerKeys`] (whose `Debug`
//! redacts them) on their way into [`BrokerCrypto::seal`] or out of
//! [`BrokerCrypto::open`] to the broker; no function returns them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod broker;
mod clock;
mod error;
mod import;
mod leaderboard;
mod member;
pub mod replay;
mod schedule;
mod scheduler;
mod schema;
mod series;
mod snapshot;

pub use broker::{BrokerAccount, BrokerCrypto, BrokerKeys, validate_paper_keys};
pub use clock::{Clock, SystemClock};
pub use error::{MembersError, RowProblem};
#[doc(hidden)]
pub use import::parse_rows as parse_import_rows;
pub use import::{ImportAction, ImportCommit, ImportPreview, ImportRow};
pub use leaderboard::{LeaderboardEntry, LeaderboardPage, LeaderboardSort, Period};
pub use member::{Member, MemberInput, UpsertOutcome};
pub use rampart_ids::UserId;
pub use rust_decimal::Decimal;
pub use schedule::CronSchedule;
pub use scheduler::{NextRun, Scheduler};
pub use series::{MAX_SERIES_DAYS, SeriesPoint, series_csv};
pub use snapshot::{
    AlpacaClient, MemberFailure, SnapshotConfig, SnapshotJob, SnapshotReport, TenantReport,
};

use rampart_tenancy::TenantPool;

/// Members, broker accounts, imports and the leaderboard of every tenant of
/// a [`TenantPool`]. Cheap to clone.
#[derive(Clone)]
pub struct Members {
    pool: TenantPool,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members").finish_non_exhaustive()
    }
}

impl Members {
    /// Over the given pool.
    pub fn new(pool: TenantPool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &TenantPool {
        &self.pool
    }
}
