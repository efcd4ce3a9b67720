//! Per-portfolio analytics: the NAV and daily return series from positions
//! × closing prices, stored in `portfolio_metrics_daily`; performance (TWR,
//! MWR), risk (volatility, Sharpe, Sortino, max drawdown, beta, VaR/CVaR by
//! `rampart-analytics`' methods), allocation and rebalancing trades.
//!
//! How the NAV is built: a `quantity` position is held from its purchase
//! date (or the window's start) and its purchase is an external flow at that
//! day's close, so TWR ignores it and MWR (XIRR) weighs it; `weight`
//! positions are bought at the start for their share of a notional
//! (`settings.notional`, default 10 000) and the unweighted rest of that
//! notional stays as cash. Prices are carried forward over days a symbol did
//! not trade.
use rampart_tenancy::TenantSlug;
use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::ExpressionMethods;
use diesel::upsert::excluded;
use rampart_analytics::cash_flow::{CashFlow, FlowTiming, Valuation, sub_period_returns, xirr};
use rampart_analytics::{
    Period, annual_return, annual_volatility, beta, conditional_value_at_risk,
    cornish_fisher_value_at_risk, drawdown_series, gaussian_value_at_risk, max_drawdown,
    sharpe_ratio, sortino_ratio, value_at_risk,
};
use rampart_ids::PortfolioId;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::model::{Actor, AllocationType, PortfolioDetail, Position};
use crate::schema::portfolio_metrics_daily;
use crate::{Access, PortfolioError, PortfolioService};

/// Closing prices per symbol, any order.
pub type PriceHistory = BTreeMap<String, Vec<(NaiveDate, f64)>>;

/// The tail probability of the VaR/CVaR figures (95 % confidence).
pub const VAR_CUTOFF: f64 = 0.05;

/// One day of the series (a row of `portfolio_metrics_daily`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NavPoint {
    /// Trading day.
    pub date: NaiveDate,
    /// Net asset value at the close.
    pub nav: f64,
    /// External flow that day (purchases).
    pub flow: f64,
    /// Return since the previous point, flows excluded (none on the first).
    pub daily_return: Option<f64>,
    /// Compounded return since the first point.
    pub cumulative_return: f64,
    /// Annualized volatility of the last 30 returns.
    pub volatility_30d: Option<f64>,
    /// Worst drawdown so far (≤ 0).
    pub max_drawdown: f64,
}

/// Time- and money-weighted returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    /// Time-weighted return over the window.
    pub twr: Option<f64>,
    /// The TWR annualized.
    pub twr_annualized: Option<f64>,
    /// Money-weighted return (XIRR, annual).
    pub mwr: Option<f64>,
}

/// Risk figures (annualized where it applies; returns are fractions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    /// Annualized volatility.
    pub volatility: Option<f64>,
    /// Sharpe ratio (risk-free 0).
    pub sharpe: Option<f64>,
    /// Sortino ratio (required return 0).
    pub sortino: Option<f64>,
    /// Maximum drawdown (≤ 0).
    pub max_drawdown: Option<f64>,
    /// Beta against the benchmark.
    pub beta: Option<f64>,
    /// Historical VaR at [`VAR_CUTOFF`].
    pub var_historical: Option<f64>,
    /// Historical CVaR (expected shortfall) at [`VAR_CUTOFF`].
    pub cvar_historical: Option<f64>,
    /// Gaussian (parametric) VaR.
    pub var_gaussian: Option<f64>,
    /// Cornish-Fisher (modified) VaR.
    pub var_cornish_fisher: Option<f64>,
}

/// A slice of the allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// Symbol, sector, or `CASH`.
    pub key: String,
    /// Market value at the last date.
    pub value: f64,
    /// Fraction of the NAV.
    pub weight: f64,
}

/// A trade that moves a position to its target weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Symbol.
    pub symbol: String,
    /// Last price.
    pub price: f64,
    /// Weight now.
    pub current_weight: f64,
    /// Target weight.
    pub target_weight: f64,
    /// Units to buy (positive) or sell (negative).
    pub quantity: f64,
    /// Value of the trade.
    pub value: f64,
}

