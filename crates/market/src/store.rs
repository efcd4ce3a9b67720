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
//! servers do not race. All SQL is parameterized; writes are
//! `INSERT … ON CONFLICT DO UPDATE`.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Date, Double, Nullable, Text, Timestamptz};
use diesel::{QueryableByName, sql_query};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde::{Deserialize, Serialize};

use crate::cache::CachedQuote;
use crate::error::{MarketError, Result};
use crate::model::{Bar, Quote, SymbolMatch};
use crate::provider::MarketDataProvider;

/// The connection pool the store uses.
pub type PgPool = Pool<AsyncPgConnection>;

/// The embedded migrations: (version, up.sql).
pub const MIGRATIONS: &[(&str, &str)] = &[(
    "2025-06-01-000000_create_market_schema",
    include_str!("../migrations/2025-06-01-000000_create_market_schema/up.sql"),
)];

/// Key of the advisory lock that serializes migrations (`market` in ASCII).
const MIGRATION_LOCK: i64 = 0x6d61_726b_6574;

fn db(e: impl std::fmt::Display) -> MarketError {
    MarketError::Store(e.to_string())
}

/// A pool of `size` connections to `url` (connections are made lazily).
pub fn connect_pool(url: &str, size: usize) -> Result<PgPool> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
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

#[derive(QueryableByName)]
struct BarRow {
    #[diesel(sql_type = Date)]
    date: NaiveDate,
    #[diesel(sql_type = Double)]
    open: f64,
    #[diesel(sql_type = Double)]
    high: f64,
    #[diesel(sql_type = Double)]
    low: f64,
    #[diesel(sql_type = Double)]
    close: f64,
    #[diesel(sql_type = Nullable<Double>)]
    adj_close: Option<f64>,
    #[diesel(sql_type = BigInt)]
    volume: i64,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Timestamptz)]
    fetched_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = Bool)]
    inserted: bool,
}

#[derive(QueryableByName)]
struct RangeRow {
    #[diesel(sql_type = Date)]
    first_date: NaiveDate,
    #[diesel(sql_type = Date)]
    last_date: NaiveDate,
}

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    version: String,
}

#[derive(QueryableByName)]
struct SymbolRow {
    #[diesel(sql_type = Text)]
    symbol: String,
}

#[derive(QueryableByName)]
struct LatestDate {
    #[diesel(sql_type = Nullable<Date>)]
    latest: Option<NaiveDate>,
}

