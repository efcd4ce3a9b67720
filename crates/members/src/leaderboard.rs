//! The leaderboard of a tenant: return and P&L over a day, a week or a month
//! from the snapshot job's daily rows, without members who opted out.
use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel::dsl::max;
use diesel::prelude::*;
use diesel::sql_types::{Array, Date, Double, Integer, Nullable, Numeric, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use rampart_auth::directory;
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::schema::leaderboard_daily;
use crate::{Members, MembersError};

/// The window a leaderboard ranks over, ending on its `as_of` day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// That day against the previous close.
    Day,
    /// The last 7 days.
    Week,
    /// The last 30 days.
    Month,
}

impl Period {
    fn days(self) -> i32 {
        match self {
            Period::Day => 1,
            Period::Week => 7,
            Period::Month => 30,
        }
    }
}

/// What to rank by (descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LeaderboardSort {
    /// Relative return.
    #[default]
    Return,
    /// Profit and loss in account currency.
    Pnl,
}

/// One ranked member.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderboardEntry {
    /// 1-based rank.
    pub rank: i32,
    /// The member.
    pub member_id: UserId,
    /// Display name.
    pub name: String,
    /// Equity at the end of the window (exact).
    #[serde(serialize_with = "rampart_amount::serialize")]
    pub equity: Decimal,
    /// P&L over the window (exact).
    #[serde(serialize_with = "rampart_amount::serialize")]
    pub pnl: Decimal,
    /// Return over the window, a ratio (none when the start equity was zero).
    pub return_pct: Option<f64>,
}

#[derive(QueryableByName)]
struct EntryRow {
    #[diesel(sql_type = Integer)]
    rank: i32,
    #[diesel(sql_type = SqlUuid)]
    member_id: UserId,
    #[diesel(sql_type = Numeric)]
    equity: Decimal,
    #[diesel(sql_type = Numeric)]
    pnl: Decimal,
    #[diesel(sql_type = Nullable<Double>)]
    return_pct: Option<f64>,
}

impl EntryRow {
    /// The entry, with the member's display name.
    fn entry(self, name: String) -> LeaderboardEntry {
        let r = self;
        LeaderboardEntry {
            rank: r.rank,
            member_id: r.member_id,
            name,
            equity: r.equity.normalize(),
            pnl: r.pnl.normalize(),
            return_pct: r.return_pct,
        }
    }
}

/// A page of a leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderboardPage {
    /// The last day of the window (none when there are no snapshots yet).
    pub as_of: Option<NaiveDate>,
    /// The window.
    pub period: Period,
    /// Ranked by.
    pub sort: LeaderboardSort,
    /// The entries.
    pub entries: Vec<LeaderboardEntry>,
    /// Offset of the next page, if any.
    #[serde(skip)]
    pub next_offset: Option<usize>,
}

impl Members {
    /// Members with a snapshot on `as_of` (default: the latest day with any),
    /// ranked by `sort` over `period`; `offset`/`limit` (1–100) page it.
    pub async fn leaderboard(
        &self,
        tenant: &TenantSlug,
        period: Period,
        sort: LeaderboardSort,
        as_of: Option<NaiveDate>,
        offset: usize,
        limit: usize,
    ) -> Result<LeaderboardPage, MembersError> {
        let limit = limit.clamp(1, 100);
        let fetch = i32::try_from(limit + 1).unwrap_or(101);
        let offset_i = i32::try_from(offset)
            .map_err(|_| MembersError::invalid("cursor", "offset out of range"))?;
        // Fixed SQL per variant: nothing from the request is spliced in.
        let order = match sort {
            LeaderboardSort::Return => "return_pct DESC NULLS LAST, pnl DESC",
            LeaderboardSort::Pnl => "pnl DESC, return_pct DESC NULLS LAST",
        };
        self.pool
            .with_tenant(tenant, async |conn| {
                let as_of = match as_of {
                    Some(d) => Some(d),
                    None => {
                        leaderboard_daily::table
                            .select(max(leaderboard_daily::date))
                            .get_result::<Option<NaiveDate>>(conn)
                            .await?
                    }
                };
                let Some(day) = as_of else {
                    return Ok(LeaderboardPage {
                        as_of: None,
                        period,
                        sort,
                        entries: Vec::new(),
                        next_offset: None,
                    });
                };
                // Who is ranked is this crate's; who left the board, and names,
                // are the accounts' (rampart-auth).
                let on_day: Vec<UserId> = leaderboard_daily::table
                    .filter(leaderboard_daily::date.eq(day))
                    .select(leaderboard_daily::user_id)
                    .load(conn)
                    .await?;
                let opted_out = directory::leaderboard_opt_outs(conn, &on_day).await?;
                // raw SQL: per-member first/last values (`array_agg(… ORDER BY …)[1]`) and a ranking window.
                let rows: Vec<EntryRow> = diesel::sql_query(format!(
                    "WITH agg AS ( \
                       SELECT user_id, \
                         (array_agg(equity ORDER BY date DESC))[1] AS end_equity, \
                         (array_agg(last_equity ORDER BY date ASC))[1] AS start_equity, \
                         max(date) AS last_date \
                       FROM leaderboard_daily WHERE date > $1 - $2 AND date <= $1 GROUP BY user_id), \
                     ranked AS ( \
                       SELECT a.user_id AS member_id, a.end_equity AS equity, \
                         a.end_equity - a.start_equity AS pnl, \
                         CASE WHEN a.start_equity > 0 \
                           THEN ((a.end_equity - a.start_equity) / a.start_equity)::float8 END AS return_pct \
                       FROM agg a WHERE a.last_date = $1 AND a.user_id <> ALL($5)) \
                     SELECT (row_number() OVER (ORDER BY {order}, member_id))::int AS rank, \
                       member_id, equity, pnl, return_pct \
                     FROM ranked ORDER BY {order}, member_id LIMIT $3 OFFSET $4"
                ))
                .bind::<Date, _>(day)
                .bind::<Integer, _>(period.days())
                .bind::<Integer, _>(fetch)
                .bind::<Integer, _>(offset_i)
                .bind::<Array<SqlUuid>, _>(&opted_out)
                .load(conn)
                .await?;
                let ids: Vec<UserId> = rows.iter().map(|r| r.member_id).collect();
                let mut names = directory::display_names(conn, &ids).await?;
                let mut entries: Vec<LeaderboardEntry> = rows
                    .into_iter()
                    .map(|r| {
                        let name = names.remove(&r.member_id).unwrap_or_default();
                        r.entry(name)
                    })
                    .collect();
                let more = entries.len() > limit;
                entries.truncate(limit);
                Ok(LeaderboardPage {
                    as_of: Some(day),
                    period,
                    sort,
                    next_offset: more.then_some(offset + limit),
                    entries,
                })
            })
            .await
    }
}
