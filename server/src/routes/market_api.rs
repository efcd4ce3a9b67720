//! `/api/v1/t/{tenant}/quotes?symbols=…`, `/bars/{symbol}`, `/symbols?q=`,
//! `/fundamentals/{symbol}` and `/news/{symbol}?limit=`: batch quotes, daily
//! history, symbol search, company fundamentals and news through the market chain
//! (`state.market`, with its caches), each answer saying who served it and
//! how old it is. Needs `market:read`.
use actix_web::{HttpResponse, web};
use actix_web::{get, post};
use chrono::NaiveDate;
use rampart_market::{MarketError, Served, Staleness};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, perm};
use crate::state::AppState;

/// Most symbols of one batch.
pub const MAX_BATCH: usize = 50;

/// Registers the admin-listener routes (the ingestion trigger).
pub fn configure_admin(cfg: &mut ServiceConfig) {
    cfg.service(trigger_ingest);
}

/// Runs the daily market-data ingestion now (admin listener): every symbol
/// held in a portfolio of an active tenant plus `[market_ingest] symbols`,
/// brought up to today; the per-symbol reports.
#[utoipa::path(responses((status = 200, description = "the run's report: rows inserted and updated per symbol, failures"), (status = 401, description = "no client certificate of an operator")))]
#[post("/admin/jobs/ingest")]
pub async fn trigger_ingest(
    _operator: crate::extract::Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(api::ok(crate::jobs::run_ingest_job(&state).await?))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(quotes)
        .service(bars)
        .service(search)
        .service(fundamentals)
        .service(news);
}

/// The path's symbol, normalized (400 when malformed).
fn symbol_of(path: &SymbolPath) -> Result<String, ApiError> {
    rampart_market::model::normalize_symbol(&path.symbol)
        .map_err(|_| ApiError::bad_request("malformed symbol"))
}

fn provenance<T>(served: &Served<T>) -> serde_json::Value {
    serde_json::json!({
        "source": served.source,
        "origin": served.origin,
        "ageMs": u64::try_from(served.age.as_millis()).unwrap_or(u64::MAX),
        "stale": served.stale,
    })
}

/// `?symbols=AAPL,MSFT`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct QuotesQuery {
    /// Comma-separated symbols (1–50).
    pub symbols: String,
}

/// Quotes of several symbols: each with its source and age, or its error.
#[utoipa::path(params(QuotesQuery), responses((status = 200, description = "quotes and per-symbol errors; each quote has `source`, `origin`, `ageMs` and `stale` (true: every provider failed and the last known value is served, `ageMs` old)", headers(("Age" = u64, description = "only when a stale quote is served: the oldest stale quote's age in seconds"), ("Warning" = String, description = "only when a stale quote is served: `110 - \"Response is Stale\"`"))), (status = 400, description = "no or too many symbols")))]
#[get("/quotes")]
pub async fn quotes(
    _caller: Caller<perm::MarketRead>,
    state: web::Data<AppState>,
    query: web::Query<QuotesQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut symbols: Vec<String> = Vec::new();
    for s in query.symbols.split(',').map(str::trim) {
        let s = rampart_market::model::normalize_symbol(s)
            .map_err(|_| ApiError::bad_request(format!("malformed symbol {s:?}")))?;
        if !symbols.contains(&s) {
            symbols.push(s);
        }
    }
    if symbols.is_empty() || symbols.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "symbols: 1-{MAX_BATCH} comma-separated symbols"
        )));
    }
    let results = state.market.quotes(&symbols, Staleness::AllowStale).await;
    let mut quotes = Vec::new();
    let mut errors = Vec::new();
    // The oldest stale value served (every vendor failing: last known values).
    let mut stale_age: Option<std::time::Duration> = None;
    for (symbol, r) in results {
        match r {
            Ok(served) => {
                if served.stale {
                    stale_age = stale_age.max(Some(served.age));
                }
                let mut v = provenance(&served);
                v["symbol"] = symbol.into();
                v["quote"] = serde_json::to_value(&served.value).unwrap_or_default();
                quotes.push(v);
            }
            Err(e) => {
                let code = match &e {
                    MarketError::UnknownSymbol { .. } => ErrorCode::UnknownSymbol,
                    _ => ErrorCode::MarketUnavailable,
                };
                errors.push(serde_json::json!({"symbol": symbol, "code": code}));
            }
        }
    }
    let mut res = api::ok(serde_json::json!({"quotes": quotes, "errors": errors}));
    if let Some(age) = stale_age {
        api::mark_stale(&mut res, age);
    }
    Ok(res)
}

/// `…/bars/{symbol}`.
#[derive(Debug, Deserialize)]
pub struct SymbolPath {
    /// The symbol.
    pub symbol: String,
}

