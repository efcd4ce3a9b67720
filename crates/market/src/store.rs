//! The PostgreSQL store (L3): daily bars kept forever, the date ranges already
//! fetched, and the last quote of each symbol.
//!
//! **Decision: one shared `market` schema**, not the tenant template's
//! `prices_daily`. Prices of a listed instrument are the same for every
//! tenant; one copy means one fetch per symbol for the whole platform, and
//! tenant schemas stay free of vendor data (a tenant's own instruments would
//! live in its schema). The schema is created by the migrations in
//! `migrations/market/`, which this crate embeds and applies itself
//! ([`StoreProvider::migrate`]), recording versions in
//! `market.schema_migrations` under an advisory lock so that concurrent
//! servers do not race. Queries go through diesel's DSL (parameterized);
//! writes are `INSERT … ON CONFLICT DO UPDATE`.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel::dsl::{max, now, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Numeric};
use diesel::upsert::excluded;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde::{Deserialize, Serialize};

use rampart_amount::Decimal;

use crate::cache::CachedQuote;
use crate::error::{MarketError, Result};
use crate::model::{Bar, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;
use crate::schema::{fetched_ranges, prices_daily, quotes_latest, schema_migrations};

/// The connection pool the store uses.
pub type PgPool = Pool<AsyncPgConnection>;

/// The embedded migrations: (version, up.sql).
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "2025-06-01-000000_create_market_schema",
        include_str!("../migrations/2025-06-01-000000_create_market_schema/up.sql"),
    ),
    (
        "2026-12-03-183000_instruments",
        include_str!("../migrations/2026-12-03-183000_instruments/up.sql"),
    ),
    (
        "2026-12-06-000000_exact_prices",
        include_str!("../migrations/2026-12-06-000000_exact_prices/up.sql"),
    ),
];

/// Key of the advisory lock that serializes migrations (`market` in ASCII).
const MIGRATION_LOCK: i64 = 0x6d61_726b_6574;

/// Bars per upsert statement: 9 bind parameters each, well under
/// PostgreSQL's 65,535 per statement.
const UPSERT_CHUNK: usize = 1000;

diesel::define_sql_function! {
    /// SQL `coalesce` of two nullable numerics.
    fn coalesce(x: Nullable<Numeric>, y: Nullable<Numeric>) -> Nullable<Numeric>;
}

fn db(e: impl std::fmt::Display) -> MarketError {
    MarketError::Store(e.to_string())
}

/// A pool of `size` connections to `url` (connections are made lazily),
/// with TLS as the URL's libpq parameters say.
pub fn connect_pool(url: &str, size: usize) -> Result<PgPool> {
    connect_pool_with_tls(url, &rampart_dbtls::PgTlsConfig::default(), size)
}

