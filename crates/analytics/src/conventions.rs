//! The choices on which analytics libraries disagree, as explicit settings.
//!
//! Every metric function in this crate follows empyrical by default. The
//! `*_with` variants take a [`Conventions`] value; two profiles are provided:
//! [`Conventions::empyrical`] (the default) and
//! [`Conventions::performance_analytics`] (R's PerformanceAnalytics).
//!
//! | setting | empyrical | PerformanceAnalytics |
//! |---|---|---|
//! | [`RiskFreeRate`] | per period | per period (`Rf`) |
//! | [`SharpeNumerator`] | arithmetic mean × periods | geometric: `Return.annualized` of excess returns (`SharpeRatio.annualized(geometric = TRUE)`) |
//! | [`DownsideDenominator`] | all observations (`"full"`) | all observations (`DownsideDeviation` default `"full"`) |
//! | [`RatioScale`] for Sortino | annualized | per period (`SortinoRatio`) |
//! | [`CagrYears`] | observations / periods | observations / periods (`Return.annualized`) |
//! | [`AlphaAnnualization`] | compounded `(1 + ᾱ)^p − 1` | per period (`CAPM.alpha`) |
//! | [`OmegaThreshold`] | required return is annual, de-annualized geometrically | `L` is per period (`Omega`) |
//! | [`CornishFisherMoments`] | population skew/kurtosis (scipy default) | `M3`/`M4` over the sample s.d. (`VaR(method = "modified")`) |
//! | [`QuantileMethod`] | linear (numpy default) | linear (R `quantile` type 7) |

/// How the risk-free rate argument is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RiskFreeRate {
    /// The rate is already per period and is subtracted as given (empyrical, PerformanceAnalytics).
    #[default]
    PerPeriod,
    /// The rate is annual and is de-annualized as `(1 + rf)^(1/p) − 1` (quantstats).
    Annual,
}

/// Numerator of the annualized Sharpe ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharpeNumerator {
    /// `mean(excess) / sd(excess) × √p` (empyrical).
    #[default]
    Arithmetic,
    /// `CAGR(excess) / (sd(excess) × √p)` (PerformanceAnalytics `SharpeRatio.annualized`, default `geometric = TRUE`).
    Geometric,
}

/// Denominator of downside deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownsideDenominator {
    /// Divide the sum of squared shortfalls by all (non-NaN) observations (empyrical; PerformanceAnalytics `"full"`).
    #[default]
    AllObservations,
    /// Divide by the number of observations strictly below the target (PerformanceAnalytics `"subset"`).
    BelowTarget,
}

/// Whether a ratio is annualized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RatioScale {
    /// Annualized (empyrical).
    #[default]
    Annualized,
    /// Per period, not annualized (PerformanceAnalytics `SortinoRatio`).
    PerPeriod,
}

/// How many years a series spans, for the CAGR.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum CagrYears {
    /// Number of observations divided by the annualization factor (empyrical, PerformanceAnalytics).
    #[default]
    Observations,
    /// Calendar days between the first and last dates divided by this many days
    /// (quantstats uses 365). Only a dated [`Series`](crate::Series) can use it;
    /// slice functions fall back to `Observations`.
    CalendarDays(f64),
}

/// How the per-period regression alpha is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlphaAnnualization {
    /// `(1 + ᾱ)^p − 1` (empyrical).
    #[default]
    Compounded,
    /// `ᾱ × p`.
    Linear,
    /// `ᾱ` as is (PerformanceAnalytics `CAPM.alpha`).
    PerPeriod,
}

/// How Omega's required return is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OmegaThreshold {
    /// Annual, converted to `(1 + r)^(1/p) − 1` per period (empyrical).
    #[default]
    Annual,
    /// Already per period (PerformanceAnalytics `Omega(L = ...)`).
    PerPeriod,
}

/// Moments used in the Cornish–Fisher expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CornishFisherMoments {
    /// Population skewness `m3/m2^1.5` and excess kurtosis `m4/m2² − 3`
    /// (scipy defaults, as empyrical reports them); sample s.d. (ddof 1) as scale.
    #[default]
    Population,
    /// PerformanceAnalytics: `m3/s³` and `m4/s⁴ − 3` where the central moments
    /// divide by n but `s` is the sample s.d. (ddof 1), as `VaR(method = "modified")`.
    PerformanceAnalytics,
    /// Adjusted sample skewness G1 and excess kurtosis G2; sample s.d.
    Sample,
}

