//! Instruments as vendors describe them: symbol, name, exchange and asset
//! type, kept in `market.instruments` (shared by every tenant, like the
//! prices). Rows are upserted whenever a vendor answers a symbol search
//! ([`ProviderChain::search`] records what it got) or a symbol lookup
//! ([`StoreProvider::upsert_instruments`], e.g. TradeStation's
//! `/v3/marketdata/symbols`), and by the ingestion job for the symbols it
//! ingests ([`ProviderChain::record_instruments`]). The last vendor's answer
//! wins, except that an empty name or a missing exchange or type never
//! replaces a known one.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::chain::ProviderChain;
use crate::error::{MarketError, Result};
use crate::model::{SymbolMatch, normalize_symbol};
use crate::schema::instruments;
use crate::store::StoreProvider;

diesel::define_sql_function! {
    /// SQL `coalesce` of two nullable texts.
    #[sql_name = "coalesce"]
    fn coalesce_text(x: Nullable<Text>, y: Nullable<Text>) -> Nullable<Text>;
}

/// A stored instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable)]
#[diesel(table_name = instruments, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct Instrument {
    /// Symbol (normalized: upper case).
    pub symbol: String,
    /// Name (empty when no vendor gave one).
    pub name: String,
    /// Exchange, when a vendor gave it.
    pub exchange: Option<String>,
    /// Asset type as the vendor names it (`STOCK`, `Equity`, `ETF`…).
    pub asset_type: Option<String>,
    /// The vendor whose answer this is.
    pub source: String,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

fn db(e: impl std::fmt::Display) -> MarketError {
    MarketError::Store(e.to_string())
}

impl StoreProvider {
    /// Upserts what `source` said about these instruments; returns how many
    /// rows were written. Matches with a malformed symbol are skipped.
    pub async fn upsert_instruments(&self, found: &[SymbolMatch], source: &str) -> Result<usize> {
        let rows: Vec<_> = found
            .iter()
            .filter_map(|m| {
                let symbol = normalize_symbol(&m.symbol).ok()?;
                Some((
                    instruments::symbol.eq(symbol),
                    instruments::name.eq(m.name.trim().to_owned()),
                    instruments::exchange.eq(m.exchange.clone()),
                    instruments::asset_type.eq(m.kind.clone()),
                    instruments::source.eq(source.to_owned()),
                ))
            })
            .collect();
        if rows.is_empty() {
            return Ok(0);
        }
        let mut conn = self.pool().get().await.map_err(db)?;
        // `filter` on an upsert is the `WHERE` of its `DO UPDATE`.
        use diesel::query_dsl::methods::FilterDsl;
        use instruments::dsl as i;
        let mut written = 0;
        // One statement per row: a vendor may list a symbol twice.
        for row in rows {
            written += diesel::insert_into(i::instruments)
                .values(row)
                .on_conflict(i::symbol)
                .do_update()
                .set((
                    i::name.eq(excluded(i::name)),
                    i::exchange.eq(coalesce_text(excluded(i::exchange), i::exchange)),
                    i::asset_type.eq(coalesce_text(excluded(i::asset_type), i::asset_type)),
                    i::source.eq(excluded(i::source)),
                    i::updated_at.eq(now),
                ))
                // An empty name never replaces a known one.
                .filter(excluded(i::name).ne("").or(i::name.eq("")))
                .execute(&mut conn)
                .await
                .map_err(db)?;
        }
        Ok(written)
    }

    /// The stored instrument `symbol`, if any vendor described it.
    pub async fn instrument(&self, symbol: &str) -> Result<Option<Instrument>> {
        let symbol = normalize_symbol(symbol)?;
        let mut conn = self.pool().get().await.map_err(db)?;
        instruments::table
            .find(symbol)
            .select(Instrument::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)
    }
}

impl ProviderChain {
    /// Records what the vendors' search says about each of `symbols` not
    /// stored yet (the ingestion job's instruments); returns how many
    /// symbols are now described. A vendor without search, or a failing
    /// one, only leaves its symbols undescribed.
    pub async fn record_instruments(&self, symbols: &[String]) -> usize {
        let Some(store) = self.store() else {
            return 0;
        };
        let mut described = 0;
        for symbol in symbols {
            match store.instrument(symbol).await {
                Ok(Some(_)) => {
                    described += 1;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(symbol, error = %e, "instrument lookup failed");
                    continue;
                }
            }
            // `search` records every match it gets from a vendor.
            match self.search(symbol).await {
                Ok(_) => {
                    if matches!(store.instrument(symbol).await, Ok(Some(_))) {
                        described += 1;
                    }
                }
                Err(e) => tracing::debug!(symbol, error = %e, "no instrument data"),
            }
        }
        described
    }

    /// Stores what a vendor's fresh search answer says (best effort).
    pub(crate) async fn keep_instruments(&self, found: &[SymbolMatch], source: &str) {
        if let Some(store) = self.store()
            && let Err(e) = store.upsert_instruments(found, source).await
        {
            tracing::warn!(source, error = %e, "instruments not recorded");
        }
    }
}
