//! The hash-chained, append-only audit log.
//!
//! Each row stores `prev_hash` (the previous row's `row_hash`) and
//! `row_hash = SHA-256(prev_hash ‖ canonical JSON of the row)`. Appends take
//! a table lock so the chain is linear; a database trigger refuses UPDATE
//! and DELETE. [`AuditService::verify_audit_chain`] recomputes the chain
//! and reports the first row that does not match.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::sql_types::{BigInt, Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use rampart_tenancy::TenantPool;

use crate::context::{ClientContext, tenant_id};
use crate::error::AuthError;
use crate::schema::audit_log;

/// One auth event to record.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    /// What happened (`login`, `lockout`, `mfa`, `token_refresh`, ...).
    pub action: String,
    /// `success`, `failure`, `refused`, ...
    pub result: String,
    /// The user concerned.
    pub user_id: Option<Uuid>,
    /// Who acted (user id, client id, `system`).
    pub actor: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Extra facts.
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event with action and result.
    pub fn new(action: &str, result: &str) -> Self {
        Self {
            action: action.to_owned(),
            result: result.to_owned(),
            detail: serde_json::json!({}),
            ..Self::default()
        }
    }
    /// An event of `user` from the client `ctx` ([`AuditEvent::user`] and
    /// [`AuditEvent::client`]).
    pub fn by_user(action: &str, result: &str, user: Uuid, ctx: &ClientContext) -> Self {
        Self::new(action, result).user(Some(user)).client(ctx)
    }
    /// Sets the user.
    pub fn user(mut self, user: Option<Uuid>) -> Self {
        self.user_id = user;
        self
    }
    /// Sets the actor.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }
    /// Sets IP and user agent.
    pub fn client(mut self, ctx: &ClientContext) -> Self {
        self.ip = Some(ctx.ip.clone());
        self.user_agent = ctx.user_agent.clone();
        self
    }
    /// Sets the detail.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

#[derive(Serialize)]
struct Canonical<'a> {
    tenant_id: Option<Uuid>,
    occurred_at_us: i64,
    user_id: Option<Uuid>,
    actor: Option<&'a str>,
    action: &'a str,
    result: &'a str,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    detail: String,
}

/// The detail as hashed: compact JSON with every object's keys sorted, so
/// the same value always prints the same whatever order the map keeps
/// (serde_json's `preserve_order`, which another crate in a build may turn
/// on, keeps insertion order; PostgreSQL's `jsonb` its own order).
fn canonical_detail(detail: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    if let Some(value) = map.get(k) {
                        write(value, out);
                    }
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(detail, &mut out);
    out
}

fn row_hash(prev: &[u8], c: &Canonical<'_>) -> Result<Vec<u8>, AuthError> {
    let body = serde_json::to_vec(c).map_err(|e| AuthError::Crypto(e.to_string()))?;
    let mut h = Sha256::new();
    h.update((prev.len() as u64).to_be_bytes());
    h.update(prev);
    h.update(body);
    Ok(h.finalize().to_vec())
}