/// Everything the analytics route returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsReport {
    /// First date of the series.
    pub from: NaiveDate,
    /// Last date of the series.
    pub to: NaiveDate,
    /// `daily`, `weekly` or `monthly` (detected from the price dates).
    pub frequency: String,
    /// Number of points.
    pub points: usize,
    /// NAV at the last date.
    pub nav: f64,
    /// TWR and MWR.
    pub performance: Performance,
    /// Risk figures.
    pub risk: Risk,
    /// The benchmark of `beta`.
    pub benchmark: Option<String>,
    /// Allocation by symbol.
    pub allocation_by_symbol: Vec<Slice>,
    /// Allocation by sector (`Unclassified` when a position has none).
    pub allocation_by_sector: Vec<Slice>,
    /// Trades to reach the target weights.
    pub rebalancing: Vec<Trade>,
}

/// Where exact amounts become the floats the analytics run on.
fn float(d: Option<Decimal>) -> Option<f64> {
    d.and_then(|d| d.to_f64())
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The last price at or before `date` (prices sorted by date).
fn price_at(prices: &[(NaiveDate, f64)], date: NaiveDate) -> Option<f64> {
    let i = prices.partition_point(|(d, _)| *d <= date);
    i.checked_sub(1).map(|i| prices[i].1)
}

fn frequency(dates: &[NaiveDate]) -> (Period, &'static str) {
    let mut gaps: Vec<i64> = dates.windows(2).map(|w| (w[1] - w[0]).num_days()).collect();
    gaps.sort_unstable();
    match gaps.get(gaps.len() / 2).copied().unwrap_or(1) {
        0..=4 => (Period::Daily, "daily"),
        5..=10 => (Period::Weekly, "weekly"),
        _ => (Period::Monthly, "monthly"),
    }
}

struct Holding<'a> {
    position: &'a Position,
    prices: Vec<(NaiveDate, f64)>,
    units: f64,
    from: NaiveDate,
}

/// What an analysis runs on.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisInput<'a> {
    /// Closes of the positions' symbols.
    pub prices: &'a PriceHistory,
    /// A benchmark symbol and its closes, for beta.
    pub benchmark: Option<(&'a str, &'a [(NaiveDate, f64)])>,
    /// First day of the window.
    pub from: NaiveDate,
    /// Last day of the window.
    pub to: NaiveDate,
}

