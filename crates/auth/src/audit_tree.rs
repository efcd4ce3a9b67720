//! The audit log as a verifiable log, the way Certificate Transparency
//! (RFC 9162) and Trillian build one.
//!
//! Appends are plain inserts ([`crate::audit`]). A sealer
//! ([`AuditService::seal`], run by the server as a job once across
//! replicas: [`AuditService::seal_all`]) takes the rows after the newest
//! tree head in id order, adds them as leaves of the tenant's Merkle tree
//! ([`crate::merkle`]) and records a **signed tree head** (size, root hash,
//! time; ES256 with the platform's signing key, `kid` in the JWKS) in the
//! `platform` schema, which tenant roles cannot write:
//!
//! - `platform.audit_leaves`: per tenant, leaf index → audit row id and
//!   leaf hash (so verification names the first position that differs, and
//!   proofs need not re-read the rows);
//! - `platform.audit_tree_heads`: the signed tree heads, with the tree's
//!   frontier (a seal extends the tree without reading its leaves).
//!
//! Where the seal cuts: it first takes `SHARE` on the tenant's `audit_log`
//! for an instant (a transaction of its own, `lock_timeout` 1 s), which
//! waits for the inserts in flight to commit or roll back, and reads the
//! highest id. Every row at or below that id is then final, so rows are
//! sealed in id order and a row committed late is never skipped. The lock
//! is taken once per seal, never by requests.
//!
//! [`AuditService::verify_log`] recomputes the tree from the rows and checks
//! every signed tree head (root at its size and signature). A changed,
//! inserted, reordered or deleted (first, middle or newest) row, or a
//! truncated table, is reported at the first position that differs; rows
//! after the newest tree head are reported as unsealed (not yet provable).
//! Inclusion and consistency proofs are served from the stored leaves.

use rampart_tenancy::TenantSlug;
use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, SubsecRound, Utc};
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde::Serialize;
use uuid::Uuid;

use rampart_tenancy::{Due, TenancyError, Tenant, TenantStatus};

use crate::audit::{AUDIT_COLUMNS, AuditRecord, AuditService, AuditVerification, leaf_data};
use crate::error::AuthError;
use crate::jose_header::jws_header_b64;
use crate::keys::{KeyKind, KeyRing};
use crate::merkle::{self, Frontier, Hash};
use crate::schema::{audit_leaves, audit_tree_heads};

/// The JWS `typ` of a signed tree head (never accepted as a token).
pub const TREE_HEAD_TYP: &str = "rampart-audit-sth";

/// Session advisory lock of the sealing job ("rampseal"): one replica seals.
const SEAL_JOB_LOCK_KEY: i64 = 0x7261_6d70_7365_616c;

/// Leaves inserted per statement (4 parameters each).
const LEAF_BATCH: usize = 10_000;

/// A stored tree head.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_tree_heads, check_for_backend(diesel::pg::Pg))]
struct HeadRow {
    tenant_id: Uuid,
    tree_size: i64,
    root_hash: Vec<u8>,
    last_row_id: i64,
    frontier: Vec<u8>,
    signed_at: DateTime<Utc>,
    kid: String,
    signature: String,
}

/// A signed tree head, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedTreeHead {
    /// Leaves in the tree.
    pub tree_size: u64,
    /// The tree head, `MTH` of the leaves (hex).
    pub root_hash: String,
    /// When it was signed (milliseconds since the Unix epoch).
    pub timestamp: i64,
    /// The id of the last audit row in the tree.
    pub last_row_id: i64,
    /// The signing key (in the JWKS).
    pub kid: String,
    /// Compact JWS (`ES256`, `typ` [`TREE_HEAD_TYP`]) whose payload is
    /// [`tree_head_payload`] of the tenant id, size, timestamp and root.
    pub signature: String,
}

impl From<&HeadRow> for SignedTreeHead {
    fn from(h: &HeadRow) -> Self {
        Self {
            tree_size: h.tree_size.max(0) as u64,
            root_hash: hex::encode(&h.root_hash),
            timestamp: h.signed_at.timestamp_millis(),
            last_row_id: h.last_row_id,
            kid: h.kid.clone(),
            signature: h.signature.clone(),
        }
    }
}

