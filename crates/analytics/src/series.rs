//! A dated series of values (prices or returns).

use chrono::{Datelike, NaiveDate};

use crate::conventions::{CagrYears, Conventions};
use crate::drawdown::{DrawdownDetails, max_drawdown_details};
use crate::returns::{cum_returns, log_returns, simple_returns};
use crate::{AnalyticsError, Period};

/// Values observed on strictly increasing dates.
///
/// ```
/// use chrono::NaiveDate;
/// use rampart_analytics::{Frequency, Series};
/// let d = |m, day| NaiveDate::from_ymd_opt(2024, m, day).unwrap();
/// let prices = Series::new(vec![d(1, 30), d(1, 31), d(2, 1), d(2, 2)], vec![100.0, 110.0, 99.0, 108.9])?;
/// let returns = prices.simple_returns();
/// let monthly = returns.aggregate_returns(Frequency::Monthly);
/// assert_eq!(monthly.dates(), &[d(1, 31), d(2, 2)]);
/// assert!((monthly.values()[1] - -0.01).abs() < 1e-12);
/// # Ok::<(), rampart_analytics::AnalyticsError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    dates: Vec<NaiveDate>,
    values: Vec<f64>,
}

/// Calendar bucket for [`Series::aggregate_returns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// ISO weeks (ISO year, ISO week number), as empyrical groups them.
    Weekly,
    /// Calendar months.
    Monthly,
    /// Calendar quarters.
    Quarterly,
    /// Calendar years.
    Yearly,
}

impl Frequency {
    fn key(self, d: NaiveDate) -> (i32, u32) {
        match self {
            Frequency::Weekly => {
                let w = d.iso_week();
                (w.year(), w.week())
            }
            Frequency::Monthly => (d.year(), d.month()),
            Frequency::Quarterly => (d.year(), d.month().div_ceil(3)),
            Frequency::Yearly => (d.year(), 0),
        }
    }
}

/// [`DrawdownDetails`] with dates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatedDrawdown {
    /// The maximum drawdown (≤ 0).
    pub max_drawdown: f64,
    /// Date of the peak; `None` if the peak is the starting capital or there
    /// is no drawdown.
    pub peak: Option<NaiveDate>,
    /// Date of the trough; `None` if there is no drawdown.
    pub trough: Option<NaiveDate>,
    /// Date of recovery to the peak; `None` if not recovered.
    pub recovery: Option<NaiveDate>,
}

impl Series {
    /// Builds a series, checking equal lengths and strictly increasing dates.
    pub fn new(dates: Vec<NaiveDate>, values: Vec<f64>) -> Result<Self, AnalyticsError> {
        if dates.len() != values.len() {
            return Err(AnalyticsError::LengthMismatch {
                left: dates.len(),
                right: values.len(),
            });
        }
        if let Some(i) = dates.windows(2).position(|w| w[1] <= w[0]) {
            return Err(AnalyticsError::NonIncreasingDates { index: i + 1 });
        }
        Ok(Series { dates, values })
    }

    /// The dates.
    pub fn dates(&self) -> &[NaiveDate] {
        &self.dates
    }

    /// The values.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Number of observations.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True if there are no observations.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Simple returns of a price series, dated at the end of each step.
    pub fn simple_returns(&self) -> Series {
        Series {
            dates: self.dates.iter().skip(1).copied().collect(),
            values: simple_returns(&self.values),
        }
    }

    /// Log returns of a price series, dated at the end of each step.
    pub fn log_returns(&self) -> Series {
        Series {
            dates: self.dates.iter().skip(1).copied().collect(),
            values: log_returns(&self.values),
        }
    }

    /// Cumulative returns of a return series ([`cum_returns`]).
    pub fn cum_returns(&self) -> Series {
        Series {
            dates: self.dates.clone(),
            values: cum_returns(&self.values),
        }
    }

    /// Compounds returns into calendar buckets (empyrical `aggregate_returns`):
    /// each bucket is `∏(1 + r) − 1` with NaN counted as 0, dated at the last
    /// observation in the bucket.
    pub fn aggregate_returns(&self, frequency: Frequency) -> Series {
        let mut dates = Vec::new();
        let mut values = Vec::new();
        let mut current: Option<(i32, u32)> = None;
        let mut growth = 1.0;
        for (&d, &r) in self.dates.iter().zip(&self.values) {
            let key = frequency.key(d);
            if current.is_some_and(|k| k != key) {
                values.push(growth - 1.0);
                growth = 1.0;
            }
            if current != Some(key) {
                dates.push(d);
                current = Some(key);
            }
            if let Some(last) = dates.last_mut() {
                *last = d;
            }
            growth *= if r.is_nan() { 1.0 } else { 1.0 + r };
        }
        if current.is_some() {
            values.push(growth - 1.0);
        }
        Series { dates, values }
    }

    /// Maximum drawdown of a return series with the dates of its peak,
    /// trough and recovery.
    pub fn max_drawdown_details(&self) -> Result<DatedDrawdown, AnalyticsError> {
        let DrawdownDetails {
            max_drawdown,
            peak,
            trough,
            recovery,
        } = max_drawdown_details(&self.values)?;
        let at = |i: Option<usize>| i.and_then(|i| self.dates.get(i).copied());
        Ok(DatedDrawdown {
            max_drawdown,
            peak: at(peak),
            trough: at(trough),
            recovery: at(recovery),
        })
    }

    /// CAGR of a return series under `conventions` (which may count
    /// calendar days; see [`CagrYears`]).
    pub fn annual_return(&self, period: Period, conventions: &Conventions) -> f64 {
        match conventions.cagr_years {
            CagrYears::Observations => crate::annual_return(&self.values, period),
            CagrYears::CalendarDays(days_per_year) => {
                let (Some(first), Some(last)) = (self.dates.first(), self.dates.last()) else {
                    return f64::NAN;
                };
                let years = (*last - *first).num_days() as f64 / days_per_year;
                crate::returns::growth(&self.values).powf(1.0 / years) - 1.0
            }
        }
    }
}