/// The series and report for `detail` over the input's window, without storing.
pub fn analyze(
    detail: &PortfolioDetail,
    input: &AnalysisInput<'_>,
) -> Result<(Vec<NavPoint>, AnalyticsReport), PortfolioError> {
    let AnalysisInput {
        prices,
        benchmark,
        from,
        to,
    } = *input;
    if detail.positions.is_empty() {
        return Err(PortfolioError::Invalid(
            "the portfolio has no positions".into(),
        ));
    }
    let mut series_of = BTreeMap::new();
    for p in &detail.positions {
        let mut s: Vec<(NaiveDate, f64)> = prices
            .get(&p.symbol)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|(d, c)| *d <= to && c.is_finite() && *c > 0.0)
                    .collect()
            })
            .unwrap_or_default();
        s.sort_by_key(|(d, _)| *d);
        if !s.iter().any(|(d, _)| *d >= from) {
            return Err(PortfolioError::MissingPrices {
                symbol: p.symbol.clone(),
            });
        }
        series_of.insert(p.symbol.clone(), s);
    }
    // Dates: every trading day of any symbol in the window, from the first
    // day on which every symbol has a price.
    let start = series_of
        .values()
        .filter_map(|s| s.first().map(|(d, _)| *d))
        .max()
        .unwrap_or(from)
        .max(from);
    let mut dates: Vec<NaiveDate> = series_of
        .values()
        .flat_map(|s| s.iter().map(|(d, _)| *d))
        .filter(|d| *d >= start && *d <= to)
        .collect();
    dates.sort_unstable();
    dates.dedup();
    let Some(&first) = dates.first() else {
        return Err(PortfolioError::Invalid("no prices in the window".into()));
    };
    let notional = detail
        .portfolio
        .settings
        .get("notional")
        .and_then(serde_json::Value::as_f64)
        .filter(|n| n.is_finite() && *n > 0.0)
        .unwrap_or(10_000.0);
    let total_weight: f64 = detail
        .positions
        .iter()
        .filter(|p| p.allocation_type == AllocationType::Weight)
        .filter_map(|p| float(p.target_weight))
        .sum();
    let cash = if total_weight > 0.0 {
        (1.0 - total_weight).max(0.0) * notional
    } else {
        0.0
    };
    let mut holdings = Vec::new();
    for p in &detail.positions {
        let s = series_of.remove(&p.symbol).unwrap_or_default();
        let (units, held_from) = match p.allocation_type {
            AllocationType::Quantity => {
                let since = p.purchase_date.unwrap_or(first).max(first);
                let day = dates.iter().copied().find(|d| *d >= since);
                (float(p.quantity).unwrap_or(0.0), day)
            }
            AllocationType::Weight => {
                let p0 = price_at(&s, first).unwrap_or(f64::NAN);
                (
                    float(p.target_weight).unwrap_or(0.0) * notional / p0,
                    Some(first),
                )
            }
        };
        if let Some(day) = held_from {
            holdings.push(Holding {
                position: p,
                prices: s,
                units,
                from: day,
            });
        }
        // A position bought after the window holds nothing in it.
    }
    let mut valuations: Vec<Valuation> = Vec::with_capacity(dates.len());
    for &d in &dates {
        let mut nav = cash;
        let mut flow = 0.0;
        for h in &holdings {
            if d < h.from {
                continue;
            }
            let value = h.units * price_at(&h.prices, d).unwrap_or(0.0);
            nav += value;
            if d == h.from {
                flow += value;
            }
        }
        if valuations.is_empty() && nav <= 0.0 {
            continue; // nothing held yet
        }
        valuations.push(Valuation {
            date: d,
            value: nav,
            flow: if valuations.is_empty() { 0.0 } else { flow },
        });
    }
    if valuations.len() < 2 {
        return Err(PortfolioError::Invalid(
            "fewer than two valuation dates in the window".into(),
        ));
    }
    let returns = sub_period_returns(&valuations, FlowTiming::EndOfDay)
        .map_err(|e| PortfolioError::Invalid(format!("returns: {e}")))?;
    let vdates: Vec<NaiveDate> = valuations.iter().map(|v| v.date).collect();
    let (period, frequency_name) = frequency(&vdates);
    let drawdowns = drawdown_series(&returns);
    let mut points = Vec::with_capacity(valuations.len());
    let mut wealth = 1.0;
    let mut worst: f64 = 0.0;
    for (i, v) in valuations.iter().enumerate() {
        let r = i.checked_sub(1).and_then(|j| returns.get(j).copied());
        if let Some(r) = r {
            wealth *= 1.0 + r;
        }
        if let Some(dd) = i.checked_sub(1).and_then(|j| drawdowns.get(j).copied())
            && dd.is_finite()
        {
            worst = worst.min(dd);
        }
        let window = i
            .checked_sub(1)
            .filter(|j| *j + 1 >= 30)
            .map(|j| &returns[j + 1 - 30..=j]);
        points.push(NavPoint {
            date: v.date,
            nav: v.value,
            flow: v.flow,
            daily_return: r,
            cumulative_return: wealth - 1.0,
            volatility_30d: window.and_then(|w| finite(annual_volatility(w, period))),
            max_drawdown: worst,
        });
    }
    let twr = wealth - 1.0;
    let last = valuations[valuations.len() - 1];
    let mut flows = vec![CashFlow {
        date: valuations[0].date,
        amount: -valuations[0].value,
    }];
    flows.extend(
        valuations[1..]
            .iter()
            .filter(|v| v.flow != 0.0)
            .map(|v| CashFlow {
                date: v.date,
                amount: -v.flow,
            }),
    );
    flows.push(CashFlow {
        date: last.date,
        amount: last.value,
    });
    let bench_returns = benchmark.and_then(|(_, b)| {
        let mut b: Vec<(NaiveDate, f64)> = b.to_vec();
        b.sort_by_key(|(d, _)| *d);
        let levels: Option<Vec<f64>> = vdates.iter().map(|d| price_at(&b, *d)).collect();
        levels.map(|l| rampart_analytics::simple_returns(&l))
    });
    let risk = Risk {
        volatility: finite(annual_volatility(&returns, period)),
        sharpe: finite(sharpe_ratio(&returns, 0.0, period)),
        sortino: finite(sortino_ratio(&returns, 0.0, period)),
        max_drawdown: finite(max_drawdown(&returns)),
        beta: bench_returns
            .as_deref()
            .and_then(|b| beta(&returns, b).ok())
            .and_then(finite),
        var_historical: finite(value_at_risk(&returns, VAR_CUTOFF)),
        cvar_historical: finite(conditional_value_at_risk(&returns, VAR_CUTOFF)),
        var_gaussian: finite(gaussian_value_at_risk(&returns, VAR_CUTOFF)),
        var_cornish_fisher: finite(cornish_fisher_value_at_risk(&returns, VAR_CUTOFF)),
    };
    // Allocation and rebalancing at the last date.
    let nav = last.value;
    let mut by_symbol: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_sector: BTreeMap<String, f64> = BTreeMap::new();
    let mut rebalancing = Vec::new();
    let mut value_of: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for h in &holdings {
        let price = price_at(&h.prices, last.date).unwrap_or(0.0);
        let value = if last.date >= h.from {
            h.units * price
        } else {
            0.0
        };
        *by_symbol.entry(h.position.symbol.clone()).or_default() += value;
        *by_sector
            .entry(
                h.position
                    .sector
                    .clone()
                    .unwrap_or_else(|| "Unclassified".into()),
            )
            .or_default() += value;
        let e = value_of.entry(&h.position.symbol).or_insert((0.0, price));
        e.0 += value;
    }
    if cash > 0.0 {
        by_symbol.insert("CASH".into(), cash);
        by_sector.insert("CASH".into(), cash);
    }
    let slices = |m: BTreeMap<String, f64>| -> Vec<Slice> {
        let mut v: Vec<Slice> = m
            .into_iter()
            .map(|(key, value)| Slice {
                key,
                value,
                weight: value / nav,
            })
            .collect();
        v.sort_by(|a, b| b.value.total_cmp(&a.value));
        v
    };
    let mut targets: BTreeMap<&str, f64> = BTreeMap::new();
    for p in &detail.positions {
        if let Some(w) = float(p.target_weight) {
            *targets.entry(&p.symbol).or_default() += w;
        }
    }
    for (symbol, target) in targets {
        let (value, price) = value_of.get(symbol).copied().unwrap_or((0.0, 0.0));
        if price <= 0.0 {
            continue;
        }
        let delta = target * nav - value;
        rebalancing.push(Trade {
            symbol: symbol.to_owned(),
            price,
            current_weight: value / nav,
            target_weight: target,
            quantity: delta / price,
            value: delta,
        });
    }
    let report = AnalyticsReport {
        from: valuations[0].date,
        to: last.date,
        frequency: frequency_name.into(),
        points: points.len(),
        nav,
        performance: Performance {
            twr: finite(twr),
            twr_annualized: finite(annual_return(&returns, period)),
            mwr: xirr(&flows).ok().and_then(finite),
        },
        risk,
        benchmark: benchmark.map(|(s, _)| s.to_owned()),
        allocation_by_symbol: slices(by_symbol),
        allocation_by_sector: slices(by_sector),
        rebalancing,
    };
    Ok((points, report))
}