/// The canonical encoding of a tree head that is signed: five lines,
/// `rampart-audit-sth/1`, tenant id, tree size, timestamp (ms) and root
/// hash (hex).
pub fn tree_head_payload(
    tenant_id: Uuid,
    tree_size: u64,
    timestamp_ms: i64,
    root: &[u8],
) -> String {
    format!(
        "rampart-audit-sth/1\n{tenant_id}\n{tree_size}\n{timestamp_ms}\n{}",
        hex::encode(root)
    )
}

/// What one seal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SealReport {
    /// Rows added to the tree.
    pub added: u64,
    /// The tree head recorded, if one was (none when nothing was added and
    /// the newest head's key still signs).
    pub head: Option<SignedTreeHead>,
}

/// What a pass of the sealing job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealAllReport {
    /// False when another replica holds the job's lock (nothing was done).
    pub ran: bool,
    /// Tenants sealed.
    pub tenants: usize,
    /// Rows added over all tenants.
    pub added: u64,
    /// Tenants whose seal failed, with the error.
    pub failed: Vec<(String, String)>,
}

/// How the rows differ from the sealed tree at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// The sealed row is there, with other contents (modified, or two rows
    /// reordered).
    Changed,
    /// A row that was not sealed stands where a sealed row should be (or
    /// within the sealed ids past the tree's end).
    Inserted,
    /// The sealed row is gone (deleted, or the table truncated).
    Missing,
}

/// The first position at which the rows differ from the sealed leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogDifference {
    /// Leaf index (0-based position in id order).
    pub position: u64,
    /// What differs.
    pub kind: DifferenceKind,
    /// The row found at that position, if any.
    pub row_id: Option<i64>,
    /// The row sealed at that position, if any.
    pub sealed_row_id: Option<i64>,
}

/// Why a tree head does not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadProblem {
    /// The rows do not give its root at its size.
    RootMismatch,
    /// Its signature does not verify, or does not cover what it says.
    BadSignature,
}

/// The first tree head that does not check out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BadHead {
    /// Its size.
    pub tree_size: u64,
    /// When it was signed (ms).
    pub timestamp: i64,
    /// The id of the last audit row it covers.
    pub last_row_id: i64,
    /// What is wrong.
    pub problem: HeadProblem,
}

/// The result of [`AuditService::verify_log`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogVerification {
    /// Rows in the table.
    pub rows: u64,
    /// Size of the newest tree head (0 when none).
    pub tree_size: u64,
    /// Rows after the newest tree head: not sealed yet, not provable.
    pub unsealed: u64,
    /// Tree heads checked.
    pub heads: u64,
    /// Tree heads whose key is no longer in the key ring (their roots are
    /// still checked; a newer head signed by a current key covers them).
    pub unverifiable_heads: u64,
    /// The first position at which the rows differ from the sealed tree.
    pub first_difference: Option<LogDifference>,
    /// The first tree head that does not check out.
    pub bad_head: Option<BadHead>,
}

impl LogVerification {
    /// Whether nothing sealed was tampered with.
    pub fn ok(&self) -> bool {
        self.first_difference.is_none() && self.bad_head.is_none()
    }
}

/// An inclusion proof of one audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// The row.
    pub row_id: i64,
    /// Its leaf index.
    pub leaf_index: u64,
    /// The leaf as hashed: the row's canonical encoding, as stored now.
    pub leaf: String,
    /// Its leaf hash as sealed (hex).
    pub leaf_hash: String,
    /// The audit path (hex), RFC 9162 §2.1.3.
    pub path: Vec<String>,
    /// The tree head it proves inclusion in.
    pub tree_head: SignedTreeHead,
}

/// A consistency proof between two signed tree heads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    /// The older head.
    pub first: SignedTreeHead,
    /// The newer head.
    pub second: SignedTreeHead,
    /// The proof (hex), RFC 9162 §2.1.4.
    pub path: Vec<String>,
}