/// [`connect_pool`] with TLS settings that win over the URL's.
pub fn connect_pool_with_tls(
    url: &str,
    tls: &rampart_dbtls::PgTlsConfig,
    size: usize,
) -> Result<PgPool> {
    let manager = rampart_dbtls::PgConnector::new(url, tls)
        .map_err(|e| MarketError::Config(format!("store database: {e}")))?
        .diesel_manager();
    Pool::builder(manager)
        .max_size(size.max(1))
        .build()
        .map_err(db)
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertCounts {
    /// New rows.
    pub inserted: u64,
    /// Rows whose values changed.
    pub updated: u64,
    /// Rows already stored with the same values.
    pub unchanged: u64,
}

impl UpsertCounts {
    /// Adds another count to this one.
    pub fn add(&mut self, other: UpsertCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// A stored bar with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBar {
    /// The bar.
    pub bar: Bar,
    /// Provider that fetched it.
    pub source: String,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

/// The columns of `prices_daily` that hold a [`Bar`], read and written alike.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = prices_daily, check_for_backend(diesel::pg::Pg))]
struct BarColumns {
    date: NaiveDate,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    adj_close: Option<Decimal>,
    volume: i64,
}

impl From<&Bar> for BarColumns {
    /// A volume beyond `i64` is stored as `i64::MAX`.
    fn from(bar: &Bar) -> Self {
        BarColumns {
            date: bar.date,
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            adj_close: bar.adj_close,
            volume: i64::try_from(bar.volume).unwrap_or(i64::MAX),
        }
    }
}

impl From<BarColumns> for Bar {
    /// A negative stored volume reads as 0.
    fn from(r: BarColumns) -> Self {
        Bar {
            date: r.date,
            open: r.open,
            high: r.high,
            low: r.low,
            close: r.close,
            adj_close: r.adj_close,
            volume: u64::try_from(r.volume).unwrap_or(0),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = prices_daily, check_for_backend(diesel::pg::Pg))]
struct BarRow {
    #[diesel(embed)]
    bar: BarColumns,
    source: String,
    fetched_at: DateTime<Utc>,
}

/// A bar to upsert; `fetched_at` takes the column default, `now()`.
#[derive(Insertable)]
#[diesel(table_name = prices_daily, check_for_backend(diesel::pg::Pg))]
struct NewBar<'a> {
    symbol: &'a str,
    #[diesel(embed)]
    bar: BarColumns,
    source: &'a str,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = quotes_latest, check_for_backend(diesel::pg::Pg))]
struct QuoteRow {
    symbol: String,
    price: Decimal,
    previous_close: Option<Decimal>,
    bid: Option<Decimal>,
    ask: Option<Decimal>,
    volume: Option<i64>,
    currency: Option<String>,
    as_of: DateTime<Utc>,
    source: String,
    fetched_at: DateTime<Utc>,
}

/// The PostgreSQL daily-price store, also usable as a provider (it serves
/// what has been stored, and never fetches).
#[derive(Clone)]
pub struct StoreProvider {
    pool: PgPool,
    name: String,
}

impl std::fmt::Debug for StoreProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreProvider")
            .field("name", &self.name)
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl StoreProvider {
    /// A store over an existing pool. Call [`StoreProvider::migrate`] once.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            name: "store".into(),
        }
    }

    /// Connects to `url` and applies the migrations.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self> {
        let store = Self::new(connect_pool(url, pool_size)?);
        store.migrate().await?;
        Ok(store)
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn conn(&self) -> Result<Object<AsyncPgConnection>> {
        self.pool.get().await.map_err(db)
    }

    /// Applies the embedded migrations not yet applied; returns their versions.
    pub async fn migrate(&self) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        let applied = conn
            .transaction(async |conn| {
                // raw SQL: an advisory lock
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<BigInt, _>(MIGRATION_LOCK)
                    .execute(conn)
                    .await?;
                conn.batch_execute(
                    "CREATE SCHEMA IF NOT EXISTS market;
                     CREATE TABLE IF NOT EXISTS market.schema_migrations (
                         version text PRIMARY KEY,
                         applied_at timestamptz NOT NULL DEFAULT now())",
                )
                .await?;
                let done: HashSet<String> = schema_migrations::table
                    .select(schema_migrations::version)
                    .load::<String>(conn)
                    .await?
                    .into_iter()
                    .collect();
                let mut applied = Vec::new();
                for (version, up) in MIGRATIONS {
                    if done.contains(*version) {
                        continue;
                    }
                    conn.batch_execute(up).await?;
                    diesel::insert_into(schema_migrations::table)
                        .values(schema_migrations::version.eq(*version))
                        .execute(conn)
                        .await?;
                    applied.push((*version).to_owned());
                }
                Ok::<_, diesel::result::Error>(applied)
            })
            .await
            .map_err(db)?;
        if !applied.is_empty() {
            tracing::info!(?applied, "market schema migrated");
        }
        Ok(applied)
    }

    /// Inserts or updates bars (in one transaction); counts what changed.
    pub async fn upsert_bars(
        &self,
        symbol: &str,
        bars: &[Bar],
        source: &str,
    ) -> Result<UpsertCounts> {
        if bars.is_empty() {
            return Ok(UpsertCounts::default());
        }
        let rows: Vec<NewBar<'_>> = bars
            .iter()
            .map(|b| NewBar {
                symbol,
                bar: b.into(),
                source,
            })
            .collect();
        let mut conn = self.conn().await?;
        let written: Vec<bool> = conn
            .transaction(async |conn| {
                let mut written = Vec::with_capacity(rows.len());
                for chunk in rows.chunks(UPSERT_CHUNK) {
                    written.extend(upsert_bar_chunk(conn, chunk).await?);
                }
                Ok::<_, diesel::result::Error>(written)
            })
            .await
            .map_err(db)?;
        let inserted = written.iter().filter(|inserted| **inserted).count() as u64;
        let updated = written.len() as u64 - inserted;
        Ok(UpsertCounts {
            inserted,
            updated,
            unchanged: bars.len() as u64 - inserted - updated,
        })
    }

    /// Stored bars in `from..=to`, oldest first.
    pub async fn bars(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StoredBar>> {
        let mut conn = self.conn().await?;
        let rows: Vec<BarRow> = prices_daily::table
            .filter(prices_daily::symbol.eq(symbol))
            .filter(prices_daily::date.between(from, to))
            .select(BarRow::as_select())
            .order(prices_daily::date)
            .load(&mut conn)
            .await
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| StoredBar {
                bar: r.bar.into(),
                source: r.source,
                fetched_at: r.fetched_at,
            })
            .collect())
    }

    /// Records that `first..=last` has been fetched for `symbol`.
    pub async fn record_fetched(
        &self,
        symbol: &str,
        first: NaiveDate,
        last: NaiveDate,
        source: &str,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        diesel::insert_into(fetched_ranges::table)
            .values((
                fetched_ranges::symbol.eq(symbol),
                fetched_ranges::first_date.eq(first),
                fetched_ranges::last_date.eq(last),
                fetched_ranges::source.eq(source),
                fetched_ranges::fetched_at.eq(now),
            ))
            .on_conflict((
                fetched_ranges::symbol,
                fetched_ranges::first_date,
                fetched_ranges::last_date,
            ))
            .do_update()
            .set((
                fetched_ranges::source.eq(excluded(fetched_ranges::source)),
                fetched_ranges::fetched_at.eq(excluded(fetched_ranges::fetched_at)),
            ))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// The parts of `from..=to` never fetched for `symbol`, as inclusive ranges.
    pub async fn missing_ranges(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, NaiveDate)>> {
        let mut conn = self.conn().await?;
        let covered: Vec<(NaiveDate, NaiveDate)> = fetched_ranges::table
            .filter(fetched_ranges::symbol.eq(symbol))
            .filter(fetched_ranges::last_date.ge(from))
            .filter(fetched_ranges::first_date.le(to))
            .select((fetched_ranges::first_date, fetched_ranges::last_date))
            .order(fetched_ranges::first_date)
            .load(&mut conn)
            .await
            .map_err(db)?;
        Ok(subtract_ranges(from, to, covered))
    }

    /// The newest stored date of `symbol`.
    pub async fn latest_date(&self, symbol: &str) -> Result<Option<NaiveDate>> {
        let mut conn = self.conn().await?;
        prices_daily::table
            .filter(prices_daily::symbol.eq(symbol))
            .select(max(prices_daily::date))
            .get_result(&mut conn)
            .await
            .map_err(db)
    }

    /// Stores the last quote of a symbol (kept only if newer than the stored one).
    pub async fn upsert_quote(&self, cached: &CachedQuote) -> Result<()> {
        let q = &cached.quote;
        let mut conn = self.conn().await?;
        let row = QuoteRow {
            symbol: q.symbol.clone(),
            price: q.price,
            previous_close: q.previous_close,
            bid: q.bid,
            ask: q.ask,
            volume: q.volume.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
            currency: q.currency.clone(),
            as_of: q.as_of,
            source: cached.origin.clone(),
            fetched_at: cached.fetched_at,
        };
        // `filter` on an upsert is the `WHERE` of its `DO UPDATE`.
        use diesel::query_dsl::methods::FilterDsl;
        use quotes_latest::dsl as ql;
        diesel::insert_into(ql::quotes_latest)
            .values(&row)
            .on_conflict(ql::symbol)
            .do_update()
            .set((
                ql::price.eq(excluded(ql::price)),
                ql::previous_close.eq(excluded(ql::previous_close)),
                ql::bid.eq(excluded(ql::bid)),
                ql::ask.eq(excluded(ql::ask)),
                ql::volume.eq(excluded(ql::volume)),
                ql::currency.eq(excluded(ql::currency)),
                ql::as_of.eq(excluded(ql::as_of)),
                ql::source.eq(excluded(ql::source)),
                ql::fetched_at.eq(excluded(ql::fetched_at)),
            ))
            // Never replace a newer quote with an older one.
            .filter(ql::fetched_at.le(excluded(ql::fetched_at)))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// The last stored quote of a symbol.
    pub async fn latest_quote(&self, symbol: &str) -> Result<Option<CachedQuote>> {
        let mut conn = self.conn().await?;
        let row: Option<QuoteRow> = quotes_latest::table
            .find(symbol)
            .select(QuoteRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?;
        Ok(row.map(|r| CachedQuote {
            quote: Quote {
                symbol: r.symbol,
                price: r.price,
                previous_close: r.previous_close,
                bid: r.bid,
                ask: r.ask,
                volume: r.volume.and_then(|v| u64::try_from(v).ok()),
                currency: r.currency,
                as_of: r.as_of,
            },
            origin: r.source,
            fetched_at: r.fetched_at,
        }))
    }
}

/// Upserts one chunk of bars; one `true` per inserted row and one `false`
/// per updated row (rows stored with the same values are not touched).
async fn upsert_bar_chunk(
    conn: &mut AsyncPgConnection,
    chunk: &[NewBar<'_>],
) -> diesel::QueryResult<Vec<bool>> {
    // `filter` on an upsert is the `WHERE` of its `DO UPDATE`.
    use diesel::query_dsl::methods::FilterDsl;
    use prices_daily::dsl as p;
    let adj_close = coalesce(excluded(p::adj_close), p::adj_close);
    diesel::insert_into(p::prices_daily)
        .values(chunk)
        .on_conflict((p::symbol, p::date))
        .do_update()
        .set((
            p::open.eq(excluded(p::open)),
            p::high.eq(excluded(p::high)),
            p::low.eq(excluded(p::low)),
            p::close.eq(excluded(p::close)),
            p::adj_close.eq(adj_close),
            p::volume.eq(excluded(p::volume)),
            p::source.eq(excluded(p::source)),
            p::fetched_at.eq(excluded(p::fetched_at)),
        ))
        .filter(
            p::open
                .is_distinct_from(excluded(p::open))
                .or(p::high.is_distinct_from(excluded(p::high)))
                .or(p::low.is_distinct_from(excluded(p::low)))
                .or(p::close.is_distinct_from(excluded(p::close)))
                .or(p::adj_close.is_distinct_from(adj_close))
                .or(p::volume.is_distinct_from(excluded(p::volume))),
        )
        // SQL fragment: `xmax` is a system column, 0 for a row this statement
        // inserted (rather than updated).
        .returning(sql::<Bool>("xmax = 0"))
        .load(conn)
        .await
}

/// `from..=to` minus the covered ranges, as inclusive ranges.
pub fn subtract_ranges(
    from: NaiveDate,
    to: NaiveDate,
    covered: impl IntoIterator<Item = (NaiveDate, NaiveDate)>,
) -> Vec<(NaiveDate, NaiveDate)> {
    let mut covered: Vec<_> = covered.into_iter().collect();
    covered.sort();
    let mut missing = Vec::new();
    let mut cursor = from;
    for (first, last) in covered {
        if cursor > to {
            break;
        }
        if last < cursor {
            continue;
        }
        if first > cursor {
            let end = first.pred_opt().unwrap_or(first).min(to);
            missing.push((cursor, end));
        }
        match last.checked_add_days(Days::new(1)) {
            Some(next) => cursor = cursor.max(next),
            None => return missing,
        }
    }
    if cursor <= to {
        missing.push((cursor, to));
    }
    missing
}

#[async_trait]
impl MarketDataProvider for StoreProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn quote(&self, symbol: &str) -> Result<Quote> {
        if let Some(cached) = self.latest_quote(symbol).await? {
            return Ok(cached.quote);
        }
        // No quote stored: the latest stored close stands in.
        let latest = self
            .latest_date(symbol)
            .await?
            .ok_or_else(|| MarketError::unknown(&self.name, symbol))?;
        let bars = self.bars(symbol, latest, latest).await?;
        let bar = bars
            .into_iter()
            .next()
            .ok_or_else(|| MarketError::unknown(&self.name, symbol))?;
        Ok(Quote {
            symbol: symbol.to_owned(),
            price: bar.bar.close,
            previous_close: None,
            bid: None,
            ask: None,
            volume: Some(bar.bar.volume).filter(|v| *v > 0),
            currency: None,
            as_of: bar
                .bar
                .date
                .and_hms_opt(21, 0, 0)
                .map(|d| d.and_utc())
                .unwrap_or(bar.fetched_at),
        })
    }

    async fn daily_bars(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Bar>> {
        Ok(self
            .bars(symbol, from, to)
            .await?
            .into_iter()
            .map(|b| b.bar)
            .collect())
    }

    async fn search(&self, query: &str) -> Result<Vec<SymbolMatch>> {
        let pattern = format!(
            "%{}%",
            query
                .trim()
                .to_ascii_uppercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut conn = self.conn().await?;
        let symbols: Vec<String> = prices_daily::table
            .select(prices_daily::symbol)
            .distinct()
            .filter(prices_daily::symbol.like(pattern))
            .order(prices_daily::symbol)
            .limit(20)
            .load(&mut conn)
            .await
            .map_err(db)?;
        Ok(symbols
            .into_iter()
            .map(|symbol| SymbolMatch {
                name: symbol.clone(),
                symbol,
                exchange: None,
                kind: None,
            })
            .collect())
    }
}
