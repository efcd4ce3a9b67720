//! Reading a tenant's audit log with filters, a page at a time (newest
//! first) or as a bounded range for export (oldest first), and verifying
//! exactly the rows of a range against the sealed audit tree
//! ([`crate::audit_tree`]).

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use rampart_tenancy::TenantSlug;
use serde::Serialize;

use crate::audit::{AUDIT_COLUMNS, AuditRecord, AuditService};
use crate::error::AuthError;

/// Which audit rows to read. Every field narrows; `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// The actor (`actor` column), or the user id the row is about.
    pub actor: Option<String>,
    /// The action, e.g. `login`.
    pub action: Option<String>,
    /// The result, e.g. `failure`.
    pub result: Option<String>,
}

/// The verification of an exported range against the sealed tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeVerification {
    /// First row id of the range (none when the range is empty).
    pub from_id: Option<i64>,
    /// Last row id of the range.
    pub to_id: Option<i64>,
    /// Rows recomputed (every row between the two ids, filtered or not).
    pub rows: u64,
    /// The first row that differs from its sealed leaf (or the first
    /// sealed row of the range that is gone).
    pub first_broken: Option<i64>,
    /// Rows of the range not sealed yet (after the newest tree head): not
    /// checked.
    pub unsealed: u64,
}

impl RangeVerification {
    /// Whether every sealed row of the range matched.
    pub fn ok(&self) -> bool {
        self.first_broken.is_none()
    }
}

// raw SQL (both queries below): `detail` is read back as PostgreSQL's own
// jsonb text, as served and hashed; the optional filters are bound
// parameters (`$n IS NULL OR …`), never formatted in.
const FILTER: &str = "($1::timestamptz IS NULL OR occurred_at >= $1) \
     AND ($2::timestamptz IS NULL OR occurred_at < $2) \
     AND ($3::text IS NULL OR actor = $3 OR user_id::text = $3) \
     AND ($4::text IS NULL OR action = $4) \
     AND ($5::text IS NULL OR result = $5)";

impl AuditService {
    /// One page of rows matching `filter`, newest first, with ids below
    /// `before_id` (the previous page's last id) when given.
    pub async fn audit_page(
        &self,
        tenant: &TenantSlug,
        filter: &AuditFilter,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, AuthError> {
        let f = filter.clone();
        self.pool
            .with_tenant(tenant, async |conn| {
                let rows = diesel::sql_query(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE {FILTER} \
                     AND ($6::bigint IS NULL OR id < $6) ORDER BY id DESC LIMIT $7"
                ))
                .bind::<Nullable<Timestamptz>, _>(f.from)
                .bind::<Nullable<Timestamptz>, _>(f.to)
                .bind::<Nullable<Text>, _>(f.actor)
                .bind::<Nullable<Text>, _>(f.action)
                .bind::<Nullable<Text>, _>(f.result)
                .bind::<Nullable<BigInt>, _>(before_id)
                .bind::<BigInt, _>(limit)
                .load(conn)
                .await?;
                Ok::<_, AuthError>(rows)
            })
            .await
    }

    /// The rows matching `filter`, oldest first, at most `max_rows` (plus
    /// whether there were more), and every row from the first to the last
    /// of them checked against the sealed tree (rows after the newest tree
    /// head are counted as unsealed).
    pub async fn audit_export(
        &self,
        tenant: &TenantSlug,
        filter: &AuditFilter,
        max_rows: i64,
    ) -> Result<(Vec<AuditRecord>, bool, RangeVerification), AuthError> {
        let f = filter.clone();
        // The newest head first: every row it covers is committed, so the
        // rows read next hold all of them.
        let registry = self.pool.tenant(tenant).await?;
        let sealed_to = self.sealed_to(&registry).await?;
        let (mut rows, span) = self
            .pool
            .with_tenant(tenant, async |conn| {
                let rows: Vec<AuditRecord> = diesel::sql_query(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE {FILTER} ORDER BY id LIMIT $6"
                ))
                .bind::<Nullable<Timestamptz>, _>(f.from)
                .bind::<Nullable<Timestamptz>, _>(f.to)
                .bind::<Nullable<Text>, _>(f.actor)
                .bind::<Nullable<Text>, _>(f.action)
                .bind::<Nullable<Text>, _>(f.result)
                .bind::<BigInt, _>(max_rows.saturating_add(1))
                .load(conn)
                .await?;
                let ids = rows.iter().take(max_rows.max(0) as usize).map(|r| r.id);
                let (Some(first), Some(last)) = (ids.clone().min(), ids.max()) else {
                    return Ok::<_, AuthError>((rows, Vec::new()));
                };
                let span: Vec<AuditRecord> = diesel::sql_query(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id BETWEEN $1 AND $2 ORDER BY id"
                ))
                .bind::<BigInt, _>(first)
                .bind::<BigInt, _>(last)
                .load(conn)
                .await?;
                Ok((rows, span))
            })
            .await?;
        let truncated = rows.len() as i64 > max_rows;
        rows.truncate(max_rows.max(0) as usize);
        let check = self.check_range(&registry, sealed_to, &span).await?;
        let verification = RangeVerification {
            from_id: span.as_slice().first().map(|r| r.id),
            to_id: span.iter().next_back().map(|r| r.id),
            rows: span.len() as u64,
            first_broken: check.first_broken,
            unsealed: check.unsealed,
        };
        Ok((rows, truncated, verification))
    }
}