/// The verification of an exported range against the sealed leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RangeCheck {
    /// The first row id in the range that differs from its sealed leaf (or
    /// the id of a sealed row missing from it).
    pub(crate) first_broken: Option<i64>,
    /// Rows of the range after the newest tree head.
    pub(crate) unsealed: u64,
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

#[derive(diesel::QueryableByName)]
struct MaxId {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    max_id: Option<i64>,
}

fn to_hash(bytes: &[u8]) -> Result<Hash, AuthError> {
    bytes
        .try_into()
        .map_err(|_| AuthError::Crypto("a stored hash is not 32 bytes".into()))
}

/// Routes the transaction's unqualified names to the tenant's schema.
async fn route(conn: &mut AsyncPgConnection, schema: &str) -> Result<(), AuthError> {
    // raw SQL: set_config
    diesel::sql_query("SELECT set_config('search_path', $1, true)")
        .bind::<Text, _>(schema)
        .execute(conn)
        .await?;
    Ok(())
}

/// Signs a tree head with the active ES256 key: `(kid, compact JWS)`.
fn sign_head(ring: &KeyRing, payload: &[u8]) -> Result<(String, String), AuthError> {
    let set = ring.snapshot();
    let key = set
        .active
        .get(&KeyKind::Es256)
        .ok_or_else(|| AuthError::KeyStore("no active ES256 key".into()))?;
    let signer = key
        .signer
        .as_ref()
        .ok_or_else(|| AuthError::KeyStore("key cannot sign".into()))?;
    let mut out = jws_header_b64(KeyKind::Es256.alg(), TREE_HEAD_TYP, &key.meta.kid)?;
    out.push('.');
    B64.encode_string(payload, &mut out);
    let signature = signer.sign(out.as_bytes())?;
    out.push('.');
    B64.encode_string(&signature, &mut out);
    Ok((key.meta.kid.clone(), out))
}

enum SignatureCheck {
    Valid,
    Invalid,
    UnknownKey,
}

/// Checks that `jws` is our header for `kid`, covers exactly `payload` and
/// verifies with that key.
fn check_signature(ring: &KeyRing, kid: &str, jws: &str, payload: &[u8]) -> SignatureCheck {
    let set = ring.snapshot();
    let Some(key) = set.by_kid.get(kid) else {
        return SignatureCheck::UnknownKey;
    };
    let (Some(verifier), Ok(header)) = (
        key.verifier.as_ref(),
        jws_header_b64(key.meta.kind.alg(), TREE_HEAD_TYP, kid),
    ) else {
        return SignatureCheck::Invalid;
    };
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return SignatureCheck::Invalid;
    };
    let signed = B64.decode(p).ok();
    let signature = B64.decode(s).ok();
    match (signed, signature) {
        (Some(signed), Some(signature))
            if h == header
                && signed == payload
                && verifier
                    .verify(format!("{h}.{p}").as_bytes(), &signature)
                    .is_ok() =>
        {
            SignatureCheck::Valid
        }
        _ => SignatureCheck::Invalid,
    }
}

