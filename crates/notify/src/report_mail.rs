//! Reports by e-mail: an HTML message with a plain-text alternative and
//! inline images (charts), sent at most once per user and period.
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;

use crate::mail::{HtmlPart, InlineImage, MailKind, Outgoing};
use crate::schema::sent_emails;
use crate::{Notifier, NotifyError};

/// A report to mail.
#[derive(Debug, Clone)]
pub struct ReportMail {
    /// Subject line.
    pub subject: String,
    /// The plain-text version.
    pub text: String,
    /// The HTML version (escaped by whoever built it).
    pub html: String,
    /// Images the HTML shows as `cid:` references.
    pub images: Vec<InlineImage>,
}

impl Notifier {
    /// Mails the weekly report to a user unless one was delivered to them
    /// since `since` (a rerun of the job in the same week sends nothing):
    /// `true` when sent. A failed delivery is recorded and returned, and a
    /// later run tries again.
    pub async fn send_weekly_report(
        &self,
        tenant: &TenantSlug,
        user_id: UserId,
        to: &str,
        since: DateTime<Utc>,
        report: ReportMail,
    ) -> Result<bool, NotifyError> {
        let kind = MailKind::WeeklyReport;
        let delivered: i64 = self
            .pool
            .with_tenant(tenant, async |conn| {
                Ok::<_, NotifyError>(
                    sent_emails::table
                        .filter(sent_emails::user_id.eq(user_id))
                        .filter(sent_emails::kind.eq(kind.as_str()))
                        .filter(sent_emails::sent_at.ge(since))
                        .filter(sent_emails::error.is_null())
                        .count()
                        .get_result(conn)
                        .await?,
                )
            })
            .await?;
        if delivered > 0 {
            return Ok(false);
        }
        let mail = Outgoing {
            user_id,
            to,
            kind,
            html: Some(HtmlPart {
                html: report.html,
                images: report.images,
            }),
            subject: report.subject,
            body: report.text,
        };
        self.mail(tenant, mail).await?;
        Ok(true)
    }
}
