//! `/api/v1/t/{tenant}/portfolios…`: portfolios and positions (every change
//! a new version), sharing, comments, activity and CSV, over
//! [`rampart_portfolio::PortfolioService`]. The bearer token must be of the
//! tenant in the path (a token of another tenant is refused like none), the
//! role must carry `portfolio:read`/`portfolio:write`, and the portfolio's
//! own access (owner, share, public, tenant admin) is checked by the crate;
//! a portfolio the caller may not see is "not found".
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use rampart_auth::{Permission, Principal, Role, authorize};
use rampart_portfolio::{
    Actor, AnalysisInput, AnalyticsReport, NavPoint, NewComment, NewPortfolio, PortfolioError,
    PortfolioPatch, PortfolioService, PositionInput, PriceHistory, ShareGrant,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{self, ApiError};
use crate::app::AppState;
use crate::routes::api_v1::{principal, require, user_of};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/t/{tenant}/portfolios")
            .wrap(from_fn(forget_cached_analytics))
            .route("", web::get().to(list))
            .route("", web::post().to(create))
            .route("/{id}", web::get().to(get))
            .route("/{id}", web::patch().to(update))
            .route("/{id}", web::delete().to(delete))
            .route("/{id}/positions", web::post().to(add_position))
            .route("/{id}/positions.csv", web::get().to(export_csv))
            .route("/{id}/positions.csv", web::put().to(import_csv))
            .route("/{id}/positions/{position}", web::put().to(update_position))
            .route(
                "/{id}/positions/{position}",
                web::delete().to(remove_position),
            )
            .route("/{id}/versions", web::get().to(versions))
            .route("/{id}/versions/{version}", web::get().to(version))
            .route("/{id}/shares", web::get().to(shares))
            .route("/{id}/shares", web::post().to(share))
            .route("/{id}/shares/{user}", web::delete().to(revoke))
            .route("/{id}/comments", web::get().to(comments))
            .route("/{id}/comments", web::post().to(comment))
            .route("/{id}/activity", web::get().to(activity))
            .route("/{id}/analytics", web::get().to(analytics))
            .route("/{id}/performance.csv", web::get().to(performance_csv))
            .route("/{id}/charts/equity.svg", web::get().to(equity_chart))
            .route("/{id}/charts/returns.svg", web::get().to(returns_chart)),
    );
}

/// Analytics answers per tenant, portfolio, caller and window, kept for
/// [`AnalyticsCache::TTL`]: a dashboard re-reading the same report is served
/// without reading positions and prices again or rewriting the stored
/// series. Any change through these routes (any method but GET/HEAD) drops
/// the tenant's entries, and an analysis that overlapped a change is not
/// stored; price updates show within the TTL. The server registers one as
/// app data; without it every request computes.
pub struct AnalyticsCache {
    entries: RwLock<HashMap<AnalyticsKey, (Instant, web::Bytes)>>,
    /// Bumped on every change, so an analysis that started before it is not
    /// stored after it.
    generation: AtomicU64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AnalyticsKey {
    tenant: String,
    portfolio: Uuid,
    user: Uuid,
    tenant_admin: bool,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    benchmark: String,
}

impl Default for AnalyticsCache {
    fn default() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }
}

impl AnalyticsCache {
    /// How long an answer is served from the cache.
    pub const TTL: Duration = Duration::from_secs(30);
    /// Entries at most (expired ones are swept first when it is full).
    pub const CAPACITY: usize = 20_000;

    fn get(&self, key: &AnalyticsKey) -> Option<web::Bytes> {
        let entries = self.entries.read().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < Self::TTL)
            .map(|(_, body)| body.clone())
    }

    fn insert(&self, key: AnalyticsKey, body: web::Bytes, generation: u64) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        // Checked under the lock that `forget` takes after bumping it.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < Self::TTL);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), body));
    }

    fn forget(&self, tenant: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|k, _| k.tenant != tenant);
        }
    }
}

/// Drops the cached analytics of the tenant after any change to its
/// portfolios.
async fn forget_cached_analytics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let change = !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    );
    let cache = req.app_data::<web::Data<AnalyticsCache>>().cloned();
    let tenant = req
        .match_info()
        .get("tenant")
        .map(str::to_owned)
        .or_else(|| {
            req.path()
                .strip_prefix("/api/v1/t/")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned)
        });
    let res = next.call(req).await;
    if let (true, Some(cache), Some(tenant)) = (change, cache, tenant) {
        cache.forget(&tenant);
    }
    res
}

