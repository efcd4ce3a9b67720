//! Earnings Power Value in Greenwald's method, every intermediate figure
//! kept so a reader can follow the case line by line.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{ValuationError, ValuationInputs};

/// Checked decimal arithmetic: an overflow is an error naming the figure,
/// never a panic.
fn add(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, ValuationError> {
    a.checked_add(b).ok_or(ValuationError::Overflow(what))
}
fn sub(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, ValuationError> {
    a.checked_sub(b).ok_or(ValuationError::Overflow(what))
}
fn mul(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, ValuationError> {
    a.checked_mul(b).ok_or(ValuationError::Overflow(what))
}
fn div(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, ValuationError> {
    a.checked_div(b).ok_or(ValuationError::Overflow(what))
}
fn mean(values: &[Decimal], what: &'static str) -> Result<Decimal, ValuationError> {
    let mut sum = Decimal::ZERO;
    for v in values {
        sum = add(sum, *v, what)?;
    }
    div(sum, Decimal::from(values.len()), what)
}

/// One fiscal year after the analyst's adjustments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdjustedYear {
    /// The fiscal year.
    pub year: i32,
    /// Depreciation and amortisation minus maintenance capex (negative when
    /// upkeep costs more than the accounts charge).
    pub excess_depreciation: Decimal,
    /// The growth shares of SG&A and R&D, added back.
    pub growth_investment: Decimal,
    /// Operating income + one-offs + excess depreciation + growth investment.
    pub adjusted_operating_income: Decimal,
    /// Adjusted operating income / revenue.
    pub adjusted_margin: Decimal,
}

/// The cost of capital and its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapitalCost {
    /// CAPM: risk-free + beta × equity risk premium.
    pub cost_of_equity: Decimal,
    /// Pre-tax cost of debt × (1 − tax rate).
    pub after_tax_cost_of_debt: Decimal,
    /// (1 − debt weight) × cost of equity + debt weight × after-tax cost of debt.
    pub wacc: Decimal,
}

/// Value with growth: `NOPAT × (1 − g/ROIC) / (WACC − g)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrowthValue {
    /// Value of operations with growth.
    pub value_of_operations: Decimal,
    /// Equity value with growth (same claims as the EPV).
    pub equity_value: Decimal,
    /// Per diluted share.
    pub value_per_share: Decimal,
    /// Growth value minus EPV of operations: what growth adds (negative when
    /// ROIC is below the cost of capital).
    pub value_of_growth: Decimal,
}

/// A complete valuation: every intermediate figure and the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Valuation {
    /// The inputs' currency.
    pub currency: String,
    /// Each fiscal year after adjustments, in input order.
    pub years: Vec<AdjustedYear>,
    /// Mean adjusted margin over the cycle.
    pub normalised_margin: Decimal,
    /// Revenue the margin applies to.
    pub normalised_revenue: Decimal,
    /// Normalised margin × normalised revenue (pre-tax).
    pub normalised_operating_income: Decimal,
    /// Tax on it.
    pub taxes: Decimal,
    /// Net operating profit after tax.
    pub nopat: Decimal,
    /// Cost of capital.
    pub capital: CapitalCost,
    /// NOPAT / WACC.
    pub epv_operations: Decimal,
    /// EPV of operations + excess cash + non-operating assets − debt − other claims.
    pub equity_value: Decimal,
    /// Equity value per diluted share.
    pub value_per_share: Decimal,
    /// Sum of the reproduction lines.
    pub reproduction_value: Decimal,
    /// EPV of operations − reproduction value: positive when the business
    /// earns more than its assets would cost a new entrant.
    pub franchise_value: Decimal,
    /// The growth variant, when a growth assumption was given.
    pub growth: Option<GrowthValue>,
    /// (value per share − price) / value per share, when a price was given
    /// and the value per share is positive.
    pub margin_of_safety: Option<Decimal>,
}

