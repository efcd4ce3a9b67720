//! Members and broker credentials (tenant admin), the leaderboard, and the
//! trigger of the daily snapshot job on the admin listener (the job itself
//! is in `crate::jobs`).
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
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use actix_web::{delete, get, post, put};
use chrono::{NaiveDate, Utc};
use rampart_auth::audit::AuditEvent;
use rampart_members::{BrokerKeys, LeaderboardSort, MemberInput, Members, Period};
use rampart_portfolio::analysis::NavPoint;
use rampart_tenancy::TenantSlug;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::api::{self, JsonObject};
use crate::error::ApiError;
use crate::extract::{Caller, Operator, PageQuery, User, encode_cursor, perm};
use crate::jobs;
use crate::state::AppState;

/// Registers the public API routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_members)
        .service(upsert_member)
        .service(preview_import)
        .service(commit_import)
        .service(attach_broker)
        .service(detach_broker)
        .service(my_portfolio)
        .service(my_portfolio_csv)
        .service(my_portfolio_svg)
        .service(leaderboard)
        .service(leaderboard_opt_out);
}

/// Registers the admin-listener routes (the snapshot job trigger).
pub fn configure_admin(cfg: &mut ServiceConfig) {
    cfg.service(trigger_snapshot);
}

/// A tenant administrator: `users:manage` on this tenant.
type Admin = Caller<perm::UsersManage>;

fn members(state: &AppState) -> Members {
    Members::new(state.tenants.clone())
}

/// Records an admin action (success or refusal) in the tenant's audit log.
/// `detail` never holds keys.
async fn audit<T>(
    state: &AppState,
    admin: &Admin,
    action: &str,
    outcome: &Result<T, ApiError>,
    mut detail: serde_json::Value,
) {
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
        .user(admin.principal.user_id)
        .actor(admin.actor())
        .client(&admin.client)
        .detail(detail);
    if let Err(e) = state.auth.audit(&admin.tenant, event).await {
        tracing::warn!(tenant = %admin.tenant, action, error = %e, "audit write failed");
    }
}

// ------------------------------------------------------------ members

/// The tenant's members, by email, cursor-paginated. Broker keys never appear.
#[utoipa::path(responses((status = 200, description = "a page of members"), (status = 401, description = "no valid token"), (status = 403, description = "not a tenant admin")))]
#[get("/admin/members")]
pub async fn list_members(
    admin: Admin,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = page.cursor_text()?;
    let limit = page.limit(50, 200);
    let (items, more) = members(&state)
        .list_members(&admin.tenant, after.as_deref(), limit)
        .await?;
    let next = more
        .then(|| items.last().map(|m| encode_cursor(m.email.as_bytes())))
        .flatten();
    Ok(api::page(items, next))
}

/// Creates (201) or updates (200) a member by email.
#[utoipa::path(responses((status = 201, description = "created"), (status = 200, description = "updated"), (status = 400, description = "invalid, with every problem")))]
#[post("/admin/members")]
pub async fn upsert_member(
    admin: Admin,
    state: web::Data<AppState>,
    body: JsonObject<MemberInput>,
) -> Result<HttpResponse, ApiError> {
    let outcome = members(&state)
        .upsert_member(&admin.tenant, &body)
        .await
        .map_err(ApiError::from);
    let detail = match &outcome {
        Ok(o) => {
            serde_json::json!({"member": o.member.id, "created": o.created, "role": o.member.role})
        }
        Err(_) => serde_json::json!({}),
    };
    audit(&state, &admin, "member.upsert", &outcome, detail).await;
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
#[utoipa::path(request_body(content = String, content_type = "text/csv"), responses((status = 200, description = "the plan, row by row, with its id and digest"), (status = 400, description = "unreadable file")))]
#[post("/admin/members/import/preview")]
pub async fn preview_import(
    admin: Admin,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let outcome = match std::str::from_utf8(&body) {
        Ok(text) => members(&state)
            .preview_import(&admin.tenant, text, &admin.actor())
            .await
            .map_err(ApiError::from),
        Err(_) => Err(ApiError::bad_request("the CSV file must be UTF-8")),
    };
    let detail = match &outcome {
        Ok(pv) => {
            serde_json::json!({"preview": pv.id, "create": pv.created, "update": pv.updated, "unchanged": pv.unchanged, "refused": pv.refused})
        }
        Err(_) => serde_json::json!({"bytes": body.len()}),
    };
    audit(&state, &admin, "member.import.preview", &outcome, detail).await;
    Ok(api::ok(outcome?))
}

/// Body of the import commit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    /// The preview's `digest`, as shown.
    pub digest: String,
}

/// `…/admin/members/import/{preview}/commit`.
#[derive(Debug, Deserialize)]
pub struct PreviewPath {
    /// The preview.
    pub preview: Uuid,
}