/// The one mapping of the crate's errors to HTTP.
fn portfolio_error(e: PortfolioError) -> ApiError {
    match e {
        PortfolioError::NotFound => ApiError::not_found(),
        PortfolioError::Forbidden { needed } => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("needs {needed} access to this portfolio"),
        ),
        PortfolioError::Invalid(m) => ApiError::bad_request(m),
        PortfolioError::CsvRejected(report) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "csv_rejected",
            format!(
                "{} of {} rows are invalid; nothing was applied",
                report.errors.len(),
                report.rows
            ),
        )
        .with_details(serde_json::to_value(&*report).unwrap_or_default()),
        PortfolioError::TooLarge { limit, unit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("at most {limit} {unit}"),
        ),
        PortfolioError::MissingPrices { symbol } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_prices",
            format!("no prices for {symbol} in the window"),
        ),
        PortfolioError::Tenancy(t) => ApiError::from(t),
        other => ApiError::internal(&other),
    }
}

fn service(state: &AppState) -> PortfolioService {
    PortfolioService::new(state.tenants.clone())
}

/// Authenticates the caller for `tenant`, checks the role permission and
/// builds the actor the crate checks portfolio access for.
async fn actor(
    req: &HttpRequest,
    state: &AppState,
    tenant: &str,
    permission: Permission,
) -> Result<Actor, ApiError> {
    let p: Principal = principal(req, state, tenant).await?;
    require(&p, permission)?;
    let user_id = user_of(&p)?;
    Ok(Actor {
        user_id,
        tenant_admin: p.role == Role::Admin && authorize(&p, Permission::TenantAdmin).is_ok(),
        ip: req.peer_addr().map(|a| a.ip().to_string()),
    })
}

/// Pagination parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Opaque cursor from the previous page's `meta.nextCursor`.
    pub cursor: Option<String>,
    /// Page size (1–100, default 20).
    pub limit: Option<usize>,
}

/// Portfolios the caller may see (own, shared, public), cursor-paginated.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios", params(PageQuery), responses((status = 200, description = "a page of portfolios"), (status = 401, description = "no valid token")))]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let a = actor(&req, &state, &tenant, Permission::PortfolioRead).await?;
    let page = service(&state)
        .list(
            &tenant,
            &a,
            page.cursor.as_deref(),
            page.limit.unwrap_or(20),
        )
        .await
        .map_err(portfolio_error)?;
    Ok(api::page(page.items, page.next))
}

/// Creates a portfolio (version 1), optionally with positions.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/portfolios", responses((status = 201, description = "created"), (status = 400, description = "invalid"), (status = 403, description = "role lacks portfolio:write")))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    body: api::JsonObject<NewPortfolio>,
) -> Result<HttpResponse, ApiError> {
    let a = actor(&req, &state, &tenant, Permission::PortfolioWrite).await?;
    let d = service(&state)
        .create(&tenant, &a, body.into_inner())
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok_status(StatusCode::CREATED, d))
}

/// One portfolio with its positions and the caller's access.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}", responses((status = 200, description = "portfolio"), (status = 404, description = "no such portfolio, or not visible to the caller")))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioRead).await?;
    let d = service(&state)
        .get(&tenant, &a, id)
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(d))
}

/// Changes name, description, base currency, public flag or settings (`edit`).
#[utoipa::path(patch, path = "/api/v1/t/{tenant}/portfolios/{id}", responses((status = 200, description = "new version"), (status = 403, description = "needs edit access")))]
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    body: api::JsonObject<PortfolioPatch>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioWrite).await?;
    let d = service(&state)
        .update(&tenant, &a, id, body.0)
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(d))
}

/// Deletes a portfolio (`admin`).
#[utoipa::path(delete, path = "/api/v1/t/{tenant}/portfolios/{id}", responses((status = 200, description = "deleted"), (status = 403, description = "needs admin access")))]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioWrite).await?;
    service(&state)
        .delete(&tenant, &a, id)
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(serde_json::json!({"deleted": id})))
}