/// EPV per share for combinations of cost of capital and normalised margin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensitivityGrid {
    /// The rows' costs of capital.
    pub waccs: Vec<Decimal>,
    /// The columns' normalised margins.
    pub margins: Vec<Decimal>,
    /// `values[row][column]`: EPV equity value per share.
    pub values: Vec<Vec<Decimal>>,
}

fn adjust_years(inputs: &ValuationInputs) -> Result<Vec<AdjustedYear>, ValuationError> {
    let a = &inputs.adjustments;
    inputs
        .fiscal_years
        .iter()
        .map(|y| {
            let excess_depreciation = sub(
                y.depreciation_amortization,
                y.maintenance_capex,
                "excess depreciation",
            )?;
            let growth_investment = add(
                mul(a.growth_share_of_sga, y.sga, "growth share of SG&A")?,
                mul(
                    a.growth_share_of_rnd,
                    y.research_development,
                    "growth share of R&D",
                )?,
                "growth investment",
            )?;
            let adjusted_operating_income = add(
                add(
                    y.operating_income,
                    y.one_off_charges,
                    "adjusted operating income",
                )?,
                add(
                    excess_depreciation,
                    growth_investment,
                    "adjusted operating income",
                )?,
                "adjusted operating income",
            )?;
            let adjusted_margin = div(adjusted_operating_income, y.revenue, "adjusted margin")?;
            Ok(AdjustedYear {
                year: y.year,
                excess_depreciation,
                growth_investment,
                adjusted_operating_income,
                adjusted_margin,
            })
        })
        .collect()
}

/// The cost of capital the inputs describe.
pub fn cost_of_capital(inputs: &ValuationInputs) -> Result<CapitalCost, ValuationError> {
    let c = &inputs.cost_of_capital;
    let cost_of_equity = add(
        c.risk_free_rate,
        mul(c.beta, c.equity_risk_premium, "cost of equity")?,
        "cost of equity",
    )?;
    let after_tax_cost_of_debt = mul(
        c.pre_tax_cost_of_debt,
        sub(
            Decimal::ONE,
            inputs.adjustments.tax_rate,
            "after-tax cost of debt",
        )?,
        "after-tax cost of debt",
    )?;
    let wacc = add(
        mul(
            sub(Decimal::ONE, c.debt_weight, "WACC")?,
            cost_of_equity,
            "WACC",
        )?,
        mul(c.debt_weight, after_tax_cost_of_debt, "WACC")?,
        "WACC",
    )?;
    Ok(CapitalCost {
        cost_of_equity,
        after_tax_cost_of_debt,
        wacc,
    })
}

/// Equity value and value per share from a value of operations.
fn to_equity(
    inputs: &ValuationInputs,
    operations: Decimal,
) -> Result<(Decimal, Decimal), ValuationError> {
    let k = &inputs.claims;
    let plus = add(k.excess_cash, k.non_operating_assets, "equity value")?;
    let minus = add(k.debt, k.other_claims, "equity value")?;
    let equity = sub(
        add(operations, plus, "equity value")?,
        minus,
        "equity value",
    )?;
    let per_share = div(equity, k.diluted_shares, "value per share")?;
    Ok((equity, per_share))
}

fn nopat_at(
    inputs: &ValuationInputs,
    margin: Decimal,
    revenue: Decimal,
) -> Result<(Decimal, Decimal, Decimal), ValuationError> {
    let operating = mul(margin, revenue, "normalised operating income")?;
    let taxes = mul(operating, inputs.adjustments.tax_rate, "taxes")?;
    let nopat = sub(operating, taxes, "NOPAT")?;
    Ok((operating, taxes, nopat))
}

fn epv_at(nopat: Decimal, wacc: Decimal) -> Result<Decimal, ValuationError> {
    if wacc <= Decimal::ZERO {
        return Err(ValuationError::invalid(
            "cost_of_capital",
            "the resulting WACC must be positive",
        ));
    }
    div(nopat, wacc, "EPV of operations")
}

fn normalised_revenue(inputs: &ValuationInputs) -> Result<Decimal, ValuationError> {
    match inputs.adjustments.normalised_revenue {
        Some(r) => Ok(r),
        None => {
            let revenues: Vec<Decimal> = inputs.fiscal_years.iter().map(|y| y.revenue).collect();
            mean(&revenues, "normalised revenue")
        }
    }
}