/// The correlation of a portfolio's holdings over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorrelationReport {
    /// The holdings, in the matrix's row and column order.
    pub symbols: Vec<String>,
    /// First common date used.
    pub from: NaiveDate,
    /// Last common date used.
    pub to: NaiveDate,
    /// Number of returns each correlation is computed from.
    pub observations: usize,
    /// Pearson correlation of the simple returns between consecutive common
    /// dates; `null` where a holding's price never moved.
    pub matrix: Vec<Vec<Option<f64>>>,
}

/// Correlation of the holdings' returns between the dates in `from..=to`
/// on which every holding has a price (so each pair is measured over the
/// same periods).
pub fn correlation(
    prices: &PriceHistory,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<CorrelationReport, PortfolioError> {
    if prices.is_empty() {
        return Err(PortfolioError::Invalid(
            "the portfolio holds nothing".into(),
        ));
    }
    let in_window = |s: &[(NaiveDate, f64)]| -> BTreeMap<NaiveDate, f64> {
        s.iter()
            .filter(|(d, p)| *d >= from && *d <= to && p.is_finite() && *p > 0.0)
            .copied()
            .collect()
    };
    let series: Vec<BTreeMap<NaiveDate, f64>> = prices.values().map(|s| in_window(s)).collect();
    let common: Vec<NaiveDate> = series
        .first()
        .map(|first| {
            first
                .keys()
                .filter(|d| series.iter().all(|s| s.contains_key(d)))
                .copied()
                .collect()
        })
        .unwrap_or_default();
    if common.len() < 3 {
        return Err(PortfolioError::Invalid(format!(
            "fewer than three dates in {from}..={to} on which every holding has a price"
        )));
    }
    let returns: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            common
                .windows(2)
                .map(|w| s[&w[1]] / s[&w[0]] - 1.0)
                .collect()
        })
        .collect();
    let slices: Vec<&[f64]> = returns.iter().map(Vec::as_slice).collect();
    let flat = rampart_analytics::correlation_matrix(&slices)
        .map_err(|e| PortfolioError::Invalid(e.to_string()))?;
    let k = slices.len();
    Ok(CorrelationReport {
        symbols: prices.keys().cloned().collect(),
        from: common[0],
        to: common[common.len() - 1],
        observations: common.len() - 1,
        matrix: flat
            .chunks(k)
            .map(|row| row.iter().map(|x| finite(*x)).collect())
            .collect(),
    })
}