/// Adds a position (`edit`); a new version.
#[utoipa::path(post, path = "/api/v1/t/{tenant}/portfolios/{id}/positions", responses((status = 201, description = "new version"), (status = 400, description = "invalid position")))]
pub async fn add_position(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    body: api::JsonObject<PositionInput>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioWrite).await?;
    let d = service(&state)
        .add_position(&tenant, &a, id, body.into_inner())
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok_status(StatusCode::CREATED, d))
}

/// Replaces a position (`edit`); a new version.
#[utoipa::path(put, path = "/api/v1/t/{tenant}/portfolios/{id}/positions/{position}", responses((status = 200, description = "new version"), (status = 404, description = "no such position")))]
pub async fn update_position(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid, Uuid)>,
    body: api::JsonObject<PositionInput>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, position) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioWrite).await?;
    let d = service(&state)
        .update_position(&tenant, &a, id, position, body.into_inner())
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(d))
}

/// Removes a position (`edit`); a new version.
#[utoipa::path(delete, path = "/api/v1/t/{tenant}/portfolios/{id}/positions/{position}", responses((status = 200, description = "new version"), (status = 404, description = "no such position")))]
pub async fn remove_position(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, position) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioWrite).await?;
    let d = service(&state)
        .remove_position(&tenant, &a, id, position)
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(d))
}

/// Versions, newest first; the cursor is a version number.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/versions", params(PageQuery), responses((status = 200, description = "a page of versions")))]
pub async fn versions(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioRead).await?;
    let page = service(&state)
        .versions(
            &tenant,
            &a,
            id,
            page.cursor.as_deref(),
            page.limit.unwrap_or(20),
        )
        .await
        .map_err(portfolio_error)?;
    Ok(api::page(page.items, page.next))
}

/// One version: the portfolio and its positions as they were.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/versions/{version}", responses((status = 200, description = "version"), (status = 404, description = "no such version")))]
pub async fn version(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid, i32)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, v) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioRead).await?;
    let v = service(&state)
        .version(&tenant, &a, id, v)
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(v))
}

/// Shares of the portfolio (`admin`).
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/shares", responses((status = 200, description = "shares")))]
pub async fn shares(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioRead).await?;
    let s = service(&state)
        .shares(&tenant, &a, id)
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(s))
}

/// Grants (or changes) a share with a user of the same tenant (`admin`).
#[utoipa::path(post, path = "/api/v1/t/{tenant}/portfolios/{id}/shares", responses((status = 200, description = "share"), (status = 400, description = "unknown user, owner, past expiry")))]
pub async fn share(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    body: api::JsonObject<ShareGrant>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioWrite).await?;
    let s = service(&state)
        .share(&tenant, &a, id, body.into_inner())
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(s))
}

/// Revokes a user's share (`admin`).
#[utoipa::path(delete, path = "/api/v1/t/{tenant}/portfolios/{id}/shares/{user}", responses((status = 200, description = "revoked"), (status = 404, description = "no such share")))]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id, user) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioWrite).await?;
    service(&state)
        .revoke(&tenant, &a, id, user)
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(serde_json::json!({"revoked": user})))
}

/// The comment thread, oldest first.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/comments", responses((status = 200, description = "comments")))]
pub async fn comments(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioRead).await?;
    let c = service(&state)
        .comments(&tenant, &a, id)
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(c))
}

/// Adds a comment (`comment`).
#[utoipa::path(post, path = "/api/v1/t/{tenant}/portfolios/{id}/comments", responses((status = 201, description = "comment"), (status = 403, description = "needs comment access")))]
pub async fn comment(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    body: api::JsonObject<NewComment>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioRead).await?;
    let c = service(&state)
        .comment(&tenant, &a, id, body.into_inner())
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok_status(StatusCode::CREATED, c))
}

/// The activity trail (who, what, before/after, IP, time), newest first.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/activity", params(PageQuery), responses((status = 200, description = "a page of activity")))]
pub async fn activity(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioRead).await?;
    let page = service(&state)
        .activity(
            &tenant,
            &a,
            id,
            page.cursor.as_deref(),
            page.limit.unwrap_or(20),
        )
        .await
        .map_err(portfolio_error)?;
    Ok(api::page(page.items, page.next))
}

