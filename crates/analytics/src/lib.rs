//! # rampart-analytics
//!
//! Portfolio performance and risk analytics: the numbers a portfolio product
//! shows its users, computed to match the reference Python library
//! [empyrical](https://github.com/stefan-jansen/empyrical-reloaded) to 1e-9
//! and far faster.
//!
//! * Return and ratio metrics over plain slices of periodic simple returns:
//!   [`cum_returns`], [`cum_returns_final`], [`annual_return`],
//!   [`annual_volatility`], [`sharpe_ratio`], [`sortino_ratio`],
//!   [`downside_risk`], [`max_drawdown`] (with [`max_drawdown_details`]),
//!   [`calmar_ratio`], [`omega_ratio`], [`tail_ratio`],
//!   [`stability_of_timeseries`], [`alpha_beta`], [`excess_sharpe`],
//!   [`correlation_matrix`].
//! * Value at risk: [`value_at_risk`], [`conditional_value_at_risk`],
//!   [`gaussian_value_at_risk`], [`cornish_fisher_value_at_risk`],
//!   [`monte_carlo_value_at_risk`] (seeded ChaCha8, reproducible).
//! * Accounts with cash flows: [`cash_flow::time_weighted_return`],
//!   [`cash_flow::modified_dietz`], [`cash_flow::xirr`].
//! * O(n) rolling windows: [`rolling`].
//! * Prices to returns and calendar aggregation: [`simple_returns`],
//!   [`log_returns`], [`Series::aggregate_returns`].
//! * The full metric set for many series on all cores:
//!   [`metrics::compute_metrics_batch`]; the CSV→JSON report behind
//!   `rampart analytics`: [`report::run_csv`].
//!
//! Every function follows empyrical's conventions by default and documents
//! them; where libraries disagree, the `*_with` variants take a
//! [`Conventions`] profile ([`Conventions::empyrical`] or
//! [`Conventions::performance_analytics`]). Undefined results are NaN, as in
//! empyrical; structural problems are an [`AnalyticsError`]; nothing panics.
//!
//! ```
//! use rampart_analytics::{Period, annual_return, max_drawdown, sharpe_ratio, simple_returns};
//!
//! let prices = [100.0, 102.0, 99.0, 101.0, 105.0, 104.0];
//! let returns = simple_returns(&prices);
//! assert_eq!(returns.len(), 5);
//!
//! let mdd = max_drawdown(&returns);
//! assert!((mdd - (99.0 / 102.0 - 1.0)).abs() < 1e-12);
//!
//! let sharpe = sharpe_ratio(&returns, 0.0, Period::Daily);
//! assert!(sharpe > 0.0);
//! assert!(annual_return(&returns, Period::Daily) > 0.0);
//!
//! // Empty input is NaN, never a panic.
//! assert!(sharpe_ratio(&[], 0.0, Period::Daily).is_nan());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cash_flow;
pub mod conventions;
mod correlation;
pub mod drawdown;
mod error;
mod fused;
pub mod metrics;
pub mod moments;
pub mod normal;
pub mod performance;
mod period;
pub mod report;
pub mod returns;
pub mod risk;
pub mod rolling;
mod series;

pub use conventions::Conventions;
pub use correlation::correlation_matrix;
pub use drawdown::{DrawdownDetails, drawdown_series, max_drawdown, max_drawdown_details};
pub use error::AnalyticsError;
pub use moments::{kurtosis, skew};
pub use performance::{
    alpha, alpha_beta, annual_return, annual_volatility, beta, calmar_ratio, downside_risk,
    excess_sharpe, omega_ratio, sharpe_ratio, sortino_ratio, stability_of_timeseries, tail_ratio,
};
pub use period::Period;
pub use returns::{cum_returns, cum_returns_final, log_returns, simple_returns};
pub use risk::{
    conditional_value_at_risk, cornish_fisher_value_at_risk, gaussian_conditional_value_at_risk,
    gaussian_value_at_risk, monte_carlo_value_at_risk, value_at_risk,
};
pub use series::{DatedDrawdown, Frequency, Series};