/// The window of daily bars.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct BarsQuery {
    /// First day (default: one year before `to`).
    pub from: Option<NaiveDate>,
    /// Last day (default: today).
    pub to: Option<NaiveDate>,
}

/// Daily OHLCV bars of a symbol (cached: L1, L2, and the L3 store).
#[utoipa::path(params(BarsQuery), responses((status = 200, description = "bars"), (status = 400, description = "bad window"), (status = 404, description = "unknown symbol")))]
#[get("/bars/{symbol}")]
pub async fn bars(
    _caller: Caller<perm::MarketRead>,
    state: web::Data<AppState>,
    path: web::Path<SymbolPath>,
    query: web::Query<BarsQuery>,
) -> Result<HttpResponse, ApiError> {
    let symbol = symbol_of(&path)?;
    let to = query.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let from = query.from.unwrap_or(to - chrono::Duration::days(365));
    if from > to || (to - from).num_days() > 30 * 366 {
        return Err(ApiError::bad_request(
            "from must not be after to, at most 30 years apart",
        ));
    }
    let served = state.market.daily_bars(&symbol, from, to).await?;
    let mut v = provenance(&served);
    v["symbol"] = symbol.into();
    v["from"] = from.to_string().into();
    v["to"] = to.to_string().into();
    v["bars"] = serde_json::to_value(&served.value).unwrap_or_default();
    Ok(api::ok(v))
}

/// `?q=apple`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// Part of a symbol or name (1–64 characters).
    pub q: String,
}

/// Instruments matching a query, from the first provider that answers.
#[utoipa::path(params(SearchQuery), responses((status = 200, description = "matches"), (status = 400, description = "empty query")))]
#[get("/symbols")]
pub async fn search(
    _caller: Caller<perm::MarketRead>,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.q.trim();
    if q.is_empty() || q.chars().count() > 64 || q.chars().any(char::is_control) {
        return Err(ApiError::bad_request("q: 1-64 characters"));
    }
    let served = state.market.search(q).await?;
    let mut v = provenance(&served);
    v["matches"] = serde_json::to_value(&served.value).unwrap_or_default();
    Ok(api::ok(v))
}

/// Company fundamentals (name, exchange, sector, market cap, P/E, EPS,
/// dividend yield) from the first provider that has them; kept in L1 for the
/// bars TTL.
#[utoipa::path(responses((status = 200, description = "`fundamentals` with `source`, `origin`, `ageMs` and `stale`"), (status = 400, description = "malformed symbol"), (status = 404, description = "unknown symbol"), (status = 503, description = "market_unavailable: no provider has fundamentals")))]
#[get("/fundamentals/{symbol}")]
pub async fn fundamentals(
    _caller: Caller<perm::MarketRead>,
    state: web::Data<AppState>,
    path: web::Path<SymbolPath>,
) -> Result<HttpResponse, ApiError> {
    let symbol = symbol_of(&path)?;
    let served = state.market.fundamentals(&symbol).await?;
    let mut v = provenance(&served);
    v["symbol"] = symbol.into();
    v["fundamentals"] = serde_json::to_value(&served.value).map_err(|e| ApiError::internal(&e))?;
    Ok(api::ok(v))
}

/// Most news items of one answer.
pub const MAX_NEWS: usize = 50;

/// `?limit=10`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NewsQuery {
    /// How many items (1–50, default 10), newest first.
    pub limit: Option<usize>,
}

/// Recent news about a symbol, newest first, from the first provider that
/// has them; kept in L1 for the bars TTL.
#[utoipa::path(params(NewsQuery), responses((status = 200, description = "`news` (headline, url, source, summary, published_at) with `source`, `origin`, `ageMs` and `stale`"), (status = 400, description = "malformed symbol or limit"), (status = 404, description = "unknown symbol"), (status = 503, description = "market_unavailable: no provider has news")))]
#[get("/news/{symbol}")]
pub async fn news(
    _caller: Caller<perm::MarketRead>,
    state: web::Data<AppState>,
    path: web::Path<SymbolPath>,
    query: web::Query<NewsQuery>,
) -> Result<HttpResponse, ApiError> {
    let symbol = symbol_of(&path)?;
    let limit = query.limit.unwrap_or(10);
    if !(1..=MAX_NEWS).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit: 1-{MAX_NEWS}")));
    }
    let served = state.market.news(&symbol, limit).await?;
    let mut items = served.value.clone();
    items.sort_by_key(|n| std::cmp::Reverse(n.published_at));
    items.truncate(limit);
    let mut v = provenance(&served);
    v["symbol"] = symbol.into();
    v["news"] = serde_json::to_value(&items).map_err(|e| ApiError::internal(&e))?;
    Ok(api::ok(v))
}
