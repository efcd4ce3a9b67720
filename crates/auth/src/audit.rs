//! The append-only audit log of each tenant.
//!
//! Appends are plain inserts (the identity column orders them): no lock is
//! shared by a tenant's requests. A database trigger refuses UPDATE and
//! DELETE, and the table belongs to the platform role (the tenant role may
//! only `SELECT` and `INSERT`). The log is made verifiable by
//! [`crate::audit_tree`]: a sealer adds the new rows as leaves of the
//! tenant's RFC 9162 Merkle tree and records a signed tree head in the
//! platform schema; verification recomputes the tree from the rows.
//!
//! Rows written before the tree existed carry a hash chain
//! (`prev_hash`/`row_hash`); they become the first leaves of the tree at
//! the first seal, and new rows leave both columns empty.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::sql_types::{BigInt, Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{ExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

use rampart_tenancy::TenantPool;

use crate::keys::KeyRing;

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
    pub user_id: Option<UserId>,
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
    pub fn by_user(action: &str, result: &str, user: UserId, ctx: &ClientContext) -> Self {
        Self::new(action, result).user(Some(user)).client(ctx)
    }
    /// Sets the user.
    pub fn user(mut self, user: Option<UserId>) -> Self {
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

/// A row as a leaf of the tree: its canonical encoding (compact JSON, in
/// this field order, with the detail's keys sorted).
#[derive(Serialize)]
struct Canonical<'a> {
    id: i64,
    tenant_id: Option<Uuid>,
    occurred_at_us: i64,
    user_id: Option<UserId>,
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

/// The time an event is stored with: now, to the microsecond PostgreSQL
/// keeps (so the leaf hashed from the row is what was written).
pub(crate) fn audit_time() -> chrono::DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Appends an event inside the caller's tenant transaction: one plain
/// INSERT, no lock (the sealer orders rows by id).
pub(crate) async fn append(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    event: &AuditEvent,
) -> Result<(), AuthError> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::occurred_at.eq(audit_time()),
            audit_log::tenant_id.eq(tenant_id),
            audit_log::user_id.eq(event.user_id),
            audit_log::actor.eq(event.actor.as_deref()),
            audit_log::action.eq(&event.action),
            audit_log::result.eq(&event.result),
            audit_log::ip.eq(event.ip.as_deref()),
            audit_log::user_agent.eq(event.user_agent.as_deref()),
            audit_log::detail.eq(&event.detail),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The leaf a stored row is in the tree: the canonical encoding of every
/// field, its id included (the detail as PostgreSQL returns the jsonb,
/// re-encoded with sorted keys).
pub(crate) fn leaf_data(row: &AuditRecord) -> Result<Vec<u8>, AuthError> {
    let detail = match serde_json::from_str::<serde_json::Value>(&row.detail) {
        Ok(v) => canonical_detail(&v),
        Err(_) => row.detail.clone(),
    };
    serde_json::to_vec(&Canonical {
        id: row.id,
        tenant_id: row.tenant_id,
        occurred_at_us: row.occurred_at.timestamp_micros(),
        user_id: row.user_id,
        actor: row.actor.as_deref(),
        action: &row.action,
        result: &row.result,
        ip: row.ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
        detail,
    })
    .map_err(|e| AuthError::Crypto(e.to_string()))
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
    pub user_id: Option<UserId>,
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
    /// Previous row's hash (rows written before the tree; none since).
    #[diesel(sql_type = Nullable<Bytea>)]
    #[serde(skip)]
    pub prev_hash: Option<Vec<u8>>,
    /// This row's chain hash (rows written before the tree; none since).
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

/// The result of checking the audit log against its signed tree heads, in
/// short (see [`crate::audit_tree::LogVerification`] for the details).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// Rows in the log.
    pub rows: u64,
    /// The id of the row at the first position that differs from the
    /// sealed tree (or, when no row is there, of the sealed row missing).
    pub first_broken: Option<i64>,
}

pub(crate) const AUDIT_COLUMNS: &str = "id, occurred_at, tenant_id, user_id, actor, action, result, ip, user_agent, \
     detail::text AS detail, prev_hash, row_hash";

/// Records an event in its own tenant transaction.
pub(crate) async fn record(
    pool: &TenantPool,
    tenant: &TenantSlug,
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
    /// Signs and verifies the tree heads.
    pub(crate) ring: Arc<KeyRing>,
}

impl std::fmt::Debug for AuditService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditService").finish_non_exhaustive()
    }
}

impl AuditService {
    /// The audit log of `pool`'s tenants, its tree heads signed and checked
    /// with `ring` (the [`crate::AuthServer`] builds one; commands that
    /// only verify or seal may build their own).
    pub fn new(pool: TenantPool, ring: Arc<KeyRing>) -> Self {
        Self { pool, ring }
    }

    /// Records an event in its own transaction.
    pub async fn audit(&self, tenant: &TenantSlug, event: AuditEvent) -> Result<(), AuthError> {
        record(&self.pool, tenant, event).await
    }

    /// The newest `limit` audit rows, newest first.
    pub async fn audit_log(
        &self,
        tenant: &TenantSlug,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, AuthError> {
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
        tenant: &TenantSlug,
        user_id: UserId,
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
