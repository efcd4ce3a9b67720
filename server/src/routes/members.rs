//! Members and broker credentials (tenant admin), the leaderboard, and the
//! daily snapshot job (its scheduler and its trigger on the admin listener).
//! Domain logic lives in `rampart-members`; this file authenticates,
//! authorizes, audits and maps errors.
//!
//! Public listener, `/api/v1/t/{tenant}/…`, bearer token of that tenant:
//! - `GET  admin/members` · `POST admin/members` (upsert by email)
//! - `POST admin/members/import/preview` (CSV body) ·
//!   `POST admin/members/import/{preview}/commit` (`{"digest"}`)
//! - `PUT | DELETE admin/members/{member}/broker` (attach / detach keys)
//! - `GET leaderboard` · `PUT leaderboard/opt-out`
//!
//! Admin listener (client certificate): `POST /admin/jobs/snapshot`.
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::{NaiveDate, Utc};
use rampart_auth::audit::AuditEvent;
use rampart_auth::{Permission, Principal};
use rampart_members::{
    BrokerCrypto, BrokerKeys, CronSchedule, LeaderboardSort, MemberInput, Members, MembersError,
    Period, SnapshotConfig, SnapshotJob, SnapshotReport,
};
use serde::Deserialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::api::{self, ApiError};
use crate::app::AppState;
use crate::routes::api_v1::{principal, require, user_of};
use crate::tls::ClientIdentity;
use rampart_vault::SecretStore;

/// Registers the public API routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    const T: &str = "/api/v1/t/{tenant}";
    cfg.route(&format!("{T}/admin/members"), web::get().to(list_members))
        .route(&format!("{T}/admin/members"), web::post().to(upsert_member))
        .route(
            &format!("{T}/admin/members/import/preview"),
            web::post().to(preview_import),
        )
        .route(
            &format!("{T}/admin/members/import/{{preview}}/commit"),
            web::post().to(commit_import),
        )
        .route(
            &format!("{T}/admin/members/{{member}}/broker"),
            web::put().to(attach_broker),
        )
        .route(
            &format!("{T}/admin/members/{{member}}/broker"),
            web::delete().to(detach_broker),
        )
        .route(&format!("{T}/leaderboard"), web::get().to(leaderboard))
        .route(
            &format!("{T}/leaderboard/opt-out"),
            web::put().to(leaderboard_opt_out),
        );
}

/// Registers the admin-listener routes (the snapshot job trigger).
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/jobs/snapshot", web::post().to(trigger_snapshot));
}

// ------------------------------------------------------------ plumbing

/// Broker credentials sealed by Vault transit envelope encryption.
struct VaultBrokerCrypto(Option<Arc<SecretStore>>);

#[async_trait::async_trait]
impl BrokerCrypto for VaultBrokerCrypto {
    async fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, MembersError> {
        let store = self.store()?;
        let sealed = store
            .encrypt(plaintext, context)
            .await
            .map_err(|e| MembersError::Crypto(e.to_string()))?;
        Ok(sealed.to_json())
    }

    async fn open(&self, sealed: &str, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, MembersError> {
        let store = self.store()?;
        let sealed = rampart_vault::Sealed::from_json(sealed)
            .map_err(|e| MembersError::Crypto(e.to_string()))?;
        store
            .decrypt(&sealed, context)
            .await
            .map_err(|e| MembersError::Crypto(e.to_string()))
    }
}

impl VaultBrokerCrypto {
    fn store(&self) -> Result<&SecretStore, MembersError> {
        self.0
            .as_deref()
            .ok_or_else(|| MembersError::Crypto("Vault is not configured".into()))
    }
}

fn members(state: &AppState) -> Members {
    Members::new(state.tenants.clone())
}

/// The one mapping of the crate's errors to HTTP.
fn members_error(e: MembersError) -> ApiError {
    match e {
        MembersError::Invalid { problems } => ApiError::bad_request(
            MembersError::Invalid {
                problems: problems.clone(),
            }
            .to_string(),
        )
        .with_details(serde_json::json!({ "problems": problems })),
        MembersError::NotFound(_) => ApiError::not_found(),
        e @ (MembersError::AlreadyCommitted
        | MembersError::Expired
        | MembersError::HasRefusedRows(_)
        | MembersError::DigestMismatch
        | MembersError::Stale(_)) => ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string()),
        MembersError::Crypto(msg) => {
            tracing::error!(request_id = %api::current_request_id(), error = %msg, "broker credential encryption failed");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "credential_encryption_unavailable",
                "credential encryption is unavailable; retry shortly",
            );
            err.retry_after = Some(5);
            err
        }
        MembersError::Broker(msg) => ApiError::new(StatusCode::BAD_GATEWAY, "broker_error", msg),
        MembersError::Tenancy(e) => ApiError::from(e),
        other => ApiError::internal(&other),
    }
}