/// Appends an event inside the caller's tenant transaction.
pub(crate) async fn append(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    event: &AuditEvent,
) -> Result<(), AuthError> {
    // One writer at a time keeps the chain linear (released at commit). An
    // advisory lock per tenant schema: the tenant role may only insert into
    // the audit log, which allows no stronger table lock than ROW EXCLUSIVE.
    // raw SQL: an advisory lock
    conn.batch_execute(
        "SELECT pg_advisory_xact_lock(hashtext('rampart.audit_log'), hashtext(current_schema()))",
    )
    .await?;
    let last: Option<Option<Vec<u8>>> = audit_log::table
        .order(audit_log::id.desc())
        .select(audit_log::row_hash)
        .first(conn)
        .await
        .optional()?;
    let prev = last.flatten().unwrap_or_default();
    let occurred_at: DateTime<Utc> = Utc::now().trunc_subsecs(6);
    let detail = canonical_detail(&event.detail);
    let hash = row_hash(
        &prev,
        &Canonical {
            tenant_id: Some(tenant_id),
            occurred_at_us: occurred_at.timestamp_micros(),
            user_id: event.user_id,
            actor: event.actor.as_deref(),
            action: &event.action,
            result: &event.result,
            ip: event.ip.as_deref(),
            user_agent: event.user_agent.as_deref(),
            detail,
        },
    )?;
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::occurred_at.eq(occurred_at),
            audit_log::tenant_id.eq(tenant_id),
            audit_log::user_id.eq(event.user_id),
            audit_log::actor.eq(event.actor.as_deref()),
            audit_log::action.eq(&event.action),
            audit_log::result.eq(&event.result),
            audit_log::ip.eq(event.ip.as_deref()),
            audit_log::user_agent.eq(event.user_agent.as_deref()),
            audit_log::detail.eq(&event.detail),
            // The first row stores an empty previous hash, not NULL.
            audit_log::prev_hash.eq(&prev),
            audit_log::row_hash.eq(hash),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A stored audit row.
#[derive(Debug, Clone, diesel::QueryableByName, Serialize)]
pub struct AuditRecord {
    /// Position in the chain.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    /// Tenant.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub tenant_id: Option<Uuid>,
    /// User.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub user_id: Option<Uuid>,
    /// Actor.
    #[diesel(sql_type = Nullable<Text>)]
    pub actor: Option<String>,
    /// Action.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// Result.
    #[diesel(sql_type = Text)]
    pub result: String,
    /// IP.
    #[diesel(sql_type = Nullable<Text>)]
    pub ip: Option<String>,
    /// User agent.
    #[diesel(sql_type = Nullable<Text>)]
    pub user_agent: Option<String>,
    /// Detail (JSON text).
    #[diesel(sql_type = Text)]
    pub detail: String,
    /// Previous row's hash.
    #[diesel(sql_type = Nullable<Bytea>)]
    #[serde(skip)]
    pub prev_hash: Option<Vec<u8>>,
    /// This row's hash.
    #[diesel(sql_type = Nullable<Bytea>)]
    #[serde(skip)]
    pub row_hash: Option<Vec<u8>>,
}

/// One audit row of a user's own trail (no detail).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
pub struct UserAuditEntry {
    /// Position in the chain.
    pub id: i64,
    /// Action.
    pub action: String,
    /// Result.
    pub result: String,
    /// IP.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// When.
    pub occurred_at: DateTime<Utc>,
}

/// The result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// Rows checked.
    pub rows: u64,
    /// The id of the first row whose link or hash does not match, if any.
    pub first_broken: Option<i64>,
}

pub(crate) const AUDIT_COLUMNS: &str = "id, occurred_at, tenant_id, user_id, actor, action, result, ip, user_agent, \
     detail::text AS detail, prev_hash, row_hash";

/// Records an event in its own tenant transaction.
pub(crate) async fn record(
    pool: &TenantPool,
    tenant: &str,
    event: AuditEvent,
) -> Result<(), AuthError> {
    let tenant_id = tenant_id(pool, tenant).await?;
    pool.with_tenant(tenant, async |conn| append(conn, tenant_id, &event).await)
        .await
}

/// The audit log of every tenant: record, read and verify.
#[derive(Clone)]
pub struct AuditService {
    pub(crate) pool: TenantPool,
}

impl std::fmt::Debug for AuditService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditService").finish_non_exhaustive()
    }
}

impl AuditService {
    /// Records an event in its own transaction.
    pub async fn audit(&self, tenant: &str, event: AuditEvent) -> Result<(), AuthError> {
        record(&self.pool, tenant, event).await
    }

