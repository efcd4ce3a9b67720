//! `/api/v1/t/{tenant}/portfolios…`: portfolios and positions (every change
//! a new version), sharing, comments, activity and CSV, over
//! [`rampart_portfolio::PortfolioService`]. The bearer token must be of the
//! tenant in the path (a token of another tenant is refused like none), the
//! role must carry `portfolio:read`/`portfolio:write`, and the portfolio's
//! own access (owner, share, public, tenant admin) is checked by the crate;
//! a portfolio the caller may not see is "not found".
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, web};
use actix_web::{delete, get, patch, post, put};
use futures::StreamExt;
use rampart_analytics::risk::{
    MonteCarlo, MonteCarloModel, MonteCarloOutcomes, monte_carlo_bands, monte_carlo_value_at_risk,
};
use rampart_portfolio::analysis::VAR_CUTOFF;
use rampart_portfolio::{
    AnalyticsReport, Collaborative, NavPoint, NewComment, NewPortfolio, PortfolioError,
    PortfolioId, PortfolioPatch, PortfolioService, PositionInput, ShareGrant,
};
use serde::Deserialize;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::analytics_cache::{self, AnalyticsCache, AnalyticsKey};
use crate::api::{self, Answer, JsonObject};
use crate::error::ApiError;
use crate::extract::{self, AsUser, PageQuery, TenantService, User, perm};
use crate::portfolio_analysis::{AnalyticsQuery, Window, holdings_prices, run_analysis};
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/portfolios")
            .wrap(from_fn(analytics_cache::forget_on_change))
            .service(list)
            .service(create)
            .service(get)
            .service(update)
            .service(delete)
            .service(add_position)
            .service(export_csv)
            .service(import_csv)
            .service(update_position)
            .service(remove_position)
            .service(versions)
            .service(version)
            .service(shares)
            .service(share)
            .service(revoke)
            .service(comments)
            .service(comment)
            .service(activity)
            .service(analytics)
            .service(performance_csv)
            .service(metrics)
            .service(metrics_csv)
            .service(equity_chart)
            .service(returns_chart)
            .service(correlation)
            .service(monte_carlo)
            .service(fan_chart),
    );
}

/// `…/portfolios/{id}`.
#[derive(Debug, Deserialize)]
pub struct PortfolioPath {
    /// The portfolio.
    pub id: PortfolioId,
}

/// `…/portfolios/{id}/positions/{position}`.
#[derive(Debug, Deserialize)]
pub struct PositionPath {
    /// The portfolio.
    pub id: PortfolioId,
    /// The position.
    pub position: Uuid,
}

/// `…/portfolios/{id}/versions/{version}`.
#[derive(Debug, Deserialize)]
pub struct VersionPath {
    /// The portfolio.
    pub id: PortfolioId,
    /// The version number.
    pub version: i32,
}

/// `…/portfolios/{id}/shares/{user}`.
#[derive(Debug, Deserialize)]
pub struct SharePath {
    /// The portfolio.
    pub id: PortfolioId,
    /// The user the portfolio is shared with.
    pub user: rampart_auth::UserId,
}

/// Registers the admin-listener routes (the metrics job trigger).
pub fn configure_admin(cfg: &mut ServiceConfig) {
    cfg.service(trigger_metrics);
    cfg.service(trigger_weekly_report);
}

/// Mails the weekly report now to every opted-in user of every active
/// tenant who was not mailed one in the last six days (admin listener).
#[utoipa::path(responses((status = 200, description = "the run's report: sent, already sent, nothing to report, failures"), (status = 401, description = "no client certificate of an operator")))]
#[post("/admin/jobs/weekly-report")]
pub async fn trigger_weekly_report(_operator: extract::Operator, state: State) -> Answer {
    Ok(api::ok(crate::jobs::run_weekly_report_job(&state).await?))
}

/// Runs the nightly metrics job now over every active tenant (admin
/// listener): every portfolio's daily metrics stored, the failures listed.
#[utoipa::path(responses((status = 200, description = "the run's report"), (status = 401, description = "no client certificate of an operator")))]
#[post("/admin/jobs/metrics")]
pub async fn trigger_metrics(_operator: extract::Operator, state: State) -> Answer {
    Ok(api::ok(crate::jobs::run_metrics_job(&state).await?))
}