/// A tenant admin: users:manage on this tenant.
async fn admin(req: &HttpRequest, state: &AppState, tenant: &str) -> Result<Principal, ApiError> {
    let p = principal(req, state, tenant).await?;
    require(&p, Permission::UsersManage)?;
    Ok(p)
}

fn actor_of(p: &Principal) -> String {
    match (&p.user_id, &p.client_id) {
        (Some(u), _) => format!("user:{u}"),
        (None, Some(c)) => format!("client:{c}"),
        (None, None) => "unknown".to_owned(),
    }
}

fn client_context(req: &HttpRequest) -> rampart_auth::ClientContext {
    rampart_auth::ClientContext {
        ip: req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
        device: None,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// Records an admin action (success or refusal) in the tenant's audit log.
/// `detail` never holds keys.
async fn audit<T>(
    state: &AppState,
    req: &HttpRequest,
    tenant: &str,
    p: &Principal,
    action: &str,
    outcome: &Result<T, ApiError>,
    mut detail: serde_json::Value,
) {
    let Some(auth) = state.auth.as_ref() else {
        return;
    };
    let result = match outcome {
        Ok(_) => "success",
        Err(e) => {
            if let Some(map) = detail.as_object_mut() {
                map.insert("error".into(), serde_json::json!(e.code));
            }
            "failure"
        }
    };
    let event = AuditEvent::new(action, result)
        .user(p.user_id)
        .actor(actor_of(p))
        .client(&client_context(req))
        .detail(detail);
    if let Err(e) = auth.audit(tenant, event).await {
        tracing::warn!(tenant, action, error = %e, "audit write failed");
    }
}

fn encode_cursor(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("malformed cursor"))
}

// ------------------------------------------------------------ members

/// Pagination parameters.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    /// Cursor from `meta.nextCursor`.
    pub cursor: Option<String>,
    /// Page size (1–200, default 50).
    pub limit: Option<usize>,
}

/// The tenant's members, by email, cursor-paginated. Broker keys never appear.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/admin/members", responses((status = 200, description = "a page of members"), (status = 401, description = "no valid token"), (status = 403, description = "not a tenant admin")))]
pub async fn list_members(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    admin(&req, &state, &tenant).await?;
    let after = page.cursor.as_deref().map(decode_cursor).transpose()?;
    let limit = page.limit.unwrap_or(50).clamp(1, 200);
    let (items, more) = members(&state)
        .list_members(&tenant, after.as_deref(), limit)
        .await
        .map_err(members_error)?;
    let next = more
        .then(|| items.last().map(|m| encode_cursor(&m.email)))
        .flatten();
    Ok(api::page(items, next))
}

/// Creates (201) or updates (200) a member by email.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/admin/members", responses((status = 201, description = "created"), (status = 200, description = "updated"), (status = 400, description = "invalid, with every problem")))]
pub async fn upsert_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<MemberInput>,
) -> Result<HttpResponse, ApiError> {
    let p = admin(&req, &state, &tenant).await?;
    let outcome = members(&state)
        .upsert_member(&tenant, &body)
        .await
        .map_err(members_error);
    let detail = match &outcome {
        Ok(o) => {
            serde_json::json!({"member": o.member.id, "created": o.created, "role": o.member.role})
        }
        Err(_) => serde_json::json!({}),
    };
    audit(&state, &req, &tenant, &p, "member.upsert", &outcome, detail).await;
    let outcome = outcome?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(api::ok_status(status, outcome))
}

/// Validates a CSV file (`name,email,role`) row by row and stores the plan;
/// changes no member.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/admin/members/import/preview", responses((status = 200, description = "the plan, row by row, with its id and digest"), (status = 400, description = "unreadable file")))]
pub async fn preview_import(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let p = admin(&req, &state, &tenant).await?;
    let outcome = match std::str::from_utf8(&body) {
        Ok(text) => members(&state)
            .preview_import(&tenant, text, &actor_of(&p))
            .await
            .map_err(members_error),
        Err(_) => Err(ApiError::bad_request("the CSV file must be UTF-8")),
    };
    let detail = match &outcome {
        Ok(pv) => {
            serde_json::json!({"preview": pv.id, "create": pv.created, "update": pv.updated, "unchanged": pv.unchanged, "refused": pv.refused})
        }
        Err(_) => serde_json::json!({"bytes": body.len()}),
    };
    audit(
        &state,
        &req,
        &tenant,
        &p,
        "member.import.preview",
        &outcome,
        detail,
    )
    .await;
    Ok(api::ok(outcome?))
}

