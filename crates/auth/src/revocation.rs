//! Ending sessions and tokens. A tenant's sessions and refresh tokens are
//! marked `revoked_at = now()` by the holder they belong to. Access tokens
//! have no rows: their revocations are published to
//! `platform.token_revocations` in the same transaction, and every replica
//! follows that feed ([`RevocationFeed`]) with one query per interval for
//! all tenants, so checking a bearer token costs no database round trip.
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{ExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::UserId;
use rampart_tenancy::{Freshness, TenantPool, snapshot_horizon};
use uuid::Uuid;

use crate::error::AuthError;
use crate::schema::{refresh_tokens, sessions, token_revocations};
use crate::token::AccessTokenClaims;

#[diesel::declare_sql_function]
extern "SQL" {
    /// Records revocations of the current tenant's access tokens (a
    /// `SECURITY DEFINER` function: tenant roles cannot write the platform
    /// schema); returns the tenant's id.
    #[sql_name = "platform_tenant_api.revoke_access_tokens"]
    fn revoke_access_tokens(
        kind: Text,
        subjects: Array<Text>,
        revoked_at: Timestamptz,
        expires_at: Timestamptz,
    ) -> SqlUuid;
}

/// Whose sessions and tokens a revocation ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Holder<'a> {
    /// Every session of a user and every token issued to the user so far.
    User(UserId),
    /// One login session and the tokens issued to it.
    Session(Uuid),
    /// The tokens of an OAuth client issued so far.
    Client(&'a str),
    /// One refresh token family and its access tokens.
    Family(Uuid),
    /// One access token, by its `jti`.
    AccessToken(&'a str),
}

/// What a revocation names; its number indexes [`Denied::by_kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Jti = 0,
    Family = 1,
    Session = 2,
    User = 3,
    Client = 4,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Jti,
        Kind::Family,
        Kind::Session,
        Kind::User,
        Kind::Client,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Family => "family",
            Kind::Session => "session",
            Kind::User => "user",
            Kind::Client => "client",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A user's or a client's revocation ends the tokens issued up to it,
    /// not the ones issued after (a user enabled again logs in anew); the
    /// others name tokens that can never be issued again.
    fn up_to_its_time(self) -> bool {
        matches!(self, Kind::User | Kind::Client)
    }
}

impl Holder<'_> {
    fn kind_and_subject(&self) -> (Kind, String) {
        match self {
            Holder::User(id) => (Kind::User, id.to_string()),
            Holder::Session(id) => (Kind::Session, id.to_string()),
            Holder::Client(id) => (Kind::Client, (*id).to_owned()),
            Holder::Family(id) => (Kind::Family, id.to_string()),
            Holder::AccessToken(jti) => (Kind::Jti, (*jti).to_owned()),
        }
    }
}

/// `UPDATE $table SET revoked_at = now() WHERE $column = $value AND revoked_at IS NULL`.
macro_rules! revoke_live {
    ($conn:expr, $table:ident, $column:ident, $value:expr) => {
        diesel::update(
            $table::table
                .filter($table::$column.eq($value))
                .filter($table::revoked_at.is_null()),
        )
        .set($table::revoked_at.eq(now))
        .execute($conn)
        .await?
    };
}

/// Revokes the live refresh tokens of `holder` and publishes the revocation
/// of its access tokens, in the caller's tenant transaction.
pub(crate) async fn revoke_tokens(
    conn: &mut AsyncPgConnection,
    feed: &RevocationFeed,
    holder: Holder<'_>,
) -> Result<(), AuthError> {
    match holder {
        Holder::User(id) => {
            revoke_live!(conn, refresh_tokens, user_id, id);
        }
        Holder::Session(id) => {
            revoke_live!(conn, refresh_tokens, session_id, id);
        }
        Holder::Client(id) => {
            revoke_live!(conn, refresh_tokens, client_id, id);
        }
        Holder::Family(id) => {
            revoke_live!(conn, refresh_tokens, family_id, id);
        }
        Holder::AccessToken(_) => {}
    }
    feed.publish(conn, holder).await
}

/// Revokes the live sessions of `holder` (a user's, or one) and the tokens
/// bound to them; the number of sessions ended.
pub(crate) async fn revoke_sessions(
    conn: &mut AsyncPgConnection,
    feed: &RevocationFeed,
    holder: Holder<'_>,
) -> Result<usize, AuthError> {
    let n = match holder {
        Holder::User(id) => revoke_live!(conn, sessions, user_id, id),
        Holder::Session(id) => revoke_live!(conn, sessions, id, id),
        Holder::Client(_) | Holder::Family(_) | Holder::AccessToken(_) => 0,
    };
    revoke_tokens(conn, feed, holder).await?;
    Ok(n)
}