    /// The newest `limit` audit rows, newest first.
    pub async fn audit_log(&self, tenant: &str, limit: i64) -> Result<Vec<AuditRecord>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                // raw SQL: `detail` is read back as PostgreSQL's own jsonb text, as served.
                let rows = diesel::sql_query(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT $1"
                ))
                .bind::<BigInt, _>(limit)
                .load(conn)
                .await?;
                Ok::<_, AuthError>(rows)
            })
            .await
    }

    /// The newest `limit` audit rows about `user_id`, newest first.
    pub async fn user_events(
        &self,
        tenant: &str,
        user_id: Uuid,
        limit: i64,
    ) -> Result<Vec<UserAuditEntry>, AuthError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                Ok::<_, AuthError>(
                    audit_log::table
                        .filter(audit_log::user_id.eq(user_id))
                        .order(audit_log::id.desc())
                        .limit(limit)
                        .select(UserAuditEntry::as_select())
                        .load(conn)
                        .await?,
                )
            })
            .await
    }

    /// Recomputes the whole chain and reports the first broken link.
    pub async fn verify_audit_chain(&self, tenant: &str) -> Result<AuditVerification, AuthError> {
        let rows: Vec<AuditRecord> = self
            .pool
            .with_tenant(tenant, async |conn| {
                // raw SQL: `detail` is read back as PostgreSQL's own jsonb text, as served.
                let rows =
                    diesel::sql_query(format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY id"))
                        .load(conn)
                        .await?;
                Ok::<_, AuthError>(rows)
            })
            .await?;
        check_links(Vec::new(), &rows)
    }
}

/// Recomputes the hashes of consecutive `rows`, the first linked to `prev`,
/// and reports the first row whose link or hash does not match.
pub(crate) fn check_links(
    mut prev: Vec<u8>,
    rows: &[AuditRecord],
) -> Result<AuditVerification, AuthError> {
    let mut checked = 0u64;
    for row in rows {
        checked += 1;
        let stored_prev = row.prev_hash.clone().unwrap_or_default();
        let parsed = serde_json::from_str::<serde_json::Value>(&row.detail);
        let hash_with = |detail: String| {
            row_hash(
                &prev,
                &Canonical {
                    tenant_id: row.tenant_id,
                    occurred_at_us: row.occurred_at.timestamp_micros(),
                    user_id: row.user_id,
                    actor: row.actor.as_deref(),
                    action: &row.action,
                    result: &row.result,
                    ip: row.ip.as_deref(),
                    user_agent: row.user_agent.as_deref(),
                    detail,
                },
            )
        };
        let mut expected = hash_with(match &parsed {
            Ok(v) => canonical_detail(v),
            Err(_) => row.detail.clone(),
        })?;
        // Rows written before the keys were sorted hashed the detail in
        // the order jsonb prints it: they still verify, as they did.
        if row.row_hash.as_deref() != Some(expected.as_slice())
            && let Ok(v) = &parsed
        {
            let legacy = hash_with(v.to_string())?;
            if row.row_hash.as_deref() == Some(legacy.as_slice()) {
                expected = legacy;
            }
        }
        if stored_prev != prev || row.row_hash.as_deref() != Some(expected.as_slice()) {
            return Ok(AuditVerification {
                rows: checked,
                first_broken: Some(row.id),
            });
        }
        prev = expected;
    }
    Ok(AuditVerification {
        rows: checked,
        first_broken: None,
    })
}

#[cfg(test)]
mod tests {
    use super::canonical_detail;

    #[test]
    fn the_hashed_detail_does_not_depend_on_key_order() {
        // As written by the code, and as PostgreSQL's jsonb prints it back
        // (shorter keys first, spaces).
        let written =
            serde_json::json!({"invitation": "x", "role": "admin", "n": [1, {"b": 2, "a": 1}]});
        let from_jsonb: serde_json::Value = serde_json::from_str(
            r#"{"n": [1, {"a": 1, "b": 2}], "role": "admin", "invitation": "x"}"#,
        )
        .unwrap_or_default();
        assert_eq!(canonical_detail(&written), canonical_detail(&from_jsonb));
        assert_eq!(
            canonical_detail(&written),
            r#"{"invitation":"x","n":[1,{"a":1,"b":2}],"role":"admin"}"#
        );
    }
}
