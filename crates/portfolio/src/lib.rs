//! # rampart-portfolio
//!
//! Portfolios of a tenant's users: CRUD of portfolios and their positions
//! where every change is a new stored **version**, sharing with other users
//! of the same tenant (`view` < `comment` < `edit` < `admin`, optionally
//! until an expiry), a comment thread, an activity trail (who, what,
//! before/after, IP, time), and positions in and out as CSV with a
//! row-by-row report. A plain async API over
//! [`rampart_tenancy::TenantPool`]: every call runs in one transaction
//! routed to one tenant's schema, so nothing can cross tenants.
//!
//! ```no_run
//! use rampart_portfolio::{
//!     Access, Actor, Collaborative, NewPortfolio, PortfolioService, PositionInput, ShareGrant,
//! };
//!
//! # async fn demo(pool: rampart_tenancy::TenantPool, ada: rampart_portfolio::UserId, bob: rampart_portfolio::UserId)
//! # -> Result<(), rampart_portfolio::PortfolioError> {
//! let acme = rampart_tenancy::TenantSlug::parse("acme")?;
//! let portfolios = PortfolioService::new(pool);
//! let owner = Actor::user(ada);
//! let p = portfolios
//!     .create(&acme, &owner, NewPortfolio {
//!         name: "Core".into(),
//!         positions: vec![PositionInput {
//!             symbol: "MSFT".into(),
//!             quantity: Some(10.into()),
//!             ..PositionInput::default()
//!         }],
//!         ..NewPortfolio::default()
//!     })
//!     .await?;
//! assert_eq!(p.portfolio.version, 1);
//! portfolios
//!     .share(&acme, &owner, p.portfolio.id, ShareGrant {
//!         user_id: bob.into(), // user ids in grants are still UUIDs
//!         access: Access::View,
//!         expires_at: None,
//!     })
//!     .await?;
//! // Bob sees it now, read-only.
//! let seen = portfolios.get(&acme, &Actor::user(bob), p.portfolio.id).await?;
//! assert_eq!(seen.portfolio.access, Access::View);
//! # Ok(()) }
//! ```
//!
//! Positions come in as CSV (or JSON) and keep every digit: amounts are
//! decimals end to end, never floating point.
//!
//! ```
//! use rampart_portfolio::{Access, Decimal, transfer::parse_positions};
//!
//! let csv = "symbol,quantity,purchase_price\nMSFT,0.1,0.2\nAAPL,1.0000000001,187.25\n";
//! let positions = parse_positions(csv.as_bytes())?;
//! let cost: Decimal = positions
//!     .iter()
//!     .filter_map(|p| Some(p.quantity? * p.purchase_price?))
//!     .sum();
//! assert_eq!(positions[0].quantity, Some("0.1".parse()?));
//! assert_eq!(cost.to_string(), "187.270000018725");
//! // A broken row is reported with its line, and nothing is imported.
//! assert!(parse_positions(b"symbol,quantity\nMSFT,ten\n").is_err());
//! // Access levels are ordered, weakest first.
//! assert!(Access::View < Access::Edit && Access::Admin < Access::Owner);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Access is resolved per call from the portfolio row: the owner has
//! everything; a share that has not expired grants its level; a tenant
//! administrator gets `admin`; a public portfolio gives everyone `view`.
//! A caller with no access gets [`PortfolioError::NotFound`] — exactly what a
//! missing portfolio gives — and a caller who may see it but not do the
//! operation gets [`PortfolioError::Forbidden`].
//!
//! Beside portfolios: [`UserService`] (a user's profile, typed
//! [`Preferences`] with defaults, own activity, and a tenant
//! administrator's user management) and
//! [`PortfolioService::import_json`], which imports the browser app's
//! `localStorage` export item by item, idempotently (see [`import_json`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use rampart_amount as amount;
pub mod analysis;
pub mod cases;
pub mod charts;
mod documents;
mod error;
pub mod import_json;
mod import_report;
pub mod metrics;
pub mod model;
mod rows;
mod schema;
mod service;
pub mod transfer;
pub mod users;

pub use amount::Decimal;
pub use rampart_ids::{CaseId, PortfolioId, UserId};

/// The change-feed topic ([`rampart_tenancy::ChangeFeed`]) announced in
/// every transaction that changes a portfolio or a valuation case, its
/// positions, shares, comments or analyses: cache answers derived from
/// them under the topic's generation.
pub const CHANGE_TOPIC: &str = "documents";
pub use analysis::{AnalysisInput, AnalyticsReport, NavPoint, PriceHistory};
pub use cases::{
    Analysis, Case, CaseExport, CaseImportItem, CaseImportReport, CasePatch, CaseService,
    FieldChange, NewAnalysis, NewCase, VersionDiff,
};
pub use documents::Collaborative;
pub use error::PortfolioError;
pub use import_json::{ImportItem, ItemOutcome, JsonImportReport};
pub use metrics::{DailyMetrics, MetricsJobConfig};
pub use model::{
    Access, Activity, Actor, AllocationType, Comment, NewComment, NewPortfolio, Page, Portfolio,
    PortfolioDetail, PortfolioPatch, Position, PositionInput, Share, ShareGrant, Version,
};
pub use service::PortfolioService;
pub use transfer::{ImportReport, RowError};
pub use users::{
    AuditEntry, Preferences, PreferencesPatch, Profile, ProfilePatch, Theme, UserActivity,
    UserService,
};