/// May analyse the portfolios it can see.
type Analyst = User<perm::AnalyticsRead>;
type State = web::Data<AppState>;
/// `…/portfolios/{id}`.
type Id = web::Path<PortfolioPath>;
type Analysis = web::Query<AnalyticsQuery>;
type Simulation = web::Query<MonteCarloQuery>;
/// An analyst of a tenant with the `monteCarlo` flag on.
type Simulator = extract::Gated<extract::flag::MonteCarlo, Analyst>;

/// May read the portfolios it can see.
type Reader = AsUser<PortfolioService, perm::PortfolioRead>;
/// May also change them (as far as its access to each allows).
type Writer = AsUser<PortfolioService, perm::PortfolioWrite>;

/// Portfolios the caller may see (own, shared, public), cursor-paginated.
#[utoipa::path(params(PageQuery), responses((status = 200, description = "a page of portfolios"), (status = 401, description = "no valid token")))]
#[get("")]
pub async fn list(u: Reader, page: web::Query<PageQuery>) -> Answer {
    let (cursor, limit) = page.as_given();
    Ok(api::page_of(
        u.svc.list(&u.tenant, &u.actor, cursor, limit).await?,
    ))
}

/// Creates a portfolio (version 1), optionally with positions.
#[utoipa::path(responses((status = 201, description = "created"), (status = 400, description = "invalid"), (status = 403, description = "role lacks portfolio:write")))]
#[post("")]
pub async fn create(u: Writer, body: JsonObject<NewPortfolio>) -> Answer {
    let d = u.svc.create(&u.tenant, &u.actor, body.0).await?;
    Ok(api::ok_status(StatusCode::CREATED, d))
}

/// One portfolio with its positions and the caller's access.
#[utoipa::path(responses((status = 200, description = "portfolio"), (status = 404, description = "no such portfolio, or not visible to the caller")))]
#[get("/{id}")]
pub async fn get(u: Reader, path: Id) -> Answer {
    Ok(api::ok(u.svc.get(&u.tenant, &u.actor, path.id).await?))
}

/// Changes name, description, base currency, public flag or settings (`edit`).
#[utoipa::path(responses((status = 200, description = "new version"), (status = 403, description = "needs edit access")))]
#[patch("/{id}")]
pub async fn update(u: Writer, path: Id, body: JsonObject<PortfolioPatch>) -> Answer {
    let d = u.svc.update(&u.tenant, &u.actor, path.id, body.0).await?;
    Ok(api::ok(d))
}

/// Deletes a portfolio (`admin`).
#[utoipa::path(responses((status = 200, description = "deleted"), (status = 403, description = "needs admin access")))]
#[delete("/{id}")]
pub async fn delete(u: Writer, path: Id) -> Answer {
    u.svc.delete(&u.tenant, &u.actor, path.id).await?;
    Ok(api::ok(serde_json::json!({"deleted": path.id})))
}

/// Adds a position (`edit`); a new version.
#[utoipa::path(responses((status = 201, description = "new version"), (status = 400, description = "invalid position")))]
#[post("/{id}/positions")]
pub async fn add_position(u: Writer, path: Id, body: JsonObject<PositionInput>) -> Answer {
    let d = u.svc.add_position(&u.tenant, &u.actor, path.id, body.0);
    Ok(api::ok_status(StatusCode::CREATED, d.await?))
}

/// Replaces a position (`edit`); a new version.
#[utoipa::path(responses((status = 200, description = "new version"), (status = 404, description = "no such position")))]
#[put("/{id}/positions/{position}")]
pub async fn update_position(
    u: Writer,
    path: web::Path<PositionPath>,
    body: JsonObject<PositionInput>,
) -> Answer {
    let (id, position) = (path.id, path.position);
    let d = u
        .svc
        .update_position(&u.tenant, &u.actor, id, position, body.0);
    Ok(api::ok(d.await?))
}

/// Removes a position (`edit`); a new version.
#[utoipa::path(responses((status = 200, description = "new version"), (status = 404, description = "no such position")))]
#[delete("/{id}/positions/{position}")]
pub async fn remove_position(u: Writer, path: web::Path<PositionPath>) -> Answer {
    let d = u
        .svc
        .remove_position(&u.tenant, &u.actor, path.id, path.position);
    Ok(api::ok(d.await?))
}

