//! # rampart-notify
//!
//! E-mail notifications of Rampart over SMTP ([lettre], rustls): address
//! verification after registration, password reset (account recovery),
//! alerts for a login from a new device and price alerts checked against
//! the market chain. Plain async services over the tenant schemas; the
//! server maps them to HTTP and runs the jobs.
//!
//! - [`Notifier::send_verification`] / [`Notifier::confirm_email`]: a
//!   single-use, expiring link (only its hash is stored) that sets
//!   `users.email_verified` ([`account_mail`]).
//! - [`Notifier::request_password_reset`] / [`Notifier::reset_password`]:
//!   a link that lets the user set a new password through the auth crate's
//!   policy and hasher; every session is revoked.
//! - [`Notifier::check_new_logins`]: mails an alert when a user logs in from
//!   a device not seen before ([`devices`] says what a device is).
//! - [`Notifier::create_price_alert`] and friends, and
//!   [`Notifier::check_price_alerts`], which fires each alert once
//!   ([`price_alerts`]).
//!
//! Every message sent (or not) is in the tenant's `sent_emails` log, with
//! recipient, subject and error, never the body.
//!
//! ```
//! use rampart_notify::devices::fingerprint;
//! use rampart_notify::price_alerts::Direction;
//!
//! // A browser update on the same network is the same device...
//! let before = fingerprint(Some("Firefox/131.0"), "203.0.113.7");
//! let after = fingerprint(Some("Firefox/132.0"), "203.0.113.99");
//! assert_eq!(before.hash, after.hash);
//! assert_eq!(after.ip_prefix, "203.0.113.0/24");
//! // ...another network is not.
//! assert_ne!(before.hash, fingerprint(Some("Firefox/131.0"), "198.51.100.7").hash);
//!
//! // Prices are exact decimals.
//! let (quote, threshold) = ("100.10".parse()?, "100.1".parse()?);
//! assert!(Direction::Above.crossed(quote, threshold));
//! assert!(Direction::Below.crossed(quote, threshold));
//! assert!(!Direction::Below.crossed("100.11".parse()?, threshold));
//! # Ok::<(), rust_decimal::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod account_mail;
mod cleanup;
mod config;
pub mod devices;
mod error;
mod invitation_mail;
pub mod mail;
pub mod price_alerts;
pub mod report_mail;
mod schema;

pub use cleanup::NotifyCleanup;
pub use config::{NotifyConfig, SmtpTls};
pub use error::NotifyError;
pub use mail::{InlineImage, MailKind};
pub use price_alerts::{Direction, NewPriceAlert, PriceAlert};
pub use rampart_ids::UserId;
pub use report_mail::ReportMail;

use rampart_market::ProviderChain;
use rampart_tenancy::TenantSlug;
use rampart_tenancy::{Due, TenantPool};

/// The notification services for every tenant of a pool.
pub struct Notifier {
    pool: TenantPool,
    config: NotifyConfig,
    mailer: mail::Mailer,
}

impl Notifier {
    /// Sends `mail` and records the attempt in `tenant`'s sent mail.
    async fn mail(&self, tenant: &TenantSlug, mail: mail::Outgoing<'_>) -> Result<(), NotifyError> {
        self.mailer.send(&self.pool, tenant, mail).await
    }
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Builds the services; no connection is made until the first message.
    pub fn new(pool: TenantPool, config: NotifyConfig) -> Result<Self, NotifyError> {
        let mailer = mail::Mailer::new(&config)?;
        Ok(Self {
            pool,
            config,
            mailer,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    async fn active_tenants(&self, due: &Due) -> Result<Vec<TenantSlug>, NotifyError> {
        let mut slugs = self.pool.active_slugs().await?;
        slugs.retain(|slug| due.includes(slug));
        Ok(slugs)
    }

    /// [`Notifier::check_new_logins`] for every active tenant; one tenant's
    /// failure is logged and does not stop the others. Returns alerts sent.
    pub async fn check_new_logins_all(&self) -> Result<usize, NotifyError> {
        self.check_new_logins_due(&Due::All).await
    }

    /// [`Self::check_new_logins_all`] for the active tenants in `due` (the
    /// periodic job passes those whose `sessions` took rows: see
    /// [`rampart_tenancy::TableActivity`]).
    pub async fn check_new_logins_due(&self, due: &Due) -> Result<usize, NotifyError> {
        let mut sent = 0;
        for tenant in self.active_tenants(due).await? {
            match self.check_new_logins(&tenant).await {
                Ok(n) => sent += n,
                Err(e) => tracing::warn!(%tenant, error = %e, "new-device check failed"),
            }
        }
        Ok(sent)
    }

    /// [`Notifier::check_price_alerts`] for every active tenant; one tenant's
    /// failure is logged and does not stop the others. Returns alerts fired.
    pub async fn check_price_alerts_all(
        &self,
        market: &ProviderChain,
    ) -> Result<usize, NotifyError> {
        self.check_price_alerts_due(market, &Due::All).await
    }

    /// [`Self::check_price_alerts_all`] for the active tenants in `due` (the
    /// periodic job passes those with alerts: see
    /// [`rampart_tenancy::TableActivity`]).
    pub async fn check_price_alerts_due(
        &self,
        market: &ProviderChain,
        due: &Due,
    ) -> Result<usize, NotifyError> {
        let mut fired = 0;
        for tenant in self.active_tenants(due).await? {
            match self.check_price_alerts(&tenant, market).await {
                Ok(n) => fired += n,
                Err(e) => tracing::warn!(%tenant, error = %e, "price alert check failed"),
            }
        }
        Ok(fired)
    }
}
