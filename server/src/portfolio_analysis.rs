//! A portfolio's analysis as the server runs it: the window (the query's
//! dates, or the data available for the holdings), the holdings' prices
//! through the market chain, and the portfolio crate's analysis, which
//! stores the series in `portfolio_metrics_daily`. The analytics routes
//! and the nightly metrics job both go through [`run_analysis`].
use actix_web::HttpResponse;
use actix_web::http::header;
use rampart_portfolio::{
    Actor, AnalysisInput, AnalyticsReport, NavPoint, PortfolioService, PriceHistory,
};
use rampart_tenancy::TenantSlug;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

fn service(state: &AppState) -> PortfolioService {
    PortfolioService::new(state.tenants.clone())
}

/// The analysis window and benchmark.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct AnalyticsQuery {
    /// First day (default: five years before `to`).
    pub from: Option<chrono::NaiveDate>,
    /// Last day (default: the latest day with prices for every symbol of
    /// the portfolio when neither `from` nor `to` is given, else today).
    pub to: Option<chrono::NaiveDate>,
    /// Benchmark symbol for beta (default `^GSPC`).
    pub benchmark: Option<String>,
}

impl AnalyticsQuery {
    /// The requested window, `to` defaulting to today: refused when `from`
    /// is not before `to` or they are more than 30 years apart.
    pub fn window(&self) -> Result<(chrono::NaiveDate, chrono::NaiveDate), ApiError> {
        self.window_ending(chrono::Utc::now().date_naive())
    }

    /// The window, `to` defaulting to `default_to`.
    fn window_ending(
        &self,
        default_to: chrono::NaiveDate,
    ) -> Result<(chrono::NaiveDate, chrono::NaiveDate), ApiError> {
        let to = self.to.unwrap_or(default_to);
        let from = self
            .from
            .unwrap_or_else(|| to - chrono::Duration::days(5 * 365));
        if from >= to || (to - from).num_days() > 30 * 366 {
            return Err(ApiError::bad_request(
                "from must be before to, at most 30 years apart",
            ));
        }
        Ok((from, to))
    }

    /// The benchmark symbol (default `^GSPC`).
    pub fn benchmark(&self) -> &str {
        self.benchmark.as_deref().unwrap_or("^GSPC")
    }
}

/// The window an analysis covers and why.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Window {
    /// First day.
    pub from: chrono::NaiveDate,
    /// Last day.
    pub to: chrono::NaiveDate,
    /// `requested` (from the query, `to` defaulting to today) or
    /// `available-data` (no dates given: it ends on the latest day with
    /// prices for every symbol of the portfolio, so a chart draws at once
    /// even when the data end in the past).
    pub basis: &'static str,
}

impl Window {
    /// `Rampart-Analysis-Window: FROM/TO; basis=…` on CSV and SVG answers,
    /// which carry no JSON to say it in.
    pub fn mark(&self, res: &mut HttpResponse) -> Result<(), ApiError> {
        let value = format!("{}/{}; basis={}", self.from, self.to, self.basis);
        res.headers_mut().insert(
            header::HeaderName::from_static("rampart-analysis-window"),
            header::HeaderValue::from_str(&value).map_err(|e| ApiError::internal(&e))?,
        );
        Ok(())
    }
}

/// The window of an analysis: the query's dates, or, with none, the five
/// years up to the latest day every symbol of the portfolio has a price.
async fn resolve_window(
    state: &AppState,
    symbols: &[String],
    query: &AnalyticsQuery,
) -> Result<Window, ApiError> {
    let today = chrono::Utc::now().date_naive();
    if query.from.is_some() || query.to.is_some() || symbols.is_empty() {
        let (from, to) = query.window_ending(today)?;
        return Ok(Window {
            from,
            to,
            basis: "requested",
        });
    }
    let mut common_end: Option<chrono::NaiveDate> = None;
    for symbol in symbols {
        let history = closes(
            state,
            symbol,
            today - chrono::Duration::days(30 * 365),
            today,
        )
        .await?;
        if let Some(last) = history.and_then(|c| c.last().map(|(d, _)| *d)) {
            common_end = Some(common_end.map_or(last, |end| end.min(last)));
        }
    }
    let (from, to) = query.window_ending(common_end.unwrap_or(today))?;
    let basis = if common_end.is_some() {
        "available-data"
    } else {
        "requested"
    };
    Ok(Window { from, to, basis })
}

/// The holdings' prices over the analysis window, through the market chain
/// (needs `view` on the portfolio).
pub async fn holdings_prices(
    state: &AppState,
    tenant: &TenantSlug,
    actor: &Actor,
    id: Uuid,
    query: &AnalyticsQuery,
) -> Result<(PriceHistory, Window), ApiError> {
    let symbols = service(state).symbols(tenant, actor, id.into()).await?;
    let window = resolve_window(state, &symbols, query).await?;
    let mut prices = PriceHistory::new();
    for symbol in &symbols {
        if let Some(closes) = closes(state, symbol, window.from, window.to).await? {
            prices.insert(symbol.clone(), closes);
        }
    }
    Ok((prices, window))
}

/// Prices through the market chain, then the crate's analysis (stored in
/// `portfolio_metrics_daily`).
pub async fn run_analysis(
    state: &AppState,
    tenant: &TenantSlug,
    actor: &Actor,
    id: Uuid,
    query: &AnalyticsQuery,
) -> Result<(Vec<NavPoint>, AnalyticsReport, Window), ApiError> {
    let benchmark = query.benchmark();
    let (prices, window) = holdings_prices(state, tenant, actor, id, query).await?;
    let (from, to) = (window.from, window.to);
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
    let (series, report) = service(state)
        .analyze(tenant, actor, id.into(), &input)
        .await?;
    Ok((series, report, window))
}

/// Daily closes of a symbol; `None` when no provider knows it.
pub async fn closes(
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
                .map(|b| {
                    (
                        b.date,
                        rampart_amount::to_f64(b.adj_close.unwrap_or(b.close)),
                    )
                })
                .collect(),
        )),
        Err(rampart_market::MarketError::UnknownSymbol { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