/// Values a case: validates the inputs, then computes every figure of the
/// EPV method (see the crate docs for the formulas).
pub fn value(inputs: &ValuationInputs) -> Result<Valuation, ValuationError> {
    inputs.validate()?;
    let years = adjust_years(inputs)?;
    let margins: Vec<Decimal> = years.iter().map(|y| y.adjusted_margin).collect();
    let normalised_margin = mean(&margins, "normalised margin")?;
    let normalised_revenue = normalised_revenue(inputs)?;
    let (normalised_operating_income, taxes, nopat) =
        nopat_at(inputs, normalised_margin, normalised_revenue)?;
    let capital = cost_of_capital(inputs)?;
    let epv_operations = epv_at(nopat, capital.wacc)?;
    let (equity_value, value_per_share) = to_equity(inputs, epv_operations)?;

    let mut reproduction_value = Decimal::ZERO;
    for line in &inputs.reproduction {
        reproduction_value = add(
            reproduction_value,
            line.reproduction_value,
            "reproduction value",
        )?;
    }
    let franchise_value = sub(epv_operations, reproduction_value, "franchise value")?;

    let growth = match &inputs.growth {
        None => None,
        Some(g) => {
            if g.growth_rate >= capital.wacc {
                return Err(ValuationError::GrowthNotBelowWacc {
                    growth: g.growth_rate,
                    wacc: capital.wacc,
                });
            }
            let reinvestment = div(g.growth_rate, g.return_on_invested_capital, "growth value")?;
            let distributable = mul(
                nopat,
                sub(Decimal::ONE, reinvestment, "growth value")?,
                "growth value",
            )?;
            let value_of_operations = div(
                distributable,
                sub(capital.wacc, g.growth_rate, "growth value")?,
                "growth value",
            )?;
            let (equity_value, value_per_share) = to_equity(inputs, value_of_operations)?;
            Some(GrowthValue {
                value_of_operations,
                equity_value,
                value_per_share,
                value_of_growth: sub(value_of_operations, epv_operations, "value of growth")?,
            })
        }
    };

    let margin_of_safety = match inputs.current_price {
        Some(price) if value_per_share > Decimal::ZERO => Some(div(
            sub(value_per_share, price, "margin of safety")?,
            value_per_share,
            "margin of safety",
        )?),
        _ => None,
    };

    Ok(Valuation {
        currency: inputs.currency.clone(),
        years,
        normalised_margin,
        normalised_revenue,
        normalised_operating_income,
        taxes,
        nopat,
        capital,
        epv_operations,
        equity_value,
        value_per_share,
        reproduction_value,
        franchise_value,
        growth,
        margin_of_safety,
    })
}

/// EPV equity value per share for every combination of a cost of capital
/// (rows) and a normalised margin (columns), the other inputs as given.
pub fn sensitivity(
    inputs: &ValuationInputs,
    waccs: &[Decimal],
    margins: &[Decimal],
) -> Result<SensitivityGrid, ValuationError> {
    inputs.validate()?;
    if waccs.is_empty() || margins.is_empty() || waccs.len() > 50 || margins.len() > 50 {
        return Err(ValuationError::invalid(
            "sensitivity",
            "needs 1 to 50 costs of capital and 1 to 50 margins",
        ));
    }
    let revenue = normalised_revenue(inputs)?;
    let mut values = Vec::with_capacity(waccs.len());
    for wacc in waccs {
        let mut row = Vec::with_capacity(margins.len());
        for margin in margins {
            let (_, _, nopat) = nopat_at(inputs, *margin, revenue)?;
            let (_, per_share) = to_equity(inputs, epv_at(nopat, *wacc)?)?;
            row.push(per_share);
        }
        values.push(row);
    }
    Ok(SensitivityGrid {
        waccs: waccs.to_vec(),
        margins: margins.to_vec(),
        values,
    })
}