/// Versions, newest first; the cursor is a version number.
#[utoipa::path(params(PageQuery), responses((status = 200, description = "a page of versions")))]
#[get("/{id}/versions")]
pub async fn versions(u: Reader, path: Id, page: web::Query<PageQuery>) -> Answer {
    let (cursor, limit) = page.as_given();
    let page = u.svc.versions(&u.tenant, &u.actor, path.id, cursor, limit);
    Ok(api::page_of(page.await?))
}

/// One version: the portfolio and its positions as they were.
#[utoipa::path(responses((status = 200, description = "version"), (status = 404, description = "no such version")))]
#[get("/{id}/versions/{version}")]
pub async fn version(u: Reader, path: web::Path<VersionPath>) -> Answer {
    let v = u.svc.version(&u.tenant, &u.actor, path.id, path.version);
    Ok(api::ok(v.await?))
}

/// Shares of the portfolio (`admin`).
#[utoipa::path(responses((status = 200, description = "shares")))]
#[get("/{id}/shares")]
pub async fn shares(u: Reader, path: Id) -> Answer {
    Ok(api::ok(u.svc.shares(&u.tenant, &u.actor, path.id).await?))
}

/// Grants (or changes) a share with a user of the same tenant (`admin`).
#[utoipa::path(responses((status = 200, description = "share"), (status = 400, description = "unknown user, owner, past expiry")))]
#[post("/{id}/shares")]
pub async fn share(u: Writer, path: Id, body: JsonObject<ShareGrant>) -> Answer {
    let s = u.svc.share(&u.tenant, &u.actor, path.id, body.0).await?;
    Ok(api::ok(s))
}

/// Revokes a user's share (`admin`).
#[utoipa::path(responses((status = 200, description = "revoked"), (status = 404, description = "no such share")))]
#[delete("/{id}/shares/{user}")]
pub async fn revoke(u: Writer, path: web::Path<SharePath>) -> Answer {
    u.svc
        .revoke(&u.tenant, &u.actor, path.id, path.user)
        .await?;
    Ok(api::ok(serde_json::json!({"revoked": path.user})))
}

/// The comment thread, oldest first.
#[utoipa::path(responses((status = 200, description = "comments")))]
#[get("/{id}/comments")]
pub async fn comments(u: Reader, path: Id) -> Answer {
    Ok(api::ok(u.svc.comments(&u.tenant, &u.actor, path.id).await?))
}

/// Adds a comment (`comment`).
#[utoipa::path(responses((status = 201, description = "comment"), (status = 403, description = "needs comment access")))]
#[post("/{id}/comments")]
pub async fn comment(u: Reader, path: Id, body: JsonObject<NewComment>) -> Answer {
    let c = u.svc.comment(&u.tenant, &u.actor, path.id, body.0).await?;
    Ok(api::ok_status(StatusCode::CREATED, c))
}

/// The activity trail (who, what, before/after, IP, time), newest first.
#[utoipa::path(params(PageQuery), responses((status = 200, description = "a page of activity")))]
#[get("/{id}/activity")]
pub async fn activity(u: Reader, path: Id, page: web::Query<PageQuery>) -> Answer {
    let (cursor, limit) = page.as_given();
    let page = u.svc.activity(&u.tenant, &u.actor, path.id, cursor, limit);
    Ok(api::page_of(page.await?))
}

/// The positions as CSV.
#[utoipa::path(responses((status = 200, description = "text/csv")))]
#[get("/{id}/positions.csv")]
pub async fn export_csv(u: Reader, path: Id) -> Answer {
    let csv = u.svc.export_csv(&u.tenant, &u.actor, path.id).await?;
    Ok(api::csv("positions.csv", csv))
}

/// `?mode=replace` (default) or `append`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ImportQuery {
    /// `replace` (default) swaps all positions; `append` adds to them.
    pub mode: Option<String>,
}

