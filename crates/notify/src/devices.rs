//! Alerts for logins from a device the user has not logged in from before.
//!
//! **How a device is recognized.** A device is the SHA-256 of the session's
//! user agent with every run of digits folded to `#` (so a browser update
//! is the same device) and the client's network prefix (`/24` for IPv4,
//! `/48` for IPv6, so a new DHCP lease is too). No cookie is needed, so it
//! works for every way of logging in (password form, MFA, upstream OpenID)
//! and cannot be dodged by a client that drops cookies; the price is that
//! the same browser on another network counts as a new device, which errs
//! towards telling the user.
//!
//! **How logins are found.** Rather than hooking every login path, a job
//! ([`Notifier::check_new_logins`]) reads the sessions created in the last
//! hour that it has not checked yet. Each session is claimed with an insert
//! into `login_device_checks`, so several replicas alert once. A user's
//! first device is recorded without an alert.

use rampart_auth::directory;
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::RunQueryDsl;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::mail::{MailKind, Outgoing};
use crate::schema::{known_devices, login_device_checks};
use crate::{Notifier, NotifyError};

diesel::define_sql_function! {
    /// PostgreSQL's `greatest` of two timestamps.
    fn greatest(a: Timestamptz, b: Timestamptz) -> Timestamptz;
}

/// A recognized device: the hash that identifies it and what the user is
/// shown about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFingerprint {
    /// SHA-256 of the folded user agent and the network prefix.
    pub hash: Vec<u8>,
    /// The user agent as sent (shortened), for the message.
    pub label: String,
    /// The network prefix, e.g. `203.0.113.0/24`.
    pub ip_prefix: String,
}

/// The network an address belongs to: `/24` for IPv4, `/48` for IPv6.
pub fn ip_prefix(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => ip_prefix(&v4.to_string()),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        },
        Err(_) => ip.chars().take(64).collect(),
    }
}

/// The fingerprint of a login from `user_agent` at `ip`.
pub fn fingerprint(user_agent: Option<&str>, ip: &str) -> DeviceFingerprint {
    let ua = user_agent.unwrap_or("").trim();
    let mut folded = String::with_capacity(ua.len());
    let mut in_digits = false;
    for c in ua.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                folded.push('#');
            }
            in_digits = true;
        } else {
            folded.push(c);
            in_digits = false;
        }
    }
    let prefix = ip_prefix(ip);
    let mut hasher = Sha256::new();
    hasher.update(folded.as_bytes());
    hasher.update(b"\n");
    hasher.update(prefix.as_bytes());
    DeviceFingerprint {
        hash: hasher.finalize().to_vec(),
        label: ua.chars().take(160).collect(),
        ip_prefix: prefix,
    }
}

struct Alert {
    user_id: UserId,
    email: String,
    device: DeviceFingerprint,
    ip: String,
    at: DateTime<Utc>,
}

impl Notifier {
    /// Checks the sessions of `tenant` created since the last run for
    /// devices their users have not used before and mails an alert for each.
    /// Returns how many alerts were sent.
    pub async fn check_new_logins(&self, tenant: &TenantSlug) -> Result<usize, NotifyError> {
        let alerts = self
            .pool
            .with_tenant(tenant, async |conn| {
                let since = Utc::now() - chrono::Duration::hours(1);
                let seen: Vec<Uuid> = login_device_checks::table
                    .filter(login_device_checks::checked_at.gt(since))
                    .select(login_device_checks::session_id)
                    .load(conn)
                    .await?;
                let sessions = directory::sessions_since(conn, since, &seen, 1000).await?;
                let mut alerts = Vec::new();
                for s in sessions {
                    let claimed = diesel::insert_into(login_device_checks::table)
                        .values(login_device_checks::session_id.eq(s.id))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    if claimed == 0 {
                        continue;
                    }
                    let ip = s.ip.unwrap_or_default();
                    let device = fingerprint(s.user_agent.as_deref(), &ip);
                    let of_user = known_devices::table.filter(known_devices::user_id.eq(s.user_id));
                    let had_others: bool = diesel::select(exists(
                        of_user.filter(known_devices::fingerprint.ne(&device.hash)),
                    ))
                    .get_result(conn)
                    .await?;
                    let inserted = diesel::insert_into(known_devices::table)
                        .values((
                            known_devices::user_id.eq(s.user_id),
                            known_devices::fingerprint.eq(&device.hash),
                            known_devices::label.eq(&device.label),
                            known_devices::ip_prefix.eq(&device.ip_prefix),
                            known_devices::first_seen_at.eq(s.created_at),
                            known_devices::last_seen_at.eq(s.created_at),
                        ))
                        .on_conflict((known_devices::user_id, known_devices::fingerprint))
                        .do_nothing()
                        .execute(conn)
                        .await?
                        == 1;
                    if !inserted {
                        diesel::update(of_user.filter(known_devices::fingerprint.eq(&device.hash)))
                            .set(
                                known_devices::last_seen_at
                                    .eq(greatest(known_devices::last_seen_at, s.created_at)),
                            )
                            .execute(conn)
                            .await?;
                    }
                    if inserted && had_others {
                        alerts.push(Alert {
                            user_id: s.user_id,
                            email: s.email,
                            device,
                            ip,
                            at: s.created_at,
                        });
                    }
                }
                Ok::<_, NotifyError>(alerts)
            })
            .await?;
        let mut sent = 0;
        for alert in alerts {
            let agent = if alert.device.label.is_empty() {
                "(not given)"
            } else {
                &alert.device.label
            };
            let result = self.mail(tenant, Outgoing {
                        user_id: alert.user_id,
                        to: &alert.email,
                        kind: MailKind::NewDevice,
                        html: None,
                        subject: "New sign-in to your account".into(),
                        body: format!(
                            "Your account was signed in to from a device it has not been used from \
                             before.\n\nWhen: {}\nIP address: {}\nBrowser: {agent}\n\nIf this was you, \
                             there is nothing to do. If not, reset your password now: every session \
                             is signed out when it changes.\n",
                            alert.at.format("%Y-%m-%d %H:%M:%S UTC"),
                            alert.ip,
                        ),
                    },
                )
                .await;
            // One undeliverable alert must not hold back the others; the
            // failure is in the sent log.
            if result.is_ok() {
                sent += 1;
            }
        }
        Ok(sent)
    }
}
