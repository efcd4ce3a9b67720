//! A member's own time series from the snapshot job's daily rows: equity,
//! cash, the number of positions, the day's P&L and the total P&L since the
//! member's first snapshot (the running sum of the daily P&L, exact
//! decimals), over a window of days.
use chrono::NaiveDate;
use diesel::dsl::sum;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::schema::portfolio_snapshots as s;
use crate::{Members, MembersError};

/// Longest window one request may ask for.
pub const MAX_SERIES_DAYS: i64 = 5 * 366;

/// One day of a member's series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// The snapshot's day.
    pub date: NaiveDate,
    /// Account equity at the snapshot.
    #[serde(serialize_with = "rampart_amount::serialize")]
    pub equity: Decimal,
    /// Cash at the snapshot.
    #[serde(serialize_with = "rampart_amount::serialize")]
    pub cash: Decimal,
    /// How many positions the account held.
    pub positions: usize,
    /// Equity against the previous close.
    #[serde(serialize_with = "rampart_amount::serialize")]
    pub daily_pnl: Decimal,
    /// The day's return, when the previous close was positive.
    pub daily_return: Option<f64>,
    /// The sum of the daily P&L from the member's first snapshot to this day.
    #[serde(serialize_with = "rampart_amount::serialize")]
    pub total_pnl: Decimal,
}

type Row = (
    NaiveDate,
    Decimal,
    Decimal,
    Decimal,
    Option<f64>,
    serde_json::Value,
);

impl Members {
    /// `member`'s snapshots from `from` to `to` (both included; default:
    /// [`MAX_SERIES_DAYS`] before `to`, and today), oldest first, at most
    /// [`MAX_SERIES_DAYS`] apart. Empty when the member has none.
    pub async fn member_series(
        &self,
        tenant: &TenantSlug,
        member: UserId,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<SeriesPoint>, MembersError> {
        let to = to.unwrap_or_else(|| chrono::Utc::now().date_naive());
        if let Some(from) = from {
            if from > to {
                return Err(MembersError::invalid("from", "must not be after to"));
            }
            if (to - from).num_days() > MAX_SERIES_DAYS {
                return Err(MembersError::invalid(
                    "from",
                    format!("at most {MAX_SERIES_DAYS} days before to"),
                ));
            }
        }
        let start = from.unwrap_or(to - chrono::Duration::days(MAX_SERIES_DAYS));
        self.pool
            .with_tenant(tenant, async |conn| {
                // The total P&L carried into the window.
                let before: Option<Decimal> = s::table
                    .filter(s::user_id.eq(member).and(s::snapshot_date.lt(start)))
                    .select(sum(s::daily_pnl))
                    .get_result(conn)
                    .await?;
                let rows: Vec<Row> = s::table
                    .filter(s::user_id.eq(member))
                    .filter(s::snapshot_date.ge(start).and(s::snapshot_date.le(to)))
                    .order(s::snapshot_date.asc())
                    .limit(MAX_SERIES_DAYS)
                    .select((
                        s::snapshot_date,
                        s::equity,
                        s::cash,
                        s::daily_pnl,
                        s::daily_return,
                        s::positions,
                    ))
                    .load(conn)
                    .await?;
                let mut total = before.unwrap_or_default();
                Ok(rows
                    .into_iter()
                    .map(|(date, equity, cash, daily_pnl, daily_return, positions)| {
                        total += daily_pnl;
                        SeriesPoint {
                            date,
                            equity,
                            cash,
                            positions: count(&positions),
                            daily_pnl,
                            daily_return: daily_return.filter(|r| r.is_finite()),
                            total_pnl: total,
                        }
                    })
                    .collect())
            })
            .await
    }
}

/// Positions in a snapshot's JSON (an array, or an object by symbol).
fn count(positions: &serde_json::Value) -> usize {
    match positions {
        serde_json::Value::Array(a) => a.len(),
        serde_json::Value::Object(o) => o.len(),
        _ => 0,
    }
}

/// The series as CSV (`date,equity,cash,positions,daily_pnl,daily_return,total_pnl`).
pub fn series_csv(points: &[SeriesPoint]) -> String {
    let mut out = String::from("date,equity,cash,positions,daily_pnl,daily_return,total_pnl\n");
    for p in points {
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            p.date,
            p.equity.normalize(),
            p.cash.normalize(),
            p.positions,
            p.daily_pnl.normalize(),
            p.daily_return.map(|r| r.to_string()).unwrap_or_default(),
            p.total_pnl.normalize(),
        ));
    }
    out
}