fn csv_response(name: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

/// The positions as CSV.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/positions.csv", responses((status = 200, description = "text/csv")))]
pub async fn export_csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioRead).await?;
    let csv = service(&state)
        .export_csv(&tenant, &a, id)
        .await
        .map_err(portfolio_error)?;
    Ok(csv_response("positions.csv", csv))
}

/// `?mode=replace` (default) or `append`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ImportQuery {
    /// `replace` (default) swaps all positions; `append` adds to them.
    pub mode: Option<String>,
}

/// Imports positions from a CSV body (`edit`): every row is checked first;
/// any broken row → 422 with a row-by-row report and nothing applied.
#[utoipa::path(put, path = "/api/v1/t/{tenant}/portfolios/{id}/positions.csv", params(ImportQuery), responses((status = 200, description = "report and new version"), (status = 413, description = "too large"), (status = 422, description = "broken rows, nothing applied")))]
pub async fn import_csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    query: web::Query<ImportQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let a = actor(&req, &state, &tenant, Permission::PortfolioWrite).await?;
    let replace = match query.mode.as_deref() {
        None | Some("replace") => true,
        Some("append") => false,
        Some(_) => return Err(ApiError::bad_request("mode: replace or append")),
    };
    let limit = rampart_portfolio::transfer::MAX_BYTES;
    let too_large = || {
        portfolio_error(PortfolioError::TooLarge {
            limit,
            unit: "bytes",
        })
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let (report, detail) = service(&state)
        .import_csv(&tenant, &a, id, &body, replace)
        .await
        .map_err(portfolio_error)?;
    Ok(api::ok(
        serde_json::json!({"report": report, "portfolio": detail}),
    ))
}

/// The analysis window and benchmark.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AnalyticsQuery {
    /// First day (default: five years before `to`).
    pub from: Option<chrono::NaiveDate>,
    /// Last day (default: today).
    pub to: Option<chrono::NaiveDate>,
    /// Benchmark symbol for beta (default `^GSPC`).
    pub benchmark: Option<String>,
}

/// Prices through the market chain, then the crate's analysis (stored in
/// `portfolio_metrics_daily`).
async fn run_analysis(
    req: &HttpRequest,
    state: &AppState,
    tenant: &str,
    id: Uuid,
    query: &AnalyticsQuery,
) -> Result<(Vec<NavPoint>, AnalyticsReport), ApiError> {
    let a = actor(req, state, tenant, Permission::AnalyticsRead).await?;
    let to = query.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let from = query
        .from
        .unwrap_or_else(|| to - chrono::Duration::days(5 * 365));
    if from >= to || (to - from).num_days() > 30 * 366 {
        return Err(ApiError::bad_request(
            "from must be before to, at most 30 years apart",
        ));
    }
    let benchmark = query.benchmark.as_deref().unwrap_or("^GSPC");
    let svc = service(state);
    let symbols = svc.symbols(tenant, &a, id).await.map_err(portfolio_error)?;
    let mut prices = PriceHistory::new();
    for symbol in &symbols {
        if let Some(closes) = closes(state, symbol, from, to).await? {
            prices.insert(symbol.clone(), closes);
        }
    }
    // A little earlier, so the window's first day has a benchmark level to
    // carry forward when it was not a trading day.
    let bench = closes(state, benchmark, from - chrono::Duration::days(14), to)
        .await
        .ok()
        .flatten();
    let input = AnalysisInput {
        prices: &prices,
        benchmark: bench.as_deref().map(|b| (benchmark, b)),
        from,
        to,
    };
    svc.analyze(tenant, &a, id, &input)
        .await
        .map_err(portfolio_error)
}

/// Daily closes of a symbol; `None` when no provider knows it.
async fn closes(
    state: &AppState,
    symbol: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Option<Vec<(chrono::NaiveDate, f64)>>, ApiError> {
    match state.market.daily_bars(symbol, from, to).await {
        Ok(served) => Ok(Some(
            served
                .value
                .iter()
                .map(|b| (b.date, b.adj_close.unwrap_or(b.close)))
                .collect(),
        )),
        Err(rampart_market::MarketError::UnknownSymbol { .. }) => Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, symbol, "daily bars failed");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "market_unavailable",
                "no provider could answer",
            );
            err.retry_after = Some(5);
            Err(err)
        }
    }
}

