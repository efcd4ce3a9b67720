//! # rampart-valuation
//!
//! Earnings Power Value (EPV) in Bruce Greenwald's method, for EPV-style
//! valuation cases: what a business is worth if today's sustainable
//! earnings last forever with no growth, compared with what its assets
//! would cost to reproduce and with what growth would add. Every amount is
//! an exact [`Decimal`]; nothing panics (an overflow is a
//! [`ValuationError::Overflow`]); no I/O.
//!
//! The method, as [`value`] computes it:
//!
//! 1. Each fiscal year's operating income is adjusted: `+ one-off charges`
//!    `+ excess depreciation (D&A − maintenance capex)` `+ the growth share
//!    of SG&A and R&D`; its margin is that over revenue.
//! 2. The **normalised margin** is the mean over the cycle; × the
//!    normalised revenue (the cycle's mean unless given) is the normalised
//!    operating income; after tax it is **NOPAT**.
//! 3. **WACC** = `(1 − w_d) × (r_f + β × ERP) + w_d × k_d × (1 − t)`.
//! 4. **EPV of operations** = `NOPAT / WACC`; **equity** = `EPV + excess
//!    cash + non-operating assets − debt − other claims`; **per share** on
//!    diluted shares.
//! 5. **Reproduction value** = the sum of the balance-sheet lines at
//!    reproduction cost; **franchise value** = `EPV − reproduction value`.
//! 6. **Growth value** (optional) = `NOPAT × (1 − g/ROIC) / (WACC − g)`,
//!    only for `g < WACC`.
//! 7. **Margin of safety** = `(value per share − price) / value per share`.
//!
//! [`sensitivity`] gives the per-share EPV over a grid of WACC × margin.
//!
//! ```
//! use rampart_valuation::{value, ValuationInputs};
//!
//! let inputs: ValuationInputs = serde_json::from_value(serde_json::json!({
//!     "currency": "USD",
//!     "fiscal_years": [
//!         {"year": 2023, "revenue": "1000", "operating_income": "120",
//!          "depreciation_amortization": "40", "maintenance_capex": "40"},
//!         {"year": 2024, "revenue": "1000", "operating_income": "80",
//!          "depreciation_amortization": "40", "maintenance_capex": "40"}
//!     ],
//!     "adjustments": {"tax_rate": "0.25"},
//!     "cost_of_capital": {"risk_free_rate": "0.04", "beta": "1",
//!         "equity_risk_premium": "0.06", "pre_tax_cost_of_debt": "0.05",
//!         "debt_weight": "0"},
//!     "claims": {"excess_cash": "50", "debt": "200", "diluted_shares": "10"},
//!     "current_price": "50"
//! })).unwrap();
//!
//! let v = value(&inputs).unwrap();
//! // margin 10 % of 1000, 25 % tax: NOPAT 75; WACC 10 %: EPV 750.
//! assert_eq!(v.nopat.normalize().to_string(), "75");
//! assert_eq!(v.epv_operations.normalize().to_string(), "750");
//! // 750 + 50 − 200 = 600 over 10 shares; price 50 leaves a 1/6 margin of safety.
//! assert_eq!(v.value_per_share.normalize().to_string(), "60");
//! assert!(v.margin_of_safety.unwrap() > rust_decimal::Decimal::new(16, 2));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod epv;
mod error;
mod inputs;

pub use epv::{
    AdjustedYear, CapitalCost, GrowthValue, SensitivityGrid, Valuation, cost_of_capital,
    sensitivity, value,
};
pub use error::ValuationError;
pub use inputs::{
    Claims, CostOfCapital, EarningsAdjustments, FiscalYear, GrowthAssumption, ReproductionLine,
    ValuationInputs,
};
pub use rust_decimal::Decimal;
