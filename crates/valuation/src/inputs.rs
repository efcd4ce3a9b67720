//! What a valuation case holds: a company's fiscal years, the adjustments
//! an analyst chooses, the cost-of-capital assumptions and the claims on
//! the business.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ValuationError;

/// One fiscal year of reported figures, in the case's currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiscalYear {
    /// The fiscal year, e.g. 2024.
    pub year: i32,
    /// Revenue (net sales); must be positive.
    pub revenue: Decimal,
    /// Reported operating income (EBIT).
    pub operating_income: Decimal,
    /// Depreciation and amortisation charged in operating income.
    pub depreciation_amortization: Decimal,
    /// Capital spending needed only to maintain today's business.
    pub maintenance_capex: Decimal,
    /// Non-recurring charges included in operating income (added back);
    /// a non-recurring gain is negative.
    #[serde(default)]
    pub one_off_charges: Decimal,
    /// Selling, general and administrative expense.
    #[serde(default)]
    pub sga: Decimal,
    /// Research and development expense.
    #[serde(default)]
    pub research_development: Decimal,
}

/// How reported earnings are normalised into sustainable earnings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarningsAdjustments {
    /// Share of SG&A that is investment in growth rather than upkeep (0 to 1);
    /// it is added back to operating income.
    #[serde(default)]
    pub growth_share_of_sga: Decimal,
    /// Share of R&D that is investment in growth (0 to 1), added back likewise.
    #[serde(default)]
    pub growth_share_of_rnd: Decimal,
    /// Revenue the normalised margin applies to; the cycle's mean revenue
    /// when absent.
    #[serde(default)]
    pub normalised_revenue: Option<Decimal>,
    /// Tax rate on operating earnings (0 to below 1).
    pub tax_rate: Decimal,
}

/// The cost-of-capital assumptions: CAPM for equity, after-tax debt,
/// target weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostOfCapital {
    /// Risk-free rate, e.g. 0.04.
    pub risk_free_rate: Decimal,
    /// Equity beta.
    pub beta: Decimal,
    /// Equity risk premium, e.g. 0.05.
    pub equity_risk_premium: Decimal,
    /// Pre-tax cost of debt, e.g. 0.06.
    pub pre_tax_cost_of_debt: Decimal,
    /// Target weight of debt in the capital structure (0 to 1); equity's is
    /// the rest.
    pub debt_weight: Decimal,
}

/// Claims on the business between the value of operations and the value
/// per share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Cash beyond what operations need.
    #[serde(default)]
    pub excess_cash: Decimal,
    /// Assets outside operations (investments, idle land).
    #[serde(default)]
    pub non_operating_assets: Decimal,
    /// Interest-bearing debt.
    #[serde(default)]
    pub debt: Decimal,
    /// Other claims ahead of common equity (minorities, preferred, pension deficits).
    #[serde(default)]
    pub other_claims: Decimal,
    /// Diluted shares outstanding; must be positive.
    pub diluted_shares: Decimal,
}

/// One balance-sheet line restated at what it would cost to reproduce.
/// Liabilities that reduce the capital needed (payables, accruals) are
/// negative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReproductionLine {
    /// The line's name, e.g. `inventory` or `brand`.
    pub name: String,
    /// The value the balance sheet reports.
    pub book_value: Decimal,
    /// The analyst's reproduction cost for it.
    pub reproduction_value: Decimal,
}

/// A growth assumption for the growth-value variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrowthAssumption {
    /// Perpetual growth rate of NOPAT; must stay below the cost of capital.
    pub growth_rate: Decimal,
    /// Return on the capital invested to grow; must be positive.
    pub return_on_invested_capital: Decimal,
}

/// Everything one valuation needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuationInputs {
    /// ISO 4217 currency of every amount, e.g. `USD`.
    pub currency: String,
    /// The cycle of fiscal years to normalise over (at least one).
    pub fiscal_years: Vec<FiscalYear>,
    /// Earnings adjustments.
    pub adjustments: EarningsAdjustments,
    /// Cost-of-capital assumptions.
    pub cost_of_capital: CostOfCapital,
    /// Claims between operations and equity.
    pub claims: Claims,
    /// Balance-sheet lines at reproduction cost (may be empty).
    #[serde(default)]
    pub reproduction: Vec<ReproductionLine>,
    /// Optional growth assumption.
    #[serde(default)]
    pub growth: Option<GrowthAssumption>,
    /// Current share price, for the margin of safety.
    #[serde(default)]
    pub current_price: Option<Decimal>,
}

