//! [`NotifyConfig`]: the SMTP relay, the sender and the lifetimes of what we mail.

use serde::{Deserialize, Serialize};

/// How the connection to the SMTP relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Implicit TLS from the first byte (port 465).
    Tls,
    /// Plain connection upgraded with `STARTTLS`, which is required (port 587).
    StartTls,
    /// No encryption at all: only for a relay on loopback (tests, a local MTA).
    None,
}

/// Configuration of e-mail notifications.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// SMTP relay host name.
    pub smtp_host: String,
    /// SMTP relay port.
    pub smtp_port: u16,
    /// Transport security towards the relay.
    pub tls: SmtpTls,
    /// SMTP user name (AUTH PLAIN/LOGIN) when the relay needs one.
    pub username: Option<String>,
    /// SMTP password; never printed by `Debug`.
    pub password: Option<String>,
    /// The `From:` of every message, e.g. `Rampart <no-reply@example.com>`.
    pub from: String,
    /// Base URL of the public listener, used to build the links in messages.
    pub public_base_url: String,
    /// Lifetime of an address-verification link.
    pub verification_ttl_secs: u64,
    /// Lifetime of a password-reset link.
    pub reset_ttl_secs: u64,
    /// Timeout of one SMTP conversation.
    pub smtp_timeout_secs: u64,
    /// How often the price-alert job asks the market chain.
    pub price_check_secs: u64,
    /// How often new logins are checked for unknown devices.
    pub login_check_secs: u64,
    /// When the weekly portfolio report goes out (five-field cron, UTC;
    /// default `0 7 * * 1`, Monday morning); empty: never (the admin
    /// trigger still works).
    pub weekly_report_cron: String,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            smtp_host: "localhost".into(),
            smtp_port: 587,
            tls: SmtpTls::StartTls,
            username: None,
            password: None,
            from: "Rampart <no-reply@localhost>".into(),
            public_base_url: "https://localhost:8443".into(),
            verification_ttl_secs: 24 * 3600,
            reset_ttl_secs: 3600,
            smtp_timeout_secs: 10,
            price_check_secs: 60,
            login_check_secs: 15,
            weekly_report_cron: "0 7 * * 1".into(),
        }
    }
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("public_base_url", &self.public_base_url)
            .field("verification_ttl_secs", &self.verification_ttl_secs)
            .field("reset_ttl_secs", &self.reset_ttl_secs)
            .field("smtp_timeout_secs", &self.smtp_timeout_secs)
            .field("price_check_secs", &self.price_check_secs)
            .field("login_check_secs", &self.login_check_secs)
            .field("weekly_report_cron", &self.weekly_report_cron)
            .finish()
    }
}