/// When a revocation was made and until when it can still matter.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    revoked_ms: i64,
    expires_secs: i64,
}

/// One tenant's revocations, by kind, then subject.
#[derive(Debug, Default)]
struct Denied {
    by_kind: [HashMap<String, Stamp>; 5],
}

impl Denied {
    fn add(&mut self, kind: Kind, subject: String, stamp: Stamp) {
        let entry = self.by_kind[kind as usize].entry(subject).or_insert(stamp);
        entry.revoked_ms = entry.revoked_ms.max(stamp.revoked_ms);
        entry.expires_secs = entry.expires_secs.max(stamp.expires_secs);
    }

    fn denies(&self, kind: Kind, subject: &str, issued_ms: i64) -> bool {
        self.by_kind[kind as usize]
            .get(subject)
            .is_some_and(|s| !kind.up_to_its_time() || s.revoked_ms >= issued_ms)
    }

    /// Drops what can no longer matter; whether anything is left.
    fn prune(&mut self, now_secs: i64) -> bool {
        for map in &mut self.by_kind {
            map.retain(|_, s| s.expires_secs >= now_secs);
        }
        self.by_kind.iter().any(|m| !m.is_empty())
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = token_revocations, check_for_backend(diesel::pg::Pg))]
struct RevocationRow {
    tenant_id: Uuid,
    kind: String,
    subject: String,
    revoked_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// How often a replica deletes the rows that can no longer matter.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Where the feed stands: the snapshot horizon of the last read and when
/// expired rows were last deleted.
#[derive(Debug, Default)]
struct Cursor {
    horizon: i64,
    purged: Option<Instant>,
}

/// This replica's view of every tenant's access-token revocations.
///
/// A check reads the feed when the last read started more than `max_age`
/// ago (`revocation_check_secs`): one indexed query for the rows of the
/// transactions not yet visible at the previous read, whatever the number
/// of tenants. Revocations made through this process apply at once, before
/// their transaction commits (one that then fails errs on the side of
/// refusing). Entries are kept until no token they name can still verify.
#[derive(Debug)]
pub(crate) struct RevocationFeed {
    pool: TenantPool,
    /// How long a revocation can matter: the access-token lifetime plus the
    /// tolerated clock skew.
    lifetime: chrono::Duration,
    view: Freshness<Cursor>,
    denied: RwLock<HashMap<Uuid, Denied>>,
}

impl RevocationFeed {
    pub(crate) fn new(pool: TenantPool, max_age: Duration, lifetime: Duration) -> Self {
        Self {
            pool,
            lifetime: chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::days(365)),
            view: Freshness::new(max_age, Cursor::default()),
            denied: RwLock::new(HashMap::new()),
        }
    }

    /// The next check reads the feed (revocations written by another
    /// process into this one's database).
    pub(crate) fn stale(&self) {
        self.view.stale();
    }

    /// Records the revocation of `holder`'s access tokens in the caller's
    /// tenant transaction and applies it here at once.
    async fn publish(
        &self,
        conn: &mut AsyncPgConnection,
        holder: Holder<'_>,
    ) -> Result<(), AuthError> {
        let (kind, subject) = holder.kind_and_subject();
        let revoked_at = Utc::now();
        let expires_at = revoked_at + self.lifetime;
        let tenant: Uuid = diesel::select(revoke_access_tokens(
            kind.as_str(),
            vec![subject.clone()],
            revoked_at,
            expires_at,
        ))
        .get_result(conn)
        .await?;
        self.apply(
            tenant,
            kind,
            subject,
            Stamp {
                revoked_ms: revoked_at.timestamp_millis(),
                expires_secs: expires_at.timestamp(),
            },
        );
        Ok(())
    }

    fn apply(&self, tenant: Uuid, kind: Kind, subject: String, stamp: Stamp) {
        let mut denied = self.denied.write().unwrap_or_else(|e| e.into_inner());
        denied.entry(tenant).or_default().add(kind, subject, stamp);
    }

