//! A tenant's audit log over HTTP: paged reading with filters, export as
//! JSON Lines or CSV with the exported range checked against the sealed
//! audit tree, and the tree itself (signed tree head, inclusion and
//! consistency proofs: `rampart_auth::audit_tree`). Tenant administrators
//! (a role with `audit:read`: admin and manager by default) on the public
//! listener, operators on the admin listener.
//!
//! | route | who |
//! |---|---|
//! | `GET /api/v1/t/{tenant}/audit?from&to&actor&action&result&cursor&limit` | tenant admin |
//! | `GET /api/v1/t/{tenant}/audit/export?format=jsonl\|csv&from&to&actor&action&result` | tenant admin |
//! | `GET /api/v1/t/{tenant}/audit/tree-head` | tenant admin |
//! | `GET /api/v1/t/{tenant}/audit/proofs/inclusion?id&treeSize` | tenant admin |
//! | `GET /api/v1/t/{tenant}/audit/proofs/consistency?first&second` | tenant admin |
//! | `GET /admin/tenants/{slug}/audit`, `…/audit/export`, `…/audit/tree-head`, `…/audit/proofs/inclusion`, `…/audit/proofs/consistency` | operator |
//! | `GET /admin/tenants/{slug}/audit/verify` (the whole log against every signed tree head) | operator |
//!
//! The export holds at most [`EXPORT_MAX_ROWS`] rows (oldest first;
//! `X-Audit-Truncated: true` when more matched: narrow `from`/`to`). The
//! rows from the first to the last exported id are checked against the
//! sealed tree's leaves; the result is in the `X-Audit-Chain` header
//! (`verified rows=N`, or `broken first_broken=ID rows=N`, followed by
//! ` unsealed=M` when M of them are not sealed yet and so not checked) and,
//! for JSON Lines, a last line `{"verification": {...}}`. A proof of what is
//! not sealed yet answers 404 `audit_not_sealed`. CSV cells that a spreadsheet would run as a
//! formula (leading `=`, `+`, `-`, `@`, tab or carriage return) are
//! prefixed with `'`.
use actix_web::get;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use rampart_auth::audit::{AuditEvent, AuditRecord};
use rampart_auth::audit_query::{AuditFilter, RangeVerification};
use rampart_auth::audit_tree::{ConsistencyProof, InclusionProof, LogVerification, SignedTreeHead};
use rampart_tenancy::TenantSlug;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api;
use crate::error::ApiError;
use crate::extract::{Caller, Operator, encode_cursor, perm};
use crate::state::AppState;

/// Most rows in one export.
pub const EXPORT_MAX_ROWS: i64 = 50_000;

/// The public listener's routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(export)
        .service(tree_head)
        .service(inclusion)
        .service(consistency);
}

/// The admin listener's routes.
pub fn configure_admin(cfg: &mut ServiceConfig) {
    cfg.service(admin_list)
        .service(admin_export)
        .service(admin_tree_head)
        .service(admin_inclusion)
        .service(admin_consistency)
        .service(admin_verify);
}

/// Filters of both routes, and the page of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The actor (`user:<id>`, `client:<id>`, `mtls:<subject>`) or the user id a row is about.
    pub actor: Option<String>,
    /// The action, e.g. `login`.
    pub action: Option<String>,
    /// The result, e.g. `failure`.
    pub result: Option<String>,
    /// The list's cursor (`meta.nextCursor`).
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 100).
    pub limit: Option<i64>,
    /// Export format: `jsonl` (default) or `csv`.
    pub format: Option<String>,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            from: self.from,
            to: self.to,
            actor: self.actor.clone(),
            action: self.action.clone(),
            result: self.result.clone(),
        }
    }
}

/// The tenant admin who may read the audit log.
type Auditor = Caller<perm::AuditRead>;

async fn page(
    state: &AppState,
    tenant: &TenantSlug,
    q: &AuditQuery,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let before = match q.cursor.as_deref() {
        Some(c) => Some(
            String::from_utf8(crate::extract::decode_cursor_bytes(c)?)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| ApiError::bad_request("malformed cursor"))?,
        ),
        None => None,
    };
    let rows = state
        .auth
        .audit_trail()
        .audit_page(tenant, &q.filter(), before, limit)
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|r| encode_cursor(r.id.to_string().as_bytes()))
        })
        .flatten();
    Ok(api::page(rows, next))
}