/// Applies exactly the previewed plan, atomically.
#[utoipa::path(responses((status = 200, description = "applied"), (status = 404, description = "no such preview"), (status = 409, description = "refused rows, wrong digest, stale, expired or committed")))]
#[post("/admin/members/import/{preview}/commit")]
pub async fn commit_import(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<PreviewPath>,
    body: JsonObject<CommitBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.preview;
    let outcome = members(&state)
        .commit_import(&admin.tenant, id, &body.digest)
        .await
        .map_err(ApiError::from);
    let detail = match &outcome {
        Ok(c) => {
            serde_json::json!({"preview": id, "created": c.created, "updated": c.updated, "unchanged": c.unchanged})
        }
        Err(_) => serde_json::json!({"preview": id}),
    };
    audit(&state, &admin, "member.import.commit", &outcome, detail).await;
    Ok(api::ok(outcome?))
}

/// `…/admin/members/{member}/broker`.
#[derive(Debug, Deserialize)]
pub struct MemberPath {
    /// The member.
    pub member: rampart_auth::UserId,
}

/// Attaches (or replaces) a member's Alpaca paper-trading key pair, sealed
/// through Vault transit. The answer says only that it is attached.
#[utoipa::path(responses((status = 200, description = "attached (keys never returned)"), (status = 400, description = "not a paper key pair"), (status = 404, description = "no such member")))]
#[put("/admin/members/{member}/broker")]
pub async fn attach_broker(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<MemberPath>,
    body: JsonObject<BrokerKeys>,
) -> Result<HttpResponse, ApiError> {
    let member = path.member;
    let keys = body.into_inner();
    let outcome = members(&state)
        .attach_broker(
            &admin.tenant,
            member,
            &keys,
            &*state.broker_crypto,
            &admin.actor(),
        )
        .await
        .map_err(ApiError::from);
    drop(keys);
    let detail = serde_json::json!({"member": member, "broker": "alpaca", "paper": true});
    audit(&state, &admin, "broker.attach", &outcome, detail).await;
    Ok(api::ok(outcome?))
}

/// Removes a member's key pair and the snapshots and leaderboard rows
/// derived from it.
#[utoipa::path(responses((status = 200, description = "detached, derived data removed"), (status = 404, description = "nothing attached")))]
#[delete("/admin/members/{member}/broker")]
pub async fn detach_broker(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<MemberPath>,
) -> Result<HttpResponse, ApiError> {
    let member = path.member;
    let outcome = members(&state)
        .detach_broker(&admin.tenant, member)
        .await
        .map_err(ApiError::from);
    let detail = match &outcome {
        Ok(n) => serde_json::json!({"member": member, "snapshotsRemoved": n}),
        Err(_) => serde_json::json!({"member": member}),
    };
    audit(&state, &admin, "broker.detach", &outcome, detail).await;
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

/// The cursor of a leaderboard page: the day it pins and the offset.
fn leaderboard_cursor(text: &str) -> Result<(NaiveDate, usize), ApiError> {
    let malformed = || ApiError::bad_request("malformed cursor");
    let (day, offset) = text.split_once('|').ok_or_else(malformed)?;
    Ok((
        NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| malformed())?,
        offset.parse::<usize>().map_err(|_| malformed())?,
    ))
}

/// Who may read the leaderboard: a caller with `portfolio:read`, or anyone
/// when the tenant's `publicLeaderboard` setting is on. A request that
/// brings a credential is held to it either way.
async fn leaderboard_reader(req: &HttpRequest) -> Result<TenantSlug, ApiError> {
    let has_credential =
        crate::extract::bearer_token(req).is_some() || crate::extract::api_key(req).is_some();
    if has_credential {
        let caller = Caller::<perm::PortfolioRead>::extract(req).await?;
        return Ok(caller.tenant);
    }
    let state = crate::extract::state_of(req)?;
    let tenant = req
        .match_info()
        .get("tenant")
        .and_then(|t| TenantSlug::parse(t).ok())
        .ok_or_else(ApiError::unauthorized)?;
    // Unknown, inactive or private: the same 401 as without a token.
    let public = state
        .tenants
        .tenant(&tenant)
        .await
        .is_ok_and(|t| t.status == rampart_tenancy::TenantStatus::Active)
        && state
            .tenants
            .tenant_settings(&tenant)
            .await
            .is_ok_and(|s| s.public_leaderboard);
    if public {
        Ok(tenant)
    } else {
        Err(ApiError::unauthorized())
    }
}