/// NAV and daily return series (stored in `portfolio_metrics_daily`),
/// performance (TWR, MWR), risk (volatility, Sharpe, Sortino, max drawdown,
/// beta, VaR/CVaR), allocation by symbol and sector, rebalancing trades.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/analytics", params(AnalyticsQuery), responses((status = 200, description = "report and series"), (status = 422, description = "no prices for a symbol")))]
pub async fn analytics(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let Some(cache) = req.app_data::<web::Data<AnalyticsCache>>().cloned() else {
        let (series, report) = run_analysis(&req, &state, &tenant, id, &query).await?;
        return Ok(api::ok(
            serde_json::json!({"report": report, "series": series}),
        ));
    };
    // Authenticated and authorized first (no I/O with a cached token); the
    // key holds the caller, so an answer is only served to whom it was
    // computed for.
    let a = actor(&req, &state, &tenant, Permission::AnalyticsRead).await?;
    let to = query.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let key = AnalyticsKey {
        tenant: tenant.clone(),
        portfolio: id,
        user: a.user_id,
        tenant_admin: a.tenant_admin,
        from: query
            .from
            .unwrap_or_else(|| to - chrono::Duration::days(5 * 365)),
        to,
        benchmark: query.benchmark.clone().unwrap_or_else(|| "^GSPC".into()),
    };
    let data = match cache.get(&key) {
        Some(data) => data,
        None => {
            let generation = cache.generation.load(Ordering::Acquire);
            let (series, report) = run_analysis(&req, &state, &tenant, id, &query).await?;
            let data = web::Bytes::from(
                serde_json::to_vec(&serde_json::json!({"report": report, "series": series}))
                    .map_err(|e| ApiError::internal(&e))?,
            );
            cache.insert(key, data.clone(), generation);
            data
        }
    };
    // The envelope of `api::ok` around the stored `data`.
    let meta = serde_json::to_vec(&api::Meta {
        request_id: api::current_request_id(),
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        next_cursor: None,
    })
    .map_err(|e| ApiError::internal(&e))?;
    let mut body = Vec::with_capacity(data.len() + meta.len() + 40);
    body.extend_from_slice(br#"{"success":true,"data":"#);
    body.extend_from_slice(&data);
    body.extend_from_slice(br#","meta":"#);
    body.extend_from_slice(&meta);
    body.push(b'}');
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(body))
}

/// The performance series as CSV.
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/performance.csv", params(AnalyticsQuery), responses((status = 200, description = "text/csv")))]
pub async fn performance_csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let (series, _) = run_analysis(&req, &state, &tenant, id, &query).await?;
    Ok(csv_response(
        "performance.csv",
        rampart_portfolio::analysis::performance_csv(&series),
    ))
}

fn svg_response(svg: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "private, max-age=60"))
        .body(svg)
}

/// The equity curve with its drawdown underneath (SVG).
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/charts/equity.svg", params(AnalyticsQuery), responses((status = 200, description = "image/svg+xml")))]
pub async fn equity_chart(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let (series, _) = run_analysis(&req, &state, &tenant, id, &query).await?;
    let svg = rampart_portfolio::charts::equity_svg(&series, "Equity and drawdown")
        .map_err(portfolio_error)?;
    Ok(svg_response(svg))
}

/// The histogram of returns with VaR and CVaR marked (SVG).
#[utoipa::path(get, path = "/api/v1/t/{tenant}/portfolios/{id}/charts/returns.svg", params(AnalyticsQuery), responses((status = 200, description = "image/svg+xml")))]
pub async fn returns_chart(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let (series, report) = run_analysis(&req, &state, &tenant, id, &query).await?;
    let returns: Vec<f64> = series.iter().filter_map(|p| p.daily_return).collect();
    let svg = rampart_portfolio::charts::returns_histogram_svg(
        &returns,
        report.risk.var_historical.unwrap_or(f64::NAN),
        report.risk.cvar_historical.unwrap_or(f64::NAN),
        "Distribution of returns",
    )
    .map_err(portfolio_error)?;
    Ok(svg_response(svg))
}
