//! Checks on what vendors send back: bad rows are dropped and counted, never stored.

use std::collections::HashSet;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use rampart_amount::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{MarketError, Result};
use crate::model::{Bar, Quote};

/// How many bars were dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejections {
    /// A price was NaN or infinite. Prices are exact decimals since
    /// 2026-12, so a vendor's non-number is refused where its answer is
    /// read and no bar can hold one: always 0, kept so that reports keep
    /// their shape.
    pub not_finite: u64,
    /// A price was zero or negative.
    pub not_positive: u64,
    /// `high < low`.
    pub high_below_low: u64,
    /// The date is after today.
    pub future: u64,
    /// The date appeared earlier in the same response.
    pub duplicate: u64,
}

impl Rejections {
    /// All dropped rows.
    pub fn total(&self) -> u64 {
        self.not_finite + self.not_positive + self.high_below_low + self.future + self.duplicate
    }

    /// Adds another tally to this one.
    pub fn add(&mut self, other: &Rejections) {
        self.not_finite += other.not_finite;
        self.not_positive += other.not_positive;
        self.high_below_low += other.high_below_low;
        self.future += other.future;
        self.duplicate += other.duplicate;
    }
}

/// Keeps the sound bars, sorted by date, and counts the others. The first bar
/// of a duplicated date wins.
pub fn validate_bars(bars: Vec<Bar>, today: NaiveDate) -> (Vec<Bar>, Rejections) {
    let mut rejections = Rejections::default();
    let mut seen = HashSet::with_capacity(bars.len());
    let mut kept = Vec::with_capacity(bars.len());
    for bar in bars {
        let prices = [
            Some(bar.open),
            Some(bar.high),
            Some(bar.low),
            Some(bar.close),
            bar.adj_close,
        ];
        if prices.iter().flatten().any(|p| *p <= Decimal::ZERO) {
            rejections.not_positive += 1;
        } else if bar.high < bar.low {
            rejections.high_below_low += 1;
        } else if bar.date > today {
            rejections.future += 1;
        } else if !seen.insert(bar.date) {
            rejections.duplicate += 1;
        } else {
            kept.push(bar);
        }
    }
    kept.sort_by_key(|b| b.date);
    (kept, rejections)
}

/// Rejects an unusable quote (bad price, timestamp in the future beyond a
/// minute of clock skew) as a malformed answer from `provider`.
pub fn validate_quote(provider: &str, quote: &Quote, now: DateTime<Utc>) -> Result<()> {
    if quote.price <= Decimal::ZERO || quote.previous_close.is_some_and(|p| p <= Decimal::ZERO) {
        return Err(MarketError::malformed(
            provider,
            format!("{}: price not positive", quote.symbol),
        ));
    }
    if quote.as_of > now + ChronoDuration::minutes(1) {
        return Err(MarketError::malformed(
            provider,
            format!(
                "{}: quote time {} is in the future",
                quote.symbol, quote.as_of
            ),
        ));
    }
    Ok(())
}