    /// Whether the access token with `claims`, of `tenant`, was revoked.
    pub(crate) async fn revoked(
        &self,
        tenant: Uuid,
        claims: &AccessTokenClaims,
    ) -> Result<bool, AuthError> {
        self.view
            .ensure(async |cursor| self.read(cursor).await)
            .await?;
        let denied = self.denied.read().unwrap_or_else(|e| e.into_inner());
        let Some(d) = denied.get(&tenant) else {
            return Ok(false);
        };
        let issued = issued_ms(claims);
        let user = claims.sub.as_str();
        Ok(d.denies(Kind::Jti, &claims.jti, issued)
            || claims
                .fam
                .as_deref()
                .is_some_and(|f| d.denies(Kind::Family, f, issued))
            || claims
                .sid
                .as_deref()
                .is_some_and(|s| d.denies(Kind::Session, s, issued))
            || d.denies(Kind::User, user, issued)
            || d.denies(Kind::Client, &claims.client_id, issued))
    }

    /// Reads the rows of the transactions not yet visible at the previous
    /// read, deletes expired ones now and then, and prunes what can no
    /// longer matter.
    async fn read(&self, cursor: &mut Cursor) -> Result<(), AuthError> {
        let started = Instant::now();
        let mut conn = crate::context::platform_conn(&self.pool).await?;
        let horizon = snapshot_horizon(&mut conn).await?;
        let rows: Vec<RevocationRow> = token_revocations::table
            .filter(token_revocations::xact.ge(cursor.horizon))
            .filter(token_revocations::expires_at.gt(now))
            .select(RevocationRow::as_select())
            .load(&mut conn)
            .await?;
        if cursor.purged.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            diesel::delete(token_revocations::table.filter(token_revocations::expires_at.lt(now)))
                .execute(&mut conn)
                .await?;
            cursor.purged = Some(started);
        }
        cursor.horizon = horizon;
        {
            let mut denied = self.denied.write().unwrap_or_else(|e| e.into_inner());
            for row in rows {
                let Some(kind) = Kind::parse(&row.kind) else {
                    continue;
                };
                denied.entry(row.tenant_id).or_default().add(
                    kind,
                    row.subject,
                    Stamp {
                        revoked_ms: row.revoked_at.timestamp_millis(),
                        expires_secs: row.expires_at.timestamp(),
                    },
                );
            }
            let now_secs = Utc::now().timestamp();
            denied.retain(|_, d| d.prune(now_secs));
        }
        Ok(())
    }
}

/// When an access token was issued, in milliseconds: from its `jti` (a
/// UUIDv7 carries it), else from `iat` (the start of that second, which
/// errs on the side of refusing).
fn issued_ms(claims: &AccessTokenClaims) -> i64 {
    Uuid::parse_str(&claims.jti)
        .ok()
        .filter(|u| u.get_version_num() == 7)
        .and_then(|u| u.get_timestamp())
        .map(|t| {
            let (secs, nanos) = t.to_unix();
            i64::try_from(secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000)
                + i64::from(nanos / 1_000_000)
        })
        .unwrap_or(claims.iat.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(revoked_ms: i64) -> Stamp {
        Stamp {
            revoked_ms,
            expires_secs: i64::MAX,
        }
    }

    #[test]
    fn a_user_or_client_revocation_ends_only_the_tokens_issued_up_to_it() {
        let mut d = Denied::default();
        d.add(Kind::User, "u".into(), stamp(1_000));
        d.add(Kind::Family, "f".into(), stamp(1_000));
        assert!(d.denies(Kind::User, "u", 999));
        assert!(d.denies(Kind::User, "u", 1_000));
        assert!(!d.denies(Kind::User, "u", 1_001));
        assert!(!d.denies(Kind::User, "other", 0));
        // A family, session or token id never comes back.
        assert!(d.denies(Kind::Family, "f", 5_000));
        // A later revocation of the same user covers more.
        d.add(Kind::User, "u".into(), stamp(2_000));
        d.add(Kind::User, "u".into(), stamp(1_500));
        assert!(d.denies(Kind::User, "u", 1_999));
        assert!(d.prune(0));
        assert_eq!(d.by_kind[Kind::User as usize].len(), 1);
    }

    #[test]
    fn entries_are_pruned_once_they_cannot_matter() {
        let mut d = Denied::default();
        d.add(
            Kind::Jti,
            "j".into(),
            Stamp {
                revoked_ms: 0,
                expires_secs: 100,
            },
        );
        assert!(d.prune(100));
        assert!(!d.prune(101));
        assert!(!d.denies(Kind::Jti, "j", 0));
    }
}
