//! `/api/v1/t/{tenant}/market/tradestation/…`: TradeStation market data
//! with the caller's own TradeStation connection (signed in through a
//! provider made from the `tradestation` preset): daily bars and symbol
//! information. `upstream_not_connected` (409) without a connection.
//! Symbol information is recorded as instruments (`market.instruments`).
//! Needs `market:read`.
use actix_web::get;
use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use rampart_market::MarketDataProvider;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api;
use crate::error::ApiError;
use crate::extract::{User, perm};
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(tradestation_bars).service(tradestation_symbols);
}

/// `…/bars/{symbol}`.
#[derive(Debug, Deserialize)]
pub struct BarsPath {
    /// The symbol, as TradeStation spells it.
    pub symbol: String,
}

/// The window of daily bars.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TradeStationBarsQuery {
    /// First day (default: one year before `to`).
    pub from: Option<NaiveDate>,
    /// Last day (default: today).
    pub to: Option<NaiveDate>,
}

/// Daily bars from TradeStation's v3 bar charts, called with the caller's
/// TradeStation access token (refreshed first when it expired).
#[utoipa::path(params(TradeStationBarsQuery), responses((status = 200, description = "`bars` (date, open, high, low, close, volume), oldest first; `source` is `tradestation`"), (status = 400, description = "bad window or symbol"), (status = 404, description = "unknown symbol"), (status = 409, description = "upstream_not_connected: the caller has no TradeStation connection")))]
#[get("/market/tradestation/bars/{symbol}")]
pub async fn tradestation_bars(
    user: User<perm::MarketRead>,
    state: web::Data<AppState>,
    path: web::Path<BarsPath>,
    query: web::Query<TradeStationBarsQuery>,
) -> Result<HttpResponse, ApiError> {
    let symbol = rampart_market::model::normalize_symbol(&path.symbol)
        .map_err(|_| ApiError::bad_request("malformed symbol"))?;
    let to = query.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let from = query.from.unwrap_or(to - chrono::Duration::days(365));
    if from > to || (to - from).num_days() > 30 * 366 {
        return Err(ApiError::bad_request(
            "from must not be after to, at most 30 years apart",
        ));
    }
    let ts = crate::tradestation::for_user(&state, &user.tenant, user.id).await?;
    let bars = ts.daily_bars(&symbol, from, to).await?;
    let (bars, rejected) = rampart_market::validate_bars(bars, chrono::Utc::now().date_naive());
    Ok(api::ok(serde_json::json!({
        "symbol": symbol,
        "from": from,
        "to": to,
        "source": "tradestation",
        "bars": bars,
        "rejected": rejected.total(),
    })))
}

/// `…/symbols/{symbols}`.
#[derive(Debug, Deserialize)]
pub struct SymbolsPath {
    /// Comma-separated symbols (1–50).
    pub symbols: String,
}

/// What TradeStation says about these symbols (description, exchange,
/// asset type), recorded as instruments.
#[utoipa::path(responses((status = 200, description = "`symbols`: symbol, name, exchange, kind; unknown symbols left out"), (status = 400, description = "no or too many symbols"), (status = 409, description = "upstream_not_connected: the caller has no TradeStation connection")))]
#[get("/market/tradestation/symbols/{symbols}")]
pub async fn tradestation_symbols(
    user: User<perm::MarketRead>,
    state: web::Data<AppState>,
    path: web::Path<SymbolsPath>,
) -> Result<HttpResponse, ApiError> {
    let mut symbols: Vec<String> = Vec::new();
    for s in path.symbols.split(',').map(str::trim) {
        let s = rampart_market::model::normalize_symbol(s)
            .map_err(|_| ApiError::bad_request(format!("malformed symbol {s:?}")))?;
        if !symbols.contains(&s) {
            symbols.push(s);
        }
    }
    let max = rampart_market::vendor::tradestation::MAX_SYMBOLS;
    if symbols.is_empty() || symbols.len() > max {
        return Err(ApiError::bad_request(format!(
            "symbols: 1-{max} comma-separated symbols"
        )));
    }
    let ts = crate::tradestation::for_user(&state, &user.tenant, user.id).await?;
    let found = ts.symbols(&symbols).await?;
    if let Some(store) = state.market.store() {
        store.upsert_instruments(&found, "tradestation").await?;
    }
    Ok(api::ok(serde_json::json!({ "symbols": found })))
}
