//! Mailing an invitation link (the link and its lifetime come from
//! `rampart_auth::invitation`; this module only delivers it).

use chrono::{DateTime, Utc};
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;

use crate::mail::{MailKind, Outgoing};
use crate::{Notifier, NotifyError};

impl Notifier {
    /// Mails `to` the invitation `link` (valid until `expires_at`) of
    /// `tenant_name`; the attempt is recorded in the sent log without the
    /// link.
    pub async fn send_invitation(
        &self,
        tenant: &TenantSlug,
        tenant_name: &str,
        user_id: UserId,
        to: &str,
        link: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), NotifyError> {
        let until = expires_at.format("%Y-%m-%d %H:%M UTC");
        self.mail(
            tenant,
            Outgoing {
                user_id,
                to,
                kind: MailKind::Invitation,
                html: None,
                subject: format!("You are invited to {tenant_name}"),
                body: format!(
                    "You have been invited to {tenant_name} on Rampart.\n\n\
                         Open this link to choose your password and sign in:\n\n{link}\n\n\
                         The link works once and expires on {until}. If you did not expect \
                         this invitation, ignore this message.\n"
                ),
            },
        )
        .await
    }
}