impl From<&NavPoint> for crate::metrics::DailyMetrics {
    fn from(p: &NavPoint) -> Self {
        Self {
            date: p.date,
            nav: p.nav,
            daily_return: p.daily_return,
            cumulative_return: Some(p.cumulative_return),
            volatility_30d: p.volatility_30d,
            max_drawdown: Some(p.max_drawdown),
        }
    }
}

/// The series as CSV (`date,nav,daily_return,cumulative_return,volatility_30d,max_drawdown`),
/// the columns of [`crate::metrics::metrics_csv`].
pub fn performance_csv(points: &[NavPoint]) -> String {
    crate::metrics::metrics_csv(points.iter().map(crate::metrics::DailyMetrics::from))
}

impl PortfolioService {
    /// Computes the series and report of a portfolio (needs `view`) from
    /// the given prices and stores the series in `portfolio_metrics_daily`
    /// (replacing what was stored for those dates).
    pub async fn analyze(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
        input: &AnalysisInput<'_>,
    ) -> Result<(Vec<NavPoint>, AnalyticsReport), PortfolioError> {
        if input.from >= input.to {
            return Err(PortfolioError::Invalid("from must be before to".into()));
        }
        self.with_portfolio(tenant, actor, id, Access::View, async |conn, detail| {
            use diesel_async::RunQueryDsl;
            use portfolio_metrics_daily as m;
            let (points, report) = analyze(&detail, input)?;
            // Seven parameters a row: chunks stay under PostgreSQL's 65 535.
            for chunk in points.chunks(5_000) {
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|p| {
                        (
                            m::portfolio_id.eq(id),
                            m::date.eq(p.date),
                            m::nav.eq(p.nav),
                            m::daily_return.eq(p.daily_return),
                            m::cumulative_return.eq(Some(p.cumulative_return)),
                            m::volatility_30d.eq(p.volatility_30d),
                            m::max_drawdown.eq(Some(p.max_drawdown)),
                        )
                    })
                    .collect();
                diesel::insert_into(m::table)
                    .values(rows)
                    .on_conflict((m::portfolio_id, m::date))
                    .do_update()
                    .set((
                        m::nav.eq(excluded(m::nav)),
                        m::daily_return.eq(excluded(m::daily_return)),
                        m::cumulative_return.eq(excluded(m::cumulative_return)),
                        m::volatility_30d.eq(excluded(m::volatility_30d)),
                        m::max_drawdown.eq(excluded(m::max_drawdown)),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok((points, report))
        })
        .await
    }

    /// The positions' symbols (needs `view`): what to fetch prices for.
    pub async fn symbols(
        &self,
        tenant: &TenantSlug,
        actor: &Actor,
        id: PortfolioId,
    ) -> Result<Vec<String>, PortfolioError> {
        self.with_portfolio(tenant, actor, id, Access::View, async |_, d| {
            let mut s: Vec<String> = d.positions.into_iter().map(|p| p.symbol).collect();
            s.sort();
            s.dedup();
            Ok(s)
        })
        .await
    }
}