/// Neutralises a CSV cell a spreadsheet would evaluate, then quotes it.
fn csv_cell(value: &str) -> String {
    let safe = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if safe.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

fn csv_row(r: &AuditRecord) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        r.id.to_string(),
        r.occurred_at.to_rfc3339(),
        r.user_id.map(|u| u.to_string()).unwrap_or_default(),
        opt(&r.actor),
        r.action.clone(),
        r.result.clone(),
        opt(&r.ip),
        opt(&r.user_agent),
        r.detail.clone(),
    ]
    .iter()
    .map(|c| csv_cell(c))
    .collect::<Vec<_>>()
    .join(",")
}

fn chain_header(v: &RangeVerification) -> String {
    let head = match v.first_broken {
        None => format!("verified rows={}", v.rows),
        Some(id) => format!("broken first_broken={id} rows={}", v.rows),
    };
    if v.unsealed > 0 {
        format!("{head} unsealed={}", v.unsealed)
    } else {
        head
    }
}

async fn export_of(
    state: &AppState,
    tenant: &TenantSlug,
    q: &AuditQuery,
    by: AuditEvent,
) -> Result<HttpResponse, ApiError> {
    let csv = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => false,
        "csv" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "format: jsonl or csv, not {:?}",
                other.chars().take(20).collect::<String>()
            )));
        }
    };
    // Who exported what is itself on the record (and in this export).
    let filter = q.filter();
    state
        .auth
        .audit(
            tenant,
            by.detail(serde_json::json!({
                "format": if csv { "csv" } else { "jsonl" },
                "from": filter.from,
                "to": filter.to,
                "actor": filter.actor,
                "action": filter.action,
                "result": filter.result,
            })),
        )
        .await?;
    let (rows, truncated, verification) = state
        .auth
        .audit_trail()
        .audit_export(tenant, &filter, EXPORT_MAX_ROWS)
        .await?;
    let mut body = String::new();
    if csv {
        body.push_str("id,occurred_at,user_id,actor,action,result,ip,user_agent,detail\n");
        for r in &rows {
            body.push_str(&csv_row(r));
            body.push('\n');
        }
    } else {
        for r in &rows {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            // The detail as JSON, not as its text.
            if let Ok(d) = serde_json::from_str::<serde_json::Value>(&r.detail) {
                v["detail"] = d;
            }
            body.push_str(&v.to_string());
            body.push('\n');
        }
        body.push_str(
            &serde_json::json!({"verification": verification, "truncated": truncated}).to_string(),
        );
        body.push('\n');
    }
    let (content_type, ext) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "jsonl")
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"audit-{tenant}.{ext}\""),
        ))
        .insert_header(("X-Audit-Chain", chain_header(&verification)))
        .insert_header(("X-Audit-Truncated", truncated.to_string()))
        .body(body))
}

/// A page of the tenant's audit log, newest first.
#[utoipa::path(params(AuditQuery), responses((status = 200, description = "records; meta.nextCursor for the next page"), (status = 403, description = "not a tenant admin")))]
#[get("/audit")]
pub async fn list(
    caller: Auditor,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    page(&state, &caller.tenant, &q).await
}

/// The tenant's audit log as JSON Lines or CSV with the chain verification.
#[utoipa::path(params(AuditQuery), responses((status = 200, description = "the rows, oldest first; X-Audit-Chain says whether the chain verifies"), (status = 400, description = "unknown format"), (status = 403, description = "not a tenant admin")))]
#[get("/audit/export")]
pub async fn export(
    caller: Auditor,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let by = AuditEvent::new("audit_export", "success")
        .user(caller.principal.user_id)
        .actor(caller.actor())
        .client(&caller.client);
    export_of(&state, &caller.tenant, &q, by).await
}

/// A page of a tenant's audit log (operator).
#[utoipa::path(params(AuditQuery), responses((status = 200, description = "records")))]
#[get("/admin/tenants/{slug}/audit")]
pub async fn admin_list(
    _operator: Operator,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    page(&state, &slug, &q).await
}

/// A tenant's audit log export (operator).
#[utoipa::path(params(AuditQuery), responses((status = 200, description = "the rows and the chain verification")))]
#[get("/admin/tenants/{slug}/audit/export")]
pub async fn admin_export(
    operator: Operator,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    q: web::Query<AuditQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    let by = AuditEvent::new("audit_export", "success")
        .actor(operator.actor())
        .client(&crate::extract::client_context(&req));
    export_of(&state, &slug, &q, by).await
}

/// Which inclusion proof.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InclusionQuery {
    /// The audit row's id.
    pub id: i64,
    /// The tree head's size (the newest head when absent).
    pub tree_size: Option<u64>,
}

/// Which consistency proof: between the signed tree heads of two sizes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree head's size.
    pub first: u64,
    /// The newer tree head's size.
    pub second: u64,
}

