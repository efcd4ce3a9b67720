//! Ingestion: fill the L3 store through the chain (so breakers, fallbacks and
//! each provider's rate limiter apply), reporting what happened per symbol.

use chrono::{Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::chain::ProviderChain;
use crate::error::{MarketError, Result};
use crate::model::{check_range, normalize_symbol};
use crate::validate::Rejections;

/// What ingestion did for one symbol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// The symbol.
    pub symbol: String,
    /// First date asked for.
    pub from: Option<NaiveDate>,
    /// Last date asked for.
    pub to: Option<NaiveDate>,
    /// Date ranges fetched from providers (ranges already stored are skipped).
    pub ranges_fetched: usize,
    /// Bars received from providers.
    pub fetched: u64,
    /// New rows stored.
    pub inserted: u64,
    /// Stored rows whose values changed.
    pub updated: u64,
    /// Rows received again with the same values.
    pub unchanged: u64,
    /// Rows dropped by validation, by reason.
    pub rejected: Rejections,
    /// The provider that served the last range fetched.
    pub provider: Option<String>,
    /// Why (part of) the range could not be fetched.
    pub error: Option<String>,
}

impl IngestReport {
    /// Rows dropped by validation.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.total()
    }
}

/// Splits `from..=to` into calendar-year pieces (for progress reporting and
/// to keep vendor responses small).
pub fn year_chunks(from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let mut chunks = Vec::new();
    let mut start = from;
    while start <= to {
        let year_end = NaiveDate::from_ymd_opt(start.year(), 12, 31).unwrap_or(to);
        let end = year_end.min(to);
        chunks.push((start, end));
        match end.checked_add_days(Days::new(1)) {
            Some(next) => start = next,
            None => break,
        }
    }
    chunks
}

impl ProviderChain {
    /// Fetches the bars of `symbol` in `from..=to` that the store does not
    /// have yet, and upserts them.
    pub async fn backfill(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<IngestReport> {
        let symbol = normalize_symbol(symbol)?;
        check_range(from, to)?;
        let store = self
            .inner
            .store
            .as_ref()
            .ok_or_else(|| MarketError::Config("ingestion needs the L3 store".into()))?;
        let fill = self.inner.fill_missing(store, &symbol, from, to).await?;
        self.evict_l1(&symbol);
        Ok(IngestReport {
            symbol,
            from: Some(from),
            to: Some(to),
            ranges_fetched: fill.ranges_fetched,
            fetched: fill.fetched,
            inserted: fill.counts.inserted,
            updated: fill.counts.updated,
            unchanged: fill.counts.unchanged,
            rejected: fill.rejected,
            provider: fill.provider,
            error: fill.error.map(|e| e.to_string()),
        })
    }

    /// Backfills in yearly chunks, calling `progress` after each chunk with
    /// the running report.
    pub async fn backfill_with_progress(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
        mut progress: impl FnMut(&IngestReport),
    ) -> Result<IngestReport> {
        check_range(from, to)?;
        let mut total = IngestReport {
            symbol: normalize_symbol(symbol)?,
            from: Some(from),
            to: Some(to),
            ..IngestReport::default()
        };
        for (a, b) in year_chunks(from, to) {
            let part = self.backfill(symbol, a, b).await?;
            total.ranges_fetched += part.ranges_fetched;
            total.fetched += part.fetched;
            total.inserted += part.inserted;
            total.updated += part.updated;
            total.unchanged += part.unchanged;
            total.rejected.add(&part.rejected);
            if part.provider.is_some() {
                total.provider = part.provider;
            }
            if total.error.is_none() {
                total.error = part.error;
            }
            progress(&total);
        }
        Ok(total)
    }

    /// Brings each symbol up to today: from the day after its newest stored
    /// bar (or `update_lookback_days` back for a new symbol). One report per
    /// symbol; a failing symbol does not stop the others.
    pub async fn update_daily(&self, symbols: &[String]) -> Vec<IngestReport> {
        let today = Utc::now().date_naive();
        let mut reports = Vec::with_capacity(symbols.len());
        for raw in symbols {
            let report = async {
                let symbol = normalize_symbol(raw)?;
                let store =
                    self.inner.store.as_ref().ok_or_else(|| {
                        MarketError::Config("ingestion needs the L3 store".into())
                    })?;
                let from = match store.latest_date(&symbol).await? {
                    Some(latest) => latest
                        .checked_add_days(Days::new(1))
                        .unwrap_or(latest)
                        .min(today),
                    None => today
                        .checked_sub_days(Days::new(u64::from(self.inner.update_lookback_days)))
                        .unwrap_or(today),
                };
                self.backfill(&symbol, from, today).await
            }
            .await;
            reports.push(report.unwrap_or_else(|e: MarketError| IngestReport {
                symbol: raw.clone(),
                error: Some(e.to_string()),
                ..IngestReport::default()
            }));
        }
        reports
    }
}