/// The tenant's leaderboard; members who opted out are not on it. Public
/// (no token) when the tenant's `publicLeaderboard` setting is on.
#[utoipa::path(responses((status = 200, description = "a page of the leaderboard"), (status = 400, description = "bad period, sort or cursor"), (status = 401, description = "no valid token, and the tenant's leaderboard is not public")))]
#[get("/leaderboard")]
pub async fn leaderboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LeaderboardQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = leaderboard_reader(&req).await?;
    let period = query.period.unwrap_or(Period::Day);
    let sort = query.sort.unwrap_or_default();
    // The cursor pins the day, so later runs do not shift pages.
    let page_query = PageQuery {
        cursor: query.cursor.clone(),
        limit: None,
    };
    let (as_of, offset) = match page_query.cursor_text()? {
        Some(text) => {
            let (day, offset) = leaderboard_cursor(&text)?;
            (Some(day), offset)
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
        .await?;
    let next = match (page.as_of, page.next_offset) {
        (Some(day), Some(off)) => Some(encode_cursor(format!("{day}|{off}").as_bytes())),
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
#[utoipa::path(responses((status = 200, description = "saved")))]
#[put("/leaderboard/opt-out")]
pub async fn leaderboard_opt_out(
    user: User,
    state: web::Data<AppState>,
    body: JsonObject<OptOutBody>,
) -> Result<HttpResponse, ApiError> {
    members(&state)
        .set_leaderboard_opt_out(&user.tenant, user.id, body.opt_out)
        .await?;
    Ok(api::ok(serde_json::json!({"optOut": body.opt_out})))
}

// ------------------------------------------------------------ snapshot job

/// The raw body of `POST /admin/jobs/snapshot`, whatever its content type:
/// an alias, so that the document does not describe an `application/octet-stream`
/// body (utoipa infers one from a `web::Bytes` argument); it is optional JSON.
type RawBody = web::Bytes;

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
#[utoipa::path(responses((status = 200, description = "the run's report")))]
#[post("/admin/jobs/snapshot")]
pub async fn trigger_snapshot(
    operator: Operator,
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    // Any content type: operators post this with bare `curl -d`.
    let body: TriggerBody = if body.iter().all(u8::is_ascii_whitespace) {
        TriggerBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?
    };
    let date = body.date.unwrap_or_else(|| Utc::now().date_naive());
    let report = jobs::run_snapshot_job(&state, date, &operator.actor()).await?;
    Ok(api::ok(report))
}

/// `?from=&to=` of the member's own series.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// First day (default: five years before `to`).
    pub from: Option<NaiveDate>,
    /// Last day (default: today).
    pub to: Option<NaiveDate>,
}

/// The caller's own series from the daily snapshots (its broker account).
async fn series(
    user: &User<perm::PortfolioRead>,
    state: &AppState,
    query: &SeriesQuery,
) -> Result<Vec<rampart_members::SeriesPoint>, ApiError> {
    Ok(members(state)
        .member_series(&user.tenant, user.id, query.from, query.to)
        .await?)
}

/// The member's own portfolio over time from the daily snapshots: equity,
/// cash, positions count, daily P&L and total P&L since the first snapshot
/// (empty before the first snapshot).
#[utoipa::path(params(SeriesQuery), responses((status = 200, description = "`points`: date, equity, cash, positions, daily_pnl, daily_return, total_pnl (exact decimals), oldest first"), (status = 400, description = "bad window (from after to, more than 5 years)")))]
#[get("/me/portfolio")]
pub async fn my_portfolio(
    user: User<perm::PortfolioRead>,
    state: web::Data<AppState>,
    query: web::Query<SeriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let points = series(&user, &state, &query).await?;
    Ok(api::ok(serde_json::json!({
        "member": user.id,
        "from": points.first().map(|p| p.date),
        "to": points.last().map(|p| p.date),
        "points": points,
    })))
}

/// The same series as CSV.
#[utoipa::path(params(SeriesQuery), responses((status = 200, description = "text/csv: date,equity,cash,positions,daily_pnl,daily_return,total_pnl"), (status = 400, description = "bad window")))]
#[get("/me/portfolio.csv")]
pub async fn my_portfolio_csv(
    user: User<perm::PortfolioRead>,
    state: web::Data<AppState>,
    query: web::Query<SeriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let points = series(&user, &state, &query).await?;
    Ok(api::csv(
        "portfolio.csv",
        rampart_members::series_csv(&points),
    ))
}

/// The series as the points of an equity chart: the equity, and a wealth
/// index compounded from the daily returns (so deposits are no gains) for
/// the drawdown.
fn equity_points(points: &[rampart_members::SeriesPoint]) -> Vec<NavPoint> {
    let (mut wealth, mut peak, mut worst) = (1.0_f64, 1.0_f64, 0.0_f64);
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let daily_return = if i == 0 { None } else { p.daily_return };
            wealth *= 1.0 + daily_return.unwrap_or(0.0);
            peak = peak.max(wealth);
            worst = worst.min(wealth / peak - 1.0);
            NavPoint {
                date: p.date,
                nav: f64::try_from(p.equity).unwrap_or(0.0),
                flow: 0.0,
                daily_return,
                cumulative_return: wealth - 1.0,
                volatility_30d: None,
                max_drawdown: worst,
            }
        })
        .collect()
}

/// The member's equity over time with its drawdown, as an SVG chart drawn
/// from the daily snapshots.
#[utoipa::path(params(SeriesQuery), responses((status = 200, description = "image/svg+xml"), (status = 400, description = "bad window, or fewer than two snapshots in it")))]
#[get("/me/portfolio.svg")]
pub async fn my_portfolio_svg(
    user: User<perm::PortfolioRead>,
    state: web::Data<AppState>,
    query: web::Query<SeriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let points = series(&user, &state, &query).await?;
    let svg = rampart_portfolio::charts::equity_svg(&equity_points(&points), "Equity")?;
    Ok(api::svg(svg))
}