/// Body of the import commit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    /// The preview's `digest`, as shown.
    pub digest: String,
}

/// Applies exactly the previewed plan, atomically.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/admin/members/import/{preview}/commit", responses((status = 200, description = "applied"), (status = 404, description = "no such preview"), (status = 409, description = "refused rows, wrong digest, stale, expired or committed")))]
pub async fn commit_import(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    body: api::JsonObject<CommitBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let p = admin(&req, &state, &tenant).await?;
    let outcome = members(&state)
        .commit_import(&tenant, id, &body.digest)
        .await
        .map_err(members_error);
    let detail = match &outcome {
        Ok(c) => {
            serde_json::json!({"preview": id, "created": c.created, "updated": c.updated, "unchanged": c.unchanged})
        }
        Err(_) => serde_json::json!({"preview": id}),
    };
    audit(
        &state,
        &req,
        &tenant,
        &p,
        "member.import.commit",
        &outcome,
        detail,
    )
    .await;
    Ok(api::ok(outcome?))
}

/// Attaches (or replaces) a member's Alpaca paper-trading key pair, sealed
/// through Vault transit. The answer says only that it is attached.
#[utoipa::path(put, path = "/api/v1/t/{tenant}/admin/members/{member}/broker", responses((status = 200, description = "attached (keys never returned)"), (status = 400, description = "not a paper key pair"), (status = 404, description = "no such member")))]
pub async fn attach_broker(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    body: api::JsonObject<BrokerKeys>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, member) = path.into_inner();
    let p = admin(&req, &state, &tenant).await?;
    let keys = body.into_inner();
    let crypto = VaultBrokerCrypto(state.vault.clone());
    let outcome = members(&state)
        .attach_broker(&tenant, member, &keys, &crypto, &actor_of(&p))
        .await
        .map_err(members_error);
    drop(keys);
    let detail = serde_json::json!({"member": member, "broker": "alpaca", "paper": true});
    audit(&state, &req, &tenant, &p, "broker.attach", &outcome, detail).await;
    Ok(api::ok(outcome?))
}

/// Removes a member's key pair and the snapshots and leaderboard rows
/// derived from it.
#[utoipa::path(delete, path = "/api/v1/t/{tenant}/admin/members/{member}/broker", responses((status = 200, description = "detached, derived data removed"), (status = 404, description = "nothing attached")))]
pub async fn detach_broker(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, member) = path.into_inner();
    let p = admin(&req, &state, &tenant).await?;
    let outcome = members(&state)
        .detach_broker(&tenant, member)
        .await
        .map_err(members_error);
    let detail = match &outcome {
        Ok(n) => serde_json::json!({"member": member, "snapshotsRemoved": n}),
        Err(_) => serde_json::json!({"member": member}),
    };
    audit(&state, &req, &tenant, &p, "broker.detach", &outcome, detail).await;
    let removed = outcome?;
    Ok(api::ok(
        serde_json::json!({"detached": member, "snapshotsRemoved": removed}),
    ))
}

// ------------------------------------------------------------ leaderboard

/// Query of the leaderboard.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardQuery {
    /// `day` (default), `week` or `month`.
    pub period: Option<Period>,
    /// `return` (default) or `pnl`.
    pub sort: Option<LeaderboardSort>,
    /// Cursor from `meta.nextCursor`.
    pub cursor: Option<String>,
    /// Page size (1–100, default 20).
    pub limit: Option<usize>,
}

/// The tenant's leaderboard; members who opted out are not on it.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/leaderboard", responses((status = 200, description = "a page of the leaderboard")))]
pub async fn leaderboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    query: web::Query<LeaderboardQuery>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    require(&p, Permission::PortfolioRead)?;
    let period = query.period.unwrap_or(Period::Day);
    let sort = query.sort.unwrap_or_default();
    // The cursor pins the day, so later runs do not shift pages.
    let (as_of, offset) = match query.cursor.as_deref() {
        Some(c) => {
            let text = decode_cursor(c)?;
            let (day, offset) = text
                .split_once('|')
                .ok_or_else(|| ApiError::bad_request("malformed cursor"))?;
            (
                Some(
                    NaiveDate::parse_from_str(day, "%Y-%m-%d")
                        .map_err(|_| ApiError::bad_request("malformed cursor"))?,
                ),
                offset
                    .parse::<usize>()
                    .map_err(|_| ApiError::bad_request("malformed cursor"))?,
            )
        }
        None => (None, 0),
    };
    let page = members(&state)
        .leaderboard(
            &tenant,
            period,
            sort,
            as_of,
            offset,
            query.limit.unwrap_or(20),
        )
        .await
        .map_err(members_error)?;
    let next = match (page.as_of, page.next_offset) {
        (Some(day), Some(off)) => Some(encode_cursor(&format!("{day}|{off}"))),
        _ => None,
    };
    Ok(api::page(page, next))
}