/// The body of a CSV upload, refused past `limit` bytes without reading on.
async fn bounded_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::from(PortfolioError::TooLarge {
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
    Ok(body)
}

/// Imports positions from a CSV body (`edit`): every row is checked first;
/// any broken row → 422 with a row-by-row report and nothing applied.
#[utoipa::path(params(ImportQuery), responses((status = 200, description = "report and new version"), (status = 413, description = "too large"), (status = 422, description = "broken rows, nothing applied")))]
#[put("/{id}/positions.csv")]
pub async fn import_csv(
    req: HttpRequest,
    u: Writer,
    path: Id,
    query: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Answer {
    let replace = match query.mode.as_deref() {
        None | Some("replace") => true,
        Some("append") => false,
        Some(_) => return Err(ApiError::bad_request("mode: replace or append")),
    };
    let body = bounded_body(&req, payload, rampart_portfolio::transfer::MAX_BYTES).await?;
    let imported = u
        .svc
        .import_csv(&u.tenant, &u.actor, path.id, &body, replace);
    let (report, detail) = imported.await?;
    Ok(api::ok(
        serde_json::json!({"report": report, "portfolio": detail}),
    ))
}

/// [`run_analysis`] as the calling analyst.
async fn analysed(
    user: &Analyst,
    state: &AppState,
    id: Uuid,
    query: &AnalyticsQuery,
) -> Result<(Vec<NavPoint>, AnalyticsReport, Window), ApiError> {
    run_analysis(state, &user.tenant, &user.portfolio_actor(), id, query).await
}

/// An answer drawn from the analysis (a CSV, an SVG) by `draw`, marked with
/// the window it covers.
async fn drawn(
    user: &Analyst,
    state: &AppState,
    id: Uuid,
    query: &AnalyticsQuery,
    draw: impl FnOnce(&[NavPoint], &AnalyticsReport) -> Answer,
) -> Answer {
    let (series, report, window) = analysed(user, state, id, query).await?;
    let mut res = draw(&series, &report)?;
    window.mark(&mut res)?;
    Ok(res)
}

/// NAV and daily return series (stored in `portfolio_metrics_daily`),
/// performance (TWR, MWR), risk (volatility, Sharpe, Sortino, max drawdown,
/// beta, VaR/CVaR), allocation by symbol and sector, rebalancing trades.
#[utoipa::path(params(AnalyticsQuery), responses((status = 200, description = "report and series"), (status = 422, description = "no prices for a symbol")))]
#[get("/{id}/analytics")]
pub async fn analytics(
    user: Analyst,
    state: State,
    cache: web::Data<AnalyticsCache>,
    path: Id,
    query: Analysis,
) -> Answer {
    query.window()?;
    // The key holds the caller, so an answer is only served to whom it was
    // computed for; the dates as requested (and the day, which the default
    // window depends on).
    let key = AnalyticsKey {
        generation: cache.generation(user.principal.tenant_id).await?,
        tenant: user.principal.tenant_id,
        portfolio: path.id,
        user: user.id,
        tenant_admin: user.is_tenant_admin(),
        from: query.from,
        to: query.to,
        day: chrono::Utc::now().date_naive(),
        benchmark: query.benchmark().to_owned(),
    };
    let data = match cache.get(&key) {
        Some(data) => data,
        None => {
            let (series, report, window) = analysed(&user, &state, path.id.into(), &query).await?;
            let data = web::Bytes::from(
                serde_json::to_vec(
                    &serde_json::json!({"report": report, "series": series, "window": window}),
                )
                .map_err(|e| ApiError::internal(&e))?,
            );
            cache.insert(key, data.clone());
            data
        }
    };
    api::ok_raw(&data)
}

/// The performance series as CSV.
#[utoipa::path(params(AnalyticsQuery), responses((status = 200, description = "text/csv")))]
#[get("/{id}/performance.csv")]
pub async fn performance_csv(user: Analyst, state: State, path: Id, query: Analysis) -> Answer {
    drawn(&user, &state, path.id.into(), &query, |series, _| {
        let csv = rampart_portfolio::analysis::performance_csv(series);
        Ok(api::csv("performance.csv", csv))
    })
    .await
}

/// Which stored days: `from` and `to` (both included; default the year up
/// to today).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MetricsQuery {
    /// First day (default: 365 days before `to`).
    pub from: Option<chrono::NaiveDate>,
    /// Last day (default: today).
    pub to: Option<chrono::NaiveDate>,
}

/// The stored daily metrics, read without recomputing.
async fn stored_metrics(
    user: &Analyst,
    state: &AppState,
    id: Uuid,
    query: &MetricsQuery,
) -> Result<Vec<rampart_portfolio::DailyMetrics>, ApiError> {
    let to = query.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let from = query.from.unwrap_or(to - chrono::Duration::days(365));
    let (svc, actor) = (PortfolioService::from_state(state), user.portfolio_actor());
    Ok(svc
        .daily_metrics(&user.tenant, &actor, id.into(), from, to)
        .await?)
}

/// The daily metrics stored by the nightly job and by analyses (nav, daily
/// and cumulative return, 30-day volatility, max drawdown), oldest first.
#[utoipa::path(params(MetricsQuery), responses((status = 200, description = "the stored days"), (status = 400, description = "from after to, or more than twenty years"), (status = 404, description = "no such portfolio, or not visible to the caller")))]
#[get("/{id}/metrics")]
pub async fn metrics(
    user: Analyst,
    state: State,
    path: Id,
    query: web::Query<MetricsQuery>,
) -> Answer {
    let days = stored_metrics(&user, &state, path.id.into(), &query).await?;
    Ok(api::ok(serde_json::json!({ "days": days })))
}

/// The stored daily metrics as CSV (the columns of `performance.csv`).
#[utoipa::path(params(MetricsQuery), responses((status = 200, description = "text/csv"), (status = 400, description = "from after to, or more than twenty years"), (status = 404, description = "no such portfolio, or not visible to the caller")))]
#[get("/{id}/metrics.csv")]
pub async fn metrics_csv(
    user: Analyst,
    state: State,
    path: Id,
    query: web::Query<MetricsQuery>,
) -> Answer {
    let days = stored_metrics(&user, &state, path.id.into(), &query).await?;
    let csv = rampart_portfolio::metrics::metrics_csv(days);
    Ok(api::csv("metrics.csv", csv))
}

/// The equity curve with its drawdown underneath (SVG).
#[utoipa::path(params(AnalyticsQuery), responses((status = 200, description = "image/svg+xml")))]
#[get("/{id}/charts/equity.svg")]
pub async fn equity_chart(user: Analyst, state: State, path: Id, query: Analysis) -> Answer {
    drawn(&user, &state, path.id.into(), &query, |series, _| {
        let svg = rampart_portfolio::charts::equity_svg(series, "Equity and drawdown")?;
        Ok(api::svg(svg))
    })
    .await
}

/// The histogram of returns with VaR and CVaR marked (SVG).
#[utoipa::path(params(AnalyticsQuery), responses((status = 200, description = "image/svg+xml")))]
#[get("/{id}/charts/returns.svg")]
pub async fn returns_chart(user: Analyst, state: State, path: Id, query: Analysis) -> Answer {
    drawn(&user, &state, path.id.into(), &query, |series, report| {
        let returns: Vec<f64> = series.iter().filter_map(|p| p.daily_return).collect();
        let svg = rampart_portfolio::charts::returns_histogram_svg(
            &returns,
            report.risk.var_historical.unwrap_or(f64::NAN),
            report.risk.cvar_historical.unwrap_or(f64::NAN),
            "Distribution of returns",
        )?;
        Ok(api::svg(svg))
    })
    .await
}

/// Correlation of the holdings' returns over the window (the dates on
/// which every holding has a price).
#[utoipa::path(params(AnalyticsQuery), responses((status = 200, description = "symbols and their correlation matrix"), (status = 422, description = "too few common prices")))]
#[get("/{id}/correlation")]
pub async fn correlation(user: Analyst, state: State, path: Id, query: Analysis) -> Answer {
    let (prices, window) = holdings_prices(
        &state,
        &user.tenant,
        &user.portfolio_actor(),
        path.id.into(),
        &query,
    )
    .await?;
    let report = rampart_portfolio::analysis::correlation(&prices, window.from, window.to)?;
    Ok(api::ok(
        serde_json::json!({"correlation": report, "window": window}),
    ))
}

/// A Monte Carlo simulation of the portfolio's returns.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MonteCarloQuery {
    /// First day of the returns sampled (as for the analytics).
    pub from: Option<chrono::NaiveDate>,
    /// Last day of the returns sampled.
    pub to: Option<chrono::NaiveDate>,
    /// Periods to simulate ahead, in the series' frequency (default 21, at most 756).
    pub horizon: Option<usize>,
    /// Simulated paths (default 2,000, at most 20,000).
    pub paths: Option<usize>,
    /// Seed of the generator (default 42): the same seed gives the same answer.
    pub seed: Option<u64>,
    /// `normal` (default: the returns' mean and s.d.) or `bootstrap` (resample them).
    pub model: Option<String>,
}