/// Interpolation between order statistics for historical quantiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuantileMethod {
    /// Linear interpolation at `(n − 1)·q` (numpy default, R type 7).
    #[default]
    Linear,
    /// The order statistic below `(n − 1)·q`.
    Lower,
    /// The order statistic above `(n − 1)·q`.
    Higher,
}

/// The full set of convention choices; see the module docs for the profiles.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Conventions {
    /// Interpretation of the risk-free rate.
    pub risk_free: RiskFreeRate,
    /// Sharpe ratio numerator.
    pub sharpe_numerator: SharpeNumerator,
    /// Downside deviation denominator (Sortino, downside risk).
    pub downside_denominator: DownsideDenominator,
    /// Sortino ratio scale.
    pub sortino_scale: RatioScale,
    /// Years used by the CAGR.
    pub cagr_years: CagrYears,
    /// Alpha reporting.
    pub alpha: AlphaAnnualization,
    /// Omega threshold.
    pub omega_threshold: OmegaThreshold,
    /// Cornish–Fisher moments.
    pub cornish_fisher: CornishFisherMoments,
    /// Historical quantile interpolation.
    pub quantile: QuantileMethod,
}

impl Conventions {
    /// empyrical's conventions (the default).
    pub const EMPYRICAL: Conventions = Conventions {
        risk_free: RiskFreeRate::PerPeriod,
        sharpe_numerator: SharpeNumerator::Arithmetic,
        downside_denominator: DownsideDenominator::AllObservations,
        sortino_scale: RatioScale::Annualized,
        cagr_years: CagrYears::Observations,
        alpha: AlphaAnnualization::Compounded,
        omega_threshold: OmegaThreshold::Annual,
        cornish_fisher: CornishFisherMoments::Population,
        quantile: QuantileMethod::Linear,
    };

    /// R PerformanceAnalytics' conventions.
    pub const PERFORMANCE_ANALYTICS: Conventions = Conventions {
        risk_free: RiskFreeRate::PerPeriod,
        sharpe_numerator: SharpeNumerator::Geometric,
        downside_denominator: DownsideDenominator::AllObservations,
        sortino_scale: RatioScale::PerPeriod,
        cagr_years: CagrYears::Observations,
        alpha: AlphaAnnualization::PerPeriod,
        omega_threshold: OmegaThreshold::PerPeriod,
        cornish_fisher: CornishFisherMoments::PerformanceAnalytics,
        quantile: QuantileMethod::Linear,
    };

    /// empyrical's conventions (the default).
    pub const fn empyrical() -> Self {
        Self::EMPYRICAL
    }

    /// R PerformanceAnalytics' conventions.
    pub const fn performance_analytics() -> Self {
        Self::PERFORMANCE_ANALYTICS
    }

    /// The per-period risk-free rate for a rate given under these conventions.
    pub fn per_period_risk_free(&self, risk_free: f64, annualization: f64) -> f64 {
        match self.risk_free {
            RiskFreeRate::PerPeriod => risk_free,
            RiskFreeRate::Annual => (1.0 + risk_free).powf(1.0 / annualization) - 1.0,
        }
    }

    /// The periods per year of `period` and the per-period risk-free rate
    /// for `risk_free` ([`Self::per_period_risk_free`]): what every
    /// risk-adjusted ratio starts from.
    pub(crate) fn rates(&self, risk_free: f64, period: crate::Period) -> (f64, f64) {
        let annualization = period.annualization();
        let per_period = self.per_period_risk_free(risk_free, annualization);
        (annualization, per_period)
    }

    /// Omega's per-period threshold (before the risk-free rate is added) for
    /// `required_return` with `annualization` periods a year; `None` when an
    /// annual required return is −100 % or less (Omega is then NaN).
    pub(crate) fn omega_threshold(&self, required_return: f64, annualization: f64) -> Option<f64> {
        match self.omega_threshold {
            OmegaThreshold::PerPeriod => Some(required_return),
            OmegaThreshold::Annual if annualization == 1.0 => Some(required_return),
            OmegaThreshold::Annual if required_return <= -1.0 => None,
            OmegaThreshold::Annual => Some((1.0 + required_return).powf(1.0 / annualization) - 1.0),
        }
    }
}