/// Body of the opt-out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptOutBody {
    /// True: leave the leaderboard; false: be on it again.
    pub opt_out: bool,
}

/// The caller leaves (or rejoins) the leaderboard.
#[utoipa::path(put, path = "/api/v1/t/{tenant}/leaderboard/opt-out", responses((status = 200, description = "saved")))]
pub async fn leaderboard_opt_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<OptOutBody>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state, &tenant).await?;
    let user = user_of(&p)?;
    members(&state)
        .set_leaderboard_opt_out(&tenant, user, body.opt_out)
        .await
        .map_err(members_error)?;
    Ok(api::ok(serde_json::json!({"optOut": body.opt_out})))
}

// ------------------------------------------------------------ snapshot job

fn snapshot_config(state: &AppState) -> SnapshotConfig {
    state.config.snapshot.clone()
}

/// Runs the job once for `date` and audits it in every tenant it touched.
pub async fn run_snapshot_job(
    state: &AppState,
    date: NaiveDate,
    actor: &str,
) -> Result<SnapshotReport, MembersError> {
    let config = snapshot_config(state);
    let job = SnapshotJob::new(
        members(state),
        Arc::new(VaultBrokerCrypto(state.vault.clone())),
        &config,
    )?;
    let report = job.run(date).await?;
    if let Some(auth) = state.auth.as_ref() {
        for t in &report.tenants {
            let result = match (&t.error, t.failed.is_empty()) {
                (Some(_), _) => "failure",
                (None, true) => "success",
                (None, false) => "partial",
            };
            let event = AuditEvent::new("snapshot.run", result)
                .actor(actor.to_owned())
                .detail(serde_json::json!({
                    "date": date,
                    "accounts": t.accounts,
                    "succeeded": t.succeeded,
                    "failed": t.failed.len(),
                    "failedMembers": t.failed.iter().map(|f| f.member_id).collect::<Vec<_>>(),
                    "tenantError": t.error.is_some(),
                }));
            if let Err(e) = auth.audit(&t.tenant, event).await {
                tracing::warn!(tenant = %t.tenant, error = %e, "snapshot run: audit write failed");
            }
        }
    }
    tracing::info!(
        %date,
        ran = report.ran,
        succeeded = report.succeeded,
        failed_members = report.failed_members,
        failed_tenants = report.failed_tenants,
        "snapshot job finished"
    );
    Ok(report)
}

/// Runs the snapshot job on its cron schedule (UTC) until aborted. An
/// invalid expression is logged and the scheduler does not run.
pub fn spawn_snapshot_scheduler(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let config = snapshot_config(&state);
        if !config.enabled {
            return;
        }
        let schedule = match CronSchedule::parse(&config.cron) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(cron = %config.cron, error = %e, "snapshot scheduler not started");
                return;
            }
        };
        loop {
            let now = Utc::now();
            let Some(next) = schedule.next_after(now) else {
                tracing::error!(cron = %config.cron, "snapshot schedule never fires");
                return;
            };
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            if let Err(e) = run_snapshot_job(&state, next.date_naive(), "job:snapshot").await {
                tracing::error!(error = %e, "snapshot job failed");
            }
        }
    })
}

/// Body of `POST /admin/jobs/snapshot` (optional).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// The day to snapshot (default: today, UTC).
    pub date: Option<NaiveDate>,
}

/// Runs the snapshot job now (admin listener; the client certificate's
/// subject is the recorded actor). `ran: false` when another replica holds
/// the job lock.
#[utoipa::path(post, path = "/admin/jobs/snapshot", responses((status = 200, description = "the run's report")))]
pub async fn trigger_snapshot(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = req.conn_data::<ClientIdentity>().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            "a client certificate is required",
        )
    })?;
    let body: TriggerBody = if body.iter().all(u8::is_ascii_whitespace) {
        TriggerBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?
    };
    let date = body.date.unwrap_or_else(|| Utc::now().date_naive());
    let report = run_snapshot_job(&state, date, &format!("mtls:{}", who.subject))
        .await
        .map_err(members_error)?;
    Ok(api::ok(report))
}