async fn newest_head(state: &AppState, tenant: &TenantSlug) -> Result<HttpResponse, ApiError> {
    match state.auth.audit_trail().tree_head(tenant).await? {
        Some(head) => Ok(api::ok::<SignedTreeHead>(head)),
        None => Err(rampart_auth::AuthError::NotSealed(
            "the audit log has not been sealed yet".into(),
        )
        .into()),
    }
}

async fn inclusion_of(
    state: &AppState,
    tenant: &TenantSlug,
    q: &InclusionQuery,
) -> Result<HttpResponse, ApiError> {
    let proof: InclusionProof = state
        .auth
        .audit_trail()
        .inclusion_proof(tenant, q.id, q.tree_size)
        .await?;
    Ok(api::ok(proof))
}

async fn consistency_of(
    state: &AppState,
    tenant: &TenantSlug,
    q: &ConsistencyQuery,
) -> Result<HttpResponse, ApiError> {
    let proof: ConsistencyProof = state
        .auth
        .audit_trail()
        .consistency_proof(tenant, q.first, q.second)
        .await?;
    Ok(api::ok(proof))
}

/// The newest signed tree head of the tenant's audit log.
#[utoipa::path(responses((status = 200, description = "size, root hash, timestamp, kid and the ES256 JWS over them"), (status = 403, description = "not a tenant admin"), (status = 404, description = "audit_not_sealed: never sealed yet")))]
#[get("/audit/tree-head")]
pub async fn tree_head(
    caller: Auditor,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    newest_head(&state, &caller.tenant).await
}

/// The inclusion proof (RFC 9162) of one audit row in a signed tree head.
#[utoipa::path(params(InclusionQuery), responses((status = 200, description = "leaf index, leaf, audit path and the tree head"), (status = 403, description = "not a tenant admin"), (status = 404, description = "audit_not_sealed: the row or tree size is not sealed")))]
#[get("/audit/proofs/inclusion")]
pub async fn inclusion(
    caller: Auditor,
    state: web::Data<AppState>,
    q: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    inclusion_of(&state, &caller.tenant, &q).await
}

/// The consistency proof (RFC 9162) between two signed tree heads.
#[utoipa::path(params(ConsistencyQuery), responses((status = 200, description = "both tree heads and the proof"), (status = 400, description = "first after second"), (status = 403, description = "not a tenant admin"), (status = 404, description = "audit_not_sealed: no tree head of that size")))]
#[get("/audit/proofs/consistency")]
pub async fn consistency(
    caller: Auditor,
    state: web::Data<AppState>,
    q: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    consistency_of(&state, &caller.tenant, &q).await
}

/// A tenant's newest signed tree head (operator).
#[utoipa::path(responses((status = 200, description = "the tree head"), (status = 404, description = "audit_not_sealed")))]
#[get("/admin/tenants/{slug}/audit/tree-head")]
pub async fn admin_tree_head(
    _operator: Operator,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    newest_head(&state, &slug).await
}

/// An inclusion proof in a tenant's audit tree (operator).
#[utoipa::path(params(InclusionQuery), responses((status = 200, description = "the proof"), (status = 404, description = "audit_not_sealed")))]
#[get("/admin/tenants/{slug}/audit/proofs/inclusion")]
pub async fn admin_inclusion(
    _operator: Operator,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    q: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    inclusion_of(&state, &slug, &q).await
}

/// A consistency proof in a tenant's audit tree (operator).
#[utoipa::path(params(ConsistencyQuery), responses((status = 200, description = "the proof"), (status = 404, description = "audit_not_sealed")))]
#[get("/admin/tenants/{slug}/audit/proofs/consistency")]
pub async fn admin_consistency(
    _operator: Operator,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    q: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    consistency_of(&state, &slug, &q).await
}

/// A tenant's whole audit log checked against every signed tree head, as
/// `rampart audit verify` does (operator).
#[utoipa::path(responses((status = 200, description = "rows, sealed and unsealed, and the first position that differs (firstDifference) or the first bad tree head (badHead), if any")))]
#[get("/admin/tenants/{slug}/audit/verify")]
pub async fn admin_verify(
    _operator: Operator,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = TenantSlug::parse(&slug)?;
    let v: LogVerification = state.auth.audit_trail().verify_log(&slug).await?;
    Ok(api::ok(v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_cells_never_start_a_formula() {
        assert_eq!(super::csv_cell("=1+2"), "'=1+2");
        assert_eq!(super::csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::csv_cell("-2"), "'-2");
        assert_eq!(super::csv_cell("+x,y"), "\"'+x,y\"");
        assert_eq!(super::csv_cell("plain"), "plain");
    }
}