impl MonteCarloQuery {
    fn settings(&self) -> Result<(usize, MonteCarlo), ApiError> {
        let horizon = self.horizon.unwrap_or(21);
        let paths = self.paths.unwrap_or(2_000);
        if !(1..=756).contains(&horizon) || !(100..=20_000).contains(&paths) {
            return Err(ApiError::bad_request(
                "horizon: 1 to 756 periods; paths: 100 to 20000",
            ));
        }
        let model = match self.model.as_deref() {
            None | Some("normal") => MonteCarloModel::Normal,
            Some("bootstrap") => MonteCarloModel::Bootstrap,
            Some(_) => return Err(ApiError::bad_request("model: normal or bootstrap")),
        };
        let settings = MonteCarlo {
            simulations: paths,
            seed: self.seed.unwrap_or(42),
            model,
        };
        Ok((horizon, settings))
    }

    fn window(&self) -> AnalyticsQuery {
        AnalyticsQuery {
            from: self.from,
            to: self.to,
            benchmark: None,
        }
    }
}

/// The simulation behind `monte-carlo` and `charts/fan.svg`.
async fn simulate(
    user: &Analyst,
    state: &AppState,
    id: Uuid,
    query: &MonteCarloQuery,
) -> Result<(serde_json::Value, MonteCarloOutcomes, Window), ApiError> {
    let (horizon, settings) = query.settings()?;
    let window = query.window();
    window.window()?;
    let (series, report, window) = analysed(user, state, id, &window).await?;
    let returns: Vec<f64> = series.iter().filter_map(|p| p.daily_return).collect();
    let outcomes = monte_carlo_bands(&returns, VAR_CUTOFF, horizon, &settings)
        .map_err(|e| ApiError::from(PortfolioError::Invalid(e.to_string())))?;
    let (var, cvar) = monte_carlo_value_at_risk(&returns, VAR_CUTOFF, &settings);
    let finite = |x: f64| x.is_finite().then_some(x);
    let summary = serde_json::json!({
        "frequency": report.frequency,
        "horizon": horizon,
        "paths": settings.simulations,
        "seed": settings.seed,
        "model": query.model.as_deref().unwrap_or("normal"),
        "confidence": 1.0 - VAR_CUTOFF,
        "var_one_period": finite(var),
        "cvar_one_period": finite(cvar),
        "horizon_var": finite(outcomes.horizon_var),
        "horizon_cvar": finite(outcomes.horizon_cvar),
        "observations": returns.len(),
    });
    Ok((summary, outcomes, window))
}