fn fraction(field: String, v: Decimal, upper_inclusive: bool) -> Result<(), ValuationError> {
    let ok = v >= Decimal::ZERO
        && if upper_inclusive {
            v <= Decimal::ONE
        } else {
            v < Decimal::ONE
        };
    if ok {
        Ok(())
    } else if upper_inclusive {
        Err(ValuationError::invalid(field, "must be between 0 and 1"))
    } else {
        Err(ValuationError::invalid(
            field,
            "must be at least 0 and below 1",
        ))
    }
}

fn positive(field: String, v: Decimal) -> Result<(), ValuationError> {
    if v > Decimal::ZERO {
        Ok(())
    } else {
        Err(ValuationError::invalid(field, "must be positive"))
    }
}

fn non_negative(field: String, v: Decimal) -> Result<(), ValuationError> {
    if v >= Decimal::ZERO {
        Ok(())
    } else {
        Err(ValuationError::invalid(field, "must not be negative"))
    }
}

impl ValuationInputs {
    /// Checks every input against the range the method defines it for; the
    /// first violation is returned with the input's path.
    pub fn validate(&self) -> Result<(), ValuationError> {
        let currency_ok =
            self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase());
        if !currency_ok {
            return Err(ValuationError::invalid(
                "currency",
                "must be a three-letter ISO 4217 code",
            ));
        }
        if self.fiscal_years.is_empty() {
            return Err(ValuationError::invalid(
                "fiscal_years",
                "must hold at least one year",
            ));
        }
        for (i, y) in self.fiscal_years.iter().enumerate() {
            positive(format!("fiscal_years[{i}].revenue"), y.revenue)?;
            non_negative(
                format!("fiscal_years[{i}].depreciation_amortization"),
                y.depreciation_amortization,
            )?;
            non_negative(
                format!("fiscal_years[{i}].maintenance_capex"),
                y.maintenance_capex,
            )?;
            non_negative(format!("fiscal_years[{i}].sga"), y.sga)?;
            non_negative(
                format!("fiscal_years[{i}].research_development"),
                y.research_development,
            )?;
            if self.fiscal_years[..i].iter().any(|p| p.year == y.year) {
                return Err(ValuationError::invalid(
                    format!("fiscal_years[{i}].year"),
                    "appears twice",
                ));
            }
        }
        let a = &self.adjustments;
        fraction(
            "adjustments.growth_share_of_sga".into(),
            a.growth_share_of_sga,
            true,
        )?;
        fraction(
            "adjustments.growth_share_of_rnd".into(),
            a.growth_share_of_rnd,
            true,
        )?;
        fraction("adjustments.tax_rate".into(), a.tax_rate, false)?;
        if let Some(r) = a.normalised_revenue {
            positive("adjustments.normalised_revenue".into(), r)?;
        }
        let c = &self.cost_of_capital;
        non_negative(
            "cost_of_capital.equity_risk_premium".into(),
            c.equity_risk_premium,
        )?;
        non_negative(
            "cost_of_capital.pre_tax_cost_of_debt".into(),
            c.pre_tax_cost_of_debt,
        )?;
        fraction("cost_of_capital.debt_weight".into(), c.debt_weight, true)?;
        let k = &self.claims;
        non_negative("claims.excess_cash".into(), k.excess_cash)?;
        non_negative("claims.non_operating_assets".into(), k.non_operating_assets)?;
        non_negative("claims.debt".into(), k.debt)?;
        non_negative("claims.other_claims".into(), k.other_claims)?;
        positive("claims.diluted_shares".into(), k.diluted_shares)?;
        if let Some(g) = &self.growth {
            positive(
                "growth.return_on_invested_capital".into(),
                g.return_on_invested_capital,
            )?;
            if g.growth_rate <= -Decimal::ONE {
                return Err(ValuationError::invalid(
                    "growth.growth_rate",
                    "must be above -1",
                ));
            }
        }
        if let Some(p) = self.current_price {
            positive("current_price".into(), p)?;
        }
        Ok(())
    }
}
