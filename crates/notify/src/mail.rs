//! Delivery: one SMTP transport per [`crate::Notifier`], and the `sent_emails`
//! log of every attempt (recipient, subject, error — never the body, which
//! may carry a token).

use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rampart_tenancy::TenantPool;

use crate::schema::sent_emails;
use crate::{NotifyConfig, NotifyError, SmtpTls};

/// What a message is about (the `kind` column of the sent log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// Address verification link.
    VerifyEmail,
    /// Password reset link.
    PasswordReset,
    /// A login from a device not seen before.
    NewDevice,
    /// A price alert fired.
    PriceAlert,
    /// An invitation link.
    Invitation,
    /// The password was changed through a reset link.
    PasswordChanged,
    /// The weekly portfolio report (opt-in).
    WeeklyReport,
}

impl MailKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::VerifyEmail => "verify_email",
            MailKind::PasswordReset => "password_reset",
            MailKind::NewDevice => "new_device",
            MailKind::PriceAlert => "price_alert",
            MailKind::Invitation => "invitation",
            MailKind::PasswordChanged => "password_changed",
            MailKind::WeeklyReport => "weekly_report",
        }
    }
}

/// One message to one user.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing<'a> {
    pub user_id: UserId,
    pub to: &'a str,
    pub kind: MailKind,
    pub subject: String,
    /// The plain text (the whole message, or the alternative to `html`).
    pub body: String,
    /// An HTML version with its inline images.
    pub html: Option<HtmlPart>,
}

/// The HTML version of a message and the images it shows.
#[derive(Debug, Clone)]
pub(crate) struct HtmlPart {
    pub html: String,
    pub images: Vec<InlineImage>,
}

/// An image an HTML message shows inline (`<img src="cid:{cid}">`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineImage {
    /// Content-ID, referenced as `cid:` in the HTML.
    pub cid: String,
    /// Media type, e.g. `image/svg+xml`.
    pub content_type: String,
    /// The image.
    pub bytes: Vec<u8>,
}

pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub(crate) fn new(config: &NotifyConfig) -> Result<Self, NotifyError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| NotifyError::Config(format!("from: {e}")))?;
        let builder = match config.tls {
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.smtp_host)
                .map_err(|e| NotifyError::Config(format!("smtp_host: {e}")))?,
            SmtpTls::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.smtp_host)
                    .map_err(|e| NotifyError::Config(format!("smtp_host: {e}")))?
            }
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.smtp_host)
            }
        };
        let mut builder = builder
            .port(config.smtp_port)
            .timeout(Some(Duration::from_secs(config.smtp_timeout_secs.max(1))));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends and records the attempt; a delivery failure is recorded and
    /// returned.
    pub(crate) async fn send(
        &self,
        pool: &TenantPool,
        tenant: &TenantSlug,
        mail: Outgoing<'_>,
    ) -> Result<(), NotifyError> {
        let result = self.deliver(&mail).await;
        let error = result.as_ref().err().map(ToString::to_string);
        pool.with_tenant(tenant, async |conn| {
            diesel::insert_into(sent_emails::table)
                .values((
                    sent_emails::user_id.eq(mail.user_id),
                    sent_emails::kind.eq(mail.kind.as_str()),
                    sent_emails::recipient.eq(mail.to),
                    sent_emails::subject.eq(&mail.subject),
                    sent_emails::error.eq(error.as_deref()),
                ))
                .execute(conn)
                .await?;
            Ok::<_, NotifyError>(())
        })
        .await?;
        if let Err(e) = &result {
            tracing::warn!(%tenant, kind = mail.kind.as_str(), error = %e, "notification not delivered");
        }
        result
    }

    async fn deliver(&self, mail: &Outgoing<'_>) -> Result<(), NotifyError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| NotifyError::InvalidRequest(format!("recipient: {e}")))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject);
        let message = match &mail.html {
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body.clone()),
            Some(part) => builder.multipart(html_with_text(&mail.body, part)?),
        }
        .map_err(|e| NotifyError::Smtp(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| NotifyError::Smtp(e.to_string()))?;
        Ok(())
    }
}

/// `multipart/alternative`: the text, then the HTML with its images
/// (`multipart/related`).
fn html_with_text(text: &str, part: &HtmlPart) -> Result<MultiPart, NotifyError> {
    let mut related = MultiPart::related().singlepart(SinglePart::html(part.html.clone()));
    for image in &part.images {
        let kind = ContentType::parse(&image.content_type)
            .map_err(|e| NotifyError::InvalidRequest(format!("image type: {e}")))?;
        related = related
            .singlepart(Attachment::new_inline(image.cid.clone()).body(image.bytes.clone(), kind));
    }
    Ok(MultiPart::alternative()
        .singlepart(SinglePart::plain(text.to_owned()))
        .multipart(related))
}