/// Monte Carlo VaR/CVaR (one period and over the horizon) and the simulated
/// outcome bands (5/25/50/75/95 % of the cumulative return at each step),
/// seeded and reproducible.
#[utoipa::path(params(MonteCarloQuery), responses((status = 200, description = "VaR/CVaR and outcome bands"), (status = 400, description = "bad horizon, paths or model"), (status = 403, description = "feature_disabled: the tenant's monteCarlo flag is off"), (status = 422, description = "no prices for a symbol")))]
#[get("/{id}/monte-carlo")]
pub async fn monte_carlo(user: Simulator, state: State, path: Id, query: Simulation) -> Answer {
    let (mut summary, outcomes, window) = simulate(&user, &state, path.id.into(), &query).await?;
    summary["bands"] = serde_json::to_value(&outcomes.bands).map_err(|e| ApiError::internal(&e))?;
    summary["window"] = serde_json::to_value(window).map_err(|e| ApiError::internal(&e))?;
    Ok(api::ok(summary))
}

/// The simulated outcome bands as a fan chart (SVG).
#[utoipa::path(params(MonteCarloQuery), responses((status = 200, description = "image/svg+xml"), (status = 403, description = "feature_disabled: the tenant's monteCarlo flag is off")))]
#[get("/{id}/charts/fan.svg")]
pub async fn fan_chart(user: Simulator, state: State, path: Id, query: Simulation) -> Answer {
    let (summary, outcomes, window) = simulate(&user, &state, path.id.into(), &query).await?;
    let title = format!(
        "Simulated outcomes: {} paths, {} periods ahead",
        summary["paths"], summary["horizon"]
    );
    let svg = rampart_portfolio::charts::fan_svg(&outcomes.bands, &title)?;
    let mut res = api::svg(svg);
    window.mark(&mut res)?;
    Ok(res)
}