#[derive(QueryableByName)]
struct QuoteRow {
    #[diesel(sql_type = Text)]
    symbol: String,
    #[diesel(sql_type = Double)]
    price: f64,
    #[diesel(sql_type = Nullable<Double>)]
    previous_close: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    bid: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    ask: Option<f64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    volume: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    currency: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    as_of: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Timestamptz)]
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
                sql_query("SELECT pg_advisory_xact_lock($1)")
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
                let done: Vec<VersionRow> =
                    sql_query("SELECT version FROM market.schema_migrations")
                        .load(conn)
                        .await?;
                let done: HashSet<String> = done.into_iter().map(|r| r.version).collect();
                let mut applied = Vec::new();
                for (version, up) in MIGRATIONS {
                    if done.contains(*version) {
                        continue;
                    }
                    conn.batch_execute(up).await?;
                    sql_query("INSERT INTO market.schema_migrations (version) VALUES ($1)")
                        .bind::<Text, _>(*version)
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

    /// Inserts or updates bars (one statement); counts what changed.
    pub async fn upsert_bars(
        &self,
        symbol: &str,
        bars: &[Bar],
        source: &str,
    ) -> Result<UpsertCounts> {
        if bars.is_empty() {
            return Ok(UpsertCounts::default());
        }
        let mut conn = self.conn().await?;
        let rows: Vec<Inserted> = sql_query(
            "INSERT INTO market.prices_daily AS p
                 (symbol, date, open, high, low, close, adj_close, volume, source, fetched_at)
             SELECT $1, t.d, t.o, t.h, t.l, t.c, t.a, t.v, $9, now()
             FROM UNNEST($2::date[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::int8[])
                  AS t(d, o, h, l, c, a, v)
             ON CONFLICT (symbol, date) DO UPDATE SET
                 open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
                 adj_close = COALESCE(EXCLUDED.adj_close, p.adj_close), volume = EXCLUDED.volume,
                 source = EXCLUDED.source, fetched_at = EXCLUDED.fetched_at
             WHERE (p.open, p.high, p.low, p.close, p.adj_close, p.volume)
                   IS DISTINCT FROM
                   (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close,
                    COALESCE(EXCLUDED.adj_close, p.adj_close), EXCLUDED.volume)
             RETURNING (xmax = 0) AS inserted",
        )
        .bind::<Text, _>(symbol)
        .bind::<Array<Date>, _>(bars.iter().map(|b| b.date).collect::<Vec<_>>())
        .bind::<Array<Double>, _>(bars.iter().map(|b| b.open).collect::<Vec<_>>())
        .bind::<Array<Double>, _>(bars.iter().map(|b| b.high).collect::<Vec<_>>())
        .bind::<Array<Double>, _>(bars.iter().map(|b| b.low).collect::<Vec<_>>())
        .bind::<Array<Double>, _>(bars.iter().map(|b| b.close).collect::<Vec<_>>())
        .bind::<Array<Nullable<Double>>, _>(bars.iter().map(|b| b.adj_close).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(bars.iter().map(|b| i64::try_from(b.volume).unwrap_or(i64::MAX)).collect::<Vec<_>>())
        .bind::<Text, _>(source)
        .load(&mut conn)
        .await
        .map_err(db)?;
        let inserted = rows.iter().filter(|r| r.inserted).count() as u64;
        let updated = rows.len() as u64 - inserted;
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
        let rows: Vec<BarRow> = sql_query(
            "SELECT date, open, high, low, close, adj_close, volume, source, fetched_at
             FROM market.prices_daily WHERE symbol = $1 AND date BETWEEN $2 AND $3 ORDER BY date",
        )
        .bind::<Text, _>(symbol)
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(&mut conn)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| StoredBar {
                bar: Bar {
                    date: r.date,
                    open: r.open,
                    high: r.high,
                    low: r.low,
                    close: r.close,
                    adj_close: r.adj_close,
                    volume: u64::try_from(r.volume).unwrap_or(0),
                },
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
        sql_query(
            "INSERT INTO market.fetched_ranges (symbol, first_date, last_date, source, fetched_at)
             VALUES ($1, $2, $3, $4, now())
             ON CONFLICT (symbol, first_date, last_date) DO UPDATE SET source = EXCLUDED.source, fetched_at = EXCLUDED.fetched_at",
        )
        .bind::<Text, _>(symbol)
        .bind::<Date, _>(first)
        .bind::<Date, _>(last)
        .bind::<Text, _>(source)
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
        let rows: Vec<RangeRow> = sql_query(
            "SELECT first_date, last_date FROM market.fetched_ranges
             WHERE symbol = $1 AND last_date >= $2 AND first_date <= $3 ORDER BY first_date",
        )
        .bind::<Text, _>(symbol)
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(&mut conn)
        .await
        .map_err(db)?;
        Ok(subtract_ranges(
            from,
            to,
            rows.into_iter().map(|r| (r.first_date, r.last_date)),
        ))
    }

    /// The newest stored date of `symbol`.
    pub async fn latest_date(&self, symbol: &str) -> Result<Option<NaiveDate>> {
        let mut conn = self.conn().await?;
        let row: LatestDate =
            sql_query("SELECT max(date) AS latest FROM market.prices_daily WHERE symbol = $1")
                .bind::<Text, _>(symbol)
                .get_result(&mut conn)
                .await
                .map_err(db)?;
        Ok(row.latest)
    }

    /// Stores the last quote of a symbol (kept only if newer than the stored one).
    pub async fn upsert_quote(&self, cached: &CachedQuote) -> Result<()> {
        let q = &cached.quote;
        let mut conn = self.conn().await?;
        sql_query(
            "INSERT INTO market.quotes_latest AS q
                 (symbol, price, previous_close, bid, ask, volume, currency, as_of, source, fetched_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (symbol) DO UPDATE SET
                 price = EXCLUDED.price, previous_close = EXCLUDED.previous_close, bid = EXCLUDED.bid,
                 ask = EXCLUDED.ask, volume = EXCLUDED.volume, currency = EXCLUDED.currency,
                 as_of = EXCLUDED.as_of, source = EXCLUDED.source, fetched_at = EXCLUDED.fetched_at
             WHERE q.fetched_at <= EXCLUDED.fetched_at",
        )
        .bind::<Text, _>(&q.symbol)
        .bind::<Double, _>(q.price)
        .bind::<Nullable<Double>, _>(q.previous_close)
        .bind::<Nullable<Double>, _>(q.bid)
        .bind::<Nullable<Double>, _>(q.ask)
        .bind::<Nullable<BigInt>, _>(q.volume.map(|v| i64::try_from(v).unwrap_or(i64::MAX)))
        .bind::<Nullable<Text>, _>(q.currency.as_deref())
        .bind::<Timestamptz, _>(q.as_of)
        .bind::<Text, _>(&cached.origin)
        .bind::<Timestamptz, _>(cached.fetched_at)
        .execute(&mut conn)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The last stored quote of a symbol.
    pub async fn latest_quote(&self, symbol: &str) -> Result<Option<CachedQuote>> {
        let mut conn = self.conn().await?;
        let rows: Vec<QuoteRow> = sql_query(
            "SELECT symbol, price, previous_close, bid, ask, volume, currency, as_of, source, fetched_at
             FROM market.quotes_latest WHERE symbol = $1",
        )
        .bind::<Text, _>(symbol)
        .load(&mut conn)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().next().map(|r| CachedQuote {
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
        let rows: Vec<SymbolRow> = sql_query("SELECT DISTINCT symbol FROM market.prices_daily WHERE symbol LIKE $1 ORDER BY symbol LIMIT 20")
            .bind::<Text, _>(pattern)
            .load(&mut conn)
            .await
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| SymbolMatch {
                name: r.symbol.clone(),
                symbol: r.symbol,
                exchange: None,
                kind: None,
            })
            .collect())
    }
}