/// The newest tree head of a tenant.
async fn newest_head(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
) -> Result<Option<HeadRow>, AuthError> {
    Ok(audit_tree_heads::table
        .filter(audit_tree_heads::tenant_id.eq(tenant_id))
        .order((
            audit_tree_heads::tree_size.desc(),
            audit_tree_heads::id.desc(),
        ))
        .select(HeadRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The leaf hashes of the first `size` leaves of a tenant's tree.
async fn leaf_hashes(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    size: u64,
) -> Result<Vec<Hash>, AuthError> {
    let stored: Vec<Vec<u8>> = audit_leaves::table
        .filter(audit_leaves::tenant_id.eq(tenant_id))
        .filter(audit_leaves::leaf_index.lt(i64::try_from(size).unwrap_or(i64::MAX)))
        .order(audit_leaves::leaf_index)
        .select(audit_leaves::leaf_hash)
        .load(conn)
        .await?;
    if stored.len() as u64 != size {
        return Err(AuthError::Crypto(format!(
            "the audit tree holds {} of {size} leaves",
            stored.len()
        )));
    }
    stored.iter().map(|h| to_hash(h)).collect()
}

fn hexes(path: &[Hash]) -> Vec<String> {
    path.iter().map(hex::encode).collect()
}

impl AuditService {
    /// The tenant, unless purged (its schema and log are gone: refused as
    /// [`TenancyError::Purged`], never a database error).
    async fn live_tenant(&self, slug: &TenantSlug) -> Result<Tenant, AuthError> {
        let tenant = self.pool.tenant(slug).await?;
        if tenant.status == TenantStatus::Purged {
            return Err(TenancyError::Purged(slug.to_string()).into());
        }
        Ok(tenant)
    }

    async fn platform_conn(
        &self,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>, AuthError>
    {
        crate::context::platform_conn(&self.pool).await
    }

    /// The highest audit row id below which every row is final: takes
    /// `SHARE` on the tenant's log for an instant (waits for inserts in
    /// flight, at most 1 s), in a transaction of its own.
    async fn cut(&self, tenant: &Tenant) -> Result<Option<i64>, AuthError> {
        let mut conn = self.platform_conn().await?;
        conn.transaction::<_, AuthError, _>(async |conn| {
            route(conn, &tenant.schema_name).await?;
            // raw SQL: a table lock, to wait for the inserts in flight
            conn.batch_execute("SET LOCAL lock_timeout = '1s'; LOCK TABLE audit_log IN SHARE MODE")
                .await?;
            // raw SQL: in the routed schema, under the lock above
            let max: MaxId = diesel::sql_query("SELECT max(id) AS max_id FROM audit_log")
                .get_result(conn)
                .await?;
            Ok(max.max_id)
        })
        .await
    }

    /// Seals a tenant's new audit rows: adds them to its tree and records a
    /// signed tree head (also when nothing is new but the newest head was
    /// signed by a key that no longer signs).
    pub async fn seal(&self, tenant: &TenantSlug) -> Result<SealReport, AuthError> {
        let tenant = self.live_tenant(tenant).await?;
        self.seal_tenant(&tenant).await
    }

    async fn seal_tenant(&self, tenant: &Tenant) -> Result<SealReport, AuthError> {
        let cut = self.cut(tenant).await?;
        let active_kid = self.ring.active_kid(KeyKind::Es256);
        let mut conn = self.platform_conn().await?;
        conn.transaction::<_, AuthError, _>(async |conn| {
            route(conn, &tenant.schema_name).await?;
            // raw SQL: an advisory lock (one sealer per tenant)
            diesel::sql_query(
                "SELECT pg_advisory_xact_lock(hashtext('rampart.audit_seal'), hashtext($1))",
            )
            .bind::<Text, _>(tenant.id.to_string())
            .execute(conn)
            .await?;
            let head = newest_head(conn, tenant.id).await?;
            let (mut frontier, after) = match &head {
                Some(h) => (
                    Frontier::from_bytes(h.tree_size.max(0) as u64, &h.frontier).ok_or_else(
                        || AuthError::Crypto("the stored audit tree frontier is malformed".into()),
                    )?,
                    h.last_row_id,
                ),
                None => (Frontier::new(), i64::MIN),
            };
            let rows: Vec<AuditRecord> = match cut {
                // raw SQL: `detail` is read back as PostgreSQL's own jsonb text, as hashed.
                Some(cut) if cut > after => diesel::sql_query(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > $1 AND id <= $2 ORDER BY id"
                ))
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(cut)
                .load(conn)
                .await?,
                _ => Vec::new(),
            };
            let resign = head
                .as_ref()
                .is_some_and(|h| active_kid.as_deref() != Some(h.kid.as_str()));
            if rows.is_empty() && !resign {
                return Ok(SealReport {
                    added: 0,
                    head: None,
                });
            }
            let mut leaves = Vec::with_capacity(rows.len());
            for row in &rows {
                let hash = merkle::leaf_hash(&leaf_data(row)?);
                leaves.push((
                    audit_leaves::tenant_id.eq(tenant.id),
                    audit_leaves::leaf_index.eq(frontier.size() as i64),
                    audit_leaves::row_id.eq(row.id),
                    audit_leaves::leaf_hash.eq(hash.to_vec()),
                ));
                frontier.push(hash);
            }
            for batch in leaves.chunks(LEAF_BATCH) {
                diesel::insert_into(audit_leaves::table)
                    .values(batch)
                    .execute(conn)
                    .await?;
            }
            let root = frontier.root();
            let signed_at = Utc::now().trunc_subsecs(3);
            let payload = tree_head_payload(
                tenant.id,
                frontier.size(),
                signed_at.timestamp_millis(),
                &root,
            );
            let (kid, signature) = sign_head(&self.ring, payload.as_bytes())?;
            let last_row_id = rows
                .last()
                .map(|r| r.id)
                .or(head.as_ref().map(|h| h.last_row_id))
                .unwrap_or(0);
            let stored: HeadRow = diesel::insert_into(audit_tree_heads::table)
                .values((
                    audit_tree_heads::tenant_id.eq(tenant.id),
                    audit_tree_heads::tree_size.eq(frontier.size() as i64),
                    audit_tree_heads::root_hash.eq(root.to_vec()),
                    audit_tree_heads::last_row_id.eq(last_row_id),
                    audit_tree_heads::frontier.eq(frontier.to_bytes()),
                    audit_tree_heads::signed_at.eq(signed_at),
                    audit_tree_heads::kid.eq(&kid),
                    audit_tree_heads::signature.eq(&signature),
                ))
                .returning(HeadRow::as_returning())
                .get_result(conn)
                .await?;
            Ok(SealReport {
                added: rows.len() as u64,
                head: Some(SignedTreeHead::from(&stored)),
            })
        })
        .await
    }

    /// Seals every tenant with a schema (active, suspended or deactivated),
    /// unless another replica is sealing now (then `ran` is false). One
    /// tenant's failure does not stop the others.
    pub async fn seal_all(&self) -> Result<SealAllReport, AuthError> {
        self.seal_due(&Due::All).await
    }

    /// [`Self::seal_all`] for the tenants in `due` only (the periodic job
    /// passes those whose `audit_log` took rows: see
    /// [`rampart_tenancy::TableActivity`]).
    pub async fn seal_due(&self, due: &Due) -> Result<SealAllReport, AuthError> {
        // A connection of its own, detached from the pool: the session-level
        // lock ends with the connection, even if this future is dropped.
        let pooled = self.platform_conn().await?;
        let mut lock_conn: AsyncPgConnection = deadpool::managed::Object::take(pooled);
        // raw SQL: a session-level advisory lock
        let locked: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<BigInt, _>(SEAL_JOB_LOCK_KEY)
            .get_result(&mut lock_conn)
            .await?;
        let mut report = SealAllReport {
            ran: locked.locked,
            ..SealAllReport::default()
        };
        if !locked.locked {
            return Ok(report);
        }
        let tenants = self.pool.list().await;
        for tenant in tenants.iter().flatten().filter(|t| {
            matches!(
                t.status,
                TenantStatus::Active | TenantStatus::Suspended | TenantStatus::Deactivated
            ) && due.includes(t.slug.as_str())
        }) {
            match self.seal_tenant(tenant).await {
                Ok(r) => {
                    report.tenants += 1;
                    report.added += r.added;
                }
                Err(e) => report.failed.push((tenant.slug.to_string(), e.to_string())),
            }
        }
        // raw SQL: a session-level advisory lock (closing would release it too)
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(SEAL_JOB_LOCK_KEY)
            .execute(&mut lock_conn)
            .await;
        tenants?;
        Ok(report)
    }

    /// Recomputes the tenant's tree from its rows and checks every signed
    /// tree head (one consistent snapshot of rows, leaves and heads).
    pub async fn verify_log(&self, tenant: &TenantSlug) -> Result<LogVerification, AuthError> {
        let tenant = self.live_tenant(tenant).await?;
        let mut conn = self.platform_conn().await?;
        let (rows, leaves, heads) = conn
            .transaction::<_, AuthError, _>(async |conn| {
                // raw SQL: one snapshot for the three reads
                conn.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .await?;
                route(conn, &tenant.schema_name).await?;
                // raw SQL: `detail` is read back as PostgreSQL's own jsonb text, as hashed.
                let rows: Vec<AuditRecord> =
                    diesel::sql_query(format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY id"))
                        .load(conn)
                        .await?;
                let leaves: Vec<(i64, i64, Vec<u8>)> = audit_leaves::table
                    .filter(audit_leaves::tenant_id.eq(tenant.id))
                    .order(audit_leaves::leaf_index)
                    .select((
                        audit_leaves::leaf_index,
                        audit_leaves::row_id,
                        audit_leaves::leaf_hash,
                    ))
                    .load(conn)
                    .await?;
                let heads: Vec<HeadRow> = audit_tree_heads::table
                    .filter(audit_tree_heads::tenant_id.eq(tenant.id))
                    .order((audit_tree_heads::tree_size, audit_tree_heads::id))
                    .select(HeadRow::as_select())
                    .load(conn)
                    .await?;
                Ok((rows, leaves, heads))
            })
            .await?;
        self.check_log(&rows, &leaves, &heads)
    }

    fn check_log(
        &self,
        rows: &[AuditRecord],
        leaves: &[(i64, i64, Vec<u8>)],
        heads: &[HeadRow],
    ) -> Result<LogVerification, AuthError> {
        let newest = heads.last();
        let sealed_to = newest.map(|h| h.last_row_id);
        let sealed: Vec<&AuditRecord> = rows
            .iter()
            .filter(|r| sealed_to.is_some_and(|s| r.id <= s))
            .collect();
        let mut hashes = Vec::with_capacity(sealed.len());
        for row in &sealed {
            hashes.push(merkle::leaf_hash(&leaf_data(row)?));
        }
        // Leaf by leaf: the first position where the rows and the sealed
        // leaves part.
        let mut first_difference = None;
        for p in 0..sealed.len().max(leaves.len()) {
            let row = sealed.get(p);
            let leaf = leaves
                .get(p)
                .filter(|(index, _, _)| *index == p as i64)
                .map(|(_, row_id, hash)| (*row_id, hash.as_slice()));
            let kind = match (row, leaf) {
                (Some(r), Some((id, hash))) if r.id == id => {
                    if hashes.get(p).map(|h| h.as_slice()) == Some(hash) {
                        continue;
                    }
                    DifferenceKind::Changed
                }
                (Some(r), Some((id, _))) if r.id < id => DifferenceKind::Inserted,
                (Some(_), Some(_)) => DifferenceKind::Missing,
                (Some(_), None) => DifferenceKind::Inserted,
                (None, _) => DifferenceKind::Missing,
            };
            first_difference = Some(LogDifference {
                position: p as u64,
                kind,
                row_id: row.map(|r| r.id),
                sealed_row_id: leaves.get(p).map(|(_, id, _)| *id),
            });
            break;
        }
        // Every head: its root recomputed from the rows, its signature.
        let mut bad_head = None;
        let mut unverifiable = 0u64;
        let mut frontier = Frontier::new();
        for head in heads {
            let size = head.tree_size.max(0) as u64;
            while frontier.size() < size && (frontier.size() as usize) < hashes.len() {
                frontier.push(hashes[frontier.size() as usize]);
            }
            let payload = tree_head_payload(
                head.tenant_id,
                size,
                head.signed_at.timestamp_millis(),
                &head.root_hash,
            );
            let problem = if frontier.size() != size || frontier.root().as_slice() != head.root_hash
            {
                Some(HeadProblem::RootMismatch)
            } else {
                match check_signature(&self.ring, &head.kid, &head.signature, payload.as_bytes()) {
                    SignatureCheck::Valid => None,
                    SignatureCheck::UnknownKey => {
                        unverifiable += 1;
                        None
                    }
                    SignatureCheck::Invalid => Some(HeadProblem::BadSignature),
                }
            };
            if let (Some(problem), None) = (problem, &bad_head) {
                bad_head = Some(BadHead {
                    tree_size: size,
                    timestamp: head.signed_at.timestamp_millis(),
                    last_row_id: head.last_row_id,
                    problem,
                });
            }
        }
        Ok(LogVerification {
            rows: rows.len() as u64,
            tree_size: newest.map(|h| h.tree_size.max(0) as u64).unwrap_or(0),
            unsealed: (rows.len() - sealed.len()) as u64,
            heads: heads.len() as u64,
            unverifiable_heads: unverifiable,
            first_difference,
            bad_head,
        })
    }

    /// [`AuditService::verify_log`] in short: the rows, and the row at the
    /// first position that differs from the sealed tree (the sealed row
    /// missing there when no row is), or the last row of the first head
    /// that does not check out. Unsealed rows are not checked.
    pub async fn verify_audit_chain(
        &self,
        tenant: &TenantSlug,
    ) -> Result<AuditVerification, AuthError> {
        let v = self.verify_log(tenant).await?;
        let first_broken = match (&v.first_difference, &v.bad_head) {
            (Some(d), _) => d.row_id.or(d.sealed_row_id),
            (None, Some(b)) => Some(b.last_row_id),
            (None, None) => None,
        };
        Ok(AuditVerification {
            rows: v.rows,
            first_broken,
        })
    }

    /// The newest tree head of a tenant, if its log was ever sealed.
    pub async fn tree_head(
        &self,
        tenant: &TenantSlug,
    ) -> Result<Option<SignedTreeHead>, AuthError> {
        let tenant = self.live_tenant(tenant).await?;
        let mut conn = self.platform_conn().await?;
        Ok(newest_head(&mut conn, tenant.id)
            .await?
            .as_ref()
            .map(SignedTreeHead::from))
    }

    /// The newest head of `tree_size` (the newest head at all when `None`).
    async fn head_of(
        conn: &mut AsyncPgConnection,
        tenant_id: Uuid,
        tree_size: Option<u64>,
    ) -> Result<HeadRow, AuthError> {
        let head = match tree_size {
            None => newest_head(conn, tenant_id).await?,
            Some(size) => audit_tree_heads::table
                .filter(audit_tree_heads::tenant_id.eq(tenant_id))
                .filter(audit_tree_heads::tree_size.eq(i64::try_from(size).unwrap_or(i64::MAX)))
                .order(audit_tree_heads::id.desc())
                .select(HeadRow::as_select())
                .first(conn)
                .await
                .optional()?,
        };
        head.ok_or_else(|| match tree_size {
            Some(size) => AuthError::NotSealed(format!("no audit tree head of size {size}")),
            None => AuthError::NotSealed("the audit log has not been sealed yet".into()),
        })
    }

    /// The inclusion proof of audit row `row_id` in the tree head of
    /// `tree_size` (the newest when `None`).
    pub async fn inclusion_proof(
        &self,
        tenant: &TenantSlug,
        row_id: i64,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof, AuthError> {
        let tenant = self.live_tenant(tenant).await?;
        let mut conn = self.platform_conn().await?;
        let head = Self::head_of(&mut conn, tenant.id, tree_size).await?;
        let size = head.tree_size.max(0) as u64;
        let index: Option<i64> = audit_leaves::table
            .filter(audit_leaves::tenant_id.eq(tenant.id))
            .filter(audit_leaves::row_id.eq(row_id))
            .select(audit_leaves::leaf_index)
            .first(&mut *conn)
            .await
            .optional()?;
        let index = match index {
            Some(i) if (i as u64) < size => i as u64,
            _ => {
                return Err(AuthError::NotSealed(format!(
                    "audit row {row_id} is not in the tree of size {size}"
                )));
            }
        };
        let leaves = leaf_hashes(&mut conn, tenant.id, size).await?;
        let path = merkle::inclusion_proof(&leaves, index, size)
            .ok_or_else(|| AuthError::NotFound(format!("audit row {row_id}")))?;
        let rows: Vec<AuditRecord> = conn
            .transaction::<_, AuthError, _>(async |conn| {
                route(conn, &tenant.schema_name).await?;
                // raw SQL: `detail` is read back as PostgreSQL's own jsonb text, as hashed.
                Ok(diesel::sql_query(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id = $1"
                ))
                .bind::<BigInt, _>(row_id)
                .load(conn)
                .await?)
            })
            .await?;
        let leaf = match rows.as_slice().first() {
            Some(row) => String::from_utf8_lossy(&leaf_data(row)?).into_owned(),
            None => String::new(),
        };
        Ok(InclusionProof {
            row_id,
            leaf_index: index,
            leaf,
            leaf_hash: hex::encode(leaves[index as usize]),
            path: hexes(&path),
            tree_head: SignedTreeHead::from(&head),
        })
    }

    /// The consistency proof between the tree heads of sizes `first` and
    /// `second` (both must have been recorded).
    pub async fn consistency_proof(
        &self,
        tenant: &TenantSlug,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, AuthError> {
        if first > second {
            return Err(AuthError::InvalidRequest(
                "the first tree size must not exceed the second".into(),
            ));
        }
        let tenant = self.live_tenant(tenant).await?;
        let mut conn = self.platform_conn().await?;
        let a = Self::head_of(&mut conn, tenant.id, Some(first)).await?;
        let b = Self::head_of(&mut conn, tenant.id, Some(second)).await?;
        let leaves = leaf_hashes(&mut conn, tenant.id, second).await?;
        let path = merkle::consistency_proof(&leaves, first, second)
            .ok_or_else(|| AuthError::NotFound(format!("audit tree of size {second}")))?;
        Ok(ConsistencyProof {
            first: SignedTreeHead::from(&a),
            second: SignedTreeHead::from(&b),
            path: hexes(&path),
        })
    }

    /// Checks the rows of an exported id range (consecutive, oldest first)
    /// against the sealed leaves, as of the tree head read first.
    pub(crate) async fn check_range(
        &self,
        tenant: &Tenant,
        sealed_to: Option<i64>,
        span: &[AuditRecord],
    ) -> Result<RangeCheck, AuthError> {
        let (Some(first), Some(last)) = (span.first(), span.last()) else {
            return Ok(RangeCheck::default());
        };
        let unsealed = span
            .iter()
            .filter(|r| sealed_to.is_none_or(|s| r.id > s))
            .count() as u64;
        let Some(sealed_to) = sealed_to else {
            return Ok(RangeCheck {
                first_broken: None,
                unsealed,
            });
        };
        let mut conn = self.platform_conn().await?;
        let stored: HashMap<i64, Vec<u8>> = audit_leaves::table
            .filter(audit_leaves::tenant_id.eq(tenant.id))
            .filter(audit_leaves::row_id.between(first.id, last.id.min(sealed_to)))
            .select((audit_leaves::row_id, audit_leaves::leaf_hash))
            .load::<(i64, Vec<u8>)>(&mut *conn)
            .await?
            .into_iter()
            .collect();
        let mut broken: Option<i64> = None;
        let mut seen = 0usize;
        for row in span.iter().filter(|r| r.id <= sealed_to) {
            let hash = merkle::leaf_hash(&leaf_data(row)?);
            match stored.get(&row.id) {
                Some(h) if h.as_slice() == hash.as_slice() => seen += 1,
                _ => {
                    broken = Some(row.id);
                    break;
                }
            }
        }
        if seen < stored.len() {
            // A sealed row of the range is gone: the first one missing.
            let present: std::collections::HashSet<i64> = span.iter().map(|r| r.id).collect();
            let missing = stored
                .keys()
                .filter(|id| !present.contains(id))
                .min()
                .copied();
            broken = match (broken, missing) {
                (Some(b), Some(m)) => Some(b.min(m)),
                (b, m) => b.or(m),
            };
        }
        Ok(RangeCheck {
            first_broken: broken,
            unsealed,
        })
    }

    /// The id of the last sealed row of a tenant's newest tree head.
    pub(crate) async fn sealed_to(&self, tenant: &Tenant) -> Result<Option<i64>, AuthError> {
        let mut conn = self.platform_conn().await?;
        Ok(newest_head(&mut conn, tenant.id)
            .await?
            .map(|h| h.last_row_id))
    }
}
